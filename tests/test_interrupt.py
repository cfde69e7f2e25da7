"""Interrupting ``gradlab train``: Ctrl-C, SIGTERM and SIGKILL, each at a chosen moment.

Each test runs gradlab in a subprocess and signals it. The moments are made observable,
not guessed: training prints progress lines (--progress); a small driver (run with ``python -c``)
slows the save down -- it writes half the file, announces it, sleeps, writes the rest --
or slows the data loading, so the signal lands exactly where the test says it does.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab._files import STALE_TMP_SECONDS
from gradlab.data import load_digits, train_test_split

ROOT = Path(__file__).resolve().parent.parent
# slow: each test signals a fresh training process.
pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"), pytest.mark.slow]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
#: The saved parameters are the best iterate's, and its cost was recorded in the history by
#: the same cost function on the same rows; summed in another order (the numeric source
#: evaluates stacks of parameter vectors) the two may differ by float64 round-off over
#: m = 1438 terms, m * eps ~ 3e-13 relative: 1e-12 leaves room and is far below any step
#: of the optimiser (the costs of successive iterates differ by more than 1e-6 here).
COST_RTOL = 1e-12
#: Seconds a slowed step sleeps after announcing itself: the test signals at once, so any
#: time longer than a process's reaction to a signal works; a SIGKILLed driver never wakes.
SLOW_SECONDS = 20

#: Runs gradlab's CLI with one step slowed down: "save" writes half the model file, says
#: "@@ save" on stderr and waits for a signal before writing the rest; "load" says
#: "@@ load" and sleeps before loading the data. argv: STEP SECONDS gradlab-arguments...
DRIVER = r"""
import io, signal, sys, time
import numpy as np
import gradlab.data

step, seconds = sys.argv[1], float(sys.argv[2])

def announce():
    sys.stderr.write("@@ " + step + "\n")
    sys.stderr.flush()

