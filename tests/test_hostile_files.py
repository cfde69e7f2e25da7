"""Hostile files: every corrupt, truncated, foreign or malicious file is a GradlabError naming it.

Each loader (models, .mat, IDX, the checker's Python files) is fed the same kinds of bad
file through the library and through the CLI. Through the CLI every case must be one line
on stderr, exit status 2, no traceback. No case allocates more than a few kilobytes: the
"terabyte" files only claim it in their headers.
"""

import errno
import gzip
import io
import os
import pickle
import re
import stat
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse

import gradlab
from gradlab import _files
from gradlab import data as gd
from gradlab.check import UserCodeError, load_function
from gradlab.cli import main

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
#: A 4x4-input model is enough for every model-file case (and for plot weights: 4 = 2x2).
N_IN, N_HID, N_OUT = 4, 3, 2


# ------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def model_arrays(tmp_path_factory):
    """The arrays of a valid model file, to be damaged one at a time."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, N_IN))
    y = np.arange(20) % N_OUT
    r = gradlab.train(X, y, hidden=N_HID, maxiter=3, scale=True, progress=False,
                      info={"image_shape": [2, 2], "pixel_order": "C"})
    path = r.save(tmp_path_factory.mktemp("good") / "good.npz")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def npz_bytes(arrays: dict, **kw) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays, **kw)
    return buf.getvalue()


def changed(arrays: dict, **updates) -> bytes:
    """An .npz of ``arrays`` with some entries replaced (None: removed)."""
    out = dict(arrays)
    for key, value in updates.items():
        if value is None:
            out.pop(key)
        else:
            out[key] = value
    return npz_bytes(out)


def with_meta(arrays: dict, text: str) -> bytes:
    return changed(arrays, meta=np.array(text))


def meta_with(arrays: dict, **fields) -> bytes:
    import json

    meta = json.loads(str(arrays["meta"]))
    meta.update(fields)
    return with_meta(arrays, json.dumps(meta))


def npy_entry_claiming(shape, dtype="<f8", data: bytes = b"") -> bytes:
    """An .npy whose header claims ``shape`` but which holds only ``data``."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def zip_replacing(arrays: dict, name: str, npy: bytes) -> bytes:
    """A model archive whose entry ``name`` is the raw .npy bytes given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for key, value in arrays.items():
            if key == name:
                z.writestr(key + ".npy", npy)
            else:
                inner = io.BytesIO()
                np.save(inner, value, allow_pickle=False)
                z.writestr(key + ".npy", inner.getvalue())
    return buf.getvalue()


class _MakesMarker:
    """Unpickling this calls ``os.mkdir(path)``: proof that a payload ran would be the folder."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def mat_bytes(contents: dict, **kw) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, contents, **kw)
    return buf.getvalue()


GOOD_MAT = {"X": np.arange(12.0).reshape(6, 2), "y": np.array([[0], [1], [0], [1], [0], [1]])}


def idx_bytes(type_code: int, dims, data: bytes) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims) + data


GOOD_IMAGES = idx_bytes(0x08, (6, 2, 2), bytes(range(24)))
GOOD_LABELS = idx_bytes(0x08, (6,), bytes([0, 1, 0, 1, 0, 1]))


def v73_bytes() -> bytes:
    """The start of a MATLAB v7.3 file: a 128-byte text header (version 0x0200), then HDF5 at 512."""
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    head = text.ljust(116, b" ") + bytes(8) + b"\x00\x02" + b"IM"
    return head.ljust(512, b"\x00") + b"\x89HDF\r\n\x1a\n" + bytes(64)


def deny_reading(monkeypatch, path):
    """Running as root, chmod cannot make a file unreadable: make gradlab's open() refuse it."""
    real_open = open

    def refusing(file, *args, **kwargs):
        if os.path.abspath(os.fspath(file)) == os.path.abspath(os.fspath(path)):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(_files, "open", refusing, raising=False)


