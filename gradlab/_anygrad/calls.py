"""Calling the user's code: guarded, on copies, with a record of what it wrote.

Every array the user's code receives -- directly, or inside a tuple, list or dict (a
``cache``, a ``bn_param``) -- is remembered together with a copy taken before the call;
after the call the two are compared entry by entry. That is the purity experiment: which
argument was written, which entries, the values before and after.
"""

from __future__ import annotations

import dataclasses
import os
import traceback

import numpy as np

from gradlab._errors import UserCodeError, user_code

#: How deep the purity snapshot looks into tuples, lists and dicts (a cache of tuples of
#: arrays is two levels; deeper structures are rare and the walk must end on cycles).
SNAPSHOT_DEPTH = 4

#: At most this many written entries are listed with their values in a finding.
MAX_LISTED = 5

_OWN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_line(exc: BaseException) -> str:
    """``TypeError: message`` on one line (a user exception that cannot describe itself too)."""
    try:
        text = " ".join(str(exc).split())
    except Exception as inner:
        text = f"(no message: str() of it raised {type(inner).__name__})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def raised_where(exc: BaseException) -> str:
    """`` (FILE, line N, in F)``: the innermost frame outside gradlab, where there is one."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(_OWN + os.sep)]
    if not frames:
        return ""
    f = frames[-1]
    try:
        rel = os.path.relpath(f.filename)
        name = f.filename if rel.startswith(os.pardir) else rel
    except (ValueError, OSError):
        name = f.filename
    return f" ({name}, line {f.lineno}, in {f.name})"


def label(fn) -> str:
    """A function's name as a report shows it."""
    qual = getattr(fn, "__qualname__", None)
    name = getattr(fn, "__name__", None)
    if qual and "<locals>" in qual and name:  # a function defined inside another: its own name reads best
        return name
    return qual or name or type(fn).__name__


def guarded(fn, args, what: str):
    """``fn(*args)`` with ``os._exit`` guarded; anything it raises (bar Ctrl-C) becomes a
    UserCodeError naming ``what``, the exception and where it was raised."""
    try:
        with user_code():
            return fn(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the user's code: reported, never a traceback
        raise UserCodeError(f"{what} raised {one_line(exc)}{raised_where(exc)}") from exc


# ----------------------------------------------------------------------------- purity


def arrays_in(obj, path: str, depth: int = 0, seen=None):
    """``(path, array)`` for every numpy array reachable from ``obj`` through tuples, lists
    and dicts (``cache[1]``, ``bn_param['gamma']``)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > SNAPSHOT_DEPTH:
        return
    if isinstance(obj, np.ndarray):
        seen.add(id(obj))
        yield path, obj
    elif isinstance(obj, (tuple, list)):
        seen.add(id(obj))
        for i, item in enumerate(obj):
            yield from arrays_in(item, f"{path}[{i}]", depth + 1, seen)
    elif isinstance(obj, dict):
        seen.add(id(obj))
        for key, item in obj.items():
            yield from arrays_in(item, f"{path}[{key!r}]", depth + 1, seen)


@dataclasses.dataclass
class Write:
    """Entries of one array the user's code wrote."""

    path: str  # how the argument is named: "x (input 0)", "dout", "cache[0]"
    entries: list  # multi-indices
    before: list
    after: list
    total: int
    shape: tuple
    alias: str | None = None  # "the array forward received as x (input 0)"


class Snapshot:
    """Copies of every array handed to the user's code, to see afterwards what it wrote."""

    def __init__(self, named):
        self.items = []
        seen: set = set()  # an array reachable twice (an input kept in the cache) is listed once
        for name, obj in named:
            for path, arr in arrays_in(obj, name, seen=seen):
                self.items.append((path, arr, arr.copy()))

    def writes(self, aliases: dict | None = None) -> list[Write]:
        out = []
        for path, live, before in self.items:
            if live.shape != before.shape:
                out.append(Write(path, [], [], [], int(before.size), before.shape))
                continue
            with np.errstate(invalid="ignore"):
                same = (live == before) | ((live != live) & (before != before))
            if bool(np.all(same)):
                continue
            changed = np.argwhere(~same)
            take = changed[:MAX_LISTED]
            entries = [tuple(int(i) for i in e) for e in take]
            out.append(Write(path, entries, [_num(before[e]) for e in entries], [_num(live[e]) for e in entries],
                             int(len(changed)), before.shape,
                             None if aliases is None else aliases.get(id(live))))
        return out


def _num(x):
    x = x.item() if hasattr(x, "item") else x
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
