"""check(): the case, the first calls on copies, the witnesses, blame, and the findings."""

from __future__ import annotations

import numpy as np

from gradlab import _resources
from gradlab import _validate as v
from gradlab._errors import GradlabError, UserCodeError
from gradlab._judge import (EPS, EXACT_NORM_RATIO, MAX_LAM, MAX_WEIGHT_SCALE, NUMERIC_SAFETY, TINY, exact_agree,
                            norm_ratio, numeric_bound, roundoff_floor)
from gradlab._usercode import check_signature, fn_name
from gradlab.check.calls import Caller, as_gradient, mutation_findings
from gradlab.check.cases import DEFAULT_EXAMPLES, DEFAULT_LAM, case
from gradlab.check.cost import check_cost, own_cost_check
from gradlab.check.diagnosis import Diagnoser
from gradlab.check.fast import FULL_MODE_MAX_PARAMS, fast_check
from gradlab.check.findings import Finding, differing, entry_finding, layer_slices
from gradlab.check.report import CheckReport
from gradlab.check.second_order import check_hvp
from gradlab.network import Network
from gradlab.sources import SOURCES, numeric

__all__ = ["check", "FULL_MODE_MAX_PARAMS", "DEFAULT_LAM", "DEFAULT_EXAMPLES", "SIGNATURES", "validate_against"]


SIGNATURES = ("gradlab", "seed")
_MODES = ("auto", "full", "fast")
_AGAINST = ("jax", "backprop", "numeric")


def reference(name: str):
    """An exact source's gradient as a plain function of (problem, params), on a copy."""
    src = SOURCES[name]
    return lambda problem, params: np.asarray(src.gradient(problem, params.copy()), dtype=np.float64)



def validate_against(against) -> tuple[str, ...]:
    if isinstance(against, str) or not hasattr(against, "__iter__"):
        raise v.fail("against", against, "a sequence of source names from " + ", ".join(map(repr, _AGAINST)))
    out = tuple(against)
    if not out or len(set(out)) != len(out) or any(a not in _AGAINST for a in out):
        raise v.fail("against", out, "distinct source names from " + ", ".join(map(repr, _AGAINST)))
    return out


