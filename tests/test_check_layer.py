"""gradlab.check_layer: backward passes (vector-Jacobian products) of the classic layers --
correct ones pass over many random inputs, a planted bug in each is caught and names the
input (dx versus dw versus db) and the wrong entries; purity of inputs, dout and cache."""

import numpy as np
import pytest
from array_api_compat import array_namespace
from hypothesis import given, settings

import gradlab
from gradlab.testing import shaped_inputs

from handwritten import ARRAY_API, CASES, WRT, inputs_for, make_affine, make_relu, planted_wrong_entries

LAYERS = [name for name, case in CASES.items() if case[0] == "layer"]
MADE = {name: {None: CASES[name][1](None), "bug": CASES[name][1](CASES[name][2])} for name in LAYERS}


def _check(name, which, inputs, **kw):
    fw, bw = MADE[name][which]
    return gradlab.check_layer(fw, bw, *inputs, wrt=WRT.get(name), **kw)


def _only(report, kind):
    hits = [f for f in report.findings if f.kind == kind]
    assert len(hits) == 1, str(report)
    return hits[0]


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@pytest.mark.parametrize("name", LAYERS)
def test_correct_layer_passes_over_random_inputs(name):
    for seed in range(6 if name != "conv" else 3):
        report = _check(name, None, inputs_for(name, np.random.default_rng(seed)))
        assert report.ok, f"seed {seed}:\n{report}"
        assert not [f for f in report.findings if f.blame in ("user", "function")], str(report)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@pytest.mark.parametrize("name", LAYERS)
def test_planted_bug_is_caught_and_names_the_input_and_entries(name):
    kind, _, bug, input_name, finding_kind, wrong = CASES[name]
    for seed in range(2):
        inputs = inputs_for(name, np.random.default_rng(200 + seed))
        report = _check(name, "bug", inputs)
        assert not report.ok, str(report)
        blamed = [f for f in report.findings if f.blame == "user"]
        assert [(f.input, f.kind) for f in blamed] == [(input_name, finding_kind)], str(report)
        f = blamed[0]
        assert f.position == next(i["position"] for i in report.info["inputs"] if i["name"] == input_name)
        assert f.values and all("yours" in val and "expected" in val for val in f.values), str(report)
        index = [i["name"] for i in report.info["inputs"]].index(input_name)
        named = {tuple(e) for e in f.entries}
        assert named == planted_wrong_entries(name, inputs, index), str(report)
        if wrong is not None:
            assert named == wrong(inputs), str(report)


@pytest.mark.parametrize("name", LAYERS)
def test_witnesses_array_api_layers_get_jax_numpy_loops_get_a_reason(name):
    report = _check(name, None, inputs_for(name, np.random.default_rng(0)))
    lines = [n for n in report.notes if n.startswith("jax witness unavailable: ")]
    if name in ARRAY_API:
        assert not lines and "yours vs jax" in report.comparisons
    elif name in ("conv", "max_pool"):
        assert len(lines) == 1 and "numpy" in lines[0] and "yours vs central" in report.comparisons
    # Every layer either gets the jax witness or one line saying why not (dropout's forward, plain
    # numpy operators on its inputs, happens to trace).
    assert ("yours vs jax" in report.comparisons) != (len(lines) == 1), str(report)


def test_affine_db_from_the_first_example_only_is_part_of_the_batch():
    report = _check("affine", "bug", inputs_for("affine", np.random.default_rng(0)))
    f = _only(report, "partial_batch")
    assert f.input == "b" and f.position == 2 and f.extra["k"] == 1
    assert "dout's rows 1-3 set to zero" in f.experiment


def test_rnn_dwh_transposed_names_wh_and_nothing_else():
    report = _check("rnn_step", "bug", inputs_for("rnn_step", np.random.default_rng(0)))
    assert [(f.kind, f.input, f.position) for f in report.findings] == [("transposed", "Wh", 3)]


def test_conv_unpadding_from_the_corner_names_dx_not_dw_or_db():
    report = _check("conv", "bug", inputs_for("conv", np.random.default_rng(0)))
    inputs_ok = report.comparisons["yours vs central"]["inputs"]
    assert not inputs_ok["x"]["ok"] and inputs_ok["w"]["ok"] and inputs_ok["b"]["ok"]
    assert [f.input for f in report.findings if f.blame == "user"] == ["x"]


