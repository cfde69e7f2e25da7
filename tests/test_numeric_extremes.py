"""Numerical extremes: huge and tiny weights and inputs, constant features, one example,
one class, one output unit.

The rule per case: the cost and every gradient source give finite values with no warning
(pytest turns warnings into errors), back-propagation agrees with jax and with finite
differences (``compare(...).ok``, the project's own criteria); or the input is refused with
a GradlabError that names what is too large. Each test says which, and why.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradlab
from gradlab.data import Scaling, train_test_split
from gradlab.explain import explain
from gradlab.steps import step_curve

#: Every source: the two exact ones, and finite differences both subtractive and not.
ALL = ("backprop", "jax", "numeric", "numeric-complex")

SMALLEST_SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)
FLOAT_MAX = float(np.finfo(np.float64).max)


def _data(m=6, n=3, K=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(m, n)), np.arange(m) % K


def _assert_all_agree_and_finite(problem, params, sources=ALL):
    report = gradlab.compare(problem, params, sources)
    assert math.isfinite(report.cost)
    for name, g in report.gradients.items():
        assert np.all(np.isfinite(g)), name
    failing = [(p.a, p.b, p.worst) for p in report.pairs if not p.ok]
    assert not failing, failing


# ------------------------------------------------------------------ weights up to 1e4


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("scale", [1e2, 1e4, -1e4])
def test_saturating_random_weights_give_finite_agreeing_gradients(activation, scale):
    # |z| up to ~4e4: every sigmoid saturates; the log-sigmoid cost stays finite and the
    # output delta keeps its tiny terms, so all sources still agree.
    X, y = _data()
    net = gradlab.Network((3, 5, 3), activation)
    params = scale * np.random.default_rng(1).uniform(-1.0, 1.0, net.n_params)
    _assert_all_agree_and_finite(gradlab.Problem(net, X, y, lam=1.0), params)


@pytest.mark.parametrize("weight", [1e4, -1e4])
def test_constant_extreme_weights_give_finite_agreeing_gradients(weight):
    # Every unit saturated the same way: the wrong outputs have a cost of ~|z| each.
    X, y = _data()
    net = gradlab.Network((3, 5, 3))
    _assert_all_agree_and_finite(gradlab.Problem(net, X, y), np.full(net.n_params, weight))


@settings(max_examples=40)  # each example runs jax and finite differences; 40 cover the scales
@given(log_w=st.floats(-3.0, 4.0), log_x=st.floats(-300.0, 300.0), seed=st.integers(0, 2**16))
def test_any_scale_of_weights_and_inputs_gives_agreeing_exact_gradients(log_w, log_x, seed):
    # Weights 1e-3..1e4 and inputs 1e-300..1e300: far inside float64's range by the
    # bounds of network._check_magnitudes, so never refused, always finite.
    rng = np.random.default_rng(seed)
    net = gradlab.Network((3, 4, 2))
    X = 10.0**log_x * rng.uniform(-1.0, 1.0, (4, 3))
    params = 10.0**log_w * rng.uniform(-1.0, 1.0, net.n_params)
    _assert_all_agree_and_finite(gradlab.Problem(net, X, np.arange(4) % 2, lam=0.5), params,
                                 ("backprop", "jax"))


# ----------------------------------------------------------------------- huge inputs


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("magnitude", [1e150, 1e300, 1e306])
def test_huge_inputs_give_finite_agreeing_gradients(magnitude, activation):
    # The first layer's z reaches ~0.4 |X| (debug weights are ~0.1): finite up to 1e306.
    # Gradient entries reach |X| too; their norms are taken scaled, not squared as they are.
    X, y = _data()
    net = gradlab.Network((3, 5, 3), activation)
    _assert_all_agree_and_finite(gradlab.Problem(net, X * magnitude, y), gradlab.debug_init(net))


@pytest.mark.parametrize("source", ALL)
def test_inputs_near_float_max_are_refused_by_every_source(source):
    # X @ Theta would overflow to inf without a warning and turn into NaN (0 * inf) in the
    # cost: refused before the product, naming the layer and the remedy.
    X, y = _data()
    p = gradlab.Problem((3, 5, 3), X * FLOAT_MAX, y)
    with pytest.raises(gradlab.GradlabError, match=r"too large to evaluate the cost in float64: the pre-activations of layer 2 could reach.*max \|X\| = 1\.\d+e\+308.*--scale"):
        gradlab.gradient(p, gradlab.debug_init(p.network), source)


def test_cost_near_float_max_is_refused():
    X, y = _data()
    p = gradlab.Problem((3, 5, 3), X * FLOAT_MAX, y)
    with pytest.raises(gradlab.GradlabError, match=r"too large to evaluate the cost in float64"):
        gradlab.cost(p, gradlab.debug_init(p.network))


def test_gradient_sum_over_many_examples_that_would_overflow_is_refused():
    # z stays finite (tiny first-layer weights), but D_1 sums m products delta * x of
    # ~1e306 each (delta_2 ~ 0.1: the second layer's weights are the debug ones).
    X, y = _data(m=6000)
    net = gradlab.Network((3, 5, 3))
    params = gradlab.debug_init(net)
    params[: 5 * 4] *= 1e-10
    with pytest.raises(gradlab.GradlabError, match=r"the gradient of Theta1 \(a sum over the m=6000 examples\)"):
        gradlab.gradient(gradlab.Problem(net, X * 1e306, y), params)


def test_regularisation_of_weights_whose_squares_overflow_is_refused():
    # Inputs of zero keep every z at the bias; the sum of squared 1e160 weights overflows.
    net = gradlab.Network((3, 2))
    p = gradlab.Problem(net, np.zeros((2, 3)), [0, 1], lam=1.0)
    params = np.zeros(net.n_params)
    params[1] = 1e160
    with pytest.raises(gradlab.GradlabError, match=r"the regularisation's sum of squared weights"):
        gradlab.gradient(p, params, "jax")


def test_steps_and_explain_with_huge_inputs_are_finite():
    X, y = _data()
    p = gradlab.Problem((3, 5, 3), X * 1e300, y)
    theta = gradlab.debug_init(p.network)
    curve = step_curve(p, theta, steps=[1e-3, 1e-6])
    assert all(np.all(np.isfinite(e)) for e in curve.errors.values())
    assert explain(p, theta).ok


def test_explain_with_saturating_weights_agrees():
    # Theta1's gradient is ~1e-37 (saturated hidden units): judged by its round-off floor.
    X, y = _data()
    p = gradlab.Problem((3, 5, 3), X, y)
    assert explain(p, 1e4 * np.random.default_rng(0).uniform(-1.0, 1.0, 38)).ok


# ----------------------------------------------------------------------- tiny inputs


@pytest.mark.parametrize("magnitude", [1e-300, 1e-310, SMALLEST_SUBNORMAL])
def test_tiny_and_subnormal_inputs_give_finite_agreeing_gradients(magnitude):
    # The weight gradients of Theta1 are ~|X| (or exactly 0): no overflow, no warning.
    X, y = _data()
    net = gradlab.Network((3, 5, 3))
    _assert_all_agree_and_finite(gradlab.Problem(net, np.sign(X) * magnitude, y), gradlab.debug_init(net))


# ----------------------------------------------------------------- constant features


def test_scaling_leaves_zero_variance_columns_finite():
    X = np.array([[0.0, 2.0, 7.0], [0.0, 4.0, 7.0], [0.0, 6.0, 7.0]])
    out = Scaling.fit(X).apply(X)
    np.testing.assert_array_equal(out[:, [0, 2]], 0.0)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("magnitude", [1e300, FLOAT_MAX])
def test_scaling_of_inputs_near_float_max_does_not_overflow(magnitude):
    # mean and std of such columns overflow when summed as they are: fitted on the columns
    # divided by their largest magnitude instead.
    X = np.array([[1.0, 1.0], [-1.0, 1.0], [0.5, 1.0]]) * magnitude
    sc = Scaling.fit(X)
    out = sc.apply(X)
    assert np.all(np.isfinite(sc.mean)) and np.all(np.isfinite(sc.std))
    np.testing.assert_allclose(out[:, 0], (X[:, 0] / magnitude - 1 / 6) / np.std(X[:, 0] / magnitude))
    np.testing.assert_array_equal(out[:, 1], 0.0)


def test_scaling_refuses_new_inputs_that_overflow_when_standardised():
    sc = Scaling.fit(np.array([[0.0], [1e-100]]))  # std 5e-101
    with pytest.raises(gradlab.GradlabError, match=r"X must stay finite when standardised.*X\[0, 0\]=1e\+300"):
        sc.apply(np.array([[1e300]]))


def test_training_with_a_constant_feature_and_scaling_is_finite():
    X, y = _data(m=12, n=4, K=2)
    X[:, 2] = 3.0
    r = gradlab.train(X, y, hidden=3, scale=True, maxiter=10, progress=False)
    assert np.all(np.isfinite(r.history.cost)) and np.all(np.isfinite(r.params))


def test_training_on_inputs_near_float_max_with_scaling_is_finite():
    X, y = _data(m=12, n=3, K=2)
    r = gradlab.train(X * 1e307, y, hidden=3, scale=True, maxiter=10, progress=False)
    assert np.all(np.isfinite(r.history.cost)) and r.accuracy(X * 1e307, y) > 0


# ----------------------------------------------------------------------- one example


def test_one_example_gives_finite_agreeing_gradients():
    X, y = _data(m=1)
    net = gradlab.Network((3, 5, 3))
    _assert_all_agree_and_finite(gradlab.Problem(net, X, y, lam=1.0), gradlab.debug_init(net))


def test_training_on_one_example_is_finite():
    # One example has one label: K = label + 1 outputs, the network learns that label.
    X, _ = _data(m=1)
    r = gradlab.train(X, [1], hidden=2, maxiter=10, scale=True, progress=False)
    assert np.all(np.isfinite(r.history.cost)) and r.predict(X).tolist() == [1]


def test_split_of_one_example_keeps_it_for_training():
    s = train_test_split(np.ones((1, 3)), np.array([0]), test_fraction=0.2, seed=0)
    assert s.y_train.tolist() == [0] and s.y_test.size == 0


# ------------------------------------------------------------------------- one class


def test_labels_of_one_class_give_finite_agreeing_gradients():
    X, _ = _data()
    net = gradlab.Network((3, 5, 3))
    _assert_all_agree_and_finite(gradlab.Problem(net, X, np.ones(6, dtype=int)), gradlab.debug_init(net))


def test_training_on_label_zero_alone_is_refused():
    # K = max(label) + 1 = 1: a classifier with one class has nothing to learn.
    X, _ = _data()
    with pytest.raises(gradlab.GradlabError, match=r"y must hold at least two classes.*got only label 0"):
        gradlab.train(X, np.zeros(6, dtype=int), progress=False)


def test_one_stray_huge_label_is_refused_naming_the_label_behind_the_output_units():
    # K = max(label) + 1: a single label 10**9 asks for a billion output units.
    X, _ = _data()
    y = np.array([0, 1, 0, 1, 10**9, 1])
    with pytest.raises(gradlab.GradlabError, match=r"needs about .*the 1000000001 output units come from the "
                                                     r"largest label, y\.max\(\)=1000000000.*3 distinct labels"):
        gradlab.train(X, y, progress=False)


# ---------------------------------------------------------------------- one output


@pytest.mark.parametrize("targets", ["labels", "probabilities"])
def test_one_output_unit_gives_finite_agreeing_gradients(targets):
    # K = 1 is a single binary cross-entropy: with labels every target is 1.
    X, _ = _data()
    y = np.zeros(6, dtype=int) if targets == "labels" else np.random.default_rng(2).uniform(0, 1, (6, 1))
    net = gradlab.Network((3, 5, 1))
    _assert_all_agree_and_finite(gradlab.Problem(net, X, y, lam=0.3), gradlab.debug_init(net))