def check(grad_fn, sizes=(3, 5, 3), *, signature: str = "gradlab", cost_fn=None, lam: float = DEFAULT_LAM,
          examples: int = DEFAULT_EXAMPLES, seed: int = 0, weight_scale: float = 1.0, mode: str = "auto",
          against=("jax", "numeric"), force: bool = False, own_cost: bool = False, order: int = 1):
    """Check a gradient function: blame, localise and explain what is wrong with it.

    Parameters
    ----------
    grad_fn : callable
        ``grad_fn(problem, params) -> flat gradient`` (``signature="gradlab"``), or the seed's
        ``nnGradient(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda)``
        (``signature="seed"``; 3-layer networks, labels ``0..K-1``, a column-vector result
        is accepted).
    sizes : sequence of int, default (3, 5, 3)
        Layer sizes of the network to check on.
    signature : {"gradlab", "seed"}
    cost_fn : callable, optional
        A cost function with the same signature as ``grad_fn`` (for ``"seed"``: the seed's
        ``nnCostFunction``), checked against gradlab's cost too.
    own_cost : bool, default False
        ``cost_fn`` is your own cost (squared error, another regulariser), not the course's
        cross-entropy: your gradient is judged against *it* -- jax when it can trace
        ``cost_fn`` (array API), finite differences of ``cost_fn`` -- each weight matrix an
        input of the generic check, and how your cost differs from the course's is reported
        as a note. Returns a :class:`~gradlab.check.report.GradientReport`.
    lam : float, default 1.0
        lambda for the check (>= 0). When positive, lambda = 0 is tried as well.
    examples : int, default 5
        Number of examples m.
    seed : int, default 0
        Seed for the weights (the seed's uniform initialiser), inputs (uniform in [-1, 1])
        and labels (every class present when m >= K).
    weight_scale : float, default 1.0
        Multiplies the initial weights (large values saturate the sigmoids).
    mode : {"auto", "full", "fast"}
        ``"full"``: compare every entry with jax and with central differences and run the
        diagnosis experiments. ``"fast"``: random-direction checks and bisection (a few
        dozen cost evaluations whatever the size). ``"auto"``: full up to
        :data:`FULL_MODE_MAX_PARAMS` parameters, fast beyond.
    against : sequence of {"jax", "backprop", "numeric"}, default ("jax", "numeric")
        The witnesses of the full check. With an exact one and ``"numeric"``, a
        disagreement is blamed three ways (your gradient / a numerical problem / the
        cost); ``("backprop",)`` is a cheap exact-only check.
    force : bool, default False
        Run the full check's numeric gradient even when its estimated time is above
        :data:`gradlab._resources.NUMERIC_TIME_LIMIT`. (``mode="auto"`` picks fast mode
        rather than a full check over the limit.)
    order : {1, 2}, default 1
        2 checks a Hessian-vector product ``grad_fn(problem, params, v)`` instead (see
        :func:`gradlab.check.second_order.check_hvp`; ``signature``, ``cost_fn``, ``own_cost``
        and ``mode`` do not apply).

    Returns
    -------
    CheckReport
        ``.ok``, ``.findings`` (each with ``layer``, ``kind``, ``rows``, ``columns``,
        values, error and a sentence), ``.to_dict()``, ``str()``. With ``own_cost=True``, a
        GradientReport (findings name ``Theta1``, ``Theta2`` ... and entries ``[row, column]``).

    Raises
    ------
    GradlabError
        Bad arguments, or a function whose signature cannot take the arguments.
    UserCodeError
        ``grad_fn`` (or ``cost_fn``) raised on the check problem; the message names the
        exception.

    Examples
    --------
    >>> import gradlab
    >>> def halved(problem, params):
    ...     return gradlab.gradient(problem, params) / 2
    >>> report = gradlab.check(halved, (3, 5, 3), against=("backprop",))
    >>> report.ok, report.findings[0].kind, report.findings[0].layer
    (False, 'constant_factor', 1)
    """
    order = v.integer("order", order)
    if order not in (1, 2):
        raise v.fail("order", order, "1 (a gradient function) or 2 (a Hessian-vector product function)")
    if order == 2:
        if signature != "gradlab" or cost_fn is not None or mode != "auto" or own_cost is not False:
            raise v.fail("order", order, "1 with signature, cost_fn, own_cost or mode (a Hessian-vector product is "
                         "checked as hvp(problem, params, v), in one mode)")
        return check_hvp(grad_fn, sizes, lam=lam, examples=examples, seed=seed, weight_scale=weight_scale,
                         against=against)
    signature = v.choice("signature", signature, SIGNATURES)
    mode = v.choice("mode", mode, _MODES)
    against = validate_against(against)
    if not callable(grad_fn):
        raise v.fail("grad_fn", grad_fn, "a callable")
    if cost_fn is not None and not callable(cost_fn):
        raise v.fail("cost_fn", cost_fn, "a callable or None")
    network = sizes if isinstance(sizes, Network) else Network(sizes)
    if signature == "seed" and network.n_layers != 3:
        raise v.fail("sizes", network.sizes, "three layer sizes (input, hidden, output) for signature='seed'")
    lam = v.real("lam", lam, minimum=0.0, maximum=MAX_LAM)
    examples = v.integer("examples", examples, minimum=1)
    seed = v.integer("seed", seed, minimum=0)
    weight_scale = v.real("weight_scale", weight_scale, minimum=0.0, maximum=MAX_WEIGHT_SCALE)
    shape = "(problem, params)" if signature == "gradlab" else \
        "(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda)"
    n_args = 2 if signature == "gradlab" else 7
    check_signature(grad_fn, n_args, "grad_fn", shape)
    if cost_fn is not None:
        check_signature(cost_fn, n_args, "cost_fn", shape)
    if not isinstance(force, (bool, np.bool_)):
        raise v.fail("force", force, "True or False")
    if not isinstance(own_cost, (bool, np.bool_)):
        raise v.fail("own_cost", own_cost, "True or False")
    if own_cost and cost_fn is None:
        raise GradlabError("own_cost=True judges the gradient against your cost, so it needs cost_fn; got cost_fn=None")
    _resources.require_memory(_resources.problem_memory(network.sizes, examples, jax="jax" in against))
    problem, params = case(network, examples, lam, seed, weight_scale)
    if own_cost:
        info = {"signature": signature, "sizes": list(network.sizes), "n_params": network.n_params,
                "examples": examples, "lam": lam, "seed": seed, "weight_scale": weight_scale}
        with _resources.forced(force):
            return own_cost_check(grad_fn, cost_fn, signature, problem, params, mode=mode, against=against,
                                  seed=seed, info=info)
    if mode == "auto":
        mode = "full" if network.n_params <= FULL_MODE_MAX_PARAMS and not _slow(problem, params) else "fast"
    info = {"function": fn_name(grad_fn), "signature": signature, "sizes": list(network.sizes),
            "n_params": network.n_params, "examples": examples, "lam": lam, "seed": seed,
            "weight_scale": weight_scale, "mode": mode, "against": list(against)}
    with _resources.forced(force):
        return _run(grad_fn, cost_fn, signature, problem, params, mode, against, info, seed)


