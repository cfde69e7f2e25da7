"""gradlab explain: back-propagation's deltas are jax's dJ/dz, layer by layer."""

import json
import subprocess
import sys

import numpy as np
import pytest

import gradlab
import importlib
from gradlab.cli import main
from gradlab._cost import cost as _cost, cross_entropy as _cross_entropy, forward as _forward, sigmoid as _sigmoid
from gradlab.network import Network

# The module (the package attribute gradlab.explain is the function).
explain_mod = importlib.import_module("gradlab.explain")

#: The requirement: for every layer, |delta_l - m dJ/dz_l| <= 1e-12.
REQUIRED_AGREEMENT = 1e-12

SIZES = [(3, 5, 3), (4, 6, 6, 5, 2)]


def _debug(sizes, lam=0.0):
    p = gradlab.debug_problem(sizes, lam=lam)
    return p, gradlab.debug_init(p.network)


def _dJdz_from_the_layers_above(problem, params, layer):
    """jax.vjp of the part of the network above ``layer``, as a function of z_layer alone.

    An oracle independent of explain's z-shift route: for the output layer the cost's data
    term is the loss of z_L; for a hidden layer l it is the cost of the sub-network
    l..L fed with g(z_l) (regularisation does not depend on z, so it is left out).
    """
    import jax
    import jax.numpy as jnp

    from gradlab.sources.autodiff import x64

    net = problem.network
    zs, _ = _forward(np, net, params, problem.X)
    z = zs[layer - 2]
    with x64():
        Y = jnp.asarray(problem.Y)
        if layer == net.n_layers:
            def above(zl):
                return jnp.sum(_cross_entropy(jnp, zl, Y)) / problem.m
        else:
            sub = Network(net.sizes[layer - 1:])
            sub_params = jnp.asarray(params[net.offsets[layer - 1]:])

            def above(zl):
                return _cost(jnp, sub, sub_params, _sigmoid(jnp, zl), Y, 0.0)

        _, vjp = jax.vjp(above, jnp.asarray(z))
        (g,) = vjp(jnp.float64(1.0))
        return np.array(g)


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: ",".join(map(str, s)))
def test_every_layers_delta_equals_m_times_jax_dJdz_to_1e_12(sizes):
    problem, params = _debug(sizes)
    report = gradlab.explain(problem, params)
    assert [s.layer for s in report.layers] == list(range(len(sizes), 1, -1))
    for step in report.layers:
        diff = np.abs(step.delta - problem.m * step.jax_dJdz).max()
        assert diff <= REQUIRED_AGREEMENT, (step.layer, diff)
        assert step.ok
    assert report.ok


@pytest.mark.slow  # compiles jax's vjp per layer and network
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: ",".join(map(str, s)))
def test_jax_dJdz_matches_an_independent_vjp_of_the_layers_above(sizes):
    problem, params = _debug(sizes, lam=0.7)
    report = gradlab.explain(problem, params)
    for step in report.layers:
        oracle = _dJdz_from_the_layers_above(problem, params, step.layer)
        assert np.abs(step.jax_dJdz - oracle).max() <= REQUIRED_AGREEMENT / problem.m


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: ",".join(map(str, s)))
def test_deltas_and_blocks_come_from_the_backprop_and_jax_sources(sizes):
    problem, params = _debug(sizes, lam=1.5)
    report = gradlab.explain(problem, params)
    bp = problem.network.unpack(gradlab.gradient(problem, params, "backprop"))
    jx = problem.network.unpack(gradlab.gradient(problem, params, "jax"))
    for block in report.blocks:
        np.testing.assert_array_equal(block.backprop, bp[block.theta - 1])
        np.testing.assert_allclose(block.jax, jx[block.theta - 1], rtol=0, atol=1e-15)
        assert block.ok
    # The output delta is a_L - y, computed here with a plain loop.
    out = report.layers[0]
    zs, _ = _forward(np, problem.network, params, problem.X)
    for i in range(problem.m):
        for k in range(problem.network.n_outputs):
            expected = 1.0 / (1.0 + np.exp(-zs[-1][i, k])) - problem.Y[i, k]
            assert out.delta[i, k] == pytest.approx(expected, abs=1e-15)


def test_a_wrong_backprop_delta_is_reported_and_jax_does_not_see_it(monkeypatch):
    problem, params = _debug((3, 5, 3))
    honest = gradlab.explain(problem, params)
    real = explain_mod.backward

    def wrong(problem, params, keep=False):
        bw = real(problem, params, keep=keep)
        bw.deltas[0] = bw.deltas[0] * 1.001  # a 0.1 % error in delta2
        return bw

    monkeypatch.setattr(explain_mod, "backward", wrong)
    report = gradlab.explain(problem, params)
    assert not report.ok
    assert not report.layer(2).ok and report.layer(3).ok
    # jax's side is computed from the cost alone: identical to the honest run.
    for a, b in zip(report.layers, honest.layers):
        np.testing.assert_array_equal(a.jax_dJdz, b.jax_dJdz)
    assert "verdict: DISAGREE at delta2" in str(report)


@pytest.mark.parametrize("sizes", [(3, 5, 3), (4, 6, 6, 5, 2), (400, 25, 10)], ids=str)
def test_text_fits_100_columns_with_and_without_jaxpr(sizes):
    problem, params = _debug(sizes)
    for jaxpr in (False, True):
        text = str(gradlab.explain(problem, params, jaxpr=jaxpr))
        too_long = [line for line in text.splitlines() if len(line) > explain_mod.WIDTH]
        assert not too_long


