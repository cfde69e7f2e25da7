"""Progress on long runs: one line on stderr with done/total, rate and time left -- on a
terminal by default, in a log with --progress, never with --quiet -- stdout and --json
untouched; a stopped run says what was done and what was not."""

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import gradlab
from gradlab import _progress
from gradlab.cli import main
from gradlab.sources import numeric

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
#: compare with finite differences: 38 parameters, 4 x 38 + 1 cost evaluations.
COMPARE = ["compare", "--sources", "backprop,numeric", "--json"]


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_forced_on_shows_done_total_rate_and_time_left_and_leaves_the_json_alone(capsys):
    assert main(COMPARE) == 0
    plain = capsys.readouterr()
    assert main([*COMPARE, "--progress"]) == 0
    shown = capsys.readouterr()
    assert shown.out == plain.out  # stdout unchanged ...
    assert json.loads(shown.out)["ok"] is True  # ... and one parseable document
    lines = shown.err.splitlines()
    assert lines[0].startswith("finite differences (central): 0/153 cost evaluations (0%)")
    assert lines[-1].startswith("finite differences (central): 153/153 cost evaluations (100%), ")
    assert " cost evaluations/s, " in lines[-1] and lines[-1].endswith(" left")


def test_progress_is_off_by_default_when_stderr_is_not_a_terminal(capsys):
    assert main(COMPARE) == 0
    assert capsys.readouterr().err == ""


def test_progress_is_on_by_default_on_a_terminal_and_quiet_silences_it(monkeypatch, capsys):
    monkeypatch.setattr(_progress, "TERMINAL_DELAY_S", 0.0)  # the work here is quicker than 2 s
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(COMPARE) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    drawn = terminal.getvalue()
    # Drawn in place, then cleared: the line is gone when the result is printed.
    assert drawn.startswith("\rfinite differences (central):   0%|") and "0/153 cost evaluations" in drawn
    assert drawn.endswith("\r") and drawn.splitlines()[-1].strip() == ""
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main([*COMPARE, "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert quiet.getvalue() == ""


def test_progress_and_quiet_together_are_a_usage_error(capsys):
    assert main([*COMPARE, "--progress", "--quiet"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("argv, first, last", [
    (["train", "--maxiter", "10", "--hidden", "5", "--json"], "training: 0/10 iterations (0%)",
     "training: 10/10 iterations (100%)"),
    (["steps", "--sizes", "2,2,2"], "step curve: 0/", "(100%)"),
    (["check", "GRAD", "--mode", "full"], "finite differences (central): 0/", "(100%)"),
])
def test_each_long_command_shows_its_progress(tmp_path, monkeypatch, capsys, argv, first, last):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.py").write_text("import gradlab\ndef f(problem, params):\n"
                                   "    return gradlab.gradient(problem, params)\n")
    argv = [a.replace("GRAD", "g.py:f") for a in argv]
    assert main([*argv, "--progress"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[0].startswith(first) and last in lines[-1], err
    if "--json" in argv:
        json.loads(out)


def test_shrinking_shows_the_cases_it_tried(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.py").write_text("import gradlab\ndef f(problem, params):\n"
                                   "    return 2 * gradlab.gradient(problem, params)\n")
    assert main(["check", "g.py:f", "--shrink", "--max-examples", "3", "--progress", "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is False
    lines = [line for line in err.splitlines() if line.startswith("shrinking")]
    assert lines[0].startswith("shrinking (cases searched, then shrunk): 0/3 cases (0%)")


def test_the_library_is_silent_unless_asked(capsys):
    p = gradlab.debug_problem()
    gradlab.numeric_gradient(p, gradlab.debug_init(p.network))
    gradlab.train(p.X, p.labels, hidden=3, maxiter=3)
    assert capsys.readouterr().err == ""


def test_a_stopped_run_says_what_was_done_and_what_was_not(monkeypatch, capsys):
    real, calls = numeric.Evaluator._run, []

    def stop_on_the_third_stack(self, thetas):
        calls.append(thetas.shape[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, thetas)

    monkeypatch.setattr(numeric, "BATCH_BYTES", 8 * 10_000)  # small stacks: the run takes several
    monkeypatch.setattr(numeric.Evaluator, "_run", stop_on_the_third_stack)
    assert main(["compare", "--sources", "backprop,numeric"]) == 130
    out, err = capsys.readouterr()
    done = sum(calls[:2])
    assert out == ""
    assert err == (f"gradlab: interrupted by Ctrl-C during finite differences (central): {done} of 153 cost "
                   f"evaluations done, {153 - done} not run; no result printed\n")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig, status, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_signal_during_finite_differences_ends_with_one_line(sig, status, name):
    # Large enough to last a few seconds, so the signal lands inside the finite differences.
    argv = ["compare", "--sizes", "60,30,10", "--examples", "300", "--sources", "backprop,numeric", "--progress",
            "--force"]
    proc = subprocess.Popen([sys.executable, "-m", "gradlab", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    first = proc.stderr.readline()
    assert first.startswith("finite differences (central): 0/8561 cost evaluations"), first
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert out == "" and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"gradlab: interrupted by {name} during finite differences (central): ")
    assert last.endswith(" not run; no result printed") and " of 8,561 cost evaluations done, " in last
