"""Hessian-vector product sources and their registry: ``H v`` of the regularised cost.

A Hessian-vector product source is a callable ``(problem, params, v) -> H v`` over the flat
parameter vector, like a gradient source with one more argument. The built-ins are
registered by name below, one line each; the command line's choices come from this table,
and a user's callable is accepted anywhere a name is.

The three witnesses share the cost and nothing else, as the gradient sources do:
``"backprop"`` runs Pearlmutter's R-operator by hand (:mod:`gradlab.sources.rop`), ``"jax"``
differentiates the shared cost twice (``jvp`` of ``grad``), and the numeric ones difference
an exact gradient along v (:mod:`gradlab.sources.hvp_numeric`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from gradlab import _usercode
from gradlab import _validate as validate
from gradlab._errors import GradlabError
from gradlab.network import Problem, check_problem
from gradlab.sources import autodiff, checked_output, hvp_numeric, rop
from gradlab.sources.hvp_numeric import HVP_METHODS, NumericHvp

__all__ = ["HvpSource", "HVP_SOURCES", "get_hvp_source", "hvp", "numeric_hvp", "check_direction", "DIRECTIONS",
           "random_directions", "direction_for"]


@dataclasses.dataclass(frozen=True)
class HvpSource:
    """A registered Hessian-vector product source.

    ``exact`` sources compute ``H v`` up to round-off; the others estimate it and provide
    ``estimate(problem, params, v)``, returning a
    :class:`~gradlab.sources.hvp_numeric.NumericHvp` (product, per-entry error estimate,
    kink entries; it unpacks as ``hvp, error``).
    """

    name: str
    hvp: Callable[[Problem, np.ndarray, np.ndarray], np.ndarray]
    exact: bool
    description: str
    estimate: Callable[[Problem, np.ndarray, np.ndarray], NumericHvp] | None = None


HVP_SOURCES: dict[str, HvpSource] = {}


def _register(source: HvpSource) -> None:
    HVP_SOURCES[source.name] = source


_register(HvpSource("backprop", rop.hvp, True, "Pearlmutter's R-operator: R-forward and R-backward passes (numpy)"))
_register(HvpSource("jax", autodiff.hvp, True, "jax.jvp of jax.grad of the shared cost (forward-over-reverse), float64"))
_register(HvpSource("numeric", hvp_numeric.hvp, False, "central differences of the backprop gradient along v", hvp_numeric.estimate))
_register(HvpSource("numeric-complex", hvp_numeric.hvp_complex, False, "complex step of jax's gradient along v (accurate to round-off)", hvp_numeric.estimate_complex))


def _choices() -> str:
    return "one of " + ", ".join(repr(s) for s in HVP_SOURCES) + " or a callable (problem, params, v)"


def get_hvp_source(source, name: str = "source") -> HvpSource:
    """Resolve a Hessian-vector product source name or a user's callable to an :class:`HvpSource`."""
    if isinstance(source, HvpSource):
        return source
    if isinstance(source, str):
        if source not in HVP_SOURCES:
            raise validate.fail(name, source, _choices())
        return HVP_SOURCES[source]
    if callable(source):
        call, label = _usercode.guarded(source, "source", name, 3, "(problem, params, v)")
        return HvpSource(label, call, True, "user-supplied Hessian-vector product")
    raise validate.fail(name, source, _choices())


def check_direction(network, v, name: str = "v") -> np.ndarray:
    """Validate a direction for ``network``: finite real numbers, length n_params; a float64 copy."""
    arr = validate.float_array(name, v, ndim=1)
    if arr.shape[0] != network.n_params:
        raise GradlabError(
            f"{name} must be a 1-D array of length {network.n_params} (one entry per parameter) for "
            f"sizes={network.sizes}; got {name} with length {arr.shape[0]}"
        )
    return arr


#: The directions the second-order reports accept by name; an array is accepted too.
DIRECTIONS = ("random", "ones")


def random_directions(n: int, seed, count: int = 2) -> list[np.ndarray]:
    """``count`` random unit vectors of length n from ``seed`` (an int or a Generator): the
    standard normal's direction, uniform on the sphere."""
    if not isinstance(seed, np.random.Generator):
        seed = np.random.default_rng(validate.integer("seed", seed, minimum=0))
    out = []
    for _ in range(count):
        x = seed.standard_normal(n)
        out.append(x / np.linalg.norm(x))
    return out


def direction_for(network, direction, seed, name: str = "direction") -> tuple[np.ndarray, str]:
    """The vector v a report uses, and a description of it: ``None`` or ``"random"`` -- a random
    unit vector from ``seed`` (the first draw); ``"ones"`` -- all ones; an array -- validated."""
    if direction is None or (isinstance(direction, str) and direction == "random"):
        label = seed if not isinstance(seed, np.random.Generator) else "a generator"
        return random_directions(network.n_params, seed, 1)[0], f"a random unit vector (seed {label})"
    if isinstance(direction, str):
        validate.choice(name, direction, DIRECTIONS)
        return np.ones(network.n_params), "all ones"
    return check_direction(network, direction, name), "given"


