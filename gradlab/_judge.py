"""Every tolerance, floor and bound gradlab judges by: one home, each constant once.

Who uses what:

* exact pairs (backprop, jax, a user's function) -- :data:`EXACT_NORM_RATIO`, or every
  entry within :func:`roundoff_floor` (:func:`exact_agree`);
* pairs with a numeric side -- :func:`numeric_bound` (:data:`NUMERIC_SAFETY` times the
  numeric error estimate plus the exact side's round-off);
* the finite-difference error model the numeric sources and the checker's directional
  differences share -- :data:`EPS`, :data:`CENTRAL_STEP`, :data:`ROUNDOFF_EVALS`;
* the checker's fits of a model to the user's numbers -- :data:`FIT_RTOL`, :data:`RATIO_RTOL`;
* explain's deltas -- :data:`DELTA_TOLERANCE`;
* Hessian-vector products -- :data:`HVP_NORM_RATIO` or :func:`hvp_roundoff_floor`
  (:func:`hvp_agree`), :func:`numeric_bound` for a numeric side, and
  :func:`symmetry_tolerance` for ``u . Hv = v . Hu``;
* the ranges gradlab keeps finite in float64 -- :data:`MAX_LAM`, :data:`MAX_WEIGHT_SCALE`,
  and :func:`check_magnitudes`, which refuses inputs whose sums would overflow.

Norms here never overflow while their value is finite (:func:`norm`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from gradlab import _cost
from gradlab._errors import GradlabError

# --------------------------------------------------------------------------------------
# float64 and the finite-difference error model
# --------------------------------------------------------------------------------------

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)
SMALLEST_SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)

#: Relative step for central differences: eps^(1/3), the minimiser of truncation h^2 plus
#: round-off eps/h (about 6.1e-6 in float64), giving an error of order eps^(2/3).
CENTRAL_STEP = EPS ** (1.0 / 3.0)

#: Relative error, in units of eps, assumed for one evaluation of J (a sum of m*K
#: non-negative terms plus the regularisation; each term is good to a few eps and the
#: pairwise sum adds a few more). Two evaluations enter each difference.
ROUNDOFF_EVALS = 8.0

# --------------------------------------------------------------------------------------
# Agreement rules
# --------------------------------------------------------------------------------------

#: Tolerance on ||a-b|| / ||a+b|| for two *exact* sources (backprop, jax, a user's
#: function). Both evaluate the same sums in float64, so they differ by round-off: a few
#: eps (2.2e-16) per operation, amplified by cancellation in the sums over examples.
#: 1e-10 (about 5e5 eps) leaves ample room for that, yet a real bug -- a wrong factor,
#: a missing term -- moves the ratio to 1e-3 or more.
EXACT_NORM_RATIO = 1e-10

#: A numeric gradient entry fails when it differs from the other source by more than
#: this multiple of its own error estimate (truncation + round-off, see
#: :mod:`gradlab.sources.numeric`). The estimate is first-order; the factor covers the
#: higher-order terms it neglects.
NUMERIC_SAFETY = 10.0

#: ... plus the round-off of the *exact* side of the pair, which the numeric estimate
#: cannot know: an exact gradient entry is a sum over examples and units whose rounding
#: is a few eps of the sum of |terms|, and cancellation makes that sum exceed the entry.
#: Allowed: this fraction of the largest entry of the pair (about 4500 eps), 100 times
#: tighter than the exact pairs' EXACT_NORM_RATIO. It matters only for the complex step,
#: whose own estimate is round-off; finite differences' estimates dwarf it.
NUMERIC_ROUNDOFF = 1e-12

#: Relative tolerance between a user's cost and gradlab's: the same round-off argument as
#: EXACT_NORM_RATIO (two float64 evaluations of one sum).
COST_RTOL = EXACT_NORM_RATIO

#: Largest accepted ``max |delta_l - m dJ/dz_l| / max(1, max |delta_l|)`` in explain. Both
#: sides evaluate the same float64 products and sums in nearly the same order, so they
#: differ by a few eps per operation, growing with depth and width; 1e-12 (about 4500
#: eps) leaves room for that, while a wrong factor or a missing term moves it above 1e-3.
DELTA_TOLERANCE = 1e-12

#: A diagnosis "fits" when its model reproduces the user's numbers to this relative
#: accuracy (norm of the residual over the norm of the numbers). Round-off leaves about
#: 1e-15; a different bug leaves a residual of order 1. 1e-6 sits far from both.
FIT_RTOL = 1e-6

#: A ratio is "equal" to a named value (m, -1, 1/m, 2 ...) when within this relative
#: distance; ratios come out of fits good to FIT_RTOL, so 1e-4 is generous.
RATIO_RTOL = 1e-4


def norm(x) -> float:
    """Euclidean norm that does not overflow while its value is finite: gradients of
    problems with inputs near 1e300 have entries whose squares overflow float64."""
    x = np.asarray(x)
    scale = float(np.max(np.abs(x), initial=0.0))
    if scale == 0.0 or not np.isfinite(scale):
        return scale
    return scale * float(np.linalg.norm(x / scale))


def norm_ratio(a, b) -> float:
    """Ng's criterion ||a - b|| / ||a + b|| (0 when both are zero)."""
    a, b = np.asarray(a), np.asarray(b)
    with np.errstate(over="ignore"):  # a - b, a + b of entries near float max: inf, refused by callers
        num = norm(a - b)
        den = norm(a + b)
    if num == 0.0:
        return 0.0
    return num / den if den > 0 else math.inf


