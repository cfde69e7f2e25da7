"""Hypothesis strategies and assertions for gradient checks in your own test suite.

The network strategies draw 3-layer networks (inputs, one hidden layer, outputs) unless
told otherwise, because that is the network most hand-written gradients are written for;
``networks(min_layers=2, max_layers=5)`` draws any depth from 2 to 5 layers.
:func:`shaped_inputs` draws the inputs of any function or layer, checked with
:func:`assert_function_gradients` and :func:`assert_layer_gradients`.

Examples
--------
A property test you can paste into your suite (``my_gradient`` is yours)::

    from hypothesis import given, settings
    from gradlab.testing import problems_with_parameters, assert_gradients_agree

    @settings(max_examples=200, deadline=None)
    @given(problems_with_parameters())
    def test_my_gradient_matches_jax(case):
        problem, params = case
        assert_gradients_agree(problem, params, sources=(my_gradient, "jax"))

For a gradient written for any depth::

    from gradlab.testing import networks
    @given(problems_with_parameters(networks(min_layers=2, max_layers=5)))
"""

from __future__ import annotations

import random

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab.check.function import check_function
from gradlab.check.layer import check_layer
from gradlab.compare import compare
from gradlab.network import ACTIVATIONS, MAX_LAM, Network, Problem

__all__ = [
    "networks",
    "parameters",
    "problems",
    "problems_with_parameters",
    "assert_gradients_agree",
    "float_arrays",
    "shaped_inputs",
    "assert_function_gradients",
    "assert_layer_gradients",
    "smallest_failure",
]

#: Weights drawn up to this magnitude saturate sigmoids (|z| of tens to hundreds), which
#: is where naive log(h) costs turn into inf and nan.
DEFAULT_MAX_WEIGHT = 30.0

#: Layers (inputs and outputs included) the strategies draw unless told otherwise: the
#: network most hand-written gradients are written for, so that a pasted property test
#: passes for a correct 3-layer gradient instead of failing on a 2-layer draw it was never
#: meant to handle.
DEFAULT_LAYERS = 3


def _pair(prefix: str, lo, hi, *, minimum: int) -> tuple[int, int]:
    lo = v.integer(f"min_{prefix}", lo, minimum=minimum)
    hi = v.integer(f"max_{prefix}", hi, minimum=minimum)
    if hi < lo:
        raise GradlabError(f"max_{prefix} must be >= min_{prefix}; got min_{prefix}={lo}, max_{prefix}={hi}")
    return lo, hi


def networks(*, min_layers: int = DEFAULT_LAYERS, max_layers: int | None = None, min_width: int = 1,
             max_width: int = 8, activations=("sigmoid",)):
    """Strategy for :class:`~gradlab.Network` values.

    Parameters
    ----------
    min_layers : int, default 3
        Fewest layers, inputs and outputs included (at least 2). The default, 3, is the
        network of a typical hand-written gradient: inputs, one hidden layer, outputs.
    max_layers : int, optional
        Most layers; defaults to ``max(min_layers, 3)``, so ``networks()`` draws 3-layer
        networks only and ``networks(min_layers=2, max_layers=5)`` any depth from 2 to 5.
    min_width, max_width : int
        Units per layer (at least 1).
    activations : sequence of str, default ("sigmoid",)
        Hidden activations to draw from, names from :data:`gradlab.ACTIVATIONS`.

    Raises
    ------
    GradlabError
        For bounds below their minimum or a maximum below its minimum, when the strategy
        is built (not when hypothesis first draws from it).

    Examples
    --------
    ::

        @given(problems_with_parameters(networks(min_layers=2, max_layers=5, max_width=4)))
        def test_any_depth(case): ...
    """
    if max_layers is None:
        # Only a valid min_layers gets a default partner; a bad one is reported by _pair.
        valid = isinstance(min_layers, (int, np.integer)) and not isinstance(min_layers, bool)
        max_layers = max(min_layers, DEFAULT_LAYERS) if valid else min_layers
    lo_l, hi_l = _pair("layers", min_layers, max_layers, minimum=2)
    lo_w, hi_w = _pair("width", min_width, max_width, minimum=1)
    if (isinstance(activations, str) or not hasattr(activations, "__iter__")
            or (isinstance(activations, np.ndarray) and activations.ndim != 1)):
        raise v.fail("activations", activations, "a non-empty sequence of " + ", ".join(map(repr, ACTIVATIONS)))
    activations = tuple(activations)
    if not activations:
        raise v.fail("activations", activations, "a non-empty sequence of " + ", ".join(map(repr, ACTIVATIONS)))
    # str(): numpy strings (from an array of names) drawn as the plain names.
    activations = tuple(str(v.choice("activations", a, ACTIVATIONS)) for a in activations)
    sizes = st.lists(st.integers(lo_w, hi_w), min_size=lo_l, max_size=hi_l)
    return st.builds(Network, sizes, st.sampled_from(activations))


