"""``gradlab check`` as a grader runs it: several targets at once, each in its own process, one
line (or one JSON object) each, whatever each one's code does; and one target whose code
prints still gives exactly one JSON document."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gradlab.cli import EXIT_USAGE, main

# slow: batches of targets, each in its own process, through the command line.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: --timeout of these tests: the infinite loop is stopped after it.
TIMEOUT = "2"

#: The seed's nnGradient, written here: plain numpy, copying its weight matrices.
GOOD = textwrap.dedent("""
    import numpy as np

    def _g(z):
        return 1.0 / (1.0 + np.exp(-z))

    def nnGradient(nn_params, n_in, n_hidden, K, X, y, lam):
        T1 = nn_params[:n_hidden * (n_in + 1)].reshape(n_hidden, n_in + 1).copy()
        T2 = nn_params[n_hidden * (n_in + 1):].reshape(K, n_hidden + 1).copy()
        m = X.shape[0]
        a1 = np.hstack([np.ones((m, 1)), X])
        a2 = np.hstack([np.ones((m, 1)), _g(a1 @ T1.T)])
        d3 = _g(a2 @ T2.T) - np.eye(K)[y]
        d2 = (d3 @ T2)[:, 1:] * a2[:, 1:] * (1 - a2[:, 1:])
        T1[:, 0] = 0
        T2[:, 0] = 0
        D1 = d2.T @ a1 / m + lam / m * T1
        D2 = d3.T @ a2 / m + lam / m * T2
        return np.concatenate([D1.ravel(), D2.ravel()])