@settings(max_examples=15, deadline=None)
@given(shaped_inputs(("N", "D"), ("D", "M"), ("M",), max_side=4))
def test_affine_over_drawn_shapes_numeric_witnesses(inputs):
    fw, bw = MADE["affine"][None]
    x, w, b = inputs
    report = gradlab.check_layer(fw, bw, x.reshape(x.shape[0], 1, -1), w, b, against=("numeric",))
    assert report.ok, str(report)


@settings(max_examples=15, deadline=None)
@given(shaped_inputs(("N", "D"), max_side=4, away_from=0.0))
def test_relu_over_drawn_shapes_away_from_the_kink(inputs):
    fw, bw = MADE["relu"][None]
    assert gradlab.check_layer(fw, bw, *inputs, against=("numeric",)).ok


# ----------------------------------------------------------------------------- kinks


def test_relu_at_its_kink_is_judged_by_one_sided_quotients():
    fw, bw = make_relu()
    x = np.array([[0.0, 1e-7, -0.5], [0.8, -1e-9, 0.3]])
    report = gradlab.check_layer(fw, bw, x)
    assert report.ok, str(report)
    assert {tuple(k["entry"]) for k in report.kinks} == {(0, 0), (0, 1), (1, 1)}
    assert all(k["ok"] for k in report.kinks)

    def backward_wrong_at_kink(dout, cache):
        dx = bw(dout, cache)
        return dx + 5.0 * (cache == 0.0) * dout  # 6 times dout at x = 0: no side's slope

    wrong = gradlab.check_layer(fw, backward_wrong_at_kink, x)
    assert not wrong.ok and next(k for k in wrong.kinks if k["entry"] == [0, 0])["ok"] is False


# -------------------------------------------------------------------- purity of the call


def test_backward_writing_into_dout_is_found_though_its_gradient_is_right():
    fw, _ = make_relu()

    def relu_backward_in_place(dout, cache):
        dx = dout  # no copy: the next line writes into the caller's dout
        dx[cache <= 0] = 0.0
        return dx

    x = np.array([[0.5, -0.5, 1.0], [-1.0, 2.0, -0.3]])
    report = gradlab.check_layer(fw, relu_backward_in_place, x)
    f = _only(report, "input_mutation")
    assert f.extra["argument"] == "dout" and f.extra["n_entries"] == 3 and not report.ok
    assert {tuple(e) for e in f.entries} == {(0, 1), (1, 0), (1, 2)}
    assert all(val["after"] == 0.0 and val["before"] != 0.0 for val in f.values)
    assert "yours vs jax" in report.comparisons and report.comparisons["yours vs jax"]["ok"]


def test_backward_writing_into_a_cached_input_names_the_alias():
    def forward(x, w):
        return x @ w, (x, w)

    def backward(dout, cache):
        x, w = cache
        dw = x.T @ dout
        x *= 0.0  # "free" the cached input: it is the caller's x
        return dout @ w.T, dw

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(3, 2)), rng.normal(size=(2, 4))
    keep = x.copy()
    report = gradlab.check_layer(forward, backward, x, w)
    f = _only(report, "input_mutation")
    assert f.extra["argument"] == "cache[0]" and "the array forward received as x (input 0)" in f.sentence
    assert np.array_equal(x, keep)


def test_forward_writing_into_its_input_is_found():
    def forward(x):
        np.maximum(x, 0.0, out=x)  # relu in place
        return x.copy(), x

    def backward(dout, cache):
        return dout * (cache > 0)

    report = gradlab.check_layer(forward, backward, np.array([[1.0, -2.0, 0.5]]), against=("numeric",))
    f = [f for f in report.findings if f.kind == "input_mutation"][0]
    assert f.extra["argument"] == "x (input 0)" and f.entries == [(0, 1)] and not report.ok


def test_dropout_without_a_fixed_mask_is_non_determinism():
    state = np.random.default_rng(0)

    def forward(x, p):
        mask = state.random(x.shape) < p
        return x * mask / p, (mask, p)

    def backward(dout, cache):
        mask, p = cache
        return dout * mask / p

    report = gradlab.check_layer(forward, backward, np.ones((3, 4)), 0.5)
    f = _only(report, "non_determinism")
    assert "not judged" in f.sentence and not report.ok


