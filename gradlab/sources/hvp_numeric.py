"""The ``"numeric"`` Hessian-vector products: differences of an exact gradient along v.

``H v`` is the directional derivative of the gradient along v, so a difference quotient of
the gradient estimates it without any second-order code. The gradient differentiated is
an exact one used as a black box: back-propagation's for central differences, jax's
holomorphic gradient for the complex step.

Methods
-------
``"central"`` (default)
    ``D(h) = (g(theta + h v) - g(theta - h v)) / 2h`` with back-propagation's gradient g.
    Truncation ``~ h^2 |d^3 g / dr^3| / 6`` shrinks with h, round-off ``~ r_g / h`` grows
    (``r_g`` the round-off of one gradient entry), so the step follows the error model of
    :mod:`gradlab.sources.numeric`: ``h = eps^(1/3) max(1, max|theta|) / max|v|`` -- the
    largest entry of ``h v`` is the step a central difference would give the largest
    parameter. (The perturbation float64 really applies, ``(theta + h v) - theta``, differs
    from ``h v`` by a rounding of each entry: a relative error of order eps in the result,
    far below the truncation error.)
``"complex"``
    ``Im g(theta + i h v) / h`` with jax's gradient of the shared cost at complex
    parameters (``jax.grad(..., holomorphic=True)``). Nothing cancels, so ``h`` is tiny
    (``1e-20 / max|v|``) and the result is accurate to round-off. Back-propagation's numpy
    code is written for real arrays (its in-place activations and float64 result buffer
    drop an imaginary part), so the complex step runs through jax; it applies to every
    activation, since the shared cost picks each branch (softplus, relu) on the real part.

Error estimate
--------------
Central: the truncation part from the same difference at half the step, ``(4/3)
|D(h) - D(h/2)|`` (error ``c h^2``: ``D(h) - D(h/2) = (3/4) c h^2``), plus the round-off of
the gradient entries divided by h, ``r_g / h`` (two gradients of error ``r_g`` each, over
``2h``), where ``r_g`` is the a-priori bound on a float64 gradient entry's round-off that
the gradient comparison uses (:func:`gradlab._judge.roundoff_floor`, without its safety
factor). Complex: a few eps of the entry plus the resolution of the imaginary part
(smallest subnormal / h).

Kinks
-----
For a relu network the gradient jumps where a hidden unit switches on or off. If any hidden
unit's on/off pattern at ``theta +- h v`` or ``theta +- h v / 2`` differs from its pattern
at theta, the stencil crossed a kink: the quotient is not a derivative, and every entry is
flagged (``kink``) rather than judged. The complex step stays on theta's branch (each branch
is chosen on the real part) unless the step's square, which moves the real parts by ``h^2``,
carries a unit across its kink -- possible only where the real parts are tinier than that; the
step is then shrunk until no unit crosses, and the product flagged if one still does.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab import _cost, _judge
from gradlab import _validate as validate
from gradlab._judge import CENTRAL_STEP, EPS, ROUNDOFF_EVALS
from gradlab.network import Problem
from gradlab.sources import autodiff, backprop
from gradlab.sources.numeric import COMPLEX_STEP, KINK_HALVINGS

__all__ = ["HVP_METHODS", "NumericHvp", "default_step"]

#: The methods, by name.
HVP_METHODS = ("central", "complex")

_SMALLEST_SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)
#: Complex step at a kinked network: the step is multiplied by COMPLEX_SHRINK (its square by
#: 1e-40) up to COMPLEX_RETRIES times while a unit's real part changes side; the smallest step,
#: 1e-20 * 1e-80 = 1e-100 (over max|v|), still resolves products down to 5e-224.
COMPLEX_SHRINK = 1e-20
COMPLEX_RETRIES = 4


@dataclasses.dataclass(frozen=True, eq=False)
class NumericHvp:
    """A finite-difference Hessian-vector product with a per-entry error estimate.

    Attributes
    ----------
    hvp : numpy.ndarray
        The estimate of ``H v``, shape ``(n_params,)``.
    error : numpy.ndarray
        Estimated absolute error of each entry (truncation + round-off).
    method : str
        One of :data:`HVP_METHODS`.
    step : float
        The step h along v.
    kink : numpy.ndarray of bool
        Entries not to be judged: all of them when the stencil crossed a relu kink.
    left, right : numpy.ndarray
        For a kinked stencil, the one-sided quotients ``(g(theta) - g(theta - s v)) / s`` and
        ``(g(theta + s v) - g(theta)) / s`` at a step s whose interval holds no kink (theta's
        own aside): the directional derivatives of the gradient from each side. NaN elsewhere.

    Unpacks as ``hvp, error = result``.
    """

    hvp: np.ndarray
    error: np.ndarray
    method: str
    step: float
    kink: np.ndarray
    left: np.ndarray
    right: np.ndarray

    def __iter__(self):
        return iter((self.hvp, self.error))

    @property
    def kinks(self) -> np.ndarray:
        """Flat indices of the entries not judged."""
        return np.flatnonzero(self.kink)


def default_step(params, v, method: str = "central") -> float:
    """The default step h along ``v`` for ``method`` (see the module documentation)."""
    method = validate.choice("method", method, HVP_METHODS)
    theta = np.asarray(params, dtype=np.float64)
    vmax = float(np.max(np.abs(v), initial=0.0))
    if vmax == 0.0:
        return 1.0  # H 0 = 0 whatever the step; any positive one will do
    if method == "complex":
        return COMPLEX_STEP / vmax
    return CENTRAL_STEP * max(1.0, float(np.max(np.abs(theta), initial=0.0))) / vmax


def _patterns(problem: Problem, theta, v, steps) -> list:
    """The hidden units' on/off patterns at theta + s v for each s in ``steps``: one boolean
    array per hidden layer, the steps along its first axis (one stacked forward pass)."""
    points = np.stack([theta + s * v for s in steps])
    zs, _ = _cost.forward(np, problem.network, points, problem.X)
    return [z > 0 for z in zs[:-1]]


def _crossed(problem: Problem, theta, v, steps) -> bool:
    """Whether any hidden unit's on/off pattern at theta + s v (s in ``steps``) differs
    from its pattern at theta."""
    return any(bool(np.any(p[1:] != p[:1])) for p in _patterns(problem, theta, v, (0.0, *steps)))


def _one_sided(problem: Problem, theta, v, h: float):
    """Left and right one-sided quotients of the gradient along v at a kink.

    For each side the steps ``h / 2^k``, k = 0 .. KINK_HALVINGS, are looked at in one stacked
    forward pass; the pattern at the smallest is the pattern just beside theta, and the
    largest step s from which every smaller one shows that same pattern is used: the interval
    (theta, theta +- s v] then lies on one smooth piece (theta itself may sit on the kink,
    where the gradient jumps). The quotient takes both of its points inside that piece,
    ``(g(theta + s v) - g(theta + s v / 2)) / (s / 2)``, never the gradient at theta itself.
    """
    scale = 0.5 ** np.arange(KINK_HALVINGS + 1)
    out = []
    for side in (-1.0, 1.0):
        steps = side * h * scale
        same = np.ones(steps.size, dtype=bool)
        for p in _patterns(problem, theta, v, steps):
            same &= np.all(p == p[-1], axis=tuple(range(1, p.ndim)))
        # the first k from which every smaller step shows the pattern beside theta
        k = int(np.argmax(np.flip(np.logical_and.accumulate(np.flip(same)))))
        s = steps[k]
        g_far, g_near = backprop.gradient(problem, theta + s * v), backprop.gradient(problem, theta + 0.5 * s * v)
        out.append((g_far - g_near) / (0.5 * s))
    return out[0], out[1]


def _central(problem: Problem, theta, v, h: float, error: bool = True) -> NumericHvp:
    """``error=False``: the difference alone (two gradients instead of four), no estimate."""
    g = backprop.gradient
    D = (g(problem, theta + h * v) - g(problem, theta - h * v)) / (2.0 * h)
    nan = np.full(theta.size, np.nan)
    if not error:
        return NumericHvp(D, nan, "central", h, np.zeros(theta.size, dtype=bool), nan, nan.copy())
    D2 = (g(problem, theta + 0.5 * h * v) - g(problem, theta - 0.5 * h * v)) / h
    # The comparison's floor carries its own safety factor; the estimate wants the bound.
    roundoff = _judge.roundoff_floor(problem, theta) / _judge.NUMERIC_SAFETY
    error = (4.0 / 3.0) * np.abs(D - D2) + roundoff / h
    kinked = (_cost.ACTIVATIONS[problem.network.activation].kink
              and _crossed(problem, theta, v, (h, -h, 0.5 * h, -0.5 * h)))
    left, right = _one_sided(problem, theta, v, h) if kinked else (nan, nan.copy())
    return NumericHvp(D, error, "central", h, np.full(theta.size, kinked), left, right)


def _same_branches(problem: Problem, theta, point) -> bool:
    """Whether every hidden unit is on the same side of its kink (by the real part) at the
    complex ``point`` as at theta."""
    zs, _ = _cost.forward(np, problem.network, np.stack([theta.astype(point.dtype), point]), problem.X)
    return all(bool(np.array_equal(np.real(z[0]) > 0, np.real(z[1]) > 0)) for z in zs[:-1])


def _complex(problem: Problem, theta, v, h: float) -> NumericHvp:
    nan = np.full(theta.size, np.nan)
    kinked = False
    if _cost.ACTIVATIONS[problem.network.activation].kink:
        # The step's square moves the real parts: (w + i h v)(a + i h Ra) has real part
        # w a - h^2 v Ra. Where the real parts are tinier than that (weights near 1e-140),
        # a unit can cross its kink and the branch differentiated is not theta's. Shrink h
        # until no unit does (the imaginary resolution, smallest subnormal / h, stays far
        # below any product gradlab judges), or flag the product.
        for _ in range(COMPLEX_RETRIES):
            if _same_branches(problem, theta, theta + 1j * h * v):
                break
            h *= COMPLEX_SHRINK
        else:
            kinked = not _same_branches(problem, theta, theta + 1j * h * v)
    G = autodiff.complex_gradient(problem, theta + 1j * h * v)
    D = np.ascontiguousarray(G.imag) / h
    error = ROUNDOFF_EVALS * EPS * np.abs(D) + _SMALLEST_SUBNORMAL / h
    return NumericHvp(D, error, "complex", h, np.full(theta.size, kinked), nan, nan.copy())


def estimate_with(problem: Problem, theta: np.ndarray, v: np.ndarray, method: str = "central",
                  step: float | None = None) -> NumericHvp:
    """The numeric H v by ``method`` at ``step`` (default :func:`default_step`); inputs
    already validated."""
    h = default_step(theta, v, method) if step is None else step
    if not np.any(v):
        zero, nan = np.zeros(theta.size), np.full(theta.size, np.nan)
        return NumericHvp(zero, zero.copy(), method, h, np.zeros(theta.size, dtype=bool), nan, nan.copy())
    return (_central if method == "central" else _complex)(problem, theta, v, h)


def estimate(problem: Problem, params: np.ndarray, v: np.ndarray) -> NumericHvp:
    """Central differences of back-propagation's gradient along v, with the error estimate."""
    return estimate_with(problem, params, v, "central")


def estimate_complex(problem: Problem, params: np.ndarray, v: np.ndarray) -> NumericHvp:
    """The complex step of jax's gradient along v, with the error estimate."""
    return estimate_with(problem, params, v, "complex")


def hvp(problem: Problem, params: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The ``"numeric"`` H v source: central differences of the backprop gradient (no
    error estimate: two gradients)."""
    if not np.any(v):
        return np.zeros(params.size)
    return _central(problem, params, v, default_step(params, v), error=False).hvp


def hvp_complex(problem: Problem, params: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The ``"numeric-complex"`` H v source: complex step of jax's gradient."""
    return estimate_complex(problem, params, v).hvp
