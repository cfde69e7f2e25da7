"""The checker's report: what was compared, what was found, and the verdict."""

from __future__ import annotations

import textwrap

from gradlab._report import Report, fmt

__all__ = ["CheckReport", "FAILING_BLAMES", "wrap", "ranges"]

#: Findings with these blames fail the check: the user's function, the cost, or a function
#: that is right only in another convention than the one asked for (the option is named).
FAILING_BLAMES = ("user", "cost", "convention")


class CheckReport(Report):
    """The result of :func:`check`.

    Attributes
    ----------
    ok : bool
        True when nothing is blamed on the user's function or the cost (a numerical
        problem of finite differences alone does not fail the check).
    findings : list[Finding]
    info : dict
        The case (sizes, m, lam, seed, weight_scale, signature, mode) and the comparisons.
    """

    def __init__(self, info, findings, comparisons, fast=None, reproducer=None):
        self.info = dict(info)
        self.findings = list(findings)
        self.comparisons = dict(comparisons)
        self.fast = fast
        self.reproducer = reproducer
        self.ok = not any(f.blame in FAILING_BLAMES for f in self.findings)

    @property
    def kinds(self) -> list[str]:
        """The kinds of the findings, in order."""
        return [f.kind for f in self.findings]

    def to_dict(self) -> dict:
        d = {"ok": self.ok, **self.info, "comparisons": self.comparisons,
             "findings": [f.to_dict() for f in self.findings]}
        if self.fast is not None:
            d["fast"] = self.fast
        if self.reproducer is not None:
            d["reproducer"] = self.reproducer
        return d

    def _fast_lines(self) -> list[str]:
        """What fast mode did, what it spent, and what it could miss, with the numbers."""
        f = self.fast
        spent = (f"{f['cost_evaluations']} cost evaluations (a full central-difference check needs "
                 f"{f['full_check_evaluations']})")
        w = f.get("witness")
        if w is None:
            lines = [f"  fast mode: {f['directions_per_layer']} random direction(s) per layer, {spent}"
                     + ("; bisection stopped there, at the budget of a full check" if f.get("stopped_bisecting") else "")]
            lines += [f"    could miss in Theta{lay['layer']}: a single wrong entry off by less than "
                      f"{fmt(lay['detectable_error'])} (one off by more is missed with probability < "
                      f"{f['miss_probability']:g})" for lay in f["layers"]]
            return lines
        lines = [f"  fast mode: all {f['exact_entries']} entries compared with {w} (exact); {w} confirmed by "
                 f"finite differences along {f['directions_per_layer']} random direction(s) per layer; {spent}"]
        if not f["layers"]:
            lines.append(f"    could miss: nothing {w} sees; {w} itself was not confirmed (no 'numeric' in against)")
        lines += [f"    could miss in Theta{lay['layer']}: nothing {w} sees; an error of {w}'s own (a cost it does "
                  f"not differentiate as written) smaller than {fmt(lay['detectable_error'])} in one entry (one "
                  f"larger is missed with probability < {f['miss_probability']:g})" for lay in f["layers"]]
        return lines

    def _text(self) -> str:
        i = self.info
        conv = "".join(f", {k}={i[k]}" for k, default in (("labels", 0), ("unroll", "C")) if i.get(k, default) != default)
        point = ", ".join(f"{k} {i[k]}" for k in ("data", "weights") if i.get(k, "random") != "random")
        subject = (f"{i['call']} (a call template{conv})" if "call" in i else
                   f"{i['function']} (signature {i['signature']}{conv})")
        lines = [
            f"gradlab check: {subject}, sizes "
            f"{','.join(map(str, i['sizes']))}, {i['n_params']} parameters, m={i['examples']}, "
            f"lambda={i['lam']:g}, seed={i['seed']}, mode={i['mode']}" + (f"; at your point: {point}" if point else "")
        ]
        for name, c in self.comparisons.items():
            verdict = "agree" if c["ok"] else "DIFFER"
            measure = "" if c["value"] is None else f"{c['measure']} {fmt(c['value'])}; "
            lines.append(f"  {name:<18} {verdict:<7} ({measure}criterion {c['criterion']})")
        if self.fast is not None:
            lines += self._fast_lines()
        if "blame" in i:
            lines.append(f"  blame for the values: {i['blame']}")
        lines.append("")
        if not self.findings:
            lines.append("no problems found: the gradient agrees with every witness")
        for n, f in enumerate(self.findings, start=1):
            where = "" if f.layer is None else f" Theta{f.layer}"
            lines.append(f"{n}. [{f.kind}]{where}" + (f" ({f.cause})" if f.cause else "")
                         + ("" if f.blame == "user" else f"  -- blame: {f.blame}"))
            lines.append(wrap(f.sentence, "   "))
            if f.rows or f.columns:
                lines.append(f"   rows (units) {ranges(f.rows)}; columns (inputs, 0 = bias) {ranges(f.columns)}")
            for val in f.values:
                loc = ", ".join(f"{k}={val[k]}" for k in ("row", "column", "index", "entry") if k in val)
                nums = ", ".join(f"{k}={val[k]:.6g}" for k in ("yours", "expected", "before", "after", "first", "second") if k in val)
                lines.append(f"     {loc}: {nums}")
            lines.append(wrap("experiment: " + f.experiment, "   "))
        if self.reproducer is not None:
            r = self.reproducer
            lines += ["", f"smallest failing case found by shrinking ({r['tried']} cases tried):",
                      f"  sizes={r['sizes']}, lam={r['lam']!r}, m={r['examples']}, seed={r['seed']}, "
                      f"weight_scale={r['weight_scale']!r}",
                      f"  command: {r['command']}", "  pytest:"]
            lines += ["    " + line for line in r["pytest"].splitlines()]
        lines.append("")
        lines.append("verdict: " + ("PASS" if self.ok else "FAIL") + (
            "" if self.ok else f" ({sum(f.blame in FAILING_BLAMES for f in self.findings)} finding(s))"))
        return "\n".join(lines)



def wrap(text: str, indent: str, width: int = 96) -> str:
    """``text`` filled to ``width`` columns, every line indented by ``indent``."""
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def ranges(items) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2, 5``."""
    items = sorted(set(int(i) for i in items))
    if not items:
        return "-"
    out, start, prev = [], items[0], items[0]
    for i in items[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(out)
