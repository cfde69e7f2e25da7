"""check(): the point, the first calls on copies, the witnesses, blame, and the findings."""

from __future__ import annotations

import numpy as np

from gradlab import _resources
from gradlab import _validate as v
from gradlab._errors import GradlabError, UserCodeError
from gradlab._judge import EPS, EXACT_NORM_RATIO, NUMERIC_SAFETY, TINY, exact_agree, norm_ratio, numeric_bound, \
    roundoff_floor
from gradlab._isolation import DEFAULT_TIMEOUT
from gradlab.check.calls import mutation_findings, split_pair
from gradlab.check.conventions import Convention
from gradlab.check.cost import check_cost, own_cost_check
from gradlab.check.detect import detect_convention
from gradlab.check.diagnosis import Diagnoser
from gradlab.check.fast import FULL_MODE_MAX_PARAMS, fast_check
from gradlab.check.findings import Finding, differing, entry_finding, layer_slices
from gradlab.check.isolated import in_process, run_isolated, wanted
from gradlab.check.point import case
from gradlab.check.prepare import DEFAULT_EXAMPLES, DEFAULT_LAM, DEFAULT_SIZES, SIGNATURES, callers, point
from gradlab.check.report import CheckReport
from gradlab.check.second_order import check_hvp
from gradlab.check.witness import witness_check
from gradlab.sources import SOURCES, numeric

__all__ = ["check", "case", "FULL_MODE_MAX_PARAMS", "DEFAULT_LAM", "DEFAULT_EXAMPLES", "SIGNATURES",
           "validate_against"]

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


