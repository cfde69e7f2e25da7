"""gradlab.check on functions as they come: result shapes, (J, grad) pairs, per-matrix
gradients, call templates, labels 1..K and column-major unrolling -- given as options or
detected -- without an adapter."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab.check import CallTemplate, UserCodeError, load_function, load_target
from gradlab.cli import main

import ports
from broken import backprop, seed_gradient

HERE = Path(__file__).parent


def _found(report):
    return {(f.kind, f.layer) for f in report.findings}


# ------------------------------------------------------------------ result shapes


@pytest.mark.parametrize("shape", ["flat", "column", "row"])
@pytest.mark.parametrize("signature", ["gradlab", "seed"])
def test_a_flat_gradient_of_any_of_the_three_shapes_is_accepted_for_every_signature(shape, signature):
    good = backprop() if signature == "gradlab" else seed_gradient(copy=True)
    reshape = {"flat": lambda g: g, "column": lambda g: g.reshape(-1, 1), "row": lambda g: g.reshape(1, -1)}[shape]
    report = gradlab.check(lambda *a: reshape(good(*a)), (3, 5, 3), signature=signature)
    assert report.ok and report.findings == [], str(report)


def test_a_pair_is_read_as_j_and_the_gradient_and_j_is_checked_as_the_cost():
    good = backprop()
    right = gradlab.check(lambda p, w: (gradlab.cost(p, w), good(p, w)), (3, 5, 3))
    assert right.ok and right.info["cost"] == "returned with the gradient"
    # J without the regularisation term: the gradient is right, J is not -- and the report says which.
    wrong = gradlab.check(lambda p, w: (gradlab.cost(p.with_lam(0.0), w), good(p, w)), (3, 5, 3))
    f = next(f for f in wrong.findings if f.kind == "cost_mismatch")
    assert not wrong.ok and f.cause == "regularisation term of the cost" and f.blame == "cost"
    assert "the J that" in f.sentence and "Your gradient is right" in f.sentence
    assert [k for k in wrong.kinds if k != "cost_mismatch"] == []


def test_per_matrix_gradients_are_accepted_as_matrices_or_as_vectors_in_the_chosen_order():
    def as_matrices(problem, params):
        return problem.network.unpack(gradlab.gradient(problem, params))

    assert gradlab.check(as_matrices, (3, 5, 3)).ok

    def as_columns(problem, Theta1, Theta2):  # each matrix's gradient unrolled column by column
        params = problem.network.pack([Theta1, Theta2])
        return [D.ravel(order="F") for D in as_matrices(problem, params)]

    call = "as_columns(problem, Theta1, Theta2)"
    assert gradlab.check(as_columns, (3, 5, 3), unroll="F", call=call).ok
    report = gradlab.check(as_columns, (3, 5, 3), call=call)
    assert report.kinds == ["convention"] and report.findings[0].extra["options"] == "--unroll F", str(report)


def test_a_transposed_matrix_among_per_matrix_gradients_is_named():
    def transposed(problem, params):
        D1, D2 = problem.network.unpack(gradlab.gradient(problem, params))
        return [D1.T, D2]

    report = gradlab.check(transposed, (3, 5, 3))
    f = report.findings[0]
    assert f.kind == "bad_output" and f.layer == 1 and "it is transposed" in f.sentence, str(report)


@pytest.mark.parametrize("returned, cause", [
    (lambda g: (1.0, 2.0, g), "type tuple"),
    (lambda g: [g[:3], g[3:]], "type list"),
])
def test_sequences_that_are_neither_a_pair_nor_per_matrix_gradients_are_bad_output(returned, cause):
    report = gradlab.check(lambda p, w: returned(gradlab.gradient(p, w)), (3, 5, 3), against=("backprop",))
    f = report.findings[0]
    assert f.kind == "bad_output" and f.cause == cause and "(J, grad) pair" in f.sentence


# ------------------------------------------------------------------ the ports, with options

PORTS = [
    # name, factory, sizes, check keywords (the documented options, no adapter)
    ("octave", ports.octave_port, (3, 5, 3), {"signature": "seed", "labels": 1, "unroll": "F"}),
    ("one-hot", ports.onehot_port, (3, 5, 3),
     {"call": "gradient(params, input_layer_size, hidden_layer_size, num_labels, X, Y, lam)"}),
    ("layer-list-4", ports.layers_port, (4, 6, 5, 3), {"call": "backprop(params, sizes, X, y, lam)"}),
    ("layer-list-5", ports.layers_port, (3, 4, 4, 3, 2), {"call": "backprop(params, sizes, X, y, lam)"}),
    ("class", ports.class_port, (3, 5, 3), {"call": "NeuralNet(sizes, X, y, lam).gradient(params)", "labels": 1}),
    ("matrices", ports.matrices_port, (3, 5, 3), {"call": "backprop(Theta1, Theta2, X, y, lam)"}),
]


def _expected(bug, sizes):
    layers = range(1, len(sizes))
    return {None: set(), "gprime": {("one_layer", 1)},
            "no_m": {("constant_factor", k) for k in layers},
            "reg_bias": {("regularisation", k) for k in layers}}[bug]


@pytest.mark.parametrize("bug", [None, "gprime", "no_m", "reg_bias"])
@pytest.mark.parametrize("make, sizes, kw", [p[1:] for p in PORTS], ids=[p[0] for p in PORTS])
def test_each_port_is_checked_with_its_options_correct_passes_and_a_planted_bug_is_named(make, sizes, kw, bug):
    report = gradlab.check(make(bug), sizes, **kw)
    assert report.ok == (bug is None), str(report)
    assert _found(report) == _expected(bug, sizes), str(report)
    if bug == "gprime":
        assert report.findings[0].cause == "missing g'(z_2)"


# ------------------------------------------------------------------ conventions detected


@pytest.mark.parametrize("make, kw, options, python", [
    (ports.octave_port, {"signature": "seed"}, "--labels 1 --unroll F", "labels=1, unroll='F'"),
    (ports.class_port, {"call": "NeuralNet(sizes, X, y, lam).gradient(params)"}, "--labels 1", "labels=1"),
    (ports.octave_port, {"signature": "seed", "labels": 1}, "--unroll F", "unroll='F'"),
], ids=["octave", "class-labels", "octave-unroll-only"])
def test_without_the_options_the_report_names_the_convention_and_the_option(make, kw, options, python):
    report = gradlab.check(make(), (3, 5, 3), **kw)
    assert not report.ok and report.kinds == ["convention"], str(report)
    f = report.findings[0]
    assert f.blame == "convention" and f.layer is None and f.extra["options"] == options
    assert f"Pass {options} on the command line ({python} in Python)" in f.sentence
    # Not blamed on the cost or a layer: no other finding, and the J the port returns passes as the cost.
    assert "the cost is where the bug is" not in str(report) and "Theta1" not in f.sentence
    assert report.comparisons["yours vs jax"]["ok"]


def test_a_port_with_a_bug_in_another_convention_gets_the_convention_and_the_bug():
    report = gradlab.check(ports.octave_port("gprime"), (3, 5, 3), signature="seed")
    assert _found(report) == {("convention", None), ("one_layer", 1)}, str(report)
    conv = report.findings[0]
    assert conv.extra["detected"] == {"labels": 1, "unroll": "F"} and "output layer" in conv.sentence
    assert not any(f.kind == "cost_mismatch" for f in report.findings)


def test_a_wrong_convention_passed_explicitly_is_named_too():
    report = gradlab.check(ports.layers_port(), (3, 5, 3), call="backprop(params, sizes, X, y, lam)", labels=1)
    assert report.kinds == ["convention"] and report.findings[0].extra["options"] == "--labels 0"


def test_a_function_in_gradlabs_convention_with_a_bug_gets_no_convention_finding():
    report = gradlab.check(backprop(flip=True), (3, 5, 3), call="f(problem, params)".replace("f", "grad"))
    assert "convention" not in report.kinds and ("sign_flip", 1) in _found(report)


# ------------------------------------------------------------------ templates


def test_a_template_sees_the_modules_globals_and_the_check_names_win_over_them(tmp_path):
    module = tmp_path / "student_globals.py"
    module.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import numpy as np
        import ports
        X = np.zeros((2, 2))  # a script's own data: must not shadow the check's X
        SCALE = 1.0
        backprop = ports.layers_port()
    """))
    mod = load_target(str(module))
    report = gradlab.check(mod, (3, 5, 3), call="backprop(params * SCALE, sizes, X, y, lam)")
    assert report.ok and report.info["call"] == "backprop(params * SCALE, sizes, X, y, lam)", str(report)


