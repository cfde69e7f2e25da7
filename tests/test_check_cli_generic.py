"""gradlab check --function / --layer / --own-cost on the command line: text, --json, exit 0/1/2."""

import json
import textwrap

import pytest

from gradlab.cli import main

STUDENT = textwrap.dedent('''
    import numpy as np
    from array_api_compat import array_namespace

    def cost(theta, X, y, lam):
        xp = array_namespace(theta, X, y)
        r = X @ theta - y
        m = X.shape[0]
        return xp.sum(r * r) / (2 * m) + lam / (2 * m) * xp.sum(theta[1:] ** 2)

    def grad(theta, X, y, lam):
        m = X.shape[0]
        reg = lam / m * theta
        reg[0] = 0.0
        return X.T @ (X @ theta - y) / m + reg

    def grad_bias_regularised(theta, X, y, lam):
        m = X.shape[0]
        return X.T @ (X @ theta - y) / m + lam / m * theta

    def make_inputs(rng):
        X = np.c_[np.ones(6), rng.normal(size=(6, 2))]
        return rng.normal(size=3), X, rng.normal(size=6), 0.5

    def affine_forward(x, w, b):
        return x @ w + b, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout, dout.sum(axis=0)

    def affine_backward_dw_halved(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw / 2, db

    def make_affine():
        rng = np.random.default_rng(1)
        return rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)

    def not_a_tuple():
        return 3.0

    def mse_cost(problem, params):
        net = problem.network
        a, off, reg = problem.X, 0, 0.0
        for rows, cols in net.shapes:
            T = params[off:off + rows * cols].reshape(rows, cols)
            off += rows * cols
            a = 1 / (1 + np.exp(-(np.c_[np.ones(problem.m), a] @ T.T)))
            reg += np.sum(T[:, 1:] ** 2)
        return np.sum((a - problem.Y) ** 2) / (2 * problem.m) + problem.lam / (2 * problem.m) * reg

    def mse_grad(problem, params):
        net = problem.network
        thetas, off = [], 0
        for rows, cols in net.shapes:
            thetas.append(params[off:off + rows * cols].reshape(rows, cols))
            off += rows * cols
        acts = [np.c_[np.ones(problem.m), problem.X]]
        for T in thetas:
            acts.append(np.c_[np.ones(problem.m), 1 / (1 + np.exp(-(acts[-1] @ T.T)))])
        h = acts[-1][:, 1:]
        delta = (h - problem.Y) * h * (1 - h)
        grads = []
        for layer in range(len(thetas) - 1, -1, -1):
            g = delta.T @ acts[layer] / problem.m
            g[:, 1:] += problem.lam / problem.m * thetas[layer][:, 1:]
            grads.insert(0, g)
            a = acts[layer][:, 1:]
            delta = (delta @ thetas[layer][:, 1:]) * a * (1 - a)
        return np.concatenate([g.ravel() for g in grads])
''')


@pytest.fixture()
def student(tmp_path):
    (tmp_path / "student.py").write_text(STUDENT)
    return tmp_path / "student.py"


def test_function_form_pass_and_fail(student, capsys):
    assert main(["check", "--function", f"{student}:cost", "--grad", "grad", "--inputs", "make_inputs",
                 "--wrt", "theta"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    assert main(["check", "--function", f"{student}:cost", "--grad", "grad_bias_regularised", "--inputs",
                 "make_inputs", "--wrt", "0", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["findings"][0]["input"] == "theta"
    assert report["findings"][0]["entries"] == [[0]]


def test_layer_form_passes_a_correct_backward(student, capsys):
    assert main(["check", "--layer", f"{student}:affine_forward:affine_backward", "--inputs", "make_affine"]) == 0
    out = capsys.readouterr().out
    assert "gradlab check_layer: affine_forward / affine_backward" in out and "verdict: PASS" in out


def test_layer_form_json_finding(student, capsys):
    assert main(["check", "--layer", f"{student}:affine_forward:affine_backward_dw_halved", "--inputs",
                 "make_affine", "--douts", "2", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["douts"] == 2
    assert [(f["kind"], f["input"], f["cause"]) for f in report["findings"]] == [
        ("constant_factor", "w", "halved (factor 1/2)")]


def test_own_cost_form(student, capsys):
    assert main(["check", f"{student}:mse_grad", "--cost", "mse_cost", "--own-cost"]) == 0
    out = capsys.readouterr().out
    assert "against your own cost" in out and "[cost_differs]" in out and "verdict: PASS" in out
    assert main(["check", f"{student}:mse_grad", "--cost", "mse_cost"]) == 1


@pytest.mark.parametrize("argv, pattern", [
    (["--function", "{s}:cost"], r"--function needs --inputs"),
    (["--function", "{s}:cost", "--inputs", "not_a_tuple"], r"--inputs must name a function returning a non-empty"),
    (["--function", "{s}:cost", "--inputs", "missing"], r"--inputs names no function 'missing'"),
    (["--layer", "{s}:affine_forward", "--inputs", "make_affine"], r"--layer must be FILE.py:FORWARD:BACKWARD"),
    (["{s}:grad", "--function", "{s}:cost"], r"exactly one of"),
    ([], r"exactly one of"),
    (["{s}:mse_grad", "--own-cost"], r"--own-cost judges the gradient against --cost"),
    (["{s}:mse_grad", "--inputs", "make_inputs"], r"--inputs goes with --function or --layer"),
    (["--layer", "{s}:affine_forward:affine_backward", "--inputs", "make_affine", "--cost", "x"],
     r"--cost, --own-cost and --shrink go with a network gradient"),
    (["--function", "{s}:cost", "--inputs", "make_inputs", "--wrt", "zeta"], r"wrt must be an input position"),
    (["--function", "{s}:cost", "--inputs", "make_inputs", "--against", "backprop"], r"against must be distinct"),
    (["--layer", "{s}:affine_forward:affine_backward", "--inputs", "make_affine", "--douts", "0"],
     r"--douts must be an integer >= 1; got --douts 0$"),
    (["--function", "{s}:cost", "--inputs", "make_inputs", "--douts", "2"], r"--douts goes with --layer"),
    (["{s}:mse_grad", "--douts", "2"], r"--douts goes with --layer, not with a network gradient"),
    (["--layer", "{s}:affine_forward:nope", "--inputs", "make_affine"],
     r"--layer names no function 'nope' in .*student.py; got --layer='.*student.py:affine_forward:nope'$"),
    (["--layer", "{s}:affine_forward:2nd", "--inputs", "make_affine"], r"--layer must be FILE.py:FORWARD:BACKWARD"),
])
def test_usage_errors_are_one_line_exit_2(student, capsys, argv, pattern):
    import re

    assert main(["check"] + [a.format(s=student) for a in argv]) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err.rstrip("\n")) and err.count("\n") == 1, err


def test_help_documents_the_three_forms(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for text in ("--function FILE.py:F", "--layer FILE.py:FORWARD:BACKWARD", "--inputs MAKE", "--own-cost",
                 "--wrt NAMES", "Exit status: 0 pass, 1 a problem found, 2 usage or load error"):
        assert text in out, text
