"""The jax source's dtype option: float64 by default, float32 on request."""

import numpy as np
import pytest

import gradlab
from gradlab.compare import EXACT_NORM_RATIO
from gradlab.sources import autodiff

# float32 rounds at eps32 = 1.19e-7 relative; the cost sums m*K terms and the gradient
# sums m outer products, so the accumulated error grows to some hundreds of eps32 on
# these small problems. 1e-4 (about 840 eps32) is loose for that, and still four orders
# of magnitude below the error of a real bug.
FLOAT32_NORM_RATIO = 1e-4
# float32 cannot agree with float64 to better than about its own eps on a gradient whose
# entries are not exactly representable: a ratio below this means float64 was used.
FLOAT32_MIN_VISIBLE = 1e-12


def _ratio(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(a + b)


def _case(lam=0.5):
    p = gradlab.debug_problem((4, 6, 5, 3), 9, lam)
    return p, gradlab.random_init(p.network, seed=3)


def test_jax_source_default_dtype_is_the_registered_float64_source():
    assert gradlab.jax_source() is gradlab.SOURCES["jax"]
    assert gradlab.jax_source("float64") is gradlab.SOURCES["jax"]


def test_float32_gradient_close_to_backprop_but_visibly_single_precision():
    p, params = _case()
    bp = gradlab.gradient(p, params, "backprop")
    g32 = gradlab.gradient(p, params, gradlab.jax_source("float32"))
    assert g32.dtype == np.float64  # returned as float64, computed in float32
    assert _ratio(g32, bp) <= FLOAT32_NORM_RATIO
    assert _ratio(g32, bp) > FLOAT32_MIN_VISIBLE
    assert _ratio(gradlab.gradient(p, params, "jax"), bp) <= EXACT_NORM_RATIO


def test_float32_value_and_gradient_returns_the_cost_too():
    p, params = _case()
    J32, g32 = gradlab.value_and_gradient(p, params, gradlab.jax_source("float32"))
    J = gradlab.cost(p, params)
    assert abs(J32 - J) <= FLOAT32_NORM_RATIO * abs(J)
    assert g32.shape == params.shape


def test_float32_source_is_judged_by_its_error_estimate_in_compare():
    p, params = _case()
    report = gradlab.compare(p, params, ("backprop", gradlab.jax_source("float32")))
    assert report.ok, str(report)
    assert "estimate" in report.pairs[0].criterion


def test_float32_source_caught_when_the_other_gradient_is_wrong():
    p, params = _case()

    def off_by_a_bit(problem, theta):
        g = gradlab.gradient(problem, theta, "backprop")
        g[7] *= 1.01
        return g

    report = gradlab.compare(p, params, (off_by_a_bit, gradlab.jax_source("float32")))
    assert not report.ok
    assert report.pairs[0].worst["index"] == 7


def test_device_data_made_once_per_problem_and_dtype():
    p, params = _case()
    autodiff.value_and_gradient(p, params, "float32")
    autodiff.value_and_gradient(p, params, "float64")
    def not_again():
        raise AssertionError("the device data should have been made already")

    X32, Y32 = p.prepared(("jax", "float32"), not_again)
    X64, _ = p.prepared(("jax", "float64"), not_again)
    assert X32.dtype == np.float32 and X64.dtype == np.float64
    autodiff.value_and_gradient(p, params + 1.0, "float32")
    assert p.prepared(("jax", "float32"), not_again)[0] is X32  # reused, not rebuilt per call


@pytest.mark.parametrize("dtype", ["float16", "f32", np.float32, None, 32])
def test_bad_dtype_is_a_gradlab_error_naming_it(dtype):
    with pytest.raises(gradlab.GradlabError, match=r"dtype must be one of 'float64', 'float32'; got dtype="):
        gradlab.jax_source(dtype)
