"""check() and shrink() of a target named by a string, or with ``isolate=True``: the user's
code runs in a process of its own (:mod:`gradlab._isolation`), and the report keeps what it
printed."""

from __future__ import annotations

from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab._isolation import Worker, check_timeout
from gradlab._usercode import load_function

__all__ = ["wanted", "run_isolated", "in_process", "cost_target"]


def wanted(grad_fn, cost_fn, isolate, timeout) -> bool:
    """Whether to isolate: as ``isolate`` says; by default (None) when a function is named by
    a string (``"FILE.py:FUNC"``), not for a callable, which runs where it was made.
    ``timeout`` is validated either way."""
    check_timeout(timeout)
    if isolate is not None:
        return v.flag("isolate", isolate)
    return isinstance(grad_fn, str) or isinstance(cost_fn, str)


def cost_target(grad_target: str | None, cost: str) -> str:
    """A cost named by a bare function name lives in the gradient's file or module."""
    if ":" in cost or grad_target is None:
        return cost
    return f"{grad_target.rpartition(':')[0]}:{cost}"


def in_process(grad_fn, cost_fn):
    """Target strings loaded here, in gradlab's own process (``isolate=False``)."""
    grad_target = grad_fn if isinstance(grad_fn, str) else None
    if isinstance(grad_fn, str):
        grad_fn = load_function(grad_fn, "grad_fn")
    if isinstance(cost_fn, str):
        cost_fn = load_function(cost_target(grad_target, cost_fn), "cost_fn")
    return grad_fn, cost_fn


def _stand_in(worker: Worker, fn, name: str, grad_target):
    if fn is None:
        return None
    if isinstance(fn, str):
        return worker.load(cost_target(grad_target, fn) if name == "cost_fn" else fn, name)
    if not callable(fn):
        raise v.fail(name, fn, "a callable or a target 'FILE.py:FUNC'")
    return worker.adopt(fn, name)


def run_isolated(entry, options: dict):
    """``entry(**options)`` (check or shrink) with ``grad_fn`` and ``cost_fn`` running in one
    worker process under ``options["timeout"]``. The report's ``output`` is what the user's
    code printed; an error raised carries it too, as its ``output`` attribute."""
    options = dict(options)
    grad_fn, cost_fn = options.pop("grad_fn"), options.pop("cost_fn")
    options["isolate"] = False
    grad_target = grad_fn if isinstance(grad_fn, str) else None
    with Worker(options["timeout"]) as worker:
        try:
            report = entry(_stand_in(worker, grad_fn, "grad_fn", grad_target),
                           cost_fn=_stand_in(worker, cost_fn, "cost_fn", grad_target), **options)
        except GradlabError as exc:
            exc.output = worker.output
            raise
        if report is not None:
            report.output = worker.output
        return report
