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


def test_gradient_section_reports_timings_ratios_and_memory(bench):
    res = bench.bench_gradients((6, 5, 3), 40, repeats=2, loop_repeats=1)
    for name in ("backprop", "jax", "jax.jit raw", "jax float32", "floor", "per-example loop"):
        assert res["timings"][name]["median_s"] > 0
    assert res["sanity"]["backprop_vs_jax"] <= bench.SANITY_NORM_RATIO
    assert res["memory"]["activations_bytes"] == 40 * (5 + 3) * 8
    assert res["memory"]["peak_bytes"] > 0
    assert set(res["ratios"]) >= {"backprop/jax_raw", "backprop/floor", "loop/backprop"}


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
