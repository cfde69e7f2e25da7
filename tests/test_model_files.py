"""Model files: round trip, atomic writes, and clear errors for corrupt, truncated or foreign files."""

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab._files import atomic_write
from gradlab.model import FORMAT_VERSION


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 4)) * 3 + 1
    y = np.arange(30) % 3
    return gradlab.train(X, y, hidden=(5, 4), maxiter=10, scale=True, progress=False,
                         test=(X[:6], y[:6]), info={"data": "test data"}), X, y


def test_round_trip_keeps_everything_needed_to_predict(trained, tmp_path):
    r, X, y = trained
    path = r.save(tmp_path / "model.npz")
    assert path == str(tmp_path / "model.npz")
    back = gradlab.load(path)
    assert back.network == r.network and back.source == "backprop" and back.method == "cg"
    np.testing.assert_array_equal(back.params, r.params)
    np.testing.assert_array_equal(back.scaling.mean, r.scaling.mean)
    np.testing.assert_array_equal(back.scaling.std, r.scaling.std)
    np.testing.assert_array_equal(back.history.cost, r.history.cost)
    np.testing.assert_array_equal(back.history.iteration, r.history.iteration)
    np.testing.assert_array_equal(back.predict(X), r.predict(X))
    assert (back.lam, back.stop, back.message, back.scipy_status) == (r.lam, r.stop, r.message, r.scipy_status)
    assert back.train_accuracy == r.train_accuracy and back.test_accuracy == r.test_accuracy
    assert back.meta["data"] == "test data" and back.meta["seed"] == 0
    assert {"gradlab", "numpy", "scipy", "jax"} <= set(back.meta["versions"])
    assert str(back) == str(r)


def test_the_file_holds_no_pickled_objects(trained, tmp_path):
    r, _, _ = trained
    path = r.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as f:  # would raise on an object array
        arrays = {k: f[k] for k in f.files}
    assert all(a.dtype != object for a in arrays.values())
    assert int(arrays["gradlab_model"][0]) == FORMAT_VERSION
    assert json.loads(str(arrays["meta"]))["source"] == "backprop"


def test_saving_is_atomic_and_leaves_no_temporary_files(trained, tmp_path):
    r, _, _ = trained
    target = tmp_path / "m.npz"
    target.write_bytes(b"old contents")
    r.save(target)
    assert os.listdir(tmp_path) == ["m.npz"]
    gradlab.load(target)

    def half_then_fail(f):
        f.write(b"PK half a file")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert os.listdir(tmp_path) == ["m.npz"]
    gradlab.load(target)  # the previous model is intact


def test_saving_into_a_missing_folder_is_a_clear_error(trained, tmp_path):
    with pytest.raises(gradlab.GradlabError, match=r"folder .*nowhere does not exist"):
        trained[0].save(tmp_path / "nowhere" / "m.npz")