""")

SUBMISSIONS = {
    "correct": GOOD,
    # The seed's bug: the matrices are views of nn_params, so zeroing their bias columns writes
    # into the caller's weights.
    "buggy": GOOD.replace(".copy()", ""),
    "loops": "def nnGradient(*args):\n    while True:\n        pass\n",
    "segfaults": "import ctypes\n\ndef nnGradient(*args):\n    return ctypes.string_at(0)\n",
    "raises": "def nnGradient(*args):\n    return helper(args)\n\ndef helper(args):\n    return args[99]\n",
    "prints": GOOD + "\n_quiet = nnGradient\n\ndef nnGradient(*args):\n    print('J =', 0.25)\n"
                     "    return _quiet(*args)\n",
    # Keeps 128 MiB more on every pass, 4 GiB at most: stopped at MEMORY_LIMIT, before the system
    # runs short (and long before its 4 GiB, were the limit not kept).
    "hoards": "import numpy as np\n\ndef nnGradient(*args):\n    kept = [np.ones(2**24) for _ in range(32)]\n"
              "    return kept[0]\n",
}
#: GRADLAB_MEMORY_LIMIT of these tests' command lines: the resident memory a target's process may hold.
MEMORY_LIMIT = "200M"

#: What each submission's row must say: status, and pieces of its detail or error.
EXPECTED = {
    "buggy": ("fail", ["input_mutation Theta1 (bias column zeroed in place)"]),
    "correct": ("pass", []),
    "hoards": ("crashed", ["nnGradient was stopped: its process grew past the 200 MiB of memory gradlab lets the "
                           "user's code have (the limit is 200 MiB (GRADLAB_MEMORY_LIMIT=200M))"]),
    "loops": ("timeout", [f"ran past its time limit of {TIMEOUT} s"]),
    "prints": ("pass", []),
    "raises": ("error", ["grad_fn nnGradient raised IndexError: tuple index out of range (",
                         "raises.py, line 5, in helper)"]),
    "segfaults": ("crashed", ["killed by SIGSEGV (Segmentation fault) (at ", "segfaults.py, line 4, in nnGradient)"]),
}


@pytest.fixture
def subs(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    for name, code in SUBMISSIONS.items():
        (folder / f"{name}.py").write_text(code)
    return folder


def _gradlab(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "GRADLAB_MEMORY_LIMIT": MEMORY_LIMIT}
    env.pop("GRADLAB_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gradlab", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def test_a_batch_of_submissions_is_graded_in_one_command_every_row_right(subs):
    start = time.monotonic()
    proc = _gradlab("check", "subs/*.py:nnGradient", "--signature", "seed", "--timeout", TIMEOUT, "--json",
                    "--csv", "grades.csv", cwd=subs.parent)
    seconds = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    rows = [json.loads(line) for line in proc.stdout.splitlines()]  # JSON Lines: one object per line
    assert [r["target"] for r in rows] == [f"subs/{name}.py:nnGradient" for name in sorted(SUBMISSIONS)]
    for row in rows:
        status, pieces = EXPECTED[Path(row["target"].partition(":")[0]).stem]
        assert row["status"] == status, row
        said = row["error"] or "; ".join(f"{f['kind']} Theta{f['layer']} ({f['cause']})" for f in row["findings"])
        assert all(piece in said for piece in pieces), row
        assert {"target", "status", "findings", "output", "error", "seconds"} <= set(row)
    by_name = {Path(r["target"].partition(":")[0]).stem: r for r in rows}
    assert by_name["prints"]["output"] == "J = 0.25\n" * 2  # the first call and the repeated one
    assert "Fatal Python error: Segmentation fault" in by_name["segfaults"]["output"]
    assert by_name["correct"]["output"] == "" and by_name["correct"]["findings"] == []
    with open(subs.parent / "grades.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(Path(r["target"].partition(":")[0]).stem, r["status"]) for r in table] == \
        [(name, EXPECTED[name][0]) for name in sorted(SUBMISSIONS)]
    assert seconds < 60
    # Importing the submissions compiled them (conftest lets Python write bytecode, as on most
    # machines), but the folder is left as it was: no __pycache__.
    assert sorted(p.name for p in subs.iterdir()) == sorted(f"{name}.py" for name in SUBMISSIONS)


def test_text_mode_is_one_line_per_target_and_a_count(subs, capsys, monkeypatch):
    monkeypatch.chdir(subs)
    status = main(["check", "correct.py:nnGradient", "raises.py:nnGradient", "missing.py:nnGradient",
                   "prints.py:nnGradient", "--signature", "seed"])
    out, err = capsys.readouterr()
    assert status == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == "PASS     correct.py:nnGradient"
    assert lines[1] == ("ERROR    raises.py:nnGradient  grad_fn nnGradient raised IndexError: tuple index out of "
                        "range (raises.py, line 5, in helper)")
    assert lines[2] == "ERROR    missing.py:nnGradient  target: file not found: missing.py"
    assert lines[3] == "PASS     prints.py:nnGradient  [output: 2 lines]"
    assert lines[4].startswith("4 targets: 2 pass, 2 error (") and len(lines) == 5


def test_a_batch_that_all_passes_is_status_0(subs, capsys, monkeypatch):
    monkeypatch.chdir(subs)
    assert main(["check", "correct.py:nnGradient", "prints.py:nnGradient", "--signature", "seed", "--json"]) == 0
    assert [json.loads(line)["status"] for line in capsys.readouterr().out.splitlines()] == ["pass", "pass"]


def test_batch_forces_one_line_for_one_target(subs, capsys, monkeypatch):
    monkeypatch.chdir(subs)
    assert main(["check", "raises.py:nnGradient", "--signature", "seed", "--batch"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("ERROR    raises.py:nnGradient  grad_fn nnGradient raised IndexError") and out.count("\n") == 2


@pytest.mark.parametrize("argv, pattern", [
    (["a.py:nnGradient", "b.py:nnGradient", "--signature", "seed", "--sizes", "4,6,6,2"],
     r"sizes must be three layer sizes"),
    (["subs/nothing*.py:f"], r"the pattern 'subs/nothing\*.py' matches no file"),
    (["subs/*.py:nnGradient", "--shrink"], r"--shrink searches one target's failing case; got 9 targets"),
    (["subs/*.py:nnGradient", "--csv", "subs/correct.py"], r"--csv must not be the same file as target"),
    (["subs/correct.py", "subs/raises.py:nnGradient"], r"target must be PATH.py:FUNC or module:FUNC"),
    (["subs/correct.py:nnGradient", "--timeout", "0"], r"timeout must be a number of seconds > 0"),
])
def test_a_usage_error_of_gradlab_is_status_2_before_any_target_runs(subs, capsys, monkeypatch, argv, pattern):
    import re

    (subs / "a.py").write_text(GOOD)
    (subs / "b.py").write_text(GOOD)
    monkeypatch.chdir(subs.parent)
    argv = [a.replace("a.py", "subs/a.py").replace("b.py", "subs/b.py") for a in argv]
    assert main(["check", *argv]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and re.search(pattern, err), err
    assert (subs / "correct.py").read_text() == GOOD


# ------------------------------------------------------------------ one target


def test_one_target_that_prints_gives_exactly_one_json_document(subs, capfd):
    assert main(["check", f"{subs}/prints.py:nnGradient", "--signature", "seed", "--json"]) == 0
    out, err = capfd.readouterr()
    doc = json.loads(out)  # the whole of stdout is one document: the prints are inside it
    assert doc["ok"] is True and doc["status"] == "pass" and doc["output"] == "J = 0.25\n" * 2 and err == ""


def test_one_target_in_text_shows_what_it_printed_as_a_labelled_block(subs, capfd):
    assert main(["check", f"{subs}/prints.py:nnGradient", "--signature", "seed"]) == 0
    out = capfd.readouterr().out
    assert "\noutput of nnGradient's code (2 lines, stdout and stderr):\n  | J = 0.25\n  | J = 0.25\n" in out
    assert out.rstrip().endswith("verdict: PASS")


def test_one_target_that_hangs_is_one_line_and_with_json_one_document(subs, capfd):
    assert main(["check", f"{subs}/loops.py:nnGradient", "--timeout", "0.5", "--json"]) == EXIT_USAGE
    out, err = capfd.readouterr()
    doc = json.loads(out)
    assert doc["status"] == "timeout" and doc["findings"] == [] and "time limit of 0.5 s" in doc["error"]
    assert err.startswith("gradlab: error: nnGradient was stopped: ") and err.count("\n") == 1


def test_one_target_that_crashes_is_one_line_naming_the_signal_after_its_output(subs, capfd):
    (subs / "aborts.py").write_text("import os\n\ndef grad(problem, params):\n    print('J = 1')\n    os.abort()\n")
    assert main(["check", f"{subs}/aborts.py:grad"]) == EXIT_USAGE
    out, err = capfd.readouterr()
    assert out.startswith("output of ") and "\n  | J = 1\n" in out
    assert "grad crashed: its process was killed by SIGABRT (Aborted)" in err and err.count("\n") == 1


def test_a_bug_in_gradlab_on_one_target_is_that_rows_error_the_others_run_and_the_status_is_70(monkeypatch,
                                                                                                capsys):
    import gradlab.cli.check as cli_check
    from gradlab.check import Outcome

    def grade_target(args, target):
        if target == "b.py:f":
            raise RuntimeError("unexpected")
        return Outcome(target, "pass")

    monkeypatch.setattr(cli_check, "grade_target", grade_target)
    assert main(["check", "a.py:f", "b.py:f", "c.py:f", "--json"]) == 70
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["target"], r["status"]) for r in rows] == [("a.py:f", "pass"), ("b.py:f", "error"), ("c.py:f", "pass")]
    assert rows[1]["error"] == "internal error: RuntimeError: unexpected (a bug in gradlab)"


CLASS_PORT = GOOD + textwrap.dedent("""

    class NeuralNet:
        def __init__(self, sizes, X, y, lam):
            self.sizes, self.X, self.y, self.lam = sizes, X, y, lam

        def gradient(self, params):
            print("gradient called")
            s = self.sizes
            return nnGradient(params, s[0], s[1], s[2], self.X, self.y, self.lam)
