"""The checker's report: what was compared, what was found, and the verdict."""

from __future__ import annotations

import textwrap

from gradlab._report import Report, counted, fmt, printable
from gradlab.check.findings import INPUT_FAILING

__all__ = ["CheckReport", "GradientReport", "FAILING_BLAMES", "output_block", "wrap", "ranges"]

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
    output : str or None
        What the user's code printed (stdout and stderr) when it ran in a process of its
        own; None when it ran in the caller's process (its prints went where the caller's go).
    """

    def __init__(self, info, findings, comparisons, fast=None, reproducer=None, output=None):
        self.output = output
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
        if self.output is not None:
            d["output"] = self.output
        return d

    def _fast_lines(self) -> list[str]:
        """What fast mode did, what it spent, and what it could miss, with the numbers."""
        f = self.fast
        spent = (f"{f['cost_evaluations']} cost evaluations (a full central-difference check needs "
                 f"{f['full_check_evaluations']})")
        w = f.get("witness")
        if w is None:
            lines = [f"  fast mode: {counted(f['directions_per_layer'], 'random direction')} per layer, {spent}"
                     + ("; bisection stopped there, at the budget of a full check" if f.get("stopped_bisecting") else "")]
            lines += [f"    could miss in Theta{lay['layer']}: a single wrong entry off by less than "
                      f"{fmt(lay['detectable_error'])} (one off by more is missed with probability < "
                      f"{f['miss_probability']:g})" for lay in f["layers"]]
            return lines
        lines = [f"  fast mode: all {f['exact_entries']} entries compared with {w} (exact); {w} confirmed by "
                 f"finite differences along {counted(f['directions_per_layer'], 'random direction')} per layer; {spent}"]
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
            lines.append(f"no problems found: the {i.get('what', 'gradient')} agrees with every witness")
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
        lines += output_block(self.output, self.info["function"])
        lines.append("")
        lines.append("verdict: " + ("PASS" if self.ok else "FAIL") + (
            "" if self.ok else f" ({counted(sum(f.blame in FAILING_BLAMES for f in self.findings), 'finding')})"))
        return "\n".join(lines)



def output_block(output: str | None, function: str) -> list[str]:
    """The lines that show what the user's code printed: a heading, then each line behind
    a bar, so that nothing it printed can pass for a line of gradlab's report."""
    if not output:
        return []
    lines = output.rstrip("\n").split("\n")
    return ["", f"output of {printable(function)}'s code ({len(lines)} line{'s' if len(lines) != 1 else ''}, "
            "stdout and stderr):"] + ["  | " + printable(line.expandtabs()) for line in lines]


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


class GradientReport(Report):
    """The result of :func:`gradlab.check_function` or :func:`gradlab.check_layer`.

    Attributes
    ----------
    ok : bool
        True when nothing is blamed on your gradient or on the function itself.
    findings : list[InputFinding]
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
    output : str or None
        What the user's code printed when it ran in a process of its own (else None).
    """

    def __init__(self, info, findings, comparisons, notes=(), kinks=(), fast=None, output=None):
        self.output = output
        self.info = dict(info)
        self.findings = list(findings)
        self.comparisons = dict(comparisons)
        self.notes = list(notes)
        self.kinks = list(kinks)
        self.fast = fast
        self.ok = not any(f.blame in INPUT_FAILING for f in self.findings)

    @property
    def kinds(self) -> list[str]:
        """The kinds of the findings, in order."""
        return [f.kind for f in self.findings]

    def findings_for(self, name: str) -> list:
        """The findings about the input ``name``."""
        return [f for f in self.findings if f.input == name]

    def to_dict(self) -> dict:
        d = {"ok": self.ok, **self.info, "notes": self.notes, "comparisons": self.comparisons,
             "kinks": self.kinks, "findings": [f.to_dict() for f in self.findings]}
        if self.fast is not None:
            d["fast"] = self.fast
        if self.output is not None:
            d["output"] = self.output
        return d

    def _text(self) -> str:
        i = self.info
        lines = [f"gradlab {i['check']}: {i['function']} -- {i['inputs_text']}"]
        if i.get("douts"):
            lines.append(f"  {counted(i['douts'], 'upstream gradient')} dout of shape {i['out_shape']}"
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
            lines.append(wrap("criterion: " + crit, "    "))
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
            lines.append(wrap(f.sentence, "   "))
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
            lines.append(wrap("experiment: " + f.experiment, "   "))
        lines += output_block(self.output, str(i.get("function", "the function")))
        lines.append("")
        failing = sum(f.blame in INPUT_FAILING for f in self.findings)
        lines.append("verdict: " + ("PASS" if self.ok else f"FAIL ({counted(failing, 'finding')})"))
        return "\n".join(lines)


_KINKS_SHOWN = 8
_ENTRIES_SHOWN = 8


def _show(x):
    return str(list(x)) if isinstance(x, (tuple, list)) else str(x)


def _group_text(g) -> str:
    return f"{g['name']}s {ranges(g['indices'])} of axis {g['axis']} (every other index)"
