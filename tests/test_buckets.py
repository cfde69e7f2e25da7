"""The jax source computes small problems inside padded buckets: same numbers, few compiles."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradlab
from gradlab import _cost
from gradlab._judge import EXACT_NORM_RATIO, hvp_roundoff_floor, roundoff_floor
from gradlab.sources import autodiff
from gradlab.testing import networks, parameters, problems, problems_with_parameters

#: Bucketed and unbucketed jax compute the same float64 terms (the padding adds exact
#: zeros) in possibly another summation order: a few ulp per sum, far below this.
SAME_SUMS_RTOL = 1e-12

#: Networks (with their activation and m) whose buckets cross every edge: widths below,
#: at and above the smallest bucket, m below, at and above it, depth 2 to 4, each
#: activation. Few shapes, because the unbucketed side compiles once per shape (the
#: typical draw, a few units wide, is held against backprop below); hypothesis draws the
#: data, targets, lambda and weights freely.
EDGE_CASES = (
    ((1, 1), "sigmoid", 1),          # bucket (8, 8) x 16
    ((3, 9, 2), "tanh", 17),         # (8, 16, 8) x 32: past the first width and example buckets
    ((8, 1, 5, 8), "relu", 16),      # (8, 8, 8, 8) x 16: exactly at the bucket edges
)


@st.composite
def _edge_cases(draw):
    sizes, activation, m = draw(st.sampled_from(EDGE_CASES))
    net = gradlab.Network(sizes, activation)
    problem = draw(problems(st.just(net), min_examples=m, max_examples=m))
    return problem, draw(parameters(net))


def _same_sums(a, b, floor):
    """a and b agree to SAME_SUMS_RTOL (norm-wise) or entry by entry within the round-off floor."""
    diff = np.abs(a - b)
    return np.linalg.norm(a - b) <= SAME_SUMS_RTOL * np.linalg.norm(b) or bool(np.all(diff <= floor))


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(_edge_cases())
def test_property_bucketed_jax_equals_unbucketed_jax(case):
    problem, params = case
    Jb, gb = autodiff.value_and_gradient(problem, params)
    Ju, gu = autodiff.value_and_gradient(problem, params, bucketed=False)
    assert Jb == pytest.approx(Ju, rel=SAME_SUMS_RTOL, abs=1e-300)
    assert _same_sums(gb, gu, roundoff_floor(problem, params)), (problem, np.abs(gb - gu).max())


# Smooth activations only: jax on a CPU flushes subnormal numbers to zero (XLA's default),
# so at a relu kink a subnormal z (hypothesis draws them) is "off" for jax, bucketed or
# not, and "on" for numpy -- a difference of the backends at the kink, not of the
# buckets. relu's buckets are held against unbucketed jax above.
@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(problems_with_parameters(networks(min_layers=2, max_layers=4, activations=("sigmoid", "tanh"))))
def test_property_bucketed_jax_agrees_with_backprop(case):
    problem, params = case
    assert autodiff.bucket(problem.network, problem.m) is not None  # these draws are all bucketed
    report = gradlab.compare(problem, params, ("backprop", "jax"))
    assert report.ok, str(report)


@given(problems_with_parameters(networks(min_layers=2, max_layers=4, max_width=12,
                                         activations=("sigmoid", "tanh", "relu")), max_examples=20))
def test_property_padded_numpy_cost_equals_the_cost(case):
    # The padding's maths alone, in numpy: inert units, zero weights, masked entries and
    # the real m give the real network's cost.
    problem, params = case
    where = autodiff.bucket(problem.network, problem.m)
    M, sizes = where.examples, where.network.sizes
    m, n, K = problem.m, problem.network.n_inputs, problem.network.n_outputs
    X = np.zeros((M, sizes[0]))
    X[:m, :n] = problem.X
    Y = np.zeros((M, sizes[-1]))
    Y[:m, :K] = problem.Y
    mask = np.zeros_like(Y)
    mask[:m, :K] = 1.0
    padded = _cost.cost(np, where.network, where.pad(params, np.float64), X, Y, problem.lam, mask=mask, m=m)
    assert padded == pytest.approx(gradlab.cost(problem, params), rel=SAME_SUMS_RTOL, abs=1e-300)


def test_padded_hidden_units_are_inert_although_they_output_g_of_zero():
    # A sigmoid unit outputs g(0) = 0.5, not 0: only its zero outgoing weights keep it out.
    p = gradlab.debug_problem((3, 5, 3), 5, lam=2.0)
    params = gradlab.random_init(p.network, seed=3)
    where = autodiff.bucket(p.network, p.m)
    padded = where.pad(params, np.float64)
    _, acts = _cost.forward(np, where.network, padded, np.zeros((1, 8)))
    assert acts[1][0, 7] == 0.5
    t2 = _cost.unpack(where.network, padded)[1]
    assert np.all(t2[:, 6:] == 0.0) and np.all(t2[3:] == 0.0)
    np.testing.assert_allclose(autodiff.gradient(p, params), gradlab.gradient(p, params, "backprop"),
                               rtol=EXACT_NORM_RATIO, atol=1e-15)


@pytest.mark.parametrize("sizes, m, expected", [
    ((3, 5, 3), 7, ((8, 8, 8), 16)),
    ((1, 1), 1, ((8, 8), 16)),
    ((8, 8), 16, ((8, 8), 16)),
    ((9, 2), 17, ((16, 8), 32)),
    ((2, 33, 3), 100, ((8, 64, 8), 128)),
])
def test_bucket_rounds_widths_and_examples_up_to_powers_of_two(sizes, m, expected):
    b = autodiff.bucket(gradlab.Network(sizes, "tanh"), m)
    assert (b.network.sizes, b.examples) == expected
    assert b.network.activation == "tanh"


def test_big_problems_are_computed_at_their_own_shape():
    assert autodiff.bucket(gradlab.Network((400, 25, 10)), 5000) is None
    # and still exact
    p = gradlab.debug_problem((60, 30, 10), 300, lam=1.0)
    assert autodiff.bucket(p.network, p.m) is None
    params = gradlab.random_init(p.network, seed=0)
    g = gradlab.gradient(p, params, "jax")
    bp = gradlab.gradient(p, params, "backprop")
    assert np.linalg.norm(g - bp) <= EXACT_NORM_RATIO * np.linalg.norm(g + bp)


def test_bucket_index_puts_every_real_entry_in_place():
    net = gradlab.Network((2, 3, 1))
    b = autodiff.bucket(net, 4)
    params = np.arange(1.0, net.n_params + 1)
    padded = b.pad(params, np.float64)
    for real, pad in zip(net.unpack(params), b.network.unpack(padded)):
        rows, cols = real.shape
        np.testing.assert_array_equal(pad[:rows, :cols], real)
        assert np.count_nonzero(pad) == real.size
    np.testing.assert_array_equal(b.unpad(padded), params)


@pytest.mark.parametrize("kwargs, match", [
    (dict(network=(3, 5, 3), m=5), "network"),
    (dict(network=gradlab.Network((3, 5, 3)), m=0), "m"),
    (dict(network=gradlab.Network((3, 5, 3)), m=2.5), "m"),
])
def test_bucket_rejects_bad_input(kwargs, match):
    with pytest.raises(gradlab.GradlabError, match=match):
        autodiff.bucket(**kwargs)


def test_bucketed_must_be_a_flag():
    p = gradlab.debug_problem()
    with pytest.raises(gradlab.GradlabError, match="bucketed"):
        autodiff.gradient(p, gradlab.debug_init(p.network), bucketed="no")


def test_one_compile_serves_every_shape_in_a_bucket(jax_compiles):
    seen = jax_compiles
    first = gradlab.debug_problem((3, 5, 3), 5, lam=0.5)
    gradlab.gradient(first, gradlab.debug_init(first.network), "jax")  # compiles (8, 8, 8) x 16 at most once
    before = len(seen)
    for sizes, m, lam in (((2, 7, 4), 9, 0.0), ((8, 1, 8), 16, 3.0), ((1, 1, 1), 1, 1.0), ((6, 6, 6), 11, 0.1)):
        p = gradlab.debug_problem(sizes, m, lam)
        gradlab.gradient(p, gradlab.random_init(p.network, seed=1), "jax")
    assert len(seen) == before


def test_a_new_depth_is_a_new_compile(jax_compiles):
    seen = jax_compiles
    p = gradlab.debug_problem((3, 4, 4, 4, 4, 3), 5)  # depth 6: no other test draws it
    before = len(seen)
    gradlab.gradient(p, gradlab.debug_init(p.network), "jax")
    assert len(seen) == before + 1


# ------------------------------------------------------------- second order, complex step


@st.composite
def _edge_cases_with_direction(draw):
    problem, params = draw(_edge_cases())
    direction = draw(parameters(problem.network, max_weight=1.0))
    return problem, params, direction


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@given(_edge_cases_with_direction())
def test_property_bucketed_hvp_equals_unbucketed_hvp(case):
    problem, params, direction = case
    hb = autodiff.hvp(problem, params, direction)
    hu = autodiff.hvp(problem, params, direction, bucketed=False)
    assert _same_sums(hb, hu, hvp_roundoff_floor(problem, params, direction)), (problem, np.abs(hb - hu).max())


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@pytest.mark.parametrize("sizes, activation, m", EDGE_CASES)
def test_bucketed_complex_gradient_equals_unbucketed(sizes, activation, m):
    p = gradlab.debug_problem(gradlab.Network(sizes, activation), m, lam=0.5)
    params = gradlab.random_init(p.network, seed=2) + 1e-20j * gradlab.random_init(p.network, seed=3)
    gb = autodiff.complex_gradient(p, params)
    gu = autodiff.complex_gradient(p, params, bucketed=False)
    assert gb.dtype == np.complex128
    floor = roundoff_floor(p, params.real)
    assert _same_sums(gb.real, gu.real, floor)
    np.testing.assert_allclose(gb.imag, gu.imag, rtol=SAME_SUMS_RTOL, atol=1e-300 + 1e-20 * float(floor.max()))


def test_hvp_and_complex_gradient_take_bucketed_as_a_flag():
    p = gradlab.debug_problem()
    params = gradlab.debug_init(p.network)
    with pytest.raises(gradlab.GradlabError, match="bucketed"):
        autodiff.hvp(p, params, params, bucketed=1)
    with pytest.raises(gradlab.GradlabError, match="bucketed"):
        autodiff.complex_gradient(p, params.astype(complex), bucketed="yes")
