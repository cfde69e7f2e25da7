"""gradlab.train: digits accuracy, backprop and jax on one trajectory, numeric and a user's
callable, the optimiser's status, history, callbacks, Ctrl-C, scaling, bad input."""

import numpy as np
import pytest

import gradlab
from gradlab.data import load_digits, train_test_split
from gradlab.trainer import Iteration

#: The bar set for the shipped digits (hidden 25, lam 1, CG, 100 iterations, seed 0).
DIGITS_TEST_ACCURACY = 0.95
#: Same start, same data: backprop and jax differ by round-off in each gradient (~1e-16
#: relative); CG amplifies that along the way, but over 20 iterations the costs must stay
#: within 1e-8 relative (the criterion set; measured: below 1e-12).
TRAJECTORY_RTOL = 1e-8
TRAJECTORY_ITERATIONS = 20
#: Two runs that both converge (scipy CG's gtol = 1e-5 on the largest gradient entry)
#: reach the same minimum; near it J - J* ~ |g|^2 / (2 curvature), far below 1e-6 relative.
CONVERGED_COST_RTOL = 1e-6


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits()
    return train_test_split(X, y, test_fraction=0.2, seed=0)


@pytest.fixture(scope="module")
def digits_runs(digits_split):
    """The bar's configuration, once per source, from the same initial weights."""
    s = digits_split
    init = gradlab.random_init(gradlab.Network((64, 25, 10)), seed=0)
    return {
        src: gradlab.train(
            s.X_train, s.y_train, hidden=25, grad_source=src, method="cg", lam=1.0, maxiter=100,
            seed=0, init=init, test=(s.X_test, s.y_test), progress=False,
        )
        for src in ("backprop", "jax")
    }


@pytest.mark.slow  # trains the digits network twice (shared fixture)
@pytest.mark.parametrize("source", ["backprop", "jax"])
def test_digits_reach_95_percent_on_the_test_split(digits_runs, digits_split, source):
    r = digits_runs[source]
    assert r.ok and r.stop == "maxiter" and r.n_iter == 100
    # Accuracy recomputed here from the predictions, not taken from the result.
    acc = float(np.mean(r.predict(digits_split.X_test) == digits_split.y_test))
    assert acc == r.test_accuracy
    assert acc >= DIGITS_TEST_ACCURACY


@pytest.mark.slow  # trains the digits network twice (shared fixture)
def test_backprop_and_jax_follow_the_same_trajectory(digits_runs):
    a, b = digits_runs["backprop"].history, digits_runs["jax"].history
    n = TRAJECTORY_ITERATIONS + 1  # entry 0 is the common starting point
    np.testing.assert_allclose(a.cost[:n], b.cost[:n], rtol=TRAJECTORY_RTOL, atol=0)


@pytest.mark.slow  # trains the digits network twice (shared fixture)
def test_default_seed_gives_the_same_start_as_random_init(digits_split, digits_runs):
    r = gradlab.train(digits_split.X_train, digits_split.y_train, maxiter=1, progress=False)
    assert r.history.cost[0] == digits_runs["backprop"].history.cost[0]


# ----------------------------------------------------------------- tiny problems


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    return X, y


def _seed_style_gradient(problem, params):
    """The seed's per-example loop, written here independently of gradlab's backprop."""
    t1, t2 = problem.network.unpack(params)
    g1, g2 = np.zeros_like(t1), np.zeros_like(t2)
    for x, yk in zip(problem.X, problem.Y):
        a1 = np.r_[1.0, x]
        a2 = np.r_[1.0, 1 / (1 + np.exp(-(t1 @ a1)))]
        a3 = 1 / (1 + np.exp(-(t2 @ a2)))
        d3 = a3 - yk
        d2 = (t2[:, 1:].T @ d3) * a2[1:] * (1 - a2[1:])
        g2 += np.outer(d3, a2)
        g1 += np.outer(d2, a1)
    m, lam = problem.m, problem.lam
    g1 /= m
    g2 /= m
    g1[:, 1:] += lam / m * t1[:, 1:]
    g2[:, 1:] += lam / m * t2[:, 1:]
    return np.r_[g1.ravel(), g2.ravel()]


def test_a_users_callable_trains_and_matches_backprop(tiny):
    X, y = tiny
    mine = gradlab.train(X, y, hidden=3, grad_source=_seed_style_gradient, maxiter=200, progress=False)
    ref = gradlab.train(X, y, hidden=3, grad_source="backprop", maxiter=200, progress=False)
    assert mine.source == "_seed_style_gradient"
    assert mine.stop == "converged" and ref.stop == "converged"
    n = TRAJECTORY_ITERATIONS + 1
    np.testing.assert_allclose(mine.history.cost[:n], ref.history.cost[:n], rtol=TRAJECTORY_RTOL, atol=0)
    assert mine.history.cost[-1] < 0.5 * mine.history.cost[0]
    assert mine.train_accuracy == ref.train_accuracy > 0.8