def roundoff_floor(problem, params) -> np.ndarray:
    """Per-entry bound on the round-off of a correct gradient computed in float64.

    ``D_l = (1/m) sum_i delta_i [1, a_i]`` is a sum of m products; summed naively it errs by
    up to about ``m eps max|term|`` (Higham, Accuracy and Stability, ch. 4), and each delta
    comes out of dot products as long as a layer is wide. When the terms cancel (tiny
    weights: h ~ 1/2, delta ~ +-1/2, gradient ~ 1e-11) that absolute error is a large
    *relative* error, and a norm-ratio test alone would flag correct code. The bound uses
    |delta_L| <= 1 (h and y lie in [0, 1]), |delta_l| <= |delta_(l+1)| |Theta_l[:, 1:]| max g'
    (the activation table's ``gprime_max``) and the largest activation of each input;
    NUMERIC_SAFETY covers the rest.
    """
    net = problem.network
    params = np.asarray(params)
    _, acts = _cost.forward(np, net, params, problem.X)
    thetas = _cost.unpack(net, params)
    gmax = _cost.ACTIVATIONS[net.activation].gprime_max
    d = np.ones(net.n_outputs)
    blocks = []
    for layer in range(len(thetas) - 1, -1, -1):
        amax = np.r_[1.0, np.max(np.abs(acts[layer]), axis=0)]
        blocks.append(np.outer(d, amax).ravel())
        d = (d @ np.abs(thetas[layer][:, 1:])) * gmax
    terms = np.concatenate(blocks[::-1]) + problem.lam / problem.m * np.abs(params)
    ops = problem.m + max(net.sizes) + net.n_layers
    return NUMERIC_SAFETY * ops * EPS * terms


def numeric_bound(error, a, b, floor=None) -> np.ndarray:
    """Per-entry tolerance when one side is numeric: NUMERIC_SAFETY times its error
    estimate, plus the other side's round-off -- NUMERIC_ROUNDOFF times the largest entry,
    or the a-priori round-off floor where that is larger (a gradient that is exactly zero
    in exact arithmetic comes out of float64 sums as round-off, e.g. 3e-17)."""
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    other = NUMERIC_ROUNDOFF * scale
    if floor is not None:
        other = np.maximum(other, floor)
    return NUMERIC_SAFETY * np.asarray(error, dtype=np.float64) + other


