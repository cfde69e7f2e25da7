"""Hand-written back-propagation, vectorised over the examples, numpy only.

This module never imports jax. It evaluates the shared forward pass and cost
(:mod:`gradlab._cost`) with numpy and sends the errors back layer by layer:

    delta_L = a_L - y                                   (output layer)
    delta_l = (delta_{l+1} Theta_l[:, 1:]) * g'(z_l)    (hidden layers), g' from the activation table
    D_l     = delta_{l+1}^T [1, a_l] / m + (lam / m) Theta_l with column 0 taken as zero

The seed loops over the examples and adds m outer products; the matrix form below is
the same sum done in one product per layer.

Speed and memory
----------------
One gradient costs the matrix products a forward and a backward pass need (two per
layer, one fewer for the first layer, which needs no delta) plus a few elementwise
passes over each layer's activations. To stay near that floor:

* the forward pass writes each hidden activation over its pre-activation
  (``keep_z=False``), so the only m x s_l arrays alive are the activations that the
  backward pass must have;
* the backward pass consumes them: once ``D_l`` is formed, ``a_l`` is turned into
  ``g'(z_l)`` in place and multiplies the new delta (no separate ``g'`` temporary);
* bias columns are a matrix-vector product with a cached vector of ones (``1^T delta``,
  one BLAS call) rather than a reduction;
* every m x s array (z, a, delta) is column-major -- ``z^T = Theta a^T`` is the faster
  BLAS orientation for tall data -- so elementwise passes run at memory speed; the
  weights are read as strided views (BLAS takes them in place, no copy).

:func:`backward` with ``keep=True`` runs the same pass but keeps every intermediate
(for :mod:`gradlab.explain`), at the price of the copies that requires.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gradlab import _cost, _judge, _threads
from gradlab.network import Problem

__all__ = ["gradient", "value_and_gradient", "backward", "Backward", "output_delta"]

#: The cost's cross-entropy is summed over blocks of output units holding about this
#: many entries (at least one unit; see _cost.cost_from_forward): its temporaries
#: are then a few m x (a few) columns rather than a few m x K arrays, which for 400-25-10
#: would outweigh the hidden activations. Much below ~16,000 entries a block's fixed
#: overhead (some microseconds per numpy call) starts to show.
_COST_BLOCK_ENTRIES = 16384


class Backward(NamedTuple):
    """Everything one back-propagation pass computed (see :func:`backward`)."""

    J: float
    grad: np.ndarray
    zs: list
    acts: list
    deltas: list
    backs: list
    gprimes: list


def _prepared(problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-problem constants, made once and cached on the problem (read-only): a vector of
    m ones for the bias-column sums, and Y and 1 - Y in column-major order, the layout of
    the forward pass's z (elementwise work on matching layouts runs at memory speed)."""
    def build():
        ones = np.ones(problem.m)
        Y = np.asfortranarray(problem.Y)
        one_minus_Y = np.asfortranarray(1.0 - problem.Y)
        for arr in (ones, Y, one_minus_Y):
            arr.flags.writeable = False
        return ones, Y, one_minus_Y

    return problem.prepared("backprop", build)


def output_delta(z: np.ndarray, Y: np.ndarray, one_minus_Y: np.ndarray) -> np.ndarray:
    """dJ/dz_L * m = g(z) - y, written over ``z`` (which the caller no longer needs).

    Computed as (1 - y) g(z) - y g(-z), so that a saturated, correctly classified unit
    keeps its tiny gradient (-g(-z)) instead of rounding to 0 as g(z) - 1 would.
    """
    other = _cost.sigmoid(np, z, of_negative=True)  # g(-z), a new array
    other *= Y
    _cost.sigmoid(np, z, out=z)                  # g(z)
    z *= one_minus_Y
    z -= other
    return z