def _rewrite(path, out, change):
    """Copy a model file, letting ``change`` edit its dict of arrays."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(out, **arrays)
    return out


def test_corrupt_truncated_and_foreign_files_are_clear_errors(trained, tmp_path):
    r, _, _ = trained
    good = r.save(tmp_path / "good.npz")
    raw = Path(good).read_bytes()
    cases = {}
    for cut in (10, len(raw) // 2, len(raw) - 30):
        p = tmp_path / f"cut{cut}.npz"
        p.write_bytes(raw[:cut])
        cases[p] = r"damaged or truncated"
    flipped = bytearray(raw)
    mid = len(raw) // 2
    flipped[mid:mid + 64] = bytes(64)
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    cases[tmp_path / "flipped.npz"] = r"damaged or truncated"
    (tmp_path / "text.npz").write_text("hello")
    cases[tmp_path / "text.npz"] = r"not an \.npz \(zip\) archive"
    np.savez(tmp_path / "foreign.npz", weights=np.ones(3))
    cases[tmp_path / "foreign.npz"] = r"without the 'gradlab_model' entry \(it holds: weights\)"
    np.save(tmp_path / "array.npy", np.ones(3))
    cases[tmp_path / "array.npy"] = r"not an \.npz \(zip\) archive"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "a zip, not an npz")
    (tmp_path / "zip.npz").write_bytes(buf.getvalue())
    cases[tmp_path / "zip.npz"] = r"without the 'gradlab_model' entry"
    cases[_rewrite(good, tmp_path / "pickled.npz", lambda a: a.update(meta=np.array([{"x": 1}], dtype=object)))] = r"object array, which only pickle can read.*never unpickles"
    cases[_rewrite(good, tmp_path / "short.npz", lambda a: a.update(params=a["params"][:-1]))] = r"'params' must be \d+ finite float64"
    cases[_rewrite(good, tmp_path / "newer.npz", lambda a: a.update(gradlab_model=np.array([FORMAT_VERSION + 1])))] = r"newer than this gradlab reads"
    cases[_rewrite(good, tmp_path / "nometa.npz", lambda a: a.pop("meta"))] = r"entries missing: meta"
    cases[_rewrite(good, tmp_path / "badjson.npz", lambda a: a.update(meta=np.array("{not json")))] = r"'meta' is not valid JSON"
    cases[_rewrite(good, tmp_path / "sizes.npz", lambda a: a.update(sizes=np.array([4, 0, 3])))] = r"sizes.*\(4, 0, 3\)"
    for path, pattern in cases.items():
        with pytest.raises(gradlab.GradlabError, match=pattern):
            gradlab.load(path)
    with pytest.raises(gradlab.GradlabError, match=r"model file not found"):
        gradlab.load(tmp_path / "missing.npz")


# ------------------------------------------------------------------ the hidden activation


@pytest.fixture(scope="module")
def trained_tanh():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 4))
    y = np.arange(40) % 3
    problem = gradlab.Problem(gradlab.Network((4, 6, 3), "tanh"), X, y, lam=0.5)
    return gradlab.train(problem, maxiter=15, progress=False), X


def test_a_tanh_model_comes_back_as_tanh_and_predicts_the_same(trained_tanh, tmp_path):
    r, X = trained_tanh
    back = gradlab.load(r.save(tmp_path / "tanh.npz"))
    assert back.network.activation == "tanh" and back.network == r.network
    np.testing.assert_array_equal(back.predict(X), r.predict(X))
    # The same weights read as a sigmoid network predict differently on these inputs: the
    # activation is not a detail a model file may drop.
    as_sigmoid = gradlab.predict(gradlab.Network(r.network.sizes), r.params, X)
    assert not np.array_equal(as_sigmoid, r.predict(X))


def test_a_format_1_file_without_an_activation_loads_as_sigmoid(trained, tmp_path):
    r, X, _ = trained
    good = r.save(tmp_path / "good.npz")

    def as_format_1(a):
        del a["activation"]
        a["gradlab_model"] = np.array([1])

    back = gradlab.load(_rewrite(good, tmp_path / "v1.npz", as_format_1))
    assert back.network.activation == "sigmoid"
    np.testing.assert_array_equal(back.predict(X), r.predict(X))


@pytest.mark.parametrize("change, pattern", [
    (lambda a: a.pop("activation"), r"entries missing: activation \(format version 2 has them\)"),
    (lambda a: a.update(activation=np.array("softmax")), r"'activation' must be one of 'sigmoid', 'tanh', 'relu'; got 'softmax'"),
    (lambda a: a.update(activation=np.array(["tanh"])), r"'activation' must be one of"),
    (lambda a: a.update(activation=np.array(3)), r"'activation' must be one of .*; got dtype int64"),
], ids=["format-2-without-it", "unknown-name", "an-array", "a-number"])
def test_a_bad_activation_entry_is_a_clear_error(trained, tmp_path, change, pattern):
    r, _, _ = trained
    good = r.save(tmp_path / "good.npz")
    with pytest.raises(gradlab.GradlabError, match=pattern):
        gradlab.load(_rewrite(good, tmp_path / "bad.npz", change))
