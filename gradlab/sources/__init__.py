"""Gradient sources and their registry.

A source is a callable ``(problem, params) -> flat gradient``. The built-ins are
registered by name below, one line each; the CLI's choices come from this table, and a
user's callable is accepted anywhere a name is.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np

from gradlab import _usercode
from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab.network import Problem, check_problem, cost
from gradlab.sources import autodiff, backprop, numeric

__all__ = ["Source", "SOURCES", "get_source", "jax_source", "gradient", "value_and_gradient", "checked_output"]


@dataclasses.dataclass(frozen=True)
class Source:
    """A registered gradient source.

    ``exact`` sources compute the gradient of J up to round-off; the others estimate it
    and provide ``estimate(problem, params)``, returning a
    :class:`~gradlab.sources.numeric.NumericGradient` (gradient, per-entry error
    estimate, kink entries; it unpacks as ``grad, error``). A finite-difference source
    names its ``method`` (one of :data:`gradlab.sources.numeric.METHODS`), which its
    resource guards and the trainer's time estimate read.
    """

    name: str
    gradient: Callable[[Problem, np.ndarray], np.ndarray]
    value_and_gradient: Callable[[Problem, np.ndarray], tuple[float, np.ndarray]] | None
    exact: bool
    description: str
    estimate: Callable[[Problem, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    method: str | None = None


SOURCES: dict[str, Source] = {}


def _register(source: Source) -> None:
    SOURCES[source.name] = source


_register(Source("backprop", backprop.gradient, backprop.value_and_gradient, True, "hand-written back-propagation (numpy)"))
_register(Source("jax", autodiff.gradient, autodiff.value_and_gradient, True, "jax.value_and_grad of the shared cost, float64"))
_register(Source("numeric", numeric.gradient, numeric.value_and_gradient, False, "central differences over the cost as a black box", numeric.estimate, "central"))
_register(Source("numeric-forward", numeric.gradient_forward, numeric.value_and_gradient_forward, False, "forward differences over the cost as a black box", numeric.estimate_forward, "forward"))
_register(Source("numeric-complex", numeric.gradient_complex, numeric.value_and_gradient_complex, False, "complex-step derivative of the cost (accurate to round-off)", numeric.estimate_complex, "complex"))
_register(Source("numeric-richardson", numeric.gradient_richardson, numeric.value_and_gradient_richardson, False, "Richardson-extrapolated central differences", numeric.estimate_richardson, "richardson"))


def jax_source(dtype: str = "float64") -> Source:
    """The ``"jax"`` source computing in ``dtype``, usable wherever a source is accepted.

    Parameters
    ----------
    dtype : {"float64", "float32"}, default "float64"
        float64 is the registered ``"jax"`` source itself. float32 trades accuracy
        (about 7 significant digits) for speed on accelerators; gradients still come back
        as float64 arrays.

    Returns
    -------
    Source

    Raises
    ------
    GradlabError
        If ``dtype`` is not one of the two names.

    Examples
    --------
    >>> import gradlab
    >>> p = gradlab.debug_problem()
    >>> g = gradlab.gradient(p, gradlab.debug_init(p.network), source=jax_source("float32"))
    >>> g.dtype, g.shape
    (dtype('float64'), (38,))
    """
    dtype = autodiff.check_dtype(dtype)
    if dtype == "float64":
        return SOURCES["jax"]
    return Source(
        f"jax-{dtype}",
        functools.partial(autodiff.gradient, dtype=dtype),
        functools.partial(autodiff.value_and_gradient, dtype=dtype),
        False,  # round-off of float32, not of float64: judged by its own error estimate
        f"jax.value_and_grad of the shared cost, {dtype}",
        functools.partial(autodiff.estimate, dtype=dtype),
    )


def get_source(source, name: str = "source") -> Source:
    """Resolve a source name or a user's callable to a :class:`Source`."""
    if isinstance(source, Source):
        return source
    if isinstance(source, str):
        if source not in SOURCES:
            raise v.fail(name, source, "one of " + ", ".join(repr(s) for s in SOURCES) + " or a callable")
        return SOURCES[source]
    if callable(source):
        return _user_source(source, name)
    raise v.fail(name, source, "one of " + ", ".join(repr(s) for s in SOURCES) + " or a callable")


def _user_source(fn, name: str) -> Source:
    """A user's callable as a Source: its signature checked now, its exceptions named.

    An exception raised inside the user's function becomes a
    :class:`~gradlab._errors.UserCodeError` naming the function, the exception and where
    it was raised; the original is chained (``__cause__``), so its traceback is kept.
    """
    call, label = _usercode.guarded(fn, "source", name, 2, "(problem, params)")
    return Source(label, call, None, True, "user-supplied gradient function")


def checked_output(src: Source, grad, n_params: int, what: str = "gradient") -> np.ndarray:
    """A source's gradient (or other ``what`` of that shape, e.g. a Hessian-vector product) as
    a fresh float64 array of shape (n_params,), or a GradlabError naming the source (None,
    complex, strings, the wrong shape, NaN or inf)."""
    if grad is None:
        raise GradlabError(f"source {src.name!r} returned None (is its return statement missing?); it must "
                           f"return the {what}, a float array of length {n_params}")
    if np.iscomplexobj(grad) or (isinstance(grad, np.ndarray) and grad.dtype.kind not in "biuf"
                                 and grad.dtype != object):
        # A cast would drop the imaginary part (with a warning) or parse strings as numbers.
        raise GradlabError(
            f"source {src.name!r} must return a real float array of length {n_params}; "
            f"got an array of dtype {np.asarray(grad).dtype}"
        )
    try:
        arr = np.asarray(grad, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise GradlabError(
            f"source {src.name!r} must return a float array of length {n_params}; "
            f"got {type(grad).__name__}"
        ) from None
    if arr.shape != (n_params,):
        raise GradlabError(
            f"source {src.name!r} must return a {what} of shape ({n_params},); got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        i = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise GradlabError(f"source {src.name!r} returned a non-finite {what}: entry {i} is {float(arr[i])!r}")
    return np.array(arr, dtype=np.float64, copy=True)


def gradient(problem: Problem, params, source="backprop") -> np.ndarray:
    """Gradient of the regularised cost at ``params`` from one source.

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
    source : {"backprop", "jax", "numeric"} or callable, default "backprop"
        A callable must take ``(problem, params)`` and return the flat gradient.

    Returns
    -------
    numpy.ndarray
        A new float64 array; ``params`` is never written (each source gets a copy).

    Raises
    ------
    GradlabError
        Bad problem, params or source name; or a source's output of the wrong shape or
        holding NaN/inf.

    Examples
    --------
    >>> import gradlab
    >>> p = gradlab.debug_problem()
    >>> g = gradlab.gradient(p, gradlab.debug_init(p.network))
    >>> g.shape
    (38,)
    """
    problem = check_problem(problem)
    theta = problem.network.check_params(params)
    src = get_source(source)
    return checked_output(src, src.gradient(problem, theta), problem.network.n_params)


def value_and_gradient(problem: Problem, params, source="backprop") -> tuple[float, np.ndarray]:
    """Cost and gradient together, from one pass where the source allows it."""
    problem = check_problem(problem)
    theta = problem.network.check_params(params)
    src = get_source(source)
    if src.value_and_gradient is not None:
        value, grad = src.value_and_gradient(problem, theta)
    else:
        value, grad = cost(problem, theta), src.gradient(problem, theta.copy())
    return float(value), checked_output(src, grad, problem.network.n_params)
