"""Hypothesis strategies and assertions for gradient checks in your own test suite.

Examples
--------
A property test you can paste into your suite::

    from hypothesis import given, settings
    from gradlab.testing import problems_with_parameters, assert_gradients_agree

    @settings(max_examples=200, deadline=None)
    @given(problems_with_parameters())
    def test_my_gradient_matches_jax(case):
        problem, params = case
        assert_gradients_agree(problem, params, sources=(my_gradient, "jax"))
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab.compare import compare
from gradlab.network import ACTIVATIONS, MAX_LAM, Network, Problem

__all__ = [
    "networks",
    "parameters",
    "problems",
    "problems_with_parameters",
    "assert_gradients_agree",
]

#: Weights drawn up to this magnitude saturate sigmoids (|z| of tens to hundreds), which
#: is where naive log(h) costs turn into inf and nan.
DEFAULT_MAX_WEIGHT = 30.0


def _pair(prefix: str, lo, hi, *, minimum: int) -> tuple[int, int]:
    lo = v.integer(f"min_{prefix}", lo, minimum=minimum)
    hi = v.integer(f"max_{prefix}", hi, minimum=minimum)
    if hi < lo:
        raise GradlabError(f"max_{prefix} must be >= min_{prefix}; got min_{prefix}={lo}, max_{prefix}={hi}")
    return lo, hi


def networks(*, min_layers: int = 2, max_layers: int = 4, min_width: int = 1, max_width: int = 8,
             activations=("sigmoid",)):
    """Strategy for :class:`~gradlab.Network` values.

    Parameters
    ----------
    min_layers, max_layers : int
        Number of layers, inputs and outputs included (at least 2).
    min_width, max_width : int
        Units per layer (at least 1).
    activations : sequence of str, default ("sigmoid",)
        Hidden activations to draw from, names from :data:`gradlab.ACTIVATIONS`.
    """
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
        Defaults to :func:`networks` ``()``.
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