@pytest.mark.parametrize("call, pattern", [
    ("backprop(params, X y)", r"^--call: syntax error at column \d+: .*got --call='backprop\(params, X y\)'"),
    ("backprop(params, sizes, X, y, lambda_)", r"--call uses 'lambda_', which is neither a name of the check"),
    ("backprop.__globals__", r"--call may not reach double-underscore attributes"),
    ("backprop(params, sizes, X, y, lam, Theta3)", r"--call uses Theta3, but sizes \(3, 5, 3\) has only"),
])
def test_a_bad_template_is_a_one_line_error_naming_the_option(call, pattern):
    with pytest.raises(gradlab.GradlabError, match=pattern) as err:
        gradlab.check(ports.layers_port(), (3, 5, 3), call=CallTemplate(call, _named(ports.layers_port()),
                                                                        name="--call"))
    assert "\n" not in str(err.value)


def _named(fn, name="backprop"):
    fn.__name__ = name
    return fn


def test_a_template_evaluates_expressions_only():
    with pytest.raises(gradlab.GradlabError, match="syntax error"):
        CallTemplate("import os", ports.layers_port())
    with pytest.raises(gradlab.GradlabError, match="'open'"):
        CallTemplate("open('x')", ports.layers_port())


@pytest.mark.parametrize("kw, pattern", [
    ({}, r"grad_fn is a class; say how to call it with call="),
    ({"call": "NeuralNet(sizes, X, y, lam).gradient(params)", "signature": "seed"}, r"not both"),
    ({"call": "NeuralNet(hidden_layer_size, X, y, lam).gradient(params)", "sizes": (3, 4, 4, 3)},
     r"hidden_layer_size, which is defined for one hidden layer"),
    ({"call": "NeuralNet(sizes, X, Y, lam).gradient(params)", "labels": 1}, r"labels=1 changes the labels"),
    ({"unroll": "G", "call": "NeuralNet(sizes, X, y, lam).gradient(params)"}, r"unroll must be one of 'C', 'F'"),
    ({"labels": 2, "call": "NeuralNet(sizes, X, y, lam).gradient(params)"}, r"labels must be 0 .* or 1"),
])
def test_template_and_convention_arguments_are_validated(kw, pattern):
    kw = {"sizes": (3, 5, 3), **kw}
    sizes = kw.pop("sizes")
    with pytest.raises(gradlab.GradlabError, match=pattern):
        gradlab.check(_named(ports.class_port(), "NeuralNet"), sizes, **kw)


