"""The ``"jax"`` source: ``jax.value_and_grad`` of the shared cost, in float64.

jax traces :func:`gradlab._cost.cost` with ``xp = jax.numpy`` -- the very function
numpy evaluates for the other sources -- and never sees the hand-written deltas.

float64 without surprises: jax computes in float32 unless x64 is enabled. gradlab
enables it only inside a scoped context (``jax.enable_x64``) around its own calls, so a
user's jax code outside gradlab keeps whatever setting the user chose.

jax is imported on first use, so importing gradlab (and ``gradlab --help``) stays fast.

Compile once, check many shapes. jit compiles one function per array shape, and a
compile costs 0.3-0.8 s on a CPU, far more than the gradient of a small network: a
property-based suite drawing a new network shape in every example would spend nearly
all its time compiling. So a small problem is computed inside a *bucket*: every layer
width rounded up to a power of two (at least :data:`MIN_WIDTH`) and the number of
examples too (at least :data:`MIN_EXAMPLES`). The padding is inert:

* padded inputs are zero columns of X, and every padded weight (rows and columns of the
  Theta matrices outside the real ones) is zero, so a padded hidden unit, which outputs
  g(0) (0.5 for the sigmoid), reaches no real unit; zero weights add nothing to the
  regularisation's sum of squares;
* padded output units and padded examples are masked out of the cross-entropy sum, and
  ``1/m`` and ``lam/(2m)`` use the real m (:func:`gradlab._cost.cost`'s ``mask`` and ``m``);
* the gradient of the padded entries is discarded.

So the real entries get exactly the cost and gradient of the real network: the same
terms, with exact zeros added, summed possibly in another order (a difference of
round-off). Depth is not padded (a deeper network is a different function): one compile
per depth, activation, dtype and bucket. A problem whose bucket would hold more than
:data:`MAX_BUCKETED_WORK` weight-example products is computed at its own shape: there
a compile is small beside the gradients it serves, and padding could double each of
them.

Warm re-runs (opt-in). jax can keep compiled functions on disk (its persistent
compilation cache), so that a new process -- the next ``pytest`` run of a suite -- loads
them instead of compiling: a bucket's compile of about 0.5 s becomes a load of about
0.03 s on a CPU. With buckets a property suite compiles only a few functions, so this
saves about a second a run, and jax's cache is a setting of the whole process (it would
keep the user's own jax functions too, in gradlab's folder): it is off unless asked for.
``GRADLAB_JAX_CACHE=on`` uses ``$XDG_CACHE_HOME/gradlab/jax`` (``~/.cache/gradlab/jax``),
``GRADLAB_JAX_CACHE=/some/folder`` that folder; a cache the process configured itself
(``JAX_COMPILATION_CACHE_DIR``) is left alone. The folder must be the user's own and
writable by nobody else (jax runs what it finds there); otherwise the cache stays off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import warnings
from pathlib import Path

import numpy as np

from gradlab import _cost, _judge, _resources
from gradlab import _validate as v
from gradlab._errors import could_not_start
from gradlab.network import Network, Problem
from gradlab.sources.numeric import NumericGradient

__all__ = ["DTYPES", "CACHE_ENV", "cache_folder", "MIN_WIDTH", "MIN_EXAMPLES", "MAX_BUCKETED_WORK", "Bucket", "bucket",
           "ready", "x64", "check_dtype", "device_data", "gradient", "value_and_gradient", "estimate", "hvp",
           "complex_gradient"]

# Compiled functions are kept per (padded) network; jit itself re-specialises per data
# shape and dtype.
_CACHE_SIZE = 64

#: Smallest bucket for a layer width: the widths a property test draws (hypothesis's
#: networks go up to 8 units by default) all share one bucket, so a suite compiles once
#: per depth. The padded work of an 8-wide layer is a few hundred multiplications.
MIN_WIDTH = 8
#: Smallest bucket for the number of examples (gradlab.testing draws up to 10).
MIN_EXAMPLES = 16
#: Largest bucket computed padded, in weights x examples (the padded network's weight
#: count times its padded m). 2**18 is a gradient of about 1.5 million
#: multiply-adds, well under a millisecond on a CPU and close to jax's own dispatch
#: time, while a compile takes 0.3-0.8 s; above it a problem gets its own compile.
MAX_BUCKETED_WORK = 2**18

#: Precisions the jax source computes in; float64 is the default everywhere in gradlab.
DTYPES = ("float64", "float32")


#: Environment variable naming the folder of jax's persistent compilation cache, or "off".
CACHE_ENV = "GRADLAB_JAX_CACHE"
_OFF = ("", "off", "0", "no", "false", "none")
_ON = ("on", "1", "yes", "true")
#: Compiles shorter than this are not written to disk: jax's eager operations compile in
#: milliseconds and would fill the folder with entries that save nothing, while the
#: cost's compiles take 0.1-3 s on a CPU.
CACHE_MIN_COMPILE_S = 0.1
#: jax's own default for that threshold (a user who changed it keeps theirs).
_JAX_DEFAULT_MIN_COMPILE_S = 1.0
#: jax warns when it cannot read or write an entry (another process writing the same entry
#: at that moment, a full disk): it then compiles as if there were no cache. A test suite
#: run with warnings as errors must not fail on that.
_CACHE_WARNINGS = r"Error (reading|writing) persistent compilation cache"


def cache_folder() -> str | None:
    """The folder gradlab gives jax's persistent compilation cache, or None (cache off).

    ``GRADLAB_JAX_CACHE`` unset or "off": None. "on": ``$XDG_CACHE_HOME/gradlab/jax``,
    else ``~/.cache/gradlab/jax``. Anything else names the folder. It is created (mode
    0700) when missing. None, too, when it cannot be created, is not writable, or belongs
    to someone else or is writable by others: jax loads and runs compiled code from that
    folder, so it must be trusted.

    Returns
    -------
    str or None
    """
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value.lower() in _ON:
        base = os.environ.get("XDG_CACHE_HOME", "").strip()
        try:
            path = (Path(base) if base else Path.home() / ".cache") / "gradlab" / "jax"
        except RuntimeError:  # no home directory
            return None
    else:
        path = Path(value).expanduser().absolute()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
    except (OSError, RuntimeError):  # RuntimeError: no home directory to expand
        return None
    if not os.access(path, os.W_OK | os.X_OK) or st.st_mode & 0o022:
        return None
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return None
    return str(path)


def _use_disk_cache(jax) -> None:
    """Point jax's persistent compilation cache at :func:`cache_folder` unless the process chose one."""
    if jax.config.jax_compilation_cache_dir is not None:
        return  # the user's own cache (JAX_COMPILATION_CACHE_DIR or jax.config) wins
    folder = cache_folder()
    if folder is None:
        return
    jax.config.update("jax_compilation_cache_dir", folder)
    if jax.config.jax_persistent_cache_min_compile_time_secs == _JAX_DEFAULT_MIN_COMPILE_S:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_S)


