"""compare(): tables, verdicts, JSON; the CLI as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest

import gradlab
from gradlab.compare import EXACT_NORM_RATIO
from gradlab.cli import main


def _wrong_bias(problem, params):
    g = gradlab.gradient(problem, params, "backprop")
    theta1 = problem.network.unpack(g)[0]
    theta1[:, 0] *= 2.0  # a bias-column bug
    return g


def test_compare_reports_every_pair_and_layer():
    p = gradlab.debug_problem((4, 6, 6, 5, 2), 5, lam=1.0)
    r = gradlab.compare(p, gradlab.debug_init(p.network))
    assert r.ok
    assert [(q.a, q.b) for q in r.pairs] == [("backprop", "jax"), ("backprop", "numeric"), ("jax", "numeric")]
    assert all(len(q.layers) == 4 for q in r.pairs)
    assert r.cost == pytest.approx(gradlab.cost(p, gradlab.debug_init(p.network)))


def test_compare_catches_a_wrong_bias_gradient_and_points_at_it():
    p = gradlab.debug_problem()
    r = gradlab.compare(p, gradlab.debug_init(p.network), ("jax", _wrong_bias))
    assert not r.ok
    pair = r.pair("jax", "_wrong_bias")
    assert pair.worst["layer"] == 1 and pair.worst["column"] == 0
    assert [s.ok for s in pair.layers] == [False, True]
    text = str(r)
    assert "DISAGREE" in text and "Theta1[" in text and "(bias)" in text


def test_compare_numeric_pair_fails_on_a_small_but_real_error():
    # A 1e-6 relative error is invisible to loose tolerances but far above the numeric
    # error estimate (~1e-10 relative here).
    def slightly_off(problem, params):
        return gradlab.gradient(problem, params) * (1 + 1e-6)

    p = gradlab.debug_problem()
    r = gradlab.compare(p, gradlab.debug_init(p.network), ("numeric", slightly_off))
    assert not r.ok


def test_report_to_dict_is_json_and_complete():
    p = gradlab.debug_problem(lam=3.0)
    r = gradlab.compare(p, gradlab.debug_init(p.network))
    d = json.loads(r.to_json())
    assert d["ok"] is True and d["sizes"] == [3, 5, 3] and d["lam"] == 3.0
    assert set(d["gradients"]) == {"backprop", "jax", "numeric"}
    assert len(d["error_estimates"]["numeric"]) == 38
    pair = d["pairs"][0]
    assert {"max_abs", "max_rel", "norm_ratio"} <= set(pair["overall"])


def test_show_lists_entries_with_layer_row_column():
    p = gradlab.debug_problem()
    text = str(gradlab.compare(p, gradlab.debug_init(p.network), show=3))
    rows = [line.split() for line in text.splitlines() if line.startswith("      1    0 ")]
    assert len(rows) == 3 and len(rows[0]) == 6


def test_cli_compare_default_is_the_seed_check(capsys):
    assert main(["compare", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["examples"] == 5 and d["init"] == "debug" and d["sizes"] == [3, 5, 3]
    p = gradlab.debug_problem()
    np.testing.assert_allclose(d["gradients"]["backprop"], gradlab.gradient(p, gradlab.debug_init(p.network)))


def test_cli_compare_random_init_deep_network(capsys):
    assert main(["compare", "--sizes", "4,6,6,5,2", "--init", "random", "--seed", "3", "--lambda", "2", "--show", "4"]) == 0
    out = capsys.readouterr().out
    assert "verdict: all 3 pairs agree" in out and "Theta4" in out


@pytest.mark.slow  # fresh processes
def test_cli_as_a_subprocess_exit_codes():
    ok = subprocess.run([sys.executable, "-m", "gradlab", "compare", "--sizes", "3,5,3"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "verdict: all 3 pairs agree" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "gradlab", "compare", "--sizes", "3,0"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stdout == ""


@pytest.mark.slow  # fresh processes
def test_help_imports_neither_jax_nor_scipy_nor_matplotlib_nor_tqdm():
    code = "import sys; from gradlab.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'scipy', 'matplotlib', 'tqdm')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")


def _naive_gradient(problem, params):
    """A correct textbook back-propagation: delta_L = h - y with h rounded first."""
    thetas = problem.network.unpack(params)
    acts, a = [], problem.X
    for theta in thetas:
        acts.append(np.hstack([np.ones((a.shape[0], 1)), a]))
        a = 1.0 / (1.0 + np.exp(-(acts[-1] @ theta.T)))
    delta = a - problem.Y
    grads = []
    for layer in range(len(thetas) - 1, -1, -1):
        grads.append(delta.T @ acts[layer] / problem.m)
        if layer:
            h = acts[layer][:, 1:]
            delta = (delta @ thetas[layer][:, 1:]) * h * (1 - h)
    return np.concatenate([g.ravel() for g in grads[::-1]])


def test_correct_naive_code_is_not_flagged_when_the_gradient_is_below_round_off():
    # Outputs saturated on the right side: the true gradient is ~1e-17 while h - y in the
    # naive code carries an absolute round-off of ~1e-16, so the norm ratio is ~1. The
    # round-off floor keeps this correct code from being called wrong.
    net = gradlab.Network((2, 2))
    params = net.pack([np.array([[20.0, 10.0, 0.0], [-20.0, -10.0, 0.0]])])
    p = gradlab.Problem(net, np.array([[1.0, 0.0], [2.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    r = gradlab.compare(p, params, (_naive_gradient, "jax"))
    pair = r.pairs[0]
    assert pair.overall.norm_ratio > EXACT_NORM_RATIO  # the plain criterion alone would fail
    assert r.ok, str(r)


def test_round_off_floor_still_catches_a_real_error_in_a_tiny_gradient():
    net = gradlab.Network((2, 2))
    params = net.pack([np.array([[20.0, 10.0, 0.0], [-20.0, -10.0, 0.0]])])
    p = gradlab.Problem(net, np.array([[1.0, 0.0], [2.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))

    def off_by_a_thousandth_of_a_unit(problem, theta):
        g = gradlab.gradient(problem, theta, "jax")
        g[0] += 1e-3  # small in absolute terms, but far above any round-off here
        return g

    assert not gradlab.compare(p, params, (off_by_a_thousandth_of_a_unit, "jax")).ok


@pytest.mark.slow  # fresh processes
def test_cli_output_into_a_closed_pipe_is_quiet():
    # `gradlab compare ... --json | head -1`: the reader closes the pipe after one line,
    # while the report (hundreds of KB) is still far from written.
    proc = subprocess.Popen([sys.executable, "-m", "gradlab", "compare", "--sizes", "60,40,10",
                             "--sources", "backprop,jax", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert first.strip() == b"{"
    assert "Traceback" not in err and "BrokenPipe" not in err, err
