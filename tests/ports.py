"""Student-style ports of the course's neural-network exercise, in the conventions found
in the wild, written here in plain numpy (independent of gradlab): the oracles for
tests/test_check_conventions.py.

One core (:func:`core`) computes the cost and the per-matrix gradients of any depth; the
front doors below call it the way the ports do -- Octave's column-major unrolling with
labels 1..K returning (J, grad), a one-hot Y, a list of layer sizes, a class, and
per-matrix arguments and returns. Each takes ``bug=`` to plant one slip:

* ``"gprime"``: the first hidden layer's delta lacks g'(z) (the error enters at Theta1);
* ``"no_m"``: the data term is not divided by m (every layer m times too large);
* ``"reg_bias"``: the bias column is regularised too;
* ``"after100"``: only the first 100 examples enter the data term (right while m <= 100).
"""

import numpy as np
from scipy.special import expit

BUGS = (None, "gprime", "no_m", "reg_bias", "after100")

#: How many examples the "after100" bug looks at.
FIRST_EXAMPLES = 100


def _softplus(z):
    return np.logaddexp(0.0, z)


def core(thetas, X, Y, lam, bug=None):
    """``(J, [D1, D2, ...])``: the regularised cross-entropy and its gradient per matrix."""
    if bug not in BUGS:
        raise ValueError(f"unknown bug {bug!r}")
    m = X.shape[0]
    Xd, Yd = (X[:FIRST_EXAMPLES], Y[:FIRST_EXAMPLES]) if bug == "after100" else (X, Y)
    acts, zs = [Xd], []
    for i, th in enumerate(thetas):
        z = acts[-1] @ th[:, 1:].T + th[:, 0]
        zs.append(z)
        acts.append(expit(z))
    zL = zs[-1]
    J = np.sum(Yd * _softplus(-zL) + (1.0 - Yd) * _softplus(zL)) / m
    J += lam / (2.0 * m) * sum(np.sum(th[:, 1:] ** 2) for th in thetas)
    delta = acts[-1] - Yd
    grads = [None] * len(thetas)
    for l in range(len(thetas) - 1, -1, -1):
        A = np.hstack([np.ones((acts[l].shape[0], 1)), acts[l]])
        D = delta.T @ A
        if bug != "no_m":
            D = D / m
        reg = lam / m * thetas[l]
        if bug != "reg_bias":
            reg = reg.copy()
            reg[:, 0] = 0.0
        grads[l] = D + reg
        if l > 0:
            delta = delta @ thetas[l][:, 1:]
            if not (bug == "gprime" and l == 1):
                delta = delta * acts[l] * (1.0 - acts[l])
    return J, grads


def _unpack(params, sizes, order):
    params = np.asarray(params).ravel()
    out, at = [], 0
    for a, b in zip(sizes[:-1], sizes[1:]):
        n = b * (a + 1)
        out.append(params[at:at + n].reshape((b, a + 1), order=order))
        at += n
    return out


def _one_hot(y, K, first):
    return (np.asarray(y).reshape(-1, 1) == np.arange(first, first + K)).astype(float)


def octave_port(bug=None):
    """``nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)
    -> (J, grad)`` as Octave writes it: Theta(:) unrolling, labels 1..K (``y == 1:K``), a
    column gradient."""

    def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_):
        sizes = (input_layer_size, hidden_layer_size, num_labels)
        thetas = _unpack(nn_params, sizes, "F")
        J, grads = core(thetas, X, _one_hot(y, num_labels, 1), lambda_, bug)
        return J, np.concatenate([D.ravel(order="F") for D in grads]).reshape(-1, 1)

    return nnCostFunction


def onehot_port(bug=None):
    """``gradient(nn_params, input_layer_size, hidden_layer_size, num_labels, X, Y, lam)`` taking
    a one-hot Y and returning a row vector (1, P)."""

    def gradient(nn_params, input_layer_size, hidden_layer_size, num_labels, X, Y, lam):
        thetas = _unpack(nn_params, (input_layer_size, hidden_layer_size, num_labels), "C")
        _, grads = core(thetas, X, Y, lam, bug)
        return np.concatenate([D.ravel() for D in grads]).reshape(1, -1)

    return gradient


def layers_port(bug=None):
    """``backprop(params, layer_sizes, X, y, lam)`` for any depth, returning one gradient per
    matrix (labels 0..K-1)."""

    def backprop(params, layer_sizes, X, y, lam):
        thetas = _unpack(params, layer_sizes, "C")
        _, grads = core(thetas, X, _one_hot(y, layer_sizes[-1], 0), lam, bug)
        return grads

    return backprop


def class_port(bug=None):
    """``NeuralNet(sizes, X, y, lam).gradient(params) -> (J, grad)``, labels 1..K (10 for the
    digit 0, as the course's data)."""

    class NeuralNet:
        def __init__(self, sizes, X, y, lam):
            self.sizes, self.X, self.lam = list(sizes), X, lam
            self.Y = _one_hot(y, self.sizes[-1], 1)

        def gradient(self, params):
            _, grads = core(_unpack(params, self.sizes, "C"), self.X, self.Y, self.lam, bug)
            return self._cost(params), np.concatenate([D.ravel() for D in grads])

        def _cost(self, params):
            return core(_unpack(params, self.sizes, "C"), self.X, self.Y, self.lam, bug)[0]

    return NeuralNet


def matrices_port(bug=None):
    """``backprop(Theta1, Theta2, X, y, lam) -> (Theta1_grad, Theta2_grad)`` (labels 0..K-1)."""

    def backprop(Theta1, Theta2, X, y, lam):
        _, grads = core([Theta1, Theta2], X, _one_hot(y, Theta2.shape[0], 0), lam, bug)
        return grads[0], grads[1]

    return backprop
