"""gradlab.check(..., own_cost=True): a network gradient judged against the user's own cost --
a correct squared-error gradient passes; the difference from the course's cost is a note."""

import json

import numpy as np
import pytest
from array_api_compat import array_namespace

import gradlab


def _thetas(xp, network, params):
    out, offset = [], 0
    for rows, cols in network.shapes:
        out.append(xp.reshape(params[offset:offset + rows * cols], (rows, cols)))
        offset += rows * cols
    return out


def mse_cost(problem, params):
    """J = 1/(2m) sum (h - Y)^2 + lam/(2m) sum of squared weights (bias columns excluded);
    sigmoid units; written against the array API so that jax can trace it."""
    xp = array_namespace(params)
    m = problem.m
    a = xp.asarray(problem.X)
    reg = 0.0
    for T in _thetas(xp, problem.network, params):
        a = 1.0 / (1.0 + xp.exp(-(xp.concat([xp.ones((m, 1), dtype=a.dtype), a], axis=1) @ T.T)))
        reg = reg + xp.sum(T[:, 1:] ** 2)
    return xp.sum((a - xp.asarray(problem.Y)) ** 2) / (2 * m) + problem.lam / (2 * m) * reg


def _mse_gradient(problem, params, output_gprime=True):
    thetas = _thetas(np, problem.network, params)
    m = problem.m
    acts = [np.c_[np.ones(m), problem.X]]
    for T in thetas:
        acts.append(np.c_[np.ones(m), 1.0 / (1.0 + np.exp(-(acts[-1] @ T.T)))])
    h = acts[-1][:, 1:]
    delta = (h - problem.Y) * (h * (1 - h) if output_gprime else 1.0)
    grads = [None] * len(thetas)
    for layer in range(len(thetas) - 1, -1, -1):
        g = delta.T @ acts[layer] / m
        g[:, 1:] += problem.lam / m * thetas[layer][:, 1:]
        grads[layer] = g
        a = acts[layer][:, 1:]
        delta = (delta @ thetas[layer][:, 1:]) * a * (1 - a)
    return np.concatenate([g.ravel() for g in grads])


def mse_gradient(problem, params):
    return _mse_gradient(problem, params)


def mse_gradient_without_output_gprime(problem, params):
    """The cross-entropy's output error h - y, used with the squared-error cost."""
    return _mse_gradient(problem, params, output_gprime=False)


def test_correct_squared_error_gradient_passes_against_its_own_cost():
    report = gradlab.check(mse_gradient, (3, 5, 3), cost_fn=mse_cost, own_cost=True)
    assert report.ok, str(report)
    assert {"yours vs jax", "yours vs central", "jax vs central"} == set(report.comparisons)
    differs = [f for f in report.findings if f.kind == "cost_differs"]
    assert len(differs) == 1 and differs[0].blame == "note" and differs[0].cause == "data term of the cost"
    assert [i["name"] for i in report.info["inputs"]] == ["Theta1", "Theta2"]
    assert "against your own cost" in str(report) and json.loads(report.to_json())["own_cost"] is True


def test_the_same_gradient_fails_against_the_course_cost():
    report = gradlab.check(mse_gradient, (3, 5, 3), cost_fn=mse_cost)
    assert not report.ok
    assert "cost_mismatch" in report.kinds


def test_a_wrong_squared_error_gradient_is_located_against_its_own_cost():
    report = gradlab.check(mse_gradient_without_output_gprime, (3, 5, 3), cost_fn=mse_cost, own_cost=True)
    assert not report.ok
    blamed = [f for f in report.findings if f.blame == "user"]
    assert {f.input for f in blamed} == {"Theta1", "Theta2"}, str(report)
    assert all(f.entries and len(f.entries[0]) == 2 for f in blamed)  # [row, column] of the matrix


def test_a_halved_gradient_is_named_per_layer():
    report = gradlab.check(lambda p, w: mse_gradient(p, w) / 2, (2, 4, 2), cost_fn=mse_cost, own_cost=True)
    kinds = {(f.kind, f.input, f.cause) for f in report.findings if f.blame == "user"}
    assert kinds == {("constant_factor", "Theta1", "halved (factor 1/2)"),
                     ("constant_factor", "Theta2", "halved (factor 1/2)")}, str(report)


def test_the_course_cost_as_own_cost_is_said_to_be_the_course_cost():
    report = gradlab.check(gradlab.gradient, (3, 4, 2), cost_fn=lambda p, w: gradlab.cost(p, w), own_cost=True)
    assert report.ok, str(report)
    assert any("is the course's regularised cross-entropy" in n for n in report.notes)
    assert not any(f.kind == "cost_differs" for f in report.findings)


def test_a_numpy_cost_gets_the_unavailable_line_and_still_a_verdict():
    def numpy_mse(problem, params):
        return float(mse_cost(problem, np.asarray(params)))  # float(): jax cannot trace it

    report = gradlab.check(mse_gradient, (3, 4, 2), cost_fn=numpy_mse, own_cost=True)
    assert report.ok and any(n.startswith("jax witness unavailable") for n in report.notes), str(report)


def test_own_cost_needs_a_cost_and_a_bool():
    with pytest.raises(gradlab.GradlabError, match="own_cost=True .* needs cost_fn"):
        gradlab.check(mse_gradient, (3, 5, 3), own_cost=True)
    with pytest.raises(gradlab.GradlabError, match="own_cost must be True or False"):
        gradlab.check(mse_gradient, (3, 5, 3), cost_fn=mse_cost, own_cost="yes")


@pytest.mark.slow  # the functions run in a process of their own
def test_an_isolated_cost_says_why_jax_cannot_trace_it_and_labels_each_point():
    report = gradlab.check(f"{__file__}:mse_gradient", (3, 5, 3), cost_fn=f"{__file__}:mse_cost", own_cost=True)
    assert report.ok, str(report)
    assert any("'mse_cost' runs in a process of its own (gradlab isolates code named by its file), where jax's "
               "tracers cannot be sent; in Python, pass the function itself (isolate=False)" in n
               for n in report.notes), report.notes
    differs = next(f for f in report.findings if f.kind == "cost_differs")
    assert [v["entry"] for v in differs.values][:3] == ["check point, lam=1", "check point, lam=0",
                                                       "nearby point 1, lam=1"]
    assert "without own_cost (--own-cost on the command line) it is judged against the course's cost" \
        in differs.sentence
