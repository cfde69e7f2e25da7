"""gradlab.check_function: any scalar function's gradient -- correct ones pass, planted bugs are
caught and located, the witnesses are what the report says, and every experiment can fail."""

import json

import numpy as np
import pytest
from array_api_compat import array_namespace

import gradlab
from gradlab._errors import UserCodeError

from handwritten import CASES, WRT, inputs_for, planted_wrong_entries

FUNCTIONS = [name for name, case in CASES.items() if case[0] == "function"]
MADE = {name: {None: CASES[name][1](None), "bug": CASES[name][1](CASES[name][2])} for name in FUNCTIONS}


def _check(name, which, inputs, **kw):
    f, g = MADE[name][which]
    return gradlab.check_function(f, g, *inputs, wrt=WRT.get(name), **kw)


def _only(report, kind):
    hits = [f for f in report.findings if f.kind == kind]
    assert len(hits) == 1, str(report)
    return hits[0]


# ------------------------------------------------------------- the hand-written functions


@pytest.mark.parametrize("name", FUNCTIONS)
def test_correct_function_passes_over_random_inputs(name):
    for seed in range(8):
        report = _check(name, None, inputs_for(name, np.random.default_rng(seed)))
        assert report.ok, f"seed {seed}:\n{report}"
        assert not [f for f in report.findings if f.blame in ("user", "function")]


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_planted_bug_is_caught_and_names_the_input_and_entries(name):
    kind, _, bug, input_name, finding_kind, wrong = CASES[name]
    for seed in range(3):
        inputs = inputs_for(name, np.random.default_rng(100 + seed))
        report = _check(name, "bug", inputs)
        assert not report.ok, str(report)
        f = _only(report, finding_kind)
        assert (f.input, f.kind) == (input_name, finding_kind), str(report)
        assert f.position == report.info["inputs"][0]["position"] or f.input != report.info["inputs"][0]["name"]
        named = {tuple(e) for e in f.entries}
        assert f.extra["n_entries"] == len(named) and f.values, str(report)
        assert named == planted_wrong_entries(name, inputs, 0), str(report)
        if wrong is not None:
            assert named == wrong(inputs), str(report)


def test_linear_regression_bias_regularised_is_entry_zero_only():
    report = _check("linear_regression", "bug", inputs_for("linear_regression", np.random.default_rng(3)))
    f = _only(report, "entries")
    assert f.entries == [(0,)] and f.input == "theta" and f.position == 0
    val = f.values[0]
    assert val["entry"] == (0,) and val["yours"] != pytest.approx(val["expected"])


def test_softmax_missing_1_over_n_is_named_the_batch_size_by_experiment():
    report = _check("softmax_loss", "bug", inputs_for("softmax_loss", np.random.default_rng(0)))
    f = _only(report, "constant_factor")
    assert f.extra["factor"] == pytest.approx(4.0) and f.extra["batch_size"] == 4 and f.extra["confirmed"]
    assert "batch size" in f.cause and "first 3 example(s)" in f.experiment


def test_a_factor_equal_to_n_by_coincidence_is_not_called_the_batch_size():
    def f(w, X, y):
        r = X @ w - y
        return 0.5 * np.sum(r * r) / X.shape[0], 3.0 * (X.T @ r) / X.shape[0]  # 3 is a constant slip, N = 3

    rng = np.random.default_rng(0)
    report = gradlab.check_function(f, None, rng.normal(size=2), rng.normal(size=(3, 2)), rng.normal(size=3), wrt="w")
    c = _only(report, "constant_factor")
    assert c.extra["factor"] == pytest.approx(3.0) and not c.extra["confirmed"]
    assert "batch size" not in (c.cause or "") and "does not follow the batch size" in c.experiment


# ------------------------------------------------------------------------- the witnesses


def _quadratic(w, A):
    xp = array_namespace(w, A)
    return 0.5 * xp.sum(w * (A @ w))


def _quadratic_grad(w, A):
    return 0.5 * (A + A.T) @ w


def _quadratic_np(w, A):
    return 0.5 * float(np.dot(w, A @ w))  # float(): not traceable, and drops a complex step's imaginary part


def test_array_api_function_gets_the_jax_witness_and_three_way_comparison():
    rng = np.random.default_rng(0)
    report = gradlab.check_function(_quadratic, _quadratic_grad, rng.normal(size=4), rng.normal(size=(4, 4)), wrt="w")
    assert report.ok and not report.notes
    assert set(report.comparisons) == {"yours vs jax", "yours vs central", "jax vs central"}
    assert report.info["witnesses"][0].startswith("jax")


