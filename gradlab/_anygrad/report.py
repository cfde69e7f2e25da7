"""Findings and the report of a generic gradient check (the same face as gradlab's reports)."""

from __future__ import annotations

import dataclasses
import textwrap

from gradlab._report import Report, fmt

#: The kinds of finding, with what each means.
KINDS = {
    "bad_output": "the gradient returned is not one finite array per differentiated input, of its shape",
    "input_mutation": "the code wrote into an argument (an input, dout or the cache)",
    "non_determinism": "two calls on identical copies of the arguments returned different results",
    "zero_gradient": "an input's gradient is all zeros where the true gradient is not",
    "constant_factor": "an input's gradient is a constant multiple of the true one (1/N: the batch size)",
    "sign_flip": "an input's gradient is minus the true one",
    "transposed": "an input's gradient holds the true numbers transposed",
    "partial_batch": "the gradient is right only for part of the batch (the first k examples)",
    "entries": "individual entries are wrong, no simpler pattern fits (grouped into rows, columns, "
               "channels where they form one)",
    "kink": "a finite-difference stencil crossed a kink (relu, max, hinge); judged by the one-sided quotients",
    "numeric_problem": "finite differences disagree with witnesses that agree with each other",
    "function_suspect": "two witnesses of the same function disagree with each other: the function itself "
                        "is suspect (not smooth there, or not the function both witnesses see)",
}

#: Blames that fail a check: the user's gradient, or the function itself. "numeric" (a
#: finite-difference problem), "precision" (a float32 result, judged at its precision) and
#: "shape" (an extra length-1 axis) are reported without failing it.
FAILING = ("user", "function")


@dataclasses.dataclass
class Finding:
    """One thing the check found: where (which input, which entries), how much, and why.

    ``input`` and ``position`` name the input (``"dw"``-style findings name the input the
    gradient belongs to, e.g. ``"w"``, position 1); None for findings about the whole call.
    ``entries`` are multi-indices into that input; ``groups`` say when they form whole rows,
    columns or channels (``{"axis": 0, "name": "row", "indices": [3, 4]}``). ``values``
    lists a few entries with your value and the expected one. ``blame`` is ``"user"``,
    ``"function"``, ``"numeric"``, ``"precision"`` or ``"shape"``.
    """

    kind: str
    input: str | None
    position: int | None
    sentence: str
    experiment: str
    entries: list = dataclasses.field(default_factory=list)
    groups: list = dataclasses.field(default_factory=list)
    values: list = dataclasses.field(default_factory=list)
    error: float | None = None
    rel_error: float | None = None
    blame: str = "user"
    cause: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["entries"] = [list(e) for e in self.entries]
        extra = d.pop("extra")
        d.update(extra)
        return d