def assert_one_line_error(capsys, *needles):
    out, err = capsys.readouterr()
    assert err.startswith("gradlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "Traceback" not in out
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ------------------------------------------------------------------------------ paths: every loader


def _load_model(p):
    return gradlab.load(p)


def _load_mat(p):
    return gd.load_mat(p)


def _read_idx(p):
    return gd.read_idx(p)


def _load_data(p):
    return gd.load(p, labels=p)


def _load_check(p):
    return load_function(f"{p}:f")


LOADERS = {"model": (_load_model, "m.npz"), "mat": (_load_mat, "d.mat"), "idx": (_read_idx, "i.idx"),
           "data": (_load_data, "i.idx"), "check": (_load_check, "g.py")}


@pytest.mark.parametrize("loader", LOADERS)
def test_a_missing_file_is_named(tmp_path, loader):
    fn, name = LOADERS[loader]
    with pytest.raises(gradlab.GradlabError, match=r"not found|no such file|neither a name nor an existing file") as info:
        fn(tmp_path / name)
    assert str(tmp_path / name) in str(info.value)


@pytest.mark.parametrize("loader", LOADERS)
def test_a_folder_is_named_as_a_folder(tmp_path, loader):
    fn, name = LOADERS[loader]
    (tmp_path / name).mkdir()
    with pytest.raises(gradlab.GradlabError, match=re.escape(name) + r".* is a folder"):
        fn(tmp_path / name)


@pytest.mark.parametrize("loader", LOADERS)
def test_an_unreadable_file_is_named_with_the_reason(tmp_path, monkeypatch, loader):
    fn, name = LOADERS[loader]
    path = tmp_path / name
    path.write_bytes(b"x")
    deny_reading(monkeypatch, path)
    with pytest.raises(gradlab.GradlabError, match=r"cannot read .*" + re.escape(name) + r": Permission denied"):
        fn(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file whatever its mode")
@pytest.mark.parametrize("loader", LOADERS)
def test_a_file_without_read_permission_is_named(tmp_path, loader):
    fn, name = LOADERS[loader]
    path = tmp_path / name
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(gradlab.GradlabError, match=r"cannot read .*" + re.escape(name)):
        fn(path)


# ------------------------------------------------------------------------------ model files

MODEL_CASES = {
    # id: (build(arrays, tmp_path) -> bytes, pattern)
    "empty": (lambda a, t: b"", r"not an \.npz \(zip\) archive \(it starts with b''\)"),
    "text": (lambda a, t: b"sizes = 4,3,2\n", r"not an \.npz \(zip\) archive"),
    "png-named-npz": (lambda a, t: PNG_BYTES, r"not an \.npz \(zip\) archive.*PNG"),
    "mat-named-npz": (lambda a, t: mat_bytes(GOOD_MAT), r"not an \.npz \(zip\) archive.*MATLAB"),
    "plain-pickle": (lambda a, t: pickle.dumps({"params": [1.0]}), r"not an \.npz \(zip\) archive"),
    "zip-header-only": (lambda a, t: npz_bytes(a)[:30], r"damaged or truncated"),
    "cut-in-first-entry": (lambda a, t: npz_bytes(a)[:200], r"damaged or truncated"),
    "cut-in-the-middle": (lambda a, t: npz_bytes(a)[: len(npz_bytes(a)) // 2], r"damaged or truncated"),
    "cut-in-central-directory": (lambda a, t: npz_bytes(a)[:-30], r"damaged or truncated"),
    "garbage-after-PK": (lambda a, t: b"PK" + bytes(range(256)) * 4, r"damaged or truncated"),
    "zip-of-text": (lambda a, t: _zip_of({"notes.txt": b"hello"}), r"without the 'gradlab_model' entry \(it holds: nothing\)"),
    "missing-params": (lambda a, t: changed(a, params=None), r"entries missing: params"),
    "missing-marker": (lambda a, t: changed(a, gradlab_model=None), r"without the 'gradlab_model' entry"),
    "marker-two-numbers": (lambda a, t: changed(a, gradlab_model=np.array([1, 1])), r"'gradlab_model' must be one integer"),
    "marker-float": (lambda a, t: changed(a, gradlab_model=np.array([1.0])), r"'gradlab_model' must be one integer"),
    "sizes-float": (lambda a, t: changed(a, sizes=a["sizes"].astype(float)), r"'sizes' must be a vector of integers"),
    "sizes-negative": (lambda a, t: changed(a, sizes=np.array([4, -3, 2])), r"sizes"),
    "sizes-huge": (lambda a, t: changed(a, sizes=np.array([10**9, 10**9, 2])),
                   r"'params' must be \d+ finite float64 numbers"),
    "params-float32": (lambda a, t: changed(a, params=a["params"].astype(np.float32)), r"'params' must be .* float64.*float32"),
    "params-2d": (lambda a, t: changed(a, params=a["params"][None, :]), r"'params' must be.*shape \(1, \d+\)"),
    "params-nan": (lambda a, t: changed(a, params=np.full_like(a["params"], np.nan)), r"'params' must be \d+ finite"),
    "params-complex": (lambda a, t: changed(a, params=a["params"] + 0j), r"'params' must be.*complex128"),
    "scale-strings": (lambda a, t: changed(a, scale_mean=np.array(["a"] * N_IN)), r"'scale_mean' and 'scale_std' must be float arrays"),
    "scale-std-zero": (lambda a, t: changed(a, scale_std=np.zeros(N_IN)), r"std > 0"),
    "scale-wrong-length": (lambda a, t: changed(a, scale_mean=np.zeros(N_IN + 1)), r"must be 4 finite numbers"),
    "history-int": (lambda a, t: changed(a, history=np.zeros((2, 4), dtype=np.int64)), r"'history' must be an \(n, 4\) float array"),
    "history-3-columns": (lambda a, t: changed(a, history=np.zeros((2, 3))), r"'history' must be an \(n, 4\)"),
    "history-nan-iteration": (lambda a, t: changed(a, history=np.full((2, 4), np.nan)), r"whole iteration numbers"),
    "history-huge-iteration": (lambda a, t: changed(a, history=np.full((2, 4), 1e300)), r"whole iteration numbers"),
    "meta-number": (lambda a, t: changed(a, meta=np.array(3.0)), r"'meta' must be one string"),
    "meta-bytes": (lambda a, t: changed(a, meta=np.array(b"{}")), r"'meta' must be one string"),
    "meta-not-json": (lambda a, t: with_meta(a, "{source: backprop"), r"'meta' is not valid JSON"),
    "meta-deep-nesting": (lambda a, t: with_meta(a, "[" * 100_000 + "]" * 100_000), r"'meta' is not valid JSON \(RecursionError"),
    "meta-huge-integer": (lambda a, t: with_meta(a, '{"lam": ' + "9" * 10_000 + "}"), r"'meta' is not valid JSON \(ValueError"),
    "meta-a-list": (lambda a, t: with_meta(a, "[1, 2]"), r"'meta' must be a JSON object"),
    "meta-accuracy-text": (lambda a, t: meta_with(a, train_accuracy="high"), r"'train_accuracy' must be a number in \[0, 1\] or null"),
    "meta-lam-negative": (lambda a, t: meta_with(a, lam=-1), r"'lam' must be a finite number >= 0"),
    "meta-image-shape-int": (lambda a, t: meta_with(a, image_shape=5), r"'image_shape' must be null or \[height, width\]"),
    "meta-image-shape-wrong": (lambda a, t: meta_with(a, image_shape=[3, 3]), r"'image_shape' \[3, 3\] does not hold the 4 inputs"),
    "meta-pixel-order": (lambda a, t: meta_with(a, pixel_order="Z"), r"'pixel_order' must be 'C' or 'F'"),
    "meta-split-seed-text": (lambda a, t: meta_with(a, split_seed="0"), r"'split_seed' must be an integer >= 0"),
    "meta-elapsed-text": (lambda a, t: meta_with(a, elapsed="1 s"), r"'elapsed' must be a finite number"),
    "object-array": (lambda a, t: changed(a, meta=np.array([{"x": 1}], dtype=object)), r"entry 'meta' is an object array.*never unpickles"),
    "npy-version-3": (lambda a, t: zip_replacing(a, "params", b"\x93NUMPY\x03\x00" + bytes(60)), r"damaged or truncated.*version 3\.0"),
    "declared-terabytes": (lambda a, t: zip_replacing(a, "params", npy_entry_claiming((10**12,))),
                           r"entry 'params' \(declared shape \(1000000000000,\) of float64\) would need 7\.28 TiB.*refused before reading"),
    "declared-more-than-held": (lambda a, t: zip_replacing(a, "params", npy_entry_claiming((1000,), data=bytes(16))),
                                r"entry 'params' declares shape \(1000,\) of float64 \(8000 bytes of data\) but holds 16"),
}


def _zip_of(entries: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("case", MODEL_CASES)
def test_bad_model_file_is_a_gradlab_error_naming_it(model_arrays, tmp_path, case):
    build, pattern = MODEL_CASES[case]
    path = tmp_path / f"{case}.npz"
    path.write_bytes(build(model_arrays, tmp_path))
    with pytest.raises(gradlab.GradlabError, match=re.escape(str(path)) + r" is not a usable gradlab model file: .*" + pattern):
        gradlab.load(path)


def test_the_valid_model_the_cases_start_from_loads(model_arrays, tmp_path):
    # Guards the table above: each case differs from a file that loads.
    path = tmp_path / "fine.npz"
    path.write_bytes(npz_bytes(model_arrays))
    assert gradlab.load(path).network.sizes == (N_IN, N_HID, N_OUT)


@pytest.mark.parametrize("case", ["empty", "cut-in-the-middle", "object-array", "declared-terabytes", "meta-image-shape-int"])
@pytest.mark.parametrize("command", ["predict", "plot weights", "plot history"])
def test_cli_on_a_bad_model_file_is_one_line_exit_2(model_arrays, tmp_path, capsys, case, command):
    build, _ = MODEL_CASES[case]
    path = tmp_path / f"{case}.npz"
    path.write_bytes(build(model_arrays, tmp_path))
    argv = command.split() + [str(path)] + (["--out", str(tmp_path / "f.png")] if command.startswith("plot") else [])
    assert main(argv) == 2
    assert_one_line_error(capsys, str(path), "not a usable gradlab model file")
    assert not (tmp_path / "f.png").exists()


# ------------------------------------------------------------------------------ pickle payloads


def test_a_pickle_payload_in_a_model_file_is_refused_and_never_run(model_arrays, tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    payload = np.array([_MakesMarker(marker)], dtype=object)
    pickle.loads(pickle.dumps(_MakesMarker(marker)))  # the payload works: unpickling makes the marker
    assert marker.exists()
    marker.rmdir()
    files = {
        "model.npz": changed(model_arrays, params=payload),
        "meta.npz": changed(model_arrays, meta=payload),
        "payload.npy": _npy(payload),
        "payload.pkl.npz": pickle.dumps(_MakesMarker(marker)),
    }
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(gradlab.GradlabError, match=re.escape(name)):
            gradlab.load(tmp_path / name)
        with pytest.raises(gradlab.GradlabError, match=re.escape(name)):
            gd.load(tmp_path / name, labels=tmp_path / name)
        assert main(["predict", str(tmp_path / name)]) == 2
        assert_one_line_error(capsys, name)
        assert main(["train", "--data", str(tmp_path / name), "--labels", str(tmp_path / name)]) == 2
        assert_one_line_error(capsys, name)
    assert not marker.exists()


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


#: The two modules that import pickle: gradlab and the process that runs the user's code send
#: each other calls and results (pickled by _wire.py) through pipes between them -- never a file. A reply is as
#: trusted as the user's code, which gradlab was asked to run (as the same user) anyway; a
#: file the user believes is data never reaches pickle.
PICKLES_OVER_PIPES = {"_isolation.py", "_wire.py"}


def test_gradlab_never_unpickles_or_evaluates_files():
    """No module imports pickle (but the pipes to the user's process), enables allow_pickle,
    or evaluates text it reads."""
    root = Path(gradlab.__file__).parent
    offenders = []
    for src in root.rglob("*.py"):
        text = src.read_text()
        for pattern in (r"allow_pickle\s*=\s*True", r"^\s*(import|from)\s+(pickle|cPickle|dill|joblib|shelve)\b",
                        r"\beval\(", r"\bexec\(", r"mat_dtype\s*=\s*True"):
            if "pickle|" in pattern and src.name in PICKLES_OVER_PIPES and src.parent == root:
                continue
            if re.search(pattern, text, flags=re.MULTILINE):
                offenders.append((src.name, pattern))
    assert offenders == []


@pytest.mark.parametrize("module", sorted(PICKLES_OVER_PIPES))
def test_the_pipes_to_the_users_process_are_the_only_pickles_and_open_no_file(module):
    text = (Path(gradlab.__file__).parent / module).read_text()
    assert not re.search(r"\bopen\(|pickle\.load\(|np\.load\(", text)


# ------------------------------------------------------------------------------ .mat files


def _mat_with_dims(rows: int, cols: int) -> bytes:
    """A .mat whose X header claims rows x cols (the data stay 7x11 float64)."""
    raw = mat_bytes({"X": np.ones((7, 11)), "y": np.zeros(7)})
    dims = struct.pack("<ii", 7, 11)
    assert raw.count(dims) == 1
    return raw.replace(dims, struct.pack("<ii", rows, cols))


def _cut_after_first_variable(raw: bytes) -> bytes:
    """A v5 .mat cut where its second variable begins."""
    first_size = struct.unpack("<I", raw[132:136])[0]  # the 128-byte header, then (type, size) tags
    return raw[: 136 + first_size]


def _cut(raw: bytes, at: float) -> bytes:
    return raw[: int(len(raw) * at)]


MAT_CASES = {
    "empty": (lambda: b"", r"is empty \(0 bytes\)"),
    "text": (lambda: b"X = [1 2; 3 4]\ny = [1; 2]\n" * 8, r"not a readable MATLAB \.mat file"),
    "png-named-mat": (lambda: PNG_BYTES * 10, r"not a readable MATLAB \.mat file"),
    "npz-named-mat": (lambda: npz_bytes({"X": np.ones((2, 2))}), r"not a readable MATLAB \.mat file"),
    "cut-in-header": (lambda: mat_bytes(GOOD_MAT)[:100], r"not a readable MATLAB \.mat file"),
    "cut-in-X": (lambda: _cut(mat_bytes(GOOD_MAT), 0.3), r"not a readable MATLAB \.mat file \(damaged, truncated"),
    # Cut exactly between two variables, a file is indistinguishable from one without y.
    "cut-between-variables": (lambda: _cut_after_first_variable(mat_bytes(GOOD_MAT)), r"has no variable 'y'.*found: X \(6x2 double\)"),
    "cut-in-second-variable-tag": (lambda: _cut_after_first_variable(mat_bytes(GOOD_MAT)) + b"\x0e\x00", r"not a readable MATLAB"),
    "cut-in-y": (lambda: mat_bytes(GOOD_MAT)[:-8], r"not a readable MATLAB \.mat file"),
    "cut-compressed": (lambda: _cut(mat_bytes(GOOD_MAT, do_compression=True), 0.7),
                       r"not a readable MATLAB \.mat file \(damaged or truncated\)"),
    "v7.3-hdf5": (v73_bytes, r"MATLAB v7\.3 \(HDF5\) file.*-v7"),
    "no-X": (lambda: mat_bytes({"Xtrain": GOOD_MAT["X"], "y": GOOD_MAT["y"]}), r"has no variable 'X'.*found: Xtrain \(6x2 double\), y"),
    "no-y": (lambda: mat_bytes({"X": GOOD_MAT["X"]}), r"has no variable 'y'"),
    "X-cell": (lambda: mat_bytes({"X": np.array([[1, 2]], dtype=object), "y": [1]}), r"X must be a real \(m, n\) matrix; got a MATLAB cell"),
    "X-struct": (lambda: mat_bytes({"X": {"a": 1}, "y": [1]}), r"got a MATLAB struct"),
    "X-text": (lambda: mat_bytes({"X": "pixels", "y": [1]}), r"got a MATLAB char"),
    "X-sparse": (lambda: mat_bytes({"X": scipy.sparse.eye(6).tocsc(), "y": GOOD_MAT["y"]}), r"got a MATLAB sparse.*full\(X\)"),
    "X-complex": (lambda: mat_bytes({"X": GOOD_MAT["X"] * 1j, "y": GOOD_MAT["y"]}), r"X must be a real \(m, n\) matrix; got .*complex"),
    "X-3d": (lambda: mat_bytes({"X": np.ones((2, 2, 2)), "y": [1, 2]}), r"X must be a real \(m, n\) matrix; got .*\(2, 2, 2\)"),
    "X-nan": (lambda: mat_bytes({"X": np.where(GOOD_MAT["X"] == 5, np.nan, GOOD_MAT["X"]), "y": GOOD_MAT["y"]}),
              r"X must hold only finite numbers; got X\[2, 1\]=nan"),
    "X-empty": (lambda: mat_bytes({"X": np.zeros((0, 3)), "y": np.zeros((0, 1))}), r"no examples"),
    "X-claims-terabytes": (lambda: _mat_with_dims(2**30, 2**30), r"X \(declared 1073741824x1073741824\) would need 8 EiB"),
    "y-wrong-length": (lambda: mat_bytes({"X": GOOD_MAT["X"], "y": [0, 1, 0]}), r"one entry per row of X \(6\)"),
    "X-no-columns": (lambda: mat_bytes({"X": np.ones((6, 0)), "y": GOOD_MAT["y"]}), r"no features \(X has shape \(6, 0\)\)"),
    "y-fractional": (lambda: mat_bytes({"X": GOOD_MAT["X"], "y": [0, 1, 0.5, 1, 0, 1]}), r"labels y must be integers; got y\[2\]=0\.5"),
    "y-nan": (lambda: mat_bytes({"X": GOOD_MAT["X"], "y": [0, 1, np.nan, 1, 0, 1]}), r"labels y must be integers; got y\[2\]=nan"),
    "y-huge": (lambda: mat_bytes({"X": GOOD_MAT["X"], "y": [0, 1, 1e300, 1, 0, 1]}), r"labels y must be integers; got y\[2\]=1e\+300"),
    "y-text": (lambda: mat_bytes({"X": GOOD_MAT["X"], "y": "abcdef"}), r"y must be a real vector; got a MATLAB char"),
    "y-cell": (lambda: mat_bytes({"X": GOOD_MAT["X"], "y": np.array([[1, 2]], dtype=object)}), r"y must be a real vector; got a MATLAB cell"),
}


@pytest.mark.parametrize("case", MAT_CASES)
def test_bad_mat_file_is_a_gradlab_error_naming_it(tmp_path, case):
    build, pattern = MAT_CASES[case]
    path = tmp_path / f"{case}.mat"
    path.write_bytes(build())
    with pytest.raises(gradlab.GradlabError, match=re.escape(str(path)) + r".*" + pattern):
        gd.load_mat(path)


def test_the_mat_file_the_cases_start_from_loads(tmp_path):
    path = tmp_path / "fine.mat"
    path.write_bytes(mat_bytes(GOOD_MAT))
    X, y = gd.load_mat(path)
    assert X.shape == (6, 2) and y.tolist() == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("case", ["empty", "png-named-mat", "cut-in-X", "v7.3-hdf5", "no-y", "X-cell", "X-sparse", "X-nan",
                                  "X-claims-terabytes", "y-wrong-length"])
def test_train_on_a_bad_mat_file_is_one_line_exit_2(tmp_path, capsys, case):
    build, _ = MAT_CASES[case]
    path = tmp_path / f"{case}.mat"
    path.write_bytes(build())
    assert main(["train", "--data", str(path), "--quiet", "--maxiter", "1"]) == 2
    assert_one_line_error(capsys, str(path))


# ------------------------------------------------------------------------------ IDX files

IDX_CASES = {
    "empty": (lambda: b"", r"not an IDX file.*\(empty file\)"),
    "text": (lambda: b"0 1 2 3 4\n", r"not an IDX file"),
    "png-named-idx": (lambda: PNG_BYTES, r"not an IDX file.*89 50 4e 47"),
    "wrong-magic": (lambda: b"\x01\x00" + GOOD_IMAGES[2:], r"not an IDX file"),
    "unknown-type": (lambda: bytes([0, 0, 0x0A, 1]) + GOOD_LABELS[4:], r"not an IDX file.*00 00 0a 01"),
    "no-dimensions": (lambda: bytes([0, 0, 8, 0]), r"not an IDX file"),
    "cut-in-header": (lambda: GOOD_IMAGES[:9], r"IDX header truncated \(9 bytes, header needs 16\)"),
    "cut-in-data": (lambda: GOOD_IMAGES[:-5], r"IDX data truncated: header says shape \(6, 2, 2\) of uint8 \(40 bytes in all\)"),
    "longer-than-header": (lambda: GOOD_IMAGES + b"\x00", r"IDX data longer than its header says"),
    "claims-terabytes": (lambda: idx_bytes(0x08, (2**20, 2**20, 2**10), bytes(16)),
                         r"header says shape \(1048576, 1048576, 1024\) of uint8\) would need 8 PiB.*refused"),
    "claims-beyond-int64": (lambda: idx_bytes(0x0E, (2**32 - 1,) * 4, b""), r"would need .*refused before reading"),
    "gz-claims-terabytes": (lambda: gzip.compress(idx_bytes(0x08, (2**20, 2**20, 2**10), bytes(16))),
                            r"would need 8 PiB.*refused"),
    "gz-cut": (lambda: gzip.compress(GOOD_IMAGES)[:-12], r"damaged gzip file"),
    "gz-garbage": (lambda: b"\x1f\x8b" + bytes(range(200)), r"damaged gzip file"),
    "gz-longer-than-header": (lambda: gzip.compress(GOOD_IMAGES + bytes(100)), r"IDX data longer than its header says"),
}


@pytest.mark.parametrize("case", IDX_CASES)
def test_bad_idx_file_is_a_gradlab_error_naming_it(tmp_path, case):
    build, pattern = IDX_CASES[case]
    path = tmp_path / f"{case}.idx"
    path.write_bytes(build())
    with pytest.raises(gradlab.GradlabError, match=re.escape(str(path)) + r".*" + pattern):
        gd.read_idx(path)


IDX_PAIR_CASES = {
    "counts-differ": (GOOD_IMAGES, idx_bytes(0x08, (5,), bytes(5)), r"images and labels differ in length: .*i\.idx holds 6 images, .*l\.idx holds 5 labels"),
    "labels-2d": (GOOD_IMAGES, GOOD_IMAGES, r"l\.idx: IDX labels must have 1 dimension"),
    "labels-float": (GOOD_IMAGES, idx_bytes(0x0D, (6,), np.zeros(6, ">f4").tobytes()), r"l\.idx: IDX labels must be integers; got float32"),
    "labels-negative": (GOOD_IMAGES, idx_bytes(0x09, (6,), bytes([0, 1, 255, 1, 0, 1])), r"l\.idx: labels must be >= 0; got label\[2\]=-1"),
    "images-1d": (GOOD_LABELS, GOOD_LABELS, r"i\.idx: IDX images must have 2 or 3 dimensions"),
    "images-nan": (idx_bytes(0x0E, (6, 2), np.full(12, np.nan, ">f8").tobytes()), GOOD_LABELS, r"i\.idx: X must hold only finite numbers"),
    "images-no-pixels": (idx_bytes(0x08, (6, 0), b""), GOOD_LABELS, r"i\.idx: IDX images have no pixels"),
}


@pytest.mark.parametrize("case", IDX_PAIR_CASES)
def test_bad_idx_pair_is_a_gradlab_error_naming_the_file(tmp_path, case):
    images, labels, pattern = IDX_PAIR_CASES[case]
    (tmp_path / "i.idx").write_bytes(images)
    (tmp_path / "l.idx").write_bytes(labels)
    with pytest.raises(gradlab.GradlabError, match=pattern):
        gd.load_idx(tmp_path / "i.idx", tmp_path / "l.idx")


def test_the_idx_pair_the_cases_start_from_loads(tmp_path):
    (tmp_path / "i.idx").write_bytes(GOOD_IMAGES)
    (tmp_path / "l.idx").write_bytes(GOOD_LABELS)
    data = gd.load_idx(tmp_path / "i.idx", tmp_path / "l.idx")
    assert data.X.shape == (6, 4) and data.image_shape == (2, 2)


@pytest.mark.parametrize("case", ["empty", "cut-in-data", "claims-terabytes", "gz-claims-terabytes", "gz-cut"])
def test_train_on_a_bad_idx_file_is_one_line_exit_2(tmp_path, capsys, case):
    build, _ = IDX_CASES[case]
    (tmp_path / "i.idx").write_bytes(build())
    (tmp_path / "l.idx").write_bytes(GOOD_LABELS)
    assert main(["train", "--data", str(tmp_path / "i.idx"), "--labels", str(tmp_path / "l.idx"), "--quiet"]) == 2
    assert_one_line_error(capsys, str(tmp_path / "i.idx"))


def test_train_on_a_folder_is_one_line_exit_2(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--quiet"]) == 2
    assert_one_line_error(capsys, str(tmp_path), "is a folder")


def test_train_on_an_unreadable_mat_file_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    path = tmp_path / "d.mat"
    path.write_bytes(mat_bytes(GOOD_MAT))
    deny_reading(monkeypatch, path)
    assert main(["train", "--data", str(path), "--quiet"]) == 2
    assert_one_line_error(capsys, str(path), "Permission denied")


# ------------------------------------------------------------------------------ gradlab check's files

CHECK_FILES = {
    "syntax.py": "import numpy as np\n\ndef f(problem, params:\n    return params\n",
    "raises_on_import.py": "import numpy as np\n\nVALUE = 1 / 0\n",
    "exits_on_import.py": "import sys\nsys.exit(3)\n",
    "funcs.py": (
        "import numpy as np\n\n"
        "NOT_A_FUNCTION = 3\n\n"
        "def boom(problem, params):\n"
        "    scale = {'a': 1}\n"
        "    return params * scale['missing']\n\n"
        "def exits(problem, params):\n"
        "    raise SystemExit('bye')\n\n"
        "def deep(problem, params):\n"
        "    return np.linalg.inv(np.zeros((2, 2)))\n"
    ),
    "data.npz": "not python",
}


@pytest.fixture()
def user_files(tmp_path):
    for name, text in CHECK_FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


CHECK_CASES = {
    # id: (target relative to the folder, exception type, pattern)
    "missing-file": ("nowhere.py:f", gradlab.GradlabError, r"target: file not found: .*nowhere\.py"),
    "folder": ("sub.py:f", gradlab.GradlabError, r"sub\.py is a folder"),
    "not-python": ("data.npz:f", gradlab.GradlabError, r"must name a Python file \(\.py\).*data\.npz"),
    "syntax-error": ("syntax.py:f", UserCodeError, r"syntax error in .*syntax\.py, line 3: .*def f\(problem, params:"),
    "raises-on-import": ("raises_on_import.py:f", UserCodeError,
                         r"importing .*raises_on_import\.py raised ZeroDivisionError: division by zero \(.*raises_on_import\.py, line 3"),
    "exits-on-import": ("exits_on_import.py:f", UserCodeError, r"importing .*exits_on_import\.py raised SystemExit: 3"),
    "no-such-function": ("funcs.py:nothing", gradlab.GradlabError, r"no function 'nothing' in .*funcs\.py"),
    "not-callable": ("funcs.py:NOT_A_FUNCTION", gradlab.GradlabError, r"'NOT_A_FUNCTION' in .*funcs\.py is an int"),
    "no-colon": ("funcs.py", gradlab.GradlabError, r"target must be PATH\.py:FUNC or module:FUNC"),
    "empty-function-name": ("funcs.py:", gradlab.GradlabError, r"target must be PATH\.py:FUNC"),
    "bad-function-name": ("funcs.py:1x", gradlab.GradlabError, r"target must be PATH\.py:FUNC"),
}


@pytest.mark.parametrize("case", CHECK_CASES)
def test_load_function_errors_name_the_file(user_files, case):
    (user_files / "sub.py").mkdir(exist_ok=True)
    target, exc_type, pattern = CHECK_CASES[case]
    with pytest.raises(exc_type, match=pattern):
        load_function(str(user_files / target))


@pytest.mark.slow  # a second or more (the quick loop leaves it out)
@pytest.mark.parametrize("case", CHECK_CASES)
def test_check_on_a_bad_target_is_one_line_exit_2(user_files, capsys, case):
    (user_files / "sub.py").mkdir(exist_ok=True)
    target, _, pattern = CHECK_CASES[case]
    assert main(["check", str(user_files / target)]) == 2
    err = assert_one_line_error(capsys)
    assert re.search(pattern, err), err


@pytest.mark.parametrize("func, pattern", [
    ("boom", r"grad_fn boom raised KeyError: 'missing' \(.*funcs\.py, line 7, in boom\)"),
    ("exits", r"grad_fn exits raised SystemExit: bye \(.*funcs\.py, line 10, in exits\)"),
    ("deep", r"grad_fn deep raised LinAlgError: Singular matrix \(.*funcs\.py, line 13, in deep\)"),
])
def test_a_function_that_raises_is_named_with_file_line_and_exception(user_files, capsys, func, pattern):
    # Exit 2, as for any other reason the check cannot run: "your code raised" is not a
    # verdict on your gradient (that is exit 1), and the README documents it so.
    assert main(["check", f"{user_files / 'funcs.py'}:{func}"]) == 2
    err = assert_one_line_error(capsys)
    assert re.search(pattern, err), err


def test_check_on_an_unreadable_file_is_one_line_exit_2(user_files, capsys, monkeypatch):
    deny_reading(monkeypatch, user_files / "funcs.py")
    assert main(["check", f"{user_files / 'funcs.py'}:boom"]) == 2
    assert_one_line_error(capsys, "funcs.py", "Permission denied")


# ------------------------------------------------------------------------------ --out


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    rng = np.random.default_rng(1)
    r = gradlab.train(rng.normal(size=(12, N_IN)), np.arange(12) % 2, hidden=N_HID, maxiter=2, progress=False)
    return r.save(tmp_path_factory.mktemp("m") / "m.npz")


def _out_folder(tmp_path):
    (tmp_path / "dir").mkdir()
    return str(tmp_path / "dir")


OUT_CASES = {
    "a-folder": (_out_folder, r"--out: .*dir is a folder"),
    "a-folder-with-slash": (lambda t: _out_folder(t) + os.sep, r"--out must be a file path, not a folder"),
    "missing-folder": (lambda t: str(t / "nowhere" / "m.npz"), r"--out: the folder .*nowhere does not exist"),
    # A FIFO stands in for /dev/null: the rename would replace the device node itself.
    "a-pipe": (lambda t: (os.mkfifo(t / "pipe.png"), str(t / "pipe.png"))[1], r"--out: .*pipe\.png exists and is not a regular file"),
}


@pytest.mark.parametrize("command", ["train", "plot"])
@pytest.mark.parametrize("case", OUT_CASES)
def test_a_bad_out_is_refused_before_any_work(tmp_path, capsys, monkeypatch, model_file, command, case):
    build, pattern = OUT_CASES[case]
    out = build(tmp_path)
    if command == "train":
        import gradlab.trainer

        def must_not_train(*a, **k):
            raise AssertionError("trained before checking --out")

        monkeypatch.setattr(gradlab.trainer, "train", must_not_train)
        argv = ["train", "--quiet", "--out", out]
    else:
        argv = ["plot", "weights", model_file, "--out", out]
    assert main(argv) == 2
    err = assert_one_line_error(capsys)
    assert re.search(pattern, err), err


@pytest.mark.parametrize("command", ["train", "plot"])
def test_a_read_only_out_folder_is_refused(tmp_path, capsys, monkeypatch, model_file, command):
    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(_files.tempfile, "mkstemp", read_only)
    out = str(tmp_path / "f.npz")
    argv = ["train", "--quiet", "--out", out] if command == "train" else ["plot", "history", model_file, "--out", out]
    assert main(argv) == 2
    assert_one_line_error(capsys, "cannot write in the folder", "Read-only file system", "f.npz")


def test_a_failing_write_keeps_the_old_file_and_is_a_gradlab_error(tmp_path, model_file):
    target = tmp_path / "m.npz"
    target.write_bytes(Path(model_file).read_bytes())

    def disk_full(f):
        f.write(b"PK half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(gradlab.GradlabError, match=r"cannot write .*m\.npz: No space left on device; the previous file"):
        _files.atomic_write(target, disk_full)
    assert os.listdir(tmp_path) == ["m.npz"]
    assert target.read_bytes() == Path(model_file).read_bytes()


def test_a_save_removes_stale_temporaries_of_the_same_file_only(tmp_path, model_file):
    model = gradlab.load(model_file)
    old = time.time() - 2 * _files.STALE_TMP_SECONDS
    stale = tmp_path / ".m.npz.abcd1234.tmp"
    fresh = tmp_path / ".m.npz.efgh5678.tmp"
    other = tmp_path / ".other.npz.abcd1234.tmp"
    for p in (stale, fresh, other):
        p.write_bytes(b"PK half a model")
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    model.save(tmp_path / "m.npz")
    # fresh: a save in progress elsewhere; other: another file's
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz", fresh.name, other.name])


def test_a_device_or_pipe_is_never_replaced_by_a_save(tmp_path, model_file):
    pipe = tmp_path / "pipe.npz"
    os.mkfifo(pipe)
    with pytest.raises(gradlab.GradlabError, match=r"pipe\.npz exists and is not a regular file"):
        gradlab.load(model_file).save(pipe)
    assert stat.S_ISFIFO(os.lstat(pipe).st_mode)
    assert os.listdir(tmp_path) == ["pipe.npz"]


def test_a_save_through_a_symbolic_link_keeps_the_link(tmp_path, model_file):
    (tmp_path / "models").mkdir()
    real = tmp_path / "models" / "m.npz"
    real.write_bytes(b"an old model")
    link = tmp_path / "latest.npz"
    link.symlink_to(real)
    gradlab.load(model_file).save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert gradlab.load(real).params.shape == gradlab.load(model_file).params.shape
    assert os.listdir(tmp_path / "models") == ["m.npz"]
