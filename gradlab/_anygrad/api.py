"""The two front doors: :func:`check_function` and :func:`check_layer`."""

from __future__ import annotations

import inspect

import numpy as np

from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab._anygrad import engine
from gradlab._anygrad.arrays import Inputs, parameter_names
from gradlab._anygrad.calls import label
from gradlab._anygrad.cases import FunctionCase, LayerCase
from gradlab._anygrad.report import GradientReport

#: Random upstream gradients a layer is checked with by default: one would do for a
#: correct backward pass; several catch errors a single dout hides by chance (a wrong
#: entry whose dout entry happens to be small) and let a factor be fitted across them.
DEFAULT_DOUTS = 3


def _callable(name, fn, n_args: int, shape: str):
    if not callable(fn):
        raise v.fail(name, fn, "a callable")
    try:
        target = inspect.unwrap(fn)
    except ValueError:
        target = fn
    if inspect.isgeneratorfunction(target) or inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        raise GradlabError(f"{name} must be a function that returns its result; got {label(fn)}, a generator or "
                           "coroutine function (its body runs only when iterated or awaited)")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(*range(n_args))
    except TypeError:
        raise GradlabError(f"{name} must take {n_args} positional argument(s) {shape}; got {label(fn)}{sig}") from None


def _names(names, fn, count: int):
    if names is None:
        return parameter_names(fn, count)
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise v.fail("names", names, f"a sequence of {count} distinct strings, one per input")
    names = list(names)
    if len(names) != count or not all(isinstance(n, str) and n for n in names) or len(set(names)) != count:
        raise v.fail("names", names, f"a sequence of {count} distinct non-empty strings, one per input")
    return names


def _common(mode, against, seed):
    mode = v.choice("mode", mode, engine.MODES)
    if isinstance(against, str) or not hasattr(against, "__iter__"):
        raise v.fail("against", against, "a sequence of witness names from 'jax', 'numeric'")
    against = tuple(against)
    if not against or len(set(against)) != len(against) or any(a not in engine.AGAINST for a in against):
        raise v.fail("against", against, "distinct witness names from 'jax', 'numeric'")
    seed = v.integer("seed", seed, minimum=0)
    return mode, against, seed


def check_function(f, grad=None, *inputs, wrt=None, names=None, mode: str = "auto",
                   against=("jax", "numeric"), seed: int = 0) -> GradientReport:
    """Check the gradient of a scalar function of any inputs: who is wrong, where, and why.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returns a scalar -- or ``(value, gradients)`` when ``grad`` is None.
    grad : callable or None
        ``grad(*inputs)`` returns the gradient(s) with respect to the inputs named by
        ``wrt``: one array per input, in order (a single array when there is one).
    *inputs
        The point to check at. Float arrays are differentiated (by default); anything
        else -- labels, a settings dict, a regularisation strength -- passes through
        untouched. Nothing gradlab calls receives the caller's own objects: each call gets
        fresh copies.
    wrt : int, str or sequence of them, optional
        The inputs to differentiate, by position or by name (names come from ``f``'s
        signature, or ``names``). Default: every float array input. A float (not an
        array) may be named too.
    names : sequence of str, optional
        A name per input, for reports (default: ``f``'s parameter names).
    mode : {"auto", "full", "fast"}
        ``"full"`` compares every entry; ``"fast"`` random directions and bisection (for
        large inputs; never more evaluations than a full check); ``"auto"``: full up to
        :data:`gradlab._anygrad.engine.FULL_MODE_MAX_ENTRIES` entries.
    against : sequence of {"jax", "numeric"}, default ("jax", "numeric")
        The witnesses. jax is used whenever it can trace ``f`` (written against the array
        API, ``xp = array_namespace(x)``, or with ``jax.numpy``); when it cannot, the
        report says why in one line and judges with two numeric methods (central
        differences, and the complex step where ``f`` proves analytic, else Richardson).
    seed : int, default 0
        Seeds the random directions (complex-step trial, fast mode).

    Returns
    -------
    GradientReport
        ``.ok``, ``.findings`` (each naming the input by name and position, the wrong
        entries as multi-indices and their groups), ``.to_dict()``, ``str()``.

    Raises
    ------
    GradlabError
        Bad arguments; ``f`` returning something that is not a scalar.
    UserCodeError
        ``f`` or ``grad`` raised at the check point.

    Examples
    --------
    >>> import numpy as np, gradlab
    >>> def f(w, X, y):
    ...     r = X @ w - y
    ...     return 0.5 * r @ r, X.T @ r * 2          # the 2 is a bug
    >>> rng = np.random.default_rng(0)
    >>> report = gradlab.check_function(f, None, rng.normal(size=3), rng.normal(size=(5, 3)),
    ...                                 rng.normal(size=5), wrt="w", against=("numeric",))
    >>> report.ok, report.findings[0].kind, report.findings[0].input
    (False, 'constant_factor', 'w')
    """
    if grad is not None and not callable(grad):
        raise v.fail("grad", grad, "a callable or None (the inputs follow it: check_function(f, None, x, ...))")
    if not inputs:
        raise GradlabError("check_function needs at least one input after f and grad: "
                           "check_function(f, grad, x, ...); got no inputs")
    _callable("f", f, len(inputs), "(*inputs)")
    if grad is not None:
        _callable("grad", grad, len(inputs), "(*inputs), like f")
    mode, against, seed = _common(mode, against, seed)
    ins = Inputs(inputs, _names(names, f, len(inputs)), wrt, what=f"f {label(f)!r}")
    with _float64():
        case = FunctionCase(f, grad, ins)
        return engine.run(case, mode=mode, against=against, seed=seed, info={})


