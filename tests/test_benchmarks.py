"""The benchmark harness runs and measures what it says (no timing assertions here)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import gradlab

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gradlab_bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_style_loop_is_the_same_gradient_as_backprop(bench):
    problem, params = bench._synthetic((6, 5, 4, 3), 11)
    loop = bench._seed_style_gradient(problem.network, params, problem.X, problem.Y, problem.lam)
    bp = gradlab.gradient(problem, params, "backprop")
    assert bench._norm_ratio(loop, bp) <= bench.SANITY_NORM_RATIO


def test_floors_count_the_products_of_one_forward_and_backward_pass(bench):
    problem, params = bench._synthetic((6, 5, 4, 3), 11)
    rows, cols, n_products = bench._floors(problem.network, params, problem.X)
    rows(), cols()
    assert n_products == 3 + 3 + 2  # forward per layer, D per layer, delta per hidden layer


@pytest.mark.slow  # times every implementation, the per-example loops too
def test_gradient_section_reports_timings_ratios_and_memory(bench):
    res = bench.bench_gradients((6, 5, 3), 40, repeats=2, loop_repeats=1)
    for name in ("backprop", "jax", "jax.jit raw", "jax float32", "floor", "per-example loop"):
        assert res["timings"][name]["median_s"] > 0
    assert res["sanity"]["backprop_vs_jax"] <= bench.SANITY_NORM_RATIO
    assert res["memory"]["activations_bytes"] == 40 * (5 + 3) * 8
    assert res["memory"]["peak_bytes"] > 0
    assert set(res["ratios"]) >= {"backprop/jax_raw", "backprop/floor", "backprop/fair_floor", "loop/backprop"}
    fair = res["timings"]["fair floor"]
    assert fair["exponentials"] == 40 * (5 + 3) and fair["logarithms"] == 40 * 3
    assert res["ratios"]["backprop/fair_floor"] > 0


def test_transcendentals_evaluate_one_exp_per_unit_and_one_log_per_output(bench, monkeypatch):
    net = gradlab.Network((6, 5, 4, 3))
    run, counts = bench._transcendentals(net, 7)
    calls = []
    for name in ("exp", "log"):
        real = getattr(np, name)
        monkeypatch.setattr(np, name, lambda a, out=None, real=real, name=name: (calls.append((name, a.size)),
                                                                              real(a, out=out))[1])
    run()
    assert sorted(calls) == sorted([("exp", 7 * 5), ("exp", 7 * 4), ("exp", 7 * 3), ("log", 7 * 3)])
    assert counts == {"exponentials": 7 * 12, "logarithms": 7 * 3}


def test_rows_whose_code_is_missing_say_not_available(bench):
    for name, fn in (("check", bench.bench_check), ("train", bench.bench_train)):
        if hasattr(gradlab, name):
            continue
        with pytest.raises(bench.NotAvailable, match=f"gradlab.{name} is not on this branch"):
            fn(1)


def test_numeric_one_at_a_time_is_a_central_difference_gradient(bench):
    # The seed's gradient-check criterion: ||num - bp|| / ||num + bp|| < 1e-9.
    problem, params = bench._synthetic((4, 3, 2), 9)
    entries = np.arange(problem.network.n_params)
    mine = bench._numeric_one_at_a_time(problem, params, entries)
    assert bench._norm_ratio(mine, gradlab.gradient(problem, params, "backprop")) < 1e-9


def test_seed_loop_as_the_seed_writes_it_is_the_same_gradient(bench):
    problem, params = bench._synthetic((6, 5, 4, 3), 11)
    loop = bench._seed_loop_gradient(problem.network, params, problem.X, problem.Y, problem.lam)
    assert bench._norm_ratio(loop, gradlab.gradient(problem, params, "backprop")) <= bench.SANITY_NORM_RATIO


@pytest.fixture(scope="module")
def property_suite():
    spec = importlib.util.spec_from_file_location("gradlab_bench_property", ROOT / "benchmarks" / "property_suite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("witness, strategies, examples", [
    ("jax", ("default", "any depth"), 5),
    ("numeric", ("default", "any depth"), 5),
    pytest.param("jax unbucketed", ("default",), 2, marks=pytest.mark.slow),  # a compile per shape
])
def test_property_suite_runs_the_users_property_with_each_witness(property_suite, witness, strategies, examples):
    compiles = property_suite._Compiles()
    for strategy in strategies:
        row = property_suite._timed(property_suite._suite(strategy, witness, examples), compiles)
        assert row["seconds"] > 0 and row["compiles"] >= row["cost_compiles"] >= 0


@pytest.mark.slow  # a hypothesis search that fails, and its shrinking
def test_property_suite_fails_when_a_witness_disagrees(property_suite, monkeypatch):
    import gradlab.testing

    def never(problem, params, sources):
        raise AssertionError("planted disagreement")

    monkeypatch.setattr(gradlab.testing, "assert_gradients_agree", never)
    with pytest.raises(AssertionError, match="planted"):
        property_suite._suite("default", "jax", 3)()