def check(grad_fn, sizes=None, *, signature: str = "gradlab", call=None, cost_fn=None, cost_call=None,
          labels: int = 0, unroll: str = "C", problem=None, params=None, lam=None, examples=None, seed: int = 0,
          weight_scale=None, mode: str = "auto", against=("jax", "numeric"), force: bool = False,
          own_cost: bool = False, order: int = 1, isolate: bool | None = None, timeout: float = DEFAULT_TIMEOUT):
    """Check a gradient function: blame, localise and explain what is wrong with it.

    Parameters
    ----------
    grad_fn : callable, class, module or str
        ``grad_fn(problem, params) -> gradient`` (``signature="gradlab"``), the seed's
        ``nnGradient(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda)``
        (``signature="seed"``, 3-layer networks), or with ``call=`` any function, class or
        module the call template starts from. It may return the gradient as a flat array
        of P entries (shape (P,), (P, 1) or (1, P)), as one gradient per weight matrix, or
        as a ``(J, grad)`` pair -- J is then checked as the cost. A string
        ``"PATH.py:FUNC"`` or ``"module:FUNC"`` names the function (see ``isolate``).
    sizes : sequence of int, optional
        Layer sizes of the network to check on (default (3, 5, 3), or the problem's).
    signature : {"gradlab", "seed"}
    call : str, optional
        A Python expression over the check's names -- ``params``, ``sizes``,
        ``input_layer_size``, ``hidden_layer_size``, ``num_labels``, ``X``, ``y``, ``y_col``,
        ``Y``, ``lam``, ``m``, ``problem``, ``Theta1`` ... ``ThetaL`` (see
        :data:`gradlab.check.conventions.NAMES`) -- and the module's globals, e.g.
        ``"NeuralNet(sizes, X, y, lam).gradient(params)"`` or
        ``"backprop(Theta1, Theta2, X, y, lam)"``.
    cost_fn : callable or str, optional
        A cost function with the same signature as ``grad_fn``, checked against gradlab's cost.
        A string names it as for ``grad_fn``; a bare name is a function in ``grad_fn``'s file
        or module.
    cost_call : str, optional
        The cost as a call template (with ``call=``).
    own_cost : bool, default False
        ``cost_fn`` is your own cost (squared error, another regulariser), not the course's
        cross-entropy: your gradient is judged against *it* -- jax when it can trace
        ``cost_fn`` (array API), finite differences of ``cost_fn`` -- each weight matrix an
        input of the generic check, and how your cost differs from the course's is reported
        as a note. Returns a :class:`~gradlab.check.report.GradientReport`. (The fixed
        signatures and gradlab's conventions only.)
    labels : {0, 1}, default 0
        The first label the function expects: 1 for labels 1..K (label k is output unit
        k - 1, as Octave's ``y == 1:K``).
    unroll : {"C", "F"}, default "C"
        How the function unrolls the weight matrices into ``params`` and its flat gradient:
        row by row (numpy) or column by column (Octave's ``[Theta1(:); Theta2(:)]``).
    problem : Problem, optional
        The user's own data (labels are output units 0..K-1); every experiment is derived
        from it. Default: ``examples`` random inputs in [-1, 1], every class present.
    params : array_like or sequence of matrices, optional
        The user's own weights: P entries unrolled as ``unroll`` says, or Theta1 ... ThetaL.
        Default: the seed's random initialiser (times ``weight_scale``).
    lam : float, optional
        lambda for the check (>= 0; default 1.0, or the problem's). When positive, lambda = 0
        is tried as well.
    examples : int, optional
        Number of random examples m (default 5; not with ``problem``).
    seed : int, default 0
        Seed for gradlab's random weights and data.
    weight_scale : float, optional
        Multiplies gradlab's random weights (default 1; not with ``params``).
    mode : {"auto", "full", "fast"}
        ``"full"``: compare every entry with the exact witness and with central differences
        and run the diagnosis experiments. ``"fast"``: compare every entry with the exact
        witness, confirm it along random directions (a few dozen cost evaluations whatever
        the size) and run the same diagnosis; without an exact witness, random directions
        and bisection within the evaluations of a full check. ``"auto"``: full up to
        :data:`FULL_MODE_MAX_PARAMS` parameters, fast beyond.
    against : sequence of {"jax", "backprop", "numeric"}, default ("jax", "numeric")
        The witnesses. With an exact one and ``"numeric"``, a disagreement is blamed three
        ways (your gradient / a numerical problem / the cost).
    force : bool, default False
        Run the full check's numeric gradient even when its estimated time is above
        :data:`gradlab._resources.NUMERIC_TIME_LIMIT`.
    order : {1, 2}, default 1
        2 checks a Hessian-vector product ``grad_fn(problem, params, v)`` instead (see
        :func:`gradlab.check.second_order.check_hvp`; ``signature``, ``call``, ``cost_fn``,
        the conventions, ``problem``, ``params``, ``own_cost`` and ``mode`` do not apply).
    isolate : bool, optional
        Run the user's code in a process of its own: a hang past ``timeout``, a crash
        (segfault, abort, killed for memory) or ``os._exit`` cannot take the caller's
        process with it, and what the code prints is kept as the report's ``output``
        instead of being printed. Writes into the arguments are still seen (they are
        copied back). Default: isolated when ``grad_fn`` or ``cost_fn`` is a string; a
        callable runs here (``isolate=True`` sends it by reference: a function defined at
        the top level of an importable module). Not with ``call=`` or ``cost_call=`` (a
        template runs in the caller's process).
    timeout : float, default 60
        Isolated only: the seconds the user's code may run in all (its import and every
        call); past them it is stopped.

    Returns
    -------
    CheckReport
        ``.ok``, ``.findings`` (each with ``layer``, ``kind``, ``rows``, ``columns``,
        values, error and a sentence), ``.to_dict()``, ``str()``. With ``own_cost=True``, a
        GradientReport (findings name ``Theta1``, ``Theta2`` ... and entries ``[row, column]``).

    Raises
    ------
    GradlabError
        Bad arguments: a function whose signature cannot take the arguments, a template
        that does not parse or names what the check does not have, weights or data whose
        shapes do not fit the sizes.
    UserCodeError
        The user's code raised on the check problem (the message names the exception and
        the innermost line of the user's own files), or its signature cannot take the
        arguments.
    UserCodeStopped
        Isolated, the user's code ran past ``timeout`` (``status == "timeout"``) or its
        process died (``"crashed"``; the message names the signal). Isolated, every error
        raised has an ``output`` attribute: what the code printed.

    Examples
    --------
    >>> import gradlab
    >>> def halved(problem, params):
    ...     return gradlab.gradient(problem, params) / 2
    >>> report = gradlab.check(halved, (3, 5, 3), against=("backprop",))
    >>> report.ok, report.findings[0].kind, report.findings[0].layer
    (False, 'constant_factor', 1)
    """
    if wanted(grad_fn, cost_fn, isolate, timeout):
        return run_isolated(check, locals())  # every argument, by name: this function's parameters
    grad_fn, cost_fn = in_process(grad_fn, cost_fn)  # target strings with isolate=False
    order = v.integer("order", order)
    if order not in (1, 2):
        raise v.fail("order", order, "1 (a gradient function) or 2 (a Hessian-vector product function)")
    if order == 2:
        if (signature != "gradlab" or cost_fn is not None or mode != "auto" or own_cost is not False
                or call is not None or cost_call is not None or labels != 0 or unroll != "C"
                or problem is not None or params is not None):
            raise v.fail("order", order, "1 with signature, call, cost_fn, cost_call, labels, unroll, problem, "
                         "params, own_cost or mode (a Hessian-vector product is checked as "
                         "hvp(problem, params, v) at gradlab's point, in one mode)")
        return check_hvp(grad_fn, DEFAULT_SIZES if sizes is None else sizes,
                         lam=DEFAULT_LAM if lam is None else lam,
                         examples=DEFAULT_EXAMPLES if examples is None else examples, seed=seed,
                         weight_scale=1.0 if weight_scale is None else weight_scale, against=against)
    signature = v.choice("signature", signature, SIGNATURES)
    mode = v.choice("mode", mode, _MODES)
    against = validate_against(against)
    convention = Convention(labels, unroll)
    if not isinstance(force, (bool, np.bool_)):
        raise v.fail("force", force, "True or False")
    if not isinstance(own_cost, (bool, np.bool_)):
        raise v.fail("own_cost", own_cost, "True or False")
    if own_cost and cost_fn is None:
        raise GradlabError("own_cost=True judges the gradient against your cost, so it needs cost_fn; got cost_fn=None")
    if own_cost and (call is not None or cost_call is not None or convention != Convention()):
        raise GradlabError("own_cost=True takes grad_fn and cost_fn in a fixed signature ('gradlab' or 'seed') and "
                           "gradlab's conventions; leave out call, cost_call, labels and unroll")
    problem, params, point_info = point(sizes, problem, params, lam=lam, examples=examples, seed=seed,
                                        weight_scale=weight_scale, convention=convention, jax="jax" in against)
    network = problem.network
    caller, cost_caller = callers(grad_fn, signature, call, cost_fn, cost_call, network, convention,
                                  problem.labels is not None)
    if own_cost:
        info = {"signature": signature, "sizes": list(network.sizes), "n_params": network.n_params,
                "examples": problem.m, "lam": problem.lam, **point_info}
        with _resources.forced(force):
            return own_cost_check(grad_fn, cost_fn, signature, problem, params, mode=mode, against=against,
                                  seed=point_info["seed"], info=info)
    if mode == "auto":
        mode = "full" if network.n_params <= FULL_MODE_MAX_PARAMS and not _slow(problem, params) else "fast"
    info = {"function": caller.name, "signature": caller.signature, "sizes": list(network.sizes),
            "n_params": network.n_params, "examples": problem.m, "lam": problem.lam, **point_info,
            "mode": mode, "against": list(against), "labels": convention.labels, "unroll": convention.unroll}
    if caller.template is not None:
        info["call"] = caller.template.source
    if cost_caller is not None and cost_caller.template is not None:
        info["cost_call"] = cost_caller.template.source
    with _resources.forced(force):
        return _run(caller, cost_caller, problem, params, mode, against, info, point_info["seed"])


