"""Network layout, initialisers, the cost's numerics, predict and accuracy."""

import numpy as np
import pytest

import gradlab
from gradlab._cost import cost as _cost, sigmoid as _sigmoid


def test_layout_matches_seed_row_major_flattening():
    net = gradlab.Network((3, 5, 3))
    params = np.arange(net.n_params, dtype=float)
    theta1, theta2 = net.unpack(params)
    assert theta1.shape == (5, 4) and theta2.shape == (3, 6)
    # The seed: Theta1 = params[:s2*(s1+1)].reshape(s2, s1+1), row by row.
    np.testing.assert_array_equal(theta1, params[:20].reshape(5, 4))
    np.testing.assert_array_equal(theta2, params[20:].reshape(3, 6))


def test_unpack_returns_views_into_the_vector():
    net = gradlab.Network((2, 3, 2))
    params = np.zeros(net.n_params)
    net.unpack(params)[1][0, 0] = 7.0
    assert params[net.offsets[1]] == 7.0


def test_pack_inverts_unpack_for_a_deep_network():
    net = gradlab.Network((4, 6, 6, 5, 2))
    params = gradlab.random_init(net, seed=3)
    np.testing.assert_array_equal(net.pack(net.unpack(params)), params)


def test_locate_names_layer_row_and_column():
    net = gradlab.Network((3, 5, 3))
    assert net.locate(0) == (1, 0, 0)
    assert net.locate(5) == (1, 1, 1)
    assert net.locate(20) == (2, 0, 0)
    assert net.locate(37) == (2, 2, 5)


def test_debug_init_is_sin_over_ten_layer_by_layer():
    net = gradlab.Network((3, 5, 3))
    params = gradlab.debug_init(net)
    theta1, theta2 = net.unpack(params)
    np.testing.assert_allclose(theta1.ravel(), np.sin(np.arange(1, 21)) / 10)
    np.testing.assert_allclose(theta2.ravel(), np.sin(np.arange(1, 19)) / 10)


def test_random_init_bounds_and_repeatability():
    net = gradlab.Network((400, 25, 10))
    a = gradlab.random_init(net, seed=1)
    b = gradlab.random_init(net, seed=1)
    np.testing.assert_array_equal(a, b)
    theta1, theta2 = net.unpack(a)
    assert np.abs(theta1).max() <= np.sqrt(6 / (400 + 25))
    assert np.abs(theta2).max() <= np.sqrt(6 / (25 + 10))
    # Uniform on [-eps, eps]: the extremes are nearly reached.
    assert np.abs(theta1).max() > 0.99 * np.sqrt(6 / (400 + 25))
    assert not np.array_equal(a, gradlab.random_init(net, seed=2))


@pytest.mark.parametrize(
    "z, expected",
    [(-1.0, 0.196612), (-0.5, 0.235004), (0.0, 0.25), (0.5, 0.235004), (1.0, 0.196612)],
)
def test_sigmoid_gradient_published_values(z, expected):
    # Published values from the course exercise: g'(z) = g(z)(1 - g(z)).
    g = _sigmoid(np, np.array(z))
    assert round(float(g * (1 - g)), 6) == expected


def test_sigmoid_gradient_published_values_via_jax():
    import jax

    from gradlab.sources.autodiff import x64

    with x64():
        d = jax.vmap(jax.grad(lambda z: _sigmoid(jax.numpy, z)))(
            jax.numpy.array([-1.0, -0.5, 0.0, 0.5, 1.0])
        )
    np.testing.assert_allclose(np.asarray(d), [0.196612, 0.235004, 0.25, 0.235004, 0.196612], atol=5e-7)


def test_cost_matches_naive_formula_on_moderate_inputs():
    # Independent oracle: the textbook formula with log(h) works when nothing saturates.
    p = gradlab.debug_problem((3, 5, 3), 5, lam=3.0)
    params = gradlab.debug_init(p.network)
    t1, t2 = p.network.unpack(params)
    a1 = np.hstack([np.ones((5, 1)), p.X])
    a2 = np.hstack([np.ones((5, 1)), 1 / (1 + np.exp(-a1 @ t1.T))])
    h = 1 / (1 + np.exp(-a2 @ t2.T))
    Y = np.eye(3)[p.labels]
    naive = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / 5
    naive += 3.0 / (2 * 5) * (np.sum(t1[:, 1:] ** 2) + np.sum(t2[:, 1:] ** 2))
    assert gradlab.cost(p, params) == pytest.approx(naive, rel=1e-13)


@pytest.mark.parametrize("scale", [1e2, 1e3, 1e4])
def test_cost_finite_and_silent_when_units_saturate(scale):
    net = gradlab.Network((2, 3, 2))
    params = np.full(net.n_params, scale)
    X = np.array([[1.0, -1.0], [1.0, 1.0]])
    p = gradlab.Problem(net, X, [0, 1], lam=0.0)
    # Underflow of exp(-|z|) to 0 is the intended, harmless limit; anything else is a bug.
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        J = gradlab.cost(p, params)
    assert np.isfinite(J)
    # Output z ~ 4*scale for both rows; the wrong class costs about z, the right one ~0.
    assert J == pytest.approx(4 * scale, rel=1e-6)


def test_cost_with_regularisation_ignores_bias_column():
    net = gradlab.Network((1, 1))
    X = np.array([[0.0]])
    p0 = gradlab.Problem(net, X, np.array([[0.5]]), lam=0.0)
    p1 = gradlab.Problem(net, X, np.array([[0.5]]), lam=4.0)
    # params = [bias, weight]; with x = 0 only the bias reaches the output.
    params = np.array([0.0, 3.0])
    assert gradlab.cost(p1, params) - gradlab.cost(p0, params) == pytest.approx(4.0 / 2 * 9.0)
    params = np.array([3.0, 0.0])
    assert gradlab.cost(p1, params) == gradlab.cost(p0, params)


def test_target_matrix_allows_multilabel_and_all_zero_rows():
    net = gradlab.Network((2, 3))
    Y = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.25, 0.5, 1.0]])
    p = gradlab.Problem(net, np.ones((3, 2)), Y)
    np.testing.assert_array_equal(p.Y, Y)
    assert p.labels is None


def test_problem_copies_and_freezes_data():
    X = np.ones((2, 3))
    y = np.array([0, 1])
    p = gradlab.Problem((3, 2), X, y)
    X[0, 0] = 5.0
    y[0] = 1
    assert p.X[0, 0] == 1.0 and p.labels[0] == 0
    with pytest.raises(ValueError):
        p.X[0, 0] = 2.0


def test_predict_and_accuracy():
    net = gradlab.Network((2, 2))
    # Output unit 0 follows x0, unit 1 follows x1.
    params = net.pack([np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])])
    X = np.array([[2.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    np.testing.assert_array_equal(gradlab.predict(net, params, X), [0, 1, 0])
    assert gradlab.accuracy(net, params, X, [0, 1, 1]) == pytest.approx(2 / 3)


def test_jax_and_numpy_cost_agree_on_the_seed_check():
    import jax.numpy as jnp

    from gradlab.sources.autodiff import x64

    p = gradlab.debug_problem(lam=1.0)
    params = gradlab.debug_init(p.network)
    with x64():
        Jj = float(_cost(jnp, p.network, jnp.asarray(params), jnp.asarray(p.X), jnp.asarray(p.Y), p.lam))
    assert Jj == pytest.approx(gradlab.cost(p, params), rel=1e-12)
