"""More hostile input, found by using the CLI as a careless user and a malicious file author.

Each test is the regression test of one bug: an environment matplotlib refuses, a deleted
working folder, a user's exception that cannot describe itself, IDX files with no
examples, model files whose text drives the terminal or matplotlib's mathematics, a
float16 history, a format version that never existed, --out naming a file the command
reads, and small data in ``plot digits``. Files are a few kilobytes; the subprocesses stop
at argument parsing or at the import of matplotlib.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import gradlab
from gradlab import data as gd
from gradlab.cli import EXIT_USAGE, main
from gradlab.plots import plot_history

ROOT = Path(__file__).resolve().parent.parent
N_IN, N_HID, N_OUT = 4, 3, 2


def _gradlab(*args, env_extra=None, cwd=None, shell_prefix=None):
    # No empty entry: Python cannot start when it must make '' absolute in a deleted folder.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("GRADLAB_DEBUG", None)
    env.update(env_extra or {})
    argv = [sys.executable, "-m", "gradlab", *args]
    if shell_prefix is not None:  # run through sh, after its commands (cd into a folder, delete it)
        argv = ["sh", "-c", shell_prefix + ' && exec "$@"', "sh", *argv]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def one_line_error(capsys, *needles) -> str:
    out, err = capsys.readouterr()
    assert err.startswith("gradlab: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture(scope="module")
def model_arrays(tmp_path_factory):
    rng = np.random.default_rng(0)
    r = gradlab.train(rng.normal(size=(20, N_IN)), np.arange(20) % N_OUT, hidden=N_HID, maxiter=2,
                      progress=False, info={"image_shape": [2, 2], "pixel_order": "C"})
    path = r.save(tmp_path_factory.mktemp("good") / "good.npz")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def write_model(path, arrays, **updates) -> str:
    out = dict(arrays)
    out.update(updates)
    with open(path, "wb") as f:  # a file object: np.savez would add .npz to a name such as m.png
        np.savez(f, **out)
    return str(path)


def with_meta(path, arrays, **fields) -> str:
    meta = json.loads(str(arrays["meta"]))
    meta.update(fields)
    return write_model(path, arrays, meta=np.array(json.dumps(meta)))


def write_mat(path, m: int = 12) -> str:
    rng = np.random.default_rng(0)
    scipy.io.savemat(path, {"X": rng.normal(size=(m, N_IN)), "y": (np.arange(m) % N_OUT).reshape(-1, 1)})
    return str(path)


# ------------------------------------------------------------------------ the environment


def test_an_unknown_mplbackend_is_one_line_naming_it_not_an_internal_error(tmp_path):
    # matplotlib refuses an unknown MPLBACKEND while it is imported (a ValueError, status 70),
    # although gradlab never uses the backend.
    proc = _gradlab("plot", "digits", "--out", "d.png", env_extra={"MPLBACKEND": "nonsense"}, cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("gradlab: error: matplotlib could not start")
    assert "MPLBACKEND='nonsense' is set" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_a_relative_out_in_a_deleted_working_folder_is_one_line_exit_2(tmp_path):
    # os.path.abspath fails when the working folder is gone: it was status 74,
    # "input/output error: No such file or directory", naming nothing.
    proc = _gradlab("train", "--quiet", "--out", "m.npz", cwd=tmp_path,
                    shell_prefix="mkdir gone && cd gone && rmdir ../gone")
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert "cannot use the relative path 'm.npz': the current folder no longer exists" in proc.stderr


@pytest.mark.parametrize("argv, name", [
    (["train", "--quiet", "--out", "m.npz"], "'m.npz'"),
    (["plot", "digits", "--out", "d.png"], "'d.png'"),
    (["steps", "--out", "s.png"], "'s.png'"),
    (["check", "mine.py:grad"], "target: cannot use the relative path 'mine.py'"),
])
def test_relative_paths_in_a_deleted_working_folder_are_named(monkeypatch, capsys, argv, name):
    def gone():
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(os, "getcwd", gone)
    assert main(argv) == EXIT_USAGE
    one_line_error(capsys, name, "the current folder no longer exists")


def test_any_other_relative_path_failing_in_a_deleted_folder_is_exit_2_not_74(monkeypatch, capsys):
    # The last line of defence in main(), for a path some library resolves on its own.
    import gradlab.cli.train as tc

    def gone():
        raise FileNotFoundError(2, "No such file or directory")

    def resolves_a_path(args):
        os.path.abspath("somewhere")

    monkeypatch.setattr(tc, "run_predict", resolves_a_path)
    monkeypatch.setattr(os, "getcwd", gone)
    assert main(["predict", "m.npz"]) == EXIT_USAGE
    one_line_error(capsys, "the current folder no longer exists")


# ------------------------------------------------------------------------ gradlab check


def test_a_user_exception_whose_str_raises_is_reported_not_an_internal_error(tmp_path, capsys):
    (tmp_path / "mine.py").write_text(
        "class Sulky(Exception):\n"
        "    def __str__(self):\n"
        "        raise ValueError('no')\n\n"
        "def grad(problem, params):\n"
        "    raise Sulky()\n"
    )
    assert main(["check", f"{tmp_path / 'mine.py'}:grad"]) == EXIT_USAGE
    one_line_error(capsys, "grad_fn grad raised Sulky: (no message: str() of it raised ValueError)", "mine.py, line 6")


# ------------------------------------------------------------------------ data files


def _idx(code: int, arr: np.ndarray) -> bytes:
    types = {0x08: ">u1", 0x0E: ">f8"}
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(types[code]).tobytes()


def test_idx_images_with_no_examples_are_refused_naming_the_file(tmp_path, capsys):
    # reshape(0, -1) raised ValueError: status 70.
    (tmp_path / "img.idx").write_bytes(_idx(0x08, np.zeros((0, 4, 4))))
    (tmp_path / "lab.idx").write_bytes(_idx(0x08, np.zeros(0)))
    with pytest.raises(gradlab.GradlabError, match=r"img\.idx: no examples \(IDX images of shape \(0, 4, 4\)\)"):
        gd.load_idx(tmp_path / "img.idx", tmp_path / "lab.idx")
    assert main(["train", "--data", str(tmp_path / "img.idx"), "--labels", str(tmp_path / "lab.idx")]) == EXIT_USAGE
    one_line_error(capsys, "img.idx: no examples")


@pytest.mark.parametrize("case, pattern", [
    ("labels-empty", r"^labels must be a file path; got labels=''$"),
    ("labels-folder", r"^labels: .* is a folder, not a file$"),
    ("labels-missing", r"^labels: no such file: .*nowhere\.idx$"),
    ("images-missing", r"^images: no such file: .*nowhere\.idx$"),
])
def test_idx_path_errors_name_images_or_labels(tmp_path, case, pattern):
    # They were all "path: ...", the name of read_idx's argument, whichever file it was.
    good = tmp_path / "img.idx"
    good.write_bytes(_idx(0x08, np.zeros((3, 2, 2))))
    images, labels = {
        "labels-empty": (good, ""),
        "labels-folder": (good, tmp_path),
        "labels-missing": (good, tmp_path / "nowhere.idx"),
        "images-missing": (tmp_path / "nowhere.idx", good),
    }[case]
    with pytest.raises(gradlab.GradlabError, match=pattern):
        gd.load_idx(images, labels)


def test_a_missing_mat_file_is_named_as_the_data(tmp_path):
    with pytest.raises(gradlab.GradlabError, match=r"^data: no such file: .*nowhere\.mat$"):
        gd.load(str(tmp_path / "nowhere.mat"))


# ------------------------------------------------------------------------ model files


def test_control_characters_in_a_model_file_are_printed_escaped(model_arrays, tmp_path, capsys):
    # Printed as they were, a newline in 'source' forged a line of output and an escape
    # sequence drove the terminal.
    forged = "backprop\x1b]0;pwned\x07\naccuracy: 100.00% (20 of 20, split all)"
    path = with_meta(tmp_path / "evil.npz", model_arrays, source=forged, method="cg\r")
    data = write_mat(tmp_path / "d.mat")
    assert main(["predict", path, "--data", data]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert out.splitlines()[0].endswith(
        r"source backprop\x1b]0;pwned\x07\naccuracy: 100.00% (20 of 20, split all), method cg\r, lambda 1")
    assert sum(line.startswith("accuracy:") for line in out.splitlines()) == 1


@pytest.mark.parametrize("source", [r"$\frac{$", "\u263a\U0001f642", "tab\there"])
def test_any_text_in_a_model_file_draws_in_the_history_title(model_arrays, tmp_path, source):
    # '$...$' is matplotlib mathematics: an unparsable one was an internal error; a character
    # the font lacks was a UserWarning (an error under this suite's warnings-as-errors).
    path = with_meta(tmp_path / "m.npz", model_arrays, source=source)
    out = plot_history(gradlab.load(path), tmp_path / "h.png")
    assert Path(out).read_bytes().startswith(b"\x89PNG")


def test_a_data_file_named_like_mathematics_draws_in_the_digits_title(tmp_path, capsys):
    data = write_mat(tmp_path / "a$\\frac{$.mat", m=30)
    assert main(["plot", "digits", "--data", data, "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").read_bytes().startswith(b"\x89PNG")


def test_a_float16_history_loads_without_an_overflow_warning(model_arrays, tmp_path):
    # Compared with 2**62, float16 overflowed: a RuntimeWarning on stderr, an error here.
    path = write_model(tmp_path / "m.npz", model_arrays, history=model_arrays["history"].astype(np.float16))
    loaded = gradlab.load(path)
    assert len(loaded.history) == len(model_arrays["history"])


@pytest.mark.parametrize("version", [0, -3])
def test_a_format_version_below_1_is_refused(model_arrays, tmp_path, version):
    path = write_model(tmp_path / "m.npz", model_arrays, gradlab_model=np.array([version]))
    with pytest.raises(gradlab.GradlabError, match=rf"m\.npz is not a usable gradlab model file: format version "
                                                   rf"{version} does not exist \(versions start at 1\)"):
        gradlab.load(path)


# ------------------------------------------------------------------------ --out and the inputs


@pytest.fixture()
def no_training(monkeypatch):
    import gradlab.trainer

    def must_not_train(*a, **k):
        raise AssertionError("trained before checking --out against the inputs")

    monkeypatch.setattr(gradlab.trainer, "train", must_not_train)


def _out_cases(tmp_path, model_arrays):
    data = write_mat(tmp_path / "d.mat")
    (tmp_path / "link.mat").symlink_to(data)
    images, labels = tmp_path / "img.idx", tmp_path / "lab.idx"
    images.write_bytes(_idx(0x08, np.zeros((4, 2, 2))))
    labels.write_bytes(_idx(0x08, np.arange(4) % 2))
    # A model file may have any name; one ending in .png is a valid --out for plot.
    model = write_model(tmp_path / "m.png", model_arrays)
    return {
        "train-data": (["train", "--data", data, "--out", data], "--data", data),
        "train-data-other-spelling": (["train", "--data", data, "--out", str(tmp_path / "." / "d.mat")], "--data", data),
        "train-data-through-a-link": (["train", "--data", data, "--out", str(tmp_path / "link.mat")], "--data", data),
        "train-labels": (["train", "--data", str(images), "--labels", str(labels), "--out", str(labels)], "--labels",
                         str(labels)),
        "plot-model": (["plot", "weights", model, "--out", model], "the model file", model),
    }


@pytest.mark.parametrize("case", ["train-data", "train-data-other-spelling", "train-data-through-a-link",
                                  "train-labels", "plot-model"])
def test_out_that_is_a_file_the_command_reads_is_refused_and_kept(tmp_path, capsys, model_arrays, no_training, case):
    # `gradlab train --data d.mat --out d.mat` replaced the user's data with a model.
    argv, what, victim = _out_cases(tmp_path, model_arrays)[case]
    before = Path(victim).read_bytes()
    assert main(argv) == EXIT_USAGE
    one_line_error(capsys, f"--out must not be the same file as {what}")
    assert Path(victim).read_bytes() == before


def test_out_named_like_a_shipped_dataset_is_not_taken_for_the_data(tmp_path, monkeypatch, capsys):
    # --data digits names the shipped set, not a file called digits in the working folder.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").write_bytes(b"an old file the user may replace")
    assert main(["train", "--hidden", "2", "--maxiter", "1", "--quiet", "--out", "digits"]) == 0
    assert gradlab.load(tmp_path / "digits").network.sizes[0] == 64


# ------------------------------------------------------------------------ plot digits


def test_plot_digits_of_fewer_than_100_examples_draws_them_all(tmp_path, capsys):
    # plot_digits' default n=100 was refused naming n, an option the CLI does not have.
    data = write_mat(tmp_path / "small.mat", m=12)
    assert main(["plot", "digits", "--data", data, "--out", str(tmp_path / "d.png")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'd.png'}\n"


@pytest.mark.parametrize("where", ["function", "import"])
def test_a_base_exception_from_user_code_is_reported_not_a_traceback(tmp_path, capsys, where):
    # A BaseException that is neither Exception nor SystemExit escaped main()'s last line of
    # defence: a bare traceback and status 1.
    raising = "    raise Odd('strange')\n" if where == "function" else "    pass\nraise Odd('strange')\n"
    (tmp_path / "mine.py").write_text(
        "class Odd(BaseException):\n    pass\n\n"
        "def grad(problem, params):\n" + raising
    )
    assert main(["check", f"{tmp_path / 'mine.py'}:grad"]) == EXIT_USAGE
    one_line_error(capsys, "raised Odd: strange", "mine.py, line")


def test_out_that_is_a_loop_of_links_is_named_as_one(tmp_path, capsys):
    # It was called "not a regular file (a device, pipe or socket)".
    (tmp_path / "a.npz").symlink_to(tmp_path / "b.npz")
    (tmp_path / "b.npz").symlink_to(tmp_path / "a.npz")
    assert main(["train", "--quiet", "--out", str(tmp_path / "a.npz")]) == EXIT_USAGE
    one_line_error(capsys, "a.npz is a symbolic link in a loop of links")


# ------------------------------------------------------------------------ Ctrl-C during an import


def _import_interrupted_by(sig):
    """A stand-in for train_as_asked: ``sig`` arrives while a C extension initialises, which turns the
    KeyboardInterrupt into ImportError "initialization failed" (as scipy's modules do)."""

    def fake_train(args):
        try:
            # raise_signal, not os.kill(os.getpid()): a signal sent to the process may be taken by
            # another thread (BLAS's, jax's), and Python would then run the handler only at a later
            # bytecode, past this block. raise_signal delivers it to this thread and runs the handler
            # before returning.
            signal.raise_signal(sig)  # gradlab's handler raises KeyboardInterrupt here
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc
        raise AssertionError(f"{sig} did not interrupt")

    return fake_train


@pytest.mark.parametrize("signame, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_during_an_import_in_train_is_an_interruption_not_an_internal_error(monkeypatch, capsys,
                                                                                   signame, status):
    import gradlab.cli.train as tc

    monkeypatch.setattr(tc, "train_as_asked", _import_interrupted_by(getattr(signal, signame)))
    assert main(["train", "--quiet"]) == status
    err = capsys.readouterr().err
    assert err.startswith("gradlab: interrupted by ") and "before training produced a model" in err
    assert err.count("\n") == 1


def test_ctrl_c_surfacing_as_another_exception_in_any_command_is_status_130(monkeypatch, capsys):
    import gradlab.cli.compare as cli_compare

    def interrupted_import(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(cli_compare, "run_compare", interrupted_import)
    assert main(["compare"]) == 130
    assert capsys.readouterr().err == "gradlab: interrupted by Ctrl-C\n"


# ------------------------------------------------------------- os._exit in the user's code

_EXITS_IN_FUNCTION = "import os\n\ndef grad(problem, params):\n    os._exit(0)\n"
_EXITS_ON_IMPORT = "import os\nos._exit(3)\n\ndef grad(problem, params):\n    return params\n"


@pytest.mark.parametrize("code, message", [
    (_EXITS_IN_FUNCTION, r"^gradlab: error: grad_fn grad raised ExitCalled: os\._exit\(0\) was called \(exits\.py, line 4, in grad\)$"),
    (_EXITS_ON_IMPORT, r"^gradlab: error: target: importing exits\.py raised ExitCalled: os\._exit\(3\) was called"),
])
def test_os_exit_in_checked_code_is_an_error_not_a_silent_pass(tmp_path, code, message):
    # os._exit(0) ended `gradlab check` at once with status 0 and no verdict: CI read a pass.
    (tmp_path / "exits.py").write_text(code)
    proc = _gradlab("check", "exits.py:grad", cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE, (proc.stdout, proc.stderr)
    assert re.match(message, proc.stderr.strip()), proc.stderr


def test_os_exit_in_a_user_source_is_a_user_code_error():
    def leaves(problem, params):
        os._exit(0)

    problem, before = gradlab.debug_problem(), os._exit
    with pytest.raises(gradlab.GradlabError, match=r"source 'leaves' raised ExitCalled: os\._exit\(0\) was called"):
        gradlab.gradient(problem, gradlab.debug_init(problem.network), leaves)
    assert os._exit is before  # put back after the user's code


@pytest.mark.slow  # a forked process
def test_a_process_forked_by_the_users_code_still_exits_for_real(tmp_path):
    # multiprocessing ends its forked children with os._exit: the child must really end,
    # not raise and run gradlab's check a second time.
    (tmp_path / "forks.py").write_text(
        "import os\n\n"
        "def grad(problem, params):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os._exit(7)\n"
        "    _, status = os.waitpid(pid, 0)\n"
        "    assert os.waitstatus_to_exitcode(status) == 7\n"
        "    from gradlab.sources import gradient\n"
        "    return gradient(problem, params, 'backprop')\n"
    )
    proc = _gradlab("check", "forks.py:grad", cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.count("verdict: PASS") == 1, proc.stdout


def test_os_exit_in_a_training_callback_is_a_user_code_error():
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    before = os._exit

    def leaves(iteration):
        os._exit(0)

    with pytest.raises(gradlab.GradlabError, match=r"callback 'leaves' raised ExitCalled: os\._exit\(0\) was called"):
        gradlab.train(X, y, hidden=(2,), maxiter=3, progress=False, callback=leaves)
    assert os._exit is before  # put back after the user's code