def _slow(problem, params) -> bool:
    """Would the full check's numeric gradient take longer than gradlab's time limit?"""
    seconds, _ = _resources.time_estimate(problem, params, numeric.evaluations(problem.network.n_params))
    return seconds is not None and seconds > _resources.NUMERIC_TIME_LIMIT


def _first_calls(caller, problem, params, floor, findings):
    """Purity, output and repeatability: ``(U, floor)``, or ``(None, floor)`` when the check
    cannot go on (nothing usable returned, or two identical calls disagreed)."""
    net, name = problem.network, caller.name
    first = caller(problem, params)
    U, bad = caller.read(first.raw)
    again = None
    if "params" in first.writes:
        try:
            again, _ = caller.read(caller(problem, params, inplace=first.params_after.copy()).raw)
        except UserCodeError:
            again = None
    findings += mutation_findings(net, first, again if U is not None else None, U, name, floor)
    if bad is not None:
        findings.append(bad)
        if U is None:
            return None, floor, first
        if bad.blame == "precision":
            # A float32 (or float16) result carries that type's round-off, not float64's.
            floor = floor * (float(np.finfo(np.dtype(bad.extra["dtype"])).eps) / EPS)
    U2, _ = caller.read(caller(problem, params).raw)
    if U2 is not None and not exact_agree(U, U2, floor):
        idx = differing(U, U2, floor)
        layer = net.locate(int(idx[0]))[0] if idx.size else None
        f = entry_finding(net, "non_determinism", layer, idx, U, U2,
                          f"two calls of {name} on identical copies of the arguments returned different gradients "
                          f"(||g1-g2||/||g1+g2|| = {norm_ratio(U, U2):.3g}): it depends on something besides its "
                          "arguments -- global state it changes, randomness, or data kept between calls. The "
                          "diagnosis experiments compare separate calls, so none was run.",
                          "called the function twice on fresh, identical copies of its arguments")
        for val in f.values:
            val["first"], val["second"] = val.pop("yours"), val.pop("expected")
        findings.append(f)
        return None, floor, first
    return U, floor, first


