"""gradlab.check: broken back-propagations caught and explained, correct ones never flagged,
purity, blame, fast mode, shrinking and the CLI."""

import dataclasses
import json
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradlab
from gradlab.check import FULL_MODE_MAX_PARAMS, UserCodeError, load_function
from gradlab.cli import main
from gradlab.sources import SOURCES

from broken import backprop, seed_cost, seed_gradient


def _found(report):
    return {(f.kind, f.layer) for f in report.findings}


def _only(report, kind, layer):
    hits = [f for f in report.findings if f.kind == kind and f.layer == layer]
    assert len(hits) == 1, str(report)
    return hits[0]


# ------------------------------------------------------------------ broken implementations

BROKEN = [
    # name, function, sizes, check keywords, expected (kind, layer) set, expected cause of the first
    ("missing-g-prime", backprop(gprime_missing_at=2), (3, 5, 3), {}, {("one_layer", 1)}, "missing g'(z_2)"),
    ("bias-regularised", backprop(reg_bias=True), (3, 5, 3), {},
     {("regularisation", 1), ("regularisation", 2)}, "bias regularised"),
    ("missing-1-over-m", backprop(no_m=True), (3, 5, 3), {},
     {("constant_factor", 1), ("constant_factor", 2)}, "missing 1/m (factor m = 5)"),
    ("sign-flip", backprop(flip=True), (3, 5, 3), {}, {("sign_flip", 1), ("sign_flip", 2)}, "sign flipped"),
    ("transposed-delta", backprop(transpose_layer=1), (3, 5, 3), {}, {("transposed", 1)}, "transposed block"),
    ("seed-in-place-bias-zeroing", seed_gradient(copy=False), (3, 5, 3), {"signature": "seed"},
     {("input_mutation", 1), ("input_mutation", 2)}, "bias column zeroed in place"),
    ("forward-without-bias", backprop(no_bias_forward=True), (3, 5, 3), {},
     {("forward_without_bias", 1), ("forward_without_bias", 2)}, "bias of Theta1 ignored in the forward pass"),
    ("four-layer-wrong-hidden-delta", backprop(gprime_missing_at=3), (4, 6, 5, 3), {}, {("one_layer", 2)},
     "missing g'(z_3)"),
    ("bias-column-only", backprop(wrong_bias_sum=True), (3, 5, 3), {}, {("bias_column", 1)},
     "counted twice (factor 2)"),
]