def test_small_matrices_are_printed_whole_and_large_ones_summarised():
    problem, params = _debug((3, 5, 3))
    text = str(gradlab.explain(problem, params))
    theta2 = problem.network.unpack(gradlab.gradient(problem, params, "backprop"))[1]
    # Every row of dJ/dTheta2 appears, as the table prints it, twice (backprop and jax).
    for row in theta2:
        assert text.count("    " + " ".join(f"{x:>10.3e}" for x in row)) == 2
    problem, params = _debug((400, 25, 10))
    text = str(gradlab.explain(problem, params))
    assert "(25x401; column 0 = bias)" in text
    assert "  backprop  min" in text and "  jax.grad  min" in text
    assert f"... {25 - explain_mod.SHOW_UNITS} more units" in text


def test_example_selects_the_rows_shown():
    problem, params = _debug((3, 5, 3))
    report = gradlab.explain(problem, params, example=3)
    text = str(report)
    for k in range(3):
        assert f"{report.layer(3).delta[3, k]:>12.5e}" in text
    assert f"{report.layer(3).delta[0, 0]:>12.5e}" not in text


def test_jaxpr_marks_each_matrix_product_sigmoid_and_the_loss():
    problem, params = _debug((4, 6, 6, 5, 2))
    report = gradlab.explain(problem, params, jaxpr=True)
    dots = [line for line in report.jaxpr if line["primitive"] == "dot_general"]
    assert len(dots) == 4 and all(line["tag"] == "M" for line in dots)
    assert [line["note"] for line in dots] == [f"z{l + 1} = a{l} Theta{l}[:,1:]^T" for l in range(1, 5)]
    exps = [line for line in report.jaxpr if line["primitive"] == "exp"]
    assert [line["tag"] for line in exps] == ["S", "S", "S", "L"]
    assert [line["tag"] for line in report.jaxpr if line["primitive"] == "log1p"] == ["L"]
    assert report.layer(5).primitives["loss"][:5] == ["gt", "neg", "select_n", "exp", "log1p"]
    for l in (2, 3, 4):
        assert report.layer(l).primitives["matrix_product"] == ["dot_general"]
        assert {"exp", "div"} <= set(report.layer(l).primitives["sigmoid"])
    text = str(report)
    assert "dot_general X" in text and "[M] z2 = a1 Theta1[:,1:]^T" in text


def test_json_has_every_layer_and_the_convention():
    problem, params = _debug((3, 5, 3), lam=0.5)
    d = json.loads(gradlab.explain(problem, params, jaxpr=True).to_json())
    assert d["ok"] is True and d["sizes"] == [3, 5, 3] and d["examples"] == 5
    assert [layer["layer"] for layer in d["layers"]] == [3, 2]
    for layer in d["layers"]:
        np.testing.assert_allclose(layer["backprop_delta"], layer["jax_dJ_dz_times_m"], rtol=0, atol=1e-12)
    assert [g["theta"] for g in d["gradients"]] == [2, 1]
    assert "m * jax_dJ_dz" in d["convention"] and len(d["jaxpr"]) > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"example": 5}, r"example must be an integer in \[0, 4\] \(m=5 examples\); got example=5"),
        ({"example": -1}, r"example must be an integer >= 0; got example=-1"),
        ({"example": 1.0}, r"example must be an integer >= 0; got example=1.0"),
        ({"jaxpr": "yes"}, r"jaxpr must be True or False; got jaxpr='yes'"),
        ({"info": [1]}, r"info must be a dict of name: value pairs or None; got info=\[1\]"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    problem, params = _debug((3, 5, 3))
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.explain(problem, params, **kwargs)


def test_bad_problem_and_params_are_rejected():
    problem, params = _debug((3, 5, 3))
    with pytest.raises(gradlab.GradlabError, match="problem must be a gradlab.Problem"):
        gradlab.explain("3,5,3", params)
    with pytest.raises(gradlab.GradlabError, match="params must be a 1-D array of length 38"):
        gradlab.explain(problem, params[:-1])


def test_cli_explain_runs_both_sizes_with_exit_0(capsys):
    assert main(["explain", "--sizes", "3,5,3"]) == 0
    out = capsys.readouterr().out
    assert "layer 3 (output, 3 units)" in out and "layer 2 (hidden, 5 units)" in out
    assert main(["explain", "--sizes", "4,6,6,5,2", "--lambda", "1", "--example", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["ok"] and d["example"] == 4 and d["lam"] == 1.0


@pytest.mark.slow  # a fresh process
def test_cli_explain_usage_error_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "gradlab", "explain", "--example", "9"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "gradlab: error: --example must be an integer in [0, 4] (m=5 examples); got --example 9"
    ]


@pytest.mark.slow  # a fresh process
def test_backprop_deltas_are_computed_without_jax():
    code = (
        "import sys, gradlab\n"
        "from gradlab.sources.backprop import backward\n"
        "p = gradlab.debug_problem((4, 6, 6, 5, 2))\n"
        "bw = backward(p, gradlab.debug_init(p.network), keep=True)\n"
        "assert [d.shape for d in bw.deltas] == [(5, 6), (5, 6), (5, 5), (5, 2)]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
