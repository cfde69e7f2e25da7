"""A grader's view: one target checked in its own process, whatever its code does, as one
outcome -- ``pass``, ``fail``, ``error``, ``timeout`` or ``crashed`` -- with what it printed."""

from __future__ import annotations

import dataclasses
import json
import time

from gradlab._errors import GradlabError, UserCodeError, UserCodeStopped
from gradlab._isolation import DEFAULT_TIMEOUT, Worker
from gradlab._report import jsonable, printable
from gradlab.check.core import check
from gradlab.check.findings import INPUT_FAILING
from gradlab.check.isolated import cost_target
from gradlab.check.report import CheckReport, GradientReport

__all__ = ["Outcome", "STATUSES", "grade", "failing", "MAX_NAMED"]

#: What can become of a target: its check passed or failed; it could not be checked because
#: its file, import or call raised or cannot be used (error), its code ran past the time
#: limit (timeout), or its process died (crashed).
STATUSES = ("pass", "fail", "error", "timeout", "crashed")
#: Findings named on a target's one line; the rest are counted.
MAX_NAMED = 3


@dataclasses.dataclass
class Outcome:
    """What became of one target.

    Attributes
    ----------
    target : str
    status : {"pass", "fail", "error", "timeout", "crashed"}
    report : CheckReport or GradientReport or None
        The check's report (pass and fail only; a GradientReport with ``own_cost``).
    error : str or None
        Why it could not be checked (error, timeout, crashed): one line.
    output : str
        What the target's code printed (stdout and stderr).
    seconds : float
        Wall-clock time of the whole target, its process's start included.
    exception : GradlabError or None
        The error itself (error, timeout, crashed).
    """

    target: str
    status: str
    report: CheckReport | None = None
    error: str | None = None
    output: str = ""
    seconds: float = 0.0
    exception: GradlabError | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict:
        """The report's fields (findings empty when there is none), with ``target``,
        ``status``, ``error``, ``output`` and ``seconds``."""
        d = {"target": self.target, "status": self.status, "error": self.error}
        d.update(self.report.to_dict() if self.report is not None else {"ok": self.ok, "findings": []})
        d.update(output=self.output, seconds=round(self.seconds, 3))
        return d

    def to_json(self, indent: int | None = None) -> str:
        """One JSON object: on one line by default (a line of JSON Lines)."""
        return json.dumps(jsonable(self.to_dict()), indent=indent, allow_nan=False)

    def detail(self) -> str:
        """The verdict's reason in one line: the findings blamed, or the error."""
        if self.report is None:
            return printable(self.error or "")
        blamed = failing(self.report)
        named = [f"{f.kind}" + _where(f) + (f" ({f.cause})" if f.cause else "") for f in blamed[:MAX_NAMED]]
        more = f"; and {len(blamed) - MAX_NAMED} more" if len(blamed) > MAX_NAMED else ""
        return printable("; ".join(named) + more)

    def line(self) -> str:
        """``STATUS  TARGET  detail``: the target's verdict on one line."""
        printed = self.output.count("\n") + (not self.output.endswith("\n")) if self.output else 0
        note = f"  [output: {printed} line{'s' if printed != 1 else ''}]" if printed else ""
        detail = self.detail()
        return f"{self.status.upper():<8} {printable(self.target)}" + (f"  {detail}" if detail else "") + note


def failing(report) -> list:
    """The findings that fail ``report`` (a network's CheckReport, or the GradientReport of
    ``own_cost``)."""
    blames = INPUT_FAILING if isinstance(report, GradientReport) else ("user", "cost")
    return [f for f in report.findings if f.blame in blames]


def _where(f) -> str:
    layer, name = getattr(f, "layer", None), getattr(f, "input", None)
    return f" Theta{layer}" if layer is not None else f" {name}" if name is not None else ""


def grade(target: str, run=None, *, cost_fn: str | None = None, timeout: float = DEFAULT_TIMEOUT,
          preload: bool = True, **options) -> Outcome:
    """Check one target in a process of its own; return its outcome, whatever its code does.

    Parameters
    ----------
    target : str
        ``PATH.py:FUNC`` or ``module:FUNC``.
    run : callable, optional
        ``run(fn, cost_fn, worker) -> CheckReport``, called with stand-ins for the target's
        functions and the :class:`~gradlab._isolation.Worker` they run in (for more of the
        user's code to run there, :meth:`~gradlab._isolation.Worker.make`); default
        ``check(fn, cost_fn=cost_fn, **options)``.
    cost_fn : str, optional
        A cost function: a name in the target's file or module, or ``PATH.py:FUNC``.
    timeout : float, default 60
        Seconds the target's code may run in all (its import and every call).
    preload : bool, default True
        Load ``target`` (and ``cost_fn``) in the worker before ``run``; False when ``run``
        loads what it needs itself (a call template over a module: ``fn`` is then None).
    **options
        Passed to :func:`gradlab.check` (sizes, signature, lam, ...).

    Returns
    -------
    Outcome

    Raises
    ------
    GradlabError
        Only for an option gradlab refuses before any of the target's code is called (bad
        sizes, lam, ...): it would be refused for every target alike. The target's own
        problems -- a missing file or function, an import or a call that raises, a hang, a
        crash -- are its outcome's ``error``, ``timeout`` or ``crashed``.
    """
    if run is None:
        def run(fn, cost, worker):
            return check(fn, cost_fn=cost, **options)

    start = time.monotonic()
    with Worker(timeout) as worker:
        report, exc = None, None
        try:
            fn = worker.load(target, "target") if preload else None
            cost = None if cost_fn is None or not preload else worker.load(cost_target(target, cost_fn), "--cost")
        except GradlabError as err:  # the target's file or function, or its import
            exc = err
        else:
            calls = worker.calls
            try:
                report = run(fn, cost, worker)
            except (UserCodeError, UserCodeStopped) as err:
                exc = err
            except GradlabError as err:
                if worker.calls == calls:  # refused before the target's code ran: an option of gradlab's
                    raise
                exc = err
        output = worker.output
    seconds = time.monotonic() - start
    if exc is not None:
        status = exc.status if isinstance(exc, UserCodeStopped) else "error"
        return Outcome(target, status, None, " ".join(str(exc).split()), output, seconds, exc)
    report.output = output
    return Outcome(target, "pass" if report.ok else "fail", report, None, output, seconds)