@pytest.mark.parametrize("fn, sizes, kw, expected, cause", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_backprop_is_caught_with_layer_and_kind(fn, sizes, kw, expected, cause):
    report = gradlab.check(fn, sizes, **kw)
    assert not report.ok
    assert _found(report) == expected, str(report)
    assert report.findings[0].cause == cause
    d = json.loads(report.to_json())
    assert d["ok"] is False and {(f["kind"], f["layer"]) for f in d["findings"]} == expected
    for f in d["findings"]:
        assert f["sentence"] and f["experiment"] and f["rows"] and f["columns"]


def test_missing_g_prime_of_tanh_units_is_named_as_for_sigmoid_ones():
    # The delta diagnosis takes g' from the activation table: with tanh hidden units the
    # missing factor is 1 - a^2, not the sigmoid's a (1 - a).
    report = gradlab.check(backprop(gprime_missing_at=2), gradlab.Network((3, 5, 3), "tanh"))
    assert _found(report) == {("one_layer", 1)}, str(report)
    assert report.findings[0].cause == "missing g'(z_2)"
    assert "g'(z_2) = 1 - a_2^2" in report.findings[0].sentence


def test_a_correct_tanh_gradient_passes():
    assert gradlab.check(backprop(), gradlab.Network((3, 5, 3), "tanh")).ok


def test_missing_g_prime_is_blamed_on_the_user_three_ways():
    report = gradlab.check(backprop(gprime_missing_at=2), (3, 5, 3))
    c = report.comparisons
    assert not c["yours vs jax"]["ok"] and not c["yours vs numeric"]["ok"] and c["jax vs numeric"]["ok"]
    f = report.findings[0]
    assert f.blame == "user" and f.rows == [0, 1, 2, 3, 4] and f.columns == [0, 1, 2, 3]
    assert "g'(z_2)" in f.sentence and "Theta2" not in f.sentence.split("(the layers above")[0].split(":")[0]


def test_wrong_hidden_delta_in_a_four_layer_network_names_where_it_enters():
    f = _only(gradlab.check(backprop(gprime_missing_at=3), (4, 6, 5, 3)), "one_layer", 2)
    assert f.extra["inherited_by"] == [1]  # Theta1 is wrong only by inheritance, and the report says so
    assert "Theta1 is wrong only because" in f.sentence


def test_bias_regularisation_bug_is_invisible_at_lambda_zero():
    assert gradlab.check(backprop(reg_bias=True), (3, 5, 3), lam=0.0).ok
    f = _only(gradlab.check(backprop(reg_bias=True), (3, 5, 3), lam=2.0), "regularisation", 1)
    assert f.columns == [0]  # only the bias column of the regularisation term is wrong


@pytest.mark.parametrize("scale, said", [(5.0, "lam where lam/m belongs"), (0.5, "lam/(2m)")])
def test_regularisation_with_the_wrong_factor_is_named(scale, said):
    def wrong_reg(problem, params):
        g = gradlab.gradient(problem, params)
        for D, theta in zip(problem.network.unpack(g), problem.network.unpack(params)):
            D[:, 1:] += (scale - 1.0) * problem.lam / problem.m * theta[:, 1:]
        return g

    report = gradlab.check(wrong_reg, (3, 5, 3), examples=5, lam=1.5)
    assert _found(report) == {("regularisation", 1), ("regularisation", 2)}
    assert all(said in f.cause for f in report.findings), str(report)
    assert gradlab.check(wrong_reg, (3, 5, 3), lam=0.0).ok


def test_missing_1_over_m_reports_the_factor_m():
    report = gradlab.check(backprop(no_m=True), (3, 5, 3), examples=7)
    assert [f.extra["factor"] for f in report.findings] == pytest.approx([7.0, 7.0])
    assert "missing 1/m" in str(report)


def test_seed_bug_gradient_itself_is_right_but_the_mutation_is_named():
    report = gradlab.check(seed_gradient(copy=False), (3, 5, 3), signature="seed")
    # References are computed on pristine copies: the returned gradient is right ...
    assert report.comparisons["yours vs jax"]["ok"] and report.comparisons["yours vs numeric"]["ok"]
    # ... and the writes into params are found: which argument, which entries.
    for layer, rows in ((1, [0, 1, 2, 3, 4]), (2, [0, 1, 2])):
        f = _only(report, "input_mutation", layer)
        assert f.extra["argument"] == "params" and f.columns == [0] and f.rows == rows
        assert all(v["after"] == 0.0 and v["before"] != 0.0 for v in f.values)
        assert "views of the caller's vector" in f.sentence and "again" in f.sentence


def test_seed_style_correct_gradient_and_cost_pass():
    report = gradlab.check(seed_gradient(copy=True), (3, 5, 3), signature="seed", cost_fn=seed_cost)
    assert report.ok and report.findings == []


# ------------------------------------------------------------------ purity, repeat, output


def test_writes_into_X_and_y_are_detected_and_cannot_fool_the_check():
    good = seed_gradient(copy=True)

    def scales_X_after(nn_params, a, b, c, X, y, lam):
        g = good(nn_params, a, b, c, X, y, lam)
        X *= 2.0
        y[0] = 99
        return g

    report = gradlab.check(scales_X_after, (3, 5, 3), signature="seed")
    args = {f.extra["argument"]: f for f in report.findings if f.kind == "input_mutation"}
    assert set(args) == {"X", "y"} and args["X"].extra["changed"] == 15 and args["y"].extra["changed"] == 1
    assert args["y"].values[0]["after"] == 99


def test_zeroing_params_before_the_forward_pass_is_caught_twice():
    # Writes into params *before* computing: the gradient is taken at the wrong point, and
    # the reference (computed on pristine params) sees it.
    def zero_first(problem, params):
        for theta in problem.network.unpack(params):
            theta[:, 0] = 0.0
        return gradlab.gradient(problem, params)

    report = gradlab.check(zero_first, (3, 5, 3))
    kinds = _found(report)
    assert ("input_mutation", 1) in kinds and ("forward_without_bias", 1) in kinds


def test_problem_arrays_written_by_a_gradlab_signature_function():
    def writes_X(problem, params):
        problem.X[0, 0] = 7.0
        return gradlab.gradient(gradlab.Problem(problem.network, problem.X, problem.y, problem.lam), params)

    report = gradlab.check(writes_X, (3, 5, 3))
    f = next(f for f in report.findings if f.kind == "input_mutation")
    assert f.extra["argument"] == "problem.X" and f.values[0]["entry"] == "0,0"


def test_non_determinism_is_found_by_repeating_the_call():
    calls = []

    def drifting(problem, params):
        calls.append(1)
        return gradlab.gradient(problem, params) * (1.0 + 1e-3 * len(calls))

    report = gradlab.check(drifting, (3, 5, 3))
    assert "non_determinism" in report.kinds


@pytest.mark.parametrize("returned, cause", [
    (lambda g: g[:-1], "shape (37,)"),
    (lambda g: g.reshape(2, 19), "shape (2, 19)"),
    (lambda g: None, "returned None"),
    (lambda g: np.r_[np.nan, g[1:]], "NaN/inf"),
    (lambda g: g.astype(np.int64), "dtype int64"),
])
def test_bad_output_is_named(returned, cause):
    def fn(problem, params):
        return returned(gradlab.gradient(problem, params))

    report = gradlab.check(fn, (3, 5, 3), against=("backprop",))
    f = next(f for f in report.findings if f.kind == "bad_output")
    assert f.cause == cause and not report.ok


def test_a_correct_float32_gradient_is_no_false_alarm_but_a_wrong_one_is_caught():
    to32 = lambda fn: lambda problem, params: fn(problem, params).astype(np.float32)  # noqa: E731
    report = gradlab.check(to32(backprop()), (3, 5, 3))
    assert report.ok and report.kinds == ["bad_output"] and report.findings[0].blame == "precision"
    report = gradlab.check(to32(backprop(gprime_missing_at=2)), (3, 5, 3))
    assert not report.ok and ("one_layer", 1) in _found(report)


def test_fast_mode_names_a_constant_factor_without_bisecting():
    report = gradlab.check(backprop(no_m=True), (40, 12, 4), examples=30, lam=0.0, mode="fast")
    assert _found(report) == {("constant_factor", 1), ("constant_factor", 2)}
    assert [f.cause for f in report.findings] == ["missing 1/m (factor m = 30)"] * 2


def test_seed_signature_accepts_a_column_vector_result():
    good = seed_gradient(copy=True)
    report = gradlab.check(lambda *a: good(*a).reshape(-1, 1), (3, 5, 3), signature="seed")
    assert report.ok


# ------------------------------------------------------------------ blame


def _rigged_numeric(monkeypatch, bump):
    src = SOURCES["numeric"]

    def estimate(problem, params):
        g, e = src.estimate(problem, params)
        g = g.copy()
        g[3] += bump
        return g, e

    monkeypatch.setitem(SOURCES, "numeric", dataclasses.replace(src, estimate=estimate))


def test_user_equal_to_jax_while_numeric_differs_is_not_blamed_on_the_user(monkeypatch):
    _rigged_numeric(monkeypatch, 1e-3)
    report = gradlab.check(backprop(), (3, 5, 3))
    assert report.ok
    f = _only(report, "numeric_problem", 1)
    assert f.blame == "numeric" and f.rows == [0] and f.columns == [3]


def test_all_three_differ_makes_the_cost_suspect(monkeypatch):
    _rigged_numeric(monkeypatch, 1e-3)
    report = gradlab.check(backprop(flip=True), (3, 5, 3))
    assert not report.ok and report.findings[0].kind == "cost_suspect" and report.findings[0].blame == "cost"
    assert ("sign_flip", 1) in _found(report)


def test_a_wrong_cost_with_its_own_consistent_gradient_is_blamed_on_the_cost():
    def cost_with_bias(problem, params):
        extra = sum(float(np.sum(t[:, 0] ** 2)) for t in problem.network.unpack(params))
        return gradlab.cost(problem, params) + problem.lam / (2 * problem.m) * extra

    report = gradlab.check(backprop(reg_bias=True), (3, 5, 3), cost_fn=cost_with_bias)
    f = _only(report, "cost_mismatch", None)
    assert f.blame == "cost" and f.cause == "regularisation term of the cost"
    assert f.extra["gradient_consistent_with_your_cost"] is True
    assert "Your gradient is the gradient of your own cost" in f.sentence


# ------------------------------------------------------------------ correct code, many examples

N_CORRECT = int(settings.default.max_examples * 1.75)  # 350 per property under the CI profile


@st.composite
def _cases(draw, layers=st.integers(2, 4)):
    n = draw(layers)
    return {
        "sizes": tuple(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))),
        "examples": draw(st.integers(1, 6)),
        "lam": draw(st.one_of(st.just(0.0), st.floats(0.0, 10.0))),
        "seed": draw(st.integers(0, 10_000)),
        "weight_scale": draw(st.floats(0.0, 3.0)),
    }


