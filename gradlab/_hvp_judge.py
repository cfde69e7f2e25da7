"""Tolerances and agreement rules for Hessian-vector products (second order).

The same rules as the gradient comparison (:mod:`gradlab.compare`), for ``H v``: two exact
products agree when ``||a - b|| / ||a + b||`` is at most :data:`HVP_NORM_RATIO`, or when every
entry is within the a-priori round-off floor of a correct float64 computation
(:func:`hvp_roundoff_floor`) -- the floor decides only for products so small that round-off
rivals them; a numeric product agrees when every entry is within ``NUMERIC_SAFETY`` times its
own error estimate plus the exact side's round-off.
"""

from __future__ import annotations

import math

import numpy as np

from gradlab.network import Problem, _forward, _unpack

#: Tolerance on ||a-b|| / ||a+b|| for two exact Hessian-vector products. Both evaluate
#: float64 sums of the same terms, in different orders (the R-operator by hand, jax's
#: forward-over-reverse trace), so they differ by round-off amplified by cancellation, as
#: two exact gradients do; the gradient comparison's 1e-10 (about 5e5 eps) applies as is.
HVP_NORM_RATIO = 1e-10

#: Multiple of the round-off model that the floor allows (the model is first order in eps;
#: the factor covers the terms it neglects), as for gradients.
HVP_SAFETY = 10.0

_EPS = float(np.finfo(np.float64).eps)

#: Largest |g'| and |g''| of each hidden activation: how much a delta, an R-quantity and the
#: g'' term can grow through a layer. sigmoid: g' <= 1/4, |g''| <= 1/(6 sqrt 3) (at
#: g = 1/2 +- 1/(2 sqrt 3)); tanh: g' <= 1, |g''| <= 4/(3 sqrt 3) (at tanh z = +-1/sqrt 3);
#: relu: g' <= 1, g'' = 0 away from the kink.
_GPRIME_MAX = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}
_GSECOND_MAX = {"sigmoid": 1.0 / (6.0 * math.sqrt(3.0)), "tanh": 4.0 / (3.0 * math.sqrt(3.0)), "relu": 0.0}


def hvp_roundoff_floor(problem: Problem, params, v) -> np.ndarray:
    """Per-entry bound on the round-off of a correct ``H v`` computed in float64.

    An entry of ``H v`` for ``Theta_l`` is ``(1/m) sum_i (Rdelta_{l+1} [1, a_l] + delta_{l+1}
    [0, Ra_l])`` plus ``(lam/m) v``: a sum of m products, each factor itself the result of
    dot products as long as a layer is wide (Higham, Accuracy and Stability, ch. 3-4: a sum
    of n terms errs by up to about ``n eps`` times the sum of their magnitudes). The
    magnitudes are bounded per unit from the activations of the shared forward pass and the
    weights alone -- independently of any Hessian-vector product code -- by the same
    recursion with every factor replaced by its largest magnitude: ``|Rz_{l+1}| <= |W| |Ra_l|
    + |VW| |a_l| + |Vb|``, ``|Ra| <= max|g'| |Rz|``, ``|delta_L| <= 1``, ``|Rdelta_L| <=
    |Rz_L| / 4``, ``|delta_l| <= max|g'| |W|^T |delta_{l+1}|``, ``|Rdelta_l| <= max|g'|
    (|W|^T |Rdelta_{l+1}| + |VW|^T |delta_{l+1}|) + max|g''| |W|^T |delta_{l+1}| |Rz_l|``.
    The operation count is m (the sum over examples) plus twice the units of every layer
    (the forward and backward dot products and their R-versions).
    """
    net = problem.network
    theta = np.asarray(params, dtype=np.float64)
    direction = np.asarray(v, dtype=np.float64)
    _, acts = _forward(np, net, theta, problem.X)
    thetas = _unpack(net, theta)
    Vs = _unpack(net, direction)
    g1, g2 = _GPRIME_MAX[net.activation], _GSECOND_MAX[net.activation]
    n = len(thetas)
    amax = [np.r_[1.0, np.max(np.abs(a), axis=0)] for a in acts]
    ra = [np.zeros(net.sizes[0] + 1)]  # [0, |Ra_l|]: the bias unit and X do not move
    rz = []
    for l in range(n):
        W, V = np.abs(thetas[l]), np.abs(Vs[l])
        rz.append(W[:, 1:] @ ra[l][1:] + V @ amax[l])
        ra.append(np.r_[0.0, g1 * rz[-1]])
    d = np.ones(net.n_outputs)
    rd = 0.25 * rz[-1]
    blocks = [None] * n
    for l in range(n - 1, -1, -1):
        blocks[l] = (np.outer(rd, amax[l]) + np.outer(d, ra[l])).ravel()
        if l > 0:
            W, VW = np.abs(thetas[l][:, 1:]), np.abs(Vs[l][:, 1:])
            e = d @ W
            rd = g1 * (rd @ W + d @ VW) + g2 * e * rz[l - 1]
            d = g1 * e
    terms = np.concatenate(blocks)
    regularisation = problem.lam / problem.m * np.abs(direction)
    ops = problem.m + 2 * sum(net.sizes)
    return HVP_SAFETY * ops * _EPS * (terms + regularisation)


def hvps_agree(a, b, floor) -> bool:
    """Whether two exact Hessian-vector products agree: norm ratio at most
    :data:`HVP_NORM_RATIO`, or every entry within ``floor``."""
    from gradlab.compare import _norm_ratio

    a, b = np.asarray(a), np.asarray(b)
    return _norm_ratio(a, b) <= HVP_NORM_RATIO or bool(np.all(np.abs(a - b) <= floor))


def numeric_hvp_bound(error, a, b, floor) -> np.ndarray:
    """Per-entry tolerance when one product is numeric: ``NUMERIC_SAFETY`` times its error
    estimate plus the exact side's round-off, as for gradients
    (:func:`gradlab.compare._numeric_bound`)."""
    from gradlab.compare import _numeric_bound

    return _numeric_bound(error, a, b, floor)


def symmetry_tolerance(u, v, Hu, Hv, floor_u, floor_v) -> float:
    """Largest ``|u . Hv - v . Hu|`` a symmetric H allows after float64 round-off.

    Each product entry errs by at most its floor, so ``|u . (Hv + err)|`` moves by up to
    ``sum |u| floor_v`` (and likewise for ``v . Hu``); each dot product of P terms adds up to
    ``P eps sum |u_i Hv_i|`` (Higham), allowed with the floor's safety factor.
    """
    u, v, Hu, Hv = (np.asarray(x, dtype=np.float64) for x in (u, v, Hu, Hv))
    dots = HVP_SAFETY * u.size * _EPS * (float(np.abs(u) @ np.abs(Hv)) + float(np.abs(v) @ np.abs(Hu)))
    return float(np.abs(u) @ floor_v) + float(np.abs(v) @ floor_u) + dots
