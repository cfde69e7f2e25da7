"""The user's cost function, checked against gradlab's cost at the check point and nearby."""

from __future__ import annotations

import math

import numpy as np

from gradlab import _cost
from gradlab._errors import GradlabError
from gradlab._judge import CENTRAL_STEP, COST_RTOL, EPS, NUMERIC_SAFETY, ROUNDOFF_EVALS
from gradlab.check.calls import Caller, mutation_findings
from gradlab.check.findings import MAX_LISTED, Finding
from gradlab.network import Problem

__all__ = ["check_cost"]


def check_cost(cost_caller: Caller, problem: Problem, params, U, rng) -> list[Finding]:
    net = problem.network
    findings = []
    name = cost_caller.name

    def user_cost(prob, theta):
        call = cost_caller(prob, theta)
        findings.extend(f for f in mutation_findings(net, call, None, U, f"cost_fn {name}")
                        if not any(g.kind == f.kind and g.layer == f.layer and g.extra == f.extra for g in findings))
        val = np.asarray(call.raw, dtype=np.float64).ravel() if np.asarray(call.raw).dtype.kind in "fiu" else None
        if call.raw is None:
            raise GradlabError(f"cost_fn {name} returned None (is its return statement missing?); it must "
                               f"return the cost, one number")
        if val is None or val.size != 1:
            raise GradlabError(f"cost_fn {name} must return one number; got {type(call.raw).__name__}")
        return float(val[0])

    J = lambda prob, theta: float(_cost.cost(np, net, theta, prob.X, prob.Y, prob.lam))
    points = [params] + [params + 0.1 * rng.standard_normal(params.size) for _ in range(2)]
    bad = []
    for theta in points:
        for prob in ([problem, problem.with_lam(0.0)] if problem.lam > 0 else [problem]):
            mine, ours = user_cost(prob, theta), J(prob, theta)
            if not math.isfinite(mine) or abs(mine - ours) > COST_RTOL * max(1.0, abs(ours)):
                bad.append((prob.lam, mine, ours))
    if not bad:
        return findings
    lams = {b[0] for b in bad}
    only_reg = 0.0 not in lams
    vals = [{"entry": f"lam={b[0]:g}", "yours": b[1], "expected": b[2]} for b in bad[:MAX_LISTED]]
    nonfinite = any(not math.isfinite(b[1]) for b in bad)
    # Is the user's gradient the gradient of the user's own cost? Two evaluations per direction.
    consistent = None
    if not nonfinite:
        h = CENTRAL_STEP * max(1.0, float(np.max(np.abs(params))))
        gaps, tols = [], []
        Jm = user_cost(problem, params)
        for _ in range(2):
            v = rng.standard_normal(params.size)
            v /= np.linalg.norm(v)
            d1, d2 = ((user_cost(problem, params + s * v) - user_cost(problem, params - s * v)) / (2 * s)
                      for s in (h, 2 * h))
            gaps.append(abs(float(U @ v) - d1))
            # Round-off of the two evaluations plus truncation estimated from step 2h (Richardson).
            tols.append(NUMERIC_SAFETY * (ROUNDOFF_EVALS * EPS * abs(Jm) / h + abs(d2 - d1) / 3.0))
        consistent = all(g <= t for g, t in zip(gaps, tols))
    if nonfinite:
        cause = "cost not finite"
        sentence = (f"cost_fn {name} returned {bad[0][1]} where the cost is {bad[0][2]:.6g}: taking log(h) of a "
                    "saturated sigmoid gives log(0). Compute the cost from z with log-sigmoid (softplus) forms.")
    elif only_reg:
        cause = "regularisation term of the cost"
        sentence = (f"cost_fn {name} agrees with gradlab's cost at lambda = 0 but not at lambda = {problem.lam:g}: "
                    "the regularisation term lam/(2m) * (sum of squares, bias column excluded) is wrong.")
    else:
        cause = "data term of the cost"
        sentence = (f"cost_fn {name} differs from gradlab's cost already at lambda = 0: the cross-entropy "
                    "-(1/m) sum [y log h + (1 - y) log(1 - h)] is computed differently.")
    if consistent:
        sentence += " Your gradient is the gradient of your own cost, so the cost is where the bug is."
    elif consistent is False:
        sentence += " Your gradient is not the gradient of your own cost either."
    findings.append(Finding("cost_mismatch", None, sentence,
                            "evaluated your cost and gradlab's at the check point and two perturbed points, at "
                            "lambda on and off; then compared your gradient with your cost's directional "
                            "derivatives along two random directions",
                            values=vals, blame="cost", cause=cause,
                            extra={"gradient_consistent_with_your_cost": consistent}))
    return findings

