"""docs/bad-input.md's table "What gradlab does with bad input", run row by row.

Each row names a command and the words its one-line error must contain. The test builds
the files the rows name in a temporary folder, runs every command there through the CLI
and checks: exit status 2, exactly one line on stderr, the quoted words in it. A row the
test cannot run (a file it does not know how to build) fails, so the table stays true.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import gradlab
from gradlab.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"
SECTION = "# What gradlab does with bad input"
ROW = re.compile(r"^\|(?P<case>[^|]+)\|\s*`gradlab (?P<command>[^`]+)`\s*\|\s*`(?P<says>[^`]+)`\s*\|\s*$")


def _rows() -> list[tuple[str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    rows = []
    for line in text[start:end if end >= 0 else None].splitlines():
        m = ROW.match(line)
        if m:
            rows.append((m["case"].strip(), m["command"], m["says"]))
    return rows


ROWS = _rows()


def _model_bytes(tmp_path: Path) -> bytes:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), np.arange(30) % 3
    result = gradlab.train(X, y, hidden=(3,), maxiter=2, progress=False)
    path = result.save(tmp_path / "source-model.npz")
    return Path(path).read_bytes()


def _npz(entries: dict) -> bytes:
    """An .npz written as numpy writes one (object arrays pickled, as numpy does by default)."""
    buf = io.BytesIO()
    np.savez(buf, **entries)
    return buf.getvalue()


def _with_object_params(model: bytes) -> bytes:
    with np.load(io.BytesIO(model), allow_pickle=False) as npz:
        entries = {key: npz[key] for key in npz.files}
    entries["params"] = np.array([1.0, "x"], dtype=object)
    return _npz(entries)


def _mat(contents: dict) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, contents)
    return buf.getvalue()


def _v73() -> bytes:
    """The start of a MATLAB v7.3 file: a 128-byte text header, then HDF5 at byte 512."""
    head = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ")
    head += bytes(8) + b"\x00\x02" + b"IM"
    return head.ljust(512, b"\x00") + b"\x89HDF\r\n\x1a\n" + bytes(64)


def _idx(first: bytes, dims, data: bytes) -> bytes:
    return first + struct.pack(">" + "I" * len(dims), *dims) + data


FIFO = object()


def _files(tmp_path: Path) -> dict[str, object]:
    """Every file a row may name; None means a folder, FIFO a named pipe (standing in for /dev/null)."""
    model = _model_bytes(tmp_path)
    huge = np.full((20, 4), 1e308)
    huge[::2] *= -1
    return {
        "folder": None,
        "pipe.npz": FIFO,
        "empty.npz": b"",
        "truncated.npz": model[: len(model) // 2],
        "pickled.npz": _with_object_params(model),
        "foreign.npz": _npz({"weights": np.ones((3, 3))}),
        "v73.mat": _v73(),
        "no-y.mat": _mat({"X": np.ones((6, 2))}),
        "cells.mat": _mat({"X": np.array([[1.0, "a"]], dtype=object), "y": np.array([[1]])}),
        "huge.mat": _mat({"X": huge, "y": (np.arange(20) % 2)[:, None]}),
        "small.mat": _mat({"X": np.arange(24.0).reshape(12, 2), "y": (np.arange(12) % 2)[:, None]}),
        "magic.idx": _idx(bytes([7, 7, 8, 1]), (6,), bytes(6)),
        "labels.idx": _idx(bytes([0, 0, 8, 1]), (6,), bytes([0, 1, 0, 1, 0, 1])),
        "huge.idx": _idx(bytes([0, 0, 8, 3]), (100000, 100000, 100000), bytes(10)),
        "typo.py": b"def grad(problem, params):\n    return params +\n",
        "raises.py": b"def grad(problem, params):\n    raise RuntimeError('boom')\n",
        "exits.py": b"import os\n\ndef grad(problem, params):\n    os._exit(0)\n",
        "bad.csv": b"a,b,label\n1,oops,0\n",
        "mydata.txt": b"1,2,0\n3,4,1\n",
    }


#: Names rows may use for files that must NOT exist (the error is about their absence, or
#: a refused command would have written them).
ABSENT = {"nothere.mat", "missing.py", "nofolder", "digits.txt"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    for name, raw in _files(folder).items():
        if raw is None:
            (folder / name).mkdir()
        elif raw is FIFO:
            os.mkfifo(folder / name)
        else:
            (folder / name).write_bytes(raw)
    (folder / "source-model.npz").unlink()
    return folder


def test_the_table_has_its_rows():
    # A reworded heading or a broken table format would otherwise make every row vanish.
    assert len(ROWS) >= 20, ROWS


def test_every_file_the_table_names_is_built_or_known_absent(workdir):
    built = {p.name for p in workdir.iterdir()}
    for case, command, _ in ROWS:
        for token in shlex.split(command):
            first = token.split("/")[0].split(":")[0]
            if "." in first or first in {"folder", "nofolder"}:
                assert first in built | ABSENT, f"bad-input.md row {case!r} names {first!r}, which the test does not build"


@pytest.mark.parametrize("case, command, says", ROWS, ids=[r[0] for r in ROWS])
def test_documented_bad_input_is_one_line_exit_2(workdir, monkeypatch, capsys, case, command, says):
    monkeypatch.chdir(workdir)
    before = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    status = main(shlex.split(command))
    out, err = capsys.readouterr()
    assert status == 2, (command, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradlab: error: "), err
    assert says in lines[0], f"docs/bad-input.md promises {says!r} for `gradlab {command}`; got: {lines[0]}"
    after = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
    assert after == before, f"a refused command must write nothing; new: {set(after) - set(before)}"