def test_numeric_trains_a_tiny_network_to_backprops_minimum(tiny):
    X, y = tiny
    num = gradlab.train(X, y, hidden=3, grad_source="numeric", maxiter=200, progress=False)
    ref = gradlab.train(X, y, hidden=3, grad_source="backprop", maxiter=200, progress=False)
    assert num.source == "numeric" and num.ok
    assert num.stop == "converged" and ref.stop == "converged"
    assert num.history.cost[-1] == pytest.approx(ref.history.cost[-1], rel=CONVERGED_COST_RTOL)
    assert num.train_accuracy == ref.train_accuracy


def test_lbfgs_runs_with_backprop_and_jax_on_one_trajectory(tiny):
    X, y = tiny
    a = gradlab.train(X, y, hidden=(5, 4), method="lbfgs", grad_source="backprop", maxiter=30, progress=False)
    b = gradlab.train(X, y, hidden=(5, 4), method="lbfgs", grad_source="jax", maxiter=30, progress=False)
    assert a.network.sizes == (4, 5, 4, 3) and a.method == "lbfgs" and a.ok
    n = min(len(a.history), len(b.history), TRAJECTORY_ITERATIONS + 1)
    np.testing.assert_allclose(a.history.cost[:n], b.history.cost[:n], rtol=TRAJECTORY_RTOL, atol=0)


def test_cost_and_gradient_come_from_one_forward_pass(tiny, monkeypatch):
    from gradlab import _cost
    from gradlab.sources import backprop

    passes, costs = [], []
    real_backward, real_cost = backprop.backward, _cost.cost
    monkeypatch.setattr(backprop, "backward", lambda *a, **k: passes.append(1) or real_backward(*a, **k))
    monkeypatch.setattr(_cost, "cost", lambda *a, **k: costs.append(1) or real_cost(*a, **k))
    r = gradlab.train(*tiny, hidden=3, maxiter=20, progress=False)
    # One forward-and-backward pass per cost+gradient evaluation; none spent on a separate
    # cost, and none to recompute the gradient at an accepted iterate.
    assert len(passes) == r.meta["evaluations"] > r.n_iter
    assert costs == []
    assert r.meta["re_evaluations"] == 0


def test_history_records_the_cost_and_gradient_at_each_iterate(tiny):
    X, y = tiny
    seen = []
    r = gradlab.train(X, y, hidden=3, lam=0.5, maxiter=15, progress=False, callback=seen.append)
    h = r.history
    assert len(h) == r.n_iter + 1 == 16 and h.iteration.tolist() == list(range(16))
    assert [it.iteration for it in seen] == list(range(1, 16))
    assert np.all(np.diff(h.elapsed) >= 0)
    problem = gradlab.Problem(r.network, X, y, lam=0.5)
    for it in seen[::5]:
        assert isinstance(it, Iteration)
        # Independent recomputation at the params the callback received.
        assert it.cost == pytest.approx(gradlab.cost(problem, it.params), rel=1e-14)
        assert h.grad_norm[it.iteration] == pytest.approx(
            np.linalg.norm(gradlab.gradient(problem, it.params, "jax")), rel=1e-10)


# ------------------------------------------------------------- how training ends


def _biased_gradient(problem, params):
    """A wrong gradient (off by 1e-3 everywhere): CG's line search eventually fails."""
    return gradlab.gradient(problem, params) + 1e-3


def test_cg_precision_loss_is_reported_not_swallowed(tiny):
    r = gradlab.train(*tiny, hidden=3, grad_source=_biased_gradient, maxiter=200, progress=False)
    assert r.stop == "precision loss" and r.scipy_status == 2 and not r.ok
    assert "precision loss" in r.message
    assert "STOPPED EARLY (precision loss)" in str(r) and r.message in str(r)
    d = r.to_dict()
    assert d["ok"] is False and d["stop"] == "precision loss" and d["message"] == r.message


def test_callback_can_stop_training(tiny):
    r = gradlab.train(*tiny, hidden=3, maxiter=100, progress=False, callback=lambda it: it.iteration >= 5)
    assert r.stop == "callback" and r.ok and r.n_iter == 5


