"""The three gradient sources agree: published checks, properties, purity, jax float64."""

import numpy as np
import pytest
from hypothesis import given

import gradlab
from gradlab.compare import EXACT_NORM_RATIO
from gradlab.testing import networks, problems_with_parameters

# Ng's criterion for the seed's gradient check: ||num - bp|| / ||num + bp|| < 1e-9.
SEED_CHECK_NORM_RATIO = 1e-9
# The numpy and jax costs are the same float64 sums in possibly different order.
COST_RTOL = 1e-12


# The properties are about every depth, so they ask for it: gradlab.testing's default
# draws 3-layer networks only (the commonest user's gradient).
ANY_DEPTH = networks(min_layers=2, max_layers=4)


def _ratio(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(a + b)


@pytest.mark.parametrize("lam", [0.0, 3.0])
def test_seed_check_numeric_vs_backprop(lam):
    p = gradlab.debug_problem((3, 5, 3), 5, lam)
    params = gradlab.debug_init(p.network)
    num = gradlab.gradient(p, params, "numeric")
    bp = gradlab.gradient(p, params, "backprop")
    assert _ratio(num, bp) < SEED_CHECK_NORM_RATIO


@pytest.mark.parametrize("sizes", [(3, 5, 3), (4, 6, 6, 5, 2), (1, 1), (6, 1, 4)])
def test_backprop_matches_jax_on_fixed_networks(sizes):
    p = gradlab.debug_problem(sizes, 7, lam=0.7)
    params = gradlab.random_init(p.network, seed=11)
    assert _ratio(gradlab.gradient(p, params, "backprop"), gradlab.gradient(p, params, "jax")) <= EXACT_NORM_RATIO


def test_backprop_matches_a_per_example_loop_like_the_seed():
    # An independent oracle written here the seed's way: one example at a time, outer products.
    p = gradlab.debug_problem((3, 5, 3), 5, lam=2.0)
    params = gradlab.random_init(p.network, seed=5)
    t1, t2 = p.network.unpack(params)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    D1, D2 = np.zeros_like(t1), np.zeros_like(t2)
    for x, y in zip(p.X, p.Y):
        a1 = np.r_[1.0, x]
        z2 = t1 @ a1
        a2 = np.r_[1.0, sig(z2)]
        a3 = sig(t2 @ a2)
        d3 = a3 - y
        d2 = (t2[:, 1:].T @ d3) * sig(z2) * (1 - sig(z2))
        D2 += np.outer(d3, a2)
        D1 += np.outer(d2, a1)
    D1 /= 5
    D2 /= 5
    D1[:, 1:] += 2.0 / 5 * t1[:, 1:]
    D2[:, 1:] += 2.0 / 5 * t2[:, 1:]
    expected = np.r_[D1.ravel(), D2.ravel()]
    np.testing.assert_allclose(gradlab.gradient(p, params, "backprop"), expected, rtol=1e-12, atol=1e-15)


@given(problems_with_parameters(ANY_DEPTH))
def test_property_backprop_and_jax_agree(case):
    problem, params = case
    bp = gradlab.gradient(problem, params, "backprop")
    jx = gradlab.gradient(problem, params, "jax")
    ratio = _ratio(bp, jx) if np.any(bp + jx) else 0.0
    assert ratio <= EXACT_NORM_RATIO, (problem, ratio)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(problems_with_parameters(ANY_DEPTH))
def test_property_numeric_agrees_within_its_error_estimate(case):
    problem, params = case
    report = gradlab.compare(problem, params, ("backprop", "numeric"))
    assert report.ok, str(report)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(problems_with_parameters(ANY_DEPTH))
def test_property_numpy_and_jax_costs_agree(case):
    problem, params = case
    J = gradlab.cost(problem, params)
    Jj, _ = gradlab.value_and_gradient(problem, params, "jax")  # jax's value of the same cost
    assert np.isfinite(J)
    assert Jj == pytest.approx(J, rel=COST_RTOL, abs=1e-300)


@pytest.mark.parametrize("source", ["backprop", "jax", "numeric"])
def test_sources_never_write_into_inputs(source):
    p = gradlab.debug_problem((3, 5, 3), 5, lam=1.0)
    params = gradlab.random_init(p.network, seed=0)
    before = (params.copy(), p.X.copy(), p.Y.copy(), p.labels.copy())
    gradlab.gradient(p, params, source)
    gradlab.value_and_gradient(p, params, source)
    for a, b in zip(before, (params, p.X, p.Y, p.labels)):
        np.testing.assert_array_equal(a, b)


def test_a_source_cannot_corrupt_the_callers_params():
    def vandal(problem, params):
        g = gradlab.gradient(problem, params)
        params[:] = 0.0  # a careless user function writes into its argument
        return g

    p = gradlab.debug_problem()
    params = gradlab.debug_init(p.network)
    kept = params.copy()
    gradlab.gradient(p, params, vandal)
    np.testing.assert_array_equal(params, kept)


def test_jax_source_computes_in_float64_and_leaves_global_setting_alone():
    import jax
    import jax.numpy as jnp

    before = jax.config.jax_enable_x64
    p = gradlab.debug_problem()
    params = gradlab.debug_init(p.network)
    g = gradlab.gradient(p, params, "jax")
    assert g.dtype == np.float64
    # float32 would leave differences around 1e-8; float64 agrees to round-off.
    assert _ratio(g, gradlab.gradient(p, params, "backprop")) < 1e-14
    assert jax.config.jax_enable_x64 == before
    if not before:
        assert jnp.asarray([1.0]).dtype == jnp.float32


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@pytest.mark.parametrize("bucketed", [True, False])
def test_jax_compiles_once_per_network_and_reuses_it(bucketed, jax_compiles):
    from gradlab.sources import autodiff

    p = gradlab.debug_problem((5, 4, 3), 6)
    params = gradlab.debug_init(p.network)
    autodiff.gradient(p, params, bucketed=bucketed)
    before = len(jax_compiles)
    for lam in (0.0, 1.0, 2.0):
        autodiff.gradient(p.with_lam(lam), params + lam, bucketed=bucketed)
    assert len(jax_compiles) == before  # new lam and params: no new compile


def test_user_callable_is_accepted_as_a_source():
    calls = []

    def mine(problem, params):
        calls.append(1)
        return gradlab.gradient(problem, params, "backprop")

    p = gradlab.debug_problem()
    report = gradlab.compare(p, gradlab.debug_init(p.network), (mine, "jax"))
    assert report.ok and calls
    assert report.pairs[0].a == "mine"


def test_value_and_gradient_returns_the_cost_too():
    p = gradlab.debug_problem(lam=1.0)
    params = gradlab.debug_init(p.network)
    for source in ("backprop", "jax", "numeric"):
        J, g = gradlab.value_and_gradient(p, params, source)
        assert J == pytest.approx(gradlab.cost(p, params), rel=1e-13)
        assert g.shape == params.shape
