"""The ``"numeric"`` source: finite differences over the cost as a black box.

The cost is only ever *evaluated* here (:func:`_evaluate`); nothing about its derivative
is used, so agreement with the other sources is evidence, not an echo. The one thing
read besides J is, for networks with kinked activations (relu), the on/off pattern of
the hidden units at each evaluated point: it tells whether a stencil crossed a kink.

Methods
-------
``"central"`` (default)
    ``D(h) = (J(theta + h e_i) - J(theta - h e_i)) / 2h``. Two errors:

    * truncation ``~ h^2 |d^3 J / d theta_i^3| / 6``, shrinking with h;
    * round-off ``~ eps |J| / h`` (each evaluation of J is good to a few eps relative),
      growing as h shrinks.

    Their sum is smallest near ``h ~ eps^(1/3)`` (about 6.1e-6 in float64), giving an
    error of order ``eps^(2/3)`` (about 4e-11) times the scale of J and its third
    derivative. The default step is ``eps^(1/3) * max(1, |theta_i|)``, so large weights
    get a step that is still representable relative to them. (The seed uses a fixed
    1e-4, about 300 times past the optimum in truncation error.)
``"forward"``
    ``(J(theta + h e_i) - J(theta)) / h``: truncation ``~ h |J''| / 2``, round-off
    ``~ 2 eps |J| / h``; best near ``h ~ eps^(1/2)``, error ``~ eps^(1/2)``. Half the
    evaluations of central differences, far less accurate: here to be compared.
``"complex"``
    The complex step ``Im J(theta + i h e_i) / h``. There is no difference of nearly
    equal numbers, so h can be tiny (1e-20) and the result is accurate to round-off.
    It needs J to be analytic along the step: the shared cost chooses every branch
    (stable log-sigmoid, relu) on the real part, so complex inputs propagate exactly.
``"richardson"``
    Central differences over the step sequence ``h_k = h_0 / 2^k`` combined by
    Richardson extrapolation (each level cancels the next even power of h). Per entry,
    the tableau value with the smallest estimated error is taken; the estimate is the
    change from the level below plus the round-off of the smallest step used, amplified
    by the extrapolation weights.

Error estimate
--------------
Every entry carries an estimate of its own error (truncation + round-off) so that
comparisons judge a numeric gradient against it instead of a bare tolerance. For
central and forward differences the truncation part comes from the same difference at
half the step (the stencil stays inside the one used): with error ``c h^p``,
``|D(h) - D(h/2)| = (1 - 2^-p) c h^p``. The round-off part is ``ROUNDOFF_EVALS * eps *
|J| / h`` with |J| the largest value met on the stencil (a step can make the
regularisation dwarf a tiny data term). The complex step's estimate is a few eps of the
entry plus the resolution of its imaginary part (smallest subnormal / h); the comparer adds the exact side's round-off
(:data:`gradlab.compare.NUMERIC_ROUNDOFF`).

Batched evaluation
------------------
All perturbed parameter vectors of a gradient are stacked and pushed through the shared
cost together (``_cost`` accepts a leading batch axis), a chunk of rows at a time.

Kinks
-----
A relu network's cost is only piecewise smooth. When the pattern of active hidden
units at a stencil point differs from the pattern at theta, the stencil crossed a kink
and a difference quotient across it is meaningless. Such an entry is reported as a
*kink* with its left and right one-sided difference quotients (steps shrunk until they
no longer cross, when the kink is not at theta itself) instead of being judged.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab import _cost, _judge, _progress, _resources, _threads
from gradlab import _validate as v
from gradlab._judge import CENTRAL_STEP, EPS, ROUNDOFF_EVALS
from gradlab.network import Problem, check_problem

__all__ = ["METHODS", "NumericGradient", "numeric_gradient", "default_steps", "evaluations", "guard",
           "CENTRAL_STEP", "FORWARD_STEP", "COMPLEX_STEP", "RICHARDSON_FIRST_STEP", "RICHARDSON_STEPS",
           "ROUNDOFF_EVALS"]

# EPS, CENTRAL_STEP (eps^(1/3), the minimiser of h^2 + eps/h) and ROUNDOFF_EVALS are the
# error model the checker's directional differences share: they live in gradlab._judge.
#: Relative step for forward differences: eps^(1/2), the minimiser of h + eps/h.
FORWARD_STEP = EPS ** 0.5
#: Complex step. Its truncation error is h^2 |J'''| / 6 relative to nothing that
#: cancels, so any h far below sqrt(eps) is exact to round-off; 1e-20 is the customary
#: choice, small enough for any curvature and large enough that h * |dJ| stays a normal
#: float for gradients down to about 1e-288.
COMPLEX_STEP = 1e-20
_SMALLEST_SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)
#: Richardson: first (largest) relative step and number of steps, each half the one
#: before. Extrapolation only helps inside the cost's radius of convergence (for a
#: sigmoid, pi in z, so pi / |dz/dtheta| in theta): 2^-4 suits moderate weights, and
#: 12 steps reach 2^-15 ~ 3e-5 for steep problems (saturating weights, large inputs),
#: where the round-off eps |J| / h is still only ~ 7e-12 |J|.
RICHARDSON_FIRST_STEP = 2.0 ** -4
RICHARDSON_STEPS = 12
#: How many times a one-sided step is halved, at most, to find a step whose interval
#: holds no kink but (perhaps) theta's own (2^-30 ~ 1e-9 of the step).
KINK_HALVINGS = 30
#: Bytes of working memory per chunk of stacked evaluations: large enough that each
#: chunk is a few big matrix products (about 45 parameter vectors at a time for
#: 400-25-10 on 5,000 examples; measured 1.6x faster per evaluation than 11 at a time),
#: small enough to stay well inside a laptop's memory.
BATCH_BYTES = 256 * 2**20

def working_memory(sizes, m: int) -> int:
    """Bytes of the stacked evaluations at a time: up to :data:`BATCH_BYTES`, less when all
    the rows of a gradient take less, at least one (complex) row however large."""
    P = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    row = 2 * 8 * (P + 4 * m * sum(sizes[1:]))  # complex rows count twice (see Evaluator)
    return max(row, min(BATCH_BYTES, 2 * P * row))


#: The methods, by name.
METHODS = ("central", "forward", "complex", "richardson")

#: Cost evaluations of one gradient by each numeric method, with its error estimate
#: (``error=True``) or without: a multiple of P, plus the evaluation at theta.
_EVALS_PER_PARAM = {
    ("central", True): 4, ("central", False): 2,
    ("forward", True): 2, ("forward", False): 1,
    # one complex evaluation costs about four real ones (complex products)
    ("complex", True): 4, ("complex", False): 4,
    # Richardson: a central difference at each of its steps
    ("richardson", True): 2 * RICHARDSON_STEPS, ("richardson", False): 2 * RICHARDSON_STEPS,
}


def evaluations(n_params: int, method: str = "central", error: bool = True) -> int:
    """Real-cost-equivalent evaluations of one numeric gradient of ``n_params`` entries."""
    return _EVALS_PER_PARAM[(method, bool(error))] * int(n_params) + 1


def stacked_evaluations(n_params: int, method: str = "central", error: bool = True) -> int:
    """Cost evaluations one numeric gradient makes, a complex one counting once (what its
    progress counts): :func:`evaluations` but for the complex step, one per entry."""
    per = 1 if method == "complex" else _EVALS_PER_PARAM[(method, bool(error))]
    return per * int(n_params) + 1


@dataclasses.dataclass(frozen=True, eq=False)
class NumericGradient:
    """A finite-difference gradient with a per-entry error estimate and its kinks.

    Attributes
    ----------
    gradient : numpy.ndarray
        The estimate of dJ/dtheta, shape ``(n_params,)``.
    error : numpy.ndarray
        Estimated absolute error of each entry (truncation + round-off).
    method : str
        One of :data:`METHODS`.
    step : numpy.ndarray
        The step used for each entry (the smallest one for Richardson).
    kink : numpy.ndarray of bool
        Entries whose stencil crossed a kink of a relu unit; not to be judged.
    left, right : numpy.ndarray
        One-sided difference quotients for the kink entries (NaN elsewhere).
    cost : float
        J at theta.

    Unpacks as ``gradient, error = result``.
    """

    gradient: np.ndarray
    error: np.ndarray
    method: str
    step: np.ndarray
    kink: np.ndarray
    left: np.ndarray
    right: np.ndarray
    cost: float

    def __iter__(self):
        return iter((self.gradient, self.error))

    @property
    def kinks(self) -> np.ndarray:
        """Flat indices of the kink entries."""
        return np.flatnonzero(self.kink)


# -------------------------------------------------------------------------- black box


class Evaluator:
    """J at many parameter vectors at once; for kinked networks, also whether the
    hidden units' on/off pattern differs from the pattern at a reference point."""

    def __init__(self, problem: Problem, theta: np.ndarray):
        _judge.check_magnitudes(problem, np.real(theta))
        self.network, self.X, self.Y, self.lam = problem.network, problem.X, problem.Y, problem.lam
        self.kinked = _cost.ACTIVATIONS[self.network.activation].kink
        net, m = self.network, problem.m
        # Memory of one stacked row: its parameters and every layer's z and activation
        # (a few temporaries each); complex rows count twice.
        self._row_bytes = 8 * (net.n_params + 4 * m * sum(net.sizes[1:]))
        self.count = 0
        J, pattern = self._run(theta[None, :])
        self.J0 = float(J[0])
        self.pattern0 = None if pattern is None else [p[0] for p in pattern]

    def _run(self, thetas):
        zs, _ = _cost.forward(np, self.network, thetas, self.X)
        J = _cost.cost_from_forward(np, self.network, thetas, zs[-1], self.Y, self.lam)
        self.count += thetas.shape[0]
        _progress.evaluated(thetas.shape[0])
        pattern = [np.real(z) > 0 for z in zs[:-1]] if self.kinked else None
        return J, pattern

    def chunk(self, complex_: bool = False) -> int:
        """Rows per stacked evaluation."""
        return max(1, int(BATCH_BYTES // (self._row_bytes * (2 if complex_ else 1))))

    def shifted(self, theta, index, delta, patterns=False):
        """J(theta + delta_r e_{index_r}) for every r, and whether each crossed a kink
        (or, with ``patterns=True``, every row's on/off pattern, one array per layer).

        The rows are built and evaluated a chunk at a time through the one cost.
        """
        index = np.asarray(index, dtype=np.intp)
        delta = np.asarray(delta)
        n = index.size
        out = np.empty(n, dtype=np.result_type(theta.dtype, delta.dtype))
        crossed = np.zeros(n, dtype=bool)
        size = self.chunk(np.iscomplexobj(delta))
        kept = []
        for start in range(0, n, size):
            stop = min(n, start + size)
            rows = np.repeat(theta[None, :].astype(out.dtype), stop - start, axis=0)
            rows[np.arange(stop - start), index[start:stop]] += delta[start:stop]
            J, pattern = self._run(rows)
            out[start:stop] = J
            if patterns:
                kept.append(pattern)
            elif pattern is not None:
                for p, p0 in zip(pattern, self.pattern0):
                    crossed[start:stop] |= np.any(p != p0, axis=(-2, -1))
        if patterns:
            return out, [np.concatenate(layer) for layer in zip(*kept)] if self.kinked else []
        return out, crossed


# ------------------------------------------------------------------------- the methods


def default_steps(params, method: str = "central") -> np.ndarray:
    """The default step of each entry for ``method``, scaled by ``max(1, |theta_i|)``.

    ``eps^(1/3)`` for central differences, ``eps^(1/2)`` for forward differences,
    ``1e-20`` (unscaled) for the complex step, ``2^-4`` (the first of the sequence) for
    Richardson. Real steps are rounded so that ``theta_i + h`` is exact: the step used is
    the step the floating-point perturbation really takes.
    """
    method = v.choice("method", method, METHODS)
    theta = np.asarray(params, dtype=np.float64)
    if method == "complex":
        return np.full(theta.shape, COMPLEX_STEP)
    relative = {"central": CENTRAL_STEP, "forward": FORWARD_STEP, "richardson": RICHARDSON_FIRST_STEP}[method]
    return representable(theta, relative * np.maximum(1.0, np.abs(theta)))


def representable(theta, h):
    return (theta + h) - theta


def central(ev: Evaluator, theta, h, index):
    """Central differences of the entries ``index`` at steps ``h`` (arrays alike).

    Also returns whether each stencil crossed a kink, and the largest |J| it evaluated:
    each evaluation is good to a few eps of its *own* value, which can far exceed
    |J(theta)| (a tiny data term next to the regularisation of a large step).
    """
    n = index.size
    J, crossed = ev.shifted(theta, np.r_[index, index], np.r_[h, -h])
    size = np.maximum(np.maximum(np.abs(J[:n]), np.abs(J[n:])), abs(ev.J0))
    return (J[:n] - J[n:]) / (2.0 * h), crossed[:n] | crossed[n:], size


def forward_difference(ev: Evaluator, theta, h, index):
    """Forward differences; returns like :func:`central`."""
    J, crossed = ev.shifted(theta, index, h)
    return (J - ev.J0) / h, crossed, np.maximum(np.abs(J), abs(ev.J0))


def complex_step(ev: Evaluator, theta, h, index):
    J, crossed = ev.shifted(theta.astype(np.complex128), index, 1j * h)
    return J.imag / h, crossed


def richardson_tableau(D):
    """Richardson tableau from central differences ``D[k]`` at steps ``h_0 / 2^k``.

    ``T[k][j]`` cancels the error terms h^2 .. h^(2j); returned as an array of shape
    ``(K, K, n)`` with NaN above the diagonal.
    """
    K = len(D)
    T = np.full((K, K) + np.shape(D[0]), np.nan)
    for k in range(K):
        T[k, 0] = D[k]
        for j in range(1, k + 1):
            w = 4.0**j
            T[k, j] = T[k, j - 1] + (T[k, j - 1] - T[k - 1, j - 1]) / (w - 1.0)
    return T


def richardson_gain(j: int) -> float:
    """Sum of |weights| of level j over the differences it combines: how much the
    round-off of one difference is amplified by extrapolating j levels."""
    gain = 1.0
    for i in range(1, j + 1):
        w = 4.0**i
        gain = gain * (w + 1.0) / (w - 1.0)
    return gain


def _richardson(ev: Evaluator, theta, h0, index):
    """Best tableau entry per parameter; returns value, error, step, kink mask."""
    K = RICHARDSON_STEPS
    hs = [h0 / 2.0**k for k in range(K)]
    Ds, crossed, sizes = [], [], []
    for h in hs:
        d, c, size = central(ev, theta, h, index)
        Ds.append(d)
        crossed.append(c)
        sizes.append(size)
    T = richardson_tableau(Ds)
    # Round-off of J over every stencil of the sequence (the largest |J| seen).
    roundoff0 = ROUNDOFF_EVALS * EPS * np.max(sizes, axis=0)
    best = np.full(index.size, np.nan)
    err = np.full(index.size, np.inf)
    step = np.array(hs[-1], dtype=np.float64, copy=True)
    # A tableau value T[k][j] uses the steps k-j .. k; it is usable only if none of
    # them crossed a kink. Its error estimate asks for two signs of convergence: the
    # change from level j-1 at the same step, and the change from the previous step at
    # the same level (one alone can be small by accident far from the limit), plus the
    # round-off of the smallest step, amplified by the extrapolation weights.
    for k in range(2, K):
        for j in range(1, k):
            usable = ~np.any(np.array(crossed[k - j - 1 : k + 1]), axis=0)
            e = (np.abs(T[k, j] - T[k, j - 1]) + np.abs(T[k, j] - T[k - 1, j])
                 + richardson_gain(j) * roundoff0 / hs[k])
            better = usable & (e < err)
            best = np.where(better, T[k, j], best)
            err = np.where(better, e, err)
            step = np.where(better, hs[k], step)
    kink = ~np.isfinite(err)
    # No clean triple at all: fall back to the smallest step's central difference.
    best = np.where(kink, Ds[-1], best)
    err = np.where(kink, np.abs(Ds[-1] - Ds[-2]) + roundoff0 / hs[-1], err)
    return best, err, step, kink


def _one_sided(ev: Evaluator, theta, index, h) -> tuple[np.ndarray, np.ndarray]:
    """Left and right one-sided quotients of the entries ``index`` at a kink.

    For each side, the steps ``h / 2^k``, k = 0 .. KINK_HALVINGS, are evaluated in one
    stack; the pattern at the smallest is the pattern just beside theta, and the largest
    step from which every smaller one shows that same pattern is used: the interval
    (theta, theta +- step] then lies on one smooth piece (theta itself may sit on the
    kink), and the quotient tends to that side's derivative.
    """
    n, K = index.size, KINK_HALVINGS + 1
    out = []
    for side in (-1.0, 1.0):
        scale = 0.5 ** np.arange(K)
        steps = representable(theta[index][:, None], side * h[:, None] * scale[None, :]) * side
        rows_i = np.repeat(index, K)
        J, patterns = ev.shifted(theta, rows_i, side * steps.ravel(), patterns=True)
        J = J.reshape(n, K)
        same = steps > 0  # as the last usable step: (n, K)
        last = np.maximum(np.sum(same, axis=1) - 1, 0)
        for p in patterns:
            p = p.reshape((n, K) + p.shape[1:])
            same &= np.all(p == p[np.arange(n), last][:, None], axis=(-2, -1))
        # stable[k]: steps k .. last all show the pattern beside theta
        stable = np.flip(np.logical_and.accumulate(np.flip(same | (np.arange(K) > last[:, None]), axis=1), axis=1), axis=1)
        k = np.argmax(stable, axis=1)
        chosen = steps[np.arange(n), k]
        out.append(side * (J[np.arange(n), k] - ev.J0) / chosen)
    return out[0], out[1]


def numeric_gradient(problem: Problem, params, *, method: str = "central", step=None,
                     force: bool = False) -> NumericGradient:
    """Finite-difference gradient of the cost, with a per-entry error estimate.

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
    method : {"central", "forward", "complex", "richardson"}, default "central"
        See the module documentation for each method's error model.
    step : float or array_like, optional
        Relative step: each entry uses ``step * max(1, |theta_i|)`` (the complex step
        uses ``step`` as is; Richardson uses it as the first of its halving sequence).
        Default: the method's own, see :func:`default_steps`.
    force : bool, default False
        Run even when the estimated time is above
        :data:`gradlab._resources.NUMERIC_TIME_LIMIT` (see :func:`guard`).

    Returns
    -------
    NumericGradient
        ``.gradient``, ``.error`` (estimated absolute error per entry), ``.kink`` (entries
        whose stencil crossed a relu kink) with ``.left`` / ``.right`` one-sided values.

    Raises
    ------
    GradlabError
        Bad problem, params, method or step; or an estimated time above the limit
        without ``force``.

    Examples
    --------
    >>> import gradlab
    >>> p = gradlab.debug_problem()
    >>> r = gradlab.numeric_gradient(p, gradlab.debug_init(p.network), method="complex")
    >>> bool(abs(r.gradient - gradlab.gradient(p, gradlab.debug_init(p.network))).max() < 1e-15)
    True
    """
    problem = check_problem(problem)
    theta = problem.network.check_params(params)
    method = v.choice("method", method, METHODS)
    if step is None:
        h = default_steps(theta, method)
    else:
        rel = v.float_array("step", step, ndim=np.ndim(step))
        if rel.ndim > 1 or (rel.ndim == 1 and rel.shape != theta.shape) or np.any(rel <= 0):
            raise v.fail("step", step, f"a positive number or {theta.size} positive numbers")
        h = rel if method == "complex" else representable(theta, rel * np.maximum(1.0, np.abs(theta)))
        h = np.broadcast_to(h, theta.shape).astype(np.float64)
        if np.any(h <= 0):
            raise v.fail("step", step, "steps large enough to change theta + step")
    guard(problem, theta, method, force=force)
    return _estimate(problem, theta, method, h)


def _estimate(problem: Problem, theta: np.ndarray, method: str, h: np.ndarray, error: bool = True) -> NumericGradient:
    """The work of :func:`numeric_gradient` (inputs validated). ``error=False``: only
    the gradient, for central and forward differences at half the evaluations. The BLAS
    threads are chosen once for all its evaluations (:mod:`gradlab._threads`)."""
    what = f"finite differences ({method})"
    total = stacked_evaluations(theta.size, method, error)
    with _threads.for_problem(problem), _progress.task(what, total, "cost evaluations"):
        return _estimate_limited(problem, theta, method, h, error)


def _estimate_limited(problem: Problem, theta: np.ndarray, method: str, h: np.ndarray, error: bool) -> NumericGradient:
    """The body of :func:`_estimate`."""
    ev = Evaluator(problem, theta)
    index = np.arange(theta.size)
    if not error and method in ("central", "forward"):
        g, kink, _ = (central if method == "central" else forward_difference)(ev, theta, h, index)
        nan = np.full(theta.size, np.nan)
        return NumericGradient(g, nan, method, h, kink, nan, nan.copy(), ev.J0)
    if method == "central":
        g, crossed, size = central(ev, theta, h, index)
        g2, crossed2, size2 = central(ev, theta, representable(theta, h / 2.0), index)
        # error c h^2: D(h) - D(h/2) = (3/4) c h^2
        err = np.abs(g - g2) * (4.0 / 3.0) + ROUNDOFF_EVALS * EPS * np.maximum(size, size2) / h
        kink = crossed | crossed2
        step = h
    elif method == "forward":
        g, crossed, size = forward_difference(ev, theta, h, index)
        g2, crossed2, size2 = forward_difference(ev, theta, representable(theta, h / 2.0), index)
        # error c h: D(h) - D(h/2) = c h / 2; two evaluations of J, one step h
        err = np.abs(g - g2) * 2.0 + 2.0 * ROUNDOFF_EVALS * EPS * np.maximum(size, size2) / h
        kink = crossed | crossed2
        step = h
    elif method == "complex":
        g, kink = complex_step(ev, theta, h, index)
        # Nothing cancels: a few eps relative to the entry itself (round-off inside J's
        # sums relative to the gradient's scale is the comparer's allowance), and the
        # imaginary part's resolution: h g underflows below the smallest subnormal, so no
        # entry is known better than smallest_subnormal / h (~5e-304 for h = 1e-20).
        err = ROUNDOFF_EVALS * EPS * np.abs(g) + _SMALLEST_SUBNORMAL / h
        step = h
    else:
        g, err, step, kink = _richardson(ev, theta, h, index)
    left = np.full(theta.size, np.nan)
    right = np.full(theta.size, np.nan)
    at = np.flatnonzero(kink)
    if at.size:
        hk = step[at] if method != "richardson" else h[at] / 2.0 ** (RICHARDSON_STEPS - 1)
        left[at], right[at] = _one_sided(ev, theta, at, np.asarray(hk, dtype=np.float64))
    return NumericGradient(
        gradient=np.asarray(g, dtype=np.float64),
        error=np.asarray(err, dtype=np.float64),
        method=method,
        step=np.asarray(step, dtype=np.float64),
        kink=np.asarray(kink, dtype=bool),
        left=left,
        right=right,
        cost=ev.J0,
    )


# --------------------------------------------------------------- the registry's face


def guard(problem: Problem, theta: np.ndarray, method: str = "central", *, error: bool = True,
          force: bool = False, what: str | None = None) -> None:
    """Refuse a full numeric gradient whose estimated time is above the limit, unless forced.

    Estimated as the method's cost evaluations (:func:`evaluations`)
    times the timed seconds of one; small problems are let through without timing.
    """
    n = evaluations(theta.size, method, error)
    _resources.require_time(
        problem, theta, n, what or f"a numeric gradient ({method} differences"
        + (", with its error estimate)" if error and method in ("central", "forward") else ")"),
        force=force, instead="use backprop or jax (exact, one pass)")



def _estimator(method: str):
    def estimate(problem: Problem, params: np.ndarray) -> NumericGradient:
        theta = np.array(params, dtype=np.float64)
        guard(problem, theta, method)
        return _estimate(problem, theta, method, default_steps(theta, method))

    estimate.__name__ = f"estimate_{method}"
    return estimate


estimate = _estimator("central")
estimate_forward = _estimator("forward")
estimate_complex = _estimator("complex")
estimate_richardson = _estimator("richardson")


def _gradient_of(method: str):
    """The plain ``(problem, params) -> grad`` face: no error estimate where it costs."""

    def value_and_gradient(problem: Problem, params: np.ndarray):
        theta = np.array(params, dtype=np.float64)
        guard(problem, theta, method, error=False)
        r = _estimate(problem, theta, method, default_steps(theta, method), error=False)
        return r.cost, r.gradient

    def gradient(problem: Problem, params: np.ndarray) -> np.ndarray:
        return value_and_gradient(problem, params)[1]

    return gradient, value_and_gradient


gradient, value_and_gradient = _gradient_of("central")
gradient_forward, value_and_gradient_forward = _gradient_of("forward")
gradient_complex, value_and_gradient_complex = _gradient_of("complex")
gradient_richardson, value_and_gradient_richardson = _gradient_of("richardson")
