"""compare(order=2) and gradlab compare --order 2: H v side by side, symmetry, the Hessian's signs.

The default problem (3-5-3, m = 5) is the jax shape the other second-order tests use, so jax
compiles it once for the whole run.
"""

import json

import numpy as np
import pytest

import gradlab
from gradlab.cli import main
from gradlab.compare import FULL_HESSIAN_MAX_PARAMS

P = gradlab.debug_problem()
THETA = gradlab.debug_init(P.network)


def _off_at(index, factor=1.01):
    def wrong(problem, params, v):
        out = gradlab.hvp(problem, params, v)
        out[index] *= factor
        return out
    wrong.__name__ = "wrong"
    return wrong


def test_the_three_products_agree_and_the_report_shows_them():
    r = gradlab.compare(P, THETA, order=2, show=4)
    assert r.ok and isinstance(r, gradlab.HvpCompareReport)
    assert [(q.a, q.b) for q in r.pairs] == [("backprop", "jax"), ("backprop", "numeric"), ("jax", "numeric")]
    assert all(len(q.layers) == 2 for q in r.pairs)
    assert [s.source for s in r.symmetry] == ["backprop", "jax", "numeric"] and all(s.ok for s in r.symmetry)
    np.testing.assert_array_equal(r.hvps["backprop"], gradlab.hvp(P, THETA, r.direction))
    text = str(r)
    assert "backprop vs jax: AGREE" in text and "symmetry" in text and "verdict: all 3 pairs agree" in text
    assert "first 4 entries of H v" in text


def test_a_wrong_entry_is_caught_and_located_with_its_layer_row_and_column():
    index = P.network.offsets[1] + 2 * 6 + 4  # Theta2[2, 4]
    r = gradlab.compare(P, THETA, ("backprop", _off_at(index), "numeric"), order=2)
    assert not r.ok
    pair = r.pair("backprop", "wrong")
    assert (pair.worst["layer"], pair.worst["row"], pair.worst["column"]) == (2, 2, 4)
    assert [s.ok for s in pair.layers] == [True, False]
    assert not r.pair("wrong", "numeric").ok and r.pair("backprop", "numeric").ok
    assert not next(s for s in r.symmetry if s.source == "wrong").ok
    assert "(H v) of Theta2[2, 4]" in str(r)


def test_the_direction_is_seeded_named_or_given():
    a = gradlab.compare(P, THETA, ("backprop", "jax"), order=2, seed=3)
    b = gradlab.compare(P, THETA, ("backprop", "jax"), order=2, seed=3)
    c = gradlab.compare(P, THETA, ("backprop", "jax"), order=2, seed=4)
    np.testing.assert_array_equal(a.direction, b.direction)
    assert not np.array_equal(a.direction, c.direction)
    assert np.linalg.norm(a.direction) == pytest.approx(1.0)
    ones = gradlab.compare(P, THETA, ("backprop", "jax"), order=2, direction="ones")
    np.testing.assert_array_equal(ones.direction, np.ones(38))
    given = np.arange(38.0)
    r = gradlab.compare(P, THETA, ("backprop", "jax"), order=2, direction=given)
    np.testing.assert_array_equal(r.hvps["jax"], gradlab.hvp(P, THETA, given, "jax"))


def _logistic(m, lam):
    rng = np.random.default_rng(8)
    net = gradlab.Network((3, 2))
    return gradlab.Problem(net, rng.standard_normal((m, 3)), rng.integers(0, 2, m), lam), rng.standard_normal(8)


def test_the_hessian_of_logistic_regression_is_positive_definite():
    # (1/m) X1^T diag(h(1-h)) X1 + (lam/m) I' is positive definite when X1 has full column rank.
    problem, theta = _logistic(12, 0.5)
    sp = gradlab.compare(problem, theta, ("backprop", "jax"), order=2).spectrum
    assert sp.kind == "minimum" and sp.positive == 8 and sp.negative == sp.zero == 0
    assert sp.eigenvalues.min() > 10 * sp.tolerance


def test_too_few_examples_leave_flat_directions():
    # One example: each output's block is rank one, so 3 of its 4 eigenvalues vanish.
    problem, theta = _logistic(1, 0.0)
    sp = gradlab.compare(problem, theta, ("backprop", "numeric"), order=2).spectrum
    assert sp.kind == "degenerate" and sp.zero == 6 and sp.positive == 2


