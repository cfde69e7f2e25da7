"""Progress of long work: one updating line on stderr, and what was done when a run stops.

Library code marks its long loops as *tasks* (:func:`task`) and reports what it did
(``bar.advance(n)``; finite differences call :func:`evaluated` for every stack of cost
evaluations). Nothing is drawn unless a caller asked for it with :func:`shown` -- the
command line does, from ``--progress`` / ``--quiet`` and whether stderr is a terminal --
so the library stays silent by default and costs a few attribute look-ups per report.

Only the outermost open task draws (one line, whatever is nested inside it: a training
run's numeric gradients are part of its iterations). tqdm draws it and is imported only
when a line is drawn, so ``gradlab --help`` does not import it.

On a terminal the line updates in place (and appears only for work that lasts longer
than :data:`TERMINAL_DELAY_S`); in a log (``--progress`` with stderr not a terminal) it
is written as whole lines, one at each tenth of the work and at least every
:data:`LOG_INTERVAL_S`, so a log is readable and short.

When a run is stopped (Ctrl-C, SIGTERM), :func:`stopped` tells what the open tasks had
done, for the one line the command line prints.
"""

from __future__ import annotations

import contextlib
import sys
import threading

#: On a terminal, a line appears only for work still running after this many seconds:
#: "anything that may take more than a couple of seconds", and quick commands print no
#: line that is gone again at once.
TERMINAL_DELAY_S = 2.0
#: In a log, a line at least this often (besides one at each tenth of the work): a
#: 25-minute finite-difference run then writes about 40 lines.
LOG_INTERVAL_S = 60.0
#: How often the line on a terminal is redrawn at most (tqdm's default).
TERMINAL_INTERVAL_S = 0.1

_local = threading.local()


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


class _Lines:
    """A stream for tqdm in a log: each redraw (``\\r...``) becomes one whole line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


class Reporter:
    """Draws the outermost task on ``stream`` with tqdm: in place on a terminal, as lines in a log."""

    def __init__(self, stream, forced: bool):
        self.stream = stream
        self.terminal = bool(getattr(stream, "isatty", lambda: False)())
        self.forced = forced

    def open(self, task: "Task"):
        from tqdm import tqdm

        unit = f" {task.unit}"
        if self.terminal:
            fmt = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}" + unit + " [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
            if task.total is None:
                fmt = "{desc}: {n_fmt}" + unit + " [{elapsed}, {rate_fmt}{postfix}]"
            return tqdm(total=task.total, desc=task.what, unit=" " + task.unit, file=self.stream, leave=False,
                        delay=0.0 if self.forced else TERMINAL_DELAY_S, mininterval=TERMINAL_INTERVAL_S,
                        dynamic_ncols=True, bar_format=fmt)
        fmt = "{desc}: {n_fmt}/{total_fmt}" + unit + " ({percentage:.0f}%), {rate_fmt}, {remaining} left{postfix}"
        if task.total is None:
            fmt = "{desc}: {n_fmt}" + unit + ", {rate_fmt}{postfix}"
        return tqdm(total=task.total, desc=task.what, unit=" " + task.unit, file=_Lines(self.stream), leave=True,
                    delay=0.0, mininterval=LOG_INTERVAL_S, maxinterval=LOG_INTERVAL_S, ncols=200,
                    bar_format=fmt, ascii=True)


def _reporter():
    return getattr(_local, "reporter", None)


@contextlib.contextmanager
def shown(mode, stream=None):
    """Draw progress inside the block: ``True`` always (``--progress``), ``False`` never
    (``--quiet``), ``None`` when ``stream`` (default stderr) is a terminal -- or, inside a
    block that already decided, as that block decided."""
    previous = _reporter()
    if mode is None and previous is not None:
        yield
        return
    stream = sys.stderr if stream is None else stream
    if mode is None:
        mode = bool(getattr(stream, "isatty", lambda: False)())
        reporter = Reporter(stream, forced=False) if mode else None
    else:
        reporter = Reporter(stream, forced=True) if mode else None
    _local.reporter = reporter
    try:
        yield
    finally:
        _local.reporter = previous


class Task:
    """One piece of long work: ``done`` of ``total`` ``unit`` (total None when unknown)."""

    def __init__(self, what: str, total, unit: str):
        self.what, self.total, self.unit = what, (None if total is None else int(total)), unit
        self.done = 0
        self.bar = None
        self._tenth = 0

    def advance(self, n: int = 1, **postfix) -> None:
        """``n`` more units done; ``postfix`` (e.g. ``cost=...``) is shown after the rate."""
        self.done += n
        if self.total is not None and self.done > self.total:
            self.total = self.done  # the estimate was short (e.g. kinks' one-sided steps)
            if self.bar is not None:
                self.bar.total = self.total
        if self.bar is None:
            return
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(n)
        if self.total and not self.bar_terminal and self.done < self.total:
            tenth = 10 * self.done // self.total
            if tenth != self._tenth:  # a log gets a line at each tenth (the last one at close)
                self._tenth = tenth
                self.bar.refresh()

    def describe(self) -> str:
        """``8,120 of 20,570 cost evaluations done, 12,450 not run`` (or ``8,120 ... done``)."""
        if self.total is None:
            return f"{self.done:,} {self.unit} done"
        return f"{self.done:,} of {self.total:,} {self.unit} done, {self.total - self.done:,} not run"


@contextlib.contextmanager
def task(what: str, total=None, unit: str = "steps"):
    """A piece of long work (see :class:`Task`); drawn when it is the outermost and progress is shown."""
    stack = _stack()
    t = Task(what, total, unit)
    reporter = _reporter()
    outermost = not stack
    stack.append(t)
    try:
        # Opened inside the try: a signal that lands while the first line is drawn is
        # still noted as stopping this task.
        if reporter is not None and outermost:
            t.bar_terminal = reporter.terminal
            t.bar = reporter.open(t)
        yield t
    except BaseException as exc:
        # The innermost task sees the exception first and notes every open task; the
        # outer ones see the same exception and leave the note as it is.
        noted = getattr(_local, "stopped", None)
        if noted is None or noted[0] is not exc:
            _local.stopped = (exc, [(s.what, s.describe()) for s in stack])
        raise
    finally:
        stack.pop()
        if t.bar is not None:
            t.bar.close()


def evaluated(n: int) -> None:
    """``n`` cost evaluations done: counted by the innermost task that counts them."""
    for t in reversed(_stack()):
        if t.unit == "cost evaluations":
            t.advance(n)
            return


def stopped(exc: BaseException) -> list:
    """The tasks open when ``exc`` (or an exception it was raised from) stopped them,
    outermost first, as ``(what, "done of total ...")`` pairs; empty when none was open."""
    noted = getattr(_local, "stopped", None)
    seen = set()
    while noted is not None and exc is not None and id(exc) not in seen:
        if noted[0] is exc:
            return noted[1]
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return []


def forget() -> None:
    """Start afresh: no stopped work remembered (at the start of a command)."""
    _local.stopped = None