@contextlib.contextmanager
def _cache_quiet():
    """jax's warnings about an unreadable cache entry silenced (it compiles instead)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_CACHE_WARNINGS)
        yield


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
    _use_disk_cache(jax)
    return jax


@contextlib.contextmanager
def x64():
    """A context in which jax computes in float64, without changing the global setting.

    Inside it, jax's warnings about an unreadable persistent-cache entry are silenced
    (jax then compiles as if there were no cache).
    """
    with _x64_scope(), _cache_quiet():
        yield


def _x64_scope():
    """jax's scoped float64 context, whichever this jax version offers."""
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


#: XLA options for a bucket's compile. Its problems are small, so a call costs about
#: jax's dispatch time however well the code is optimised, while the compile is what a
#: property suite waits for: without LLVM's optimisation passes it takes about half as
#: long on a CPU (measured: 2.6 s instead of 4.2-5.4 s for five buckets). The arithmetic
#: is the same IEEE float64 operations either way.
_BUCKET_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def _cost_of(network: Network):
    """The shared cost of ``network`` traced with jax.numpy; arguments (params, X, Y, lam, mask, m).

    ``mask`` and ``m`` are None for a problem at its own shape (jit specialises on that).
    """
    import jax.numpy as jnp

    # Named so that jax's compile events and logs say whose function compiled.
    def gradlab_cost(params, X, Y, lam, mask, m):
        return _cost.cost(jnp, network, params, X, Y, lam, mask=mask, m=m)

    return gradlab_cost


def _jit(fn, small: bool):
    """jax.jit, with :data:`_BUCKET_COMPILER_OPTIONS` for a bucket (``small``)."""
    import jax

    if small:
        try:
            return jax.jit(fn, compiler_options=_BUCKET_COMPILER_OPTIONS)
        except TypeError:  # pragma: no cover - a jax without per-function compiler options
            pass
    return jax.jit(fn)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled(network: Network, small: bool = False):
    """jit(value_and_grad(J)) for one network; arguments (params, X, Y, lam, mask, m)."""
    import jax

    return _jit(jax.value_and_grad(_cost_of(network)), small)


def _round_up(n: int, minimum: int) -> int:
    """The smallest power of two >= n and >= minimum."""
    return max(minimum, 1 << (n - 1).bit_length())