def test_jax_numpy_written_function_gets_the_jax_witness():
    import jax.numpy as jnp

    def f(w):
        return jnp.sum(jnp.sin(w) ** 2)

    w = np.linspace(-1, 1, 5)
    report = gradlab.check_function(f, lambda w: 2 * np.sin(w) * np.cos(w), w)
    assert report.ok and "yours vs jax" in report.comparisons and not report.notes


def test_plain_numpy_function_gets_one_unavailable_line_and_still_a_verdict():
    rng = np.random.default_rng(0)
    w, A = rng.normal(size=4), rng.normal(size=(4, 4))
    good = gradlab.check_function(_quadratic_np, _quadratic_grad, w, A, wrt="w")
    lines = [n for n in good.notes if n.startswith("jax witness unavailable: ")]
    assert len(lines) == 1 and "numpy" in lines[0] and "\n" not in lines[0]
    assert good.ok and "yours vs jax" not in good.comparisons
    bad = gradlab.check_function(_quadratic_np, lambda w, A: A @ w, w, A, wrt="w")
    assert not bad.ok and bad.findings[-1].input == "w"
    assert lines[0] in str(bad).replace("\n  ", " ") or "jax witness unavailable" in str(bad)


def test_complex_step_is_used_when_the_function_proves_analytic():
    def f(w):
        return np.sum(np.exp(w) * np.sin(w))  # numpy ufuncs: complex in, complex out (jax is not asked)

    w = np.linspace(-1, 1, 6)
    report = gradlab.check_function(f, lambda w: np.exp(w) * (np.sin(w) + np.cos(w)), w, against=("numeric",))
    assert report.ok and "yours vs complex step" in report.comparisons
    assert not any(n.startswith("complex step unavailable") for n in report.notes)


@pytest.mark.parametrize("body, reason", [
    (lambda w: float(np.sum(w ** 2)), "complex"),
    (lambda w: np.sum(np.abs(w) ** 2), "real"),
    (lambda w: np.sum((w * np.conj(w))), "not analytic"),
])
def test_complex_step_is_tried_not_assumed_and_richardson_takes_over(body, reason):
    w = np.linspace(0.5, 1.5, 5)
    report = gradlab.check_function(body, lambda w: 2 * w, w, against=("numeric",))
    notes = [n for n in report.notes if n.startswith("complex step unavailable: ")]
    assert len(notes) == 1 and reason in notes[0], report.notes
    assert report.ok and "yours vs richardson" in report.comparisons, str(report)
    bad = gradlab.check_function(body, lambda w: 2 * w + np.r_[0, 0, 1e-3, 0, 0], w, against=("numeric",))
    assert not bad.ok and _only(bad, "entries").entries == [(2,)]


def test_against_jax_alone_refuses_a_function_jax_cannot_trace():
    with pytest.raises(gradlab.GradlabError, match="jax witness unavailable"):
        gradlab.check_function(_quadratic_np, _quadratic_grad, np.ones(2), np.eye(2), wrt="w", against=("jax",))


# ---------------------------------------------------------------------- three-way blame


def _split_world(w):
    """Under jax: sum(w^2). Under numpy: the same value at w0, plus 1e-3 * sum(w - w0) -- two
    witnesses that see different functions, to exercise the blame table."""
    xp = array_namespace(w)
    value = xp.sum(w * w)
    if isinstance(w, np.ndarray):
        value = value + 1e-3 * float(np.sum(w - W0))
    return value


W0 = np.array([0.3, -0.7, 1.1])


@pytest.mark.parametrize("grad, ok, kinds", [
    (lambda w: 2 * w, True, {"numeric_problem"}),  # yours = jax, finite differences differ: not yours
    (lambda w: 2 * w + 1e-3, False, {"function_suspect"}),  # yours = finite differences, jax differs
    (lambda w: 3 * w, False, {"function_suspect", "constant_factor"}),  # yours matches neither
])
def test_blame_is_three_way(grad, ok, kinds):
    report = gradlab.check_function(_split_world, grad, W0.copy())
    assert report.ok is ok, str(report)
    assert kinds <= set(report.kinds), str(report)
    blames = {f.kind: f.blame for f in report.findings}
    if "numeric_problem" in blames:
        assert blames["numeric_problem"] == "numeric"
    if "function_suspect" in blames:
        assert blames["function_suspect"] == "function"


# ------------------------------------------------------------------- patterns and kinks


def _mse(W, X, Y):
    R = X @ W - Y
    return 0.5 * np.sum(R * R) / X.shape[0]


