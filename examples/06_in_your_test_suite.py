"""Use gradlab.testing in your own property tests: your gradient against jax, on many networks.

`my_gradient` below stands for the back-propagation you wrote yourself, in the seed
program's style (one example at a time, m outer products). `my_buggy_gradient` is the
same with a classic slip: it regularises the bias column too. The property test with
gradlab's strategies passes for the first and, for the second, hypothesis finds and
shrinks a counter-example while gradlab's assertion names the entry and the numbers.

Run the tests with pytest:      python -m pytest examples/06_in_your_test_suite.py
or run this file directly:      python examples/06_in_your_test_suite.py
(directly, it runs the passing test through pytest.main, then shows the buggy gradient
being caught).
"""

import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab import Network
from gradlab.testing import assert_gradients_agree, networks, problems, problems_with_parameters

# Few examples so that this file runs in seconds; use 200+ in a real suite.
SETTINGS = settings(max_examples=20, deadline=None, database=None)
# jax compiles its gradient once per network shape and number of examples m (a fraction
# of a second each), so the properties that call jax draw from a few shapes with a fixed
# m: a handful of compilations instead of one per example -- and shrinking, which tries
# many cases, compiles nothing new. Weights, inputs, targets and lambda still vary freely.
FEW_SHAPES = st.sampled_from([Network(s) for s in ((2, 3, 2), (3, 4, 2), (2, 3, 3, 2))])
JAX_M = 4
# Against gradlab's own back-propagation (no compilation) any shape is cheap: here every
# depth from 2 to 4 layers (gradlab.testing draws 3-layer networks unless told otherwise).
ANY_DEPTH = networks(min_layers=2, max_layers=4, max_width=4)


def _sigmoid(z):
    # Written the way a user would; clipping keeps exp finite for the saturating weights
    # the strategies draw on purpose.
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def my_gradient(problem, params, regularise_bias=False):
    """A user's back-propagation, one example at a time (the seed program's loop)."""
    thetas = problem.network.unpack(params)
    grads = [np.zeros_like(t) for t in thetas]
    for x, y in zip(problem.X, problem.Y):
        acts = [np.concatenate(([1.0], x))]
        for theta in thetas:
            acts.append(np.concatenate(([1.0], _sigmoid(theta @ acts[-1]))))
        delta = acts[-1][1:] - y
        for layer in range(len(thetas) - 1, -1, -1):
            grads[layer] += np.outer(delta, acts[layer])
            if layer:
                a = acts[layer][1:]
                delta = (thetas[layer][:, 1:].T @ delta) * a * (1.0 - a)
    m, lam = problem.m, problem.lam
    for g, theta in zip(grads, thetas):
        g /= m
        first = 0 if regularise_bias else 1  # the bias column must not be regularised
        g[:, first:] += lam / m * theta[:, first:]
    return np.concatenate([g.ravel() for g in grads])


def my_buggy_gradient(problem, params):
    """The same, but regularising the bias column as well."""
    return my_gradient(problem, params, regularise_bias=True)


@SETTINGS
@given(problems_with_parameters(FEW_SHAPES, max_weight=5.0, min_examples=JAX_M, max_examples=JAX_M, max_lam=3.0))
def test_my_gradient_matches_jax(case):
    problem, params = case
    assert_gradients_agree(problem, params, sources=(my_gradient, "jax"))


@SETTINGS
@given(problems_with_parameters(ANY_DEPTH, max_weight=5.0, max_lam=3.0))
def test_my_gradient_matches_backprop_at_any_depth(case):
    problem, params = case
    assert_gradients_agree(problem, params, sources=(my_gradient, "backprop"))


@SETTINGS
@given(problems(ANY_DEPTH, max_examples=4, targets="labels"))
def test_my_gradient_matches_backprop_at_the_debug_weights(problem):
    from gradlab import debug_init

    assert_gradients_agree(problem, debug_init(problem.network), sources=(my_gradient, "backprop"))


# Not collected by pytest (no test_ prefix): it is expected to fail, and main() shows how.
@SETTINGS
@given(problems_with_parameters(FEW_SHAPES, max_weight=5.0, min_examples=JAX_M, max_examples=JAX_M, max_lam=3.0))
def check_my_buggy_gradient(case):
    problem, params = case
    assert_gradients_agree(problem, params, sources=(my_buggy_gradient, "jax"))


def main() -> int:
    import pytest

    import gradlab

    problem = gradlab.debug_problem((3, 5, 3), lam=1.0)
    params = gradlab.debug_init(problem.network)
    mine, jax_grad = my_gradient(problem, params), gradlab.gradient(problem, params, "jax")
    print(f"== one case by hand, {problem!r}")
    print(f"my_gradient[:3] = {mine[:3]}")
    print(f"jax[:3]         = {jax_grad[:3]}")
    print(f"max |my_gradient - jax| = {np.abs(mine - jax_grad).max():.3e}\n")

    print("== pytest on this file's tests (your gradient vs jax and vs gradlab's backprop)", flush=True)
    # --assert=plain: hypothesis is already imported here, so pytest could not rewrite it.
    status = pytest.main([__file__, "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--assert=plain"])
    print(f"pytest exit status: {int(status)}")
    if status != 0:
        return 1

    print("\n== the same property with a gradient that also regularises the bias column")
    try:
        check_my_buggy_gradient()
    except AssertionError as exc:
        print("caught, as it should be. gradlab's message for the shrunk counter-example:")
        print(str(exc).split("\n\nFalsifying")[0])
        return 0
    print("NOT caught: the property should have failed")
    return 1


if __name__ == "__main__":
    sys.exit(main())
