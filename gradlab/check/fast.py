"""Fast mode: an exact witness for every entry where there is one; random-direction checks
and bisection with masked directions.

With jax (or backprop) the network's gradient is compared with the witness entry by entry
-- one gradient evaluation, nothing missed that the witness sees -- and finite differences
along a few random directions confirm the witness itself (:mod:`gradlab.check.witness`).
Without one, this module's engine: a full central-difference check costs two (with its error estimate four) evaluations per
entry; a directional derivative costs two whatever the size. Each block of entries (a
network's weight matrix; an input of any function or layer) is probed along random unit
directions; a flagged block is bisected, two evaluations per split -- directional
derivatives are linear in the direction, so only one half needs evaluating -- until single
wrong entries remain, each confirmed by a central difference with its own error estimate.

One engine for every front door: :class:`Directional` works on a
:class:`~gradlab.check.blackbox.BlackBox` of K scalar functions (the network's cost is one;
a layer's ``<dout_k, out>`` are K at once), and :func:`bisect` and :func:`fast_factor` on
its nodes. :func:`fast_check` is the network's fast mode, :func:`fast_inputs` the generic one.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gradlab import _cost
from gradlab._judge import CENTRAL_STEP, EPS, NUMERIC_SAFETY, ROUNDOFF_EVALS, TINY, is_ratio
from gradlab.check.blackbox import BlackBox
from gradlab.check.findings import (MAX_LISTED, Finding, InputFinding, factor_name, grid, groups_of, layer_slices,
                                    rows_cols)
from gradlab.check.report import ranges
from gradlab.network import Problem

__all__ = ["fast_check", "fast_inputs", "cost_box", "detectable", "MISS_RULE", "Node", "Directional", "bisect", "fast_factor", "FULL_MODE_MAX_PARAMS",
           "FAST_DIRECTIONS", "FAST_MAX_LEAVES", "FAST_MAX_ACCUMULATED", "FAST_REPORT_MISS", "MAX_ENTRIES"]

#: ``mode="auto"`` runs the full check (4 evaluations per entry for the numeric gradient
#: and its error estimate) up to this many parameters (a network's) or differentiated
#: entries (any function's); beyond it, fast mode. At 2,000 parameters and a few examples
#: the network's full check takes well under a second on one core.
FULL_MODE_MAX_PARAMS = 2000

#: Fast mode: random directions per block (weight matrix, input) in the first pass.
FAST_DIRECTIONS = 2

#: Fast mode: bisection stops splitting once this many wrong blocks are open at a time
#: (many wrong entries are then reported as blocks instead of single entries).
FAST_MAX_LEAVES = 16

#: Fast mode: a half's residual obtained by subtraction carries the sum of its parents'
#: tolerances; past this many single-probe tolerances a half that looks clean is re-probed.
FAST_MAX_ACCUMULATED = 4.0

#: Fast mode reports the single-entry error above which the chance of missing it is below
#: this probability.
FAST_REPORT_MISS = 1e-3

#: Entries kept as multi-indices in one finding of the generic fast mode.
MAX_ENTRIES = 1000

#: Cost evaluations one weight matrix's probes can take before any bisection (the network's
#: fast mode without a witness): FAST_DIRECTIONS random directions, the calibration at step
#: 2h, the factor test's third direction, and the split into bias and weight columns (four
#: when a half is probed afresh).
_LAYER_PROBES = 2 * FAST_DIRECTIONS + 2 + 2 + 4


@dataclasses.dataclass
class Node:
    """A block of entries, the direction used on it, its residuals ``U.v - D_v J`` (one per
    scalar function) and their tolerances."""

    idx: np.ndarray
    v: np.ndarray
    r: np.ndarray
    tol: np.ndarray

    @property
    def flagged(self) -> bool:
        return bool(np.any(np.abs(self.r) > self.tol))


class Directional:
    """Directional central differences of a black box's K functions (two evaluations each).

    ``budget`` caps the evaluations (the generic fast mode never spends more than a full
    check); None for no cap.
    """

    def __init__(self, bb: BlackBox, budget: int | None = None):
        self.bb = bb
        self.budget = budget
        theta = bb.theta0
        self.h = CENTRAL_STEP * max(1.0, float(np.max(np.abs(theta), initial=0.0)))
        self.truncation = np.zeros(bb.K)
        # The largest |J| met so far: J's round-off is relative to it (J itself can cancel to 0).
        self.size = np.array(bb.size0, dtype=np.float64)
        self.start = bb.count

    @property
    def used(self) -> int:
        """Evaluations spent by this object."""
        return self.bb.count - self.start

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.used + 4 > self.budget

    def derivative(self, idx, v, step):
        plus, s1 = self.bb.along(idx, v, step)
        minus, s2 = self.bb.along(idx, v, -step)
        self.size = np.maximum.reduce([self.size, s1, s2])
        return (plus - minus) / (2.0 * step)

    def tolerance(self):
        """Error bound of one directional difference: round-off plus truncation (calibrated)."""
        return NUMERIC_SAFETY * (ROUNDOFF_EVALS * EPS * self.size / self.h + self.truncation)

    def residual(self, U, idx, v):
        """``U.v - D_v J`` along ``v`` masked to ``idx`` (signed; two evaluations); U is (K, n)."""
        return U[:, idx] @ v - self.derivative(idx, v, self.h)

    def probe(self, U, idx, rng) -> Node:
        """A fresh random unit direction masked to ``idx``."""
        v = rng.standard_normal(len(idx))
        v /= np.linalg.norm(v)
        return Node(idx, v, self.residual(U, idx, v), self.tolerance())

    def calibrate(self, U, node: Node) -> Node:
        """Estimate truncation on a probe already made, at step 2h too (Richardson: /3)."""
        d1 = U[:, node.idx] @ node.v - node.r
        d2 = self.derivative(node.idx, node.v, 2.0 * self.h)
        self.truncation = np.maximum(self.truncation, np.abs(d2 - d1) / 3.0)
        return Node(node.idx, node.v, node.r, self.tolerance())

    def partial(self, i):
        """The partial derivative along one coordinate, with its own error estimate (4 evaluations)."""
        idx = np.array([i])
        one = np.ones(1)
        d1 = self.derivative(idx, one, self.h)
        d2 = self.derivative(idx, one, 2.0 * self.h)
        return d1, np.abs(d2 - d1) / 3.0 + ROUNDOFF_EVALS * EPS * self.size / self.h

    def split(self, U, node: Node, k: int, rng):
        """Halves of a node, for two evaluations instead of four.

        With ``v = v_left + v_right``, ``U.v - D_v = (U.v_left - D_left) + (U.v_right - D_right)``.
        So the left half is probed with the parent's own direction restricted to it, and the
        right half's residual is the parent's minus the left's -- no evaluation -- with the
        two tolerances added. A right half that looks clean only under more than
        FAST_MAX_ACCUMULATED single-probe tolerances is probed afresh, so accumulated
        tolerance cannot hide an error.
        """
        if k <= 0 or k >= len(node.idx):
            return (node, None) if k > 0 else (None, node)
        left_idx, right_idx = node.idx[:k], node.idx[k:]
        v_left = node.v[:k]
        if not np.any(v_left):
            left = self.probe(U, left_idx, rng)
        else:
            left = Node(left_idx, v_left, self.residual(U, left_idx, v_left), self.tolerance())
        right = Node(right_idx, node.v[k:], node.r - left.r, node.tol + left.tol)
        if not np.any(right.v) or (not right.flagged and np.any(right.tol > FAST_MAX_ACCUMULATED * self.tolerance())):
            right = self.probe(U, right_idx, rng)
        return left, right


def bisect(dd: Directional, U, blocks, rng):
    """Halve flagged blocks until single entries remain (two evaluations per split).

    Returns (single wrong entries, blocks left open when more than FAST_MAX_LEAVES are open
    or the budget is spent).
    """
    leaves = []
    stack = [b for b in blocks if len(b.idx)]
    while stack:
        if len(stack) > FAST_MAX_LEAVES or dd.exhausted:
            return leaves, [b.idx for b in stack]
        node = stack.pop()
        if len(node.idx) == 1:
            leaves.append(int(node.idx[0]))
            continue
        left, right = dd.split(U, node, len(node.idx) // 2, rng)
        stack += [h for h in (right, left) if h is not None and h.flagged]
    return leaves, []


def fast_factor(dd: Directional, U, flags, rng) -> float | None:
    """Is the block's gradient c times the truth? The ratio U.v / D_v is then the same for
    every direction; a third direction confirms what two suggest."""
    def d_of(node):
        return U[:, node.idx] @ node.v - node.r

    def ratio_fits(c, node):
        return bool(np.all(np.abs(U[:, node.idx] @ node.v - c * d_of(node)) <= (1.0 + abs(c)) * node.tol))

    first = flags[0]
    d1 = d_of(first)
    k = int(np.argmax(np.abs(d1) / np.maximum(first.tol, TINY)))
    if abs(d1[k]) <= first.tol[k]:
        return None
    c = float((U[:, first.idx] @ first.v)[k] / d1[k])
    if is_ratio(c, 1.0) or not all(ratio_fits(c, f) for f in flags):
        return None
    extra = dd.probe(U, first.idx, rng)
    return c if ratio_fits(c, extra) else None


def detectable(tol: float, d: int) -> float:
    """The single-entry error above which FAST_DIRECTIONS random directions over ``d``
    entries all miss it with probability < FAST_REPORT_MISS."""
    # e.v for a unit direction uniform on the sphere of dimension d is about N(0, |e|^2/d):
    # P(|e.v| < tol) <= sqrt(2/pi) tol sqrt(d)/|e| per direction, independent directions multiply.
    return math.sqrt(2.0 / math.pi) * tol * math.sqrt(d) / FAST_REPORT_MISS ** (1.0 / FAST_DIRECTIONS)


MISS_RULE = ("a single entry off by e is missed by one unit random direction over d entries with probability "
              "<= sqrt(2/pi) * tolerance * sqrt(d) / e")


def cost_box(problem: Problem, params) -> BlackBox:
    """gradlab's cost as a black box of one scalar function."""
    net, X, Y, lam = problem.network, problem.X, problem.Y, problem.lam

    def scalars(theta):
        J = float(_cost.cost(np, net, theta, X, Y, lam))
        return np.array([J]), np.array([abs(J)])

    return BlackBox(scalars, params, 1)