def exact_agree(a, b, floor) -> bool:
    """Two exact gradients agree: Ng's norm criterion, or every entry within its round-off floor."""
    return norm_ratio(a, b) <= EXACT_NORM_RATIO or bool(np.all(np.abs(a - b) <= floor))


def entry_tolerance(a, b) -> float:
    """Per-entry tolerance between two exact gradients: EXACT_NORM_RATIO of their size."""
    return EXACT_NORM_RATIO * (norm(a) + norm(b))


def differing_entries(a, b, floor, at_least: int) -> np.ndarray:
    """Indices of the entries where two exact gradients differ beyond round-off; when the
    norm fails though no single entry stands out, the ``at_least`` worst above the floor."""
    diff = np.abs(a - b)
    idx = np.flatnonzero(diff > np.maximum(entry_tolerance(a, b), floor))
    if idx.size == 0:
        idx = np.flatnonzero(diff > floor)
        idx = idx[np.argsort(-diff[idx])][:at_least]
    return idx


def resolution_floor(size, theta) -> np.ndarray:
    """Per entry, the smallest gradient an evaluation of a black-box J resolves (the generic
    checks' round-off floor, where no a-priori bound like :func:`roundoff_floor` is known).

    A change of ``theta_i`` up to its own scale ``max(1, |theta_i|)`` changes J by less than
    J's round-off ``ROUNDOFF_EVALS eps |J|`` when ``|g_i|`` is below ``ROUNDOFF_EVALS eps |J| /
    max(1, |theta_i|)``; NUMERIC_SAFETY times that is the floor. ``size`` holds |J| (or the
    size of the terms J sums) for each of K functions; the result has shape (K, n).
    """
    size = np.asarray(size, dtype=np.float64).reshape(-1, 1)
    theta = np.asarray(theta, dtype=np.float64)
    return NUMERIC_SAFETY * ROUNDOFF_EVALS * EPS * size / np.maximum(1.0, np.abs(theta))[None, :]


#: A finite-difference stencil of a black box crossed a kink when its second differences
#: do not scale with the step as a smooth function's do. For a smooth J the slope jump
#: ``q(h) = (J(+h) - 2 J0 + J(-h)) / h`` is ``h J''`` up to ``h^3``, so ``q(h/2) = q(h)/2``;
#: across a kink at distance ``d`` from theta it is ``jump (1 - d/h)``, nearly the same at
#: both steps. A departure from ``q(h)/2`` by more than this fraction of ``q(h)`` is a kink.
#: Central differences are fooled (their error estimate small, their value off) only when
#: the kink lies within ``h / 14`` of theta, where the departure is at least ``0.39 q(h)``;
#: a smooth function departs by ``h^3 |J''''| / 32``, which exceeds ``0.25 |q(h)|`` only for
#: steps far beyond the scale on which J is smooth.
KINK_FRACTION = 0.25


def fits(actual, model) -> bool:
    """Does ``model`` reproduce ``actual`` to FIT_RTOL (relative to the larger norm)?"""
    actual, model = np.asarray(actual, float), np.asarray(model, float)
    scale = max(norm(actual), norm(model))
    return norm(actual - model) <= FIT_RTOL * scale if scale > 0 else True


def is_ratio(value: float, target: float) -> bool:
    """``value`` equals the named ratio ``target`` (relative; absolute near 0)."""
    return abs(value - target) <= RATIO_RTOL * max(abs(target), 1.0)


def factor(actual, ref) -> float | None:
    """The scalar c with actual = c * ref, when one fits; else None."""
    actual, ref = np.asarray(actual), np.asarray(ref)
    den = float(np.dot(ref.ravel(), ref.ravel()))
    if den == 0.0:
        return None
    c = float(np.dot(actual.ravel(), ref.ravel())) / den
    return c if fits(actual, c * ref) else None


# --------------------------------------------------------------------------------------
# Second order: Hessian-vector products
# --------------------------------------------------------------------------------------