def test_ctrl_c_keeps_the_best_params_so_far(tiny, tmp_path):
    X, y = tiny

    def interrupt(it):
        if it.iteration == 7:
            raise KeyboardInterrupt

    r = gradlab.train(X, y, hidden=3, maxiter=100, progress=False, callback=interrupt)
    assert r.stop == "interrupted" and not r.ok and "Ctrl-C" in r.message
    assert r.n_iter == 7
    best = int(np.argmin(r.history.cost))
    assert gradlab.cost(gradlab.Problem(r.network, X, y, 1.0), r.params) == r.history.cost[best]
    back = gradlab.load(r.save(tmp_path / "interrupted.npz"))
    assert back.stop == "interrupted"
    np.testing.assert_array_equal(back.params, r.params)


def test_progress_goes_to_stderr(tiny, capsys):
    gradlab.train(*tiny, hidden=3, maxiter=10, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "training: 0/10 iterations" in err and "training: 10/10 iterations (100%)" in err and "cost=" in err


# ---------------------------------------------------------------- scaling, Problem


def test_scaling_is_fitted_on_the_training_data_and_applied_by_predict(tiny):
    X, y = tiny
    X = X * [1, 10, 100, 0.1] + 5
    train_X, test_X = X[:30], X[30:]
    r = gradlab.train(train_X, y[:30], hidden=3, maxiter=30, scale=True, progress=False)
    np.testing.assert_allclose(r.scaling.mean, train_X.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(r.scaling.std, train_X.std(axis=0), rtol=1e-15)
    by_hand = gradlab.predict(r.network, r.params, (test_X - train_X.mean(0)) / train_X.std(0))
    np.testing.assert_array_equal(r.predict(test_X), by_hand)


def test_training_a_problem_uses_its_network_and_lambda(tiny):
    X, y = tiny
    p = gradlab.Problem((4, 6, 3), X, y, lam=0.25)
    r = gradlab.train(p, maxiter=5, progress=False)
    assert r.network.sizes == (4, 6, 3) and r.lam == 0.25
    assert r.history.cost[0] == pytest.approx(gradlab.cost(p, gradlab.random_init(p.network, 0)), rel=1e-15)


def test_numeric_training_is_refused_when_the_estimated_time_is_too_long(monkeypatch):
    from gradlab import _resources

    # Pretend one cost evaluation takes a second: no waiting, and the estimate is hours.
    monkeypatch.setattr(_resources, "seconds_per_cost", lambda problem, params: 1.0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 60)), np.arange(5) % 3
    P = 17 * 61 + 3 * 18
    with pytest.raises(gradlab.GradlabError, match=rf"training with grad_source='numeric'.*{2 * P + 1:,} cost evaluations each.*P={P:,}.*1 s per evaluation, timed.*force=True"):
        gradlab.train(X, y, hidden=17, grad_source="numeric", progress=False)
    r = gradlab.train(X, y, hidden=17, grad_source="numeric", maxiter=1, force=True, progress=False)
    assert r.source == "numeric" and r.n_iter <= 1


BAD = [
    ("hidden-zero", {"hidden": 0}, r"hidden must be a positive integer.*hidden=\(0,\)"),
    ("hidden-string", {"hidden": "25"}, r"hidden=.25."),
    ("method", {"method": "sgd"}, r"method must be one of 'cg', 'lbfgs', 'newton-cg', 'trust-ncg', 'trust-krylov'; got method='sgd'"),
    ("maxiter", {"maxiter": 0}, r"maxiter must be an integer >= 1; got maxiter=0"),
    ("lam", {"lam": -1}, r"lam=-1"),
    ("source", {"grad_source": "torch"}, r"grad_source.*'backprop', 'jax', 'numeric'.*grad_source='torch'"),
    ("scale", {"scale": "yes"}, r"scale must be True or False; got scale='yes'"),
    ("init", {"init": np.zeros(3)}, r"init must be a 1-D array of length 27"),
    ("test", {"test": (np.ones((2, 5)), [0, 1])}, r"X must have at least one row and 4 columns"),
    ("callback", {"callback": 3}, r"callback must be a callable"),
    ("seed", {"seed": -1}, r"seed=-1"),
]


@pytest.mark.parametrize("kwargs, pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments_are_named(tiny, kwargs, pattern):
    with pytest.raises(gradlab.GradlabError, match=pattern):
        gradlab.train(*tiny, **{"hidden": 3, "progress": False, **kwargs})


def test_bad_data_combinations(tiny):
    X, y = tiny
    with pytest.raises(gradlab.GradlabError, match=r"y \(the labels\) is required"):
        gradlab.train(X, progress=False)
    with pytest.raises(gradlab.GradlabError, match=r"hidden and lam must be left out when training a Problem"):
        gradlab.train(gradlab.Problem((4, 3, 3), X, y), hidden=4, progress=False)
    with pytest.raises(gradlab.GradlabError, match=r"at least two classes"):
        gradlab.train(X, np.zeros(40, int), progress=False)


@pytest.mark.parametrize("module", ["gradlab.data", "gradlab.trainer"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
