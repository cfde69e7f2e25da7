"""gradlab steps: the V of truncation against round-off, as a table, JSON and a figure."""

import json
import os

import numpy as np
import pytest

import gradlab
from gradlab.cli import main
from gradlab.steps import plot_steps, step_curve


@pytest.fixture(scope="module")
def seed_report():
    p = gradlab.debug_problem()
    return step_curve(p, gradlab.debug_init(p.network))


def test_the_curves_have_the_shapes_the_error_model_predicts(seed_report):
    r = seed_report
    h = r.steps
    assert h[0] == pytest.approx(1e-1) and h[-1] == pytest.approx(1e-16)
    fwd, cen, rich, cpx = (r.errors[m] for m in ("forward", "central", "richardson", "complex"))
    # Truncation side: forward error ~ h, central ~ h^2 (slopes from two large steps).
    i, j = 4, 8  # h = 1e-2 and 1e-3
    assert np.log10(fwd[i] / fwd[j]) == pytest.approx(1.0, abs=0.1)
    assert np.log10(cen[i] / cen[j]) == pytest.approx(2.0, abs=0.1)
    # Round-off side: both grow as h shrinks; at 1e-16 the difference is zero (error 1).
    assert cen[-12] > 100 * cen[np.argmin(cen)] and fwd[-1] == pytest.approx(1.0)
    # The bottom of each V is near the step its error model predicts.
    assert 1e-9 <= r.best["forward"][0] <= 1e-6
    assert 1e-7 <= r.best["central"][0] <= 1e-3
    # Complex step: round-off once h^2 truncation is gone, at any small step.
    assert np.all(cpx[h <= 1e-8] < 1e-15)
    # Ordering of the best errors.
    assert r.best["complex"][1] < r.best["richardson"][1] < r.best["central"][1] < r.best["forward"][1]


def test_step_curve_validates_steps():
    p = gradlab.debug_problem()
    with pytest.raises(gradlab.GradlabError, match=r"steps must be a non-empty sequence of relative steps in \(0, 1\]"):
        step_curve(p, gradlab.debug_init(p.network), steps=[1e-3, 0.0])


def test_plot_writes_a_png_atomically(tmp_path, seed_report):
    out = tmp_path / "steps.png"
    assert plot_steps(seed_report, out) == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in tmp_path.iterdir()] == ["steps.png"]  # no temp file left
    with pytest.raises(gradlab.GradlabError, match=r"out must be a file name ending in .png, .pdf or .svg"):
        plot_steps(seed_report, tmp_path / "steps.txt")
    with pytest.raises(gradlab.GradlabError, match=r"out must be a path in an existing folder"):
        plot_steps(seed_report, tmp_path / "missing" / "steps.png")


def test_cli_steps_json_and_figure(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["steps", "--sizes", "3,5,3", "--out", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["sizes"] == [3, 5, 3] and d["reference"] == "jax"
    assert set(d["errors"]) == {"forward", "central", "richardson", "complex"}
    assert len(d["steps"]) == len(d["errors"]["central"]) == 61
    assert os.path.getsize(out) > 10_000


def test_cli_steps_table_and_bad_activation(capsys):
    assert main(["steps", "--sizes", "2,3,2", "--activation", "tanh"]) == 0
    text = capsys.readouterr().out
    assert "step h" in text and "best central" in text and "complex" in text
    assert main(["steps", "--activation", "swish"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradlab: error: --activation must be one of") and err.count("\n") == 1
    assert err.rstrip().endswith("got --activation swish")


def test_cli_compare_takes_an_activation(capsys):
    assert main(["compare", "--sizes", "3,4,2", "--activation", "tanh", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["activation"] == "tanh" and d["ok"] is True
