"""Model files: a trained network in one ``.npz``, written atomically, read without pickle.

Layout (every entry a plain numeric or string array, so ``allow_pickle=False`` reads it):

==================  ==========================================================
``gradlab_model``   int64 ``[FORMAT_VERSION]``: marks the file as gradlab's
``sizes``           int64 layer sizes, inputs first
``params``          float64 flat parameters (the seed's layout)
``scale_mean``      float64 per-feature mean, empty when the inputs were not scaled
``scale_std``       float64 per-feature standard deviation, empty likewise
``history``         float64 (n, 4): iteration, cost, gradient norm, elapsed seconds
``meta``            a JSON string: source, method, lambda, stop, message, accuracies,
                    seed, data description, versions, creation time
==================  ==========================================================
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import platform
import zipfile

import numpy as np

from gradlab._errors import GradlabError
from gradlab._files import atomic_write, memory_problem, read_bytes
from gradlab._report import _jsonable

__all__ = ["save", "load", "FORMAT_VERSION"]

#: Version of the file layout above; bump it when the layout changes.
FORMAT_VERSION = 1
_MARKER = "gradlab_model"
_ENTRIES = ("sizes", "params", "scale_mean", "scale_std", "history", "meta")
#: Largest iteration number a history may record: it must fit int64 (History's type).
_MAX_ITERATION = 2**62


def _versions() -> dict:
    from importlib import metadata

    from gradlab import __version__

    out = {"gradlab": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "jax"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[pkg] = None
    return out


def save(result, path) -> str:
    """Write a :class:`gradlab.trainer.TrainResult` to ``path`` (.npz), atomically.

    The file is first written to a temporary file in the same folder and then renamed
    over ``path``, so a reader never sees half a model and a failed write keeps the old one.

    Returns
    -------
    str
        The path written (exactly as given: no extension is added).
    """
    from gradlab.trainer import TrainResult

    if not isinstance(result, TrainResult):
        raise GradlabError(f"result must be a gradlab TrainResult; got {type(result).__name__}")
    meta = dict(result.meta)
    meta.update(
        source=result.source, method=result.method, lam=result.lam, stop=result.stop,
        message=result.message, scipy_status=result.scipy_status,
        train_accuracy=result.train_accuracy, test_accuracy=result.test_accuracy,
    )
    meta.setdefault("versions", _versions())
    meta.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    empty = np.empty(0, dtype=np.float64)
    arrays = {
        _MARKER: np.array([FORMAT_VERSION], dtype=np.int64),
        "sizes": np.array(result.network.sizes, dtype=np.int64),
        "params": np.asarray(result.params, dtype=np.float64),
        "scale_mean": empty if result.scaling is None else np.asarray(result.scaling.mean, dtype=np.float64),
        "scale_std": empty if result.scaling is None else np.asarray(result.scaling.std, dtype=np.float64),
        "history": result.history.as_array().reshape(-1, 4),
        "meta": np.array(json.dumps(_jsonable(meta), allow_nan=False)),
    }
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def _bad(path, why: str) -> GradlabError:
    return GradlabError(f"{path} is not a usable gradlab model file: {why}")


def _entry_header(fp):
    """(shape, dtype) from an .npy header, read without touching the data."""
    from numpy.lib import format as npy

    version = npy.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = npy.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _, dtype = npy.read_array_header_2_0(fp)
    else:
        raise ValueError(f".npy format version {version[0]}.{version[1]} is not one gradlab writes")
    return shape, dtype


def _read_entries(path: str, raw: bytes) -> dict:
    """The layout's arrays, each checked from its header before its data is read.

    Every entry must be a plain array (an object array would need pickle, which can run
    code: refused, never unpickled), must fit the memory budget, and must hold exactly
    the bytes its header declares.
    """
    from numpy.lib import format as npy

    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        names = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
    except Exception as exc:  # zipfile raises many types for damaged archives
        raise _bad(path, f"the archive is damaged or truncated ({type(exc).__name__}: {exc})") from None
    if _MARKER not in names:
        raise _bad(path, f"it is an .npz archive without the '{_MARKER}' entry (it holds: "
                   f"{', '.join(sorted(names)) or 'nothing'})")
    missing = [k for k in _ENTRIES if k not in names]
    if missing:
        raise _bad(path, f"entries missing: {', '.join(missing)}")
    arrays = {}
    for key in (_MARKER, *_ENTRIES):
        try:
            info = archive.getinfo(key + ".npy")
            why = memory_problem(f"entry '{key}' ({info.file_size} bytes unpacked, as the archive declares)",
                                 info.file_size)
            if why:
                raise _bad(path, why)
            with archive.open(info) as fp:
                shape, dtype = _entry_header(fp)
                offset = fp.tell()
            if dtype.hasobject:
                raise _bad(path, f"entry '{key}' is an object array, which only pickle can read, and "
                           "unpickling can run code: gradlab never unpickles (allow_pickle=False)")
            nbytes = math.prod(shape) * dtype.itemsize
            why = memory_problem(f"entry '{key}' (declared shape {shape} of {dtype})", nbytes)
            if why:
                raise _bad(path, why)
            if offset + nbytes != info.file_size:
                raise _bad(path, f"entry '{key}' declares shape {shape} of {dtype} ({nbytes} bytes of "
                           f"data) but holds {info.file_size - offset}")
            with archive.open(info) as fp:
                arrays[key] = npy.read_array(fp, allow_pickle=False)
        except GradlabError:
            raise
        except Exception as exc:  # damaged headers, CRC errors, truncated deflate streams
            raise _bad(path, f"the archive is damaged or truncated ({type(exc).__name__}: {exc})") from None
    return arrays


def _number(value, *, integer: bool = False, low: float | None = None, high: float | None = None) -> bool:
    """A JSON number (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        return False
    return math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high)