def fast_check(U, problem: Problem, params, rng, name: str):
    """The network's fast mode without an exact witness: random directions, then bisection,
    within the cost evaluations of a full central-difference check (2P)."""
    net = problem.network
    budget = 2 * net.n_params
    dd = Directional(cost_box(problem, params), budget)
    stopped = False
    U = np.asarray(U)[None, :]
    findings: list[Finding] = []
    layers_info = []
    for layer, sl in enumerate(layer_slices(net), start=1):
        rows_, cols_ = net.shapes[layer - 1]
        idx = np.arange(sl.start, sl.stop)
        flags = [dd.probe(U, idx, rng) for _ in range(FAST_DIRECTIONS)]
        if layer == 1:  # the first probe calibrates the truncation part of every tolerance
            flags = [dd.calibrate(U, f) for f in flags]
        tol = float(max(np.max(f.tol) for f in flags))
        detect = detectable(tol, idx.size)
        layers_info.append({"layer": layer, "tolerance": tol, "detectable_error": detect,
                            "flagged": any(f.flagged for f in flags)})
        if not any(f.flagged for f in flags):
            continue
        c = fast_factor(dd, U, flags, rng)
        if c is not None:
            label = factor_name(c, problem.m)
            kind = "sign_flip" if is_ratio(c, -1.0) else "constant_factor"
            findings.append(Finding(
                kind, layer, f"Theta{layer}'s gradient is {c:.6g} times the true one along every random direction "
                f"tried" + (f" ({label})" if label else "") + ": the whole layer is scaled, not single entries.",
                f"compared U.v with the cost's directional derivative along {FAST_DIRECTIONS + 1} random directions "
                f"masked to Theta{layer}: their ratio is the same each time", list(range(rows_)),
                list(range(cols_)), [], None, None, "user", label or f"factor {c:.6g}",
                {"factor": c, "blame_basis": "numeric (fast mode does not run jax)"}))
            continue
        # Split the most clearly flagged direction into the bias column and the weight columns.
        top = max(flags, key=lambda f: float(np.max(np.abs(f.r) / np.maximum(f.tol, TINY))))
        local = grid(net, layer) - sl.start
        order = np.r_[local[:, 0], local[:, 1:].ravel()]
        top = Node(top.idx[order], top.v[order], top.r, top.tol)
        bias, weights = dd.split(U, top, rows_, rng)
        blocks = [b for b in (bias, weights) if b is not None and b.flagged]
        if not blocks:
            blocks = [top]  # the layer was flagged but neither part alone: search it all
        # What this layer may spend: the budget less what the layers after it need for their probes.
        dd.budget = budget - _LAYER_PROBES * (len(net.shapes) - layer)
        leaves, open_blocks = bisect(dd, U, blocks, rng)
        stopped = stopped or (bool(open_blocks) and dd.exhausted)
        confirmed = []
        for n_leaf, i in enumerate(leaves):
            if dd.exhausted:  # the rest stay unconfirmed: reported as a block
                stopped = True
                open_blocks = open_blocks + [np.array(leaves[n_leaf:])]
                break
            d, err = dd.partial(int(i))
            if abs(U[0, i] - d[0]) > NUMERIC_SAFETY * err[0]:
                confirmed.append((int(i), float(d[0]), float(err[0])))
        dd.budget = budget
        if not confirmed and not open_blocks:
            continue
        idx_bad = np.array([c[0] for c in confirmed] + [int(j) for b in open_blocks for j in b], dtype=int)
        rows, cols = rows_cols(net, idx_bad)
        vals = [{"row": net.locate(i)[1], "column": net.locate(i)[2], "index": i, "yours": float(U[0, i]),
                 "expected": float(d), "error": float(abs(U[0, i] - d)), "numeric_error_estimate": float(err)}
                for i, d, err in confirmed[:MAX_LISTED]]
        exp = (f"random directions masked to Theta{layer}, then to its bias column and its weight columns, then "
               "bisection over the flagged block with masked directions; each wrong entry confirmed by a central "
               "difference with its own error estimate")
        if cols == [0]:
            kind, cause = "bias_column", "bias column"
            sentence = (f"only the bias column (column 0) of Theta{layer} is wrong"
                        + (f": {len(confirmed)} entr{'y' if len(confirmed) == 1 else 'ies'} located" if confirmed else "")
                        + ". The bias gradient of a unit is the sum of its delta over the examples, divided by m.")
        elif open_blocks:
            kind, cause = ("one_layer" if sum(i["flagged"] for i in layers_info) == 1 else "entries"), "many entries"
            why = (f"bisection stopped at {dd.used} cost evaluations, within the {budget} a full check needs"
                   if stopped else f"more than {FAST_MAX_LEAVES} wrong blocks")
            sentence = (f"many entries of Theta{layer} are wrong ({why}); the wrong ones lie among rows "
                        f"{ranges(rows)}. Without an exact witness (jax) fast mode cannot diagnose them: run with "
                        "jax, or mode='full' on a smaller network.")
        else:
            kind, cause = "entries", "individual entries"
            where = ", ".join(f"Theta{layer}[{net.locate(i)[1]}, {net.locate(i)[2]}]" for i, _, _ in confirmed[:MAX_LISTED])
            sentence = (f"{len(confirmed)} wrong entr{'y' if len(confirmed) == 1 else 'ies'} in Theta{layer}: {where}. "
                        "Your value there differs from the finite-difference derivative by far more than its error "
                        "estimate; every other entry of the layer passed the random-direction checks.")
        err = [abs(U[0, i] - d) for i, d, _ in confirmed]
        findings.append(Finding(kind, layer, sentence, exp, rows, cols, vals, max(err) if err else None,
                                None, "user", cause, {"blame_basis": "numeric (fast mode does not run jax)"}))
    stats = {"witness": None, "directions_per_layer": FAST_DIRECTIONS, "miss_probability": FAST_REPORT_MISS,
             "cost_evaluations": dd.bb.count, "full_check_evaluations": budget, "stopped_bisecting": stopped,
             "step": dd.h, "layers": layers_info, "miss_probability_rule": MISS_RULE}
    return findings, stats


