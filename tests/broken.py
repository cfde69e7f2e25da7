"""Back-propagation written in the tests, correct and deliberately broken.

Plain numpy, independent of gradlab's own backprop: the oracles for test_check.py.
"""

import numpy as np
from scipy.special import expit


#: Hidden activations the broken back-propagations support: g, and g' from a = g(z).
_HIDDEN = {"sigmoid": (expit, lambda a: a * (1.0 - a)), "tanh": (np.tanh, lambda a: 1.0 - a * a)}


def backprop(*, gprime_missing_at=None, reg_bias=False, no_m=False, flip=False, transpose_layer=None,
             no_bias_forward=False, wrong_bias_sum=False):
    """A gradlab-signature gradient ``(problem, params)``; each keyword plants one bug.

    The hidden units are the problem's network's activation (sigmoid or tanh); the output
    units are sigmoid with the cross-entropy cost, as gradlab's.

    gprime_missing_at : int -- the hidden layer (2..L-1) whose delta lacks g'(z)
    reg_bias : regularise column 0 too
    no_m : forget the 1/m
    flip : delta_L = y - h
    transpose_layer : int -- return that layer's gradient transposed (a^T delta)
    no_bias_forward : forward pass without the bias weights
    wrong_bias_sum : bias gradient = mean of delta over the examples times 2
    """

    def grad(problem, params):
        net = problem.network
        thetas = net.unpack(params)
        X, Y, lam, m = problem.X, problem.Y, problem.lam, problem.m
        hidden, gprime = _HIDDEN[net.activation]
        acts = [X]
        for i, th in enumerate(thetas):
            bias = 0.0 if no_bias_forward else th[:, 0]
            g = expit if i + 1 == len(thetas) else hidden
            acts.append(g(acts[-1] @ th[:, 1:].T + bias))
        delta = (Y - acts[-1]) if flip else (acts[-1] - Y)
        grads = [None] * len(thetas)
        for l in range(len(thetas) - 1, -1, -1):
            A = np.hstack([np.ones((m, 1)), acts[l]])
            D = delta.T @ A
            if wrong_bias_sum and l == 0:
                D[:, 0] *= 2.0
            if not no_m:
                D = D / m
            reg = (lam / m) * thetas[l]
            if not reg_bias:
                reg = reg.copy()
                reg[:, 0] = 0.0
            D = D + reg
            if transpose_layer == l + 1:
                D = A.T @ delta / m + reg.T  # a^T delta: the transposed product
            grads[l] = D.ravel()
            if l > 0:
                delta = delta @ thetas[l][:, 1:]
                if gprime_missing_at != l + 1:
                    delta = delta * gprime(acts[l])
        return np.concatenate(grads)

    return grad


def _seed_forward(Theta1, Theta2, X):
    m = X.shape[0]
    a1 = np.hstack((np.ones((m, 1)), X))
    z2 = a1 @ Theta1.T
    a2 = np.hstack((np.ones((m, 1)), expit(z2)))
    z3 = a2 @ Theta2.T
    return a1, z2, a2, expit(z3)


def seed_gradient(copy=True):
    """The seed's nnGradient, a loop over the examples; ``copy=False`` is the seed's bug:
    the reshaped matrices are views of nn_params, and zeroing their bias column writes
    into the caller's vector."""

    def nnGradient(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda):
        n1 = hidden_layer_size * (input_layer_size + 1)
        Theta1 = nn_params[0:n1].reshape(hidden_layer_size, input_layer_size + 1)
        Theta2 = nn_params[n1:].reshape(num_labels, hidden_layer_size + 1)
        if copy:
            Theta1, Theta2 = Theta1.copy(), Theta2.copy()
        m = X.shape[0]
        class_y = np.zeros((m, num_labels))
        for i in range(num_labels):
            class_y[:, i] = (np.ravel(y) == i).astype(np.int32)
        a1, z2, a2, h = _seed_forward(Theta1, Theta2, X)
        Theta1_grad = np.zeros(Theta1.shape)
        Theta2_grad = np.zeros(Theta2.shape)
        for i in range(m):
            delta3 = (h[i, :] - class_y[i, :]).reshape(1, -1)
            Theta2_grad = Theta2_grad + delta3.T @ a2[i, :].reshape(1, -1)
            g = expit(z2[i, :])
            delta2 = (delta3 @ Theta2[:, 1:]) * (g * (1 - g))
            Theta1_grad = Theta1_grad + delta2.T @ a1[i, :].reshape(1, -1)
        Theta1[:, 0] = 0
        Theta2[:, 0] = 0
        grad = (np.vstack((Theta1_grad.reshape(-1, 1), Theta2_grad.reshape(-1, 1)))
                + Lambda * np.vstack((Theta1.reshape(-1, 1), Theta2.reshape(-1, 1)))) / m
        return np.ravel(grad)

    return nnGradient


def seed_cost(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda):
    """The seed's nnCostFunction (log of h; fine while no sigmoid saturates)."""
    n1 = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[0:n1].reshape(hidden_layer_size, input_layer_size + 1)
    Theta2 = nn_params[n1:].reshape(num_labels, hidden_layer_size + 1)
    m = X.shape[0]
    Y = np.zeros((m, num_labels))
    Y[np.arange(m), np.ravel(y).astype(int)] = 1
    h = _seed_forward(Theta1, Theta2, X)[3]
    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
    reg = np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2)
    return J + Lambda / (2 * m) * reg