@dataclasses.dataclass(frozen=True, eq=False)
class Bucket:
    """A problem's place inside the padded shape it is computed in.

    Attributes
    ----------
    network : Network
        The padded network (same depth and activation, every width rounded up).
    examples : int
        The padded number of examples.
    index : numpy.ndarray
        For each entry of the real flat parameter vector, its position in the padded one.
    """

    network: Network
    examples: int
    index: np.ndarray

    def pad(self, params: np.ndarray, dtype) -> np.ndarray:
        """The padded parameter vector: ``params`` in place, zero everywhere else."""
        full = np.zeros(self.network.n_params, dtype=dtype)
        full[self.index] = params
        return full

    def unpad(self, grad, dtype=np.float64) -> np.ndarray:
        """The real entries of a padded gradient (or H v), as a new array of ``dtype``."""
        return np.asarray(grad, dtype=dtype)[self.index]


@functools.lru_cache(maxsize=256)
def _bucket(network: Network, m: int):
    sizes = tuple(_round_up(s, MIN_WIDTH) for s in network.sizes)
    M = _round_up(m, MIN_EXAMPLES)
    padded = Network(sizes, network.activation)
    if padded.n_params * M > MAX_BUCKETED_WORK:
        return None
    index = np.concatenate([
        start + (np.arange(rows)[:, None] * cols_p + np.arange(cols)[None, :]).ravel()
        for start, (rows, cols), (_, cols_p) in zip(padded.offsets, network.shapes, padded.shapes)
    ])
    index.setflags(write=False)
    return Bucket(padded, M, index)


def bucket(network: Network, m: int) -> Bucket | None:
    """The bucket the jax source computes ``network`` with ``m`` examples in, or None.

    None when the padded problem would hold more than :data:`MAX_BUCKETED_WORK` weights x
    examples: then it is computed at its own shape.

    Parameters
    ----------
    network : Network
    m : int
        Number of examples, at least 1.

    Returns
    -------
    Bucket or None

    Examples
    --------
    >>> b = bucket(Network((3, 5, 3)), 7)
    >>> b.network.sizes, b.examples
    ((8, 8, 8), 16)
    """
    if not isinstance(network, Network):
        raise v.fail("network", network, "a gradlab.Network")
    return _bucket(network, v.integer("m", m, minimum=1))


def check_dtype(dtype) -> str:
    """Validate a dtype name for the jax source: ``"float64"`` or ``"float32"``."""
    return v.choice("dtype", dtype, DTYPES)


def _on_device(array: np.ndarray):
    """A numpy array on jax's default device, as it is (the caller chose the dtype).

    ``jax.device_put``, not ``jnp.asarray``: this jax compiles a small conversion function
    for every new shape ``jnp.asarray`` meets (tens of milliseconds each on a CPU), which
    a property test drawing many shapes would pay again and again.
    """
    import jax

    return jax.device_put(array)


def device_data(problem: Problem, dtype: str = "float64"):
    """X and Y as jax arrays of ``dtype`` on jax's default device (a GPU when jax sees
    one), made once per problem and dtype and reused by every later call (call it inside
    :func:`x64` for float64)."""
    def build():
        net = problem.network
        _resources.require_memory(_resources.problem_memory(net.sizes, problem.m, jax=True))
        return (_on_device(np.asarray(problem.X, dtype=dtype)), _on_device(np.asarray(problem.Y, dtype=dtype)))

    return problem.prepared(("jax", dtype), build)


def _padded_data(problem: Problem, where: Bucket, dtype: str):
    """X, Y and the mask padded to the bucket, as device arrays, once per problem and dtype."""
    def build():
        M, sizes = where.examples, where.network.sizes
        m, n, K = problem.m, problem.network.n_inputs, problem.network.n_outputs
        X = np.zeros((M, sizes[0]), dtype=dtype)
        X[:m, :n] = problem.X
        Y = np.zeros((M, sizes[-1]), dtype=dtype)
        Y[:m, :K] = problem.Y
        mask = np.zeros((M, sizes[-1]), dtype=dtype)
        mask[:m, :K] = 1.0
        return _on_device(X), _on_device(Y), _on_device(mask)

    return problem.prepared(("jax", dtype, "bucket"), build)


def _where(problem: Problem, bucketed) -> Bucket | None:
    """The problem's bucket, or None to compute it at its own shape (``bucketed`` checked)."""
    return bucket(problem.network, problem.m) if v.flag("bucketed", bucketed) else None