def _run(caller, cost_caller, problem, params, mode, against, info, seed) -> CheckReport:
    rng = np.random.default_rng([seed, 1])
    findings: list[Finding] = []
    comparisons: dict = {}
    U, floor, first = _first_calls(caller, problem, params, roundoff_floor(problem, params), findings)
    if U is None:
        return CheckReport(info, findings, comparisons)
    cost_kw = {}
    if cost_caller is None and split_pair(first.raw)[0] is not None:
        # A (J, grad) pair: J is the user's cost, checked as cost_fn is (the writes are reported once).
        cost_caller, cost_kw = caller, {"who": f"the J that {caller.name} returns", "report_writes": False}
        info["cost"] = "returned with the gradient"

    exact = next((a for a in against if a != "numeric"), None)
    R = reference(exact)(problem, params) if exact else None
    if R is not None and not exact_agree(U, R, floor):
        found = detect_convention(caller, problem, params, R, floor, exact, reference(exact))
        if found is not None:
            caller, U, conv_finding = found
            findings.append(conv_finding)
            info["detected"] = conv_finding.extra["detected"]
            if cost_caller is not None:
                cost_caller = cost_caller.with_convention(caller.convention)

    fast = None
    if mode == "fast" and R is None:
        grad_findings, fast = fast_check(U, problem, params, rng, caller.name)
        comparisons["yours vs numeric"] = {
            "ok": not grad_findings, "measure": "random directions", "value": None,
            "criterion": f"|g.v - D_v J| <= {NUMERIC_SAFETY:g}x the directional error estimate"}
        u_r = None
    else:
        if mode == "fast":
            u_r, u_n, r_n, rn_where, fast = _fast_witnesses(U, R, exact, problem, params, against, floor, rng,
                                                            comparisons)
        else:
            u_r, u_n, r_n, rn_where = _full_witnesses(U, R, exact, problem, params, against, floor, comparisons)
        grad_findings = _blame(caller, U, R, exact, problem, params, floor, u_r, u_n, r_n, rn_where, info)
    if cost_caller is not None:
        findings += check_cost(cost_caller, problem, params, U, rng, R=R, gradient_right=u_r, **cost_kw)
    findings += grad_findings
    return CheckReport(info, findings, comparisons, fast=fast)