def _mse_grad(W, X, Y):
    return X.T @ (X @ W - Y) / X.shape[0]


def _mse_inputs(seed=0, N=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(3, 3)), rng.normal(size=(N, 3)), rng.normal(size=(N, 3))


@pytest.mark.parametrize("bug, kind, cause", [
    (lambda g, W, X, Y: -g, "sign_flip", "sign flipped"),
    (lambda g, W, X, Y: 0 * g, "zero_gradient", "all zero"),
    (lambda g, W, X, Y: g.T, "transposed", "transposed"),
    (lambda g, W, X, Y: 2 * g, "constant_factor", "counted twice (factor 2)"),
])
def test_patterns_are_named(bug, kind, cause):
    ins = _mse_inputs()
    report = gradlab.check_function(_mse, lambda W, X, Y: bug(_mse_grad(W, X, Y), W, X, Y), *ins, wrt="W")
    f = _only(report, kind)
    assert f.input == "W" and f.position == 0 and f.cause == cause, str(report)


def test_a_gradient_of_the_transposed_shape_is_said_so_and_judged_transposed_back():
    rng = np.random.default_rng(0)
    W, X, Y = rng.normal(size=(3, 2)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    report = gradlab.check_function(_mse, lambda W, X, Y: _mse_grad(W, X, Y).T, W, X, Y, wrt="W")
    assert report.kinds == ["transposed"] and not report.ok
    assert report.findings[0].cause == "transposed shape"


def test_partial_batch_rows_of_a_batch_input():
    def loss(x, y):
        N = x.shape[0]
        loss_value = 0.5 * np.sum((x - y) ** 2) / N
        dx = np.zeros_like(x)
        for i in range(N - 1):  # stops one example early
            dx[i] = (x[i] - y[i]) / N
        return loss_value, dx

    rng = np.random.default_rng(0)
    report = gradlab.check_function(loss, None, rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), wrt="x")
    f = _only(report, "partial_batch")
    assert f.input == "x" and f.extra["k"] == 4
    assert f.groups == [{"axis": 0, "name": "row", "indices": [4]}] and "(they are zero)" in f.sentence


def test_partial_batch_of_a_weight_is_found_by_cutting_the_batch():
    def grad(W, X, Y):
        N = X.shape[0]
        return X[:N - 1].T @ (X[:N - 1] @ W - Y[:N - 1]) / N  # the last example left out

    report = gradlab.check_function(_mse, grad, *_mse_inputs(N=6), wrt="W")
    f = _only(report, "partial_batch")
    assert f.input == "W" and f.extra["k"] == 5 and f.extra["factor"] == pytest.approx(5 / 6)


def _hinge(w):
    return np.sum(np.maximum(w, 0.0))


def test_kink_is_judged_by_one_sided_quotients():
    w = np.array([0.0, 1e-7, -0.5, 0.8, -1e-8])
    sub = lambda w: (w > 0).astype(float)  # a valid subgradient at 0
    report = gradlab.check_function(_hinge, sub, w, against=("numeric",))
    assert report.ok, str(report)
    kinked = {tuple(k["entry"]) for k in report.kinks}
    assert {(0,), (1,), (4,)} <= kinked and (2,) not in kinked and (3,) not in kinked
    assert all(k["ok"] for k in report.kinks)
    assert _only(report, "kink").blame == "numeric"
    k1 = next(k for k in report.kinks if k["entry"] == [1])
    assert k1["right"] == pytest.approx(1.0, abs=1e-6) and k1["left"] == pytest.approx(0.0, abs=0.1)
    wrong = gradlab.check_function(_hinge, lambda w: sub(w) + np.r_[3.0, 0, 0, 0, 0], w, against=("numeric",))
    assert not wrong.ok
    assert next(k for k in wrong.kinks if k["entry"] == [0])["ok"] is False
    assert (0,) in {tuple(e) for f in wrong.findings if f.blame == "user" for e in f.entries}


def test_kink_with_jax_accepts_either_side():
    def relu_sum(w):
        xp = array_namespace(w)
        return xp.sum(xp.maximum(w, 0.0))

    w = np.array([0.0, 0.4, -0.3])
    report = gradlab.check_function(relu_sum, lambda w: (w > 0).astype(float), w)
    assert report.ok, str(report)  # jnp.maximum splits the tie (0.5); 0 is as valid at the kink


# ---------------------------------------------------------------- purity and determinism