""")


def test_a_call_template_runs_next_to_each_targets_module_and_a_missing_class_is_that_rows_error(tmp_path, capsys,
                                                                                               monkeypatch):
    (tmp_path / "cls.py").write_text(CLASS_PORT)
    (tmp_path / "plain.py").write_text(GOOD)  # no NeuralNet
    monkeypatch.chdir(tmp_path)
    assert main(["check", "cls.py", "plain.py", "--call", "NeuralNet(sizes, X, y, lam).gradient(params)",
                 "--json"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["target"], r["status"]) for r in rows] == [("cls.py", "pass"), ("plain.py", "error")]
    assert rows[0]["output"].startswith("gradient called\n")  # printed in the worker, where the template ran
    assert "'NeuralNet'" in rows[1]["error"]


def test_a_call_template_that_is_not_python_is_a_usage_error_before_any_target(tmp_path, capsys, monkeypatch):
    (tmp_path / "cls.py").write_text(CLASS_PORT)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "cls.py", "cls.py", "--call", "NeuralNet(sizes X)"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("gradlab: error: --call: syntax error at column ") and err.count("\n") == 1


def test_a_class_target_without_call_is_that_rows_error_asking_for_call_and_the_others_run(tmp_path, capsys,
                                                                                          monkeypatch):
    # Loaded in the worker, the class arrives as a stand-in; it must still be seen as a class
    # (not called as grad_fn(problem, params), which ran its __init__ with the wrong arguments).
    (tmp_path / "cls.py").write_text(CLASS_PORT.replace("class NeuralNet", "class nnGradientNet"))
    (tmp_path / "plain.py").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "cls.py:nnGradientNet", "plain.py:nnGradient", "--signature", "seed", "--json"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["target"], r["status"]) for r in rows] == [("cls.py:nnGradientNet", "error"),
                                                          ("plain.py:nnGradient", "pass")]
    assert rows[0]["error"].startswith("grad_fn is a class; say how to call it with call=") and rows[0]["output"] == ""


def test_one_class_target_without_call_is_one_line_asking_for_call(tmp_path, capsys, monkeypatch):
    (tmp_path / "cls.py").write_text(CLASS_PORT)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "cls.py:NeuralNet"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("gradlab: error: grad_fn is a class; say how to call it with call=") and "--call" in err