def _check(fn, case, **kw):
    c = dict(case)
    return gradlab.check(fn, c.pop("sizes"), **c, **kw)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@settings(max_examples=N_CORRECT)
@given(_cases())
def test_gradlab_backprop_is_never_flagged_by_finite_differences(case):
    report = _check(lambda problem, params: gradlab.gradient(problem, params), case, against=("numeric",))
    assert report.ok, str(report)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@settings(max_examples=N_CORRECT)
@given(_cases())
def test_plain_backprop_written_in_the_test_is_never_flagged(case):
    report = _check(backprop(), case, against=("backprop",))
    assert report.ok, str(report)


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@settings(max_examples=N_CORRECT)
@given(_cases(layers=st.just(3)))
def test_plain_seed_style_loop_is_never_flagged(case):
    report = _check(seed_gradient(copy=True), case, signature="seed", against=("backprop", "numeric"))
    assert report.ok, str(report)


# ------------------------------------------------------------------ fast mode


def _one_wrong(index, delta=1e-3):
    def fn(problem, params):
        g = gradlab.gradient(problem, params)
        g[index] += delta
        return g

    return fn


def test_fast_mode_localises_one_wrong_entry_by_bisection():
    net = gradlab.Network((40, 12, 4))
    index = net.offsets[1] + 2 * 13 + 5  # Theta2[2, 5]
    report = gradlab.check(_one_wrong(index), net.sizes, examples=30, mode="fast")
    assert not report.ok
    f = _only(report, "entries", 2)
    assert (f.rows, f.columns) == ([2], [5]) and f.values[0]["yours"] - f.values[0]["expected"] == pytest.approx(1e-3, rel=1e-3)
    # O(log P) evaluations, far below the 2P of a full central-difference check.
    assert report.fast["cost_evaluations"] < 0.2 * report.fast["full_check_evaluations"]


