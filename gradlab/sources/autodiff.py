"""The ``"jax"`` source: ``jax.value_and_grad`` of the shared cost, in float64.

jax traces :func:`gradlab.network._cost` with ``xp = jax.numpy`` -- the very function
numpy evaluates for the other sources -- and never sees the hand-written deltas.

float64 without surprises: jax computes in float32 unless x64 is enabled. gradlab
enables it only inside a scoped context (``jax.enable_x64``) around its own calls, so a
user's jax code outside gradlab keeps whatever setting the user chose.

jax is imported on first use, so importing gradlab (and ``gradlab --help``) stays fast.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from gradlab.network import Network, Problem, _cost

# Compiled functions are kept per network; jit itself re-specialises per data shape.
_CACHE_SIZE = 64


def x64():
    """A context in which jax computes in float64, without changing the global setting."""
    import jax

    scoped = getattr(jax, "enable_x64", None)
    if scoped is not None and not isinstance(scoped, bool) and hasattr(scoped, "__call__"):
        try:
            return scoped(True)
        except TypeError:  # pragma: no cover - older signature
            pass
    try:  # pragma: no cover - jax versions before the top-level context manager
        from jax.experimental import enable_x64

        return enable_x64()
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled(network: Network):
    """jit(value_and_grad(J)) for one network; arguments (params, X, Y, lam)."""
    import jax
    import jax.numpy as jnp

    return jax.jit(jax.value_and_grad(functools.partial(_cost, jnp, network)))


def _device_data(problem: Problem):
    """X and Y as float64 jax arrays, made once per problem and reused."""
    import jax.numpy as jnp

    cached = problem._cache.get("jax")
    if cached is None:
        cached = (jnp.asarray(problem.X, dtype=jnp.float64), jnp.asarray(problem.Y, dtype=jnp.float64))
        problem._cache["jax"] = cached
    return cached


def value_and_gradient(problem: Problem, params: np.ndarray) -> tuple[float, np.ndarray]:
    """Cost and gradient from jax (inputs already validated)."""
    import jax.numpy as jnp

    fn = _compiled(problem.network)
    with x64():
        X, Y = _device_data(problem)
        value, grad = fn(jnp.asarray(params, dtype=jnp.float64), X, Y, problem.lam)
        # np.array copies: the caller owns the result and jax's buffer stays immutable.
        return float(value), np.array(grad, dtype=np.float64)


def gradient(problem: Problem, params: np.ndarray) -> np.ndarray:
    """jax's gradient of the shared cost (the ``"jax"`` source)."""
    return value_and_gradient(problem, params)[1]