def test_grad_writing_into_an_input_is_found_and_the_caller_keeps_its_data():
    def grad(W, X, Y):
        X -= X.mean(axis=0)  # in place: the caller's data would change
        return _mse_grad(W, X, Y)

    ins = _mse_inputs()
    before = [a.copy() for a in ins]
    report = gradlab.check_function(_mse, grad, *ins, wrt="W")
    f = _only(report, "input_mutation")
    assert f.extra["argument"] == "X (input 1)" and f.extra["n_entries"] == 15
    assert f.values and set(f.values[0]) == {"entry", "before", "after"} and not report.ok
    assert all(np.array_equal(a, b) for a, b in zip(ins, before))


def test_random_function_values_are_non_determinism_and_not_judged():
    state = np.random.default_rng(0)

    def f(w):
        return np.sum(w ** 2) + 1e-6 * state.random()

    report = gradlab.check_function(f, lambda w: 2 * w, np.ones(3))
    f0 = _only(report, "non_determinism")
    assert f0.input is None and "not judged" in f0.sentence and not report.comparisons


def test_gradient_with_state_is_non_determinism():
    calls = []

    def grad(w):
        calls.append(1)
        return 2 * w * len(calls)

    report = gradlab.check_function(lambda w: np.sum(w ** 2), grad, np.ones(3), against=("numeric",))
    f = _only(report, "non_determinism")
    assert f.input == "w" and f.values[0]["first"] != f.values[0]["second"]


# ------------------------------------------------------------------------- bad outputs


@pytest.mark.parametrize("returned, kind, blame, cause", [
    (lambda W, X, Y: (_mse_grad(W, X, Y), _mse_grad(W, X, Y)), "bad_output", "user", "count"),
    (lambda W, X, Y: _mse_grad(W, X, Y)[:2], "bad_output", "user", "shape (2, 3)"),
    (lambda W, X, Y: _mse_grad(W, X, Y) * np.nan, "bad_output", "user", "NaN/inf"),
    (lambda W, X, Y: "gradient", "bad_output", "user", "type str"),
    (lambda W, X, Y: _mse_grad(W, X, Y).astype(np.float32), "bad_output", "precision", "dtype float32"),
    (lambda W, X, Y: _mse_grad(W, X, Y)[None], "bad_output", "shape", "shape (1, 3, 3)"),
])
def test_bad_outputs(returned, kind, blame, cause):
    report = gradlab.check_function(_mse, returned, *_mse_inputs(), wrt="W")
    f = report.findings[0]
    assert (f.kind, f.blame, f.cause) == (kind, blame, cause), str(report)
    assert report.ok is (blame in ("precision", "shape")), str(report)


def test_several_inputs_as_tuple_or_dict_and_a_float_scalar_input():
    def f(w, b, scale):
        return scale * np.sum((w + b) ** 2)

    def g(w, b, scale):
        return {"w": 2 * scale * (w + b), "b": 2 * scale * np.sum(w + b), "scale": np.sum((w + b) ** 2)}

    w = np.array([0.5, -1.0, 2.0])
    report = gradlab.check_function(f, g, w, 0.3, 1.7, wrt=["w", "b", 2])
    assert report.ok, str(report)
    assert [i["name"] for i in report.info["inputs"]] == ["w", "b", "scale"]
    wrong = gradlab.check_function(f, lambda *a: (g(*a)["w"], g(*a)["b"] * 2, g(*a)["scale"]), w, 0.3, 1.7,
                                   wrt=(0, 1, 2))
    assert [f.input for f in wrong.findings if f.blame == "user"] == ["b"]


# ---------------------------------------------------------------------------- fast mode


def test_fast_mode_finds_a_single_wrong_entry_for_fewer_evaluations_than_a_full_check():
    rng = np.random.default_rng(0)
    a = rng.normal(size=2500)

    def f(w):
        return np.sum(a * w) + 0.5 * np.sum(w * w)

    def grad(w):
        g = a + w
        g[1234] += 0.5
        return g

    w = rng.normal(size=2500)
    report = gradlab.check_function(f, grad, w, against=("numeric",))
    assert report.info["mode"] == "fast" and report.fast is not None
    found = _only(report, "entries")
    assert found.entries == [(1234,)] and found.values[0]["yours"] - found.values[0]["expected"] == pytest.approx(0.5)
    assert report.fast["evaluations"] < report.fast["full_evaluations"] == 4 * 2500 + 1
    good = gradlab.check_function(f, lambda w: a + w, w, against=("numeric",))
    assert good.ok and good.info["mode"] == "fast"


