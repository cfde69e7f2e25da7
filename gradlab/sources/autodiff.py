"""The ``"jax"`` source: ``jax.value_and_grad`` of the shared cost, in float64.

jax traces :func:`gradlab._cost.cost` with ``xp = jax.numpy`` -- the very function
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

from gradlab import _cost, _judge, _resources
from gradlab import _validate as v
from gradlab._errors import could_not_start
from gradlab.network import Network, Problem
from gradlab.sources.numeric import NumericGradient

__all__ = ["DTYPES", "ready", "x64", "check_dtype", "device_data", "gradient", "value_and_gradient", "estimate"]

# Compiled functions are kept per network; jit itself re-specialises per data shape
# and dtype.
_CACHE_SIZE = 64

#: Precisions the jax source computes in; float64 is the default everywhere in gradlab.
DTYPES = ("float64", "float32")


@functools.lru_cache(maxsize=1)
def ready():
    """Import jax and start its backend, once; a jax that cannot start is a GradlabError.

    A misconfigured environment (``JAX_PLATFORMS=cuda`` without a GPU, a broken install)
    otherwise surfaces as an assertion deep inside jax on the first computation.
    """
    try:
        import jax

        jax.devices()
    except Exception as exc:  # ImportError, RuntimeError, jax's own assertions
        raise could_not_start("jax", exc, "JAX_PLATFORMS", "unset it, or install jax for that platform") from None
    return jax


def x64():
    """A context in which jax computes in float64, without changing the global setting."""
    jax = ready()

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

    return jax.jit(jax.value_and_grad(functools.partial(_cost.cost, jnp, network)))


def check_dtype(dtype) -> str:
    """Validate a dtype name for the jax source: ``"float64"`` or ``"float32"``."""
    return v.choice("dtype", dtype, DTYPES)


def device_data(problem: Problem, dtype: str = "float64"):
    """X and Y as jax arrays of ``dtype`` on jax's default device (a GPU when jax sees
    one), made once per problem and dtype and reused by every later call."""
    import jax.numpy as jnp

    def build():
        net = problem.network
        _resources.require_memory(_resources.problem_memory(net.sizes, problem.m, jax=True))
        return jnp.asarray(problem.X, dtype=dtype), jnp.asarray(problem.Y, dtype=dtype)

    return problem.prepared(("jax", dtype), build)


def value_and_gradient(problem: Problem, params: np.ndarray, dtype: str = "float64") -> tuple[float, np.ndarray]:
    """Cost and gradient from jax (problem and params already validated).

    ``dtype="float32"`` computes in single precision (much faster on most GPUs; about
    7 significant digits); the result is still returned as a float64 numpy array.
    """
    import jax.numpy as jnp

    dtype = check_dtype(dtype)
    _judge.check_magnitudes(problem, params)
    fn = _compiled(problem.network)
    # Inside the scoped x64 context float64 is available; float32 inputs keep every
    # operation in float32 (gradlab's constants are Python scalars, weakly typed).
    with x64():
        X, Y = device_data(problem, dtype)
        value, grad = fn(jnp.asarray(params, dtype=dtype), X, Y, problem.lam)
        # np.array copies: the caller owns the result and jax's buffer stays immutable.
        return float(value), np.array(grad, dtype=np.float64)


def gradient(problem: Problem, params: np.ndarray, dtype: str = "float64") -> np.ndarray:
    """jax's gradient of the shared cost (the ``"jax"`` source)."""
    return value_and_gradient(problem, params, dtype)[1]


def estimate(problem: Problem, params: np.ndarray, dtype: str = "float32"):
    """A reduced-precision gradient with a per-entry estimate of its rounding error.

    The estimate is the gradient's measured distance from the same jax computation in
    float64, plus one unit of the dtype's rounding (``eps * |g|``) so that an entry that
    happens to round exactly is not given a zero bound. Comparisons judge the
    reduced-precision source against this, not against the float64 round-off criterion.
    Returns a :class:`~gradlab.sources.numeric.NumericGradient` (no kinks: autodiff
    differentiates the branch it is on), the one shape every estimating source returns.
    """
    g = gradient(problem, params, dtype)
    reference = gradient(problem, params, "float64")
    eps = float(np.finfo(dtype).eps)
    none = np.full_like(g, np.nan)
    return NumericGradient(
        gradient=g, error=np.abs(g - reference) + eps * np.abs(reference), method=f"jax-{dtype}",
        step=np.zeros_like(g), kink=np.zeros(g.shape, dtype=bool), left=none, right=none.copy(),
        cost=value_and_gradient(problem, params, dtype)[0],
    )


# ------------------------------------------------------- second order: H v from jax


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled_hvp(network: Network):
    """jit of forward-over-reverse ``jvp(grad(J))`` for one network; arguments
    (params, v, X, Y, lam). jax differentiates the shared cost twice and never sees the
    R-operator."""
    import jax
    import jax.numpy as jnp

    grad = jax.grad(functools.partial(_cost.cost, jnp, network))

    def hvp(params, v, X, Y, lam):
        return jax.jvp(lambda p: grad(p, X, Y, lam), (params,), (v,))[1]

    return jax.jit(hvp)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled_holomorphic_grad(network: Network):
    """jit of ``grad(J, holomorphic=True)``: the gradient at complex parameters, for the
    complex-step Hessian-vector product (the shared cost chooses every branch on the real
    part, so it is analytic along an imaginary step)."""
    import jax
    import jax.numpy as jnp

    return jax.jit(jax.grad(functools.partial(_cost.cost, jnp, network), holomorphic=True))


def hvp(problem: Problem, params: np.ndarray, v: np.ndarray) -> np.ndarray:
    """jax's H v of the shared cost, forward-over-reverse, float64 (inputs validated)."""
    import jax.numpy as jnp

    _judge.check_magnitudes(problem, params)
    fn = _compiled_hvp(problem.network)
    with x64():
        X, Y = device_data(problem)
        out = fn(jnp.asarray(params, dtype="float64"), jnp.asarray(v, dtype="float64"), X, Y, problem.lam)
        return np.array(out, dtype=np.float64)


def complex_gradient(problem: Problem, params: np.ndarray) -> np.ndarray:
    """jax's gradient of the shared cost at complex ``params`` (complex128; validated
    inputs, real part checked for magnitude), as a new numpy array."""
    import jax.numpy as jnp

    _judge.check_magnitudes(problem, np.real(params))
    fn = _compiled_holomorphic_grad(problem.network)
    with x64():
        X, Y = device_data(problem)
        out = fn(jnp.asarray(params, dtype="complex128"), X, Y, problem.lam)
        return np.array(out, dtype=np.complex128)
