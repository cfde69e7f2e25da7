"""Agreement rules between two gradients of the K scalar functions, input by input.

The rules are the network check's (:mod:`gradlab._judge`): two *exact* gradients agree
when ``||a - b|| / ||a + b|| <= EXACT_NORM_RATIO`` or every entry lies within the
round-off floor; a *numeric* gradient agrees with another when every entry lies within
``NUMERIC_SAFETY`` times its error estimate plus the other side's round-off
(:func:`gradlab._judge.numeric_bound`). They are applied to each differentiated input
separately, so that a finding can say which input is wrong, and over all K upstream
gradients at once.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab._judge import (EXACT_NORM_RATIO, NUMERIC_ROUNDOFF, NUMERIC_SAFETY, TINY, entry_tolerance, norm_ratio,
                            numeric_bound)
from gradlab.check.findings import MAX_LISTED

__all__ = ["Judge", "Pair", "EXACT_CRITERION", "NUMERIC_CRITERION"]

EXACT_CRITERION = (f"exact pairs: ||a-b||/||a+b|| <= {EXACT_NORM_RATIO:g} per input, or every entry within its "
                   "round-off floor")
NUMERIC_CRITERION = (f"numeric pairs: every entry within {NUMERIC_SAFETY:g}x the numeric error estimate + the "
                     f"other side's round-off ({NUMERIC_ROUNDOFF:g} x max|g|, or the floor)")


@dataclasses.dataclass
class Pair:
    """The verdict on one pair of gradients."""

    a: str
    b: str
    exact: bool
    ok: bool
    value: float
    inputs: dict  # name -> {"ok", "value"}
    bad: np.ndarray  # (K, n) entries that differ

    def to_dict(self) -> dict:
        return {"ok": self.ok, "measure": "max over inputs ||a-b||/||a+b||" if self.exact else "max |a-b| / bound",
                "value": self.value, "criterion": EXACT_CRITERION if self.exact else NUMERIC_CRITERION,
                "inputs": self.inputs}


class Judge:
    """The agreement rules over the slots of one set of inputs, with a per-entry floor (K, n)."""

    def __init__(self, slots, floor):
        self.slots = slots
        self.floor = floor

    def exact(self, a_name, b_name, a, b, accept=None) -> Pair:
        """Two exact gradients; ``accept`` (K, n) marks entries taken as agreeing (a kink's
        valid one-sided value)."""
        if accept is not None:
            a = np.where(accept, b, a)
        diff = np.abs(a - b)
        bad = np.zeros(a.shape, dtype=bool)
        per, worst = {}, 0.0
        for s in self.slots:
            sa, sb, sd, fl = a[:, s.start:s.stop], b[:, s.start:s.stop], diff[:, s.start:s.stop], \
                self.floor[:, s.start:s.stop]
            ratio = norm_ratio(sa, sb)
            ok = ratio <= EXACT_NORM_RATIO or bool(np.all(sd <= fl))
            per[s.name] = {"ok": ok, "value": ratio}
            worst = max(worst, ratio)
            if not ok:
                tol = np.maximum(entry_tolerance(sa, sb), fl)
                mark = sd > tol
                if not mark.any():  # the norm fails though no entry stands out: the largest
                    flat = np.where(sd > fl, sd, -1.0).ravel()
                    top = np.argsort(-flat)[:MAX_LISTED]
                    mark = np.zeros(sd.size, dtype=bool)
                    mark[top[flat[top] > 0]] = True
                    mark = mark.reshape(sd.shape)
                bad[:, s.start:s.stop] = mark
        return Pair(a_name, b_name, True, all(p["ok"] for p in per.values()), worst, per, bad)

    def bound(self, err, a, b):
        """Per-entry tolerance when one side (or both) is numeric: the network's rule
        (:func:`gradlab._judge.numeric_bound`), input by input."""
        out = np.empty(a.shape)
        for s in self.slots:
            sl = slice(s.start, s.stop)
            out[:, sl] = numeric_bound(err[:, sl], a[:, sl], b[:, sl], self.floor[:, sl])
        return out

    def numeric(self, a_name, b_name, a, b, err, exclude=None) -> Pair:
        """A gradient against a numeric one with error estimate ``err``; entries in
        ``exclude`` (n,) -- kinks -- are not judged here."""
        bound = self.bound(err, a, b)
        with np.errstate(invalid="ignore"):
            diff = np.abs(a - b)
            bad = ~(diff <= bound)  # NaN counts as a difference
        if exclude is not None:
            bad &= ~exclude[None, :]
        excess = np.where(bad | (diff <= bound), diff / np.maximum(bound, TINY), 0.0)
        if exclude is not None:
            excess = np.where(exclude[None, :], 0.0, excess)
        per = {}
        for s in self.slots:
            sl = slice(s.start, s.stop)
            per[s.name] = {"ok": not bad[:, sl].any(),
                           "value": float(np.nanmax(excess[:, sl], initial=0.0)) if s.size else 0.0}
        value = max((p["value"] for p in per.values()), default=0.0)
        return Pair(a_name, b_name, False, not bad.any(), value, per, bad)