def value_and_gradient(problem: Problem, params: np.ndarray, dtype: str = "float64", *,
                       bucketed: bool = True) -> tuple[float, np.ndarray]:
    """Cost and gradient from jax (problem and params already validated).

    ``dtype="float32"`` computes in single precision (much faster on most GPUs; about
    7 significant digits); the result is still returned as a float64 numpy array.
    ``bucketed=False`` computes a small problem at its own shape instead of inside its
    :func:`bucket` (the same numbers up to round-off; one compile per shape).
    """
    dtype = check_dtype(dtype)
    where = _where(problem, bucketed)
    _judge.check_magnitudes(problem, params)
    # Inside the scoped x64 context float64 is available; float32 inputs keep every
    # operation in float32 (gradlab's constants are Python scalars, weakly typed).
    with x64():
        if where is None:
            X, Y = device_data(problem, dtype)
            value, grad = _compiled(problem.network)(_on_device(np.asarray(params, dtype=dtype)), X, Y, problem.lam,
                                                     None, None)
            # np.array copies: the caller owns the result and jax's buffer stays immutable.
            return float(value), np.array(grad, dtype=np.float64)
        X, Y, mask = _padded_data(problem, where, dtype)
        value, grad = _compiled(where.network, small=True)(_on_device(where.pad(params, dtype)), X, Y, problem.lam, mask,
                                               float(problem.m))
        return float(value), where.unpad(grad)


def gradient(problem: Problem, params: np.ndarray, dtype: str = "float64", *, bucketed: bool = True) -> np.ndarray:
    """jax's gradient of the shared cost (the ``"jax"`` source)."""
    return value_and_gradient(problem, params, dtype, bucketed=bucketed)[1]


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
def _compiled_hvp(network: Network, small: bool = False):
    """jit of forward-over-reverse ``jvp(grad(J))`` for one network; arguments
    (params, v, X, Y, lam, mask, m). jax differentiates the shared cost twice and never
    sees the R-operator."""
    import jax

    grad = jax.grad(_cost_of(network))

    def hvp(params, v, X, Y, lam, mask, m):
        return jax.jvp(lambda p: grad(p, X, Y, lam, mask, m), (params,), (v,))[1]

    return _jit(hvp, small)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compiled_holomorphic_grad(network: Network, small: bool = False):
    """jit of ``grad(J, holomorphic=True)``: the gradient at complex parameters, for the
    complex-step Hessian-vector product (the shared cost chooses every branch on the real
    part, so it is analytic along an imaginary step)."""
    import jax

    return _jit(jax.grad(_cost_of(network), holomorphic=True), small)


def hvp(problem: Problem, params: np.ndarray, v: np.ndarray, *, bucketed: bool = True) -> np.ndarray:
    """jax's H v of the shared cost, forward-over-reverse, float64 (inputs validated).

    Computed inside the problem's :func:`bucket` unless ``bucketed=False``: ``v`` padded
    with zeros, so the real entries of the padded H v are H v itself (the padded cost
    equals the real one for every value of the real parameters while the padding is
    zero, so all its derivatives in them agree).
    """
    where = _where(problem, bucketed)
    _judge.check_magnitudes(problem, params)
    with x64():
        if where is None:
            X, Y = device_data(problem)
            out = _compiled_hvp(problem.network)(_on_device(np.asarray(params, dtype=np.float64)),
                                                 _on_device(np.asarray(v, dtype=np.float64)), X, Y, problem.lam,
                                                 None, None)
            return np.array(out, dtype=np.float64)
        X, Y, mask = _padded_data(problem, where, "float64")
        out = _compiled_hvp(where.network, small=True)(_on_device(where.pad(params, np.float64)),
                                                       _on_device(where.pad(v, np.float64)), X, Y, problem.lam,
                                                       mask, float(problem.m))
        return where.unpad(out)


def complex_gradient(problem: Problem, params: np.ndarray, *, bucketed: bool = True) -> np.ndarray:
    """jax's gradient of the shared cost at complex ``params`` (complex128; validated
    inputs, real part checked for magnitude), as a new numpy array; inside the problem's
    :func:`bucket` unless ``bucketed=False`` (the padding is zero, real and imaginary)."""
    where = _where(problem, bucketed)
    _judge.check_magnitudes(problem, np.real(params))
    with x64():
        if where is None:
            X, Y = device_data(problem)
            out = _compiled_holomorphic_grad(problem.network)(_on_device(np.asarray(params, dtype=np.complex128)),
                                                              X, Y, problem.lam, None, None)
            return np.array(out, dtype=np.complex128)
        X, Y, mask = _padded_data(problem, where, "float64")
        out = _compiled_holomorphic_grad(where.network, small=True)(
            _on_device(where.pad(params, np.complex128)), X, Y, problem.lam, mask, float(problem.m))
        return where.unpad(out, np.complex128)