def parameters(network: Network, *, max_weight: float = DEFAULT_MAX_WEIGHT):
    """Strategy for flat parameter vectors of ``network``, entries in ``[-max_weight, max_weight]``.

    Hypothesis favours boundary values, so large (saturating) weights appear often.
    """
    if not isinstance(network, Network):
        raise v.fail("network", network, "a gradlab.Network")
    max_weight = v.real("max_weight", max_weight, minimum=0.0)
    elements = st.floats(-max_weight, max_weight, allow_nan=False, allow_infinity=False)
    return hnp.arrays(np.float64, network.n_params, elements=elements)


def problems(
    network_strategy=None,
    *,
    min_examples: int = 1,
    max_examples: int = 10,
    max_lam: float = 10.0,
    max_input: float = 5.0,
    targets: str = "both",
):
    """Strategy for :class:`~gradlab.Problem` values: a network, data, labels and lambda.

    Parameters
    ----------
    network_strategy : strategy of Network, optional
        Defaults to :func:`networks` ``()``: 3-layer sigmoid networks.
    min_examples, max_examples : int
        Number of examples m.
    max_lam : float
        lambda is drawn from ``[0, max_lam]``.
    max_input : float
        Inputs are drawn from ``[-max_input, max_input]``.
    targets : {"labels", "matrix", "both"}
        Integer labels 0..K-1, a target matrix with entries in [0, 1], or either.
    """
    if network_strategy is None:
        network_strategy = networks()
    if not isinstance(network_strategy, st.SearchStrategy):
        # Checked now: otherwise the mistake surfaces only when hypothesis draws.
        raise v.fail("network_strategy", network_strategy,
                     "a hypothesis strategy of Network values (e.g. networks(...) or st.just(net)) or None")
    lo_m, hi_m = _pair("examples", min_examples, max_examples, minimum=1)
    max_lam = v.real("max_lam", max_lam, minimum=0.0, maximum=MAX_LAM)
    max_input = v.real("max_input", max_input, minimum=0.0)
    targets = v.choice("targets", targets, ("labels", "matrix", "both"))

    @st.composite
    def build(draw):
        net = draw(network_strategy)
        m = draw(st.integers(lo_m, hi_m))
        X = draw(hnp.arrays(np.float64, (m, net.n_inputs),
                            elements=st.floats(-max_input, max_input, allow_nan=False)))
        kind = targets if targets != "both" else draw(st.sampled_from(["labels", "matrix"]))
        if kind == "labels":
            y = draw(hnp.arrays(np.int64, m, elements=st.integers(0, net.n_outputs - 1)))
        else:
            y = draw(hnp.arrays(np.float64, (m, net.n_outputs), elements=st.floats(0.0, 1.0)))
        lam = draw(st.floats(0.0, max_lam, allow_nan=False))
        return Problem(net, X, y, lam)

    return build()


def problems_with_parameters(network_strategy=None, *, max_weight: float = DEFAULT_MAX_WEIGHT, **problem_kwargs):
    """Strategy for ``(problem, params)`` pairs; keyword arguments go to :func:`problems`."""
    max_weight = v.real("max_weight", max_weight, minimum=0.0)
    base = problems(network_strategy, **problem_kwargs)
    return base.flatmap(lambda p: st.tuples(st.just(p), parameters(p.network, max_weight=max_weight)))


def assert_gradients_agree(problem: Problem, params, sources=("backprop", "jax"), rtol: float | None = None) -> None:
    """Raise AssertionError, with the numbers, unless every pair of sources agrees.

    Parameters
    ----------
    problem : Problem
    params : array_like
    sources : sequence of str or callable
        Source names or your own gradient functions ``(problem, params) -> grad``.
    rtol : float, optional
        Override the tolerance on ``||a-b|| / ||a+b||`` for exact pairs (default
        :data:`gradlab.compare.EXACT_NORM_RATIO`). Pairs with ``"numeric"`` are always
        judged against the numeric error estimate.

    Raises
    ------
    AssertionError
        Names the source pair, the layer, the entry (row = unit, column = input,
        0 = bias), both values and the error.
    """
    # Checked up front: used only for exact pairs that disagree, a bad rtol would
    # otherwise pass unnoticed whenever they agree.
    rtol = None if rtol is None else v.real("rtol", rtol, minimum=0.0)
    report = compare(problem, params, sources)
    failures = []
    for pair in report.pairs:
        exact = pair.a not in report.errors and pair.b not in report.errors
        ok = pair.ok if (rtol is None or not exact) else pair.overall.norm_ratio <= rtol
        if ok:
            continue
        w = pair.worst
        failures.append(
            f"{pair.a} vs {pair.b} disagree (norm ratio {pair.overall.norm_ratio:.3e}; "
            f"criterion {pair.criterion if rtol is None or not exact else f'norm ratio <= {rtol:g}'}): "
            f"worst entry Theta{w['layer']}[{w['row']}, {w['column']}]"
            f"{' (bias)' if w['column'] == 0 else ''}: {pair.a}={w[pair.a]!r}, {pair.b}={w[pair.b]!r}, "
            f"abs error {w['abs_error']:.3e}, rel error {w['rel_error']:.3e}"
        )
    if failures:
        raise AssertionError(
            f"gradients disagree for {problem!r}:\n  " + "\n  ".join(failures)
        )