#: Tolerance on ||a-b|| / ||a+b|| for two exact Hessian-vector products (the R-operator,
#: jax's forward-over-reverse, a user's function). Both evaluate float64 sums of the same
#: terms in different orders, so they differ by round-off amplified by cancellation, as two
#: exact gradients do: EXACT_NORM_RATIO's argument and value.
HVP_NORM_RATIO = EXACT_NORM_RATIO


def hvp_roundoff_floor(problem, params, v) -> np.ndarray:
    """Per-entry bound on the round-off of a correct ``H v`` computed in float64.

    An entry of ``H v`` for ``Theta_l`` is ``(1/m) sum_i (Rdelta_{l+1} [1, a_l] + delta_{l+1}
    [0, Ra_l])`` plus ``(lam/m) v``: a sum of m products, each factor itself the result of
    dot products as long as a layer is wide (Higham, Accuracy and Stability, ch. 3-4: a sum
    of n terms errs by up to about ``n eps`` times the sum of their magnitudes). The
    magnitudes are bounded per unit from the activations of the shared forward pass and the
    weights alone -- independently of any Hessian-vector product code -- by the R-pass's
    recursion with every factor replaced by its largest magnitude: ``|Rz_{l+1}| <= |W| |Ra_l|
    + |VW| |a_l| + |Vb|``, ``|Ra| <= max|g'| |Rz|``, ``|delta_L| <= 1``, ``|Rdelta_L| <=
    |Rz_L| / 4``, ``|delta_l| <= max|g'| |W|^T |delta_{l+1}|``, ``|Rdelta_l| <= max|g'|
    (|W|^T |Rdelta_{l+1}| + |VW|^T |delta_{l+1}|) + max|g''| |W|^T |delta_{l+1}| |Rz_l|``
    (the activation table's ``gprime_max`` and ``gsecond_max``). The operation count is m
    (the sum over examples) plus twice the units of every layer (the forward and backward
    dot products and their R-versions); NUMERIC_SAFETY covers the rest, as for gradients.
    """
    net = problem.network
    theta = np.asarray(params, dtype=np.float64)
    direction = np.asarray(v, dtype=np.float64)
    _, acts = _cost.forward(np, net, theta, problem.X)
    thetas = _cost.unpack(net, theta)
    Vs = _cost.unpack(net, direction)
    act = _cost.ACTIVATIONS[net.activation]
    g1, g2 = act.gprime_max, act.gsecond_max
    n = len(thetas)
    amax = [np.r_[1.0, np.max(np.abs(a), axis=0)] for a in acts]
    ra = [np.zeros(net.sizes[0] + 1)]  # [0, |Ra_l|]: the bias unit and X do not move
    rz = []
    for l in range(n):
        W, V = np.abs(thetas[l]), np.abs(Vs[l])
        rz.append(W[:, 1:] @ ra[l][1:] + V @ amax[l])
        ra.append(np.r_[0.0, g1 * rz[-1]])
    d = np.ones(net.n_outputs)
    rd = _cost.SIGMOID.gprime_max * rz[-1]
    blocks = [None] * n
    for l in range(n - 1, -1, -1):
        blocks[l] = (np.outer(rd, amax[l]) + np.outer(d, ra[l])).ravel()
        if l > 0:
            W, VW = np.abs(thetas[l][:, 1:]), np.abs(Vs[l][:, 1:])
            e = d @ W
            rd = g1 * (rd @ W + d @ VW) + g2 * e * rz[l - 1]
            d = g1 * e
    terms = np.concatenate(blocks) + problem.lam / problem.m * np.abs(direction)
    ops = problem.m + 2 * sum(net.sizes)
    # Relative to the terms, plus float64's absolute resolution: below the smallest normal
    # number every operation rounds to a multiple of the smallest subnormal.
    return NUMERIC_SAFETY * ops * (EPS * terms + SMALLEST_SUBNORMAL)


def hvp_agree(a, b, floor) -> bool:
    """Two exact Hessian-vector products agree: norm ratio at most :data:`HVP_NORM_RATIO`,
    or every entry within its round-off floor (:func:`hvp_roundoff_floor`)."""
    return norm_ratio(a, b) <= HVP_NORM_RATIO or bool(np.all(np.abs(np.asarray(a) - np.asarray(b)) <= floor))


