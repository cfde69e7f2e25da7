"""The user's cost function, checked against gradlab's cost at the check point and nearby."""

from __future__ import annotations

import math

import numpy as np

from gradlab import _cost
from gradlab._judge import COST_RTOL, EPS, NUMERIC_SAFETY, ROUNDOFF_EVALS
from gradlab.check.calls import Caller, mutation_findings
from gradlab.check.findings import MAX_LISTED, Finding

__all__ = ["check_cost"]


def _eps(dtype) -> float:
    """Machine epsilon of the cost's dtype (float64's for integers and float64 itself)."""
    dtype = np.dtype(dtype)
    return max(EPS, float(np.finfo(dtype).eps)) if dtype.kind == "f" else EPS


def check_cost(cost_caller: Caller, problem, params, U, rng, *, R=None, gradient_right=None,
               who: str | None = None, report_writes: bool = True) -> list[Finding]:
    """cost_mismatch (and the cost call's writes) for the user's cost.

    ``U`` is the user's gradient, ``R`` the exact reference (None without one) and
    ``gradient_right`` whether U agrees with it: the sentence says how the gradient relates
    to the user's own cost only when random-direction differences of that cost can tell.
    """
    net = problem.network
    findings = []
    who = who or f"cost_fn {cost_caller.name}"
    dtypes = []

    def user_cost(prob, theta):
        call = cost_caller(prob, theta)
        if report_writes:
            findings.extend(f for f in mutation_findings(net, call, None, U, who)
                            if not any(g.kind == f.kind and g.layer == f.layer and g.extra == f.extra for g in findings))
        val, dtype = cost_caller.read_cost(call.raw)
        dtypes.append(dtype)
        return val

    J = lambda prob, theta: float(_cost.cost(np, net, theta, prob.X, prob.Y, prob.lam))  # noqa: E731
    points = [params] + [params + 0.1 * rng.standard_normal(params.size) for _ in range(2)]
    bad = []
    for theta in points:
        for prob in ([problem, problem.with_lam(0.0)] if problem.lam > 0 else [problem]):
            mine, ours = user_cost(prob, theta), J(prob, theta)
            # A float32 cost is judged at its own precision: a few of its eps per operation.
            eps = _eps(dtypes[-1])
            rtol = COST_RTOL if eps == EPS else NUMERIC_SAFETY * ROUNDOFF_EVALS * eps
            if not math.isfinite(mine) or abs(mine - ours) > rtol * max(1.0, abs(ours)):
                bad.append((prob.lam, mine, ours))
    if not bad:
        return findings
    lams = {b[0] for b in bad}
    only_reg = 0.0 not in lams
    vals = [{"entry": f"lam={b[0]:g}", "yours": b[1], "expected": b[2]} for b in bad[:MAX_LISTED]]
    nonfinite = any(not math.isfinite(b[1]) for b in bad)
    consistent = None
    if not nonfinite and not gradient_right:
        consistent = _follows_own_cost(user_cost, problem, params, U, R, rng, _eps(dtypes[0]))
    if nonfinite:
        cause = "cost not finite"
        sentence = (f"{who} returned {bad[0][1]} where the cost is {bad[0][2]:.6g}: taking log(h) of a "
                    "saturated sigmoid gives log(0). Compute the cost from z with log-sigmoid (softplus) forms.")
    elif only_reg:
        cause = "regularisation term of the cost"
        sentence = (f"{who} agrees with gradlab's cost at lambda = 0 but not at lambda = {problem.lam:g}: "
                    "the regularisation term lam/(2m) * (sum of squares, bias column excluded) is wrong.")
    else:
        cause = "data term of the cost"
        sentence = (f"{who} differs from gradlab's cost already at lambda = 0: the cross-entropy "
                    "-(1/m) sum [y log h + (1 - y) log(1 - h)] is computed differently.")
    if gradient_right:
        sentence += " Your gradient is right (it agrees with the exact reference): only the cost is wrong."
    elif consistent:
        sentence += " Your gradient is the gradient of your own cost, so the cost is where the bug is."
    elif consistent is False:
        sentence += (" Your gradient is not the gradient of your own cost either: the two are wrong in "
                     "different ways.")
    findings.append(Finding("cost_mismatch", None, sentence,
                            "evaluated your cost and gradlab's at the check point and two perturbed points, at "
                            "lambda on and off; then compared your gradient with your cost's directional "
                            "derivatives along two random directions",
                            values=vals, blame="cost", cause=cause,
                            extra={"gradient_consistent_with_your_cost": consistent,
                                   "gradient_right": gradient_right}))
    return findings


def _follows_own_cost(user_cost, problem, params, U, R, rng, eps: float):
    """Is U the gradient of the user's cost? True, False, or None when the cost's own
    finite differences cannot tell (too noisy, or U and R too close along the directions).

    Two random directions, central differences at steps h and 2h: round-off of two
    evaluations at the cost's precision plus truncation estimated from the two steps
    (Richardson), NUMERIC_SAFETY times. The step is eps^(1/3) of that precision.
    """
    h = eps ** (1.0 / 3.0) * max(1.0, float(np.max(np.abs(params))))
    Jm = user_cost(problem, params)
    verdicts = []
    for _ in range(2):
        v = rng.standard_normal(params.size)
        v /= np.linalg.norm(v)
        d1, d2 = ((user_cost(problem, params + s * v) - user_cost(problem, params - s * v)) / (2 * s)
                  for s in (h, 2 * h))
        tol = NUMERIC_SAFETY * (ROUNDOFF_EVALS * eps * abs(Jm) / h + abs(d2 - d1) / 3.0)
        gap = abs(float(U @ v) - d1)
        if R is not None and abs(float(U @ v) - float(R @ v)) <= 2.0 * tol:
            verdicts.append(None)  # along v the differences cannot tell U from the true gradient
        else:
            verdicts.append(gap <= tol)
    if False in verdicts:
        return False
    return True if True in verdicts else None
