"""gradlab.testing for any function and any layer: strategies of inputs, the assertions, and
the search for the smallest failing shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradlab
from gradlab.testing import (
    assert_function_gradients,
    assert_layer_gradients,
    float_arrays,
    shaped_inputs,
    smallest_failure,
)

from handwritten import make_affine, make_relu, make_softmax_loss

FEW = settings(max_examples=20, deadline=None, database=None)


@FEW
@given(shaped_inputs(("N", "D"), ("D", "M"), ("M",), (7,), min_side=2, max_side=3))
def test_shaped_inputs_share_named_sizes(arrays):
    x, w, b, seven = arrays
    assert x.shape[1] == w.shape[0] and w.shape[1] == b.shape[0] and seven.shape == (7,)
    assert all(2 <= d <= 3 for d in (*x.shape, *w.shape))
    assert all(a.dtype == np.float64 and np.all(np.abs(a) <= 2.0) for a in arrays)


@FEW
@given(float_arrays((3, 4), min_value=-1.0, max_value=1.0, away_from=[0.0, 0.5], margin=0.05))
def test_float_arrays_keep_away_from_kinks(x):
    assert x.shape == (3, 4)
    assert np.all(np.abs(x) >= 0.05 - 1e-15) and np.all(np.abs(x - 0.5) >= 0.05 - 1e-15)
    assert np.all((x >= -1.0) & (x <= 1.0))


@FEW
@given(float_arrays(st.just((6,)), unique=True))
def test_float_arrays_unique(x):
    assert len(set(x.tolist())) == 6


@pytest.mark.parametrize("call, match", [
    (lambda: float_arrays("3x4"), r"shape must be a tuple of non-negative integers"),
    (lambda: float_arrays((2,), min_value=1.0, max_value=0.0), r"max_value must be >= min_value"),
    (lambda: float_arrays((2,), min_value=-0.01, max_value=0.01, away_from=0.0, margin=0.1), r"leaves no room"),
    (lambda: float_arrays((2,), margin=-1.0), r"margin must be a finite real number >= 0"),
    (lambda: shaped_inputs(), r"at least one shape"),
    (lambda: shaped_inputs(("N", 2.5)), r"a tuple of non-negative ints and size names"),
    (lambda: shaped_inputs(("N",), min_side=3, max_side=2), r"max_side must be >= min_side"),
    (lambda: smallest_failure("check", st.just(())), r"check must be a callable"),
    (lambda: smallest_failure(lambda: None, [1]), r"strategy must be a hypothesis strategy"),
])
def test_bad_strategy_arguments_fail_when_built(call, match):
    with pytest.raises(gradlab.GradlabError, match=match):
        call()


def test_assertions_pass_for_correct_code():
    fw, bw = make_affine()
    rng = np.random.default_rng(0)
    assert_layer_gradients(fw, bw, rng.normal(size=(2, 3)), rng.normal(size=(3, 2)), rng.normal(size=2))
    loss, _ = make_softmax_loss()
    assert_function_gradients(loss, None, rng.normal(size=(3, 4)), np.array([0, 3, 1]), wrt="x")


def test_assertion_message_carries_the_numbers_and_the_shapes():
    fw, bw = make_affine("db_first_example")
    rng = np.random.default_rng(0)
    with pytest.raises(AssertionError) as info:
        assert_layer_gradients(fw, bw, rng.normal(size=(2, 3)), rng.normal(size=(3, 2)), rng.normal(size=2))
    text = str(info.value)
    assert "input 0: shape (2, 3), float64" in text and "input 2: shape (2,)" in text
    assert "[partial_batch] b (input 2)" in text and "yours=" in text and "expected=" in text
    assert "verdict: FAIL" in text


def test_in_a_property_test_hypothesis_shrinks_to_the_smallest_failing_shapes():
    fw, bw = make_relu("no_mask")

    @settings(max_examples=30, deadline=None, database=None, derandomize=True)
    @given(shaped_inputs(("N", "D"), max_side=5, away_from=0.0))
    def prop(inputs):
        assert_layer_gradients(fw, bw, *inputs, against=("numeric",))

    with pytest.raises(AssertionError) as info:
        prop()
    # Shrunk: one example, one feature -- the smallest relu input with a negative entry.
    assert "input 0: shape (1, 1), float64" in str(info.value)


def test_smallest_failure_finds_and_shrinks():
    fw, bw = make_relu("no_mask")
    found = smallest_failure(lambda *ins: gradlab.check_layer(fw, bw, *ins, against=("numeric",)),
                             shaped_inputs(("N", "D"), max_side=5, away_from=0.0), max_examples=30)
    assert found is not None
    inputs, report = found
    assert inputs[0].shape == (1, 1) and inputs[0][0, 0] < 0 and not report.ok
    good_fw, good_bw = make_relu()
    assert smallest_failure(lambda *ins: gradlab.check_layer(good_fw, good_bw, *ins, against=("numeric",)),
                            shaped_inputs(("N", "D"), max_side=3, away_from=0.0), max_examples=10) is None
