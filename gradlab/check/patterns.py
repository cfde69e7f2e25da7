"""Why an input's gradient is wrong (any function, any layer): experiments against a reference.

For each input whose gradient is blamed on you, in order:

* **zero** -- your gradient is all zeros and the true one is not;
* **a constant factor** -- yours is ``c`` times the truth (least squares fit good to
  FIT_RTOL). ``c = -1`` is a sign flip; ``c = N``, the batch size, is a missing ``1/N`` --
  and that is *confirmed* by rerunning on the first examples of the batch only, where the
  factor must follow the smaller batch size;
* **a transpose** -- a matrix's gradient read with the transposed shape is the truth;
* **part of the batch** -- the wrong entries of a batch input are exactly the examples from
  ``k`` on; for a weight, yours is the true gradient of the first ``k`` examples alone
  (layers: the upstream gradient masked to those rows; functions: the first ``k`` rows of
  every batch input, up to a fitted factor);
* otherwise the wrong **entries**, grouped into whole rows, columns or channels when they
  form them.
"""

from __future__ import annotations

import numpy as np

from gradlab._judge import factor, fits, is_ratio
from gradlab.check.findings import InputFinding, factor_name, groups_of
from gradlab.check.report import ranges

__all__ = ["Diagnoser", "MAX_LISTED", "MAX_ENTRIES", "MAX_BATCH_EXPERIMENTS"]

#: Entries listed with both values in a finding; entries kept as multi-indices.
MAX_LISTED = 5
MAX_ENTRIES = 1000

#: The batch experiments for a weight's gradient try at most this many sub-batch sizes k.
MAX_BATCH_EXPERIMENTS = 3