def symmetry_tolerance(u, v, Hu, Hv, floor_u, floor_v) -> float:
    """Largest ``|u . Hv - v . Hu|`` a symmetric H allows after float64 round-off.

    Each product entry errs by at most its floor, so ``u . Hv`` moves by up to
    ``sum |u| floor_v`` (and ``v . Hu`` likewise); each dot product of P terms adds up to
    ``P eps sum |u_i Hv_i|`` (Higham), allowed with NUMERIC_SAFETY as the floors are.
    """
    u, v, Hu, Hv = (np.asarray(x, dtype=np.float64) for x in (u, v, Hu, Hv))
    # Two dot products of P terms: each operation errs by eps of its magnitude, or, in the
    # subnormal range, by up to the smallest subnormal.
    dots = NUMERIC_SAFETY * u.size * (EPS * (float(np.abs(u) @ np.abs(Hv)) + float(np.abs(v) @ np.abs(Hu)))
                                      + 2 * SMALLEST_SUBNORMAL)
    return float(np.abs(u) @ floor_v) + float(np.abs(v) @ floor_u) + dots


# --------------------------------------------------------------------------------------
# Ranges gradlab keeps finite in float64
# --------------------------------------------------------------------------------------

#: Largest lambda accepted. The gradient's regularisation part (lam / m) w must stay
#: squarable in float64 (every norm squares it: |g| < sqrt(1.8e308) ~ 1.3e154) for weights
#: up to +-1e4, the range whose costs and gradients gradlab keeps finite; 1e150 leaves that
#: margin. At lam = 1e200 the gradient's norm overflowed (found by fuzzing the command line).
MAX_LAM = 1e150

#: Largest ``weight_scale`` of the checker: its random weights lie within
#: +-sqrt(6 / (in + out)) <= +-sqrt(3) times it, so 1e4 reaches weights of ~1e4, the range
#: whose costs and gradients gradlab keeps finite (every sigmoid is saturated long before).
#: At 1e200 the gradient overflowed (found by fuzzing the command line).
MAX_WEIGHT_SCALE = 1e4

# A matrix product that overflows gives inf without a warning (BLAS does not report it),
# and the first inf meets a 0 or another inf soon after: 0 * inf and inf - inf are NaN,
# with a RuntimeWarning from numpy and a NaN gradient from jax. So every source first
# bounds, from the largest |X| and the largest weight of each layer, what its sums can
# reach, and refuses the problem with the culprit named when a bound passes float64's
# range. The bounds cost O(P) (|X|'s maximum is found once per problem).

_LOG_FLOAT_MAX = math.log(float(np.finfo(np.float64).max))
#: Headroom the bounds keep below the largest float64, as a factor: the numeric sources
#: evaluate the cost at weights moved by up to 1/16 of themselves (Richardson's first
#: step, a factor 1.0625), and each sum adds a few roundings; 4 covers both with room,
#: while inputs up to about 1e306 (with weights of order 0.1) are still evaluated.
OVERFLOW_HEADROOM = 4.0


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def largest(arr) -> float:
    """max |arr| without an |arr| temporary."""
    if np.iscomplexobj(arr):
        return float(np.max(np.abs(arr))) if arr.size else 0.0
    return float(max(np.max(arr), -np.min(arr))) if arr.size else 0.0


def _refuse(what: str, quantity: str, log_bound: float, cause: str):
    raise GradlabError(
        f"X and params are too large to {what} in float64: {quantity} could reach "
        f"about 1e{log_bound / math.log(10):.0f} ({cause}), beyond the largest float64 "
        f"(1.8e+308) with room for the numeric steps; standardise the inputs (scale=True, "
        f"--scale) or use smaller weights"
    )