# ------------------------------------------------------------------------- upstream gradients


def test_given_douts_are_used_and_shapes_checked():
    fw, bw = make_affine()
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    one = gradlab.check_layer(fw, bw, x, w, b, dout=np.ones((2, 4)))
    assert one.ok and one.info["douts"] == 1 and not one.info["douts_random"]
    two = gradlab.check_layer(fw, bw, x, w, b, dout=[np.ones((2, 4)), rng.normal(size=(2, 4))])
    assert two.ok and two.info["douts"] == 2
    five = gradlab.check_layer(fw, bw, x, w, b, n_douts=5)
    assert five.info["douts"] == 5 and five.info["douts_random"]
    with pytest.raises(gradlab.GradlabError, match=r"dout must have the shape of forward's output \(2, 4\)"):
        gradlab.check_layer(fw, bw, x, w, b, dout=np.ones((4, 2)))


def test_a_wrong_entry_hidden_by_one_dout_is_seen_by_another():
    def forward(x):
        return 2.0 * x, None

    def backward(dout, cache):
        dx = 2.0 * dout
        dx[0, 0] = 2.0 * dout[0, 0] + dout[0, 1]  # wrong, unless dout[0, 1] is 0
        return dx

    x = np.ones((2, 2))
    dout = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert gradlab.check_layer(forward, backward, x, dout=dout).ok  # the one dout hides it
    report = gradlab.check_layer(forward, backward, x)  # three random douts do not
    assert not report.ok and _only(report, "entries").entries == [(0, 0)]


def test_backward_returning_too_few_gradients_says_so_and_suggests_wrt():
    fw, bw = make_affine()
    rng = np.random.default_rng(0)
    report = gradlab.check_layer(fw, lambda dout, cache: bw(dout, cache)[:2], rng.normal(size=(2, 3)),
                                 rng.normal(size=(3, 4)), rng.normal(size=4))
    f = _only(report, "bad_output")
    assert f.cause == "count" and "wrt=" in f.sentence and "x, w, b (3)" in f.sentence


def test_wrt_restricts_the_check_to_the_named_inputs():
    def forward(x, w, mask):
        return (x @ w) * mask, (x, w, mask)

    def backward(dout, cache):
        x, w, mask = cache
        d = dout * mask
        return d @ w.T, x.T @ d

    rng = np.random.default_rng(0)
    x, w, mask = rng.normal(size=(3, 2)), rng.normal(size=(2, 2)), (rng.random((3, 2)) < 0.5).astype(float)
    report = gradlab.check_layer(forward, backward, x, w, mask, wrt=("x", "w"))
    assert report.ok and [i["name"] for i in report.info["inputs"]] == ["x", "w"]
    assert "mask passed through" in report.info["inputs_text"]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_douts": 0}, r"n_douts must be an integer >= 1"),
    ({"dout": "ones"}, r"dout must be"),
    ({"wrt": "z"}, r"wrt must be"),
])
def test_layer_bad_input(kwargs, match):
    fw, bw = make_affine()
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.check_layer(fw, bw, np.ones((2, 3)), np.ones((3, 4)), np.ones(4), **kwargs)


@pytest.mark.parametrize("forward, backward, match", [
    (lambda x: x, lambda d, c: d, r"must return \(out, cache\)"),
    (lambda x: ("out", None), lambda d, c: d, r"out a float array"),
    (lambda x: (x, None), lambda d: d, r"backward must take 2 positional argument"),
    (lambda x, y: (x, None), lambda d, c: d, r"forward must take 1 positional argument"),
])
def test_layer_shape_of_the_functions(forward, backward, match):
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.check_layer(forward, backward, np.ones(3))


def test_jnp_layer_is_traced_in_float64():
    import jax.numpy as jnp

    def forward(x):
        return jnp.tanh(x) * 3.0, x

    def backward(dout, x):
        return dout * 3.0 * (1.0 - np.tanh(x) ** 2)

    report = gradlab.check_layer(forward, backward, np.linspace(-1, 1, 6).reshape(2, 3))
    assert report.ok and not report.notes, str(report)
    xp_written = lambda x: (array_namespace(x).tanh(x), x)
    assert gradlab.check_layer(xp_written, lambda d, x: d * (1 - np.tanh(x) ** 2), np.ones((2, 2))).ok
