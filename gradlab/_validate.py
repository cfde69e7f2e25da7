"""Input validation shared by the public functions: one place, ``name=value`` messages."""

from __future__ import annotations

import decimal
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
    """Build the standard error: ``{name} must be {accepted}; got {name}={value}``.

    The error keeps its parts (``argument``, ``accepted``, ``shown``), so that the command
    line can say it again with the option the user typed (``--lambda``, not ``lam``).
    """
    exc = GradlabError(f"{name} must be {accepted}; got {name}={_show(value)}")
    exc.argument, exc.accepted, exc.shown = name, accepted, _show(value)
    return exc


def flag(name: str, value) -> bool:
    """A True/False argument (numpy bools accepted; 0, 1 and strings are not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise fail(name, value, "True or False")
    return bool(value)


def instance(name: str, value, cls, accepted: str):
    """``value`` itself when it is an instance of ``cls``; else the standard error."""
    if not isinstance(value, cls):
        raise fail(name, value, accepted)
    return value


def rng(seed, name: str = "seed"):
    """A numpy Generator from a Generator or a non-negative integer seed."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(integer(name, seed, minimum=0))


def _scalar(value):
    """A 0-d numpy array as the numpy scalar it holds (``np.array(3)`` is a reasonable 3)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        return value[()]
    return value


def integer(name: str, value, *, minimum: int | None = None) -> int:
    """An int (not bool, not float) at least ``minimum``; a 0-d integer array counts."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        accepted = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise fail(name, value, accepted)
    if minimum is not None and value < minimum:
        raise fail(name, value, f"an integer >= {minimum}")
    return int(value)


def real(name: str, value, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A finite real number (not bool) at least ``minimum`` and at most ``maximum``.

    numpy scalars, 0-d arrays, Fractions and Decimals are converted to float; -0.0
    becomes 0.0, so that no message or report shows a negative zero.
    """
    accepted = "a finite real number" + ("" if minimum is None else f" >= {minimum:g}")
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, decimal.Decimal)):
        raise fail(name, value, accepted)
    try:
        number = float(value)
    except (OverflowError, ValueError):  # 10**400, Fraction(10**400): beyond float64
        raise fail(name, value, accepted) from None
    if not np.isfinite(number) or (minimum is not None and number < minimum):
        raise fail(name, value if isinstance(value, decimal.Decimal) else number, accepted)
    if maximum is not None and number > maximum:
        raise fail(name, number, accepted + (" and" if minimum is not None else "") + f" <= {maximum:g}")
    return number + 0.0


def choice(name: str, value, options) -> str:
    """One of a fixed set of strings; the message lists them."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise fail(name, value, "one of " + ", ".join(repr(o) for o in options))
    return value


#: dtype kinds that hold real numbers: bool, signed and unsigned integers, floats. Strings
#: ("U", "S") would be parsed by numpy's cast, complex numbers cut to their real part,
#: dates read as day counts: each is refused rather than silently reinterpreted.
_REAL_KINDS = frozenset("biuf")


def _real_object(x) -> bool:
    """Whether one entry of an object array is a real number float() can take."""
    return isinstance(x, (numbers.Real, decimal.Decimal)) and not isinstance(x, (bool, np.bool_))


def float_array(name: str, value, *, ndim: int, finite: bool = True) -> np.ndarray:
    """A real array of the given rank, converted to a fresh float64 copy.

    Lists, tuples, numpy arrays of any real dtype (bool, integer, float16 ... longdouble),
    non-contiguous, read-only and memory-mapped arrays are accepted. Refused: strings,
    complex numbers, None and other objects, ragged lists, masked arrays with masked
    entries (their hidden values would be used), and values beyond float64's range.
    """
    accepted = f"a {ndim}-D array of real numbers"
    if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):
        raise GradlabError(
            f"{name} must be {accepted} without masked entries; got {name} with "
            f"{int(np.ma.count_masked(value))} masked entries (fill them first, e.g. {name}.filled(0))"
        )
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError, OverflowError):  # ragged nesting, odd sequences
        raise fail(name, value, accepted) from None
    if raw.dtype.kind == "O":
        if not all(_real_object(x) for x in raw.flat):
            raise fail(name, value, accepted)
    elif raw.dtype.kind not in _REAL_KINDS:
        raise fail(name, value, accepted)
    try:
        # Beyond float64's range (a longdouble 1e400, an int 10**400) becomes inf or fails:
        # either way it is refused below, with the entry named, not as a cast warning.
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.array(raw, dtype=np.float64, copy=True)
    except (TypeError, ValueError, OverflowError):
        raise fail(name, value, accepted) from None
    if arr.ndim != ndim:
        raise GradlabError(
            f"{name} must be {accepted}; got {name} with shape {arr.shape}"
        )
    if finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = tuple(int(i) for i in bad)
        raise GradlabError(
            f"{name} must hold only finite numbers; got {name}[{', '.join(map(str, where))}]"
            f"={_entry(raw[tuple(bad)], arr[tuple(bad)])}"
        )
    return arr


def _entry(original, converted) -> str:
    """A non-finite entry for a message: as float64 has it (nan, inf), or, where the cast
    overflowed, as the caller gave it (a longdouble 1e+400, an int 10**400)."""
    try:
        overflowed = bool(np.isfinite(original))
    except (TypeError, OverflowError):
        overflowed = True
    return _show(str(original)).strip("'") if overflowed else repr(float(converted))


def metadata(name: str, value) -> dict:
    """``None`` or a dict of ``name: value`` pairs a report can print and write as JSON.

    Keys must be strings; values None, bool, int, float, str, or lists and dicts of them
    (numpy scalars and arrays count). Checked up front, so that ``to_json()`` and the
    model file never meet an object they cannot write.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(name, value, "a dict of name: value pairs or None")

    def plain(x, depth=0) -> bool:
        if depth > _METADATA_DEPTH:
            return False
        if x is None or isinstance(x, (str, bool, np.bool_, int, float, np.integer, np.floating)):
            return True
        if isinstance(x, np.ndarray):
            return x.dtype.kind in "biufU"
        if isinstance(x, (list, tuple)):
            return all(plain(i, depth + 1) for i in x)
        if isinstance(x, dict):
            return all(isinstance(k, str) and plain(i, depth + 1) for k, i in x.items())
        return False

    for key, item in value.items():
        if not isinstance(key, str):
            raise fail(f"{name} keys", key, "strings")
        if not plain(item):
            raise fail(f"{name}[{key!r}]", item, "None, a bool, number or string, or lists and dicts of them")
    return dict(value)


#: How deeply metadata may nest lists and dicts: far more than any report needs, and a
#: bound on the walk (a list that contains itself would otherwise recurse for ever).
_METADATA_DEPTH = 16