#: Metadata fields gradlab itself reads back, and what each may hold (missing is always fine).
_META_FIELDS = {
    "source": (lambda x: isinstance(x, str), "a string"),
    "method": (lambda x: isinstance(x, str), "a string"),
    "stop": (lambda x: isinstance(x, str), "a string"),
    "message": (lambda x: isinstance(x, str), "a string"),
    "lam": (lambda x: _number(x, low=0), "a finite number >= 0"),
    "scipy_status": (lambda x: x is None or _number(x, integer=True), "an integer or null"),
    "train_accuracy": (lambda x: x is None or _number(x, low=0, high=1), "a number in [0, 1] or null"),
    "test_accuracy": (lambda x: x is None or _number(x, low=0, high=1), "a number in [0, 1] or null"),
    "test_fraction": (lambda x: _number(x, low=0, high=1) and x < 1, "a number in [0, 1)"),
    "split_seed": (lambda x: _number(x, integer=True, low=0), "an integer >= 0"),
    "pixel_order": (lambda x: x in ("C", "F"), "'C' or 'F'"),
    "image_shape": (lambda x: x is None or (isinstance(x, list) and len(x) == 2
                                            and all(_number(s, integer=True, low=1) for s in x)),
                    "null or [height, width] (positive integers)"),
    "elapsed": (lambda x: _number(x), "a finite number"),
    "evaluations": (lambda x: _number(x, integer=True, low=0), "an integer >= 0"),
    "m_train": (lambda x: _number(x, integer=True, low=0), "an integer >= 0"),
    "m_test": (lambda x: _number(x, integer=True, low=0), "an integer >= 0"),
}


