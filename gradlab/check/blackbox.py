"""Finite differences of any function: the numeric witnesses of the generic checks.

A checked function is seen here as ``K`` scalar functions ``J_k(theta)`` of one flat
vector (``K = 1`` for a scalar cost; for a layer, ``J_k = <dout_k, forward(theta)>``, one
per upstream gradient, all computed from the same forward evaluations), evaluated as a
black box: nothing about their derivatives is used.

The error model is the network's numeric source's (:mod:`gradlab.sources.numeric`, whose
steps, Richardson tableau and constants are reused here): central differences have
truncation ``c h^2``, estimated from the same difference at half the step
(``|D(h) - D(h/2)| = (3/4) c h^2``), and round-off ``ROUNDOFF_EVALS eps |J| / h``, with
``|J|`` the largest magnitude met on the stencil -- for a layer the sum of
``|dout * out|``, the size of the terms whose sum ``J_k`` is. What a black box cannot tell
by itself is whether a stencil crossed a kink (a relu at 0, a max with a tie, a hinge):
that is read off the second differences the central stencil already has (see
:func:`central` and :data:`gradlab._judge.KINK_FRACTION`).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from gradlab._errors import GradlabError, UserCodeError
from gradlab._judge import CENTRAL_STEP, EPS, KINK_FRACTION, NUMERIC_ROUNDOFF, NUMERIC_SAFETY, ROUNDOFF_EVALS
from gradlab.sources.numeric import (COMPLEX_STEP, RICHARDSON_FIRST_STEP, RICHARDSON_STEPS, representable,
                                     richardson_gain, richardson_tableau)

__all__ = ["BlackBox", "Estimate", "central", "richardson", "complex_step", "complex_trial", "central_steps"]

_SMALLEST_SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)


def central_steps(theta) -> np.ndarray:
    """``eps^(1/3) max(1, |theta_i|)``, made representable (as the network's numeric source)."""
    return representable(theta, CENTRAL_STEP * np.maximum(1.0, np.abs(theta)))


class BlackBox:
    """``K`` scalar functions of theta, evaluated by calling the user's code.

    ``scalars(theta) -> (values, sizes)``: the K values and the magnitude of the terms each
    is a sum of (for round-off). ``count`` counts evaluations (calls of the user's code).
    """

    def __init__(self, scalars, theta0: np.ndarray, K: int):
        self._scalars = scalars
        self.theta0 = np.asarray(theta0, dtype=np.float64)
        self.K = K
        self.count = 0
        self.J0, self.size0 = self.at(self.theta0)

    def at(self, theta):
        values, sizes = self._scalars(theta)
        self.count += 1
        return np.asarray(values).reshape(self.K), np.asarray(sizes, dtype=np.float64).reshape(self.K)

    def shifted(self, index, delta):
        """Values and sizes, shape (K, R), at ``theta0 + delta_r e_{index_r}``."""
        index = np.asarray(index, dtype=np.intp)
        delta = np.asarray(delta)
        dtype = np.result_type(self.theta0.dtype, delta.dtype)
        values = np.empty((self.K, index.size), dtype=dtype)
        sizes = np.empty((self.K, index.size))
        for r in range(index.size):
            theta = self.theta0.astype(dtype, copy=True)
            theta[index[r]] += delta[r]
            values[:, r], sizes[:, r] = self.at(theta)
        return values, sizes

    def along(self, idx, v, step):
        """Values and sizes at ``theta0 + step v`` with ``v`` living on the entries ``idx``."""
        theta = self.theta0.astype(np.result_type(self.theta0.dtype, np.asarray(step).dtype), copy=True)
        theta[idx] += step * v
        return self.at(theta)


@dataclasses.dataclass
class Estimate:
    """A finite-difference gradient of the K scalar functions, with per-entry error estimates.

    ``value`` and ``error`` have shape (K, n). ``kink`` (n,) marks entries whose stencil
    crossed a kink; for those, ``left`` and ``right`` hold the one-sided quotients and
    ``side_tol`` their error (NaN elsewhere). ``size`` (K, n) is the largest |J| met.
    """

    method: str
    value: np.ndarray
    error: np.ndarray
    evaluations: int
    kink: np.ndarray | None = None
    left: np.ndarray | None = None
    right: np.ndarray | None = None
    side_tol: np.ndarray | None = None

    @property
    def kinks(self) -> np.ndarray:
        return np.zeros(0, dtype=int) if self.kink is None else np.flatnonzero(self.kink)


def central(bb: BlackBox, index=None) -> Estimate:
    """Central differences at ``h`` and ``h/2`` (4 evaluations per entry): the value at ``h``,
    its error estimate, and the kink test on the second differences of the same stencil.
    ``index`` restricts it to some entries (the rows then follow ``index``)."""
    full = bb.theta0
    idx = np.arange(full.size) if index is None else np.asarray(index, dtype=np.intp)
    theta = full[idx]
    start = bb.count
    h = central_steps(theta)
    h2 = representable(theta, h / 2.0)
    Jp, Sp = bb.shifted(idx, h)
    Jm, Sm = bb.shifted(idx, -h)
    Jp2, Sp2 = bb.shifted(idx, h2)
    Jm2, Sm2 = bb.shifted(idx, -h2)
    J0 = bb.J0[:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.maximum.reduce([Sp, Sm, Sp2, Sm2, np.broadcast_to(bb.size0[:, None], Sp.shape)])
        D1 = (Jp - Jm) / (2.0 * h)
        D2 = (Jp2 - Jm2) / (2.0 * h2)
        noise = ROUNDOFF_EVALS * EPS * size
        err = np.abs(D1 - D2) * (4.0 / 3.0) + noise / h
        # Kinks: the slope jumps q at both steps against the smooth model q(h/2) = q(h) h2/h.
        q1 = (Jp - 2.0 * J0 + Jm) / h
        q2 = (Jp2 - 2.0 * J0 + Jm2) / h2
        q_noise = 4.0 * noise * (1.0 / h + 1.0 / h2)
        departs = np.abs(q2 - q1 * (h2 / h))
        kinked = (departs > np.maximum(KINK_FRACTION * np.abs(q1), NUMERIC_SAFETY * q_noise)) & (
            np.abs(q1) > NUMERIC_SAFETY * 4.0 * noise / h)
        kink = np.any(kinked, axis=0)
        right2, right1 = (Jp2 - J0) / h2, (Jp - J0) / h
        left2, left1 = (J0 - Jm2) / h2, (J0 - Jm) / h
        side_tol = NUMERIC_SAFETY * (np.maximum(np.abs(right1 - right2), np.abs(left1 - left2))
                                     + 2.0 * noise / h2)
    bad = ~np.isfinite(D1) | ~np.isfinite(err)
    err = np.where(bad, np.inf, err)
    nan = np.full(D1.shape, np.nan)
    return Estimate("central", D1, err, bb.count - start, kink,
                    np.where(kink[None, :], left2, nan), np.where(kink[None, :], right2, nan),
                    np.where(kink[None, :], side_tol, nan))


def richardson(bb: BlackBox, index=None) -> Estimate:
    """Richardson extrapolation of central differences over ``h0 / 2^k``, k < RICHARDSON_STEPS
    (2 RICHARDSON_STEPS evaluations per entry): per entry the tableau value with the smallest
    estimated error, as in :mod:`gradlab.sources.numeric`."""
    theta = bb.theta0
    idx = np.arange(theta.size) if index is None else np.asarray(index)
    start = bb.count
    h0 = representable(theta[idx], RICHARDSON_FIRST_STEP * np.maximum(1.0, np.abs(theta[idx])))
    hs = [h0 / 2.0 ** k for k in range(RICHARDSON_STEPS)]
    Ds, sizes = [], []
    with np.errstate(invalid="ignore", over="ignore"):
        for h in hs:
            Jp, Sp = bb.shifted(idx, h)
            Jm, Sm = bb.shifted(idx, -h)
            Ds.append((Jp - Jm) / (2.0 * h))
            sizes.append(np.maximum(Sp, Sm))
        T = richardson_tableau(Ds)
        roundoff0 = ROUNDOFF_EVALS * EPS * np.maximum(np.max(sizes, axis=0), bb.size0[:, None])
        best = np.full(Ds[0].shape, np.nan)
        err = np.full(Ds[0].shape, np.inf)
        for k in range(2, RICHARDSON_STEPS):
            for j in range(1, k):
                e = (np.abs(T[k, j] - T[k, j - 1]) + np.abs(T[k, j] - T[k - 1, j])
                     + richardson_gain(j) * roundoff0 / hs[k])
                better = np.isfinite(e) & (e < err)
                best = np.where(better, T[k, j], best)
                err = np.where(better, e, err)
    return Estimate("richardson", best, err, bb.count - start)


def complex_step(bb: BlackBox, index=None) -> Estimate:
    """``Im J(theta + i h e_i) / h`` (one evaluation per entry), exact to round-off where J is
    analytic."""
    start = bb.count
    idx = np.arange(bb.theta0.size) if index is None else np.asarray(index, dtype=np.intp)
    J, _ = bb.shifted(idx, np.full(idx.size, 1j * COMPLEX_STEP))
    g = np.imag(J) / COMPLEX_STEP
    err = ROUNDOFF_EVALS * EPS * np.abs(g) + _SMALLEST_SUBNORMAL / COMPLEX_STEP
    err = np.where(np.isfinite(g), err, np.inf)
    return Estimate("complex step", g, err, bb.count - start)


def complex_trial(bb: BlackBox, rng) -> str | None:
    """Does the function accept complex input and stay analytic? ``None`` if so, else why not.

    Tried, not assumed: one complex-step derivative along a random unit direction is
    compared with the central difference along it (5 evaluations). A function that
    refuses complex numbers, discards the imaginary part (``float(...)``, ``.real``, a
    float array assigned into) or is not analytic (``abs``, ``conj``) fails one of them.
    """
    n = bb.theta0.size
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    all_idx = np.arange(n)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            J, _ = bb.along(all_idx, v, 1j * COMPLEX_STEP)
    except UserCodeError as exc:
        return f"it does not accept complex input ({str(exc).partition(' raised ')[2] or exc})"
    except (GradlabError, TypeError, ValueError) as exc:  # GradlabError: not a scalar there
        return f"its value at a complex input is not a number ({exc})"
    complex_warnings = [w for w in caught if issubclass(w.category, np.exceptions.ComplexWarning)]
    if complex_warnings:
        return "it discards the imaginary part of a complex input (numpy ComplexWarning: " \
               f"{str(complex_warnings[0].message).splitlines()[0]})"
    if caught:
        return f"a complex input raises a warning ({caught[0].category.__name__}: " \
               f"{str(caught[0].message).splitlines()[0]})"
    if not np.iscomplexobj(J):
        return "its value at a complex input is real (the imaginary part is dropped)"
    c = np.imag(J) / COMPLEX_STEP
    s = CENTRAL_STEP * max(1.0, float(np.max(np.abs(bb.theta0), initial=0.0)))
    with np.errstate(invalid="ignore", over="ignore"):
        Jp, Sp = bb.along(all_idx, v, s)
        Jm, Sm = bb.along(all_idx, v, -s)
        Jp2, Sp2 = bb.along(all_idx, v, s / 2)
        Jm2, Sm2 = bb.along(all_idx, v, -s / 2)
        d1 = (Jp - Jm) / (2 * s)
        d2 = (Jp2 - Jm2) / s
        size = np.maximum.reduce([Sp, Sm, Sp2, Sm2, bb.size0])
        err = np.abs(d1 - d2) * (4.0 / 3.0) + ROUNDOFF_EVALS * EPS * size / s
        bound = NUMERIC_SAFETY * err + NUMERIC_ROUNDOFF * np.maximum(np.abs(c), np.abs(d1))
    if not np.all(np.isfinite(c)):
        return "its complex-step derivative is not finite"
    if not np.all(np.abs(c - d1) <= bound):
        k = int(np.argmax(np.abs(c - d1) - bound))
        return (f"it is not analytic: along a random direction the complex step gives {c[k]:.6g} and "
                f"central differences {d1[k]:.6g} (abs, conj, a branch on the imaginary part?)")
    return None
