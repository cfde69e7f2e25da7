"""gradlab train / predict / plot as a user runs them; figures are real PNGs of the promised size."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import gradlab
from gradlab import plots
from gradlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (read here, not by matplotlib)."""
    raw = Path(path).read_bytes()[:24]
    assert raw[:8] == PNG_SIGNATURE and raw[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", raw[16:24])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small digits model trained through the CLI (few iterations: speed, not accuracy)."""
    out = tmp_path_factory.mktemp("model") / "digits.npz"
    assert main(["train", "--maxiter", "15", "--hidden", "16", "--quiet", "--out", str(out)]) == 0
    return out


def test_train_prints_accuracy_status_and_writes_the_model(capsys, tmp_path):
    out = tmp_path / "m.npz"
    code = main(["train", "--maxiter", "12", "--hidden", "10,8", "--method", "lbfgs", "--scale", "--progress",
                 "--test-fraction", "0.25", "--seed", "3", "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0
    assert "data: digits: 1797 examples, 64 features, images 8x8" in stdout
    assert "split: 1348 training / 449 test examples (stratified, seed 3)" in stdout
    assert "sizes 64,10,8,10" in stdout and "method lbfgs" in stdout and "inputs standardised" in stdout
    assert "optimiser: stopped after 12 iterations" in stdout and "[scipy status 1]" in stdout
    assert "accuracy: training" in stdout and "test" in stdout and f"wrote {out}" in stdout
    assert "training: 0/12 iterations" in stderr  # progress on stderr
    model = gradlab.load(out)
    assert model.network.sizes == (64, 10, 8, 10) and model.scaling is not None
    assert model.meta["test_fraction"] == 0.25 and model.meta["split_seed"] == 3


def test_train_json_is_quiet_and_complete(capsys):
    assert main(["train", "--maxiter", "5", "--hidden", "6", "--json"]) == 0
    stdout, stderr = capsys.readouterr()
    d = json.loads(stdout)
    assert stderr == ""
    assert d["sizes"] == [64, 6, 10] and d["stop"] == "maxiter" and d["iterations"] == 5
    assert len(d["history"]["cost"]) == 6 and 0 <= d["test_accuracy"] <= 1


def test_predict_scores_the_test_split_the_model_was_trained_with(model_file, capsys):
    model = gradlab.load(model_file)
    assert main(["predict", str(model_file), "--split", "test", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["m"] == 359 and d["accuracy"] == pytest.approx(model.test_accuracy, abs=0)
    X, y = gradlab.data.load_digits()
    s = gradlab.data.train_test_split(X, y, test_fraction=0.2, seed=0)
    assert d["labels"] == s.y_test.tolist() and d["predictions"] == model.predict(s.X_test).tolist()
    assert main(["predict", str(model_file)]) == 0
    assert "accuracy:" in capsys.readouterr().out


def test_train_and_predict_on_a_course_style_mat_file(tmp_path, capsys):
    X, y = gradlab.data.load_digits()
    course_y = np.where(y == 0, 10, y).reshape(-1, 1)
    images = X.reshape(-1, 8, 8)
    mat = tmp_path / "digits.mat"
    scipy.io.savemat(mat, {"X": images.transpose(0, 2, 1).reshape(-1, 64), "y": course_y})
    out = tmp_path / "m.npz"
    assert main(["train", "--data", str(mat), "--maxiter", "5", "--hidden", "6", "--quiet", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "note: labels: y holds 1..10 and no 0" in stdout and "labels 0..9" in stdout
    assert gradlab.load(out).meta["pixel_order"] == "F"
    assert main(["predict", str(out), "--data", str(mat)]) == 0
    assert "note: labels" in capsys.readouterr().out


def test_train_on_idx_files(tmp_path, capsys):
    X, y = gradlab.data.load_digits(raw=True)
    imgs = X[:200].reshape(-1, 8, 8).astype(np.uint8)
    (tmp_path / "i.idx").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 200, 8, 8) + imgs.tobytes())
    (tmp_path / "l.idx").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 200) + y[:200].astype(np.uint8).tobytes())
    assert main(["train", "--data", str(tmp_path / "i.idx"), "--labels", str(tmp_path / "l.idx"),
                 "--maxiter", "3", "--hidden", "5", "--scale", "--quiet"]) == 0
    assert "i.idx: 200 examples, 64 features, images 8x8" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        # maxiter 100000: even an optimistic flop rate puts it over the time limit (nothing is timed)
        (["train", "--grad-source", "numeric", "--maxiter", "100000", "--quiet"], "above the limit of 60 s; pass force=True (--force)"),
        (["train", "--hidden", "0", "--quiet"], "hidden must be a positive integer"),
        (["train", "--hidden", "25,x"], "hidden must be comma-separated integers such as 25 or 64,32"),
        (["train", "--test-fraction", "1", "--quiet"], "--test-fraction must be a number in [0, 1); got --test-fraction 1"),
        (["train", "--method", "adam"], "invalid choice: 'adam'"),
        (["train", "--data", "nothing-here.idx"], "neither a name nor an existing file"),
        (["predict", "missing.npz"], "model file not found: missing.npz"),
        (["plot", "weights", "--out", "w.png"], "plot weights needs a model file"),
        (["plot", "digits", "m.npz", "--out", "d.png"], "plot digits takes no model file"),
        (["plot", "digits"], "the following arguments are required: --out"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradlab: error: ") and message in err and err.count("\n") == 1


def test_predict_on_a_foreign_file_is_a_usage_error(tmp_path, capsys):
    np.savez(tmp_path / "other.npz", a=np.ones(2))
    assert main(["predict", str(tmp_path / "other.npz")]) == 2
    assert "not a usable gradlab model file" in capsys.readouterr().err


# ------------------------------------------------------------------------------ figures


def test_plot_commands_write_pngs_of_the_promised_size(model_file, tmp_path, capsys):
    import matplotlib.image

    sizes = {"digits": (800, 850), "weights": (800, 850), "history": (800, 600)}
    for figure, (w, h) in sizes.items():
        out = tmp_path / f"{figure}.png"
        argv = ["plot", figure, "--out", str(out)] if figure == "digits" else ["plot", figure, str(model_file), "--out", str(out)]
        assert main(argv) == 0
        assert png_size(out) == (w, h)
        pixels = matplotlib.image.imread(out)
        assert pixels.shape[:2] == (h, w)
        assert pixels[..., :3].std() > 0.05  # not a blank canvas
    assert sorted(os.listdir(tmp_path)) == ["digits.png", "history.png", "weights.png"]


def test_plot_functions_validate_their_input(tmp_path):
    with pytest.raises(gradlab.GradlabError, match=r"image_shape must be given when the 10 features"):
        plots.plot_digits(np.ones((5, 10)), tmp_path / "x.png", n=5)
    with pytest.raises(gradlab.GradlabError, match=r"n must be an integer in \[1, 5\]"):
        plots.plot_digits(np.ones((5, 4)), tmp_path / "x.png", n=6)
    with pytest.raises(gradlab.GradlabError, match=r"result must be a gradlab TrainResult"):
        plots.plot_history("model.npz", tmp_path / "x.png")
    r = gradlab.train(np.eye(4), [0, 1, 0, 1], hidden=(), maxiter=2, progress=False)
    with pytest.raises(gradlab.GradlabError, match=r"needs a hidden layer"):
        plots.plot_weights(r, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow  # a fresh process
def test_plotting_uses_agg_without_pyplot(tmp_path):
    code = (
        "import sys, gradlab, gradlab.plots as p\n"
        "p.plot_digits(gradlab.data.load_digits(), sys.argv[1], n=4)\n"
        "print(sorted(m for m in sys.modules if m in ('matplotlib.pyplot', 'tkinter', 'jax')))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "TkAgg"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.png")], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert out.strip() == "[]" and png_size(tmp_path / "d.png") == (800, 850)


def test_train_dtype_float32_uses_the_float32_jax_source(tmp_path):
    out = tmp_path / "f32.npz"
    assert main(["train", "--grad-source", "jax", "--dtype", "float32", "--maxiter", "15",
                 "--quiet", "--out", str(out)]) in (0, 1)
    model = gradlab.load(out)
    assert model.source == "jax-float32"
    # float32 gradients still drive the cost down from its start.
    assert model.history.cost[-1] < 0.5 * model.history.cost[0]


def test_train_dtype_float32_needs_the_jax_source(capsys):
    assert main(["train", "--dtype", "float32"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--grad-source jax only" in err


@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_writes_the_format_its_extension_names(model_file, tmp_path, capsys, ext, magic):
    out = tmp_path / f"history{ext}"
    assert main(["plot", "history", str(model_file), "--out", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


def test_plot_to_an_unknown_extension_is_refused_before_drawing(model_file, tmp_path, capsys):
    out = tmp_path / "weights.txt"
    assert main(["plot", "weights", str(model_file), "--out", str(out)]) == 2
    assert "out must be a file name ending in .png, .pdf or .svg" in capsys.readouterr().err
    assert not out.exists()
