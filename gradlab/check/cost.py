"""The user's cost function: checked against gradlab's cost at the check point and nearby
(:func:`check_cost`), or -- when it is the user's own cost, not the course's -- the one the
gradient is judged against (:func:`own_cost_check`)."""

from __future__ import annotations

import math

import numpy as np
from array_api_compat import array_namespace

from gradlab import _cost
from gradlab._judge import COST_RTOL, EPS, NUMERIC_SAFETY, ROUNDOFF_EVALS
from gradlab._usercode import fn_name
from gradlab.check.calls import Caller, as_gradient, mutation_findings
from gradlab.check.findings import INPUT_FAILING, MAX_LISTED, Finding, InputFinding
from gradlab.check.function import FunctionCase
from gradlab.check.generic import run
from gradlab.check.inputs import AGAINST, Inputs
from gradlab.check.report import GradientReport
from gradlab.network import Problem

__all__ = ["check_cost", "own_cost_check"]


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
    for k, theta in enumerate(points):
        where = "check point" if k == 0 else f"nearby point {k}"
        for prob in ([problem, problem.with_lam(0.0)] if problem.lam > 0 else [problem]):
            mine, ours = user_cost(prob, theta), J(prob, theta)
            # A float32 cost is judged at its own precision: a few of its eps per operation.
            eps = _eps(dtypes[-1])
            rtol = COST_RTOL if eps == EPS else NUMERIC_SAFETY * ROUNDOFF_EVALS * eps
            if not math.isfinite(mine) or abs(mine - ours) > rtol * max(1.0, abs(ours)):
                bad.append((prob.lam, mine, ours, where))
    if not bad:
        return findings
    lams = {b[0] for b in bad}
    only_reg = 0.0 not in lams
    vals = [{"entry": f"{b[3]}, lam={b[0]:g}", "yours": b[1], "expected": b[2]} for b in bad[:MAX_LISTED]]
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
        "your gradient against your own cost, so this is a note, not a failure; without own_cost (--own-cost on the "
        "command line) it is judged against the course's cost.", f.experiment, values=values, blame="note", cause=f.cause)


def _as_input_finding(f: Finding) -> InputFinding:
    """A network finding about the call (purity) in the generic report's terms."""
    name = None if f.layer is None else f"Theta{f.layer}"
    return InputFinding(f.kind, name, None if f.layer is None else f.layer - 1, f.sentence, f.experiment,
                        values=[dict(val) for val in f.values], blame=f.blame, cause=f.cause, extra=dict(f.extra))
