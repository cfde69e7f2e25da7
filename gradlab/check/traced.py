"""The jax witness of the generic checks: the user's own code, traced by jax in float64.

jax differentiates the very function the finite differences evaluate -- the user's code,
called with jax arrays -- so it is a witness only where it can trace that code: written
against the array API (``xp = array_namespace(x)``, array-api-compat) or with jax.numpy.
Where it cannot, :func:`reason` says why in one line, in the words of the fix. Compiled
witnesses are kept per function and input shapes (:func:`compiled`), so a property test
repeating a check over many random inputs compiles once per shape.
"""

from __future__ import annotations

import collections

import numpy as np

from gradlab._errors import GradlabError, NotSendable, UserCodeError
from gradlab.sources import autodiff

__all__ = ["JaxUnavailable", "reason", "ready", "compiled", "numeric_array", "COMPILED_CACHE_SIZE"]

#: Compiled jax witnesses kept (function x input shapes); each holds a compiled program.
COMPILED_CACHE_SIZE = 64
_COMPILED: collections.OrderedDict = collections.OrderedDict()


class JaxUnavailable(Exception):
    """jax cannot trace the function; the message says why, in one line."""


def reason(exc: BaseException, what: str) -> str:
    """Why jax could not trace ``what``, in the words of the fix."""
    if isinstance(exc, NotSendable):
        return (f"{what} runs in a process of its own (gradlab isolates code named by its file), where jax's "
                "tracers cannot be sent; in Python, pass the function itself (isolate=False) for the jax witness")
    cause = exc.__cause__ if isinstance(exc, UserCodeError) and exc.__cause__ is not None else exc
    name = type(cause).__name__
    text = " ".join(str(cause).split())
    first = text.split(". ")[0][:160]
    if name == "TracerArrayConversionError" or "__array__() was called on traced array" in text \
            or "numpy.ndarray conversion" in text:
        return (f"{what} converts a jax array to numpy (it calls numpy functions on its inputs); write it "
                "against xp = array_namespace(x) (array-api-compat) or jax.numpy to get the jax witness")
    if name in ("ConcretizationTypeError", "TracerBoolConversionError", "TracerIntegerConversionError"):
        return (f"{what} branches on, or converts to a Python number, a value computed from its inputs "
                f"({name}); jax cannot trace that without jax.lax.cond or jnp.where")
    if "immutable" in text or "item assignment" in text:
        return (f"{what} assigns into an array in place (x[i] = ...), which jax arrays do not allow; "
                "x.at[i].set(...) or a functional form would be traced")
    return f"tracing {what} with jax raised {name}: {first}"


def ready():
    """jax, started, or JaxUnavailable saying why not."""
    try:
        return autodiff.ready()
    except GradlabError as exc:
        raise JaxUnavailable(str(exc)) from None


def numeric_array(x) -> bool:
    """A pass-through input the compiled witness takes as an argument (a numeric array)."""
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "biuf"
    return type(x).__module__.startswith(("jax", "jaxlib")) and hasattr(x, "dtype")


def compiled(key, build):
    """The compiled witness for ``key`` (function, kind, input shapes), built once and kept
    (least recently used first out)."""
    hit = _COMPILED.get(key)
    if hit is None:
        hit = build()
        _COMPILED[key] = hit
        while len(_COMPILED) > COMPILED_CACHE_SIZE:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(key)
    return hit