def backward(problem: Problem, params: np.ndarray, keep: bool = False):
    """One forward and one backward pass (inputs already validated), with the BLAS threads
    chosen for the problem's products (:mod:`gradlab._threads`).

    With ``keep=False`` returns ``(J, grad)``, consuming the intermediates as it goes.
    With ``keep=True`` returns a :class:`Backward`: ``zs[i]`` is z_{i+2} (shape
    ``(m, s_{i+2})``), ``acts[i]`` is a_{i+1} without the bias unit (``acts[0]`` is X),
    ``deltas[i]`` is back-propagation's delta_{i+2}, one row per example, and for the
    hidden layers ``backs[i] = delta_{i+3} Theta_{i+2}[:, 1:]`` and ``gprimes[i] =
    g'(z_{i+2})``, the two factors of ``deltas[i]``. A row of delta_l is the derivative of
    *that example's* loss with respect to z_l, so it is m times dJ/dz_l (J is the mean
    over the examples); :mod:`gradlab.explain` shows the deltas next to jax's dJ/dz.
    """
    with _threads.for_problem(problem):
        return _backward_pass(problem, params, keep)


def _backward_pass(problem: Problem, params: np.ndarray, keep: bool):
    """The pass of :func:`backward`."""
    network, lam, m = problem.network, problem.lam, problem.m
    _judge.check_magnitudes(problem, params)
    thetas = _cost.unpack(network, params)
    ones, Y, one_minus_Y = _prepared(problem)
    times_g_prime = _cost.ACTIVATIONS[network.activation].times_gprime

    # Forward: the shared pass; acts[l] = a_l (acts[0] is X). Unless kept, each hidden z
    # is overwritten by its activation.
    zs, acts = _cost.forward(np, network, params, problem.X, keep_z=keep)
    if keep:
        record = Backward(None, None, list(zs), [a.copy() for a in acts], [None] * len(thetas),
                           [None] * (len(thetas) - 1), [None] * (len(thetas) - 1))
        z_out = zs[-1].copy(order="K")  # same layout, so the same BLAS sums as keep=False
    else:
        z_out = zs.pop()
    columns = max(1, _COST_BLOCK_ENTRIES // m)
    J = float(_cost.cost_from_forward(np, network, params, z_out, Y, lam, columns=columns))
    delta = output_delta(z_out, Y, one_minus_Y)  # overwrites z_out
    del z_out

    grad = np.empty(network.n_params)
    grads = _cost.unpack(network, grad)  # views: filling them fills ``grad``

    for layer in range(len(thetas) - 1, -1, -1):
        theta, D = thetas[layer], grads[layer]
        a = acts.pop()  # a_l, the input of Theta_l, stored by the forward pass
        if keep:
            record.deltas[layer] = delta.copy()
        # Gradient of Theta_l: delta_{l+1}^T [1, a_l] / m (+ regularisation off column 0).
        np.matmul(ones, delta, out=D[:, 0])      # bias column: the bias unit is a constant 1
        np.matmul(delta.T, a, out=D[:, 1:])      # delta_{l+1}^T a_l
        D /= m
        if lam:
            D[:, 1:] += (lam / m) * theta[:, 1:]
        if layer > 0:
            # Back through Theta_l (its transpose): delta_{l+1} Theta_l[:, 1:], formed
            # transposed so that it has the layout of a_l (column-major).
            delta = (theta[:, 1:].T @ delta.T).T
            if keep:
                gprime = np.ones_like(a)
                times_g_prime(gprime, a.copy())
                record.backs[layer - 1], record.gprimes[layer - 1] = delta.copy(), gprime
            # ... then through the activation below: times g'(z_l), from a_l (ours now).
            times_g_prime(delta, a)
        del a
    if keep:
        return record._replace(J=J, grad=grad)
    return J, grad


def value_and_gradient(problem: Problem, params: np.ndarray) -> tuple[float, np.ndarray]:
    """Cost and gradient from one forward and one backward pass (inputs already validated)."""
    return backward(problem, params)


def gradient(problem: Problem, params: np.ndarray) -> np.ndarray:
    """The back-propagated gradient (the ``"backprop"`` source)."""
    return backward(problem, params)[1]