# --------------------------------------------------------------------------------------
# Any function, any layer: strategies for inputs and the assertions
# --------------------------------------------------------------------------------------

#: Entries pushed away from a kink (``away_from``) keep at least this distance by default:
#: a thousand central-difference steps (eps^(1/3) ~ 6e-6), so no stencil can cross it.
DEFAULT_MARGIN = 0.01


def _away(values, margin: float, lo: float, hi: float):
    """An element strategy's map: a value closer than ``margin`` to a kink moves to the
    nearer side at distance ``margin`` (kept inside [lo, hi])."""
    def push(x):
        for a in values:
            if abs(x - a) < margin:
                x = a + margin if (x >= a and a + margin <= hi) or a - margin < lo else a - margin
        return x
    return push


def _elements(min_value, max_value, away_from, margin):
    lo = v.real("min_value", min_value)
    hi = v.real("max_value", max_value)
    if hi < lo:
        raise GradlabError(f"max_value must be >= min_value; got min_value={lo:g}, max_value={hi:g}")
    margin = v.real("margin", margin, minimum=0.0)
    if away_from is None:
        kinks = ()
    else:
        raw = [away_from] if np.ndim(away_from) == 0 and not isinstance(away_from, (list, tuple)) else list(away_from)
        kinks = tuple(v.real("away_from", a) for a in raw)
        if any(a - margin < lo and a + margin > hi for a in kinks):
            raise GradlabError(f"[min_value, max_value] = [{lo:g}, {hi:g}] leaves no room {margin:g} away from "
                               f"away_from={away_from!r}")
    floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return floats.map(_away(kinks, margin, lo, hi)) if kinks else floats


def _shape(name, shape):
    if isinstance(shape, st.SearchStrategy):
        return shape
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise v.fail(name, shape, "a tuple of non-negative integers or a strategy of them")
    return st.just(tuple(int(d) for d in shape))


def float_arrays(shape, *, min_value: float = -2.0, max_value: float = 2.0, away_from=None,
                 margin: float = DEFAULT_MARGIN, unique: bool = False):
    """Strategy for float64 arrays of ``shape``, entries in ``[min_value, max_value]``.

    Parameters
    ----------
    shape : tuple of int, int, or a strategy of tuples
        e.g. ``(4, 3)``, or ``hypothesis.extra.numpy.array_shapes(max_side=5)``.
    min_value, max_value : float
    away_from : float or sequence of float, optional
        Kinks to keep entries away from (``0.0`` for relu): entries closer than
        ``margin`` are moved to that distance, so finite differences never cross them.
    margin : float
    unique : bool, default False
        No two entries equal (max pooling without ties).
    """
    elements = _elements(min_value, max_value, away_from, margin)
    if not isinstance(unique, (bool, np.bool_)):
        raise v.fail("unique", unique, "True or False")
    return hnp.arrays(np.float64, _shape("shape", shape), elements=elements, unique=bool(unique))


def shaped_inputs(*shapes, min_side: int = 1, max_side: int = 4, min_value: float = -2.0,
                  max_value: float = 2.0, away_from=None, margin: float = DEFAULT_MARGIN, unique: bool = False):
    """Strategy for tuples of float64 arrays whose shapes share named sizes.

    Each shape is a tuple of sizes: an int is that size, a string names a size drawn once
    from ``[min_side, max_side]`` and shared by every shape that uses it -- the way a
    layer's inputs fit together::

        shaped_inputs(("N", "D"), ("D", "M"), ("M",))     # affine: x, w, b

    Returns a strategy of tuples, one array per shape; hypothesis shrinks the sizes first,
    so a failing property reports the smallest failing shapes.
    """
    lo, hi = _pair("side", min_side, max_side, minimum=0)
    if not shapes:
        raise v.fail("shapes", shapes, "at least one shape (a tuple of ints and size names)")
    names = []
    for shape in shapes:
        if not isinstance(shape, (tuple, list)) or not all(
                isinstance(d, str) and d or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0)
                for d in shape):
            raise v.fail("shapes", shape, "a tuple of non-negative ints and size names (strings)")
        names += [d for d in shape if isinstance(d, str) and d not in names]
    elements = _elements(min_value, max_value, away_from, margin)

    @st.composite
    def build(draw):
        sizes = {n: draw(st.integers(lo, hi), label=n) for n in names}
        return tuple(draw(hnp.arrays(np.float64, tuple(sizes[d] if isinstance(d, str) else int(d) for d in shape),
                                     elements=elements, unique=bool(unique)))
                     for shape in shapes)

    return build()


