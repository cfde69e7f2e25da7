"""Fast mode (large networks): random-direction checks and bisection with masked directions.

A full central-difference check costs ``2P`` cost evaluations; a directional derivative
costs two whatever P. Each weight matrix is probed along random unit directions; a flagged
block is split into its bias column and its weight columns and then bisected, two
evaluations per split, until single wrong entries remain, each confirmed by a central
difference with its own error estimate.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gradlab import _cost
from gradlab._judge import CENTRAL_STEP, EPS, NUMERIC_SAFETY, ROUNDOFF_EVALS, is_ratio
from gradlab.check.findings import MAX_LISTED, Finding, factor_name, grid, layer_slices, rows_cols
from gradlab.check.report import ranges
from gradlab.network import Problem

__all__ = ["fast_check", "FAST_DIRECTIONS", "FAST_MAX_LEAVES", "FAST_MAX_ACCUMULATED", "FAST_REPORT_MISS"]

#: Fast mode: random directions per weight matrix in the first pass.
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


@dataclasses.dataclass
class _Node:
    """A block of entries, the direction used on it, its residual U.v - D_v J and tolerance."""

    idx: np.ndarray
    v: np.ndarray
    r: float
    tol: float

    @property
    def flagged(self) -> bool:
        return abs(self.r) > self.tol


class _Directional:
    """Directional central differences of the cost, a black box (two evaluations each)."""

    def __init__(self, problem: Problem, params: np.ndarray):
        net, X, Y, lam = problem.network, problem.X, problem.Y, problem.lam
        self._J = lambda theta: float(_cost.cost(np, net, theta, X, Y, lam))
        self.params = params
        self.m = problem.m
        self.evaluations = 0
        self.J0 = self._J(params)
        self.h = CENTRAL_STEP * max(1.0, float(np.max(np.abs(params))) if params.size else 1.0)
        self.truncation = 0.0

    def J(self, theta) -> float:
        self.evaluations += 1
        return self._J(theta)

    def derivative(self, idx, v, step) -> float:
        work = self.params.copy()
        work[idx] += step * v
        plus = self.J(work)
        work[idx] = self.params[idx] - step * v
        minus = self.J(work)
        return (plus - minus) / (2.0 * step)

    def tolerance(self) -> float:
        """Error bound of one directional difference: round-off plus truncation (calibrated)."""
        return NUMERIC_SAFETY * (ROUNDOFF_EVALS * EPS * abs(self.J0) / self.h + self.truncation)

    def calibrate(self, U, node: _Node) -> _Node:
        """Estimate truncation on a probe already made, at step 2h too (Richardson: /3)."""
        d1 = float(U[node.idx] @ node.v) - node.r
        d2 = self.derivative(node.idx, node.v, 2.0 * self.h)
        self.truncation = abs(d2 - d1) / 3.0
        return _Node(node.idx, node.v, node.r, self.tolerance())

    def residual(self, U, idx, v) -> float:
        """``U.v - D_v J`` along ``v`` masked to ``idx`` (signed; two evaluations)."""
        return float(U[idx] @ v) - self.derivative(idx, v, self.h)

    def probe(self, U, idx, rng) -> _Node:
        """A fresh random unit direction masked to ``idx``."""
        v = rng.standard_normal(len(idx))
        v /= np.linalg.norm(v)
        return _Node(idx, v, self.residual(U, idx, v), self.tolerance())

    def partial(self, i) -> tuple[float, float]:
        """The partial derivative along one coordinate, with its own error estimate (4 evaluations)."""
        idx = np.array([i])
        one = np.ones(1)
        d1 = self.derivative(idx, one, self.h)
        d2 = self.derivative(idx, one, 2.0 * self.h)
        return d1, abs(d2 - d1) / 3.0 + ROUNDOFF_EVALS * EPS * abs(self.J0) / self.h

    def split(self, U, node: _Node, k: int, rng):
        """Halves of a node, for two evaluations instead of four.

        Directional derivatives are linear in the direction: with ``v = v_left + v_right``,
        ``U.v - D_v = (U.v_left - D_left) + (U.v_right - D_right)``. So the left half is probed
        with the parent's own direction restricted to it, and the right half's residual is the
        parent's minus the left's -- no evaluation -- with the two tolerances added. A right
        half that looks clean only under more than FAST_MAX_ACCUMULATED single-probe
        tolerances is probed afresh, so accumulated tolerance cannot hide an error.
        """
        if k <= 0 or k >= len(node.idx):
            return (node, None) if k > 0 else (None, node)
        left_idx, right_idx = node.idx[:k], node.idx[k:]
        v_left = node.v[:k]
        if not np.any(v_left):
            left = self.probe(U, left_idx, rng)
        else:
            left = _Node(left_idx, v_left, self.residual(U, left_idx, v_left), self.tolerance())
        right = _Node(right_idx, node.v[k:], node.r - left.r, node.tol + left.tol)
        # A right half that looks clean only under an accumulated tolerance is probed afresh.
        if not np.any(right.v) or (not right.flagged and right.tol > FAST_MAX_ACCUMULATED * self.tolerance()):
            right = self.probe(U, right_idx, rng)
        return left, right


def fast_check(U, problem: Problem, params, rng, name: str):
    net = problem.network
    dd = _Directional(problem, params)
    findings: list[Finding] = []
    layers_info = []
    for layer, sl in enumerate(layer_slices(net), start=1):
        rows_, cols_ = net.shapes[layer - 1]
        idx = np.arange(sl.start, sl.stop)
        flags = [dd.probe(U, idx, rng) for _ in range(FAST_DIRECTIONS)]
        if layer == 1:  # the first probe calibrates the truncation part of every tolerance
            flags = [dd.calibrate(U, f) for f in flags]
        tol = max(f.tol for f in flags)
        # e.v for a unit direction uniform on the sphere of dimension d is about N(0, |e|^2/d):
        # P(|e.v| < tol) <= sqrt(2/pi) tol sqrt(d)/|e| per direction, independent directions multiply.
        detect = math.sqrt(2.0 / math.pi) * tol * math.sqrt(idx.size) / FAST_REPORT_MISS ** (1.0 / FAST_DIRECTIONS)
        layers_info.append({"layer": layer, "tolerance": tol, "detectable_error": detect,
                            "flagged": any(f.flagged for f in flags)})
        if not any(f.flagged for f in flags):
            continue
        factor = _fast_factor(dd, U, flags, rng)
        if factor is not None:
            c, label = factor
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
        top = max(flags, key=lambda f: abs(f.r) / f.tol)
        local = grid(net, layer) - sl.start
        order = np.r_[local[:, 0], local[:, 1:].ravel()]
        top = _Node(top.idx[order], top.v[order], top.r, top.tol)
        bias, weights = dd.split(U, top, rows_, rng)
        blocks = [b for b in (bias, weights) if b is not None and b.flagged]
        if not blocks:
            blocks = [top]  # the layer was flagged but neither part alone: search it all
        leaves, open_blocks = _bisect(dd, U, blocks, rng)
        confirmed = []
        for i in leaves:
            d, err = dd.partial(int(i))
            if abs(U[i] - d) > NUMERIC_SAFETY * err:
                confirmed.append((int(i), d, err))
        if not confirmed and not open_blocks:
            continue
        idx_bad = np.array([c[0] for c in confirmed] + [int(j) for b in open_blocks for j in b], dtype=int)
        expected = U.copy()
        for i, d, _ in confirmed:
            expected[i] = d
        rows, cols = rows_cols(net, idx_bad)
        vals = [{"row": net.locate(i)[1], "column": net.locate(i)[2], "index": i, "yours": float(U[i]),
                 "expected": float(d), "error": float(abs(U[i] - d)), "numeric_error_estimate": float(err)}
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
            sentence = (f"many entries of Theta{layer} are wrong (more than {FAST_MAX_LEAVES} blocks); rows "
                        f"{ranges(rows)}. Run mode='full' on a smaller network for a diagnosis.")
        else:
            kind, cause = "entries", "individual entries"
            where = ", ".join(f"Theta{layer}[{net.locate(i)[1]}, {net.locate(i)[2]}]" for i, _, _ in confirmed[:MAX_LISTED])
            sentence = (f"{len(confirmed)} wrong entr{'y' if len(confirmed) == 1 else 'ies'} in Theta{layer}: {where}. "
                        "Your value there differs from the finite-difference derivative by far more than its error "
                        "estimate; every other entry of the layer passed the random-direction checks.")
        err = [abs(U[i] - d) for i, d, _ in confirmed]
        findings.append(Finding(kind, layer, sentence, exp, rows, cols, vals, max(err) if err else None,
                                None, "user", cause, {"blame_basis": "numeric (fast mode does not run jax)"}))
    stats = {"directions_per_layer": FAST_DIRECTIONS, "miss_probability": FAST_REPORT_MISS, "cost_evaluations": dd.evaluations,
             "full_check_evaluations": 2 * net.n_params, "step": dd.h, "layers": layers_info,
             "miss_probability_rule": "a single entry off by e is missed by one unit random direction over d "
                                      "entries with probability <= sqrt(2/pi) * tolerance * sqrt(d) / e"}
    return findings, stats


def _fast_factor(dd: _Directional, U, flags, rng):
    """Is the layer's gradient c times the truth? The ratio U.v / D_v is then the same for
    every direction; a third direction confirms what two suggest. Returns (c, name) or None."""
    def ratio_fits(c, node):
        d = float(U[node.idx] @ node.v) - node.r
        return abs(float(U[node.idx] @ node.v) - c * d) <= (1.0 + abs(c)) * node.tol

    first = flags[0]
    d1 = float(U[first.idx] @ first.v) - first.r
    if abs(d1) <= first.tol:
        return None
    c = float(U[first.idx] @ first.v) / d1
    if is_ratio(c, 1.0) or not all(ratio_fits(c, f) for f in flags[1:]):
        return None
    extra = dd.probe(U, first.idx, rng)
    if not ratio_fits(c, extra):
        return None
    return c, factor_name(c, dd.m)


def _bisect(dd: _Directional, U, blocks, rng):
    """Halve flagged blocks until single entries remain (two evaluations per split).

    Returns (single wrong entries, blocks left open when more than FAST_MAX_LEAVES are open).
    """
    leaves = []
    stack = [b for b in blocks if len(b.idx)]
    while stack:
        if len(stack) > FAST_MAX_LEAVES:
            return leaves, [b.idx for b in stack]
        node = stack.pop()
        if len(node.idx) == 1:
            leaves.append(int(node.idx[0]))
            continue
        left, right = dd.split(U, node, len(node.idx) // 2, rng)
        stack += [h for h in (right, left) if h is not None and h.flagged]
    return leaves, []

