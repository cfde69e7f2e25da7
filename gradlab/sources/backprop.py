"""Hand-written back-propagation, vectorised over the examples, numpy only.

This module never imports jax. It evaluates the shared forward pass and cost
(:mod:`gradlab.network`) with numpy and sends the errors back layer by layer:

    delta_L = a_L - y                                   (output layer)
    delta_l = (delta_{l+1} Theta_l[:, 1:]) * g'(z_l)    (hidden layers), g' from the table below
    D_l     = delta_{l+1}^T [1, a_l] / m + (lam / m) Theta_l with column 0 taken as zero

The seed loops over the examples and adds m outer products; the matrix form below is
the same sum done in one product per layer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gradlab.network import Problem, _cost_from_forward, _forward, _sigmoid, _unpack

# Local derivative g'(z) of each hidden activation, beside its forward definition (in
# gradlab.network.ACTIVATIONS), from what the forward pass stored: z and a = g(z).
#   sigmoid  a = 1 / (1 + e^-z)       g'(z) = a (1 - a)
#   tanh     a = tanh z               g'(z) = 1 - a^2
#   relu     a = z if z > 0 else 0    g'(z) = 1 if z > 0 else 0   (0 at the kink, as jax)
_LOCAL_DERIVATIVE = {
    "sigmoid": lambda z, a: a * (1.0 - a),
    "tanh": lambda z, a: 1.0 - a * a,
    "relu": lambda z, a: (z > 0).astype(np.float64),
}


class _Backward(NamedTuple):
    """Everything one back-propagation pass computed (see :func:`_backward`)."""

    J: float
    grad: np.ndarray
    zs: list
    acts: list
    deltas: list
    backs: list
    gprimes: list


def _backward(problem: Problem, params: np.ndarray):
    """One forward and one backward pass, keeping every intermediate (inputs already validated).

    Returns a :class:`_Backward`: ``zs[i]`` is z_{i+2} (shape ``(m, s_{i+2})``), ``acts[i]``
    is a_{i+1} without the bias unit (``acts[0]`` is X), ``deltas[i]`` is
    back-propagation's delta_{i+2}, one row per example, and for the hidden layers
    ``backs[i] = delta_{i+3} Theta_{i+2}[:, 1:]`` and ``gprimes[i] = g'(z_{i+2})``, the two
    factors of ``deltas[i]``. A row of delta_l is the derivative
    of *that example's* loss with respect to z_l, so it is m times dJ/dz_l (J is the mean
    over the examples); :mod:`gradlab.explain` shows the deltas next to jax's dJ/dz.
    """
    network, Y, lam = problem.network, problem.Y, problem.lam
    m = problem.m
    thetas = _unpack(network, params)
    g_prime = _LOCAL_DERIVATIVE[network.activation]

    # Forward: the shared pass stores z_{l+1} and a_l for every layer.
    zs, acts = _forward(np, network, params, problem.X)
    z_out = zs[-1]
    J = float(_cost_from_forward(np, network, params, z_out, Y, lam))

    grad = np.empty(network.n_params)
    grads = _unpack(network, grad)  # views: filling them fills ``grad``
    deltas = [None] * len(thetas)
    backs = [None] * (len(thetas) - 1)
    gprimes = [None] * (len(thetas) - 1)

    # Output layer: d(cross-entropy)/dz_L = g(z_L) - y, written (1 - y) g(z) - y g(-z) so
    # that a saturated, correctly classified unit gives its tiny gradient, not 0.
    delta = (1.0 - Y) * _sigmoid(np, z_out) - Y * _sigmoid(np, -z_out)

    for layer in range(len(thetas) - 1, -1, -1):
        deltas[layer] = delta
        theta, a, D = thetas[layer], acts[layer], grads[layer]
        # Stored by the forward pass: a_l (input of this layer). Gradient of Theta_l:
        D[:, 0] = delta.sum(axis=0)          # bias column: the bias unit is a constant 1
        D[:, 1:] = delta.T @ a               # delta_{l+1}^T a_l
        D /= m
        if lam:
            D[:, 1:] += (lam / m) * theta[:, 1:]   # regularisation skips column 0
        if layer > 0:
            # Back through Theta_l (a matrix product: its transpose) and the activation of
            # the layer below (g'(z_l) from the z_l and a_l the forward pass stored).
            back = delta @ theta[:, 1:]
            gprime = g_prime(zs[layer - 1], a)
            delta = back * gprime
            backs[layer - 1], gprimes[layer - 1] = back, gprime
    return _Backward(J, grad, zs, acts, deltas, backs, gprimes)


def value_and_gradient(problem: Problem, params: np.ndarray) -> tuple[float, np.ndarray]:
    """Cost and gradient from one forward and one backward pass (inputs already validated)."""
    bw = _backward(problem, params)
    return bw.J, bw.grad


def gradient(problem: Problem, params: np.ndarray) -> np.ndarray:
    """The back-propagated gradient (the ``"backprop"`` source)."""
    return value_and_gradient(problem, params)[1]