def fast_inputs(inputs, U, bb: BlackBox, rng, N_batch):
    """The generic fast mode: findings and statistics over every differentiated input of
    ``inputs`` (U has one row per scalar function of ``bb``); at most a full check's
    evaluations."""
    n = bb.theta0.size
    full = 4 * n + 1
    dd = Directional(bb, full)
    findings, stats_inputs = [], []
    calibrated = False
    for s in inputs.slots:
        idx = np.arange(s.start, s.stop)
        flags = [dd.probe(U, idx, rng) for _ in range(FAST_DIRECTIONS)]
        if not calibrated:
            flags = [dd.calibrate(U, f) for f in flags]
            calibrated = True
        tol = float(max(np.max(f.tol) for f in flags))
        detect = detectable(tol, idx.size)
        flagged = any(f.flagged for f in flags)
        stats_inputs.append({"input": s.name, "position": s.position, "tolerance": tol,
                             "detectable_error": detect, "flagged": flagged})
        if not flagged:
            continue
        c = fast_factor(dd, U, flags, rng)
        basis = {"blame_basis": "finite differences along random directions (fast mode)"}
        if c is not None:
            label = factor_name(c, 1)
            if N_batch and N_batch > 1 and is_ratio(c, float(N_batch)):
                label = f"missing 1/N? (factor = N = {N_batch}, the batch size; not confirmed in fast mode)"
            kind = "sign_flip" if is_ratio(c, -1.0) else "constant_factor"
            findings.append(InputFinding(
                kind, s.name, s.position,
                f"the gradient of {s.label} is {c:.6g} times the true one along every random direction tried"
                + (f" ({label})" if label else "") + ": the whole input is scaled, not single entries.",
                f"compared U.v with the directional derivative along {FAST_DIRECTIONS + 1} random directions "
                f"masked to {s.name}: their ratio is the same each time", cause=label or f"factor {c:.6g}",
                extra={"factor": c, **basis}))
            continue
        top = max(flags, key=lambda f: float(np.max(np.abs(f.r) / np.maximum(f.tol, TINY))))
        leaves, open_blocks = bisect(dd, U, [top], rng)
        confirmed = []
        for i in leaves:
            if dd.exhausted:
                break
            d, err = dd.partial(i)
            if np.any(np.abs(U[:, i] - d) > NUMERIC_SAFETY * err):
                confirmed.append((i, d, err))
        local = sorted({i - s.start for i, _, _ in confirmed} | {int(j) - s.start for b in open_blocks for j in b})
        mask = np.zeros(s.size, dtype=bool)
        mask[local] = True
        values = [{"entry": s.index(i - s.start), "yours": float(U[0, i]), "expected": float(d[0]),
                   "error": float(abs(U[0, i] - d[0])), "numeric_error_estimate": float(err[0])}
                  for i, d, err in confirmed[:MAX_LISTED]]
        if open_blocks:
            spent = " -- its evaluation budget spent" if dd.exhausted else ""
            sentence = (f"many entries of {s.label}'s gradient are wrong (the search stopped with "
                        f"{len(open_blocks)} block(s) open{spent}); run mode='full' on smaller inputs for a diagnosis.")
        elif confirmed:
            where = ", ".join(f"{s.name}{list(s.index(i - s.start))}" for i, _, _ in confirmed[:MAX_LISTED])
            sentence = (f"{len(confirmed)} wrong entr{'y' if len(confirmed) == 1 else 'ies'} in the gradient of "
                        f"{s.label}: {where}. Each differs from its finite-difference derivative by far more than "
                        "the error estimate; the rest of the input passed the random-direction checks.")
        else:
            sentence = (f"the gradient of {s.label} fails the random-direction checks, but bisection could not "
                        "pin single entries down (many small errors, or the budget ran out).")
        findings.append(InputFinding(
            "entries", s.name, s.position, sentence,
            f"random directions masked to {s.name}, then bisection over the flagged block with masked directions; "
            "each entry confirmed by a central difference with its own error estimate",
            entries=[s.index(i) for i in local[:MAX_ENTRIES]],
            groups=groups_of(mask, s.shape) if 0 < mask.sum() < s.size else [],
            values=values, error=max((v["error"] for v in values), default=None),
            cause="many entries" if open_blocks else "individual entries",
            extra={"n_entries": len(local), **basis}))
    stats = {"evaluations": dd.used, "full_evaluations": full, "directions_per_input": FAST_DIRECTIONS,
             "step": dd.h, "miss_probability": FAST_REPORT_MISS, "inputs": stats_inputs,
             "miss_probability_rule": MISS_RULE}
    return findings, stats
