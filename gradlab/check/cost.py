"""The user's cost function: checked against gradlab's cost at the check point and nearby
(:func:`check_cost`), or -- when it is the user's own cost, not the course's -- the one the
gradient is judged against (:func:`own_cost_check`)."""

from __future__ import annotations

import math

import numpy as np
from array_api_compat import array_namespace

from gradlab import _cost
from gradlab._errors import GradlabError
from gradlab._judge import CENTRAL_STEP, COST_RTOL, EPS, NUMERIC_SAFETY, ROUNDOFF_EVALS
from gradlab._usercode import fn_name
from gradlab.check.calls import Caller, as_gradient, mutation_findings
from gradlab.check.findings import INPUT_FAILING, MAX_LISTED, Finding, InputFinding
from gradlab.check.function import FunctionCase
from gradlab.check.generic import run
from gradlab.check.inputs import AGAINST, Inputs
from gradlab.check.report import GradientReport
from gradlab.network import Problem

__all__ = ["check_cost", "own_cost_check"]


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



# --------------------------------------------------------------------------------------
# Your own cost: the gradient judged against it, the course's cost compared on the side
# --------------------------------------------------------------------------------------


def own_cost_check(grad_fn, cost_fn, signature: str, problem: Problem, params, *, mode: str, against,
                   seed: int, info: dict) -> GradientReport:
    """Judge ``grad_fn`` against ``cost_fn`` -- your own cost, not the course's -- with the
    generic engine, each weight matrix an input (``Theta1``, ``Theta2`` ...); then report,
    without failing the check, how your cost differs from the course's regularised
    cross-entropy.

    The witnesses are jax (when it can trace ``cost_fn``: written against the array API)
    and finite differences of ``cost_fn``; the course's cost plays no part in the verdict.
    """
    net = problem.network
    names = [f"Theta{k}" for k in range(1, len(net.shapes) + 1)]
    sizes = net.sizes
    X, y = problem.X, (problem.labels if problem.labels is not None else problem.Y)

    def user_args(thetas):
        xp = array_namespace(*thetas)
        flat = xp.concat([xp.reshape(t, (-1,)) for t in thetas])
        if signature == "seed":
            return (flat, sizes[0], sizes[1], sizes[2], X.copy(), y.copy(), problem.lam)
        return (Problem(net, X, y, problem.lam), flat)

    def f(*thetas):
        return cost_fn(*user_args(thetas))

    def grad(*thetas):
        raw = grad_fn(*user_args(thetas))
        arr = np.asarray(raw)
        if arr.dtype.kind in "fiu" and arr.size == net.n_params:  # the flat vector, as one matrix per layer
            return tuple(m.copy() for m in net.unpack(arr.reshape(-1)))
        return raw

    f.__name__ = f.__qualname__ = fn_name(cost_fn)
    grad.__name__ = grad.__qualname__ = fn_name(grad_fn)
    inputs = Inputs(net.unpack(params), names, names, what=f"cost_fn {fn_name(cost_fn)!r}")
    witnesses = tuple(a for a in against if a in AGAINST) or AGAINST
    report = run(FunctionCase(f, grad, inputs), mode=mode, against=witnesses, seed=seed,
                 info={**info, "own_cost": True, "cost_function": fn_name(cost_fn)})
    report.info["check"] = "check against your own cost"
    report.info["function"] = f"{fn_name(grad_fn)} against cost_fn {fn_name(cost_fn)}"
    report.info["inputs_text"] = (f"network {','.join(map(str, sizes))}, m={problem.m}, lambda={problem.lam:g}, "
                                  f"seed={info.get('seed')}: " + inputs.describe())

    # Purity as the network check sees it (params, X, y), and the course's cost beside yours.
    caller = Caller(grad_fn, signature, net)
    first = caller(problem, params)
    U, _ = as_gradient(first.raw, net, signature, caller.name)
    extra = [_as_input_finding(f) for f in mutation_findings(net, first, None, U, caller.name)
             if f.extra.get("argument") != "params"]  # params: the generic check's Theta inputs show it
    rng = np.random.default_rng([seed, 2])
    for f in check_cost(Caller(cost_fn, signature, net, "cost_fn"), problem, params,
                        U if U is not None else np.zeros(net.n_params), rng):
        if f.kind == "cost_mismatch":
            extra.append(_cost_differs(f, fn_name(cost_fn)))
        else:
            extra.append(_as_input_finding(f))
    if not any(f.kind == "cost_differs" for f in extra):
        report.notes.append(f"cost_fn {fn_name(cost_fn)} is the course's regularised cross-entropy "
                            "(it agrees with gradlab's cost at the check point and nearby, lambda on and off)")
    report.findings += extra
    report.ok = not any(f.blame in INPUT_FAILING for f in report.findings)
    return report


def _cost_differs(f: Finding, name: str) -> InputFinding:
    """The course-cost comparison, as a note: your cost is meant to differ."""
    where = {"data term of the cost": "already at lambda = 0: its data term is not the cross-entropy",
             "regularisation term of the cost": "only at lambda > 0: its regularisation term differs",
             "cost not finite": "where it is not finite"}.get(f.cause, "")
    values = [{"entry": val["entry"], "yours": val["yours"], "course": val["expected"]} for val in f.values]
    return InputFinding(
        "cost_differs", None, None,
        f"cost_fn {name} differs from the course's regularised cross-entropy {where}. The verdict above judges "
        "your gradient against your own cost, so this is a note, not a failure; check with own_cost=False to be "
        "judged against the course's cost.", f.experiment, values=values, blame="note", cause=f.cause)


def _as_input_finding(f: Finding) -> InputFinding:
    """A network finding about the call (purity) in the generic report's terms."""
    name = None if f.layer is None else f"Theta{f.layer}"
    return InputFinding(f.kind, name, None if f.layer is None else f.layer - 1, f.sentence, f.experiment,
                        values=[dict(val) for val in f.values], blame=f.blame, cause=f.cause, extra=dict(f.extra))