def test_writes_into_template_arguments_are_reported_by_name():
    def writes_theta(Theta1, Theta2, X, y, lam):
        out = ports.matrices_port()(Theta1, Theta2, X, y, lam)
        Theta1[:, 0] = 0.0
        return out

    report = gradlab.check(writes_theta, (3, 5, 3), call="writes_theta(Theta1, Theta2, X, y, lam)")
    f = next(f for f in report.findings if f.kind == "input_mutation")
    assert f.extra["argument"] == "Theta1" and f.extra["changed"] == 5


# ------------------------------------------------------------------ where the user's code raised


def test_an_exception_deep_in_the_users_helper_module_is_reported_at_its_own_line(tmp_path):
    (tmp_path / "helpers_deep.py").write_text("import numpy as np\n\n\n\ndef layer(a, b):\n"
                                              "    return np.dot(a, b)  # shapes do not match\n")
    (tmp_path / "student_deep.py").write_text("from helpers_deep import layer\n\ndef grad(problem, params):\n"
                                              "    return layer(problem.X, params)\n")
    fn = load_function(f"{tmp_path}/student_deep.py:grad")
    with pytest.raises(UserCodeError, match=r"helpers_deep\.py, line 6, in layer\)$"):
        gradlab.check(fn, (3, 5, 3))