def _full_witnesses(U, R, exact, problem, params, against, floor, comparisons):
    """Every entry against the exact witness and central differences: ``(u_r, u_n, r_n,
    where the witnesses disagree)``."""
    N = Nerr = None
    if "numeric" in against:
        N, Nerr = SOURCES["numeric"].estimate(problem, params.copy())
        N, Nerr = np.asarray(N, float), np.asarray(Nerr, float)
    exact_crit = f"<= {EXACT_NORM_RATIO:g}, or every entry within its round-off bound"
    num_crit = f"every entry within {NUMERIC_SAFETY:g}x the numeric error estimate + the exact side's round-off"
    u_r = u_n = r_n = None
    rn_where = None
    if R is not None:
        u_r = exact_agree(U, R, floor)
        comparisons[f"yours vs {exact}"] = {"ok": u_r, "measure": "||a-b||/||a+b||", "value": norm_ratio(U, R),
                                            "criterion": exact_crit}
    if N is not None:
        bound = numeric_bound(Nerr, U, N, floor)
        u_n = bool(np.all(np.abs(U - N) <= bound))
        comparisons["yours vs numeric"] = {"ok": u_n, "measure": "max |a-b| / bound",
                                           "value": float((np.abs(U - N) / np.maximum(bound, TINY)).max()),
                                           "criterion": num_crit}
        if R is None:
            rn_where = (N, bound)  # numeric only: the entries themselves
        else:
            rn_bound = numeric_bound(Nerr, R, N, floor)
            r_n = bool(np.all(np.abs(R - N) <= rn_bound))
            comparisons[f"{exact} vs numeric"] = {
                "ok": r_n, "measure": "max |a-b| / bound",
                "value": float((np.abs(R - N) / np.maximum(rn_bound, TINY)).max()), "criterion": num_crit}
            if not r_n:
                rn_where = (N, np.flatnonzero(np.abs(R - N) > rn_bound))
    return u_r, u_n, r_n, rn_where


def _fast_witnesses(U, R, exact, problem, params, against, floor, rng, comparisons):
    """Every entry against the exact witness; the witness confirmed, and the disagreement
    judged, by finite differences along directions."""
    u_r = exact_agree(U, R, floor)
    comparisons[f"yours vs {exact}"] = {"ok": u_r, "measure": "||a-b||/||a+b||", "value": norm_ratio(U, R),
                                        "criterion": f"<= {EXACT_NORM_RATIO:g}, or every entry within its "
                                                     "round-off bound (every entry compared)"}
    if "numeric" not in against:
        fast = {"witness": exact, "exact_entries": problem.network.n_params, "cost_evaluations": 0,
                "full_check_evaluations": 2 * problem.network.n_params, "layers": [], "directions_per_layer": 0,
                "stopped_bisecting": False, "disagreement_probe": None}
        return u_r, None, None, None, fast
    failed, probe, fast = witness_check(U, R, problem, params, rng, exact)
    crit = f"|v.g - D_v J| <= {NUMERIC_SAFETY:g}x the directional error estimate"
    comparisons[f"{exact} vs numeric"] = {"ok": not failed, "measure": "random directions per layer", "value": None,
                                          "criterion": crit}
    u_n, r_n = True, not failed
    if probe is not None:
        u_n = probe["numeric_agrees_with_yours"]
        comparisons["yours vs numeric"] = {"ok": u_n, "measure": "|yours - numeric| / tolerance along U - R",
                                           "value": abs(probe["yours"] - probe["numeric"]) / max(probe["tolerance"], TINY),
                                           "criterion": crit}
        if probe["can_tell"] and not probe[f"numeric_agrees_with_{exact}"]:
            r_n = False
    return u_r, u_n, r_n, (failed or None) if not r_n else None, fast