def test_fast_mode_finds_several_wrong_entries_in_several_layers():
    net = gradlab.Network((40, 12, 4))
    wrong = [3, 300, net.offsets[1] + 20]

    def fn(problem, params):
        g = gradlab.gradient(problem, params)
        g[wrong] += [1e-3, -2e-3, 5e-4]
        return g

    report = gradlab.check(fn, net.sizes, examples=30, mode="fast", seed=2)
    assert sorted(v["index"] for f in report.findings for v in f.values) == wrong
    assert _found(report) == {("entries", 1), ("entries", 2)}


def test_fast_mode_names_a_bias_column_error():
    def bias_off(problem, params):
        g = gradlab.gradient(problem, params)
        problem.network.unpack(g)[0][:, 0] *= 1.5
        return g

    report = gradlab.check(bias_off, (40, 12, 4), examples=30, mode="fast")
    assert ("bias_column", 1) in _found(report) and _only(report, "bias_column", 1).columns == [0]


@pytest.mark.parametrize("seed", range(5))
def test_fast_mode_does_not_flag_a_correct_gradient(seed):
    report = gradlab.check(backprop(), (40, 12, 4), examples=30, seed=seed, mode="fast")
    assert report.ok and report.findings == [], str(report)
    assert all(lay["detectable_error"] > 0 for lay in report.fast["layers"])


