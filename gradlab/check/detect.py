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
from gradlab._judge import exact_agree, roundoff_floor
from gradlab.check.calls import Caller
from gradlab.check.conventions import Convention
from gradlab.check.findings import Finding, layer_slices
from gradlab.network import Problem

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


def _try(caller, conv, problem, params):
    """The gradient in convention ``conv`` (None when the function fails that way)."""
    other = caller.with_convention(conv)
    try:
        grad, _ = other.read(other(problem, params).raw)
    except UserCodeError:
        return other, None  # it cannot even run that way
    return other, grad


def detect_convention(caller: Caller, problem, params, R, floor, ref_name: str, ref):
    """``(caller, gradient, finding)`` in the other convention the function follows; None
    when there is no evidence for one.

    Two experiments, the first that speaks decides: (1) the whole gradient agrees with the
    exact reference ``R`` in another convention; (2) with one example at lambda = 0 --
    where a missing 1/m and any regularisation slip vanish -- the output layer's gradient,
    which depends only on the forward pass and the labels, is exactly right in another
    convention and not in the given one (a bug in a hidden layer does not touch it).
    """
    for conv in alternatives(caller):
        other, grad = _try(caller, conv, problem, params)
        if grad is not None and exact_agree(grad, R, floor):
            said = " and ".join(caller.convention.differs(conv))
            return other, grad, _finding(
                caller, conv, f"{caller.name} agrees with {ref_name} (to round-off) when called with {said}",
                f"called {caller.name} again with {said}, and compared the result with {ref_name}")
    net = problem.network
    p1 = Problem(net, problem.X[:1], problem.labels[:1] if problem.labels is not None else problem.Y[:1], 0.0)
    out = layer_slices(net)[-1]
    R1, floor1 = ref(p1, params)[out], roundoff_floor(p1, params)[out]
    _, mine = _try(caller, caller.convention, p1, params)
    if mine is None or exact_agree(mine[out], R1, floor1):
        return None  # the output layer is right as given (or cannot be read): no convention to blame
    L = len(net.shapes)
    for conv in alternatives(caller):
        other, grad = _try(caller, conv, p1, params)
        if grad is not None and exact_agree(grad[out], R1, floor1):
            said = " and ".join(caller.convention.differs(conv))
            other, grad = _try(caller, conv, problem, params)
            if grad is None:
                return None
            return other, grad, _finding(
                caller, conv,
                f"with one example at lambda = 0, the output layer's gradient (Theta{L}) of {caller.name} is exactly "
                f"right when it is called with {said}, and wrong as called: it follows that convention",
                f"ran {caller.name} on one example at lambda = 0 (where a missing 1/m and the regularisation "
                f"vanish) in each convention, and compared Theta{L}'s gradient, which only the forward pass and "
                f"the labels make, with {ref_name}'s")
    return None


def _finding(caller, conv, evidence: str, experiment: str) -> Finding:
    sentence = (f"{evidence}, which is not a bug of its values. Pass {_cli(caller.convention, conv)} on the "
                f"command line ({', '.join(_short(caller.convention, conv))} in Python) to check it in that "
                "convention; the rest of this report does so.")
    return Finding("convention", None, sentence, experiment, blame="convention",
                   cause=", ".join(_short(caller.convention, conv)),
                   extra={"detected": {"labels": conv.labels, "unroll": conv.unroll},
                          "options": _cli(caller.convention, conv),
                          "python": ", ".join(_short(caller.convention, conv))})


def _short(was: Convention, now: Convention) -> list[str]:
    """The changed options in Python's words: ``labels=1``, ``unroll='F'``."""
    out = []
    if now.labels != was.labels:
        out.append(f"labels={now.labels}")
    if now.unroll != was.unroll:
        out.append(f"unroll={now.unroll!r}")
    return out


def _cli(was: Convention, now: Convention) -> str:
    parts = []
    if now.labels != was.labels:
        parts.append(f"--labels {now.labels}")
    if now.unroll != was.unroll:
        parts.append(f"--unroll {now.unroll}")
    return " ".join(parts)
