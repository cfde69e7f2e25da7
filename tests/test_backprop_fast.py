"""The fast back-propagation path: same numbers as the plain forms, bounded memory."""

import tracemalloc

import numpy as np
import pytest

import gradlab
from gradlab.compare import EXACT_NORM_RATIO
from gradlab._cost import cost_from_forward as _cost_from_forward, forward as _forward, sigmoid as _sigmoid
from gradlab.sources import backprop

# The fast sigmoid 1/(1+exp(-z)) and the stable where-form each round a handful of
# times (exp, add, divide); they may differ by a few units in the last place.
SIGMOID_ULPS = 4
# A blocked sum and a single sum of the same terms differ by round-off only.
BLOCKED_SUM_RTOL = 1e-13
# Peak memory goal of the speed work: one backprop gradient allocates at most twice the
# activations a_2..a_L (m x s_l float64 each) that the backward pass must keep.
PEAK_OVER_ACTIVATIONS = 2.0


def _stable_sigmoid(z):
    # The textbook two-branch form, written here as an independent oracle.
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def test_fast_sigmoid_matches_two_branch_form_without_warnings():
    z = np.concatenate([np.linspace(-800, 800, 4001), [-745.2, -709.8, -36.0, 0.0, 36.0, 709.8]])
    got = _sigmoid(np, z)
    want = _stable_sigmoid(z)
    ulp = np.spacing(np.abs(want))
    # Below z = -709.78 exp(-z) overflows and the fast form gives 0 where the true value
    # is subnormal: an absolute error under the smallest normal float64.
    tiny = np.finfo(np.float64).tiny
    assert np.all(np.abs(got - want) <= SIGMOID_ULPS * ulp + tiny)
    normal = want >= tiny
    assert np.all(np.abs(got - want)[normal] <= SIGMOID_ULPS * ulp[normal])
    assert got[0] == 0.0 and got[-7] == 1.0


def test_fast_sigmoid_in_place_writes_into_out():
    z = np.linspace(-5, 5, 11)
    want = _stable_sigmoid(z)
    out = _sigmoid(np, z, out=z)
    assert out is z
    np.testing.assert_allclose(z, want, rtol=SIGMOID_ULPS * np.finfo(np.float64).eps)


def test_forward_without_hidden_z_gives_the_same_activations_and_output():
    p = gradlab.debug_problem((6, 5, 4, 3), 8)
    params = gradlab.random_init(p.network, seed=2)
    zs, acts = _forward(np, p.network, params, p.X)
    zs2, acts2 = _forward(np, p.network, params, p.X, keep_z=False)
    assert len(zs) == 3 and len(zs2) == 1
    np.testing.assert_array_equal(zs2[0], zs[-1])
    for a, b in zip(acts, acts2):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("columns", [1, 2, 4, 5, 100])
def test_blocked_cost_equals_one_block(columns):
    p = gradlab.debug_problem((4, 5, 5), 8, lam=0.3)
    params = gradlab.random_init(p.network, seed=4)
    zs, _ = _forward(np, p.network, params, p.X)
    whole = _cost_from_forward(np, p.network, params, zs[-1], p.Y, p.lam)
    blocked = _cost_from_forward(np, p.network, params, zs[-1], p.Y, p.lam, columns=columns)
    assert blocked == pytest.approx(whole, rel=BLOCKED_SUM_RTOL)


def test_output_delta_keeps_the_tiny_gradient_of_saturated_units():
    z = np.array([[40.0, -40.0, 0.0, 800.0]])
    Y = np.array([[1.0, 0.0, 1.0, 1.0]])
    got = backprop.output_delta(z.copy(), Y, 1.0 - Y)
    # g(z) - y: exactly -g(-40), +g(-40), -1/2 and -g(-800) (which underflows to 0).
    s40 = 1.0 / (1.0 + np.exp(40.0))
    np.testing.assert_allclose(got, [[-s40, s40, -0.5, 0.0]], rtol=4 * np.finfo(np.float64).eps)
    assert got[0, 0] < 0.0  # not rounded to 0 as sigmoid(z) - y would be


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
def test_backprop_matches_jax_when_units_saturate():
    p = gradlab.debug_problem((5, 4, 3), 6, lam=0.5)
    params = 40.0 * gradlab.random_init(p.network, seed=1)
    bp = gradlab.gradient(p, params, "backprop")
    jx = gradlab.gradient(p, params, "jax")
    assert np.linalg.norm(bp - jx) <= EXACT_NORM_RATIO * np.linalg.norm(bp + jx)


def test_backprop_leaves_the_problem_and_params_untouched():
    p = gradlab.debug_problem((5, 4, 3), 6, lam=0.5)
    params = gradlab.random_init(p.network, seed=1)
    X, Y, kept = p.X.copy(), p.Y.copy(), params.copy()
    first = gradlab.gradient(p, params, "backprop")
    second = gradlab.gradient(p, params, "backprop")
    np.testing.assert_array_equal(p.X, X)
    np.testing.assert_array_equal(p.Y, Y)
    np.testing.assert_array_equal(params, kept)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("sizes, m", [((40, 25, 10), 3000), ((30, 40, 20, 10), 2000)])
def test_backprop_peak_memory_is_at_most_twice_the_activations(sizes, m):
    rng = np.random.default_rng(0)
    p = gradlab.Problem(gradlab.Network(sizes), rng.random((m, sizes[0])), rng.integers(0, sizes[-1], m), 1.0)
    params = gradlab.random_init(p.network, seed=0)
    backprop.value_and_gradient(p, params)  # per-problem constants are cached on the first call
    tracemalloc.start()
    try:
        backprop.value_and_gradient(p, params)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    activations = m * sum(sizes[1:]) * 8
    assert peak <= PEAK_OVER_ACTIVATIONS * activations
