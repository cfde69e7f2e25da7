"""The numpy fast form of g(-z) in gradlab._cost gives the very numbers of g at -z."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradlab import _cost

_Z = st.floats(-1e4, 1e4, allow_nan=False) | st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 709.0, -709.0, 745.0, -745.0])
_SHAPES = hnp.array_shapes(min_dims=2, max_dims=3, max_side=6)


@given(hnp.arrays(np.float64, _SHAPES, elements=_Z))
def test_property_sigmoid_of_negative_is_sigmoid_of_minus_z(z):
    np.testing.assert_array_equal(_cost.sigmoid(np, z, of_negative=True), _cost.sigmoid(np, -z))
    out = np.empty_like(z)
    assert _cost.sigmoid(np, z, out=out, of_negative=True) is out
    np.testing.assert_array_equal(out, _cost.sigmoid(np, -z))


def test_sigmoid_of_negative_in_place_and_for_complex_input():
    z = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    expected = _cost.sigmoid(np, -z)
    w = z.copy()
    np.testing.assert_array_equal(_cost.sigmoid(np, w, out=w, of_negative=True), expected)
    zc = z + 1e-20j  # the stable (complex-safe) form
    np.testing.assert_allclose(_cost.sigmoid(np, zc, of_negative=True).real, expected, rtol=1e-15, atol=0)
