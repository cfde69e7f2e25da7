"""Fast mode with the exact witness: every entry compared with jax, jax confirmed by finite
differences along random directions, the same diagnosis as full mode, and never more cost
evaluations than a full check. The 400-25-10 network on 5,000 examples is the course's
size; its three tests share one problem (each check takes seconds)."""

import re

import numpy as np
import pytest

import gradlab

from broken import backprop

SIZES = (400, 25, 10)
WRONG = (7, 123)  # Theta1[7, 123]


@pytest.fixture(scope="module")
def course_sized():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.0, 1.0, size=(5000, SIZES[0]))
    y = rng.permutation(np.arange(5000) % SIZES[-1])
    return gradlab.Problem(SIZES, X, y, 1.0)


def _evaluations_within_a_full_check(report):
    fast = report.fast
    assert fast["cost_evaluations"] <= fast["full_check_evaluations"] == 2 * report.info["n_params"]


def test_one_entry_times_1_001_is_caught_and_named_in_auto_mode(course_sized):
    index = WRONG[0] * (SIZES[0] + 1) + WRONG[1]

    def one_entry(problem, params):
        g = gradlab.gradient(problem, params)
        g[index] *= 1.001
        return g

    report = gradlab.check(one_entry, problem=course_sized)
    text = str(report)
    assert report.info["mode"] == "fast" and not report.ok
    assert report.kinds == ["entries"], text
    f = report.findings[0]
    assert (f.layer, f.rows, f.columns) == (1, [WRONG[0]], [WRONG[1]])
    assert "Theta1[7, 123]" in f.sentence and f.values[0]["index"] == index
    assert "times the true value" not in text and "right at lambda = 0" not in text
    # Finite differences along the disagreement side with jax: the blame is the user's.
    assert report.fast["disagreement_probe"]["numeric_agrees_with_jax"]
    assert not report.fast["disagreement_probe"]["numeric_agrees_with_yours"]
    assert report.info["blame"] == "your gradient -- it differs from jax while finite differences agree with it"
    _evaluations_within_a_full_check(report)
    # What fast mode could miss, with the numbers.
    assert "all 10285 entries compared with jax (exact)" in text
    assert re.search(r"could miss in Theta1: nothing jax sees; an error of jax's own .* smaller than [0-9.e+-]+ in "
                     r"one entry", text)


def test_a_correct_gradient_passes_fast_mode(course_sized):
    report = gradlab.check(lambda problem, params: gradlab.gradient(problem, params), problem=course_sized)
    assert report.info["mode"] == "fast" and report.ok and report.findings == [], str(report)
    _evaluations_within_a_full_check(report)


def _no_regularisation(problem, params):
    return backprop()(problem.with_lam(0.0), params)


@pytest.mark.parametrize("grad, cause", [
    # 35 entries wrong: the bias columns.
    (backprop(reg_bias=True), "bias regularised"),
    # Every one of the 10,250 non-bias entries wrong: the case that once took fast mode 61,016 evaluations
    # (a full check: 20,570) and "9,879 wrong entries" without the regularisation diagnosis.
    (_no_regularisation, "regularisation factor 0 x lam/m: no regularisation at all"),
], ids=["bias-columns", "every-entry"])
def test_a_widespread_bug_gets_full_modes_diagnosis_within_a_full_checks_evaluations(course_sized, grad, cause):
    report = gradlab.check(grad, problem=course_sized)
    assert report.info["mode"] == "fast"
    assert {(f.kind, f.layer, f.cause) for f in report.findings} == {
        ("regularisation", 1, cause), ("regularisation", 2, cause)}, str(report)
    _evaluations_within_a_full_check(report)


def test_without_jax_bisection_stops_at_a_full_checks_evaluations_and_says_so():
    noise = 1e-3 * np.sin(np.arange(10_000))

    def every_entry_off(problem, params):  # deterministic, and no factor or pattern fits
        g = gradlab.gradient(problem, params)
        return g + noise[: g.size]

    report = gradlab.check(every_entry_off, (40, 12, 4), examples=30, mode="fast", against=("numeric",))
    assert not report.ok and report.fast["stopped_bisecting"], str(report)
    _evaluations_within_a_full_check(report)
    text = str(report)
    assert "bisection stopped there, at the budget of a full check" in text
    assert any("bisection stopped at" in f.sentence for f in report.findings)
    assert re.search(r"could miss in Theta1: a single wrong entry off by less than [0-9.e+-]+", text)


def test_fast_mode_with_jax_on_a_small_network_names_what_full_mode_names():
    fast = gradlab.check(backprop(gprime_missing_at=2), (3, 5, 3), mode="fast")
    full = gradlab.check(backprop(gprime_missing_at=2), (3, 5, 3), mode="full")
    assert [(f.kind, f.layer, f.cause) for f in fast.findings] == [(f.kind, f.layer, f.cause) for f in full.findings]
    assert fast.fast["witness"] == "jax" and fast.fast["cost_evaluations"] < 2 * 38