def check_layer(forward, backward, *inputs, wrt=None, dout=None, n_douts: int = DEFAULT_DOUTS, names=None,
                mode: str = "auto", against=("jax", "numeric"), seed: int = 0) -> GradientReport:
    """Check a layer's backward pass -- the vector-Jacobian product ``dout . J`` -- against its forward pass.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs) -> (out, cache)``, with ``out`` a float array.
    backward : callable
        ``backward(dout, cache) -> gradients``: one per differentiated input, in order (a
        single array when there is one).
    *inputs
        The point to check at; float arrays are differentiated by default, the rest (a
        ``conv_param`` dict, a mask, labels) passes through untouched.
    wrt : int, str or sequence of them, optional
        The inputs backward returns gradients for, by position or name (names from
        ``forward``'s signature, or ``names``). Default: every float array input.
    dout : array or sequence of arrays, optional
        Upstream gradient(s) of ``out``'s shape. Default: ``n_douts`` standard normal
        ones, seeded by ``seed``.
    n_douts : int, default 3
        How many random upstream gradients (when ``dout`` is not given).
    names, mode, against, seed
        As for :func:`check_function`.

    Returns
    -------
    GradientReport

    Raises
    ------
    GradlabError
        Bad arguments; ``forward`` not returning ``(out, cache)``.
    UserCodeError
        ``forward`` or ``backward`` raised at the check point.

    Examples
    --------
    >>> import numpy as np, gradlab
    >>> def forward(x, w):
    ...     return x @ w, (x, w)
    >>> def backward(dout, cache):
    ...     x, w = cache
    ...     return dout @ w.T, x.T @ dout
    >>> rng = np.random.default_rng(0)
    >>> gradlab.check_layer(forward, backward, rng.normal(size=(4, 3)), rng.normal(size=(3, 2))).ok
    True
    """
    if not inputs:
        raise GradlabError("check_layer needs at least one input after forward and backward: "
                           "check_layer(forward, backward, x, ...); got no inputs")
    _callable("forward", forward, len(inputs), "(*inputs)")
    _callable("backward", backward, 2, "(dout, cache)")
    mode, against, seed = _common(mode, against, seed)
    n_douts = v.integer("n_douts", n_douts, minimum=1)
    ins = Inputs(inputs, _names(names, forward, len(inputs)), wrt, what=f"forward {label(forward)!r}")
    douts = None
    rng = np.random.default_rng(seed)
    if dout is not None:
        douts = _douts(dout)
    with _float64():
        case = LayerCase(forward, backward, ins, douts=douts, n_douts=n_douts, rng=rng)
        return engine.run(case, mode=mode, against=against, seed=seed, info={})


def _float64():
    """The check computes in float64 throughout: code written with jax.numpy runs in jax's
    scoped x64 mode while it is checked (as the jax witness does), so its values are not
    float32 ones. Where jax has not been imported the user's code cannot be using it."""
    import contextlib
    import sys

    if "jax" not in sys.modules:
        return contextlib.nullcontext()
    from gradlab.sources.autodiff import x64

    return x64()


def _douts(dout):
    """One array, or a sequence of arrays of one shape, as a stack (checked against out later)."""
    if isinstance(dout, (list, tuple)) and dout and all(isinstance(d, np.ndarray) for d in dout):
        arrs = [v.float_array("dout", d, ndim=np.ndim(d)) for d in dout]
        if len({a.shape for a in arrs}) != 1:
            raise GradlabError(f"dout must be one array or arrays of one shape; got shapes {[a.shape for a in arrs]}")
        return np.stack(arrs)
    arr = v.float_array("dout", dout, ndim=np.ndim(dout))
    return arr[None]
