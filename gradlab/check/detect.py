"""Conventions detected when unstated: a failing function tried in the other conventions.

A function written for Octave's conventions (labels 1..K, weights unrolled column by
column) disagrees with gradlab's everywhere when called in gradlab's, and looks like a
bug in the cost or in every layer. Before any diagnosis, the checker calls it once more in
each other convention; when one makes it agree with the exact reference (to round-off:
not a thing that happens by chance), the finding is the convention and the option to
pass, and the check goes on in that convention.
"""

from __future__ import annotations

from gradlab._errors import UserCodeError
from gradlab._judge import exact_agree
from gradlab.check.calls import Caller
from gradlab.check.conventions import Convention
from gradlab.check.findings import Finding

__all__ = ["alternatives", "detect_convention"]


def alternatives(caller: Caller) -> list[Convention]:
    """The conventions worth trying for this call: another unrolling when some matrix has
    more than one row (else both orders are the same), the other first label when the
    function is given labels; one change before two."""
    conv, net = caller.convention, caller.network
    unrolls = [conv.unroll] + ([u for u in ("C", "F") if u != conv.unroll]
                               if any(r > 1 for r, _ in net.shapes) else [])
    labels = [conv.labels] + ([1 - conv.labels] if {"y", "y_col"} & set(caller.names) else [])
    out = [Convention(lab, unr) for unr in unrolls for lab in labels]
    out = [c for c in out if c != conv]
    return sorted(out, key=lambda c: (c.unroll != conv.unroll) + (c.labels != conv.labels))


def detect_convention(caller: Caller, problem, params, R, floor, ref_name: str):
    """``(caller, gradient, finding)`` in the first other convention under which the
    function agrees with the exact reference ``R``; None when none does."""
    for conv in alternatives(caller):
        other = caller.with_convention(conv)
        try:
            grad, bad = other.read(other(problem, params).raw)
        except UserCodeError:
            continue  # it cannot even run that way
        if grad is None or not exact_agree(grad, R, floor):
            continue
        changes = caller.convention.differs(conv)
        said = " and ".join(changes)
        sentence = (f"{caller.name} agrees with {ref_name} (to round-off) when called with {said}: it follows "
                    "another convention, which is not a bug of its values. Pass "
                    f"{_cli(caller.convention, conv)} on the command line ({conv.options(cli=False)} in Python) to "
                    "check it in that convention; the rest of this report does so.")
        finding = Finding("convention", None, sentence,
                          f"called {caller.name} again with {said}, and compared the result with {ref_name}",
                          blame="convention", cause=", ".join(_short(caller.convention, conv)),
                          extra={"detected": {"labels": conv.labels, "unroll": conv.unroll},
                                 "options": _cli(caller.convention, conv),
                                 "python": conv.options(cli=False)})
        return other, grad, finding
    return None


def _short(was: Convention, now: Convention) -> list[str]:
    out = []
    if now.labels != was.labels:
        out.append(f"labels from {now.labels}")
    if now.unroll != was.unroll:
        out.append(f"unroll {now.unroll}")
    return out


def _cli(was: Convention, now: Convention) -> str:
    parts = []
    if now.labels != was.labels:
        parts.append(f"--labels {now.labels}")
    if now.unroll != was.unroll:
        parts.append(f"--unroll {now.unroll}")
    return " ".join(parts)