def test_a_negated_product_reads_as_a_maximum_and_a_hidden_layer_as_a_saddle():
    problem, theta = _logistic(12, 0.5)

    def negated(problem, params, v):
        return -gradlab.hvp(problem, params, v)

    r = gradlab.compare(problem, theta, (negated, "backprop"), order=2)
    assert r.spectrum.kind == "maximum" and r.spectrum.source == "negated" and not r.ok
    assert gradlab.compare(P, THETA, ("backprop", "jax"), order=2).spectrum.kind == "saddle"


def test_the_full_hessian_is_assembled_only_for_small_networks():
    net = gradlab.Network((10, 20, 3))
    assert net.n_params > FULL_HESSIAN_MAX_PARAMS
    problem = gradlab.debug_problem(net, 4, 0.0)
    r = gradlab.compare(problem, gradlab.debug_init(net), ("backprop", "numeric"), order=2)
    assert r.ok and r.spectrum is None
    assert f"full Hessian not assembled: {net.n_params} parameters > {FULL_HESSIAN_MAX_PARAMS}" in str(r)


def test_a_relu_kink_is_listed_not_judged():
    net = gradlab.Network((3, 4, 2), "relu")
    problem = gradlab.Problem(net, np.ones((3, 3)), [0, 1, 1], 0.0)
    r = gradlab.compare(problem, np.zeros(net.n_params), ("backprop", "numeric"), order=2)
    assert r.ok and r.pair("backprop", "numeric").kinks
    assert not next(s for s in r.symmetry if s.source == "numeric").judged
    assert "not judged" in str(r)


def test_the_json_report_holds_everything():
    data = json.loads(gradlab.compare(P, THETA, order=2).to_json())
    assert data["ok"] is True and data["order"] == 2
    assert set(data["hvps"]) == {"backprop", "jax", "numeric"} and len(data["direction"]["v"]) == 38
    assert data["hessian"]["kind"] == "saddle" and len(data["hessian"]["eigenvalues"]) == 38
    assert [s["source"] for s in data["symmetry"]] == ["backprop", "jax", "numeric"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(order=3), r"order must be 1 \(gradients\) or 2 \(Hessian-vector products\); got order=3"),
    (dict(order=1, direction="ones"), r"direction must be None for order=1"),
    (dict(order=2, direction="zeros"), r"direction must be one of 'random', 'ones'; got direction='zeros'"),
    (dict(order=2, direction=np.ones(5)), r"direction must be a 1-D array of length 38"),
    (dict(order=2, direction=np.full(38, np.nan)), r"direction must hold only finite numbers"),
    (dict(order=2, seed=-1), r"seed must be an integer >= 0"),
    (dict(order=2, sources=("backprop",)), r"sources must be at least two distinct sources"),
    (dict(order=2, sources=("backprop", "numeric-forward")), r"sources must be one of 'backprop', 'jax'"),
])
def test_bad_input_names_the_argument(kwargs, match):
    sources = kwargs.pop("sources", ("backprop", "jax"))
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.compare(P, THETA, sources, **kwargs)


# ----------------------------------------------------------------------- the CLI


def test_cli_compare_order_2_agrees_with_exit_0(capsys):
    assert main(["compare", "--order", "2", "--sizes", "3,5,3"]) == 0
    out = capsys.readouterr().out
    assert "gradlab compare --order 2" in out and "Hessian (38 x 38" in out and "verdict: all 3 pairs agree" in out


def test_cli_compare_order_2_json_and_a_direction_file(capsys, tmp_path):
    path = tmp_path / "v.npy"
    np.save(path, np.linspace(-1, 1, 38))
    assert main(["compare", "--order", "2", "--direction", str(path), "--sources", "backprop,jax", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["direction"]["described"] == "given" and data["direction"]["v"][0] == -1.0


@pytest.mark.parametrize("argv, match", [
    (["--order", "3"], "order must be 1 (gradients) or 2"),
    (["--direction", "ones"], "--direction is for --order 2"),
    (["--order", "2", "--direction", "nowhere.npy"], "--direction: cannot read nowhere.npy"),
    (["--order", "2", "--direction", "sideways"], "--direction must be random, ones or a .npy file"),
    (["--order", "2", "--sources", "backprop,numeric-richardson"], "--sources must be comma-separated names of Hessian-vector product sources, from: backprop, jax, numeric, numeric-complex; got 'numeric-richardson'"),
])
def test_cli_usage_errors_are_one_line_and_exit_2(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gradlab: error: ") and match in err
