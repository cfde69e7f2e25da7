"""The Hessian-vector product benchmark runs and reports what it says (no timing assertions)."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gradlab_bench_hvp", ROOT / "benchmarks" / "hvp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_times_every_row_and_the_goal_ratio(bench):
    res = bench.bench(sizes=(6, 5, 3), m=40, repeats=2)
    assert set(res["timings"]) == {"gradient backprop", "gradient jax", "hvp backprop", "hvp jax",
                                   "hvp numeric", "hvp numeric-complex"}
    for row in res["timings"].values():
        assert row["median_s"] > 0 and row["repeats"] == 2
    assert res["sanity_norm_ratio"] <= 1e-10
    assert res["goal"]["measured_median"] == pytest.approx(
        res["timings"]["hvp backprop"]["median_s"] / res["timings"]["gradient backprop"]["median_s"])


def test_main_writes_json_and_markdown(bench, tmp_path, monkeypatch, capsys):
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    monkeypatch.setattr(bench, "bench", lambda m, repeats, _b=bench.bench: _b(sizes=(6, 5, 3), m=m, repeats=repeats))
    assert bench.main(["--repeats", "1", "--examples", "20", "--json", str(out), "--markdown", str(md)]) == 0
    data = json.loads(out.read_text())
    assert data["examples"] == 20 and data["repeats"] == 1
    assert "| hvp backprop |" in md.read_text() and "Goal: one backprop H v" in capsys.readouterr().out


@pytest.fixture(scope="module")
def train_bench():
    spec = importlib.util.spec_from_file_location("gradlab_bench_train2", ROOT / "benchmarks" / "train_second_order.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_rows_count_passes_from_gradients_and_products(train_bench):
    from gradlab.data import load_digits, train_test_split

    X, y = load_digits()
    split = train_test_split(X, y, test_fraction=0.2, seed=0)
    init = train_bench.gradlab.random_init(train_bench.gradlab.Network((64, 25, 10)), seed=0)
    row = train_bench.run("newton-cg", 2, split, init)
    assert row["iterations"] == 2 and row["hvps"] > 0
    assert row["passes"] == row["gradients"] + train_bench.PASSES_PER_HVP * row["hvps"]
    assert "| newton-cg | 2 |" in train_bench.markdown({"rows": [row], "load_average": 0.0, "measured_utc": "now"})
