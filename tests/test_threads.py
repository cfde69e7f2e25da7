"""BLAS threads: one thread for gradlab's small products while its own call runs, the
caller's setting before and after, large products left to the BLAS."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import gradlab
from gradlab import _threads
from gradlab.sources import backprop, numeric, rop


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


needs_blas = pytest.mark.skipif(not _blas_threads(), reason="no BLAS that threadpoolctl can control")


def _digits_sized(m=1438):
    rng = np.random.default_rng(0)
    problem = gradlab.Problem((64, 25, 10), rng.uniform(0, 1, (m, 64)), rng.integers(0, 10, m), lam=1.0)
    return problem, gradlab.random_init(problem.network, 0)


def test_largest_product_counts_two_flops_per_multiply_add_with_the_bias_column():
    # 64-25-10 on 1,438 examples: the first layer's 1438 x 65 times 65 x 25 is the largest.
    assert _threads.largest_product_flops((64, 25, 10), 1438) == 2 * 1438 * 65 * 25
    assert _threads.largest_product_flops((3, 2, 100), 7) == 2 * 7 * 3 * 100  # a later layer can be the largest


@pytest.mark.parametrize("sizes, m, one", [
    ((64, 25, 10), 1438, True),          # the shipped digits: 4.7e6 flops, small
    ((400, 25, 10), 5000, True),         # 1.0e8
    ((3, 5, 3), 5, False),               # the debug network: the BLAS keeps it on one thread itself
    ((784, 256, 128, 10), 10000, False),  # 4.0e9: large enough for the threads to pay
])
def test_one_thread_for_small_products_only(sizes, m, one):
    assert _threads.one_thread_for(sizes, m) is one


@needs_blas
def test_limited_gives_one_thread_inside_and_the_callers_setting_back_after():
    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        with _threads.limited(True):
            assert set(_blas_threads()) == {1}
            with _threads.limited(True):  # nested: still one, and the outer exit restores
                assert set(_blas_threads()) == {1}
            assert set(_blas_threads()) == {1}
        assert _blas_threads() == outside


@needs_blas
def test_limited_false_leaves_the_callers_setting_alone():
    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        with _threads.limited(False):
            assert _blas_threads() == outside


@needs_blas
def test_an_exception_inside_still_restores_the_callers_setting():
    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        with pytest.raises(RuntimeError, match="inside"):
            with _threads.limited(True):
                raise RuntimeError("inside")
        assert _blas_threads() == outside
        with _threads.limited(True):  # the nesting count was reset: a new block limits again
            assert set(_blas_threads()) == {1}


@needs_blas
def test_backprop_runs_a_digits_sized_problem_on_one_thread(monkeypatch):
    seen = []
    real = backprop._backward_pass

    def spy(*args):
        seen.append(set(_blas_threads()))
        return real(*args)

    monkeypatch.setattr(backprop, "_backward_pass", spy)
    problem, params = _digits_sized()
    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        g = gradlab.gradient(problem, params, "backprop")
        assert _blas_threads() == outside
    assert seen == [{1}]
    assert g.shape == (problem.network.n_params,)


@needs_blas
def test_the_r_operator_runs_a_digits_sized_problem_on_one_thread(monkeypatch):
    # The backprop H v makes the gradient's small products and more: on two threads of a busy
    # machine it measured 10-20 times slower than on one (benchmarks/hvp.py, 20 gradients).
    seen = []
    real = rop.r_pass

    def spy(*args, **kwargs):
        seen.append(set(_blas_threads()))
        return real(*args, **kwargs)

    monkeypatch.setattr(rop, "r_pass", spy)
    problem, params = _digits_sized()
    v = np.random.default_rng(2).standard_normal(problem.network.n_params)
    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        hv = gradlab.hvp(problem, params, v, "backprop")
        assert _blas_threads() == outside
    assert seen == [{1}]
    assert hv.shape == (problem.network.n_params,)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@needs_blas
def test_finite_differences_choose_the_threads_once_for_all_their_evaluations(monkeypatch):
    seen = []
    real = numeric.Evaluator._run

    def spy(self, thetas):
        seen.append(set(_blas_threads()))
        return real(self, thetas)

    monkeypatch.setattr(numeric.Evaluator, "_run", spy)
    # Few parameters (quick) but a largest product of 2.1e6 flops (small, above the BLAS's own range).
    rng = np.random.default_rng(1)
    problem = gradlab.Problem((64, 2, 3), rng.uniform(0, 1, (8000, 64)), rng.integers(0, 3, 8000), lam=1.0)
    assert _threads.one_thread_for(problem.network.sizes, problem.m)
    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        gradlab.numeric_gradient(problem, gradlab.random_init(problem.network, 0))
        assert _blas_threads() == outside
    assert len(seen) > 1 and all(s == {1} for s in seen)


@needs_blas
def test_training_limits_once_for_the_whole_run_and_restores_after(monkeypatch):
    entered = []
    real = _threads._controller

    def counting():
        entered.append(1)
        return real()

    import scipy.optimize  # noqa: F401  (its own BLAS loaded now, so "outside" sees it too)

    monkeypatch.setattr(_threads, "_controller", counting)
    problem, _ = _digits_sized()
    inside = []
    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_threads()
        gradlab.train(problem.X, problem.y, hidden=25, lam=1.0, maxiter=3, progress=False,
                      callback=lambda it: inside.append(set(_blas_threads())))
        assert _blas_threads() == outside
    assert inside and all(s == {1} for s in inside)
    # Once around the optimisation (the gradients inside nest and set nothing), once
    # around the accuracies' forward passes after it.
    assert len(entered) == 2
