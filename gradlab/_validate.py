"""Input validation shared by the public functions: one place, ``name=value`` messages."""

from __future__ import annotations

import numbers

import numpy as np

from gradlab._errors import GradlabError


def _show(value, limit: int = 60) -> str:
    """A short, readable rendering of a value for an error message."""
    if isinstance(value, np.ndarray):
        if value.size <= 8:
            text = np.array2string(value, separator=", ", threshold=8)
        else:
            text = f"array(shape={value.shape}, dtype={value.dtype})"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(name: str, value, accepted: str) -> GradlabError:
    """Build the standard error: ``{name} must be {accepted}; got {name}={value}``."""
    return GradlabError(f"{name} must be {accepted}; got {name}={_show(value)}")


def integer(name: str, value, *, minimum: int | None = None) -> int:
    """An int (not bool, not float) at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        accepted = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise fail(name, value, accepted)
    if minimum is not None and value < minimum:
        raise fail(name, value, f"an integer >= {minimum}")
    return int(value)


def real(name: str, value, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite real number (not bool) at least ``minimum`` and at most ``maximum``."""
    accepted = "a finite real number" + ("" if minimum is None else f" >= {minimum:g}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise fail(name, value, accepted)
    value = float(value)
    if not np.isfinite(value) or (minimum is not None and value < minimum):
        raise fail(name, value, accepted)
    if maximum is not None and value > maximum:
        raise fail(name, value, accepted + (" and" if minimum is not None else "") + f" <= {maximum:g}")
    return value


def choice(name: str, value, options) -> str:
    """One of a fixed set of strings; the message lists them."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise fail(name, value, "one of " + ", ".join(repr(o) for o in options))
    return value


def float_array(name: str, value, *, ndim: int, finite: bool = True) -> np.ndarray:
    """A real array of the given rank, converted to a fresh float64 copy."""
    try:
        arr = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise fail(name, value, f"a {ndim}-D array of real numbers") from None
    if np.iscomplexobj(np.asarray(value)):
        raise fail(name, value, f"a {ndim}-D array of real numbers")
    if arr.ndim != ndim:
        raise GradlabError(
            f"{name} must be a {ndim}-D array of real numbers; got {name} with shape {arr.shape}"
        )
    if finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = tuple(int(i) for i in bad)
        raise GradlabError(
            f"{name} must hold only finite numbers; got {name}[{', '.join(map(str, where))}]"
            f"={float(arr[tuple(bad)])!r}"
        )
    return arr
