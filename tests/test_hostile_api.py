"""A hostile user of the Python API: odd types, odd dtypes, odd callables.

Every public function either gives the correct result for input a person could
reasonably pass (a list of lists, float32, a 0-d array, a Decimal) or raises a
GradlabError naming the argument and the value. Nothing else may escape: no TypeError,
no numpy warning (the suite runs with warnings as errors), no silently wrong number.
"""

import decimal
import fractions
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradlab
from gradlab import GradlabError
from gradlab import data as gd
from gradlab import testing as gt
from gradlab._errors import UserCodeError
from gradlab.steps import step_curve

NET = gradlab.Network((3, 5, 3))
PROBLEM = gradlab.debug_problem()
THETA = gradlab.debug_init(NET)
X, LABELS = PROBLEM.X, PROBLEM.labels
X4 = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y4 = np.array([0, 1, 1, 0])
QUICK = dict(hidden=2, maxiter=2, progress=False, lam=0.0)

with warnings.catch_warnings():
    # numpy.matrix warns on creation (PendingDeprecationWarning): a user may still pass one.
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    X_MATRIX = np.matrix(X)


def _masked(a, where):
    return np.ma.masked_array(a, mask=where)


def _readonly(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------------------
# User callables of every odd kind
# --------------------------------------------------------------------------------------


def src_raises(problem, params):
    raise RuntimeError("boom")


def src_exits(problem, params):
    raise SystemExit(3)


def src_writes_X(problem, params):
    problem.X[0, 0] = 1.0
    return np.zeros(params.shape)


def src_complex(problem, params):
    return np.zeros(params.shape) + 1j


def src_strings(problem, params):
    return np.array(["0.5"] * params.size)


def src_no_args():
    return 0.0


def src_keyword_only(problem, params, *, scale):
    return np.zeros(params.shape)


def src_generator(problem, params):
    yield np.zeros(params.shape)


def src_returns_input(problem, params):
    return params


def src_writes_params(problem, params):
    params[:] = 7.0
    return np.zeros(params.shape)


def src_list(problem, params):
    return gradlab.gradient(problem, params).tolist()


def callback_raises(it):
    return 1 / 0


# --------------------------------------------------------------------------------------
# Refused: a GradlabError naming the argument and the value
# --------------------------------------------------------------------------------------

BAD = [
    # Network
    ("sizes-0d-array", lambda: gradlab.Network(np.array(3)), r"sizes must be at least two positive integers; got sizes=3"),
    ("sizes-set", lambda: gradlab.Network({3, 5}), r"sizes must be .* in order \(a list or tuple, not a set\)"),
    ("sizes-dict", lambda: gradlab.Network({3: 1, 5: 1}), r"not a set\); got sizes=\{3: 1, 5: 1\}"),
    ("pack-None", lambda: NET.pack(None), r"matrices must be a sequence of 2 weight matrices; got matrices=None"),
    ("pack-int", lambda: NET.pack(3), r"matrices must be a sequence of 2 weight matrices; got matrices=3"),
    # arrays: strings are not parsed, complex is not cut, None is not NaN, masks are not ignored
    ("X-strings", lambda: gradlab.Problem(NET, X.astype(str), LABELS), r"X must be a 2-D array of real numbers; got X=array\(shape=\(5, 3\), dtype=<U"),
    ("X-complex", lambda: gradlab.Problem(NET, X + 0j, LABELS), r"X must be a 2-D array of real numbers; got X=array\(shape=\(5, 3\), dtype=complex128\)"),
    ("X-None", lambda: gradlab.Problem(NET, None, LABELS), r"X must be a 2-D array of real numbers; got X=None"),
    ("X-None-entry", lambda: gradlab.Problem(NET, [[1, 2, None]], [0]), r"X must be a 2-D array of real numbers; got X=\[\[1, 2, None\]\]"),
    ("X-masked", lambda: gradlab.Problem(NET, _masked(X, X > 0.05), LABELS), r"X must be a 2-D array of real numbers without masked entries; got X with 6 masked"),
    ("X-datetime", lambda: gradlab.Problem(gradlab.Network((1, 2)), np.zeros((2, 1), "datetime64[D]"), [0, 1]), r"X must be a 2-D array of real numbers"),
    ("X-longdouble-beyond-float64", lambda: gradlab.Problem(gradlab.Network((1, 2)), np.array([[np.longdouble("1e400")]]), [0]), r"X must hold only finite numbers; got X\[0, 0\]=1e\+400"),
    ("params-strings", lambda: gradlab.cost(PROBLEM, THETA.astype(str)), r"params must be a 1-D array of real numbers; got params=array\(shape=\(38,\), dtype=<U"),
    ("params-complex", lambda: gradlab.gradient(PROBLEM, THETA + 0j), r"params must be a 1-D array of real numbers; got params=array\(shape=\(38,\), dtype=complex128\)"),
    ("params-masked", lambda: gradlab.cost(PROBLEM, _masked(THETA, THETA > 0)), r"params must be .* without masked entries; got params with 20 masked"),
    ("params-1e300-lam-0", lambda: gradlab.cost(PROBLEM, np.full(38, 1e300)), r"too large to evaluate the cost.*sum of squared weights \(computed even at lam=0\)"),
    # labels
    ("y-masked", lambda: gradlab.Problem(NET, X, _masked(LABELS, LABELS > 0)), r"y must have no masked entries; got y with 4 masked"),
    ("y-float-1e300", lambda: gradlab.Problem(NET, X, np.full(5, 1e300)), r"y \(labels\) must hold integers 0..2 \(K=3 outputs\); got y\[0\]=1e\+300"),
    ("y-uint64-above-int64", lambda: gradlab.Problem(NET, X, np.full(5, 2**63 + 1, dtype=np.uint64)), r"got y\[0\]=9223372036854775809"),
    # numbers
    ("lam-huge-int", lambda: gradlab.Problem(NET, X, LABELS, 10**400), r"lam must be a finite real number >= 0; got lam=1000"),
    ("lam-huge-fraction", lambda: gradlab.Problem(NET, X, LABELS, fractions.Fraction(10**400)), r"lam must be a finite real number >= 0; got lam=Fraction\("),
    ("lam-decimal-nan", lambda: gradlab.Problem(NET, X, LABELS, decimal.Decimal("NaN")), r"lam must be a finite real number >= 0; got lam=Decimal\('NaN'\)"),
    ("lam-0d-bool", lambda: gradlab.Problem(NET, X, LABELS, np.array(True)), r"lam must be a finite real number >= 0; got lam=np.True_"),
    ("check-lam-huge-int", lambda: gradlab.check(lambda p, t: t, lam=10**400), r"lam must be a finite real number >= 0; got lam=1000"),
    # user sources
    ("source-raises", lambda: gradlab.gradient(PROBLEM, THETA, source=src_raises), r"source 'src_raises' raised RuntimeError: boom \(.*test_hostile_api.py, line \d+, in src_raises\)"),
    ("source-sys-exit", lambda: gradlab.gradient(PROBLEM, THETA, source=src_exits), r"source 'src_exits' raised SystemExit: 3"),
    ("source-writes-problem", lambda: gradlab.gradient(PROBLEM, THETA, source=src_writes_X), r"source 'src_writes_X' raised ValueError: assignment destination is read-only"),
    ("source-complex", lambda: gradlab.gradient(PROBLEM, THETA, source=src_complex), r"source 'src_complex' must return a real float array of length 38; got an array of dtype complex128"),
    ("source-strings", lambda: gradlab.value_and_gradient(PROBLEM, THETA, source=src_strings), r"source 'src_strings' must return a real float array of length 38; got an array of dtype <U3"),
    ("source-no-args", lambda: gradlab.gradient(PROBLEM, THETA, source=src_no_args), r"source must take 2 positional arguments \(problem, params\); got src_no_args\(\)"),
    ("source-keyword-only", lambda: gradlab.gradient(PROBLEM, THETA, source=src_keyword_only), r"source must take 2 positional arguments .*got src_keyword_only\(problem, params, \*, scale\)"),
    ("source-generator", lambda: gradlab.gradient(PROBLEM, THETA, source=src_generator), r"source must be a function that returns its result; got src_generator, a generator function"),
    ("compare-source-raises", lambda: gradlab.compare(PROBLEM, THETA, ["jax", src_raises]), r"source 'src_raises' raised RuntimeError: boom"),
    ("compare-no-args", lambda: gradlab.compare(PROBLEM, THETA, ["jax", src_no_args]), r"sources must take 2 positional arguments"),
    ("train-source-raises", lambda: gradlab.train(X4, Y4, grad_source=src_raises, **QUICK), r"source 'src_raises' raised RuntimeError: boom"),
    ("train-source-no-args", lambda: gradlab.train(X4, Y4, grad_source=src_no_args, **QUICK), r"grad_source must take 2 positional arguments"),
    ("check-generator", lambda: gradlab.check(src_generator), r"grad_fn must be a function that returns its result; got src_generator, a generator function"),
    # report metadata
    ("compare-info-list", lambda: gradlab.compare(PROBLEM, THETA, ["jax", "backprop"], info=[1, 2]), r"info must be a dict of name: value pairs or None; got info=\[1, 2\]"),
    ("compare-info-object", lambda: gradlab.compare(PROBLEM, THETA, ["jax", "backprop"], info={"a": object()}), r"info\['a'\] must be None, a bool, number or string.*got info\['a'\]=<object"),
    ("explain-info-key", lambda: gradlab.explain(PROBLEM, THETA, info={1: "x"}), r"info keys must be strings; got info keys=1"),
    ("train-info-string", lambda: gradlab.train(X4, Y4, info="abc", **QUICK), r"info must be a dict of name: value pairs or None; got info='abc'"),
    ("train-info-complex", lambda: gradlab.train(X4, Y4, info={"z": 1j}, **QUICK), r"info\['z'\] must be None, a bool, number or string"),
    # train
    ("train-data-path", lambda: gradlab.train("digits", hidden=2), r"data must be an array of inputs \(with y\), a gradlab.data.Dataset or a gradlab.Problem; .*got data='digits'"),
    ("train-callback-raises", lambda: gradlab.train(X4, Y4, callback=callback_raises, **QUICK), r"callback 'callback_raises' raised ZeroDivisionError: division by zero"),
    ("train-callback-no-args", lambda: gradlab.train(X4, Y4, callback=lambda: True, **QUICK), r"callback must take 1 positional arguments \(an Iteration\)"),
    ("train-test-label-beyond-K", lambda: gradlab.train(X4, Y4, test=(X4, Y4 + 5), **QUICK), r"test: y_test must hold labels 0..1, one per output unit \(K=2.*got y_test\[0\]=5"),
    # testing strategies: checked when built, not when drawn
    ("problems-network-strategy-not-strategy", lambda: gt.problems(network_strategy=NET), r"network_strategy must be a hypothesis strategy of Network values"),
    ("problems-max-lam-above-MAX_LAM", lambda: gt.problems(max_lam=1e300), r"max_lam must be a finite real number >= 0 and <= 1e\+150; got max_lam=1e\+300"),
    ("networks-activations-0d", lambda: gt.networks(activations=np.array("relu")), r"activations must be a non-empty sequence"),
    ("agree-rtol-string-while-agreeing", lambda: gt.assert_gradients_agree(PROBLEM, THETA, ("backprop", "jax"), rtol="x"), r"rtol must be a finite real number >= 0; got rtol='x'"),
    ("shrink-target-int", lambda: gradlab.shrink(src_returns_input, target=3, max_examples=1), r"target must be a string naming the function \(PATH.py:FUNC\) or None; got target=3"),
    # data
    ("image-shape-negative", lambda: gd.rows_as_images(np.ones((2, 4)), (-2, -2)), r"image_shape must be \(height, width\), two positive integers; got image_shape=\(-2, -2\)"),
    ("image-shape-None", lambda: gd.rows_as_images(np.ones((2, 4)), None), r"image_shape must be \(height, width\), two positive integers; got image_shape=None"),
    ("image-shape-floats", lambda: gd.rows_as_images(np.ones((2, 4)), (2.0, 2.0)), r"got image_shape=\(2.0, 2.0\)"),
    ("image-shape-3d", lambda: gd.rows_as_images(np.ones((2, 8)), (2, 2, 2)), r"got image_shape=\(2, 2, 2\)"),
    ("dataset-by-hand-None", lambda: gd.Dataset(None, None), r"X must be a 2-D array of real numbers; got X=None"),
    ("dataset-by-hand-image-shape", lambda: gd.Dataset(np.ones((2, 4)), [0, 1], image_shape=(3, 3)), r"image_shape must be \(height, width\) with height \* width = 4"),
    ("scaling-by-hand-None", lambda: gd.Scaling(None, None), r"mean must be a 1-D array of real numbers; got mean=None"),
    ("scaling-by-hand-zero-std", lambda: gd.Scaling([0.0, 0.0], [1.0, 0.0]), r"std must hold positive numbers.*got std\[1\]=0.0"),
    # plots
    ("save-figure-not-a-figure", lambda: __import__("gradlab.plots").plots.save_figure(None, "x.png"), r"fig must be a matplotlib Figure; got fig=None"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_raises_gradlab_error_naming_it(call, match):
    with pytest.raises(GradlabError, match=match):
        call()


def test_a_user_source_exception_stays_chained_for_its_traceback():
    with pytest.raises(UserCodeError) as info:
        gradlab.gradient(PROBLEM, THETA, source=src_raises)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_result_accuracy_refuses_a_label_the_model_has_no_output_for():
    result = gradlab.train(X4, Y4, **QUICK)
    with pytest.raises(GradlabError, match=r"y must hold labels 0..1, one per output of the model \(K=2\); got y\[0\]=7"):
        result.accuracy(X4, Y4 + 7)


# --------------------------------------------------------------------------------------
# Accepted: reasonable input gives exactly the result of the canonical form
# --------------------------------------------------------------------------------------

REFERENCE_COST = gradlab.cost(PROBLEM, THETA)

SAME_COST = [
    ("params-list", lambda: gradlab.cost(PROBLEM, THETA.tolist())),
    ("params-tuple", lambda: gradlab.cost(PROBLEM, tuple(THETA))),
    ("params-readonly", lambda: gradlab.cost(PROBLEM, _readonly(THETA))),
    ("params-noncontiguous", lambda: gradlab.cost(PROBLEM, np.repeat(THETA, 2)[::2])),
    ("params-masked-nothing-masked", lambda: gradlab.cost(PROBLEM, np.ma.masked_array(THETA))),
    ("params-longdouble", lambda: gradlab.cost(PROBLEM, THETA.astype(np.longdouble))),
    ("params-object-floats", lambda: gradlab.cost(PROBLEM, THETA.astype(object))),
    ("X-list", lambda: gradlab.cost(gradlab.Problem(NET, X.tolist(), LABELS), THETA)),
    ("X-matrix", lambda: gradlab.cost(gradlab.Problem(NET, X_MATRIX, LABELS), THETA)),
    ("X-fortran", lambda: gradlab.cost(gradlab.Problem(NET, np.asfortranarray(X), LABELS), THETA)),
    ("y-float", lambda: gradlab.cost(gradlab.Problem(NET, X, LABELS.astype(float)), THETA)),
    ("y-column", lambda: gradlab.cost(gradlab.Problem(NET, X, LABELS[:, None]), THETA)),
    ("y-uint8", lambda: gradlab.cost(gradlab.Problem(NET, X, LABELS.astype(np.uint8)), THETA)),
    ("sizes-numpy-array", lambda: gradlab.cost(gradlab.Problem(np.array([3, 5, 3]), X, LABELS), THETA)),
    ("sizes-numpy-ints", lambda: gradlab.cost(gradlab.Problem((np.int8(3), np.uint64(5), 3), X, LABELS), THETA)),
    ("sizes-generator", lambda: gradlab.cost(gradlab.Problem(gradlab.Network(s for s in (3, 5, 3)), X, LABELS), THETA)),
    ("lam-0d-array", lambda: gradlab.cost(gradlab.Problem(NET, X, LABELS, np.array(0)), THETA)),
    ("lam-decimal", lambda: gradlab.cost(gradlab.Problem(NET, X, LABELS, decimal.Decimal(0)), THETA)),
    ("lam-fraction", lambda: gradlab.cost(gradlab.Problem(NET, X, LABELS, fractions.Fraction(0)), THETA)),
    ("lam-negative-zero", lambda: gradlab.cost(gradlab.Problem(NET, X, LABELS, -0.0), THETA)),
]


@pytest.mark.parametrize("call", [c[1] for c in SAME_COST], ids=[c[0] for c in SAME_COST])
def test_reasonable_input_gives_the_canonical_cost(call):
    assert call() == REFERENCE_COST


def test_a_memory_mapped_params_file_gives_the_canonical_cost(tmp_path):
    mm = np.memmap(tmp_path / "theta.bin", dtype=np.float64, mode="w+", shape=THETA.shape)
    mm[:] = THETA
    assert gradlab.cost(PROBLEM, mm) == REFERENCE_COST


def test_a_list_returned_by_a_source_is_the_gradient_it_lists():
    np.testing.assert_array_equal(gradlab.gradient(PROBLEM, THETA, source=src_list), gradlab.gradient(PROBLEM, THETA))


def test_lam_fraction_is_kept_as_its_float():
    assert gradlab.Problem(NET, X, LABELS, fractions.Fraction(1, 3)).lam == 1 / 3


def test_lam_negative_zero_is_shown_as_zero():
    assert "lam=0)" in repr(gradlab.Problem(NET, X, LABELS, -0.0))


def test_numpy_string_activation_is_kept_as_a_plain_string():
    assert type(gradlab.Network((3, 5, 3), activation=np.str_("relu")).activation) is str


def test_seed_as_0d_array_draws_the_weights_of_the_int_seed():
    np.testing.assert_array_equal(gradlab.random_init(NET, np.array(7)), gradlab.random_init(NET, 7))


def test_hidden_as_0d_array_builds_that_hidden_layer():
    assert gradlab.train(X4, Y4, **{**QUICK, "hidden": np.array(3)}).network.sizes == (2, 3, 2)


def test_plot_digits_shows_a_small_dataset_whole_by_default(tmp_path):
    from gradlab import plots

    # 4 examples and no n: the default of 100 is capped, not an error the caller never caused.
    assert plots.plot_digits(np.zeros((4, 4)), tmp_path / "d.png", image_shape=(2, 2)).endswith("d.png")


def test_plot_digits_draws_pixels_near_float_max(tmp_path):
    from gradlab import plots

    images = np.array([[1e308, -1e308, 0.0, 1.0]] * 4)
    assert plots.plot_digits(images, tmp_path / "d.png", image_shape=(2, 2)).endswith("d.png")


# --------------------------------------------------------------------------------------
# Nothing gradlab calls may write into a caller's arrays, nor hand back an alias
# --------------------------------------------------------------------------------------


def test_a_source_writing_its_params_leaves_the_callers_params_alone():
    theta = THETA.copy()
    gradlab.gradient(PROBLEM, theta, source=src_writes_params)
    np.testing.assert_array_equal(theta, THETA)


def test_a_source_returning_its_input_does_not_alias_the_callers_params():
    theta = THETA.copy()
    grad = gradlab.gradient(PROBLEM, theta, source=src_returns_input)
    grad[:] = 0.0
    np.testing.assert_array_equal(theta, THETA)


def test_problem_does_not_alias_the_callers_X():
    X_mine = X.copy()
    problem = gradlab.Problem(NET, X_mine, LABELS)
    X_mine[0, 0] = 99.0
    assert problem.X[0, 0] == X[0, 0]


def test_params_that_are_a_view_of_X_give_the_cost_of_their_values():
    # X and params share memory: gradlab copies both, so neither can see the other change.
    buf = np.concatenate([THETA, X.ravel()])
    problem = gradlab.Problem(NET, buf[38:].reshape(5, 3), LABELS)
    assert gradlab.cost(problem, buf[:38]) == REFERENCE_COST


# --------------------------------------------------------------------------------------
# Property: whatever is passed, the result is a value or a GradlabError
# --------------------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.complex_numbers(), st.text(max_size=5),
    st.binary(max_size=5), st.fractions(), st.decimals(),
    st.lists(st.one_of(st.integers(-3, 10), st.floats(), st.none(), st.text(max_size=2)), max_size=6),
    st.lists(st.lists(st.floats(-10, 10), min_size=3, max_size=3), max_size=4),
    st.sampled_from([np.array(3), np.array([]), np.zeros((2, 3), complex), np.array(["a"]), np.ma.masked_array([1.0], mask=[True])]),
)


def _value_or_gradlab_error(call):
    try:
        call()
    except GradlabError:
        pass


# Each example builds a small Problem or evaluates one 3-5-3 cost (well under a
# millisecond); the profile's 200 examples keep the three properties near a second.
@given(sizes=JUNK)
def test_any_sizes_give_a_network_or_a_gradlab_error(sizes):
    _value_or_gradlab_error(lambda: gradlab.Network(sizes))


@given(X_=JUNK, y=JUNK, lam=JUNK)
def test_any_problem_arguments_give_a_problem_or_a_gradlab_error(X_, y, lam):
    _value_or_gradlab_error(lambda: gradlab.Problem(NET, X_, y, lam))


@given(params=JUNK)
def test_any_params_give_a_cost_or_a_gradlab_error(params):
    _value_or_gradlab_error(lambda: gradlab.cost(PROBLEM, params))


def test_step_curve_with_steps_as_strings_is_refused():
    with pytest.raises(GradlabError, match=r"steps must be a 1-D array of real numbers; got steps=\['1e-3'\]"):
        step_curve(PROBLEM, THETA, steps=["1e-3"])