class GradientReport(Report):
    """The result of :func:`gradlab.check_function` or :func:`gradlab.check_layer`.

    Attributes
    ----------
    ok : bool
        True when nothing is blamed on your gradient or on the function itself.
    findings : list[Finding]
    info : dict
        What was checked: the functions, the inputs (names, positions, shapes), the
        number of upstream gradients, the witnesses and their evaluations.
    comparisons : dict
        Per pair of gradients (``"yours vs jax"``...): ok, the measure and its value, the
        criterion, and the same per input.
    notes : list[str]
        One line per witness that could not be used, saying why (``"jax witness
        unavailable: ..."``).
    kinks : list[dict]
        Entries whose stencil crossed a kink, with the one-sided quotients.
    fast : dict or None
        Fast mode's statistics.
    """

    def __init__(self, info, findings, comparisons, notes=(), kinks=(), fast=None):
        self.info = dict(info)
        self.findings = list(findings)
        self.comparisons = dict(comparisons)
        self.notes = list(notes)
        self.kinks = list(kinks)
        self.fast = fast
        self.ok = not any(f.blame in FAILING for f in self.findings)

    @property
    def kinds(self) -> list[str]:
        """The kinds of the findings, in order."""
        return [f.kind for f in self.findings]

    def findings_for(self, name: str) -> list[Finding]:
        """The findings about the input ``name``."""
        return [f for f in self.findings if f.input == name]

    def to_dict(self) -> dict:
        d = {"ok": self.ok, **self.info, "notes": self.notes, "comparisons": self.comparisons,
             "kinks": self.kinks, "findings": [f.to_dict() for f in self.findings]}
        if self.fast is not None:
            d["fast"] = self.fast
        return d

    def _text(self) -> str:
        i = self.info
        lines = [f"gradlab {i['check']}: {i['function']} -- {i['inputs_text']}"]
        if i.get("douts"):
            lines.append(f"  {i['douts']} upstream gradient(s) dout of shape {i['out_shape']}"
                         + (" (seeded random, seed {})".format(i["seed"]) if i.get("douts_random") else " (given)"))
        for w in i.get("witnesses", []):
            lines.append(f"  witness: {w}")
        for note in self.notes:
            lines.append(f"  {note}")
        criteria = []
        for name, c in self.comparisons.items():
            verdict = "agree" if c["ok"] else "DIFFER"
            measure = "" if c.get("value") is None else f"  ({c['measure']} {fmt(c['value'])})"
            lines.append(f"  {name:<24} {verdict:<7}{measure}")
            if not c["ok"]:
                bad = [k for k, s in c.get("inputs", {}).items() if not s["ok"]]
                if bad:
                    lines.append(f"  {'':<24} differ in: {', '.join(bad)}")
            if c["criterion"] not in criteria:
                criteria.append(c["criterion"])
        for crit in criteria:
            lines.append(_wrap("criterion: " + crit, "    "))
        if self.fast is not None:
            f = self.fast
            lines.append(f"  fast mode: {f['evaluations']} evaluations (a full check needs {f['full_evaluations']})")
            for item in f["inputs"]:
                lines.append(f"    {item['input']}: a single wrong entry off by more than "
                             f"{fmt(item['detectable_error'])} is missed with probability < {f['miss_probability']:g}")
        if self.kinks:
            lines.append(f"  {len(self.kinks)} entr{'y' if len(self.kinks) == 1 else 'ies'} at a kink "
                         "(one-sided quotients; judged by them, not by central differences):")
            for k in self.kinks[:_KINKS_SHOWN]:
                lines.append(f"    {k['input']}{list(k['entry'])}: yours={k['yours']:.8g}, left={k['left']:.8g}, "
                             f"right={k['right']:.8g}" + ("" if k["ok"] else "  <-- neither side"))
            if len(self.kinks) > _KINKS_SHOWN:
                lines.append(f"    ... {len(self.kinks) - _KINKS_SHOWN} more in the JSON report")
        if "blame" in i:
            lines.append(f"  blame for the values: {i['blame']}")
        lines.append("")
        if not self.findings:
            lines.append("no problems found: the gradient agrees with every witness")
        for n, f in enumerate(self.findings, start=1):
            where = "" if f.input is None else f" {f.input} (input {f.position})"
            lines.append(f"{n}. [{f.kind}]{where}" + (f" ({f.cause})" if f.cause else "")
                         + ("" if f.blame == "user" else f"  -- blame: {f.blame}"))
            lines.append(_wrap(f.sentence, "   "))
            if f.groups:
                lines.append("   " + "; ".join(_group_text(g) for g in f.groups))
            elif f.entries:
                total = f.extra.get("n_entries", len(f.entries))
                shown = ", ".join(str(list(e)) for e in f.entries[:_ENTRIES_SHOWN])
                lines.append(f"   entries ({total}): {shown}" + (" ..." if total > _ENTRIES_SHOWN else ""))
            for val in f.values:
                loc = ", ".join(f"{k}={_show(val[k])}" for k in ("entry", "argument", "douts") if k in val)
                nums = ", ".join(f"{k}={x:.6g}" for k, x in val.items()
                                 if isinstance(x, float) and k not in ("error", "numeric_error_estimate"))
                lines.append(f"     {loc}: {nums}")
            lines.append(_wrap("experiment: " + f.experiment, "   "))
        lines.append("")
        failing = sum(f.blame in FAILING for f in self.findings)
        lines.append("verdict: " + ("PASS" if self.ok else f"FAIL ({failing} finding(s))"))
        return "\n".join(lines)


_KINKS_SHOWN = 8
_ENTRIES_SHOWN = 8


def _show(x):
    return str(list(x)) if isinstance(x, (tuple, list)) else str(x)


def _group_text(g) -> str:
    return f"{g['name']}s {ranges(g['indices'])} of axis {g['axis']} (every other index)"


def _wrap(text: str, indent: str, width: int = 96) -> str:
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