class Diagnoser:
    """Explains the wrong inputs of one case against a reference.

    ``reference(case, slot) -> rows`` recomputes the reference for one input at another
    case (a sub-batch, a masked dout): jax where it traces, else finite differences.
    """

    def __init__(self, case, U, ref, ref_name: str, floor, reference, notes: list):
        self.case, self.U, self.R, self.ref_name = case, U, ref, ref_name
        self.floor = floor
        self.reference = reference
        self.notes = notes
        self.N = case.batch_size()

    # -- helpers -----------------------------------------------------------------------
    def _finding(self, kind, s, bad, sentence, experiment, cause=None, blame="user", **extra) -> InputFinding:
        u, r = self.U[:, s.start:s.stop], self.R[:, s.start:s.stop]
        per_entry = bad.any(axis=0)
        flat = np.flatnonzero(per_entry)
        entries = [s.index(int(i)) for i in flat[:MAX_ENTRIES]]
        values = []
        for i in flat[:MAX_LISTED]:
            k = int(np.flatnonzero(bad[:, i])[0])
            val = {"entry": s.index(int(i)), "yours": float(u[k, i]) + 0.0, "expected": float(r[k, i]) + 0.0,
                   "error": float(abs(u[k, i] - r[k, i]))}
            if self.case.K > 1:
                val["dout"] = k
            values.append(val)
        err = np.abs(u - r)[bad] if bad.any() else np.zeros(0)
        rel = err / np.maximum(np.maximum(np.abs(u[bad]), np.abs(r[bad])), np.finfo(float).tiny) if err.size else err
        groups = groups_of(per_entry, s.shape) if 0 < flat.size < s.size else []
        extra = {"n_entries": int(flat.size), **extra}
        return InputFinding(kind, s.name, s.position, sentence, experiment, entries, groups, values,
                            float(err.max()) if err.size else None, float(rel.max()) if rel.size else None,
                            blame, cause, extra)

    # -- the experiments ---------------------------------------------------------------
    def slot(self, s, bad, other_findings) -> InputFinding:
        """The finding for input ``s`` whose entries ``bad`` (K, size) are wrong."""
        u, r = self.U[:, s.start:s.stop], self.R[:, s.start:s.stop]
        g = f"the gradient of {s.label}"
        fl = self.floor[:, s.start:s.stop]
        if np.all(u == 0.0) and not np.all(np.abs(r) <= fl):
            return self._finding("zero_gradient", s, bad,
                                 f"{g} is all zeros; the true gradient is not. It is never written (initialised "
                                 "with zeros_like and left), or a mask or a factor that should be 1 is 0.",
                                 f"compared your gradient with {self.ref_name}", cause="all zero")
        c = factor(u, r)
        if c is not None and not is_ratio(c, 1.0):
            return self._factor(s, bad, c, g)
        if len(s.shape) == 2 and s.size > 1:
            rows, cols = s.shape
            if fits(np.stack([x.reshape(cols, rows).T.ravel() for x in u]), r):
                return self._finding(
                    "transposed", s, bad,
                    f"{g} has the right numbers in the wrong places: read as a {cols}x{rows} matrix and "
                    f"transposed, it is exactly the true {rows}x{cols} gradient. You formed the product in the "
                    "other order (dout.T @ x instead of x.T @ dout), or reshaped a transpose.",
                    "read your gradient with the transposed shape and compared it with "
                    f"{self.ref_name}", cause="transposed")
        partial = self._partial_batch(s, bad, u, r, g, other_findings)
        if partial is not None:
            return partial
        per_entry = bad.any(axis=0)
        n_bad = int(per_entry.sum())
        groups = groups_of(per_entry, s.shape) if n_bad < s.size else []
        where = ("every entry" if n_bad == s.size else
                 "; ".join(f"{gr['name']}s {ranges(gr['indices'])}" for gr in groups) if groups else
                 f"{n_bad} of its {s.size} entries")
        return self._finding("entries", s, bad,
                             f"{g} is wrong in {where}, and no simple pattern (a factor, a sign, a transpose, "
                             "zeros, part of the batch) explains it.",
                             f"compared your gradient with {self.ref_name} entry by entry and tried each pattern",
                             cause=None)

    def _factor(self, s, bad, c, g) -> InputFinding:
        N = self.N
        exp = f"fitted your gradient as a constant times the gradient from {self.ref_name} (least squares)"
        label = factor_name(c, 1)
        extra = {"factor": c}
        batch = None
        if N is not None and N > 1:
            k = N - 1 if N > 2 else 1
            for target, text, expect in ((N, "missing 1/N", k), (1.0 / N, "divided by N twice", 1.0 / k),
                                         (-N, "sign flipped and missing 1/N", -k)):
                if is_ratio(c, target):
                    batch, expected = text, expect
        if batch is not None:
            confirmed, c2 = self._batch_factor(s, k, expected)
            extra.update(batch_size=N, confirmed=confirmed)
            if confirmed:
                label = f"{batch} (N = {N}, the batch size)"
                exp += (f"; reran on the first {k} example(s) only: the factor became {c2:.6g}, following the "
                        "batch size")
            elif c2 is not None:
                exp += f"; on the first {k} example(s) the factor is {c2:.6g}: it does not follow the batch size"
                batch = None
            else:
                label = f"{batch}? (factor {c:.6g} = batch size N = {N}; the experiment on fewer examples failed)"
        kind = "sign_flip" if is_ratio(c, -1.0) else "constant_factor"
        sentence = f"every entry of {g} is {c:.6g} times the true value" + (f" ({label})" if label else "") + "."
        if batch == "missing 1/N" and extra.get("confirmed"):
            sentence += " Divide by the batch size N, as the forward pass (the mean) does."
        elif kind == "sign_flip":
            sentence += " You return the gradient of minus the function: check the sign of each term."
        return self._finding(kind, s, bad, sentence, exp, cause=label or f"factor {c:.6g}", **extra)

    def _batch_factor(self, s, k, expected):
        """(confirmed, factor) on the first k examples: is the factor there ``expected`` (it
        follows the batch size)?"""
        N = self.N
        try:
            sub = self.case.sub(k, N)
            U2, _, _ = sub.first()
            R2 = self.reference(sub, s.position)
        except Exception as exc:  # the user's code may fail on a smaller batch; the experiment is skipped
            self.notes.append(f"the batch-size experiment on {k} example(s) failed: {exc}")
            return False, None
        if U2 is None or R2 is None:
            return False, None
        s2 = sub.inputs.slots_by_position[s.position]
        c2 = factor(U2[:, s2.start:s2.stop], R2)
        if c2 is None:
            return False, None
        return is_ratio(c2, expected), c2

    def _partial_batch(self, s, bad, u, r, g, other_findings):
        N = self.N
        if N is None or N < 2:
            return None
        if s.shape and s.shape[0] == N:
            rows_bad = bad.any(axis=0).reshape(N, -1).any(axis=1)
            first = int(np.argmax(rows_bad))
            if rows_bad.any() and first >= 1 and bool(np.all(rows_bad[first:])):
                zero = bool(np.all(u.reshape(u.shape[0], N, -1)[:, first:] == 0))
                return self._finding(
                    "partial_batch", s, bad,
                    f"{g} is right for the first {first} example(s) of the batch (rows 0-{first - 1} along axis 0) "
                    f"and wrong for examples {first}-{N - 1}" + (" (they are zero)" if zero else "") + ": a loop "
                    "that stops early, or an index range that leaves the last examples out.",
                    f"compared your gradient with {self.ref_name} example by example (axis 0 is the batch of "
                    f"N = {N})", cause=f"right for examples 0-{first - 1} only", k=first)
        # A weight (or an input whose length equals N by chance): is yours the true gradient
        # of the first k examples alone?
        hinted = [f.extra["k"] for f in other_findings if f.kind == "partial_batch" and "k" in f.extra]
        ks = list(dict.fromkeys(hinted + [N - 1, 1]))
        ks = [k for k in ks if 1 <= k < N][:MAX_BATCH_EXPERIMENTS]
        for k in ks:
            try:
                variant = self.case.masked(k, N)
                how = (f"the true gradient with dout's rows {k}-{N - 1} set to zero" if variant is not None else
                       f"the true gradient over the first {k} examples (every batch input cut to {k} rows)")
                if variant is None:
                    variant = self.case.sub(k, N)
                R2 = self.reference(variant, s.position)
            except Exception as exc:
                self.notes.append(f"the part-of-the-batch experiment with k = {k} failed: {exc}")
                continue
            if R2 is None or R2.shape != u.shape:
                continue
            c = factor(u, R2)
            if c is None or is_ratio(c, 0.0):
                continue
            scaled = "" if is_ratio(c, 1.0) else f" times {c:.6g}"
            return self._finding(
                "partial_batch", s, bad,
                f"{g} is{scaled} the gradient of the first {k} example(s) alone: examples {k}-{N - 1} of the batch "
                f"(N = {N}) are left out -- a loop that stops early, or a slice that drops them.",
                f"compared your gradient with {how}", cause=f"only examples 0-{k - 1} counted", k=k, factor=c)
        return None