def _shapes_line(inputs) -> str:
    parts = []
    for i, x in enumerate(inputs):
        if isinstance(x, np.ndarray):
            parts.append(f"input {i}: shape {x.shape}, {x.dtype}")
        else:
            parts.append(f"input {i}: {type(x).__name__} {x!r}"[:80])
    return "; ".join(parts)


def _failure(report, what: str, inputs) -> AssertionError:
    lines = [f"{what} is wrong at inputs of shapes [{_shapes_line(inputs)}]:"]
    for f in report.findings:
        if f.blame not in ("user", "function"):
            continue
        where = "" if f.input is None else f" {f.input} (input {f.position})"
        lines.append(f"  [{f.kind}]{where}: {f.sentence}")
        for val in f.values[:3]:
            nums = ", ".join(f"{k}={val[k]!r}" for k in ("yours", "expected", "before", "after", "first", "second")
                             if k in val)
            lines.append(f"      entry {list(val.get('entry', []))}: {nums}")
    lines += ["", "full report:", str(report)]
    return AssertionError("\n".join(lines))


def assert_function_gradients(f, grad=None, *inputs, **check_kwargs) -> None:
    """Raise AssertionError, with the numbers and the inputs' shapes, unless ``grad`` (or
    ``f``'s second result) is the gradient of ``f`` at ``inputs``.

    Keyword arguments go to :func:`gradlab.check_function` (``wrt``, ``against``, ``mode``,
    ``seed``, ``names``). Inside a hypothesis ``@given`` test the failing example is shrunk
    first, so the message names the smallest failing shapes.

    Examples
    --------
    ::

        @given(shaped_inputs(("N", "C")), st.data())
        def test_softmax_loss(inputs, data):
            (x,) = inputs
            y = data.draw(hnp.arrays(np.int64, x.shape[0], elements=st.integers(0, x.shape[1] - 1)))
            assert_function_gradients(softmax_loss, None, x, y, wrt="x")
    """
    report = check_function(f, grad, *inputs, **check_kwargs)
    if not report.ok:
        raise _failure(report, "the gradient of " + report.info["function"], inputs)


def assert_layer_gradients(forward, backward, *inputs, **check_kwargs) -> None:
    """Raise AssertionError, with the numbers and the inputs' shapes, unless ``backward``
    is the vector-Jacobian product of ``forward`` at ``inputs``.

    Keyword arguments go to :func:`gradlab.check_layer` (``wrt``, ``dout``, ``n_douts``,
    ``against``, ``mode``, ``seed``, ``names``).

    Examples
    --------
    ::

        @given(shaped_inputs(("N", "D"), ("D", "M"), ("M",)))
        def test_affine(inputs):
            assert_layer_gradients(affine_forward, affine_backward, *inputs)
    """
    report = check_layer(forward, backward, *inputs, **check_kwargs)
    if not report.ok:
        raise _failure(report, "the backward pass " + report.info["function"], inputs)


def smallest_failure(check, strategy, *, max_examples: int = 100, seed: int = 0):
    """Search ``strategy`` for inputs where ``check(*inputs)`` fails; shrink them to the smallest.

    Parameters
    ----------
    check : callable
        ``check(*inputs) -> report`` (e.g. ``lambda *ins: gradlab.check_layer(fw, bw, *ins)``).
    strategy : hypothesis strategy of tuples
        e.g. :func:`shaped_inputs` ``(...)``.
    max_examples : int, default 100
    seed : int, default 0
        Seeds hypothesis's own choices, so the search is repeatable.

    Returns
    -------
    (inputs, report) or None
        The smallest failing inputs hypothesis found and the report there; None when every
        example passed.
    """
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis.errors import NoSuchExample

    if not callable(check):
        raise v.fail("check", check, "a callable returning a report")
    if not isinstance(strategy, st.SearchStrategy):
        raise v.fail("strategy", strategy, "a hypothesis strategy of input tuples")
    max_examples = v.integer("max_examples", max_examples, minimum=1)
    seed = v.integer("seed", seed, minimum=0)
    cfg = settings(max_examples=max_examples, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    try:
        inputs = find(strategy, lambda ins: not check(*ins).ok, settings=cfg, random=random.Random(seed))
    except NoSuchExample:
        return None
    return inputs, check(*inputs)