def test_fast_mode_names_a_constant_factor():
    a = np.linspace(-1, 1, 3000)
    report = gradlab.check_function(lambda w: np.sum(a * w * w), lambda w: -2 * a * w, np.ones(3000), mode="fast",
                                    against=("numeric",))
    f = _only(report, "sign_flip")
    assert f.input == "w" and f.extra["factor"] == pytest.approx(-1.0, rel=1e-4)


# --------------------------------------------------------------------------- the report


def test_report_json_and_text():
    report = _check("linear_regression", "bug", inputs_for("linear_regression", np.random.default_rng(0)))
    d = json.loads(report.to_json())
    assert d["ok"] is False and d["check"] == "check_function"
    assert d["findings"][0]["input"] == "theta" and d["findings"][0]["position"] == 0
    assert d["findings"][0]["entries"] == [[0]]
    text = str(report)
    assert "theta (input 0)" in text and "verdict: FAIL" in text and "[entries]" in text


# ------------------------------------------------------------------------ user code errors


def test_user_exception_is_a_user_code_error_naming_the_function():
    def grad(w):
        raise ZeroDivisionError("boom")

    with pytest.raises(UserCodeError, match=r"grad 'grad' raised ZeroDivisionError: boom"):
        gradlab.check_function(lambda w: np.sum(w), grad, np.ones(2))


def test_os_exit_in_user_code_is_an_error_not_the_end():
    import os

    def grad(w):
        os._exit(0)

    with pytest.raises(UserCodeError, match="os._exit"):
        gradlab.check_function(lambda w: np.sum(w), grad, np.ones(2))


# --------------------------------------------------------------------------- bad input


def _f(w, X):
    return np.sum(X @ w)


@pytest.mark.parametrize("args, kwargs, match", [
    ((np.ones(2), np.ones(2), np.ones((3, 2))), {}, r"grad must be a callable or None"),
    ((_f, None), {}, r"needs at least one input"),
    ((_f, None, np.ones(2), np.ones((3, 2)), 3), {}, r"f must take 3 positional argument"),
    ((_f, None, np.ones(2), np.ones((3, 2))), {"wrt": "v"}, r"wrt must be an input position 0..1, a name from"),
    ((_f, None, np.ones(2), np.ones((3, 2))), {"wrt": 5}, r"wrt must be an input position"),
    ((_f, None, np.ones(2), np.ones((3, 2))), {"wrt": ["w", 0]}, r"wrt names w \(input 0\) twice"),
    ((_f, None, np.ones(2), np.arange(6).reshape(3, 2)), {"wrt": "X"}, r"only float arrays and floats"),
    ((_f, None, [1.0, 2.0], {"a": 1}), {}, r"no input of f .* is a float array"),
    ((_f, None, np.ones(2), np.ones((3, 2))), {"mode": "quick"}, r"mode must be one of"),
    ((_f, None, np.ones(2), np.ones((3, 2))), {"against": "jax"}, r"against must be a sequence"),
    ((_f, None, np.ones(2), np.ones((3, 2))), {"against": ("jax", "backprop")}, r"against must be distinct"),
    ((_f, None, np.ones(2), np.ones((3, 2))), {"seed": -1}, r"seed must be an integer >= 0"),
    ((_f, None, np.ones(2), np.ones((3, 2))), {"names": ["a"]}, r"names must be a sequence of 2"),
    ((_f, None, np.array([1.0, np.nan]), np.ones((3, 2))), {}, r"w must hold only finite numbers"),
    ((lambda w: w, lambda w: w, np.ones(3)), {}, r"must return a scalar"),
    ((lambda w: np.sum(w), None, np.ones(3)), {}, r"must return \(value, gradients\) when grad is None"),
])
def test_bad_input_is_a_gradlab_error(args, kwargs, match):
    with pytest.raises(gradlab.GradlabError, match=match):
        gradlab.check_function(*args, **kwargs)


def test_fast_mode_with_jax_compares_every_entry_exactly_and_probes_jax_with_directions():
    a = np.linspace(-1, 1, 2500)

    def f(w):
        xp = array_namespace(w)
        return xp.sum(a * w * w)

    def grad(w):
        g = 2 * a * w
        g[7] *= 3.0
        return g

    w = np.linspace(0.5, 1.5, 2500)
    report = gradlab.check_function(f, grad, w)
    assert report.info["mode"] == "fast" and report.comparisons["yours vs jax"]["ok"] is False
    assert report.comparisons["jax vs central (directions)"]["ok"] is True
    found = [x for x in report.findings if x.blame == "user"]
    assert len(found) == 1 and found[0].entries == [(7,)] and found[0].input == "w"
