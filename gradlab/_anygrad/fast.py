"""Fast mode for large inputs: random directions and bisection instead of every entry.

A full check costs four evaluations per entry (central differences at two steps). Fast
mode checks your gradient along a few random unit directions per input -- two
evaluations each, whatever the input's size, and for a layer all upstream gradients at
once -- and localises a flagged input by bisection: a block's residual ``U.v - D_v J`` is
split into its halves with the parent's own direction (directional derivatives are
linear in the direction, so only one half needs evaluating). Each entry found is
confirmed by a central difference with its own error estimate. The whole search stops
before it would cost more evaluations than a full check.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gradlab.compare import NUMERIC_SAFETY
from gradlab.sources.numeric import CENTRAL_STEP, EPS, ROUNDOFF_EVALS

from gradlab._anygrad.diagnosis import MAX_ENTRIES, MAX_LISTED, factor_name, groups_of, is_
from gradlab._anygrad.report import Finding

_TINY = np.finfo(np.float64).tiny

#: Random directions per input in the first pass (as the network's fast mode).
FAST_DIRECTIONS = 2
#: Bisection stops splitting once this many flagged blocks are open at a time.
FAST_MAX_LEAVES = 16
#: A half's residual got by subtraction carries its parents' tolerances; past this many
#: single-probe tolerances a half that looks clean is probed afresh.
FAST_MAX_ACCUMULATED = 4.0
#: The reported detection limit: a single wrong entry larger than it is missed with
#: probability below this.
FAST_REPORT_MISS = 1e-3


@dataclasses.dataclass
class Node:
    idx: np.ndarray
    v: np.ndarray
    r: np.ndarray  # (K,) residuals U.v - D_v J
    tol: np.ndarray  # (K,)

    @property
    def flagged(self) -> bool:
        return bool(np.any(np.abs(self.r) > self.tol))


class Directional:
    """Directional central differences of the K scalar functions (two evaluations each)."""

    def __init__(self, bb, budget: int):
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
        return self.bb.count - self.start

    @property
    def exhausted(self) -> bool:
        return self.used + 4 > self.budget

    def derivative(self, idx, v, step):
        plus, s1 = self.bb.along(idx, v, step)
        minus, s2 = self.bb.along(idx, v, -step)
        self.size = np.maximum.reduce([self.size, s1, s2])
        return (plus - minus) / (2.0 * step)

    def tolerance(self):
        return NUMERIC_SAFETY * (ROUNDOFF_EVALS * EPS * self.size / self.h + self.truncation)

    def residual(self, U, idx, v):
        return U[:, idx] @ v - self.derivative(idx, v, self.h)

    def probe(self, U, idx, rng) -> Node:
        v = rng.standard_normal(len(idx))
        v /= np.linalg.norm(v)
        return Node(idx, v, self.residual(U, idx, v), self.tolerance())

    def calibrate(self, U, node: Node) -> Node:
        """Truncation from the same direction at step 2h (Richardson: /3)."""
        d1 = U[:, node.idx] @ node.v - node.r
        d2 = self.derivative(node.idx, node.v, 2.0 * self.h)
        self.truncation = np.maximum(self.truncation, np.abs(d2 - d1) / 3.0)
        return Node(node.idx, node.v, node.r, self.tolerance())

    def partial(self, i):
        idx = np.array([i])
        one = np.ones(1)
        d1 = self.derivative(idx, one, self.h)
        d2 = self.derivative(idx, one, 2.0 * self.h)
        return d1, np.abs(d2 - d1) / 3.0 + ROUNDOFF_EVALS * EPS * self.size / self.h

    def split(self, U, node: Node, k: int, rng):
        left_idx, right_idx = node.idx[:k], node.idx[k:]
        v_left = node.v[:k]
        left = self.probe(U, left_idx, rng) if not np.any(v_left) else \
            Node(left_idx, v_left, self.residual(U, left_idx, v_left), self.tolerance())
        right = Node(right_idx, node.v[k:], node.r - left.r, node.tol + left.tol)
        if not np.any(right.v) or (not right.flagged and np.any(right.tol > FAST_MAX_ACCUMULATED * self.tolerance())):
            right = self.probe(U, right_idx, rng)
        return left, right


def _bisect(dd: Directional, U, node: Node, rng):
    """Single flagged entries, and the blocks left open (too many, or the budget spent)."""
    leaves, stack = [], [node]
    while stack:
        if len(stack) > FAST_MAX_LEAVES or dd.exhausted:
            return leaves, [b.idx for b in stack]
        cur = stack.pop()
        if len(cur.idx) == 1:
            leaves.append(int(cur.idx[0]))
            continue
        left, right = dd.split(U, cur, len(cur.idx) // 2, rng)
        stack += [b for b in (right, left) if b.flagged]
    return leaves, []


def run_fast(case, U, bb, rng, N_batch):
    """Findings and statistics of fast mode over every differentiated input."""
    n = bb.theta0.size
    full = 4 * n + 1
    dd = Directional(bb, full)
    findings, stats_inputs = [], []
    calibrated = False
    for s in case.inputs.slots:
        idx = np.arange(s.start, s.stop)
        flags = [dd.probe(U, idx, rng) for _ in range(FAST_DIRECTIONS)]
        if not calibrated:
            flags = [dd.calibrate(U, f) for f in flags]
            calibrated = True
        tol = float(max(np.max(f.tol) for f in flags))
        detect = math.sqrt(2.0 / math.pi) * tol * math.sqrt(idx.size) / FAST_REPORT_MISS ** (1.0 / FAST_DIRECTIONS)
        flagged = any(f.flagged for f in flags)
        stats_inputs.append({"input": s.name, "position": s.position, "tolerance": tol,
                             "detectable_error": detect, "flagged": flagged})
        if not flagged:
            continue
        c = _fast_factor(dd, U, flags, rng)
        basis = {"blame_basis": "finite differences along random directions (fast mode)"}
        if c is not None:
            label = factor_name(c)
            if N_batch and N_batch > 1 and is_(c, float(N_batch)):
                label = f"missing 1/N? (factor = N = {N_batch}, the batch size; not confirmed in fast mode)"
            kind = "sign_flip" if is_(c, -1.0) else "constant_factor"
            findings.append(Finding(
                kind, s.name, s.position,
                f"the gradient of {s.label} is {c:.6g} times the true one along every random direction tried"
                + (f" ({label})" if label else "") + ": the whole input is scaled, not single entries.",
                f"compared U.v with the directional derivative along {FAST_DIRECTIONS + 1} random directions "
                f"masked to {s.name}: their ratio is the same each time", cause=label or f"factor {c:.6g}",
                extra={"factor": c, **basis}))
            continue
        top = max(flags, key=lambda f: float(np.max(np.abs(f.r) / np.maximum(f.tol, _TINY))))
        leaves, open_blocks = _bisect(dd, U, top, rng)
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
            sentence = (f"many entries of {s.label}'s gradient are wrong (the search stopped with "
                        f"{len(open_blocks)} block(s) open{' -- its evaluation budget spent' if dd.exhausted else ''}); "
                        "run mode='full' on smaller inputs for a diagnosis.")
        elif confirmed:
            where = ", ".join(f"{s.name}{list(s.index(i - s.start))}" for i, _, _ in confirmed[:MAX_LISTED])
            sentence = (f"{len(confirmed)} wrong entr{'y' if len(confirmed) == 1 else 'ies'} in the gradient of "
                        f"{s.label}: {where}. Each differs from its finite-difference derivative by far more than "
                        "the error estimate; the rest of the input passed the random-direction checks.")
        else:
            sentence = (f"the gradient of {s.label} fails the random-direction checks, but bisection could not "
                        "pin single entries down (many small errors, or the budget ran out).")
        findings.append(Finding(
            "entries", s.name, s.position, sentence,
            f"random directions masked to {s.name}, then bisection over the flagged block with masked directions; "
            "each entry confirmed by a central difference with its own error estimate",
            entries=[s.index(i) for i in local[:MAX_ENTRIES]], groups=groups_of(mask, s.shape) if 0 < mask.sum() < s.size else [],
            values=values, error=max((v["error"] for v in values), default=None),
            cause="many entries" if open_blocks else "individual entries",
            extra={"n_entries": len(local), **basis}))
    stats = {"evaluations": dd.used, "full_evaluations": full, "directions_per_input": FAST_DIRECTIONS,
             "step": dd.h, "miss_probability": FAST_REPORT_MISS, "inputs": stats_inputs,
             "miss_probability_rule": "a single entry off by e is missed by one unit random direction over d "
                                      "entries with probability <= sqrt(2/pi) * tolerance * sqrt(d) / e"}
    return findings, stats


def _fast_factor(dd: Directional, U, flags, rng):
    """Is the input's gradient c times the truth? Then U.v / D_v is the same along every
    direction; a third direction confirms what two suggest."""
    def d_of(node):
        return U[:, node.idx] @ node.v - node.r

    def ratio_fits(c, node):
        return bool(np.all(np.abs(U[:, node.idx] @ node.v - c * d_of(node)) <= (1.0 + abs(c)) * node.tol))

    first = flags[0]
    d1 = d_of(first)
    k = int(np.argmax(np.abs(d1) / np.maximum(first.tol, _TINY)))
    if abs(d1[k]) <= first.tol[k]:
        return None
    c = float((U[:, first.idx] @ first.v)[k] / d1[k])
    if is_(c, 1.0) or not all(ratio_fits(c, f) for f in flags):
        return None
    extra = dd.probe(U, first.idx, rng)
    return c if ratio_fits(c, extra) else None
