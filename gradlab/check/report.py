"""The checker's report: what was compared, what was found, and the verdict."""

from __future__ import annotations

import textwrap

from gradlab._report import Report, counted, fmt

__all__ = ["CheckReport", "wrap", "ranges"]


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
        self.ok = not any(f.blame in ("user", "cost") for f in self.findings)

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

    def _text(self) -> str:
        i = self.info
        lines = [
            f"gradlab check: {i['function']} (signature {i['signature']}), sizes "
            f"{','.join(map(str, i['sizes']))}, {i['n_params']} parameters, m={i['examples']}, "
            f"lambda={i['lam']:g}, seed={i['seed']}, mode={i['mode']}"
        ]
        for name, c in self.comparisons.items():
            verdict = "agree" if c["ok"] else "DIFFER"
            measure = "" if c["value"] is None else f"{c['measure']} {fmt(c['value'])}; "
            lines.append(f"  {name:<18} {verdict:<7} ({measure}criterion {c['criterion']})")
        if self.fast is not None:
            f = self.fast
            lines.append(
                f"  fast mode: {counted(f['directions_per_layer'], 'random direction')} per layer, "
                f"{f['cost_evaluations']} cost evaluations (a full central-difference check needs "
                f"{f['full_check_evaluations']})"
            )
            for lay in f["layers"]:
                lines.append(
                    f"    Theta{lay['layer']}: a single wrong entry off by more than "
                    f"{fmt(lay['detectable_error'])} is missed with probability < {f['miss_probability']:g}"
                )
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
            "" if self.ok else f" ({counted(sum(f.blame in ('user', 'cost') for f in self.findings), 'finding')})"))
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
