"""Calling the user's code in the generic checks, and reading what it returned.

Every call runs under gradlab's guard (:func:`call_user`, the policy of
:mod:`gradlab._usercode`); what a gradient call returned is read into one flat float64
vector, with a finding for each way its form is off (:func:`parse_gradients`); what the
user's code wrote into its arguments becomes ``input_mutation`` findings
(:func:`input_mutations`). Jax-written code is evaluated in jax's scoped x64 mode
(:func:`float64`).
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from gradlab import _validate as v
from gradlab._errors import GradlabError, UserCodeError
from gradlab._judge import EPS
from gradlab._usercode import check_signature, code_file, fn_name, one_line, raised_where, user_code
from gradlab.check.findings import MAX_LISTED, InputFinding
from gradlab.check.inputs import Inputs
from gradlab.sources import autodiff

__all__ = ["title", "call_user", "callable_arg", "float64", "describe", "parse_gradients", "input_mutations",
           "precision", "numeric_value"]

_EPS = EPS


def title(fn) -> str:
    """A user function's name as a report shows it: its own name for one defined inside
    another (``conv_forward``, not ``make_conv.<locals>.conv_forward``)."""
    name = fn_name(fn)
    return getattr(fn, "__name__", name) if "<locals>" in name else name


def call_user(fn, args, what: str):
    """``fn(*args)`` under gradlab's guard: anything it raises (bar Ctrl-C) becomes a
    UserCodeError naming ``what``, the exception and the user's line."""
    try:
        with user_code():
            return fn(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the user's code: reported, never a traceback (see gradlab._usercode)
        raise UserCodeError(f"{what} raised {one_line(exc)}{raised_where(exc, code_file(fn))}") from exc


def callable_arg(name, fn, n_args: int, shape: str):
    """Refuse what is not a callable taking ``n_args`` positional arguments (or returns a
    generator or coroutine)."""
    if not callable(fn):
        raise v.fail(name, fn, "a callable")
    check_signature(fn, n_args, name, shape)


def float64():
    """The check computes in float64 throughout: code written with jax.numpy runs in jax's
    scoped x64 mode while it is checked (as the jax witness does), so its values are not
    float32 ones. Where jax has not been imported the user's code cannot be using it."""
    if "jax" not in sys.modules:
        return contextlib.nullcontext()
    return autodiff.x64()


def describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return f"a {type(x).__name__}"


# ---------------------------------------------------------------- what a gradient must be


def parse_gradients(raw, inputs: Inputs, what: str, hint: str):
    """Your returned gradient(s) as one flat float64 vector, with findings about the form.

    One array per differentiated input, in ``wrt`` order (a tuple or list; a dict keyed by
    the inputs' names; a single array when there is one input). Returns ``(flat or None,
    findings, scale)``: ``flat`` is None when the result cannot be used; ``scale`` maps a
    slot's position to the factor its round-off bounds grow by (a float32 result).
    """
    slots = inputs.slots
    names = ", ".join(s.name for s in slots)
    exp = f"looked at what {what} returned: how many arrays, their types, shapes, dtypes, finite entries"
    findings: list[InputFinding] = []
    scale: dict = {}
    if len(slots) == 1 and isinstance(raw, (tuple, list)) and len(raw) > 1 and any(
            isinstance(x, np.ndarray) and x.ndim >= 1 for x in raw):
        findings.append(InputFinding("bad_output", None, None,
                                     f"{what} returned {len(raw)} gradients; the differentiated input is {names} (1): "
                                     f"return its gradient alone.{hint}", exp, cause="count"))
        return None, findings, scale
    if len(slots) == 1:
        if isinstance(raw, (tuple, list)) and len(raw) == 1 and not np.isscalar(raw[0]) \
                and np.ndim(raw[0]) == len(slots[0].shape):
            raw = raw[0]
        elif isinstance(raw, dict) and set(raw) == {slots[0].name}:
            raw = raw[slots[0].name]
        items = [raw]
    elif isinstance(raw, dict):
        if set(raw) != {s.name for s in slots}:
            findings.append(InputFinding("bad_output", None, None,
                                         f"{what} returned a dict with keys {sorted(map(str, raw))}; the "
                                         f"differentiated inputs are {names}: one key per input.{hint}", exp,
                                         cause="keys"))
            return None, findings, scale
        items = [raw[s.name] for s in slots]
    elif isinstance(raw, (tuple, list)) and len(raw) == len(slots):
        items = list(raw)
    else:
        got = (f"{len(raw)} gradients" if isinstance(raw, (tuple, list)) else describe(raw))
        findings.append(InputFinding("bad_output", None, None,
                                     f"{what} returned {got}; the differentiated inputs are {names} ({len(slots)}): "
                                     f"return one gradient per input, in that order.{hint}", exp, cause="count"))
        return None, findings, scale
    pieces = []
    for s, item in zip(slots, items):
        try:
            arr = np.asarray(item)
        except Exception:  # an object numpy cannot read
            arr = np.asarray(None, dtype=object)
        where = f"the gradient for {s.label}"
        if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
            array = isinstance(item, np.ndarray)
            what_ = f"an array of dtype {arr.dtype}" if array else f"a {type(item).__name__}"
            findings.append(InputFinding("bad_output", s.name, s.position,
                                         f"{where} is {what_}; a gradient is a float array of {s.name}'s shape "
                                         f"{s.shape}.", exp,
                                         cause=f"dtype {arr.dtype}" if array else f"type {type(item).__name__}"))
            return None, findings, scale
        if arr.shape != s.shape:
            if arr.ndim == 2 and arr.shape == s.shape[::-1]:
                findings.append(InputFinding(
                    "transposed", s.name, s.position,
                    f"{where} has shape {arr.shape}, {s.name}'s shape {s.shape} transposed; it is judged "
                    f"transposed back. A gradient has its input's shape: form it as the transpose (e.g. "
                    f"x.T @ dout rather than dout.T @ x).", exp, cause="transposed shape"))
                arr = arr.T
            elif arr.size == s.size and tuple(d for d in arr.shape if d != 1) == tuple(d for d in s.shape if d != 1):
                findings.append(InputFinding(
                    "bad_output", s.name, s.position,
                    f"{where} has shape {arr.shape}, {s.name} has shape {s.shape}: the same entries with "
                    "a length-1 axis more or less. It is judged reshaped; return it with its input's shape "
                    "(a trainer's update would broadcast it).", exp, blame="shape", cause=f"shape {arr.shape}"))
                arr = arr.reshape(s.shape)
            else:
                findings.append(InputFinding(
                    "bad_output", s.name, s.position,
                    f"{where} has shape {arr.shape}; {s.name} has shape {s.shape}: a gradient has its input's shape.",
                    exp, cause=f"shape {arr.shape}"))
                return None, findings, scale
        grad = np.array(arr, dtype=np.float64).reshape(-1)
        bad = np.flatnonzero(~np.isfinite(grad))
        if bad.size:
            entries = [s.index(int(k)) for k in bad]
            findings.append(InputFinding(
                "bad_output", s.name, s.position,
                f"{where} has {bad.size} non-finite entr{'y' if bad.size == 1 else 'ies'} (NaN or inf): a log "
                "of 0, a division by zero or an overflow.", exp, entries=entries,
                values=[{"entry": e, "entry_value": str(grad[k])} for e, k in zip(entries[:MAX_LISTED], bad)],
                cause="NaN/inf", extra={"n_entries": int(bad.size)}))
            return None, findings, scale
        if arr.dtype != np.float64:
            low = arr.dtype.kind == "f" and np.finfo(arr.dtype).eps > _EPS
            if low:
                scale[s.position] = float(np.finfo(arr.dtype).eps) / _EPS
            findings.append(InputFinding(
                "bad_output", s.name, s.position,
                f"{where} has dtype {arr.dtype}, not float64. " + (
                    "It is judged at that precision (round-off bounds scaled by its eps), so bugs smaller than "
                    "that precision cannot be seen." if low else "A gradient is a float array; integers cannot "
                    "hold it."), exp, blame="precision" if low else "user", cause=f"dtype {arr.dtype}",
                extra={"dtype": str(arr.dtype)}))
        pieces.append(grad)
    return np.concatenate(pieces), findings, scale


def input_mutations(writes, what: str) -> list[InputFinding]:
    """A finding per argument the user's code wrote."""
    out = []
    for w in writes:
        if not w.entries and w.total:
            text = "its shape changed"
        else:
            text = f"{w.total} entr{'y' if w.total == 1 else 'ies'} changed"
        alias = f" -- {w.alias} --" if w.alias else ""
        sentence = (f"{what} wrote into {w.path}{alias} ({text}). Arguments must stay as they were: "
                    "the caller (a trainer, the next layer's backward pass) still uses them. Work on a copy "
                    "(x = x.copy(), or build a new array instead of assigning into this one).")
        values = [{"entry": list(e), "before": b, "after": a} for e, b, a in zip(w.entries, w.before, w.after)]
        out.append(InputFinding("input_mutation", None, None, sentence,
                                f"handed {what} copies of its arguments and compared them, entry by entry, with "
                                "pristine ones afterwards", entries=w.entries, values=values, cause=f"{w.path} written",
                                extra={"argument": w.path, "n_entries": w.total}))
    return out


def precision(value) -> float:
    """How much coarser than float64 a value's dtype rounds (1 for float64): a function
    computed in float32 has float32's round-off, and its error estimates must say so."""
    dtype = np.asarray(value).dtype
    if dtype.kind == "c":
        dtype = np.finfo(dtype).dtype
    return float(np.finfo(dtype).eps) / _EPS if dtype.kind == "f" and np.finfo(dtype).eps > _EPS else 1.0


def numeric_value(x, what: str, accepted: str):
    try:
        arr = np.asarray(x)
    except Exception:
        arr = np.asarray(None, dtype=object)
    if arr.dtype.kind not in "fiuc" or arr.dtype == np.bool_:
        raise GradlabError(f"{what} must return {accepted}; got {describe(x)}")
    return arr


# ------------------------------------------------------------------------------ cases