if step == "save":
    real_savez = np.savez_compressed

    def slow_savez(f, **arrays):
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        data = buf.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        announce()
        # Sleep until gradlab's handler has noted a signal (time.sleep resumes after a
        # handler that does not raise), or at most `seconds`.
        handler = signal.getsignal(signal.SIGINT)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and getattr(getattr(handler, "__self__", None), "received", None) is None:
            time.sleep(0.01)
        f.write(data[len(data) // 2:])

    np.savez_compressed = slow_savez
elif step == "load":
    real_load = gradlab.data.load

    def slow_load(*args, **kwargs):
        announce()
        time.sleep(seconds)
        return real_load(*args, **kwargs)

    gradlab.data.load = slow_load

from gradlab.cli import main
sys.exit(main(sys.argv[3:]))
"""


def start(argv, cwd, *, slow=None):
    """Popen of ``gradlab ARGV`` (or of the driver slowing step ``slow``)."""
    cmd = [sys.executable, "-m", "gradlab", *argv] if slow is None else \
        [sys.executable, "-c", DRIVER, slow, str(SLOW_SECONDS), *argv]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd)


def wait_for(proc, text: str) -> str:
    """Read stderr lines until one contains ``text``; fail if the process ends first."""
    seen = []
    while True:
        line = proc.stderr.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"the process ended before printing {text!r}; stderr: {''.join(seen)}")
        seen.append(line)
        if text in line:
            return "".join(seen)


def training_cost(model) -> float:
    """The model's cost on the rows it was trained on (the digits, its recorded split)."""
    X, y = load_digits()
    s = train_test_split(X, y, test_fraction=model.meta["test_fraction"], seed=model.meta["split_seed"])
    X_train = s.X_train if model.scaling is None else model.scaling.apply(s.X_train)
    return gradlab.cost(gradlab.Problem(model.network, X_train, s.y_train, model.lam), model.params)


# Finite differences make each iteration slow, so training is certainly still running when
# the signal comes (backprop can converge in under a second). With maxiter 10, progress
# (forced on, not a terminal) is printed after every iteration, each a tenth of the work.
SLOW_TRAINING = ["train", "--maxiter", "10", "--hidden", "6", "--lambda", "0", "--grad-source", "numeric", "--force",
                 "--progress"]


def test_ctrl_c_reaches_the_processes_these_tests_start():
    # A run started in the background by a shell without job control starts with SIGINT
    # ignored, and the processes below would inherit that and train on through every
    # Ctrl-C. tests/conftest.py takes SIGINT back; without it this test names the cause.
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN, (
        "the test run ignores SIGINT (started in the background?) and tests/conftest.py did not take it back")
    ignored = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    child = subprocess.run([sys.executable, "-c", ignored], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "False"


@pytest.mark.parametrize("sig, status, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_during_training_stops_it_and_writes_the_best_model(tmp_path, sig, status, name):
    out = tmp_path / "interrupted.npz"
    proc = start([*SLOW_TRAINING, "--out", str(out)], tmp_path)
    # Interrupt a later iteration than the first: the best-so-far must be a trained one.
    wait_for(proc, "training: 1/10 iterations")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    assert "STOPPED EARLY (interrupted)" in stdout and f"interrupted ({name})" in stdout
    assert f"wrote {out}" in stdout
    model = gradlab.load(out)
    assert model.stop == "interrupted" and model.n_iter >= 1
    best = float(np.min(model.history.cost))
    assert best < model.history.cost[0]
    assert training_cost(model) == pytest.approx(best, rel=COST_RTOL, abs=0)


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_saving_lets_the_save_finish(tmp_path, sig, status):
    out = tmp_path / "m.npz"
    proc = start(["train", "--maxiter", "3", "--hidden", "5", "--quiet", "--out", str(out)], tmp_path, slow="save")
    wait_for(proc, "@@ save")
    assert not out.exists()  # half a model lives in the temporary file only
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    assert f"arrived as training ended; {out} was written completely first" in stderr
    model = gradlab.load(out)
    assert model.stop == "maxiter" and model.n_iter == 3
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_sigkill_during_a_save_leaves_the_old_model_intact(tmp_path):
    out = tmp_path / "m.npz"
    old = gradlab.train(np.eye(4), [0, 1, 0, 1], hidden=3, maxiter=2, progress=False).save(out)
    before = Path(old).read_bytes()
    proc = start(["train", "--maxiter", "3", "--hidden", "5", "--quiet", "--out", str(out)], tmp_path, slow="save")
    wait_for(proc, "@@ save")
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == before
    assert gradlab.load(out).network.sizes == (4, 3, 2)
    # The killed save's temporary file stays (nothing can clean up after SIGKILL) ...
    leftovers = [p for p in tmp_path.iterdir() if p.name != "m.npz"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".m.npz.") and leftovers[0].name.endswith(".tmp")
    # ... until a later save to the same path finds it stale.
    aged = leftovers[0].stat().st_mtime - 2 * STALE_TMP_SECONDS
    os.utime(leftovers[0], (aged, aged))
    gradlab.load(out).save(out)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_before_training_writes_nothing(tmp_path, sig, status):
    out = tmp_path / "m.npz"
    proc = start(["train", "--maxiter", "3", "--hidden", "5", "--quiet", "--out", str(out)], tmp_path, slow="load")
    wait_for(proc, "@@ load")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    assert stderr.strip().endswith("before training produced a model; nothing written")
    assert "Traceback" not in stderr and stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_as_training_ends_keeps_the_trained_parameters(monkeypatch):
    # The trainer computes the accuracies after its loop; a Ctrl-C landing there (simulated:
    # the first prediction raises KeyboardInterrupt) must still return the trained result.
    import gradlab.trainer as trainer

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    expected = gradlab.train(X, y, hidden=(4,), maxiter=5, progress=False)
    real_predict, calls = trainer.predict, []

    def interrupted_once(*args, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real_predict(*args, **kw)

    monkeypatch.setattr(trainer, "predict", interrupted_once)
    result = gradlab.train(X, y, hidden=(4,), maxiter=5, progress=False)
    assert len(calls) >= 2
    assert result.stop == expected.stop and result.n_iter == expected.n_iter
    np.testing.assert_array_equal(result.params, expected.params)
    assert result.train_accuracy == expected.train_accuracy