def _forward_bounds(net, xmax: float, thetas, refuse):
    """Bounds (as logs) on each layer's |a| and largest weight and on the output |z|;
    ``refuse(quantity, log_bound, cause)`` is called when a pre-activation could overflow."""
    limit = _LOG_FLOAT_MAX - math.log(OVERFLOW_HEADROOM)
    log_a = [_log(max(1.0, xmax))]  # bound on |a_l| (the bias unit is 1) per layer
    log_w = []
    bounded = _cost.ACTIVATIONS[net.activation].bounded  # relu: |a| <= |z|, not <= 1
    for l, theta in enumerate(thetas, start=1):
        w = largest(theta)
        log_w.append(_log(w))
        log_z = log_w[-1] + math.log(theta.shape[1]) + log_a[-1]
        if log_z > limit:
            refuse(f"the pre-activations of layer {l + 1}", log_z,
                   f"max |{'X' if l == 1 else f'a_{l}'}| = {math.exp(log_a[-1]) if log_a[-1] < _LOG_FLOAT_MAX else math.inf:.3g}"
                   f" with the bias, max |Theta{l}| = {w:.3g}, {theta.shape[1]} columns")
        if l < len(thetas):
            log_a.append(0.0 if bounded else max(0.0, log_z))
    return log_a, log_w, log_z


def check_forward(network, xmax: float, params, what: str = "predict") -> None:
    """Raise GradlabError when the forward pass at ``params`` on inputs up to ``xmax`` could
    overflow float64 (an overflowing pass gives NaN outputs without a warning)."""
    _forward_bounds(network, xmax, _cost.unpack(network, np.asarray(params)), functools.partial(_refuse, what))


def check_magnitudes(problem, params) -> None:
    """Raise GradlabError when the cost or the gradient at ``params`` could overflow float64.

    Bounds (each a sum over the terms float64 actually adds, before any division by m):
    ``|z_(l+1)| <= max|Theta_l| (s_l + 1) max(1, max|a_l|)``, with ``|a| <= 1`` after a
    sigmoid or tanh and ``|a| <= |z|`` after a relu; the cross-entropy sums m K terms of at
    most ``|z_L| + log 2``; ``D_l`` sums m products ``|delta_(l+1)| max(1, |a_l|)`` with
    ``|delta_L| <= 1`` and ``|delta_l| <= |delta_(l+1)| s_(l+1) max|Theta_l| max g'``; the
    regularisation sums P squares of the largest weight.
    """
    net = problem.network
    limit = _LOG_FLOAT_MAX - math.log(OVERFLOW_HEADROOM)
    thetas = _cost.unpack(net, np.asarray(params))
    m, K = problem.m, net.n_outputs
    refuse = functools.partial(_refuse, "evaluate the cost")
    log_a, log_w, log_z = _forward_bounds(net, problem.max_abs_input, thetas, refuse)
    log_cost = math.log(m * K) + max(log_z, 0.0) + math.log(2.0)
    if log_cost > limit:
        refuse("the cross-entropy summed over the m x K outputs", log_cost,
               f"output pre-activations up to 1e{log_z / math.log(10):.0f}, m={m}, K={K}")
    log_gmax = math.log(_cost.ACTIVATIONS[net.activation].gprime_max)
    log_delta = 0.0
    for l in range(len(thetas), 0, -1):
        log_sum = math.log(m) + log_delta + log_a[l - 1]
        if log_sum > limit:
            refuse(f"the gradient of Theta{l} (a sum over the m={m} examples)", log_sum,
                   f"max |{'X' if l == 1 else f'a_{l}'}| = 1e{log_a[l - 1] / math.log(10):.0f}")
        rows = thetas[l - 1].shape[0]
        log_delta += math.log(rows) + log_w[l - 1] + log_gmax
    # Checked whatever lam is: the cost computes the sum of squares before multiplying by
    # lam, so at lam = 0 an overflowing sum still gives inf * 0 = NaN (and a warning).
    log_reg = math.log(net.n_params) + 2.0 * max(log_w)
    if log_reg > limit:
        refuse("the regularisation's sum of squared weights (computed even at lam=0)", log_reg,
               f"the largest weight is {math.exp(max(log_w)):.3g}")
