"""Training with Hessian-vector products: newton-cg, trust-ncg, trust-krylov with any H v source."""

import numpy as np
import pytest

import gradlab
from gradlab.cli import main
from gradlab.data import load_digits, train_test_split

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits()
    return train_test_split(X, y, test_fraction=0.2, seed=0)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
def test_newton_cg_reaches_at_least_cgs_test_accuracy_on_the_digits(digits_split):
    s = digits_split
    kw = dict(hidden=25, lam=1.0, maxiter=100, seed=0, test=(s.X_test, s.y_test), progress=False)
    cg = gradlab.train(s.X_train, s.y_train, method="cg", **kw)
    newton = gradlab.train(s.X_train, s.y_train, method="newton-cg", **kw)
    assert newton.ok and newton.test_accuracy >= cg.test_accuracy
    # Counted by the trainer, shown in the report: iterations, gradients and products.
    assert newton.meta["hvp_source"] == "backprop" and newton.meta["hvp_evaluations"] > newton.n_iter
    text = str(newton)
    assert f"{newton.meta['hvp_evaluations']} Hessian-vector products (backprop)" in text
    assert f"after {newton.n_iter} iterations, {newton.meta['evaluations']} cost+gradient evaluations" in text


@pytest.mark.parametrize("method", ["newton-cg", "trust-ncg", "trust-krylov"])
@pytest.mark.parametrize("hvp_source", ["backprop", "jax", "numeric"])
def test_every_second_order_method_learns_xor_with_every_source(method, hvp_source):
    r = gradlab.train(XOR_X, XOR_Y, hidden=3, lam=0.0, method=method, hvp_source=hvp_source, maxiter=200,
                      seed=1, progress=False)
    assert r.accuracy(XOR_X, XOR_Y) == 1.0
    assert r.meta["hvp_source"] == hvp_source and r.meta["hvp_evaluations"] > 0


def test_the_products_are_the_sources_and_are_counted():
    seen = []

    def mine(problem, params, v):
        seen.append(v.copy())
        return gradlab.hvp(problem, params, v)

    r = gradlab.train(XOR_X, XOR_Y, hidden=3, lam=0.5, method="trust-ncg", hvp_source=mine, maxiter=20,
                      seed=1, progress=False)
    assert r.meta["hvp_source"] == "mine" and r.meta["hvp_evaluations"] == len(seen) > 0


def test_a_model_trained_by_newton_cg_saves_and_loads_its_counts(tmp_path):
    r = gradlab.train(XOR_X, XOR_Y, hidden=3, method="newton-cg", maxiter=5, progress=False)
    loaded = gradlab.load(r.save(tmp_path / "m.npz"))
    assert loaded.method == "newton-cg"
    assert loaded.meta["hvp_evaluations"] == r.meta["hvp_evaluations"] and loaded.meta["hvp_source"] == "backprop"


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="cg", hvp_source="backprop"), r"hvp_source must be None for method='cg'"),
    (dict(method="newton-cg", hvp_source="exact"), r"hvp_source must be one of 'backprop', 'jax'"),
    (dict(method="newton-cg", hvp_source=lambda problem, params: params), r"hvp_source must take 3 positional"),
    (dict(method="newton"), r"method must be one of 'cg', 'lbfgs', 'newton-cg', 'trust-ncg', 'trust-krylov'"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.train(XOR_X, XOR_Y, hidden=3, maxiter=2, progress=False, **kwargs)


def test_cli_train_newton_cg_reports_the_counts(capsys):
    assert main(["train", "--method", "newton-cg", "--maxiter", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "method newton-cg (scipy Newton-CG)" in out and "Hessian-vector products (backprop)" in out


def test_cli_train_hvp_source_with_cg_is_a_usage_error(capsys):
    assert main(["train", "--hvp-source", "jax", "--maxiter", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == ("gradlab: error: --hvp-source goes with a second-order --method (newton-cg, trust-ncg, "
                   "trust-krylov); got --method cg\n")