def _blame(caller, U, R, exact, problem, params, floor, u_r, u_n, r_n, rn_where, info) -> list[Finding]:
    """Who is wrong, and the diagnosis of a wrong gradient."""
    net = problem.network
    findings: list[Finding] = []
    if R is None:  # numeric only: entries, no experiments
        N, bound = rn_where
        if not u_n:
            for layer, sl in enumerate(layer_slices(net), start=1):
                idx = sl.start + np.flatnonzero(np.abs(U[sl] - N[sl]) > bound[sl])
                if idx.size:
                    findings.append(entry_finding(
                        net, "entries", layer, idx, U, N,
                        f"{idx.size} entr{'y' if idx.size == 1 else 'ies'} of Theta{layer} differ from central "
                        "differences by more than their error estimate allows.",
                        "compared every entry with central differences and their error estimate"))
        return findings
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
    if r_n is False:
        findings += _witness_findings(net, exact, rn_where, R, u_r, u_n)
    if u_r:
        return findings
    diag = Diagnoser(caller, caller.signature, reference(exact), exact, problem, params, floor,
                     shapes_ref=reference("backprop"))
    found = diag.run(U, R)
    if not found:
        idx = differing(U, R, floor)
        for layer, sl in enumerate(layer_slices(net), start=1):
            sel = idx[(idx >= sl.start) & (idx < sl.stop)]
            if sel.size:
                found.append(entry_finding(net, "entries", layer, sel, U, R,
                                           f"{sel.size} entr{'y' if sel.size == 1 else 'ies'} of Theta{layer} "
                                           f"{'is' if sel.size == 1 else 'are'} wrong.",
                                           f"compared every entry with {exact}"))
    for f in found:
        f.extra.setdefault("blame_basis", f"yours differs from {exact}" + (" while numeric agrees with it" if r_n else ""))
        if diag.notes:
            f.extra["notes"] = diag.notes
    return findings + found


def _witness_findings(net, exact, rn_where, R, u_r, u_n) -> list[Finding]:
    """numeric_problem (the user agrees with the exact witness) or cost_suspect, where the
    exact witness and finite differences disagree: entries in full mode, layers in fast."""
    kind, blame = ("numeric_problem", "numeric") if u_r else ("cost_suspect", "cost")
    if isinstance(rn_where, tuple):  # full mode: (N, the entries)
        N, idx = rn_where
        layer = net.locate(int(idx[0]))[0]
        what = f"at {idx.size} entr" + ("y" if idx.size == 1 else "ies")
        if u_r:
            sentence = (f"your gradient and {exact} agree, but finite differences differ from both {what} by more "
                        "than their own error estimate: a numerical problem (the step, a kink, precision), not your "
                        "gradient.")
        else:
            sentence = (f"{exact} and finite differences of the same cost disagree with each other"
                        + (" and with your gradient" if not u_n else ", while your gradient matches finite differences")
                        + ": the cost itself is suspect here (not smooth, or not the function both witnesses see).")
        return [entry_finding(net, kind, layer, idx, N, R, sentence,
                              f"compared your gradient, {exact} and central differences three ways", blame=blame)]
    layers = rn_where or [None]
    out = []
    for layer in layers:
        where = f"along random directions in Theta{layer}" if layer else "along the direction of the disagreement"
        sentence = ((f"your gradient and {exact} agree, but finite differences of the cost disagree with {exact} "
                     f"{where}: a numerical problem (the step, a kink, precision), not your gradient.") if u_r else
                    (f"{exact} and finite differences of the same cost disagree {where}: the cost itself is suspect "
                     "here (not smooth, or not the function both witnesses see)."))
        out.append(Finding(kind, layer, sentence, f"compared {exact}'s directional derivatives with central "
                           "differences of the cost along random directions", blame=blame))
    return out