def _slow(problem, params) -> bool:
    """Would the full check's numeric gradient take longer than gradlab's time limit?"""
    seconds, _ = _resources.time_estimate(problem, params, numeric.evaluations(problem.network.n_params))
    return seconds is not None and seconds > _resources.NUMERIC_TIME_LIMIT


def _run(grad_fn, cost_fn, signature, problem, params, mode, against, info, seed) -> CheckReport:
    net = problem.network
    caller = Caller(grad_fn, signature, net)
    name = caller.name
    rng = np.random.default_rng([seed, 1])
    findings: list[Finding] = []
    comparisons: dict = {}

    # Purity and output: the first call, on copies.
    first = caller(problem, params)
    U, bad = as_gradient(first.raw, net, signature, name)
    again = None
    if "params" in first.writes:
        try:
            second_raw = caller(problem, params, inplace=first.params_after.copy()).raw
            again, _ = as_gradient(second_raw, net, signature, name)
        except UserCodeError:
            again = None
    findings += mutation_findings(net, first, again if U is not None else None, U, name)
    if bad is not None:
        findings.append(bad)
        if U is None:
            return CheckReport(info, findings, comparisons)

    # Repeated call on fresh copies: is it deterministic?
    U2, _ = as_gradient(caller(problem, params).raw, net, signature, name)
    floor = roundoff_floor(problem, params)
    if bad is not None and bad.blame == "precision":
        # A float32 (or float16) result carries that type's round-off, not float64's.
        floor = floor * (float(np.finfo(np.dtype(bad.extra["dtype"])).eps) / EPS)
    if U2 is not None and not exact_agree(U, U2, floor):
        idx = differing(U, U2, floor)
        layer = net.locate(int(idx[0]))[0] if idx.size else None
        f = entry_finding(net, "non_determinism", layer, idx, U, U2,
                           f"two calls of {name} on identical copies of the arguments returned different gradients "
                           f"(||g1-g2||/||g1+g2|| = {norm_ratio(U, U2):.3g}): it depends on something besides its "
                           "arguments -- global state it changes, randomness, or data kept between calls.",
                           "called the function twice on fresh, identical copies of its arguments")
        for val in f.values:
            val["first"], val["second"] = val.pop("yours"), val.pop("expected")
        findings.append(f)

    if cost_fn is not None:
        findings += check_cost(Caller(cost_fn, signature, net, "cost_fn"), problem, params, U, rng)

    if mode == "fast":
        fast_findings, stats = fast_check(U, problem, params, rng, name)
        findings += fast_findings
        comparisons["yours vs numeric"] = {
            "ok": not fast_findings, "measure": "random directions", "value": None,
            "criterion": f"|g.v - D_v J| <= {NUMERIC_SAFETY:g}x the directional error estimate"}
        return CheckReport(info, findings, comparisons, fast=stats)

    exact = next((a for a in against if a != "numeric"), None)
    R = reference(exact)(problem, params) if exact else None
    N = Nerr = None
    if "numeric" in against:
        N, Nerr = SOURCES["numeric"].estimate(problem, params.copy())
        N, Nerr = np.asarray(N, float), np.asarray(Nerr, float)
    exact_crit = f"<= {EXACT_NORM_RATIO:g}, or every entry within its round-off bound"
    num_crit = f"every entry within {NUMERIC_SAFETY:g}x the numeric error estimate + the exact side's round-off"
    u_r = u_n = r_n = None
    if R is not None:
        u_r = exact_agree(U, R, floor)
        comparisons[f"yours vs {exact}"] = {"ok": u_r, "measure": "||a-b||/||a+b||", "value": norm_ratio(U, R),
                                            "criterion": exact_crit}
    if N is not None:
        bound = numeric_bound(Nerr, U, N, floor)
        excess_u = np.abs(U - N) / np.maximum(bound, TINY)
        u_n = bool(np.all(np.abs(U - N) <= bound))
        comparisons["yours vs numeric"] = {"ok": u_n, "measure": "max |a-b| / bound",
                                           "value": float(excess_u.max()), "criterion": num_crit}
        if R is not None:
            rn_bound = numeric_bound(Nerr, R, N, floor)
            r_n = bool(np.all(np.abs(R - N) <= rn_bound))
            comparisons[f"{exact} vs numeric"] = {
                "ok": r_n, "measure": "max |a-b| / bound",
                "value": float((np.abs(R - N) / np.maximum(rn_bound, TINY)).max()),
                "criterion": num_crit}

    if R is None:  # numeric only: entries, no experiments
        if not u_n:
            for layer, sl in enumerate(layer_slices(net), start=1):
                idx = sl.start + np.flatnonzero(np.abs(U[sl] - N[sl]) > bound[sl])
                if idx.size:
                    findings.append(entry_finding(
                        net, "entries", layer, idx, U, N,
                        f"{idx.size} entr{'y' if idx.size == 1 else 'ies'} of Theta{layer} differ from central "
                        "differences by more than their error estimate allows.",
                        "compared every entry with central differences and their error estimate"))
        return CheckReport(info, findings, comparisons)

    if u_r:
        info["blame"] = (f"none -- your gradient's values agree with {exact}" + (
            "; finite differences disagree with both: a numerical problem, not yours" if r_n is False else
            " and with finite differences" if r_n else ""))
    elif r_n is False:
        info["blame"] = (f"the cost -- {exact} and finite differences of the same cost disagree"
                         + ("" if u_n else ", and your gradient matches neither"))
    else:
        info["blame"] = f"your gradient -- it differs from {exact}" + (
            " while finite differences agree with it" if r_n else "")
    if r_n is False:  # the entries where jax and finite differences disagree, and the first layer
        rn_idx = np.flatnonzero(np.abs(R - N) > rn_bound)
        rn_layer = net.locate(int(rn_idx[0]))[0]
    if u_r:
        if r_n is False:
            findings.append(entry_finding(
                net, "numeric_problem", rn_layer, rn_idx, N, R,
                f"your gradient and {exact} agree, but finite differences differ from both at {rn_idx.size} "
                "entr" + ("y" if rn_idx.size == 1 else "ies") + " by more than their own error estimate: a numerical "
                "problem (the step, a kink, precision), not your gradient.",
                f"compared your gradient, {exact} and central differences three ways", blame="numeric"))
        return CheckReport(info, findings, comparisons)

    if r_n is False:
        findings.append(entry_finding(
            net, "cost_suspect", rn_layer, rn_idx, N, R,
            f"{exact} and finite differences of the same cost disagree with each other"
            + (" and with your gradient" if not u_n else ", while your gradient matches finite differences")
            + ": the cost itself is suspect here (not smooth, or not the function both witnesses see).",
            f"compared your gradient, {exact} and central differences three ways", blame="cost"))
    diag = Diagnoser(caller, signature, reference(exact), exact, problem, params, floor)
    found = diag.run(U, R)
    if not found:
        idx = differing(U, R, floor)
        for layer, sl in enumerate(layer_slices(net), start=1):
            sel = idx[(idx >= sl.start) & (idx < sl.stop)]
            if sel.size:
                found.append(entry_finding(net, "entries", layer, sel, U, R,
                                            f"{sel.size} entries of Theta{layer} are wrong.",
                                            f"compared every entry with {exact}"))
    for f in found:
        f.extra.setdefault("blame_basis", f"yours differs from {exact}" + (
            " while numeric agrees with it" if r_n else ""))
    if diag.notes:
        for f in found:
            f.extra["notes"] = diag.notes
    findings += found
    return CheckReport(info, findings, comparisons)