def test_auto_mode_picks_full_for_small_and_fast_for_large_networks():
    assert gradlab.check(backprop(), (3, 5, 3), against=("backprop",)).info["mode"] == "full"
    big = (FULL_MODE_MAX_PARAMS // 5, 5, 2)
    assert gradlab.Network(big).n_params > FULL_MODE_MAX_PARAMS
    assert gradlab.check(backprop(), big, examples=3).info["mode"] == "fast"


# ------------------------------------------------------------------ shrinking


def test_shrink_finds_the_smallest_failing_case_and_a_reproducer(tmp_path):
    module = tmp_path / "student.py"
    module.write_text("import sys\nsys.path.insert(0, %r)\nfrom broken import backprop\n"
                      "grad = backprop(gprime_missing_at=2)\n" % str(__import__("pathlib").Path(__file__).parent))
    target = f"{module}:grad"
    report = gradlab.shrink(load_function(target), target=target, max_examples=50)
    r = report.reproducer
    assert not report.ok and len(r["sizes"]) == 3 and r["sizes"][1] == 1 and r["examples"] == 1
    assert f"gradlab check {target} --sizes" in r["command"]
    namespace = {}
    exec(r["pytest"], namespace)
    with pytest.raises(AssertionError, match="missing g'"):
        namespace[f"test_grad_smallest_failing_case"]()


def test_shrink_returns_none_when_nothing_fails():
    assert gradlab.shrink(backprop(), max_examples=20) is None


# ------------------------------------------------------------------ CLI and errors


@pytest.fixture
def student(tmp_path):
    path = tmp_path / "student.py"
    path.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        from broken import backprop, seed_gradient, seed_cost
        good = backprop()
        gprime = backprop(gprime_missing_at=2)
        nnGradient = seed_gradient(copy=False)
        nnCostFunction = seed_cost
        def boom(problem, params):
            raise KeyError("Theta3")
        def three(a, b, c):
            pass
    """))
    (tmp_path / "broken_import.py").write_text("import numpy\nraise RuntimeError('half-written file')\n")
    return tmp_path


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
def test_cli_exit_status_pass_and_fail(student, capsys):
    assert main(["check", f"{student}/student.py:good"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    assert main(["check", f"{student}/student.py:gprime", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["findings"][0]["kind"] == "one_layer" and d["findings"][0]["layer"] == 1
    assert main(["check", f"{student}/student.py:nnGradient", "--signature", "seed", "--cost", "nnCostFunction"]) == 1
    out = capsys.readouterr().out
    assert "[input_mutation] Theta1 (bias column zeroed in place)" in out


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
def test_cli_module_target_and_shrink(student, capsys):
    assert main(["check", "gradlab.sources.backprop:gradient", "--sizes", "4,6,6,2"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    assert main(["check", f"{student}/student.py:gprime", "--shrink", "--max-examples", "30"]) == 1
    out = capsys.readouterr().out
    assert "smallest failing case found by shrinking" in out and f"gradlab check {student}/student.py:gprime" in out


@pytest.mark.parametrize("argv, pattern", [
    (["{d}/student.py:boom"], r"grad_fn boom raised KeyError: 'Theta3'"),
    (["{d}/nowhere.py:f"], r"file not found: .*nowhere.py"),
    (["{d}/student.py:missing"], r"no function 'missing'"),
    (["{d}/student.py:three"], r"grad_fn must take 2 positional arguments"),
    (["{d}/student.py:nnGradient", "--signature", "seed", "--sizes", "3,4,5,2"], r"sizes.*three layer sizes"),
    (["{d}/broken_import.py:f"], r"importing .*broken_import.py raised RuntimeError: half-written file"),
    (["no_such_module_xyz:f"], r"no module named 'no_such_module_xyz'"),
    (["{d}/student.py"], r"target must be PATH.py:FUNC or module:FUNC"),
])
def test_cli_load_and_user_errors_are_one_line_exit_2(student, capsys, argv, pattern):
    import re

    assert main(["check"] + [a.format(d=student) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gradlab: error: ") and re.search(pattern, err), err
    assert "Traceback" not in err


def test_user_code_error_is_a_gradlab_error():
    with pytest.raises(UserCodeError, match="ZeroDivisionError"):
        gradlab.check(lambda problem, params: 1 / 0, (3, 5, 3))


@pytest.mark.parametrize("kw, pattern", [
    ({"signature": "torch"}, r"signature must be one of 'gradlab', 'seed'; got signature='torch'"),
    ({"mode": "quick"}, r"mode must be one of 'auto', 'full', 'fast'; got mode='quick'"),
    ({"lam": -1.0}, r"lam must be a finite real number >= 0; got lam=-1.0"),
    ({"examples": 0}, r"examples must be an integer >= 1; got examples=0"),
    ({"against": ("torch",)}, r"against must be distinct source names.*'jax'"),
    ({"cost_fn": 3}, r"cost_fn must be a callable or None; got cost_fn=3"),
    ({"weight_scale": float("inf")}, r"weight_scale must be a finite real number >= 0"),
])
def test_check_validates_its_arguments(kw, pattern):
    with pytest.raises(gradlab.GradlabError, match=pattern):
        gradlab.check(backprop(), (3, 5, 3), **kw)


def test_same_seed_same_report():
    a = gradlab.check(backprop(no_m=True), (3, 5, 3), seed=4).to_json()
    b = gradlab.check(backprop(no_m=True), (3, 5, 3), seed=4).to_json()
    assert a == b