def _scale(v: np.ndarray) -> float:
    """The power of two nearest below max|v| (1 for v = 0): v divided by it has entries of
    order one, exactly (a power of two only changes the exponent), so no source's
    intermediates overflow or underflow for a huge or tiny v; H v is linear in v."""
    vmax = float(np.max(np.abs(v), initial=0.0))
    if vmax == 0.0:
        return 1.0
    return float(2.0 ** (np.frexp(vmax)[1] - 1))


def _finite_scaled(src: HvpSource, out: np.ndarray, scale: float, n: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        result = out * scale
    if not np.all(np.isfinite(result)):
        i = int(np.argwhere(~np.isfinite(result))[0, 0])
        raise GradlabError(f"H v overflows float64 for this v: entry {i} of source {src.name!r}'s product "
                           f"({out[i]:.3g} for v / {scale:.3g}) times {scale:.3g}; use a smaller v")
    return result


def hvp(problem: Problem, params, v, source="backprop") -> np.ndarray:
    """The Hessian of the regularised cost at ``params`` times the vector ``v``.

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
    v : array_like, shape (n_params,)
        The direction: finite real numbers, laid out like ``params`` (one entry per weight).
    source : {"backprop", "jax", "numeric", "numeric-complex"} or callable, default "backprop"
        A name from :data:`HVP_SOURCES`, or a callable ``(problem, params, v)`` returning
        the flat product.

    Returns
    -------
    numpy.ndarray
        ``H v``, a new float64 array; ``params`` and ``v`` are never written (each source
        gets copies).

    Raises
    ------
    GradlabError
        Bad problem, params, v or source; a source's output of the wrong shape or holding
        NaN/inf; a product that overflows float64.

    Notes
    -----
    The built-in sources are given ``v`` divided by a power of two near ``max|v|`` (exact)
    and their result is multiplied back, so the magnitude of v never overflows their
    intermediates. A user's callable gets ``v`` as given.

    Examples
    --------
    >>> import numpy as np, gradlab
    >>> p = gradlab.debug_problem(lam=1.0)
    >>> theta = gradlab.debug_init(p.network)
    >>> v = np.ones(p.network.n_params)
    >>> a, b = gradlab.hvp(p, theta, v), gradlab.hvp(p, theta, v, source="jax")
    >>> bool(np.linalg.norm(a - b) <= 1e-12 * np.linalg.norm(a))
    True
    """
    problem = check_problem(problem)
    net = problem.network
    theta = net.check_params(params)
    direction = check_direction(net, v)
    src = get_hvp_source(source)
    if src.name in HVP_SOURCES and HVP_SOURCES[src.name] is src:
        scale = _scale(direction)
        out = checked_output(src, src.hvp(problem, theta, direction / scale), net.n_params, "Hessian-vector product")
        return _finite_scaled(src, out, scale, net.n_params)
    return checked_output(src, src.hvp(problem, theta, direction), net.n_params, "Hessian-vector product")


def numeric_hvp(problem: Problem, params, v, *, method: str = "central", step=None) -> NumericHvp:
    """Finite-difference ``H v`` with a per-entry error estimate.

    Parameters
    ----------
    problem : Problem
    params, v : array_like, shape (n_params,)
    method : {"central", "complex"}, default "central"
        Central differences of back-propagation's gradient along v, or the complex step of
        jax's gradient (see :mod:`gradlab.sources.hvp_numeric`).
    step : float, optional
        The step h along v; default :func:`~gradlab.sources.hvp_numeric.default_step`.

    Returns
    -------
    NumericHvp
        ``.hvp``, ``.error`` (estimated absolute error per entry), ``.kink`` (entries not
        to be judged: all of them when the stencil crossed a relu kink), ``.step``.

    Raises
    ------
    GradlabError
        Bad problem, params, v, method or step.

    Examples
    --------
    >>> import numpy as np, gradlab
    >>> p = gradlab.debug_problem()
    >>> theta, v = gradlab.debug_init(p.network), np.ones(38)
    >>> r = gradlab.numeric_hvp(p, theta, v)
    >>> bool(np.all(np.abs(r.hvp - gradlab.hvp(p, theta, v)) <= 10 * r.error))
    True
    """
    problem = check_problem(problem)
    net = problem.network
    theta = net.check_params(params)
    direction = check_direction(net, v)
    method = validate.choice("method", method, HVP_METHODS)
    if step is not None:
        step = validate.real("step", step, minimum=0.0)
        if step == 0.0:
            raise validate.fail("step", step, "a positive number")
    return hvp_numeric.estimate_with(problem, theta, direction, method, step)