def test_an_exception_inside_a_class_called_by_a_template_names_the_class_file_line(tmp_path):
    (tmp_path / "net_cls.py").write_text("class Net:\n    def __init__(self, sizes):\n        self.sizes = sizes\n"
                                         "    def gradient(self, params):\n        raise ValueError('not yet')\n")
    cls = load_target(f"{tmp_path}/net_cls.py:Net")
    with pytest.raises(UserCodeError,
                       match=r"call Net\(sizes\)\.gradient\(params\) raised ValueError: not yet \(.*net_cls\.py, line 5"):
        gradlab.check(cls, (3, 5, 3), call="Net(sizes).gradient(params)")


# ------------------------------------------------------------------ the command line


@pytest.fixture
def port_file(tmp_path):
    path = tmp_path / "port.py"
    path.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import ports
        nnCostFunction = ports.octave_port()
        nnCostFunction_bug = ports.octave_port("no_m")
        NeuralNet = ports.class_port()
    """))
    return path


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
def test_cli_conventions_and_templates(port_file, capsys):
    assert main(["check", f"{port_file}:nnCostFunction", "--signature", "seed", "--labels", "1", "--unroll", "F"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    assert main(["check", f"{port_file}:nnCostFunction", "--signature", "seed", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert [f["kind"] for f in d["findings"]] == ["convention"] and d["findings"][0]["options"] == "--labels 1 --unroll F"
    assert main(["check", f"{port_file}:nnCostFunction_bug", "--signature", "seed", "--labels", "1",
                 "--unroll", "F", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert {(f["kind"], f["layer"]) for f in d["findings"]} == {("constant_factor", 1), ("constant_factor", 2)}
    # A module alone, with a call template over a class in it.
    assert main(["check", str(port_file), "--call", "NeuralNet(sizes, X, y, lam).gradient(params)", "--labels", "1"]) == 0
    out = capsys.readouterr().out
    assert "NeuralNet(sizes, X, y, lam).gradient(params) (a call template, labels=1)" in out


def test_cli_template_syntax_error_is_one_line_exit_2(port_file, capsys):
    assert main(["check", str(port_file), "--call", "NeuralNet(sizes X)"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gradlab: error: --call: syntax error at column ")


def test_a_template_evaluates_calls_attributes_subscripts_and_arithmetic_but_binds_nothing():
    def f(*args, **kwargs):
        return args, kwargs

    tpl = CallTemplate("f(params[1:3], *sizes[:2], -lam ** 2, m >= 2 and X.shape, [1, 2][-1], k={'a': 1}['a'], "
                       "**{'z': 3 if lam > 0 else 4}, w=(1, *sizes))", f)
    out = tpl(*[{"params": np.arange(5.0), "sizes": [3, 5, 3], "lam": 2.0, "m": 4, "X": np.zeros((4, 3))}[n]
                for n in tpl.names])
    assert out[0][0].tolist() == [1.0, 2.0] and out[0][1:] == (3, 5, -4.0, (4, 3), 2)
    assert out[1] == {"k": 1, "z": 3, "w": (1, 3, 5, 3)}
    for src, what in (("(lambda: 1)()", "Lambda"), ("[p for p in params]", "ListComp"), ("(n := 1)", "NamedExpr")):
        with pytest.raises(gradlab.GradlabError, match=f"got {what} at column"):
            CallTemplate(src, f)


@pytest.mark.parametrize("src, pattern", [
    ("9**9**9", r"power 9\*\*387420489 is too large"),
    ("[0]*10**10", r"repetition of 1 items 10000000000 times is too large"),
    ("1 << 10**5", r"shift by 100000 bits is too large"),
    ("__builtins__", r"may not use double-underscore names"),
    ("f(\x00)", r"call: (syntax error|not a Python expression).*null bytes"),  # SyntaxError or ValueError
])
def test_a_template_cannot_run_away_or_reach_the_builtins(src, pattern):
    def f(*args):
        return args

    with pytest.raises(gradlab.GradlabError, match=pattern):
        tpl = CallTemplate(src, f)
        tpl(*[None for _ in tpl.names])
