"""The ``"backprop"`` Hessian-vector product: Pearlmutter's R-operator, numpy only.

``R{f} = d/dr f(theta + r v)`` at ``r = 0`` is the derivative of any quantity of the
gradient computation along the direction v. Applied to the gradient itself it gives
``R{dJ/dtheta} = H v`` exactly, for about the price of two gradients, without forming H
(Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6, 1994).

The R-pass is the chain rule applied once more, to every line of back-propagation
(:mod:`gradlab.sources.backprop`): R is linear and obeys the product rule, and
``R{theta} = v``. Per layer ``l`` (``W = Theta_l[:, 1:]``, ``b = Theta_l[:, 0]``, and
``V``, ``VW``, ``Vb`` the same views of v), side by side::

    forward                                  R-forward
    a_1 = X                                  Ra_1 = 0
    z_{l+1} = a_l W^T + b                    Rz_{l+1} = Ra_l W^T + a_l VW^T + Vb
    a_{l+1} = g(z_{l+1})                     Ra_{l+1} = g'(z_{l+1}) Rz_{l+1}

    backward (delta = m dJ/dz)               R-backward
    delta_L = g(z_L) - y                     Rdelta_L = g'(z_L) Rz_L    (output sigmoid)
    e_l = delta_{l+1} W                      Re_l = Rdelta_{l+1} W + delta_{l+1} VW
    delta_l = e_l g'(z_l)                    Rdelta_l = Re_l g'(z_l) + e_l g''(z_l) Rz_l
    D_l = (delta^T [1, a_l]) / m + ...       RD_l = (Rdelta^T [1, a_l] + delta^T [0, Ra_l]) / m
          (lam/m) Theta_l, column 0 zero            + (lam/m) V, column 0 zero

``RD_l`` are the blocks of ``H v``. The forward quantities come from the shared forward
pass (:func:`gradlab._cost.forward`), g' and g'' from the activation table
(:data:`gradlab._cost.ACTIVATIONS`, ``first_second``), the output delta from
back-propagation (:func:`gradlab.sources.backprop.output_delta`); this module never
evaluates the cost and never imports jax.

What it costs: besides the gradient's forward pass, the R-forward pass does one product per
layer with the activations (``a_l VW^T``) and one with the weights (``Ra_l W^T``, none for
the first layer); the backward side forms ``e`` and ``Re`` (three products per hidden
layer) and ``RD`` (two per layer, one for the first, where ``Ra_1 = 0``). The first
layer's weight gradient ``delta_2^T X`` -- for wide inputs the largest product of a
gradient -- is not needed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gradlab import _cost, _judge, _threads
from gradlab.network import Problem
from gradlab.sources.backprop import output_delta


class RPass(NamedTuple):
    """Every quantity of one R-pass, for :mod:`gradlab.explain` and the tests.

    Lists run over the layers as the forward pass stores them: ``zs[i]``, ``Rzs[i]`` are
    z_{i+2} and its R-quantity; ``acts[i]``, ``Racts[i]`` are a_{i+1} (``acts[0]`` is X,
    ``Racts[0]`` is None: X does not depend on theta); ``deltas[i]``, ``Rdeltas[i]`` are
    delta_{i+2} = m dJ/dz_{i+2} and its R-quantity; ``gprimes[i]``, ``gseconds[i]`` are
    g'(z_{i+2}) and g''(z_{i+2}) for the hidden layers (``gseconds`` None for relu).
    ``hvp`` is H v, flat.
    """

    hvp: np.ndarray
    zs: list
    Rzs: list
    acts: list
    Racts: list
    deltas: list
    Rdeltas: list
    gprimes: list
    gseconds: list


def _times(a, b):
    """``a @ b`` for an m x s array ``a``, formed transposed so that the result is
    column-major like the forward pass's z and a: elementwise work on matching layouts runs
    at memory speed (as in :mod:`gradlab.sources.backprop`)."""
    return (b.T @ a.T).T


def _targets(problem: Problem):
    """Y and 1 - Y in column-major order, made once per problem and kept (read-only)."""
    def build():
        Y = np.asfortranarray(problem.Y)
        one_minus_Y = np.asfortranarray(1.0 - problem.Y)
        for arr in (Y, one_minus_Y):
            arr.flags.writeable = False
        return Y, one_minus_Y

    return problem.prepared("rop", build)


#: The product-rule terms of the R-pass, by name, each with the unit layer k it belongs to
#: (``a_1 = X``): what :func:`r_pass` leaves out when asked (``without``), so that the
#: checker can test "your product is the R-operator without this term" as an experiment.
TERMS = {
    "Ra W": "the R-forward pass: Rz_k = Ra_{k-1} W^T + a_{k-1} VW^T + Vb without Ra_{k-1} W^T (how the layer "
            "below's activations move)",
    "output g'": "the output layer: Rdelta_L = g'(z_L) Rz_L without the output sigmoid's derivative g'(z_L)",
    "delta VW": "the R-backward pass: Rdelta_k's Re_k = Rdelta_{k+1} W + delta_{k+1} VW without delta_{k+1} VW "
                "(how the weights the delta goes back through move)",
    "curvature": "the R-backward pass: Rdelta_k = Re_k g'(z_k) + e_k g''(z_k) Rz_k without e_k g''(z_k) Rz_k "
                 "(the activation's second derivative)",
    "delta Ra": "the weights' R-gradient: RD = (Rdelta_{k+1}^T [1, a_k] + delta_{k+1}^T [0, Ra_k]) / m without "
                "delta_{k+1}^T [0, Ra_k] (how the activations the weights multiply move)",
}


def terms(network) -> list[tuple[str, int]]:
    """Every ``(term, k)`` the R-pass of ``network`` has (see :data:`TERMS`)."""
    L = network.n_layers
    out = [("output g'", L)]
    out += [("Ra W", k) for k in range(3, L + 1)]
    out += [(t, k) for k in range(2, L) for t in ("delta VW", "curvature")]
    out += [("delta Ra", k) for k in range(2, L)]
    if network.activation == "relu":  # g'' = 0: the curvature term is absent already
        out = [t for t in out if t[0] != "curvature"]
    return out


def r_pass(problem: Problem, params: np.ndarray, v: np.ndarray, keep: bool = False, without=frozenset()):
    """H v by one forward, R-forward, backward and R-backward pass (inputs validated).

    Returns the flat ``H v`` (a new float64 array), or with ``keep=True`` an
    :class:`RPass` holding every intermediate as well. ``without`` (a set of ``(term, k)``
    pairs from :func:`terms`) leaves those product-rule terms out: not H v any more, but
    what a derivation that forgot them computes.
    """
    network, lam, m = problem.network, problem.lam, problem.m
    _judge.check_magnitudes(problem, params)
    thetas = _cost.unpack(network, params)
    Vs = _cost.unpack(network, v)
    first_second = _cost.ACTIVATIONS[network.activation].first_second
    n = len(thetas)

    # Forward (the shared pass) and R-forward, layer by layer.
    zs, acts = _cost.forward(np, network, params, problem.X)
    Rzs, Racts, gprimes, gseconds = [], [None], [], []
    Ra = None                                         # Ra_1 = 0
    for l in range(n):
        theta, V = thetas[l], Vs[l]
        a = acts[l]
        Rz = _cost.affine(np, a, V)                   # a_l VW^T + Vb
        if Ra is not None and ("Ra W", l + 2) not in without:
            Rz += _times(Ra, theta[:, 1:].T)          #   + Ra_l W^T
        Rzs.append(Rz)
        if l + 1 < n:
            gp, gpp = first_second(zs[l], acts[l + 1])  # g'(z_{l+1}), g''(z_{l+1})
            Ra = gp * Rz                              # Ra_{l+1} = g'(z_{l+1}) Rz_{l+1}
            Racts.append(Ra)
            gprimes.append(gp)
            gseconds.append(gpp)

    # Output layer: delta_L = g(z_L) - y and Rdelta_L = g'(z_L) Rz_L, g' = g(z) g(-z).
    Y, one_minus_Y = _targets(problem)
    gp_out, _ = _cost.SIGMOID.first_second(zs[-1], _cost.sigmoid(np, zs[-1]))
    Rdelta = np.multiply(gp_out, Rzs[-1], out=gp_out)  # g'(z_L) Rz_L
    if ("output g'", n + 1) in without:
        Rdelta = Rzs[-1].copy(order="K")
    z_out = zs[-1].copy(order="K") if keep else zs[-1]
    delta = output_delta(z_out, Y, one_minus_Y)       # g(z_L) - y, written over z_L
    deltas, Rdeltas = [None] * n, [None] * n

    out = np.empty(network.n_params)
    blocks = _cost.unpack(network, out)                 # views: filling them fills ``out``
    for l in range(n - 1, -1, -1):
        theta, V, RD = thetas[l], Vs[l], blocks[l]
        a, Ra = acts[l], Racts[l]
        deltas[l], Rdeltas[l] = delta, Rdelta
        # RD_l = (Rdelta_{l+1}^T [1, a_l] + delta_{l+1}^T [0, Ra_l]) / m + (lam/m) V, column 0 zero.
        RD[:, 0] = Rdelta.sum(axis=0)
        np.matmul(Rdelta.T, a, out=RD[:, 1:])
        if Ra is not None and ("delta Ra", l + 1) not in without:
            RD[:, 1:] += delta.T @ Ra
        RD /= m
        if lam:
            RD[:, 1:] += (lam / m) * V[:, 1:]
        if l > 0:
            W, VW = theta[:, 1:], V[:, 1:]
            e = _times(delta, W)                       # e_l = delta_{l+1} W
            Re = _times(Rdelta, W)                     # Re_l = Rdelta_{l+1} W ...
            if ("delta VW", l + 1) not in without:
                Re += _times(delta, VW)                #   + delta_{l+1} VW
            gp, gpp = gprimes[l - 1], gseconds[l - 1]
            Rdelta = np.multiply(Re, gp, out=Re)       # Rdelta_l = Re_l g'(z_l) ...
            if gpp is not None and ("curvature", l + 1) not in without:
                curvature = e * gpp
                curvature *= Rzs[l - 1]
                Rdelta += curvature                    #   + e_l g''(z_l) Rz_l
            delta = np.multiply(e, gp, out=e)          # delta_l = e_l g'(z_l)
    if keep:
        return RPass(out, zs, Rzs, acts, Racts, deltas, Rdeltas, gprimes, gseconds)
    return out


def hvp(problem: Problem, params: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pearlmutter's R-operator (the ``"backprop"`` Hessian-vector product source), with the
    BLAS threads chosen for the problem's products, as back-propagation's gradient has them
    (:mod:`gradlab._threads`): its products are the same small ones."""
    with _threads.for_problem(problem):
        return r_pass(problem, params, v)
