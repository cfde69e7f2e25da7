"""Hessian-vector products: the R-operator, jax's forward-over-reverse, finite differences.

Properties over hypothesis-drawn networks (2-5 layers, saturating weights, lambda 0..10,
every activation): back-propagation's R-operator and jax agree to 1e-10 (or within the
a-priori round-off floor); the numeric products within their own error estimates; H is
symmetric to round-off; nothing is written into the caller's arrays. Independent oracles:
the textbook Hessian of logistic regression (a network without hidden layers) and
``jax.hessian`` of the shared cost for a tiny network.

jax compiles once per network and number of examples (about a second each), so the jax
properties draw from a small pool of networks at a fixed m; the numpy-only properties draw
freely.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gradlab
from gradlab import _cost
from gradlab import _judge as judge
from gradlab.sources.hvp_numeric import COMPLEX_STEP, default_step
from gradlab.testing import networks, parameters, problems_with_parameters

ACTIVATIONS = tuple(gradlab.ACTIVATIONS)

#: The jax pool: one network per depth 2..5, each activation (without hidden layers the
#: activation plays no part, so one of those): 10 compiles of the jax product in all.
JAX_POOL = [gradlab.Network((3, 2))] + [gradlab.Network(sizes, act) for sizes in ((3, 4, 3), (2, 4, 3, 2), (3, 2, 4, 3, 2))
                                        for act in ACTIVATIONS]
#: The complex step compiles jax's gradient at complex parameters once more per network: a
#: smaller pool (3 and 5 layers, every activation).
COMPLEX_POOL = [net for net in JAX_POOL if net.n_layers in (3, 5)]
JAX_EXAMPLES = 4

#: Directions drawn with entries up to this size (v's scale is divided out exactly).
MAX_DIRECTION = 10.0


def _with_directions(cases, count=1):
    """(problem, params, v1, ..., v_count) from a strategy of (problem, params)."""
    return cases.flatmap(lambda c: st.tuples(
        st.just(c[0]), st.just(c[1]), *[parameters(c[0].network, max_weight=MAX_DIRECTION)] * count))


jax_cases = _with_directions(problems_with_parameters(
    st.sampled_from(JAX_POOL), min_examples=JAX_EXAMPLES, max_examples=JAX_EXAMPLES, max_lam=10.0))
complex_cases = _with_directions(problems_with_parameters(
    st.sampled_from(COMPLEX_POOL), min_examples=JAX_EXAMPLES, max_examples=JAX_EXAMPLES, max_lam=10.0))
free_networks = networks(min_layers=2, max_layers=5, max_width=6, activations=ACTIVATIONS)
free_cases = _with_directions(problems_with_parameters(free_networks, max_examples=8, max_lam=10.0))
free_pairs = _with_directions(problems_with_parameters(free_networks, max_examples=8, max_lam=10.0), count=2)


def _disagreement(a, b, floor) -> str:
    i = int(np.argmax(np.abs(a - b) - floor))
    return (f"norm ratio {judge.norm_ratio(a, b):.3e}; worst entry {i}: {a[i]!r} vs {b[i]!r}, "
            f"|a-b|={abs(a[i] - b[i]):.3e}, floor {floor[i]:.3e}")


# ------------------------------------------------------------------ exact agreement


def _subnormal_relu_input(problem, params) -> bool:
    """Whether a relu unit's pre-activation is nonzero but below float64's smallest normal
    number for some example.

    XLA on a CPU flushes subnormal numbers to zero, so jax puts such a unit on relu's kink
    (derivative 0) while numpy's IEEE arithmetic keeps it active (derivative 1): the
    Hessian-vector products then differ by terms of the size of v, not of round-off. (The
    gradients do not: their terms carry the subnormal weights.) Found by this property with
    all weights -5e-324.
    """
    if problem.network.activation != "relu":
        return False
    zs, _ = _cost.forward(np, problem.network, params, problem.X)
    return any(np.any((z != 0) & (np.abs(z) < np.finfo(np.float64).tiny)) for z in zs[:-1])  # hidden layers


def test_xla_flushes_subnormal_relu_inputs_and_the_property_leaves_them_out():
    # The case the property found: backprop keeps the subnormal pre-activations (units on),
    # jax flushes them (units off). If a jax ever keeps subnormals, the exclusion can go.
    net = gradlab.Network((3, 4, 3), "relu")
    p = gradlab.Problem(net, -np.ones((4, 3)), np.zeros(4, dtype=int), 0.0)
    w, v = np.full(net.n_params, -5e-324), np.ones(net.n_params)
    assert _subnormal_relu_input(p, w)
    assert np.abs(gradlab.hvp(p, w, v, "backprop") - gradlab.hvp(p, w, v, "jax")).max() > 0.1
    assert not _subnormal_relu_input(p, np.zeros(net.n_params)) and not _subnormal_relu_input(p, w + 1.0)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(jax_cases)
def test_backprop_and_jax_hvp_agree_to_1e_10(case):
    problem, params, v = case
    assume(not _subnormal_relu_input(problem, params))  # jax on a CPU flushes them: see above
    a = gradlab.hvp(problem, params, v, "backprop")
    b = gradlab.hvp(problem, params, v, "jax")
    floor = judge.hvp_roundoff_floor(problem, params, v)
    assert judge.hvp_agree(a, b, floor), _disagreement(a, b, floor)


def test_the_floor_decides_rarely_on_ordinary_weights():
    # The floor exists for products so small that round-off rivals them; on ordinary
    # weights the 1e-10 norm ratio alone must hold (else the floor would hide bugs).
    rng = np.random.default_rng(4)
    for net in JAX_POOL:
        X = rng.standard_normal((JAX_EXAMPLES, net.n_inputs))
        problem = gradlab.Problem(net, X, rng.integers(0, net.n_outputs, JAX_EXAMPLES), 1.0)
        params, v = rng.standard_normal((2, net.n_params))
        a, b = gradlab.hvp(problem, params, v), gradlab.hvp(problem, params, v, "jax")
        assert np.linalg.norm(a - b) <= judge.HVP_NORM_RATIO * np.linalg.norm(a + b), net


# ----------------------------------------------------------------- numeric estimates


def _within_estimate(est, exact, floor):
    bound = judge.numeric_bound(est.error, est.hvp, exact, floor)
    bad = (np.abs(est.hvp - exact) > bound) & ~est.kink
    return not bad.any(), bad


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(free_cases)
def test_numeric_central_hvp_is_within_its_error_estimate(case):
    problem, params, v = case
    est = gradlab.numeric_hvp(problem, params, v)
    exact = gradlab.hvp(problem, params, v)
    ok, bad = _within_estimate(est, exact, judge.hvp_roundoff_floor(problem, params, v))
    i = int(np.argmax(bad))
    assert ok, f"entry {i}: numeric {est.hvp[i]!r} +- {est.error[i]:.3e}, backprop {exact[i]!r}"


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(complex_cases)
def test_numeric_complex_hvp_is_within_its_error_estimate(case):
    problem, params, v = case
    est = gradlab.numeric_hvp(problem, params, v, method="complex")
    exact = gradlab.hvp(problem, params, v, "jax")
    ok, bad = _within_estimate(est, exact, judge.hvp_roundoff_floor(problem, params, v))
    i = int(np.argmax(bad))
    assert ok, f"entry {i}: complex step {est.hvp[i]!r} +- {est.error[i]:.3e}, jax {exact[i]!r}"
    if problem.network.activation != "relu":
        assert not est.kink.any()  # no kinks: the complex step never leaves theta's branch


def test_numeric_central_judges_smooth_points_and_is_close():
    # Away from kinks every entry is judged (not flagged), and the estimate is tight enough
    # to mean something: central differences are good to about eps^(2/3) relative.
    rng = np.random.default_rng(7)
    for act in ACTIVATIONS:
        net = gradlab.Network((4, 6, 5, 3), act)
        problem = gradlab.Problem(net, rng.standard_normal((9, 4)), rng.integers(0, 3, 9), 0.5)
        params, v = rng.standard_normal((2, net.n_params))
        est = gradlab.numeric_hvp(problem, params, v)
        exact = gradlab.hvp(problem, params, v)
        assert not est.kink.any()
        assert np.max(est.error) <= 1e-6 * np.max(np.abs(exact))
        assert np.linalg.norm(est.hvp - exact) <= 1e-8 * np.linalg.norm(exact)


def test_the_complex_step_shrinks_when_its_square_would_cross_a_kink():
    # Weights of 1e-140: the step's square (1e-40) moves every real part far more than the
    # weights do, and the output layer's relu inputs change sign. Found by hypothesis.
    net = gradlab.Network((3, 2, 4, 3, 2), "relu")
    problem = gradlab.Problem(net, -np.ones((4, 3)), [0, 0, 0, 0], 0.0)
    params, v = np.full(net.n_params, 4.61547625e-140), np.ones(net.n_params)
    est = gradlab.numeric_hvp(problem, params, v, method="complex")
    exact = gradlab.hvp(problem, params, v, "jax")
    assert est.step < COMPLEX_STEP and not est.kink.any()
    assert np.max(np.abs(est.hvp - exact)) <= 1e-15 * np.max(np.abs(exact))


def test_numeric_central_flags_a_stencil_across_a_relu_kink():
    # All weights zero: every hidden pre-activation is exactly 0, on the kink; moving along v
    # switches units on and off, so the difference quotient is not a derivative.
    net = gradlab.Network((3, 4, 2), "relu")
    problem = gradlab.Problem(net, np.ones((3, 3)), [0, 1, 1], 0.0)
    v = np.random.default_rng(1).standard_normal(net.n_params)
    est = gradlab.numeric_hvp(problem, np.zeros(net.n_params), v)
    assert est.kink.all()
    assert not gradlab.numeric_hvp(problem, np.zeros(net.n_params), v, method="complex").kink.any()


def test_numeric_source_without_estimate_is_the_estimates_product():
    problem = gradlab.debug_problem(lam=1.0)
    params = gradlab.debug_init(problem.network)
    v = np.linspace(-1, 1, problem.network.n_params)
    assert np.array_equal(gradlab.hvp(problem, params, v, "numeric"), gradlab.numeric_hvp(problem, params, v).hvp)


def test_default_steps_follow_the_error_model():
    theta = np.array([0.5, -40.0, 3.0])
    v = np.array([0.0, 2.0, -4.0])
    # The largest entry of h v is the step central differences give the largest parameter.
    assert default_step(theta, v) * 4.0 == pytest.approx(np.finfo(float).eps ** (1 / 3) * 40.0)
    assert default_step(theta, v, "complex") * 4.0 == pytest.approx(COMPLEX_STEP)


# ----------------------------------------------------------------------- symmetry


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(free_pairs)
def test_backprop_hvp_is_symmetric_to_roundoff(case):
    problem, params, u, v = case
    Hu, Hv = gradlab.hvp(problem, params, u), gradlab.hvp(problem, params, v)
    tol = judge.symmetry_tolerance(u, v, Hu, Hv, judge.hvp_roundoff_floor(problem, params, u),
                                   judge.hvp_roundoff_floor(problem, params, v))
    assert abs(u @ Hv - v @ Hu) <= tol, (u @ Hv, v @ Hu, tol)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(jax_cases.flatmap(lambda c: st.tuples(*map(st.just, c), parameters(c[0].network, max_weight=MAX_DIRECTION))))
def test_jax_hvp_is_symmetric_to_roundoff(case):
    problem, params, u, v = case
    Hu, Hv = gradlab.hvp(problem, params, u, "jax"), gradlab.hvp(problem, params, v, "jax")
    tol = judge.symmetry_tolerance(u, v, Hu, Hv, judge.hvp_roundoff_floor(problem, params, u),
                                   judge.hvp_roundoff_floor(problem, params, v))
    assert abs(u @ Hv - v @ Hu) <= tol, (u @ Hv, v @ Hu, tol)


def test_symmetry_is_judged_at_float64s_resolution_in_the_subnormal_range():
    # Found by hypothesis: a u of 6.5e-295 makes both dot products ~1e-318, subnormal, where
    # they differ by the smallest subnormal (5e-324) -- round-off, not asymmetry.
    net = gradlab.Network((3, 4, 3))
    problem = gradlab.Problem(net, np.zeros((4, 3)), [0, 0, 0, 0], 0.0)
    params = np.full(net.n_params, 2.81242463e-23)
    u, v = np.zeros(net.n_params), np.zeros(net.n_params)
    u[0], v[18] = 6.52959126e-295, 2.0
    for source in ("backprop", "jax"):
        Hu, Hv = gradlab.hvp(problem, params, u, source), gradlab.hvp(problem, params, v, source)
        tol = judge.symmetry_tolerance(u, v, Hu, Hv, judge.hvp_roundoff_floor(problem, params, u),
                                       judge.hvp_roundoff_floor(problem, params, v))
        assert abs(u @ Hv - v @ Hu) <= tol < 1e-300


# ------------------------------------------------------------------------ oracles


def test_logistic_regression_hessian_from_the_textbook():
    # Without hidden layers the cost is K independent logistic regressions, whose Hessian is
    # (1/m) X1^T diag(h (1 - h)) X1 per output (Bishop, PRML eq. 4.97), X1 = [1, X], plus
    # (lam/m) on every weight but the bias. Built here in plain numpy, independently.
    rng = np.random.default_rng(3)
    m, n, K, lam = 11, 4, 3, 2.5
    net = gradlab.Network((n, K))
    X = rng.standard_normal((m, n))
    problem = gradlab.Problem(net, X, rng.integers(0, K, m), lam)
    theta = rng.standard_normal(net.n_params)
    X1 = np.c_[np.ones(m), X]
    h = 1.0 / (1.0 + np.exp(-(X1 @ theta.reshape(K, n + 1).T)))
    H = np.zeros((net.n_params, net.n_params))
    for k in range(K):
        block = X1.T @ (X1 * (h[:, k] * (1 - h[:, k]))[:, None]) / m + np.diag(np.r_[0.0, np.full(n, lam / m)])
        H[k * (n + 1):(k + 1) * (n + 1), k * (n + 1):(k + 1) * (n + 1)] = block
    for source in ("backprop", "jax"):
        for v in rng.standard_normal((3, net.n_params)):
            expected = H @ v
            got = gradlab.hvp(problem, theta, v, source)
            assert np.linalg.norm(got - expected) <= 1e-12 * np.linalg.norm(expected), source


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_full_hessian_matches_jax_hessian(activation):
    # jax.hessian (forward-over-reverse on the full Jacobian) of the shared cost, times each
    # basis vector: the assembled R-operator products are its columns.
    import jax
    import jax.numpy as jnp

    from gradlab.sources.autodiff import x64

    rng = np.random.default_rng(5)
    net = gradlab.Network((2, 3, 2), activation)
    problem = gradlab.Problem(net, rng.standard_normal((JAX_EXAMPLES, 2)), rng.integers(0, 2, JAX_EXAMPLES), 0.3)
    theta = rng.standard_normal(net.n_params)
    with x64():
        hessian = jax.jit(jax.hessian(lambda p: _cost.cost(jnp, net, p, problem.X, problem.Y, problem.lam)))
        H = np.array(hessian(jnp.asarray(theta)))
    cols = np.column_stack([gradlab.hvp(problem, theta, e) for e in np.eye(net.n_params)])
    assert np.linalg.norm(cols - H) <= 1e-12 * np.linalg.norm(H)
    v = rng.standard_normal(net.n_params)
    assert np.linalg.norm(gradlab.hvp(problem, theta, v) - H @ v) <= 1e-12 * np.linalg.norm(H @ v)


# --------------------------------------------------------------- the check can fail


def test_a_missing_second_derivative_term_is_caught(monkeypatch):
    # A planted bug: the R-backward pass without e_l g''(z_l) Rz_l. jax disagrees far beyond
    # 1e-10, and central differences beyond their estimate.
    problem = gradlab.debug_problem(lam=1.0)
    params = gradlab.debug_init(problem.network) * 10  # curvature where g'' matters
    v = np.random.default_rng(0).standard_normal(problem.network.n_params)
    good = gradlab.hvp(problem, params, v)
    sigmoid = _cost.ACTIVATIONS["sigmoid"]
    no_second = dataclasses.replace(sigmoid, first_second=lambda z, a: (sigmoid.first_second(z, a)[0], None))
    monkeypatch.setitem(_cost.ACTIVATIONS, "sigmoid", no_second)
    bad = gradlab.hvp(problem, params, v)
    floor = judge.hvp_roundoff_floor(problem, params, v)
    assert judge.hvp_agree(good, gradlab.hvp(problem, params, v, "jax"), floor)
    assert not judge.hvp_agree(bad, gradlab.hvp(problem, params, v, "jax"), floor)
    ok, _ = _within_estimate(gradlab.numeric_hvp(problem, params, v), bad, floor)
    assert not ok
    # Only the hidden layer's delta has a g'' term: Theta2's block (the output layer) is
    # untouched, Theta1's is wrong.
    n1 = problem.network.offsets[1]
    assert np.array_equal(bad[n1:], good[n1:]) and not np.allclose(bad[:n1], good[:n1])


# ------------------------------------------------------------ purity and scaling


@pytest.mark.parametrize("source", list(gradlab.HVP_SOURCES))
def test_no_source_writes_into_the_callers_arrays(source):
    problem = gradlab.debug_problem(sizes=(3, 4, 3), lam=1.0)
    params = gradlab.debug_init(problem.network)
    v = np.linspace(-2, 3, problem.network.n_params)
    p0, v0 = params.copy(), v.copy()
    params.flags.writeable = False
    v.flags.writeable = False
    out = gradlab.hvp(problem, params, v, source)
    assert np.array_equal(params, p0) and np.array_equal(v, v0)
    assert out.dtype == np.float64 and out.flags.writeable and out.flags.owndata
    assert not np.shares_memory(out, params) and not np.shares_memory(out, v)
    assert np.array_equal(gradlab.hvp(problem, params, v, source), out)  # same inputs, same answer


def test_a_user_source_that_writes_its_arguments_gets_copies():
    problem = gradlab.debug_problem()
    params = gradlab.debug_init(problem.network)
    v = np.ones(problem.network.n_params)

    def vandal(problem, params, v):
        out = gradlab.hvp(problem, params, v)
        params[:] = 0.0
        v[:] = 7.0
        return out

    out = gradlab.hvp(problem, params, v, vandal)
    assert np.array_equal(params, gradlab.debug_init(problem.network)) and np.array_equal(v, np.ones(v.size))
    assert np.array_equal(out, gradlab.hvp(problem, params, v))


@pytest.mark.parametrize("source", ["backprop", "jax"])
def test_hvp_is_linear_in_v_at_any_scale(source):
    problem = gradlab.debug_problem(lam=1.0)
    params = gradlab.debug_init(problem.network)
    v = np.random.default_rng(2).standard_normal(problem.network.n_params)
    base = gradlab.hvp(problem, params, v, source)
    for k in (-1000, -30, 7, 900):  # powers of two: the scaling is exact
        assert np.array_equal(gradlab.hvp(problem, params, np.ldexp(v, k), source), np.ldexp(base, k))
    assert np.all(gradlab.hvp(problem, params, np.zeros_like(v), source) == 0.0)


def test_a_product_beyond_float64_is_an_error():
    problem = gradlab.debug_problem(lam=1000.0)  # (lam/m) v alone is 200 v
    params = gradlab.debug_init(problem.network)
    with pytest.raises(gradlab.GradlabError, match="H v overflows float64"):
        gradlab.hvp(problem, params, np.full(problem.network.n_params, 1e308))


# ------------------------------------------------------------------ bad input


def _ok_user(problem, params, v):
    return np.zeros(problem.network.n_params)


_P = gradlab.debug_problem()
_T = gradlab.debug_init(_P.network)
_V = np.ones(_P.network.n_params)


@pytest.mark.parametrize("kwargs, match", [
    (dict(problem=(3, 5, 3)), r"problem must be a gradlab.Problem"),
    (dict(params=_T[:-1]), r"params must be a 1-D array of length 38"),
    (dict(v=_V[:-1]), r"v must be a 1-D array of length 38 .* got v with length 37"),
    (dict(v=np.r_[_V[:-1], np.nan]), r"v must hold only finite numbers; got v\[37\]=nan"),
    (dict(v=np.r_[_V[:-1], np.inf]), r"v must hold only finite numbers; got v\[37\]=inf"),
    (dict(v=_V + 0j), r"v must be a 1-D array of real numbers"),
    (dict(v=_V.reshape(2, 19)), r"v must be a 1-D array of real numbers; got v with shape \(2, 19\)"),
    (dict(v="ones"), r"v must be a 1-D array of real numbers; got v='ones'"),
    (dict(v=None), r"v must be a 1-D array of real numbers; got v=None"),
    (dict(source="hessian"), r"source must be one of 'backprop', 'jax', 'numeric', 'numeric-complex' or a callable"),
    (dict(source=3), r"source must be one of .*; got source=3"),
    (dict(source=lambda problem, params: params), r"source must take 3 positional arguments \(problem, params, v\)"),
    (dict(source=lambda p, t, v: np.zeros(3)), r"must return a Hessian-vector product of shape \(38,\); got shape \(3,\)"),
    (dict(source=lambda p, t, v: np.full(38, np.nan)), r"returned a non-finite Hessian-vector product: entry 0 is nan"),
    (dict(source=lambda p, t, v: np.zeros(38) + 1j), r"must return a real float array of length 38"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(problem=_P, params=_T, v=_V, source="backprop") | kwargs
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.hvp(args["problem"], args["params"], args["v"], source=args["source"])


def test_a_user_source_that_raises_is_a_user_code_error():
    def broken(problem, params, v):
        raise ZeroDivisionError("oops")

    with pytest.raises(gradlab.GradlabError, match=r"source 'broken' raised ZeroDivisionError: oops"):
        gradlab.hvp(_P, _T, _V, broken)
    assert np.array_equal(gradlab.hvp(_P, _T, _V, _ok_user), np.zeros(38))


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="forward"), r"method must be one of 'central', 'complex'; got method='forward'"),
    (dict(step=0.0), r"step must be a positive number; got step=0.0"),
    (dict(step=-1e-3), r"step must be a finite real number >= 0"),
    (dict(step=float("nan")), r"step must be a finite real number"),
    (dict(step="small"), r"step must be a finite real number"),
])
def test_numeric_hvp_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.numeric_hvp(_P, _T, _V, **kwargs)


def test_registry_lists_every_source_once_with_a_description():
    assert list(gradlab.HVP_SOURCES) == ["backprop", "jax", "numeric", "numeric-complex"]
    for name, src in gradlab.HVP_SOURCES.items():
        assert src.name == name and src.description
        assert src.exact == (src.estimate is None)
