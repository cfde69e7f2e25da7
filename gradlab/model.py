"""Model files: a trained network in one ``.npz``, written atomically, read without pickle.

Layout (every entry a plain numeric or string array, so ``allow_pickle=False`` reads it):

==================  ==========================================================
``gradlab_model``   int64 ``[FORMAT_VERSION]``: marks the file as gradlab's
``sizes``           int64 layer sizes, inputs first
``activation``      a string: the hidden activation (since format version 2; a
                    version-1 file has none and its network is sigmoid)
``params``          float64 flat parameters (the seed's layout)
``scale_mean``      float64 per-feature mean, empty when the inputs were not scaled
``scale_std``       float64 per-feature standard deviation, empty likewise
``history``         float64 (n, 4): iteration, cost, gradient norm, elapsed seconds
``meta``            a JSON string: source, method, lambda, stop, message, accuracies,
                    seed, data description, versions, creation time
==================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import math
import os
import platform
import zipfile
from importlib import metadata

import numpy as np
from numpy.lib import format as npy

from gradlab import _version
from gradlab._errors import GradlabError
from gradlab._files import atomic_write, memory_problem, read_bytes
from gradlab._optimisers import OK_STOPS, OPTIMISERS
from gradlab._report import Report, fmt, jsonable, printable
from gradlab.data import Scaling, make_dataset
from gradlab.network import ACTIVATIONS, Network, predict

__all__ = ["TrainResult", "History", "save", "load", "FORMAT_VERSION"]

#: Version of the file layout above; bump it when the layout changes. Version 2 added the
#: ``activation`` entry: a gradlab that reads only version 1 refuses the file (and says to
#: upgrade) instead of loading a tanh network as a sigmoid one.
FORMAT_VERSION = 2
_MARKER = "gradlab_model"
_ENTRIES = ("sizes", "params", "scale_mean", "scale_std", "history", "meta")
#: Entries each format version adds to the ones before it.
_ADDED = {2: ("activation",)}
#: Largest iteration number a history may record: it must fit int64 (History's type).
_MAX_ITERATION = 2**62


# --------------------------------------------------------------------------------------
# The result of training
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class History:
    """Per-iteration record; entry 0 is the starting point.

    Attributes (numpy arrays of equal length): ``iteration``, ``cost``, ``grad_norm``
    (Euclidean norm of the gradient), ``elapsed`` (seconds since training started).
    """

    iteration: np.ndarray
    cost: np.ndarray
    grad_norm: np.ndarray
    elapsed: np.ndarray

    def __len__(self) -> int:
        return int(self.iteration.shape[0])

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("iteration", "cost", "grad_norm", "elapsed")}

    def as_array(self) -> np.ndarray:
        """The history as an (n, 4) float64 array: iteration, cost, grad_norm, elapsed."""
        return np.column_stack([self.iteration, self.cost, self.grad_norm, self.elapsed]).astype(np.float64)

    @classmethod
    def from_array(cls, arr: np.ndarray) -> "History":
        return cls(arr[:, 0].astype(np.int64), arr[:, 1].copy(), arr[:, 2].copy(), arr[:, 3].copy())


# --------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------


class TrainResult(Report):
    """A trained network and how training went.

    Attributes
    ----------
    network : Network
    params : numpy.ndarray
        The trained flat parameters (the best reached when training was interrupted).
    history : History
    source, method : str
        The gradient source's name and the optimiser's short name.
    lam : float
    stop : str
        Why training ended: "converged", "maxiter", "precision loss", "nan",
        "line search failed", "callback", "interrupted" or "other".
    message : str
        The optimiser's own message, verbatim (or what interrupted it).
    scipy_status : int or None
        scipy's status code (None when interrupted).
    scaling : Scaling or None
        The standardisation fitted on the training inputs; ``predict`` applies it.
    train_accuracy, test_accuracy : float or None
    meta : dict
        Everything else saved with the model (seed, maxiter, counts, data, versions).
    ok : bool
        True when the stop is one of "converged", "maxiter", "callback".
    """

    def __init__(self, network, params, history, *, source, method, lam, stop, message,
                 scipy_status=None, scaling=None, train_accuracy=None, test_accuracy=None, meta=None):
        self.network = network
        self.params = np.array(params, dtype=np.float64, copy=True)
        self.params.flags.writeable = False
        self.history = history
        self.source = source
        self.method = method
        self.lam = float(lam)
        self.stop = stop
        self.message = message
        self.scipy_status = scipy_status
        self.scaling = scaling
        self.train_accuracy = train_accuracy
        self.test_accuracy = test_accuracy
        self.meta = dict(meta or {})
        self.ok = stop in OK_STOPS

    # ------------------------------------------------------------------ using the model

    def _inputs(self, X) -> np.ndarray:
        X = self.network.check_inputs(X)
        return self.scaling.apply(X) if self.scaling is not None else X

    def predict(self, X) -> np.ndarray:
        """Predicted class (0..K-1) for each row of raw inputs X (the scaling is applied here)."""
        return predict(self.network, self.params, self._inputs(X))

    def accuracy(self, X, y) -> float:
        """Fraction of rows of raw inputs X whose predicted class equals y."""
        X = self.network.check_inputs(X)
        data = make_dataset(X, y, "data")
        K = self.network.n_outputs
        if np.any(data.y >= K):
            # A label the network has no output for can never be predicted: a mismatch of
            # data and model (say 0..9 against 1..10), not a 0% score to report silently.
            i = int(np.argmax(data.y >= K))
            raise GradlabError(f"y must hold labels 0..{K - 1}, one per output of the model (K={K}); "
                               f"got y[{i}]={int(data.y[i])}")
        return float(np.mean(self.predict(data.X) == data.y))

    def save(self, path) -> str:
        """Write the model to an ``.npz`` file, atomically; see :func:`gradlab.load`."""
        return save(self, path)

    # ------------------------------------------------------------------ reporting

    @property
    def n_iter(self) -> int:
        return max(len(self.history) - 1, 0)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "sizes": list(self.network.sizes),
            "n_params": self.network.n_params,
            "source": self.source,
            "method": self.method,
            "lam": self.lam,
            "stop": self.stop,
            "message": self.message,
            "scipy_status": self.scipy_status,
            "iterations": self.n_iter,
            "cost": float(self.history.cost[-1]) if len(self.history) else None,
            "grad_norm": float(self.history.grad_norm[-1]) if len(self.history) else None,
            "scaled": self.scaling is not None,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "meta": self.meta,
            "history": self.history.to_dict(),
        }

    def _text(self) -> str:
        m = self.meta
        opt = OPTIMISERS.get(self.method)
        lines = [
            f"gradlab train: sizes {','.join(map(str, self.network.sizes))} "
            f"({self.network.n_params} parameters), source {self.source}, method {self.method}"
            + (f" (scipy {opt.scipy_method})" if opt else "")
            + f", lambda {self.lam:g}"
            + (f", seed {m['seed']}" if "seed" in m else ", initial weights given" if m.get("init") == "given" else "")
            + (", inputs standardised" if self.scaling is not None else "")
        ]
        status = "" if self.scipy_status is None else f" [scipy status {self.scipy_status}]"
        verdict = "stopped" if self.ok else f"STOPPED EARLY ({self.stop})"
        evals = f", {m['evaluations']} cost+gradient evaluations" if "evaluations" in m else ""
        if "hvp_evaluations" in m:
            evals += f", {m['hvp_evaluations']} Hessian-vector products ({printable(m.get('hvp_source', '?'))})"
        lines.append(f"optimiser: {verdict} after {self.n_iter} iterations{evals}: {self.message}{status}")
        h = self.history
        if len(h):
            timing = f"   time {m['elapsed']:.2f} s" if "elapsed" in m else ""
            lines.append(
                f"cost {h.cost[0]:.6f} -> {h.cost[-1]:.6f}   |grad| {fmt(h.grad_norm[0])} -> "
                f"{fmt(h.grad_norm[-1])}{timing}"
            )
        acc = []
        if self.train_accuracy is not None:
            acc.append(f"training {100 * self.train_accuracy:.2f}%" + (f" ({m['m_train']} examples)" if "m_train" in m else ""))
        if self.test_accuracy is not None:
            acc.append(f"test {100 * self.test_accuracy:.2f}%" + (f" ({m['m_test']} examples)" if "m_test" in m else ""))
        if acc:
            lines.append("accuracy: " + ", ".join(acc))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# The file format
# --------------------------------------------------------------------------------------


def _versions() -> dict:
    out = {"gradlab": _version.__version__, "python": platform.python_version()}
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
        "activation": np.array(result.network.activation),
        "params": np.asarray(result.params, dtype=np.float64),
        "scale_mean": empty if result.scaling is None else np.asarray(result.scaling.mean, dtype=np.float64),
        "scale_std": empty if result.scaling is None else np.asarray(result.scaling.std, dtype=np.float64),
        "history": result.history.as_array().reshape(-1, 4),
        "meta": np.array(json.dumps(jsonable(meta), allow_nan=False)),
    }
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def _bad(path, why: str) -> GradlabError:
    return GradlabError(f"{path} is not a usable gradlab model file: {why}")


def _entry_header(fp):
    """(shape, dtype) from an .npy header, read without touching the data."""
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
    added = [k for keys in _ADDED.values() for k in keys if k in names]
    arrays = {}
    for key in (_MARKER, *_ENTRIES, *added):
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
    "hvp_evaluations": (lambda x: _number(x, integer=True, low=0), "an integer >= 0"),
    "hvp_source": (lambda x: isinstance(x, str), "a string"),
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
    missing = [k for v, keys in _ADDED.items() if int(version[0]) >= v for k in keys if k not in arrays]
    if missing:
        raise _bad(path, f"entries missing: {', '.join(missing)} (format version {int(version[0])} has them)")
    sizes, params = arrays["sizes"], arrays["params"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise _bad(path, f"'sizes' must be a vector of integers; got shape {sizes.shape}, dtype {sizes.dtype}")
    activation = arrays.get("activation", np.array("sigmoid"))  # version 1: always sigmoid
    if activation.shape != () or activation.dtype.kind != "U" or str(activation) not in ACTIVATIONS:
        shown = printable(repr(activation.tolist()))[:60] if activation.dtype.kind in "US" else f"dtype {activation.dtype}"
        raise _bad(path, f"'activation' must be one of {', '.join(map(repr, ACTIVATIONS))}; got {shown}")
    try:
        network = Network(tuple(int(s) for s in sizes), str(activation))
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
