"""benchmarks/threads.py measures what it says (no timing assertions here)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gradlab_bench_threads", ROOT / "benchmarks" / "threads.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_busy_processes_run_during_the_block_and_are_gone_after(bench):
    with bench.busy(2) as children:
        assert len(children) == 2 and all(c.poll() is None for c in children)
    assert all(c.poll() is not None for c in children)


def test_the_sweep_times_both_thread_settings_with_gradlabs_limit_off_and_puts_it_back(bench):
    from gradlab import _threads

    before = _threads.SMALL_PRODUCT_FLOPS
    (row,) = bench.sweep(1, cases=[((64, 25, 10), 1438)])
    assert row["one_ms"] > 0 and row["default_ms"] > 0
    assert row["largest_flops"] == 2 * 1438 * 65 * 25 and row["gradlab_one_thread"] is True
    assert _threads.SMALL_PRODUCT_FLOPS == before


def test_a_training_run_reports_its_time_and_the_threads_it_trained_on(bench):
    # The variant's claim is checked inside train_once (it raises when the threads differ).
    out = bench.train_once("gradlab")
    assert out["seconds"] > 0 and out["threads"] == [1] and out["evaluations"] > 100
