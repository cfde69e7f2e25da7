"""check() and shrink() of a target named by a string, or with ``isolate=True``: the user's
code runs in a process of its own (:mod:`gradlab._isolation`), and the report keeps what it
printed."""

from __future__ import annotations

from gradlab import _validate as v
from gradlab._errors import GradlabError, UserCodeError, UserCodeStopped
from gradlab._isolation import InWorker, Worker, check_timeout
from gradlab._usercode import load_function
from gradlab.check.conventions import CallTemplate

__all__ = ["wanted", "run_isolated", "in_process", "cost_target", "RemoteTemplate", "remote_template"]

#: Where the worker finds the call template's class (it parses and evaluates it there).
TEMPLATE_CLASS = f"{CallTemplate.__module__}:{CallTemplate.__qualname__}"


class RemoteTemplate(CallTemplate):
    """A call template parsed, checked and evaluated in the worker, next to the user's module
    (whose globals it uses); here, its names, source and what, and a call of it."""

    def __init__(self, remote):  # not CallTemplate's: the worker parsed it, over the module there
        self.remote = remote
        self.names, self.what, self.source = tuple(remote.names), remote.what, remote.source
        self.target = remote
        self.__name__ = self.source

    def __call__(self, *values):
        return self.remote(*values)

    def __repr__(self) -> str:
        return f"RemoteTemplate({self.source!r})"


def remote_template(worker: Worker, source, target: str, name: str) -> RemoteTemplate:
    """The template ``source`` over ``target`` (``PATH.py``, a module, or either with
    ``:NAME``), made in ``worker``."""
    if isinstance(source, CallTemplate):
        raise GradlabError(f"{name} is a CallTemplate made in this process; to run it next to the user's code in "
                           "a process of its own, give its expression as a string")
    try:
        remote = worker.make(TEMPLATE_CLASS, source, InWorker(target), name=name, label=name,
                             attributes=("names", "what", "source"))
    except (UserCodeError, UserCodeStopped):
        raise
    except GradlabError as exc:  # made against this target's module: a name it lacks is the target's problem
        raise UserCodeError(str(exc)) from None
    return RemoteTemplate(remote)


def wanted(grad_fn, cost_fn, isolate, timeout) -> bool:
    """Whether to isolate: as ``isolate`` says; by default (None) when a function is named by
    a string (``"FILE.py:FUNC"``), not for a callable, which runs where it was made.
    ``timeout`` is validated either way."""
    check_timeout(timeout)
    if isolate is not None:
        return v.flag("isolate", isolate)
    return isinstance(grad_fn, str) or isinstance(cost_fn, str)


def cost_target(grad_target: str | None, cost: str) -> str:
    """A cost named by a bare function name lives in the gradient's file or module (the
    target itself when it names a module alone, as a call template's may)."""
    if ":" in cost or grad_target is None:
        return cost
    return f"{grad_target.rpartition(':')[0] or grad_target}:{cost}"


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
    templates = [k for k in ("call", "cost_call") if options.get(k) is not None]
    if templates and grad_target is None:
        raise GradlabError(f"isolated, {templates[0]}= needs the target as a string ('PATH.py', 'PATH.py:NAME' or "
                           "a module name), for the process that runs it to import")
    with Worker(options["timeout"]) as worker:
        try:
            for key in templates:
                options[key] = remote_template(worker, options[key], grad_target, key)
            fn = options["call"] if options.get("call") is not None else _stand_in(worker, grad_fn, "grad_fn",
                                                                                    grad_target)
            report = entry(fn, cost_fn=_stand_in(worker, cost_fn, "cost_fn", grad_target), **options)
        except GradlabError as exc:
            exc.output = worker.output
            raise
        if report is not None:
            report.output = worker.output
        return report
