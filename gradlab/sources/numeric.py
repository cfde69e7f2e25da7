"""The ``"numeric"`` source: central differences over the cost as a black box.

The cost is only ever *evaluated* here (:func:`_black_box`); nothing about its structure
is used, so agreement with the other sources is evidence, not an echo.

Default step and why
--------------------
Central differences ``(J(theta + h e_i) - J(theta - h e_i)) / 2h`` have two errors:

* truncation ``~ h^2 |d^3 J / d theta_i^3| / 6``, shrinking with h;
* round-off ``~ eps |J| / h`` (each evaluation of J is good to a few eps relative),
  growing as h shrinks.

Their sum is smallest near ``h ~ eps^(1/3)`` (about 6.1e-6 in float64), giving an error of
order ``eps^(2/3)`` (about 4e-11) times the scale of J and its third derivative. The step is
scaled by ``max(1, |theta_i|)`` so that large weights get a step that is still
representable relative to them. (The seed uses a fixed 1e-4, which is about 300 times
past the optimum in truncation error.)

Error estimate
--------------
Every entry carries an estimate of its own error: the truncation part from the same
difference at step 2h (``|D(2h) - D(h)| / 3``, since the leading error grows as h^2)
plus the round-off bound ``ROUNDOFF_EVALS * eps * |J| / h``. Comparisons judge numeric
gradients against this estimate instead of a bare tolerance.
"""

from __future__ import annotations

import numpy as np

from gradlab.network import Problem, _cost

EPS = float(np.finfo(np.float64).eps)
#: Relative step for central differences: eps^(1/3), the minimiser of truncation + round-off.
CENTRAL_STEP = EPS ** (1.0 / 3.0)
#: Relative error, in units of eps, assumed for one evaluation of J (a sum of m*K
#: non-negative terms plus the regularisation; each term is good to a few eps and the
#: pairwise sum adds a few more). Two evaluations enter each difference.
ROUNDOFF_EVALS = 8.0


def _black_box(problem: Problem):
    """J as a function of the flat parameters alone."""
    network, X, Y, lam = problem.network, problem.X, problem.Y, problem.lam
    return lambda theta: float(_cost(np, network, theta, X, Y, lam))


def steps(params: np.ndarray, relative: float = CENTRAL_STEP) -> np.ndarray:
    """Per-parameter step ``relative * max(1, |theta_i|)``, rounded so theta +- h is exact."""
    h = relative * np.maximum(1.0, np.abs(params))
    # Use the step the floating-point perturbation really takes.
    return (params + h) - params


def _central(J, theta: np.ndarray, h: np.ndarray) -> np.ndarray:
    g = np.empty_like(theta)
    work = theta.copy()
    for i in range(theta.size):
        base = work[i]
        work[i] = base + h[i]
        plus = J(work)
        work[i] = base - h[i]
        minus = J(work)
        work[i] = base
        g[i] = (plus - minus) / (2.0 * h[i])
    return g


def estimate(problem: Problem, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient and a per-entry error estimate (see module docstring)."""
    J = _black_box(problem)
    theta = np.array(params, dtype=np.float64)
    h = steps(theta)
    g = _central(J, theta, h)
    g2 = _central(J, theta, 2.0 * h)
    truncation = np.abs(g2 - g) / 3.0
    roundoff = ROUNDOFF_EVALS * EPS * abs(J(theta)) / h
    return g, truncation + roundoff


def gradient(problem: Problem, params: np.ndarray) -> np.ndarray:
    """Central-difference gradient at the default step (the ``"numeric"`` source)."""
    J = _black_box(problem)
    theta = np.array(params, dtype=np.float64)
    return _central(J, theta, steps(theta))


def value_and_gradient(problem: Problem, params: np.ndarray) -> tuple[float, np.ndarray]:
    """Cost and central-difference gradient."""
    return _black_box(problem)(np.array(params, dtype=np.float64)), gradient(problem, params)
