"""explain(order=2) and gradlab explain --order 2: the R-pass line by line beside jax.jvp."""

import dataclasses
import json

import numpy as np
import pytest

import gradlab
from gradlab import _cost
from gradlab.cli import main

P = gradlab.debug_problem(lam=1.0)
THETA = gradlab.debug_init(P.network)


def test_every_r_line_agrees_with_jax_forward_mode():
    r = gradlab.explain(P, THETA, order=2)
    assert r.ok
    assert [s.name for s in r.forward] == ["Rz2", "Ra2", "Rz3"]
    assert [s.name for s in r.backward] == ["Rdelta3", "Rdelta2"]
    assert [b["theta"] for b in r.blocks] == [2, 1]
    # The blocks are gradlab's H v and jax's, side by side.
    np.testing.assert_array_equal(np.concatenate([b["rpass"].ravel() for b in r.blocks[::-1]]),
                                  gradlab.hvp(P, THETA, r.direction))
    text = str(r)
    assert "Rdelta2 = (Rdelta3 Theta2[:,1:] + delta3 V2[:,1:]) * g'(z2) + (delta3 Theta2[:,1:]) * g''(z2)" in text
    assert "g''(z) = a2 (1 - a2) (1 - 2 a2)" in text and "verdict: every R-line agrees" in text


@pytest.mark.parametrize("net", [gradlab.Network((3, 4, 3, 2)), gradlab.Network((3, 5, 3), "tanh"),
                                 gradlab.Network((3, 5, 3), "relu")], ids=str)
def test_deeper_networks_and_other_activations(net):
    problem = gradlab.debug_problem(net, 5, 0.5)
    r = gradlab.explain(problem, gradlab.debug_init(net), order=2, direction="ones")
    assert r.ok and len(r.backward) == net.n_layers - 1
    if net.activation == "relu":
        assert "g''" not in r.backward[-1].formula  # relu'' = 0 away from the kink


def test_a_missing_second_derivative_shows_in_its_own_line(monkeypatch):
    sigmoid = _cost.ACTIVATIONS["sigmoid"]
    broken = dataclasses.replace(sigmoid, first_second=lambda z, a: (sigmoid.first_second(z, a)[0], None))
    monkeypatch.setitem(_cost.ACTIVATIONS, "sigmoid", broken)
    r = gradlab.explain(P, THETA * 5, order=2)
    assert not r.ok
    assert [s.name for s in r.forward + r.backward if not s.ok] == ["Rdelta2"]  # the R-forward pass is right
    assert [b["theta"] for b in r.blocks if not b["ok"]] == [1]


def test_the_json_report_parses():
    data = json.loads(gradlab.explain(P, THETA, order=2, example=2).to_json())
    assert data["ok"] is True and data["order"] == 2 and data["example"] == 2
    assert [s["name"] for s in data["backward"]] == ["Rdelta3", "Rdelta2"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(order=0), r"order must be 1 \(the gradient's walk-through\) or 2"),
    (dict(order=2, jaxpr=True), r"jaxpr must be False with order=2"),
    (dict(order=1, direction="ones"), r"direction must be None for order=1"),
    (dict(order=2, example=5), r"example must be an integer in \[0, 4\]"),
    (dict(order=2, direction=np.ones(3)), r"direction must be a 1-D array of length 38"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.explain(P, THETA, **kwargs)


def test_cli_explain_order_2(capsys):
    assert main(["explain", "--order", "2", "--direction", "ones"]) == 0
    out = capsys.readouterr().out
    assert "gradlab explain --order 2" in out and "v all ones" in out
    assert main(["explain", "--order", "2", "--jaxpr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "jaxpr must be False with order=2" in err
