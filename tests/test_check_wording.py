"""Every sentence of a check report is true: each case that once got wrong words is built
here and its words asserted."""

import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab.check import load_function

import ports
from broken import backprop

HERE = Path(__file__).parent


def _scaled_entry(index, factor):
    def fn(problem, params):
        g = gradlab.gradient(problem, params)
        g[index] *= factor
        return g

    return fn


def test_one_slightly_scaled_entry_is_one_wrong_entry_not_a_factor_of_one():
    # Theta1[1, 3] times (1 + 1e-7): the block fits "1.0000000 x the truth" to FIT_RTOL, which
    # once read "every entry of Theta1's gradient is 1 times the true value".
    report = gradlab.check(_scaled_entry(7, 1 + 1e-7), (3, 5, 3))
    text = str(report)
    assert report.kinds == ["entries"], text
    f = report.findings[0]
    assert (f.layer, f.rows, f.columns) == (1, [1], [3])
    assert "1 entry of Theta1's gradient is wrong: Theta1[1, 3]" in f.sentence
    assert "times the true value" not in text and "factor 1" not in text
    assert "right at lambda = 0" not in text  # it is wrong at lambda = 0 too


def test_a_regularisation_slip_beside_a_data_term_slip_is_not_said_to_be_right_at_lambda_zero():
    def two_slips(problem, params):
        g = gradlab.gradient(problem, params)
        g[1] += 1e-3                                   # wrong at every lambda: Theta1[0, 1]
        g[6] += 0.5 * problem.lam / problem.m * params[6]  # a regularisation slip at Theta1[1, 2]
        return g

    report = gradlab.check(two_slips, (3, 5, 3), lam=2.0)
    reg = [f for f in report.findings if f.kind == "regularisation"]
    assert len(reg) == 1 and reg[0].layer == 1, str(report)
    assert reg[0].sentence.startswith("besides the error at lambda = 0, Theta1's regularisation term")
    assert "right at lambda = 0" not in str(report)


def test_a_regularisation_slip_alone_is_said_to_be_right_at_lambda_zero():
    report = gradlab.check(backprop(reg_bias=True), (3, 5, 3))
    assert all(f.sentence.startswith(f"Theta{f.layer} is right at lambda = 0 and wrong at lambda = 1")
               for f in report.findings) and len(report.findings) == 2


def test_a_write_into_params_that_leaves_the_gradient_unchanged_is_not_called_a_different_gradient():
    first = []

    def keeps_its_first_answer(problem, params):
        if not first:
            first.append(gradlab.gradient(problem, params))
        params[0] = 0.0
        return first[0].copy()

    report = gradlab.check(keeps_its_first_answer, (3, 5, 3))
    f = next(f for f in report.findings if f.kind == "input_mutation")
    assert "it returns the same gradient" in f.sentence and "different gradient" not in f.sentence
    assert "1 entry of Theta1 in the bias column (column 0) set to 0" in f.sentence
    assert "the whole bias column" not in f.sentence  # one entry of five


def test_a_non_deterministic_gradient_gets_that_finding_and_no_other():
    calls = []

    def drifting(problem, params):
        calls.append(1)
        return gradlab.gradient(problem, params) * (1.0 + 1e-3 * len(calls))

    report = gradlab.check(drifting, (3, 5, 3))
    assert report.kinds == ["non_determinism"], str(report)
    assert "so none was run" in report.findings[0].sentence


def _cost_with_bias(dtype):
    def cost(problem, params):
        extra = sum(float(np.sum(t[:, 0] ** 2)) for t in problem.network.unpack(params))
        return dtype(gradlab.cost(problem, params) + problem.lam / (2 * problem.m) * extra)

    return cost


def test_a_float32_cost_consistent_with_the_gradient_is_said_to_be_so():
    # Once: "differs ... already at lambda = 0" and "not the gradient of your own cost either".
    report = gradlab.check(backprop(reg_bias=True), (3, 5, 3), cost_fn=_cost_with_bias(np.float32), lam=3.0)
    f = next(f for f in report.findings if f.kind == "cost_mismatch")
    assert f.cause == "regularisation term of the cost"
    assert "Your gradient is the gradient of your own cost" in f.sentence
    assert "not the gradient of your own cost" not in f.sentence


def test_a_gradient_that_is_not_the_gradient_of_the_users_cost_is_said_to_be_so():
    report = gradlab.check(backprop(gprime_missing_at=2), (3, 5, 3), cost_fn=_cost_with_bias(float))
    f = next(f for f in report.findings if f.kind == "cost_mismatch")
    assert f.extra["gradient_consistent_with_your_cost"] is False
    assert "Your gradient is not the gradient of your own cost either" in f.sentence


def test_a_right_gradient_beside_a_wrong_cost_is_said_to_be_right():
    report = gradlab.check(backprop(), (3, 5, 3), cost_fn=_cost_with_bias(float))
    f = next(f for f in report.findings if f.kind == "cost_mismatch")
    assert "Your gradient is right" in f.sentence and "either" not in f.sentence


# ------------------------------------------------------------------ shrinking


@pytest.fixture
def student(tmp_path):
    path = tmp_path / "shrinkme.py"
    path.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import numpy as np
        import gradlab
        import ports
        from broken import backprop
        good = backprop()
        def cost_bias(problem, params):
            extra = sum(float(np.sum(t[:, 0] ** 2)) for t in problem.network.unpack(params))
            return gradlab.cost(problem, params) + problem.lam / (2 * problem.m) * extra
        octave_bug = ports.octave_port("no_m")
        def first_class_dropped(problem, params):
            Y = problem.Y.copy()
            Y[:, 0] = 0.0  # the label of class 0 is lost
            return gradlab.gradient(gradlab.Problem(problem.network, problem.X, Y, problem.lam), params)
    """))
    return path


def _run_reproducer(report):
    namespace = {}
    exec(report.reproducer["pytest"], namespace)
    test = next(v for k, v in namespace.items() if k.startswith("test_"))
    with pytest.raises(AssertionError):
        test()


def test_the_shrink_reproducer_carries_the_cost_and_fails_as_the_check_did(student):
    target = f"{student}:good"
    report = gradlab.shrink(load_function(target), cost_fn=load_function(f"{student}:cost_bias"), target=target,
                            max_examples=30)
    assert report is not None and "cost_mismatch" in report.kinds
    r = report.reproducer
    assert f"--cost {student}:cost_bias" in r["command"]
    assert f"cost_fn = load_function('{student}:cost_bias')" in r["pytest"] and "cost_fn=cost_fn" in r["pytest"]
    _run_reproducer(report)


def test_the_shrink_reproducer_carries_the_conventions(student):
    target = f"{student}:octave_bug"
    report = gradlab.shrink(load_function(target), signature="seed", labels=1, unroll="F", target=target,
                            max_examples=30)
    r = report.reproducer
    assert "--signature seed" in r["command"] and "--labels 1 --unroll F" in r["command"]
    assert "labels=1" in r["pytest"] and "unroll='F'" in r["pytest"]
    assert {f.kind for f in report.findings} == {"constant_factor"}
    _run_reproducer(report)


def test_shrinking_keeps_two_outputs_and_the_kind_of_failure(student):
    target = f"{student}:first_class_dropped"
    fn = load_function(target)
    kinds = set(gradlab.check(fn, (3, 5, 3), against=("backprop",)).kinds)
    report = gradlab.shrink(fn, target=target, max_examples=60)
    assert report.reproducer["sizes"][-1] >= 2
    assert "constant_factor" not in report.kinds and "constant_factor" not in kinds, str(report)
