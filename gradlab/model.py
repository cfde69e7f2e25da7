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
import os
import platform
import zipfile
import zlib

import numpy as np

from gradlab._errors import GradlabError
from gradlab._files import atomic_write
from gradlab._report import _jsonable

__all__ = ["save", "load", "FORMAT_VERSION"]

#: Version of the file layout above; bump it when the layout changes.
FORMAT_VERSION = 1
_MARKER = "gradlab_model"
_ENTRIES = ("sizes", "params", "scale_mean", "scale_std", "history", "meta")


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
        Missing file; a file that is not an .npz archive (corrupt, truncated, or some
        other format); an .npz that is not a gradlab model; a newer format version; or
        entries that do not fit together. The file is read with ``allow_pickle=False``.
    """
    from gradlab.data import Scaling
    from gradlab.network import Network
    from gradlab.trainer import History, TrainResult

    if not isinstance(path, (str, os.PathLike)):
        raise GradlabError(f"path must be a file path; got path={path!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GradlabError(f"model file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(b"PK"):
        raise _bad(path, f"it is not an .npz (zip) archive (it starts with {raw[:8]!r})")
    arrays = {}
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            names = set(npz.files)
            if _MARKER not in names:
                raise _bad(path, f"it is an .npz archive without the '{_MARKER}' entry (it holds: "
                           f"{', '.join(sorted(names)) or 'nothing'})")
            missing = [k for k in _ENTRIES if k not in names]
            if missing:
                raise _bad(path, f"entries missing: {', '.join(missing)}")
            for key in (_MARKER, *_ENTRIES):
                arrays[key] = np.array(npz[key])
    except GradlabError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        # Truncated or damaged archives, object arrays refused by allow_pickle=False.
        raise _bad(path, f"the archive is damaged or truncated ({type(exc).__name__}: {exc})") from None

    version = arrays[_MARKER]
    if version.shape != (1,) or version.dtype.kind not in "iu":
        raise _bad(path, f"'{_MARKER}' must be one integer; got {version!r}")
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
    if mean.size or std.size:
        n = network.n_inputs
        if mean.shape != (n,) or std.shape != (n,) or not np.all(np.isfinite(mean)) or not np.all(std > 0):
            raise _bad(path, f"'scale_mean' and 'scale_std' must be {n} finite numbers (std > 0); "
                       f"got shapes {mean.shape} and {std.shape}")
        mean = mean.astype(np.float64)
        std = std.astype(np.float64)
        mean.flags.writeable = False
        std.flags.writeable = False
        scaling = Scaling(mean, std)
    hist = arrays["history"]
    if hist.ndim != 2 or hist.shape[1] != 4 or hist.dtype.kind != "f":
        raise _bad(path, f"'history' must be an (n, 4) float array; got shape {hist.shape}")
    meta_arr = arrays["meta"]
    if meta_arr.shape != () or meta_arr.dtype.kind != "U":
        raise _bad(path, f"'meta' must be one string; got shape {meta_arr.shape}, dtype {meta_arr.dtype}")
    try:
        meta = json.loads(str(meta_arr))
    except json.JSONDecodeError as exc:
        raise _bad(path, f"'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _bad(path, "'meta' must be a JSON object")
    fields = {k: meta.pop(k, None) for k in ("source", "method", "lam", "stop", "message", "scipy_status",
                                              "train_accuracy", "test_accuracy")}
    return TrainResult(
        network, params, History.from_array(hist),
        source=fields["source"] or "unknown", method=fields["method"] or "unknown",
        lam=fields["lam"] if isinstance(fields["lam"], (int, float)) else float("nan"),
        stop=fields["stop"] or "other", message=fields["message"] or "",
        scipy_status=fields["scipy_status"], scaling=scaling,
        train_accuracy=fields["train_accuracy"], test_accuracy=fields["test_accuracy"],
        meta=meta,
    )
