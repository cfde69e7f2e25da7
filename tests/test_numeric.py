"""Finite differences done well: methods against jax, error estimates, batching, kinks.

Oracles: jax's gradient of the shared cost (float64) and back-propagation; one-sided
derivatives at a kink are checked against jax at points just beside it.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import gradlab
from gradlab._cost import cost as _cost
from gradlab.network import Network
from gradlab.sources import numeric
from gradlab.testing import networks, problems, problems_with_parameters

# The accuracy each method must reach against jax (norm ratio ||a-b|| / ||a+b||) over
# the default generated problems (weights up to 30: saturated units included).
COMPLEX_NORM_RATIO = 1e-13   # complex step: round-off only
RICHARDSON_NORM_RATIO = 1e-11
# The three claims are for gradients above the cost's round-off floor: every method
# (and jax) computes J, or its derivative, from terms of size ~|J| good to a few eps, so
# a gradient much smaller than |J| is partly noise and a norm ratio of two such
# gradients is noise over noise (hypothesis finds all-zero weights with balanced labels,
# true gradient 0, jax 1e-17, central 4e-11; and a saturated unit with regularisation,
# gradient 6e-12, where Richardson's large steps meet J(θ±h) dominated by lam/2m h^2).
# Below the floor each method must still agree within its own error estimate.
CLAIM_FLOOR = 1e-3
# Central differences' truncation error is h^2 |J'''| / 6, and J''' grows like (w x)^3:
# with weights up to 30 and inputs up to 5, hypothesis finds rare problems where the
# default step gives 2.5e-8 (its error estimate still covers them: see the
# no-false-failure properties). The 1e-8 claim is made for weights up to 5.
CENTRAL_CLAIM_MAX_WEIGHT = 5.0
CENTRAL_NORM_RATIO = 1e-8    # central differences at the default step eps^(1/3)
# A one-sided quotient at a kink is first order: error ~ h |J''| / 2 with h <= 6e-6 and
# |J''| of order |X|^2 |Theta|^2 <= 25 * 9 for the bounded problems drawn below, plus
# round-off eps |J| / h: 1e-3 of max(1, |g|) covers both.
ONE_SIDED_RTOL = 1e-3
PIECE_WIDTH = 1e-8  # smallest piece beside a kink for which that bound is claimed

ALL_ACTIVATIONS = ("sigmoid", "tanh", "relu")

# Properties that call jax draw from a few network shapes and a fixed m, so jax compiles
# a handful of functions instead of one per example; weights, inputs, targets and lambda
# still vary over the whole default range (saturated units included).
_JAX_SHAPES = ((3, 5, 3), (4, 6, 5, 2), (1, 1), (6, 1, 4), (2, 8, 8, 3))
_JAX_EXAMPLES = 6


def _jax_friendly(activations, shapes=_JAX_SHAPES, **kwargs):
    nets = st.sampled_from([Network(s, a) for s in shapes for a in activations])
    return problems_with_parameters(nets, min_examples=_JAX_EXAMPLES, max_examples=_JAX_EXAMPLES, **kwargs)


def _subnormal_z(problem, params):
    """Whether some pre-activation is subnormal. jax on CPU flushes subnormals to zero,
    so for such a z at a relu kink jax decides "off" where IEEE arithmetic (numpy, and
    the numeric sources) decides "on": a knife-edge of jax's arithmetic, not of the
    method under test, so the jax-oracle properties skip those draws."""
    from gradlab._cost import forward as _forward

    zs, _ = _forward(np, problem.network, params, problem.X)
    tiny = np.finfo(np.float64).tiny
    return any(np.any((z != 0) & (np.abs(z) < tiny)) for z in zs)


def _ratio(a, b):
    den = np.linalg.norm(a + b)
    num = np.linalg.norm(a - b)
    return 0.0 if num == 0.0 else num / den


# ------------------------------------------------------------------ accuracy vs jax


def _claim_applies(problem, params, jx):
    return np.linalg.norm(jx) >= CLAIM_FLOOR * max(1.0, gradlab.cost(problem, params))


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(_jax_friendly(("sigmoid",)))
def test_property_complex_step_and_richardson_reach_their_accuracy_against_jax(case):
    problem, params = case
    jx = gradlab.gradient(problem, params, "jax")
    complex_ = gradlab.numeric_gradient(problem, params, method="complex").gradient
    rich = gradlab.numeric_gradient(problem, params, method="richardson").gradient
    if _claim_applies(problem, params, jx):
        assert _ratio(complex_, jx) <= COMPLEX_NORM_RATIO
        assert _ratio(rich, jx) <= RICHARDSON_NORM_RATIO
    else:  # a gradient at the round-off floor: each within its own error estimate
        report = gradlab.compare(problem, params, ("jax", "numeric-complex", "numeric-richardson"))
        assert report.ok, str(report)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(_jax_friendly(("sigmoid",), max_weight=CENTRAL_CLAIM_MAX_WEIGHT))
def test_property_central_default_step_reaches_its_accuracy_against_jax(case):
    problem, params = case
    jx = gradlab.gradient(problem, params, "jax")
    central = gradlab.numeric_gradient(problem, params, method="central").gradient
    if _claim_applies(problem, params, jx):
        assert _ratio(central, jx) <= CENTRAL_NORM_RATIO
    else:
        assert gradlab.compare(problem, params, ("jax", "numeric")).ok


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(_jax_friendly(("tanh", "relu")))
def test_property_complex_step_matches_jax_for_tanh_and_relu(case):
    # The complex step never moves the real part, so it never crosses a relu kink.
    problem, params = case
    assume(not _subnormal_z(problem, params))
    jx = gradlab.gradient(problem, params, "jax")
    if _claim_applies(problem, params, jx):
        assert _ratio(gradlab.numeric_gradient(problem, params, method="complex").gradient, jx) <= COMPLEX_NORM_RATIO
    else:
        assert gradlab.compare(problem, params, ("jax", "numeric-complex")).ok


def test_complex_inputs_propagate_analytically_through_the_one_cost():
    # Im J(theta + i h e_k) / h with h = 1e-20 equals jax's entry: only an analytic
    # evaluation of the cost can give that (abs(), or a branch on a complex value, cannot).
    for act in ALL_ACTIVATIONS:
        p = gradlab.debug_problem(Network((4, 6, 5, 3), act), 7, lam=0.5)
        theta = gradlab.random_init(p.network, seed=2) * 4.0
        h = 1e-20
        stacked = theta + 1j * h * np.eye(theta.size)
        cs = _cost(np, p.network, stacked, p.X, p.Y, p.lam).imag / h
        assert _ratio(cs, gradlab.gradient(p, theta, "jax")) <= COMPLEX_NORM_RATIO, act


# ------------------------------------------------- no false failures (>= 1,000 problems)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(problems_with_parameters(networks(min_layers=2, max_layers=4, activations=ALL_ACTIVATIONS)))
def test_property_central_never_fails_a_correct_gradient(case):
    problem, params = case
    report = gradlab.compare(problem, params, ("backprop", "numeric"))
    assert report.ok, str(report)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(problems_with_parameters(networks(min_layers=2, max_layers=4, activations=ALL_ACTIVATIONS)))
def test_property_richardson_never_fails_a_correct_gradient(case):
    problem, params = case
    report = gradlab.compare(problem, params, ("backprop", "numeric-richardson"))
    assert report.ok, str(report)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(problems_with_parameters(networks(min_layers=2, max_layers=4, activations=ALL_ACTIVATIONS)))
def test_property_complex_and_forward_never_fail_a_correct_gradient(case):
    problem, params = case
    report = gradlab.compare(problem, params, ("backprop", "numeric-complex", "numeric-forward"))
    assert report.ok, str(report)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(problems_with_parameters(networks(min_layers=2, max_layers=4, activations=("tanh",)), max_weight=3.0))
def test_property_tanh_networks_pass_like_sigmoid_ones(case):
    problem, params = case
    report = gradlab.compare(problem, params, ("backprop", "numeric", "numeric-richardson"))
    assert report.ok, str(report)
    assert not any(p.kinks for p in report.pairs)  # tanh is smooth: no kinks, ever


# ---------------------------------------------------------------------------- kinks


@st.composite
def _relu_at_a_kink(draw):
    """A relu problem and parameters where hidden unit ``unit`` of layer 2 sits exactly
    at its kink (z = 0) for every example: its incoming weights and bias are zero."""
    net = draw(st.sampled_from([Network(s, "relu") for s in _JAX_SHAPES if len(s) > 2]))
    problem = draw(problems(st.just(net), min_examples=_JAX_EXAMPLES, max_examples=_JAX_EXAMPLES))
    params = draw(st.lists(st.floats(-3.0, 3.0, allow_nan=False), min_size=net.n_params,
                           max_size=net.n_params).map(np.array))
    unit = draw(st.integers(0, net.sizes[1] - 1))
    net.unpack(params)[0][unit, :] = 0.0
    return problem, params, unit


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(_relu_at_a_kink())
def test_property_relu_stencils_crossing_a_kink_are_kinks_not_failures(case):
    problem, params, unit = case
    assume(not _subnormal_z(problem, params))
    report = gradlab.compare(problem, params, ("backprop", "numeric"))
    assert report.ok, str(report)
    est = gradlab.numeric_gradient(problem, params)
    bias = problem.network.offsets[0] + unit * problem.network.shapes[0][1]
    # Raising the bias switches the unit on for every example: a kink. (Lowering it
    # keeps the unit off, so the left quotient is the off-side derivative.)
    assert est.kink[bias]
    pair = report.pair("backprop", "numeric")
    assert bias in [k["index"] for k in pair.kinks]
    # Kink entries stay out of the verdict but their difference is still reported.
    assert np.isfinite(est.left[bias]) and np.isfinite(est.right[bias])
    # Oracles: jax just left and just right of the kink. When a second kink lies closer
    # than PIECE_WIDTH, the one-sided quotient must use a step below it and round-off
    # (eps |J| / step) swamps it: such draws are skipped (jax changes across the gap).
    h_min = PIECE_WIDTH
    for side, value in ((-1.0, est.left[bias]), (1.0, est.right[bias])):
        near, far = params.copy(), params.copy()
        near[bias] += side * 1e-300
        far[bias] += side * h_min
        g_near = gradlab.gradient(problem, near, "jax")[bias]
        g_far = gradlab.gradient(problem, far, "jax")[bias]
        scale = max(1.0, abs(g_near))
        assume(abs(g_near - g_far) <= ONE_SIDED_RTOL * scale)
        assert abs(value - g_near) <= ONE_SIDED_RTOL * scale, (side, value, g_near)


def test_kinks_appear_in_the_text_and_json_reports():
    net = Network((2, 3, 2), "relu")
    p = gradlab.Problem(net, [[1.0, 2.0], [0.5, -1.0], [2.0, 1.0]], [0, 1, 1])
    params = gradlab.random_init(net, seed=0)
    net.unpack(params)[0][1, :] = 0.0       # unit 1 of layer 2 at its kink
    net.unpack(params)[1][:, 2] = [2.0, -1.0]  # ... and it matters for the output
    r = gradlab.compare(p, params, ("jax", "numeric"))
    assert r.ok
    text = str(r)
    assert "at a relu kink" in text and "Theta1[1, 0]" in text and "left" in text
    d = r.to_dict()
    kinks = d["pairs"][0]["kinks"]
    assert any(k["layer"] == 1 and k["row"] == 1 and k["column"] == 0 for k in kinks)
    k = next(k for k in kinks if k["column"] == 0)
    assert k["left"] != pytest.approx(k["right"])  # a real kink: the two sides differ


def test_without_kink_handling_the_relu_entry_would_fail():
    # The central quotient across the kink averages the two sides; jax takes one side.
    net = Network((2, 3, 2), "relu")
    p = gradlab.Problem(net, [[1.0, 2.0], [0.5, -1.0], [2.0, 1.0]], [0, 1, 1])
    params = gradlab.random_init(net, seed=0)
    net.unpack(params)[0][1, :] = 0.0
    net.unpack(params)[1][:, 2] = [2.0, -1.0]
    est = gradlab.numeric_gradient(p, params)
    jx = gradlab.gradient(p, params, "jax")
    i = net.offsets[0] + 1 * 3  # Theta1[1, 0]
    assert est.kink[i]
    assert abs(est.gradient[i] - jx[i]) > 100 * est.error[i]
    assert est.gradient[i] == pytest.approx((est.left[i] + est.right[i]) / 2, rel=1e-6)


# ---------------------------------------------------------------- error estimates


def test_error_estimate_bounds_the_true_error_for_every_method():
    p = gradlab.debug_problem((4, 6, 5, 3), 8, lam=1.0)
    theta = gradlab.random_init(p.network, seed=4) * 3.0
    jx = gradlab.gradient(p, theta, "jax")
    for method in gradlab.NUMERIC_METHODS:
        r = gradlab.numeric_gradient(p, theta, method=method)
        true_err = np.abs(r.gradient - jx)
        # The comparer's rule: within NUMERIC_SAFETY estimates plus exact round-off.
        from gradlab.compare import NUMERIC_ROUNDOFF, NUMERIC_SAFETY

        allowed = NUMERIC_SAFETY * r.error + NUMERIC_ROUNDOFF * np.abs(jx).max()
        assert np.all(true_err <= allowed), method
        assert np.all(r.error > 0) or method == "complex", method


def test_estimates_are_ordered_by_the_methods_accuracy():
    p = gradlab.debug_problem((3, 5, 3), 5, lam=0.3)
    theta = gradlab.debug_init(p.network)
    med = {m: np.median(gradlab.numeric_gradient(p, theta, method=m).error) for m in gradlab.NUMERIC_METHODS}
    assert med["complex"] < med["richardson"] < med["central"] < med["forward"]


def test_default_central_step_is_cbrt_eps_scaled_by_the_parameter():
    theta = np.array([0.0, 0.5, -3.0, 1e6])
    h = numeric.default_steps(theta, "central")
    expected = np.finfo(float).eps ** (1 / 3) * np.array([1.0, 1.0, 3.0, 1e6])
    np.testing.assert_allclose(h, expected, rtol=1e-9)
    assert np.all((theta + h) - theta == h)  # representable: the step really taken


def test_a_small_real_error_is_caught_by_every_method():
    def off(problem, params):
        return gradlab.gradient(problem, params) * (1 + 1e-6)

    p = gradlab.debug_problem()
    theta = gradlab.debug_init(p.network)
    for name in ("numeric", "numeric-complex", "numeric-richardson"):
        assert not gradlab.compare(p, theta, (name, off)).ok, name


def test_complex_step_catches_an_error_of_one_part_in_a_billion():
    def off(problem, params):
        return gradlab.gradient(problem, params) * (1 + 1e-9)

    p = gradlab.debug_problem()
    theta = gradlab.debug_init(p.network)
    assert not gradlab.compare(p, theta, ("numeric-complex", off)).ok
    assert gradlab.compare(p, theta, ("numeric-complex", "backprop")).ok


# ----------------------------------------------------------------------- batching


def test_batched_cost_equals_one_evaluation_at_a_time():
    for act in ALL_ACTIVATIONS:
        p = gradlab.debug_problem(Network((5, 4, 3, 2), act), 6, lam=0.4)
        rng = np.random.default_rng(1)
        stack = rng.normal(size=(9, p.network.n_params)) * 3
        batched = _cost(np, p.network, stack, p.X, p.Y, p.lam)
        one_by_one = np.array([gradlab.cost(p, row) for row in stack])
        np.testing.assert_allclose(batched, one_by_one, rtol=1e-14, atol=0)


def test_chunked_evaluation_gives_the_same_gradient(monkeypatch):
    p = gradlab.debug_problem((4, 5, 3), 6, lam=0.2)
    theta = gradlab.random_init(p.network, seed=3)
    whole = gradlab.numeric_gradient(p, theta)
    monkeypatch.setattr(numeric, "BATCH_BYTES", 1)  # one row per chunk
    single = gradlab.numeric_gradient(p, theta)
    np.testing.assert_array_equal(whole.gradient, single.gradient)


def test_central_gradient_matches_a_plain_loop_written_here():
    p = gradlab.debug_problem((3, 5, 3), 5, lam=1.0)
    theta = gradlab.debug_init(p.network)
    h = numeric.default_steps(theta)
    loop = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h[i]
        loop[i] = (gradlab.cost(p, theta + e) - gradlab.cost(p, theta - e)) / (2 * h[i])
    np.testing.assert_array_equal(gradlab.numeric_gradient(p, theta).gradient, loop)


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"method": "secant"}, r"method must be one of 'central', 'forward', 'complex', 'richardson'; got method='secant'"),
        ({"step": -1.0}, r"step must be a positive number"),
        ({"step": [1e-3, 1e-3]}, r"step must be a positive number or 38 positive numbers"),
        ({"step": float("nan")}, r"step must hold only finite numbers"),
    ],
)
def test_numeric_gradient_validates_its_arguments(kwargs, pattern):
    p = gradlab.debug_problem()
    with pytest.raises(gradlab.GradlabError, match=pattern):
        gradlab.numeric_gradient(p, gradlab.debug_init(p.network), **kwargs)


@pytest.mark.parametrize("bad", ["softmax", None, 3, "ReLU"])
def test_network_validates_its_activation(bad):
    with pytest.raises(gradlab.GradlabError, match=r"activation must be one of 'sigmoid', 'tanh', 'relu'"):
        Network((3, 5, 3), bad)


def test_network_activation_is_hashable_and_in_repr():
    a, b = Network((3, 5, 3), "tanh"), Network((3, 5, 3), "tanh")
    assert a == b and hash(a) == hash(b) and a != Network((3, 5, 3))
    assert "activation='tanh'" in repr(a)
    assert Network((3, 5, 3)).activation == "sigmoid"


def test_networks_strategy_validates_activations():
    with pytest.raises(gradlab.GradlabError, match=r"activations must be one of"):
        networks(activations=("sigmoid", "swish"))
    with pytest.raises(gradlab.GradlabError, match=r"activations must be a non-empty sequence"):
        networks(activations=())


def test_complex_step_estimate_covers_gradients_near_underflow():
    # Weights ~1e-302 make the gradient ~4e-303: h g (h = 1e-20) is below the smallest
    # subnormal, so the complex step resolves it only to ~5e-304, which its estimate says.
    p = gradlab.Problem(gradlab.Network((1, 2)), np.zeros((4, 1)), np.array([0, 1, 0, 1]), lam=1.0)
    params = np.full(4, 1.50562272e-302)
    report = gradlab.compare(p, params, ("backprop", "numeric-complex"))
    assert report.ok, str(report)


def test_zero_gradient_with_round_off_on_the_exact_side_is_not_a_failure():
    # All-zero weights and balanced labels: the output-bias gradient is exactly 0, which
    # jax's float64 sums return as ~3e-17 while the complex step returns 0 (found by an
    # explore run). The exact side's round-off floor covers it.
    p = gradlab.Problem(Network((4, 6, 5, 2)), np.zeros((6, 4)), np.array([1, 1, 1, 0, 0, 0]))
    report = gradlab.compare(p, np.zeros(p.network.n_params), ("jax", "numeric-complex", "numeric-richardson"))
    assert report.ok, str(report)