def load(path):
    """Read a model file written by ``TrainResult.save`` / ``gradlab train --out``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    TrainResult
        With the network, parameters, scaling, history and metadata as saved; ``predict``
        and ``accuracy`` work at once.

    Raises
    ------
    GradlabError
        Missing or unreadable file, or a folder; a file that is not an .npz archive
        (corrupt, truncated, or some other format); an .npz that is not a gradlab model;
        an entry that would need pickle (never unpickled) or more memory than the budget
        (refused from its header); a newer format version; or entries that do not fit
        together. Every message names the file.
    """
    from gradlab.data import Scaling
    from gradlab.network import Network
    from gradlab.trainer import History, TrainResult

    if not isinstance(path, (str, os.PathLike)):
        raise GradlabError(f"path must be a file path; got path={path!r}")
    if not os.path.lexists(os.fspath(path)):
        raise GradlabError(f"model file not found: {os.fspath(path)}")
    path, raw = read_bytes("model file", path)
    if not raw.startswith(b"PK"):
        raise _bad(path, f"it is not an .npz (zip) archive (it starts with {raw[:8]!r})")
    arrays = _read_entries(path, raw)

    version = arrays[_MARKER]
    if version.shape != (1,) or version.dtype.kind not in "iu":
        raise _bad(path, f"'{_MARKER}' must be one integer; got shape {version.shape}, dtype {version.dtype}")
    if int(version[0]) < 1:
        raise _bad(path, f"format version {int(version[0])} does not exist (versions start at 1)")
    if int(version[0]) > FORMAT_VERSION:
        raise _bad(path, f"format version {int(version[0])} is newer than this gradlab reads ({FORMAT_VERSION}); upgrade gradlab")
    sizes, params = arrays["sizes"], arrays["params"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise _bad(path, f"'sizes' must be a vector of integers; got shape {sizes.shape}, dtype {sizes.dtype}")
    try:
        network = Network(tuple(int(s) for s in sizes))
    except GradlabError as exc:
        raise _bad(path, str(exc)) from None
    if params.shape != (network.n_params,) or params.dtype != np.float64 or not np.all(np.isfinite(params)):
        raise _bad(path, f"'params' must be {network.n_params} finite float64 numbers for sizes "
                   f"{network.sizes}; got shape {params.shape}, dtype {params.dtype}")
    mean, std = arrays["scale_mean"], arrays["scale_std"]
    scaling = None
    if mean.dtype.kind != "f" or std.dtype.kind != "f":
        raise _bad(path, f"'scale_mean' and 'scale_std' must be float arrays; got dtypes {mean.dtype} and {std.dtype}")
    if mean.size or std.size:
        n = network.n_inputs
        if mean.shape != (n,) or std.shape != (n,) or not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) \
                or not np.all(std > 0):
            raise _bad(path, f"'scale_mean' and 'scale_std' must be {n} finite numbers (std > 0); "
                       f"got shapes {mean.shape} and {std.shape}")
        mean = mean.astype(np.float64)
        std = std.astype(np.float64)
        mean.flags.writeable = False
        std.flags.writeable = False
        scaling = Scaling(mean, std)
    hist = arrays["history"]
    if hist.ndim != 2 or hist.shape[1] != 4 or hist.dtype.kind != "f":
        raise _bad(path, f"'history' must be an (n, 4) float array; got shape {hist.shape}, dtype {hist.dtype}")
    # float64 before the checks: compared with _MAX_ITERATION, a float16 history overflowed (and warned).
    hist = hist.astype(np.float64)
    # Iteration numbers become int64: checked first (a cast of NaN or 1e300 is undefined).
    # Costs may be NaN: a run that diverged (stop 'nan') records them as they were.
    iters = hist[:, 0]
    if not np.all(np.isfinite(iters)) or np.any(iters < 0) or np.any(iters != np.round(iters)) \
            or np.any(iters > _MAX_ITERATION):
        raise _bad(path, "'history' column 0 must hold whole iteration numbers >= 0")
    meta_arr = arrays["meta"]
    if meta_arr.shape != () or meta_arr.dtype.kind != "U":
        raise _bad(path, f"'meta' must be one string; got shape {meta_arr.shape}, dtype {meta_arr.dtype}")
    try:
        meta = json.loads(str(meta_arr))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, over-long integers, deep nesting
        raise _bad(path, f"'meta' is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(meta, dict):
        raise _bad(path, "'meta' must be a JSON object")
    for key, (ok, accepted) in _META_FIELDS.items():
        if key in meta and not ok(meta[key]):
            raise _bad(path, f"'meta' field {key!r} must be {accepted}; got {json.dumps(meta[key])[:60]}")
    shape = meta.get("image_shape")
    if shape is not None and shape[0] * shape[1] != network.n_inputs:
        raise _bad(path, f"'meta' field 'image_shape' {shape} does not hold the {network.n_inputs} inputs")
    fields = {k: meta.pop(k, None) for k in ("source", "method", "lam", "stop", "message", "scipy_status",
                                              "train_accuracy", "test_accuracy")}
    return TrainResult(
        network, params, History.from_array(hist),
        source=fields["source"] or "unknown", method=fields["method"] or "unknown",
        lam=fields["lam"] if fields["lam"] is not None else float("nan"),
        stop=fields["stop"] or "other", message=fields["message"] or "",
        scipy_status=fields["scipy_status"], scaling=scaling,
        train_accuracy=fields["train_accuracy"], test_accuracy=fields["test_accuracy"],
        meta=meta,
    )
