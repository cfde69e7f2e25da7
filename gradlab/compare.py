"""Side-by-side comparison of gradient sources, per layer and overall, with verdicts.

``order=2`` compares Hessian-vector products instead (:func:`compare` with ``order=2``):
the same per-layer table and verdicts for ``H v``, a symmetry check ``u . Hv = v . Hu``
and, for small networks, the full Hessian's eigenvalue signs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab import _resources
from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab._judge import (EXACT_NORM_RATIO, HVP_NORM_RATIO, NUMERIC_ROUNDOFF, NUMERIC_SAFETY, TINY,
                            hvp_roundoff_floor, norm, norm_ratio, numeric_bound, roundoff_floor,
                            symmetry_tolerance)
from gradlab._report import Report, fmt
from gradlab.network import Problem, check_problem, cost
from gradlab.sources import Source, checked_output, get_source, gradient, numeric
from gradlab.sources.second_order import DIRECTIONS, HvpSource, direction_for, get_hvp_source, hvp, random_directions

__all__ = ["compare", "CompareReport", "HvpCompareReport", "PairResult", "LayerStats", "SymmetryResult",
           "HessianSpectrum", "EXACT_NORM_RATIO", "NUMERIC_SAFETY", "NUMERIC_ROUNDOFF", "FULL_HESSIAN_MAX_PARAMS",
           "DIRECTIONS"]

_KINKS_SHOWN = 10  # kink entries listed in the text report (all of them in the JSON)


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """Differences between two gradients over one weight matrix (layer 0 = all of them)."""

    layer: int
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    norm_ratio: float
    worst: tuple[int, int, int]  # (layer, row, column) of the worst entry
    ok: bool

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PairResult:
    """Verdict for one pair of sources."""

    a: str
    b: str
    criterion: str
    overall: LayerStats
    layers: tuple[LayerStats, ...]
    worst: dict
    ok: bool
    #: Entries not judged because a finite-difference stencil crossed a relu kink:
    #: layer, row, column, index, both values, and the one-sided quotients left/right.
    kinks: tuple = ()

    def to_dict(self) -> dict:
        return {
            "kinks": list(self.kinks),
            "a": self.a,
            "b": self.b,
            "criterion": self.criterion,
            "ok": self.ok,
            "overall": self.overall.to_dict(),
            "layers": [s.to_dict() for s in self.layers],
            "worst": self.worst,
        }


def _stats(network, layer, idx, a, b, bound, exact_scale, judged=None, floor=None):
    """Statistics over the entries ``idx`` (a slice of the flat vector); entries not
    ``judged`` (kinks) count as equal."""
    da, db = a[idx], b[idx]
    diff = np.abs(da - db)
    if judged is not None:
        diff = np.where(judged[idx], diff, 0.0)
        da, db = np.where(judged[idx], da, 0.0), np.where(judged[idx], db, 0.0)
    rel = diff / np.maximum(np.maximum(np.abs(da), np.abs(db)), TINY)
    if bound is None:
        k = int(np.argmax(diff)) if diff.size else 0
        # Per layer: would this layer's difference alone fail the overall criterion?
        # (Not if every entry is within its round-off floor.)
        ok = norm(da - db) <= EXACT_NORM_RATIO * exact_scale or norm(da - db) == 0.0 or (floor is not None and bool(np.all(diff <= floor[idx])))
    else:
        excess = diff / np.maximum(bound[idx], TINY)
        k = int(np.argmax(excess)) if diff.size else 0
        ok = bool(np.all(diff <= bound[idx]))
    start = idx.start or 0
    return LayerStats(
        layer=layer,
        shape=network.shapes[layer - 1] if layer else (network.n_params,),
        max_abs=float(diff.max()) if diff.size else 0.0,
        max_rel=float(rel.max()) if rel.size else 0.0,
        norm_ratio=norm_ratio(da, db),
        worst=network.locate(start + k),
        ok=ok,
    )


def _pair(network, a_name, b_name, a, b, est_a, est_b, floor=None, what: str = "g") -> PairResult:
    offsets = network.offsets
    bound = None
    judged = None
    kink_rows = []
    if est_a is not None or est_b is not None:
        bound = numeric_bound(sum(e.error for e in (est_a, est_b) if e is not None), a, b, floor)
        criterion = (f"every entry within {NUMERIC_SAFETY:g}x the numeric error estimate "
                     f"+ the other side's round-off ({NUMERIC_ROUNDOFF:g} x max|{what}|, or its floor)")
        kink = np.zeros(network.n_params, dtype=bool)
        for e in (est_a, est_b):
            if e is not None:
                kink |= e.kink
        if kink.any():
            judged = ~kink
            criterion += "; entries whose stencil crosses a relu kink are listed, not judged"
            for i in np.flatnonzero(kink):
                est = est_a if (est_a is not None and est_a.kink[i]) else est_b
                layer, row, col = network.locate(int(i))
                kink_rows.append({
                    "layer": layer, "row": row, "column": col, "index": int(i),
                    a_name: float(a[i]), b_name: float(b[i]),
                    "left": float(est.left[i]), "right": float(est.right[i]),
                })
    else:
        criterion = f"||a-b||/||a+b|| <= {EXACT_NORM_RATIO:g}, or every entry within its round-off floor"
    scale = norm(a + b)
    layers = tuple(
        _stats(network, i + 1, slice(offsets[i], offsets[i + 1]), a, b, bound, scale, judged, floor)
        for i in range(len(network.shapes))
    )
    overall = _stats(network, 0, slice(0, network.n_params), a, b, bound, scale, judged, floor)
    if bound is None:
        # Ng's criterion; or, when the gradient is so small that round-off in its sums is
        # comparable to it (correctly saturated outputs, tiny weights), every entry within
        # the a-priori round-off floor of a correct float64 computation.
        ok = overall.norm_ratio <= EXACT_NORM_RATIO or (
            floor is not None and bool(np.all(np.abs(a - b) <= floor)))
        overall = dataclasses.replace(overall, ok=ok)
    else:
        ok = overall.ok
    index = network.offsets[overall.worst[0] - 1] + overall.worst[1] * network.shapes[overall.worst[0] - 1][1] + overall.worst[2]
    worst = {
        "layer": overall.worst[0],
        "row": overall.worst[1],
        "column": overall.worst[2],
        "index": index,
        a_name: float(a[index]),
        b_name: float(b[index]),
        "abs_error": float(abs(a[index] - b[index])),
        "rel_error": float(abs(a[index] - b[index]) / max(abs(a[index]), abs(b[index]), TINY)),
    }
    if bound is not None:
        worst["bound"] = float(bound[index])
    return PairResult(a_name, b_name, criterion, overall, layers, worst, bool(ok), tuple(kink_rows))


def _verdict(n_pairs: int, n_bad: int) -> str:
    """``the pair agrees``, ``all 3 pairs agree``, ``1 of 3 pairs DISAGREES``, ..."""
    if n_pairs == 1:
        return "the pair agrees" if n_bad == 0 else "the pair DISAGREES"
    if n_bad == 0:
        return f"all {n_pairs} pairs agree"
    return f"{n_bad} of {n_pairs} pairs {'DISAGREES' if n_bad == 1 else 'DISAGREE'}"


class CompareReport(Report):
    """Gradients from several sources side by side, with a verdict per pair.

    Attributes
    ----------
    ok : bool
        True when every pair agrees.
    gradients : dict[str, numpy.ndarray]
        Each source's gradient.
    errors : dict[str, numpy.ndarray]
        Per-entry error estimates, for the sources that provide them.
    pairs : list[PairResult]
    cost : float
        J at the parameters.
    """

    def __init__(self, problem, params, cost_value, sources, gradients, errors, pairs, show=0, info=None):
        self.problem = problem
        self.params = params
        self.cost = cost_value
        self.sources = sources
        self.gradients = gradients
        self.errors = errors
        self.pairs = pairs
        self.show = show
        self.info = dict(info or {})
        self.ok = all(p.ok for p in pairs)

    def pair(self, a: str, b: str) -> PairResult:
        """The result for sources ``a`` and ``b`` (either order)."""
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        raise GradlabError(f"no pair ({a!r}, {b!r}) in this report; pairs are "
                           + ", ".join(f"({p.a!r}, {p.b!r})" for p in self.pairs))

    def to_dict(self) -> dict:
        net = self.problem.network
        return {
            "ok": self.ok,
            "sizes": list(net.sizes),
            "activation": net.activation,
            "examples": self.problem.m,
            "lam": self.problem.lam,
            **self.info,
            "cost": self.cost,
            "sources": {s.name: s.description for s in self.sources},
            "tolerances": {"exact_norm_ratio": EXACT_NORM_RATIO, "numeric_safety": NUMERIC_SAFETY,
                           "numeric_roundoff": NUMERIC_ROUNDOFF},
            "pairs": [p.to_dict() for p in self.pairs],
            "gradients": {k: g.tolist() for k, g in self.gradients.items()},
            "error_estimates": {k: e.tolist() for k, e in self.errors.items()},
        }

    def _text(self) -> str:
        net = self.problem.network
        extra = "".join(f", {k}={v}" for k, v in self.info.items())
        lines = [
            f"gradlab compare: sizes {','.join(map(str, net.sizes))}"
            + ("" if net.activation == "sigmoid" else f" ({net.activation} hidden units)")
            + f", {net.n_params} parameters, "
            f"m={self.problem.m}, lambda={self.problem.lam:g}{extra}",
            f"cost J = {self.cost:.10g}",
        ]
        for s in self.sources:
            lines.append(f"  {s.name:<9} {s.description}")
        for p in self.pairs:
            verdict = "AGREE" if p.ok else "DISAGREE"
            lines.append("")
            lines.append(f"{p.a} vs {p.b}: {verdict}   (criterion: {p.criterion})")
            lines.append(f"  {'layer':<8}{'shape':>9}  {'max |a-b|':>11}  {'max rel err':>11}  {'norm ratio':>11}")
            for s in (*p.layers, p.overall):
                name = f"Theta{s.layer}" if s.layer else "all"
                shape = "x".join(map(str, s.shape))
                flag = "" if s.ok else "  <-- differs"
                lines.append(
                    f"  {name:<8}{shape:>9}  {fmt(s.max_abs):>11}  {fmt(s.max_rel):>11}  {fmt(s.norm_ratio):>11}{flag}"
                )
            if p.kinks:
                lines.append(f"  {len(p.kinks)} entr{'y' if len(p.kinks) == 1 else 'ies'} at a relu kink "
                             "(the stencil crosses it; one-sided quotients shown, not judged):")
                lines.append(f"  {'entry':<18}{p.a:>16}{p.b:>16}{'left':>16}{'right':>16}")
                for k in p.kinks[:_KINKS_SHOWN]:
                    entry = f"Theta{k['layer']}[{k['row']}, {k['column']}]"
                    lines.append(f"  {entry:<18}{k[p.a]:>16.8e}{k[p.b]:>16.8e}{k['left']:>16.8e}{k['right']:>16.8e}")
                if len(p.kinks) > _KINKS_SHOWN:
                    lines.append(f"  ... {len(p.kinks) - _KINKS_SHOWN} more in the JSON report")
            if not p.ok:
                w = p.worst
                lines.append(
                    f"  worst entry: Theta{w['layer']}[{w['row']}, {w['column']}] "
                    f"({'bias' if w['column'] == 0 else 'weight'}): {p.a}={w[p.a]:.10g}, "
                    f"{p.b}={w[p.b]:.10g}, |a-b|={w['abs_error']:.3e}, rel={w['rel_error']:.3e}"
                )
        if self.show:
            lines.append("")
            names = [s.name for s in self.sources]
            lines.append(f"first {min(self.show, net.n_params)} entries (row = unit, column = input, 0 = bias):")
            lines.append("  " + f"{'layer':>5} {'row':>4} {'col':>4}" + "".join(f"  {n:>16}" for n in names))
            for i in range(min(self.show, net.n_params)):
                layer, row, col = net.locate(i)
                cells = "".join(f"  {self.gradients[n][i]:>16.9e}" for n in names)
                lines.append(f"  {layer:>5} {row:>4} {col:>4}{cells}")
        lines.append("")
        lines.append(f"verdict: {_verdict(len(self.pairs), sum(not p.ok for p in self.pairs))}")
        return "\n".join(lines)


def _guard(problem: Problem, theta, resolved, force: bool) -> None:
    """Refuse up front what would not fit in memory or would take too long (unless forced)."""
    net = problem.network
    names = [s.name for s in resolved]
    finite = [s for s in resolved if s.method is not None]
    extra = {"numeric working memory": numeric.working_memory(net.sizes, problem.m)} if finite else None
    _resources.require_memory(_resources.problem_memory(
        net.sizes, problem.m, jax=any(n.startswith("jax") for n in names),
        param_vectors=_resources.PARAM_VECTORS + 2 * len(names), extra=extra))
    if finite:
        evaluations = sum(numeric.evaluations(net.n_params, s.method) for s in finite)
        _resources.require_time(problem, theta, evaluations,
                                "comparing with " + ", ".join(s.name for s in finite),
                                force=force, instead="compare backprop with jax (exact, one pass each)")


def compare(problem: Problem, params, sources=("backprop", "jax", "numeric"), *, show: int = 0, info=None,
            force: bool = False, order: int = 1, direction=None, seed=0):
    """Compute the gradient (or, with ``order=2``, H v) from each source and compare every pair.

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
    sources : sequence of str or callable, default ("backprop", "jax", "numeric")
        At least two; names from :data:`gradlab.SOURCES` or callables ``(problem, params)``
        -- with ``order=2``, names from :data:`gradlab.HVP_SOURCES` or callables
        ``(problem, params, v)``.
    show : int, default 0
        Number of leading entries to list in the text rendering.
    force : bool, default False
        Run the numeric sources even when their estimated time is above
        :data:`gradlab._resources.NUMERIC_TIME_LIMIT`.
    order : {1, 2}, default 1
        1 compares gradients; 2 compares Hessian-vector products (see :func:`compare_hvp`).
    direction : {"random", "ones"} or array_like, optional
        ``order=2`` only: the vector v (default ``"random"``, a random unit vector drawn
        from ``seed``).
    seed : int, default 0
        ``order=2`` only: seeds the random directions (v and the symmetry check's u).

    Returns
    -------
    CompareReport
        Per pair, per layer and overall: max absolute difference, max elementwise
        relative error ``|a-b| / max(|a|, |b|)``, the norm ratio ``||a-b|| / ||a+b||``
        and a verdict. Exact pairs are judged by the norm ratio against
        :data:`EXACT_NORM_RATIO` (or, for gradients so small that round-off rivals them,
        every entry within the a-priori round-off floor of a correct float64 computation);
        pairs with a numeric source entry by entry against
        :data:`NUMERIC_SAFETY` times the numeric error estimate.

    Raises
    ------
    GradlabError
        Bad input; a problem that would not fit in memory; numeric sources whose
        estimated time is above the limit, without ``force``.

    Examples
    --------
    >>> import gradlab
    >>> p = gradlab.debug_problem()
    >>> gradlab.compare(p, gradlab.debug_init(p.network)).ok
    True
    """
    order = v.integer("order", order)
    if order not in (1, 2):
        raise v.fail("order", order, "1 (gradients) or 2 (Hessian-vector products)")
    if order == 2:
        return compare_hvp(problem, params, sources, direction=direction, seed=seed, show=show, info=info)
    if direction is not None:
        raise v.fail("direction", direction, "None for order=1 (a direction is for order=2)")
    problem = check_problem(problem)
    theta = problem.network.check_params(params)
    if isinstance(sources, (str, bytes)) or not hasattr(sources, "__iter__"):
        raise v.fail("sources", sources, "a sequence of at least two source names or callables")
    resolved: list[Source] = [get_source(s, "sources") for s in sources]
    names = [s.name for s in resolved]
    if len(resolved) < 2 or len(set(names)) != len(names):
        raise v.fail("sources", tuple(names), "at least two distinct sources")
    show = v.integer("show", show, minimum=0)
    force = v.flag("force", force)
    info = v.metadata("info", info)
    _guard(problem, theta, resolved, force)
    with _resources.forced():  # guarded above, as a whole
        return _compare(problem, theta, resolved, show, info)


def _compare(problem, theta, resolved, show, info) -> CompareReport:
    n = problem.network.n_params
    gradients, errors, estimates = {}, {}, {}
    for src in resolved:
        if src.estimate is not None:
            est = src.estimate(problem, theta.copy())
            estimates[src.name] = est
            g = est.gradient
            errors[src.name] = np.asarray(est.error, dtype=np.float64)
        else:
            g = src.gradient(problem, theta.copy())
        gradients[src.name] = checked_output(src, g, n)
    floor = roundoff_floor(problem, theta)
    pairs = [
        _pair(problem.network, a.name, b.name, gradients[a.name], gradients[b.name],
              estimates.get(a.name), estimates.get(b.name), floor)
        for i, a in enumerate(resolved)
        for b in resolved[i + 1 :]
    ]
    return CompareReport(problem, theta, cost(problem, theta), resolved, gradients, errors, pairs, show=show, info=info)


# --------------------------------------------------------------------------------------
# Second order: Hessian-vector products side by side
# --------------------------------------------------------------------------------------

#: Largest network (parameters) whose full Hessian the second-order comparison assembles
#: from P products (one per basis vector) to report its eigenvalues' signs: P products of a
#: few hundred parameters take well under a second, and P^2 entries (320 KB at 200) stay
#: small; larger networks get the symmetry check only.
FULL_HESSIAN_MAX_PARAMS = 200

def _direction(network, direction, seed) -> tuple[np.ndarray, np.ndarray, str]:
    """v (validated or made), a second random unit direction u for the symmetry check (the
    second draw from ``seed``; a random v is the first), and a description of v."""
    vec, described = direction_for(network, direction, seed)
    return vec, random_directions(network.n_params, seed)[1], described


@dataclasses.dataclass(frozen=True)
class SymmetryResult:
    """``u . Hv`` against ``v . Hu`` for one source (a symmetric H makes them equal)."""

    source: str
    u_Hv: float
    v_Hu: float
    difference: float
    tolerance: float
    ok: bool
    judged: bool = True  # False when a finite-difference stencil crossed a relu kink

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class HessianSpectrum:
    """The full Hessian of a small network, assembled from P products, and its eigenvalues.

    ``kind`` reads the signs: "minimum" (all eigenvalues positive: positive definite),
    "maximum" (all negative), "saddle" (both signs), "degenerate" (no sign of one kind and
    some within ``tolerance`` of zero: second order cannot decide). An eigenvalue is counted
    as zero when its magnitude is within ``tolerance``, the Frobenius norm of the products'
    round-off floors (by Weyl's inequality, no eigenvalue of the computed matrix moves
    further than that from the exact one). Curvature alone decides a minimum only at a
    stationary point; ``grad_norm`` says how far from one this point is.
    """

    source: str
    n: int
    eigenvalues: np.ndarray
    positive: int
    negative: int
    zero: int
    tolerance: float
    asymmetry: float
    kind: str
    grad_norm: float

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["eigenvalues"] = self.eigenvalues.tolist()
        return d


def _spectrum(problem, theta, src: HvpSource, grad_norm: float) -> HessianSpectrum:
    n = problem.network.n_params
    columns, floors = [], []
    for e in np.eye(n):
        columns.append(checked_output(src, src.hvp(problem, theta.copy(), e), n, "Hessian-vector product"))
        floors.append(hvp_roundoff_floor(problem, theta, e))
    H = np.column_stack(columns)
    tolerance = norm(np.column_stack(floors))
    eig = np.linalg.eigvalsh((H + H.T) / 2.0)
    pos, neg = int(np.sum(eig > tolerance)), int(np.sum(eig < -tolerance))
    zero = n - pos - neg
    if pos and neg:
        kind = "saddle"
    elif zero:
        kind = "degenerate"
    else:
        kind = "minimum" if pos else "maximum"
    return HessianSpectrum(src.name, n, eig, pos, neg, zero, tolerance, float(np.max(np.abs(H - H.T), initial=0.0)),
                           kind, grad_norm)


_KIND_WORDS = {
    "minimum": "positive definite: the curvature of a minimum",
    "maximum": "negative definite: the curvature of a maximum",
    "saddle": "indefinite: a saddle (curving up along some directions, down along others)",
    "degenerate": "semi-definite with flat directions: degenerate, second order cannot decide",
}


class HvpCompareReport(Report):
    """Hessian-vector products from several sources side by side, with a verdict per pair.

    Attributes
    ----------
    ok : bool
        True when every pair agrees and every symmetry check holds.
    hvps : dict[str, numpy.ndarray]
        Each source's ``H v``.
    errors : dict[str, numpy.ndarray]
        Per-entry error estimates, for the numeric sources.
    pairs : list[PairResult]
    symmetry : list[SymmetryResult]
        ``u . Hv`` against ``v . Hu`` per source, u a second random unit direction.
    spectrum : HessianSpectrum or None
        The full Hessian's eigenvalue signs, for networks of at most
        :data:`FULL_HESSIAN_MAX_PARAMS` parameters.
    direction : numpy.ndarray
        v.
    """

    def __init__(self, problem, params, cost_value, sources, direction, described, hvps, errors, pairs,
                 symmetry, spectrum, show=0, info=None):
        self.problem = problem
        self.params = params
        self.cost = cost_value
        self.sources = sources
        self.direction = direction
        self.described = described
        self.hvps = hvps
        self.errors = errors
        self.pairs = pairs
        self.symmetry = symmetry
        self.spectrum = spectrum
        self.show = show
        self.info = dict(info or {})
        self.ok = all(p.ok for p in pairs) and all(s.ok for s in symmetry)

    pair = CompareReport.pair

    def to_dict(self) -> dict:
        net = self.problem.network
        return {
            "ok": self.ok,
            "order": 2,
            "sizes": list(net.sizes),
            "activation": net.activation,
            "examples": self.problem.m,
            "lam": self.problem.lam,
            **self.info,
            "cost": self.cost,
            "direction": {"described": self.described, "v": self.direction.tolist()},
            "sources": {s.name: s.description for s in self.sources},
            "tolerances": {"hvp_norm_ratio": HVP_NORM_RATIO, "numeric_safety": NUMERIC_SAFETY,
                           "numeric_roundoff": NUMERIC_ROUNDOFF, "full_hessian_max_params": FULL_HESSIAN_MAX_PARAMS},
            "pairs": [p.to_dict() for p in self.pairs],
            "symmetry": [s.to_dict() for s in self.symmetry],
            "hessian": None if self.spectrum is None else self.spectrum.to_dict(),
            "hvps": {k: h.tolist() for k, h in self.hvps.items()},
            "error_estimates": {k: e.tolist() for k, e in self.errors.items()},
        }

    def _text(self) -> str:
        net = self.problem.network
        extra = "".join(f", {k}={val}" for k, val in self.info.items())
        lines = [
            f"gradlab compare --order 2: sizes {','.join(map(str, net.sizes))}"
            + ("" if net.activation == "sigmoid" else f" ({net.activation} hidden units)")
            + f", {net.n_params} parameters, m={self.problem.m}, lambda={self.problem.lam:g}{extra}",
            f"Hessian-vector products H v, v {self.described} (|v| = {norm(self.direction):.4g}); cost J = {self.cost:.10g}",
        ]
        for s in self.sources:
            lines.append(f"  {s.name:<16} {s.description}")
        for p in self.pairs:
            lines.append("")
            lines.append(f"{p.a} vs {p.b}: {'AGREE' if p.ok else 'DISAGREE'}   (criterion: {p.criterion})")
            lines.append(f"  {'layer':<8}{'shape':>9}  {'max |a-b|':>11}  {'max rel err':>11}  {'norm ratio':>11}")
            for st in (*p.layers, p.overall):
                name = f"Theta{st.layer}" if st.layer else "all"
                flag = "" if st.ok else "  <-- differs"
                lines.append(f"  {name:<8}{'x'.join(map(str, st.shape)):>9}  {fmt(st.max_abs):>11}  "
                             f"{fmt(st.max_rel):>11}  {fmt(st.norm_ratio):>11}{flag}")
            if p.kinks:
                k = p.kinks[0]
                sides = (f"; one-sided at Theta{k['layer']}[{k['row']}, {k['column']}]: left {k['left']:.8e}, "
                         f"right {k['right']:.8e}" if np.isfinite(k["left"]) and np.isfinite(k["right"]) else "")
                lines.append(f"  not judged: the numeric product's step along v crosses a relu kink (every "
                             f"entry){sides}")
            if not p.ok:
                w = p.worst
                lines.append(
                    f"  worst entry: (H v) of Theta{w['layer']}[{w['row']}, {w['column']}] "
                    f"({'bias' if w['column'] == 0 else 'weight'}): {p.a}={w[p.a]:.10g}, "
                    f"{p.b}={w[p.b]:.10g}, |a-b|={w['abs_error']:.3e}, rel={w['rel_error']:.3e}")
        lines.append("")
        lines.append("symmetry, u . Hv = v . Hu (u a second random unit vector):")
        for sy in self.symmetry:
            verdict = "not judged (kink)" if not sy.judged else ("holds" if sy.ok else "FAILS")
            lines.append(f"  {sy.source:<16} u.Hv={sy.u_Hv:>16.9e}  v.Hu={sy.v_Hu:>16.9e}  "
                         f"|diff|={fmt(sy.difference):>9}  tolerance={fmt(sy.tolerance):>9}  {verdict}")
        if self.spectrum is not None:
            sp = self.spectrum
            lines.append("")
            lines.append(f"Hessian ({sp.n} x {sp.n}, assembled from {sp.n} {sp.source} products; largest "
                         f"asymmetry {fmt(sp.asymmetry)}): eigenvalues from {sp.eigenvalues[0]:.6g} to "
                         f"{sp.eigenvalues[-1]:.6g}")
            lines.append(f"  {sp.positive} positive, {sp.negative} negative, {sp.zero} zero "
                         f"(|lambda| <= {fmt(sp.tolerance)}, the products' round-off)")
            lines.append(f"  {_KIND_WORDS[sp.kind]}; gradient norm here {sp.grad_norm:.3g}"
                         + (" (a stationary point only where it vanishes)" if sp.kind != "saddle" else ""))
        elif net.n_params > FULL_HESSIAN_MAX_PARAMS:
            lines.append("")
            lines.append(f"full Hessian not assembled: {net.n_params} parameters > {FULL_HESSIAN_MAX_PARAMS}")
        if self.show:
            names = [s.name for s in self.sources]
            lines.append("")
            lines.append(f"first {min(self.show, net.n_params)} entries of H v (row = unit, column = input, 0 = bias):")
            lines.append("  " + f"{'layer':>5} {'row':>4} {'col':>4}" + "".join(f"  {n:>16}" for n in names))
            for i in range(min(self.show, net.n_params)):
                layer, row, col = net.locate(i)
                lines.append(f"  {layer:>5} {row:>4} {col:>4}" + "".join(f"  {self.hvps[n][i]:>16.9e}" for n in names))
        lines.append("")
        bad = sum(not p.ok for p in self.pairs)
        asym = [sy.source for sy in self.symmetry if not sy.ok]
        if bad == 0 and not asym:
            lines.append(f"verdict: {_verdict(len(self.pairs), 0)}; symmetric")
        else:
            parts = [_verdict(len(self.pairs), bad)] if bad else []
            if asym:
                parts.append("NOT symmetric: " + ", ".join(asym))
            lines.append("verdict: " + "; ".join(parts))
        return "\n".join(lines)


def compare_hvp(problem: Problem, params, sources=("backprop", "jax", "numeric"), *, direction=None, seed=0,
                show: int = 0, info=None) -> HvpCompareReport:
    """Hessian-vector products from each source, every pair compared, symmetry checked.

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
    sources : sequence of str or callable, default ("backprop", "jax", "numeric")
        At least two; names from :data:`gradlab.HVP_SOURCES` or callables
        ``(problem, params, v)``.
    direction : {"random", "ones"} or array_like, optional
        The vector v: a random unit vector drawn from ``seed`` (the default), all ones, or
        the given array (finite real numbers, one per parameter).
    seed : int, default 0
        Seeds the random v and the symmetry check's second direction u.
    show : int, default 0
        Number of leading entries of each ``H v`` to list in the text rendering.
    info : dict, optional
        Extra metadata for the report.

    Returns
    -------
    HvpCompareReport
        Per pair, per layer and overall, the differences and a verdict -- exact pairs by the
        norm ratio against :data:`gradlab._judge.HVP_NORM_RATIO` (or every entry within the
        round-off floor), pairs with a numeric source entry by entry against
        :data:`NUMERIC_SAFETY` times its error estimate; per source, ``u . Hv`` against
        ``v . Hu``; for at most :data:`FULL_HESSIAN_MAX_PARAMS` parameters, the full Hessian
        from P products of the first exact source and its eigenvalues' signs.

    Raises
    ------
    GradlabError
        Bad input; a problem that would not fit in memory.

    Examples
    --------
    >>> import gradlab
    >>> p = gradlab.debug_problem()
    >>> r = gradlab.compare(p, gradlab.debug_init(p.network), order=2)
    >>> r.ok, r.spectrum.kind
    (True, 'saddle')
    """
    problem = check_problem(problem)
    net = problem.network
    theta = net.check_params(params)
    if isinstance(sources, (str, bytes)) or not hasattr(sources, "__iter__"):
        raise v.fail("sources", sources, "a sequence of at least two Hessian-vector product source names or callables")
    resolved: list[HvpSource] = [get_hvp_source(s, "sources") for s in sources]
    names = [s.name for s in resolved]
    if len(resolved) < 2 or len(set(names)) != len(names):
        raise v.fail("sources", tuple(names), "at least two distinct sources")
    show = v.integer("show", show, minimum=0)
    info = v.metadata("info", info)
    if not isinstance(seed, np.random.Generator):
        seed = v.integer("seed", seed, minimum=0)
    direction, u, described = _direction(net, direction, seed)
    _resources.require_memory(_resources.problem_memory(
        net.sizes, problem.m, jax=any(n in ("jax", "numeric-complex") for n in names),
        param_vectors=_resources.PARAM_VECTORS + 4 * len(names)))

    hvps, errors, estimates, Hu = {}, {}, {}, {}
    for src in resolved:
        if src.estimate is not None:
            est_v, est_u = src.estimate(problem, theta.copy(), direction.copy()), src.estimate(problem, theta.copy(), u.copy())
            estimates[src.name] = est_v
            errors[src.name] = np.asarray(est_v.error, dtype=np.float64)
            hvps[src.name] = checked_output(src, est_v.hvp, net.n_params, "Hessian-vector product")
            Hu[src.name] = (checked_output(src, est_u.hvp, net.n_params, "Hessian-vector product"), est_u)
        else:
            hvps[src.name] = hvp(problem, theta, direction, src)
            Hu[src.name] = (hvp(problem, theta, u, src), None)
    floor_v, floor_u = hvp_roundoff_floor(problem, theta, direction), hvp_roundoff_floor(problem, theta, u)
    pairs = [
        _pair(net, a.name, b.name, hvps[a.name], hvps[b.name], estimates.get(a.name), estimates.get(b.name), floor_v,
              "Hv")
        for i, a in enumerate(resolved) for b in resolved[i + 1:]
    ]
    symmetry = []
    for src in resolved:
        hu, est_u = Hu[src.name]
        est_v = estimates.get(src.name)
        fv, fu = floor_v, floor_u
        judged = True
        if est_v is not None:  # a numeric product errs by up to NUMERIC_SAFETY times its estimate
            fv = fv + NUMERIC_SAFETY * est_v.error
            fu = fu + NUMERIC_SAFETY * est_u.error
            judged = not (est_v.kink.any() or est_u.kink.any())
        uHv, vHu = float(u @ hvps[src.name]), float(direction @ hu)
        tol = symmetry_tolerance(u, direction, hu, hvps[src.name], fu, fv)
        diff = abs(uHv - vHu)
        symmetry.append(SymmetryResult(src.name, uHv, vHu, diff, tol, (diff <= tol) or not judged, judged))
    spectrum = None
    exact = [s for s in resolved if s.estimate is None]
    if net.n_params <= FULL_HESSIAN_MAX_PARAMS and exact:
        spectrum = _spectrum(problem, theta, exact[0], norm(gradient(problem, theta)))
    return HvpCompareReport(problem, theta, cost(problem, theta), resolved, direction, described, hvps, errors,
                            pairs, symmetry, spectrum, show=show, info=info)
