"""The point a check runs at: gradlab's random one, or the user's own data and weights.

Every experiment of the check (lambda on and off, one example, bias zeroed, perturbed
points for the cost) is derived from this point, so a gradient that is wrong only on the
user's data -- past the 100th example, for a class gradlab's few examples lack -- is
checked where it is wrong.
"""

from __future__ import annotations

import io
import math
import os
import re

import numpy as np

from gradlab import _files
from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab.check.conventions import DEFAULT, Convention
from gradlab.data import Dataset
from gradlab.data import load as load_data
from gradlab.model import load as load_model
from gradlab.network import Network, Problem, random_init

__all__ = ["case", "read_params", "load_weights", "problem_from_data", "user_point"]

_THETA_KEY = re.compile(r"^Theta([1-9][0-9]*)$")


def case(network: Network, examples: int, lam: float, seed: int, weight_scale: float):
    """Random weights (the seed's initialiser, scaled), inputs in [-1, 1], every class present."""
    rng = np.random.default_rng(seed)
    params = random_init(network, rng) * weight_scale
    X = rng.uniform(-1.0, 1.0, size=(examples, network.n_inputs))
    y = rng.permutation(np.arange(examples) % network.n_outputs)
    return Problem(network, X, y, lam), params


def _matrices_sizes(mats, what: str) -> tuple[int, ...]:
    """The layer sizes weight matrices Theta1 ... ThetaL imply (each (s_{l+1}, s_l + 1))."""
    sizes = []
    for k, t in enumerate(mats, start=1):
        if t.ndim != 2 or t.shape[1] < 2:
            raise GradlabError(f"{what}: Theta{k} must be a matrix (s_{k + 1}, s_{k} + 1) with a bias column; "
                               f"got shape {t.shape}")
        if sizes and t.shape[1] != sizes[-1] + 1:
            raise GradlabError(f"{what}: Theta{k} has {t.shape[1]} columns, but Theta{k - 1} has {sizes[-1]} rows "
                               f"(Theta{k} needs {sizes[-1]} + 1 columns, the bias first)")
        if not sizes:
            sizes.append(t.shape[1] - 1)
        sizes.append(t.shape[0])
    return tuple(sizes)


def read_params(params, network: Network, convention: Convention = DEFAULT, name: str = "params") -> np.ndarray:
    """The user's weights as gradlab's row-major float64 vector.

    ``params`` is a flat vector of P entries (shape (P,), (P, 1) or (1, P)) unrolled in the
    convention's order, or a sequence of the matrices Theta1 ... ThetaL.
    """
    if isinstance(params, (list, tuple)):
        mats = [v.float_array(f"{name}[{k}]", t, ndim=2) for k, t in enumerate(params)]
        sizes = _matrices_sizes(mats, name)
        if sizes != network.sizes:
            raise GradlabError(f"{name}: matrices for sizes {sizes}; the check's sizes are {network.sizes}")
        return np.concatenate([t.ravel() for t in mats])
    arr = np.asarray(params) if isinstance(params, np.ndarray) else params
    n = network.n_params
    shape = np.shape(arr)
    if shape not in [(n,), (n, 1), (1, n)]:
        raise GradlabError(f"{name} must be {n} weights for sizes {network.sizes} (shape ({n},), ({n}, 1) or "
                           f"(1, {n})) or the matrices Theta1 ... Theta{len(network.shapes)}; got shape {shape}")
    flat = v.float_array(name, np.reshape(arr, (1, n)), ndim=2)[0]
    return np.array(convention.params_in(network, flat), dtype=np.float64)


def load_weights(path, *, name: str = "weights"):
    """Weights from a file: ``(sizes or None, weights)``.

    A ``.mat`` file with Theta1, Theta2, ... (MATLAB's layout); an ``.npz`` with Theta1,
    Theta2, ... or a flat ``params``; or a gradlab model file (``gradlab train --out``).
    ``weights`` is a list of matrices (sizes known) or a flat vector (sizes None, its
    order the caller's convention) -- hand it to :func:`read_params`.
    """
    path, raw = _files.read_bytes(name, path)
    if path.lower().endswith(".mat"):
        return _mat_weights(path, raw, name)
    if not raw.startswith(b"PK"):
        raise GradlabError(f"{name}: {path} is neither a .mat file nor an .npz archive (it starts with {raw[:8]!r}); "
                           "give Theta1, Theta2, ... in a .mat or .npz file, or a gradlab model file")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            keys = list(z.files)
            if "sizes" in keys and "params" in keys:  # a gradlab model file
                model = load_model(path)
                return model.network.sizes, list(model.network.unpack(model.params))
            thetas = sorted((int(m.group(1)), k) for k in keys if (m := _THETA_KEY.match(k)))
            for key in [k for _, k in thetas] + (["params"] if "params" in keys else []):
                _files.check_memory(path, key, 8 * _declared(z, key))
            if thetas:
                _consecutive(thetas, path, name)
                mats = [v.float_array(f"{name} {k}", z[k], ndim=2) for _, k in thetas]
                return _matrices_sizes(mats, f"{name} {path}"), mats
            if "params" in keys:
                return None, np.asarray(z["params"])
    except GradlabError:
        raise
    except Exception as exc:  # a damaged archive, an entry that needs pickle
        raise GradlabError(f"{name}: {path} is not a readable .npz archive of weights: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}") from None
    raise GradlabError(f"{name}: {path} holds {', '.join(keys) or 'nothing'}; weights are Theta1, Theta2, ... "
                       "or a flat params")


def _declared(z, key) -> int:
    """Entries an .npz member declares, read from its header (nothing is allocated)."""
    fmt = np.lib.format
    with z.zip.open(key + ".npy") as fp:
        version = fmt.read_magic(fp)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, _ = read(fp)
    return math.prod(shape)


def _consecutive(thetas, path, name) -> None:
    numbers = [k for k, _ in thetas]
    if numbers != list(range(1, len(numbers) + 1)):
        raise GradlabError(f"{name}: {path} holds {', '.join(k for _, k in thetas)}; the matrices must be "
                           "Theta1, Theta2, ... with none missing")


def _mat_weights(path: str, raw: bytes, name: str):
    import scipy.io

    try:
        listing = scipy.io.whosmat(io.BytesIO(raw))
    except Exception as exc:  # scipy raises many types for a damaged, foreign or v7.3 file
        raise GradlabError(f"{name}: {path} is not a .mat file scipy can read (damaged, another format, or "
                           f"MATLAB v7.3 -- save with -v7): {type(exc).__name__}") from None
    thetas = sorted((int(m.group(1)), n) for n, _, _ in listing if (m := _THETA_KEY.match(n)))
    if not thetas:
        found = ", ".join(n for n, _, _ in listing)
        raise GradlabError(f"{name}: {path} holds no Theta1, Theta2, ...; found: {found or 'nothing'}")
    _consecutive(thetas, path, name)
    for n, shape, cls in listing:
        if _THETA_KEY.match(n):
            if cls not in ("double", "single", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                           "uint64"):
                raise GradlabError(f"{name}: {path}: {n} must be a real matrix; got a MATLAB {cls}")
            _files.check_memory(path, f"{n} (declared {'x'.join(map(str, shape))})", 8 * math.prod(shape))
    try:
        contents = scipy.io.loadmat(io.BytesIO(raw), variable_names=[n for _, n in thetas])
    except Exception as exc:
        raise GradlabError(f"{name}: {path} could not be read: {type(exc).__name__}") from None
    mats = [v.float_array(f"{name} {n}", contents[n], ndim=2) for _, n in thetas]
    return _matrices_sizes(mats, f"{name} {path}"), mats


def problem_from_data(data, network: Network, *, labels: int = 0, lam: float = 0.0, examples=None,
                      name: str = "data") -> Problem:
    """A :class:`Problem` from a :class:`~gradlab.data.Dataset` (or ``(X, y)``), in output units.

    With ``labels=1`` the data's class ``c`` is label ``c`` and class 0 is label K ("label k
    means class k mod K", the course's 1..10 with 10 the digit 0), so the function receives
    the labels of the course's own file, and label k is output unit k - 1. With
    ``labels=0`` class ``c`` is label and output unit ``c``. ``examples`` keeps the first rows.
    """
    X, y = (data.X, data.y) if isinstance(data, Dataset) else data
    X, y = np.asarray(X), np.asarray(y)
    K = network.n_outputs
    if X.ndim != 2 or X.shape[1] != network.n_inputs:
        raise GradlabError(f"{name} must have {network.n_inputs} features for sizes {network.sizes}; "
                           f"got X of shape {X.shape}")
    if examples is not None:
        examples = v.integer("examples", examples, minimum=1)
        if examples > X.shape[0]:
            raise GradlabError(f"examples must be at most the {X.shape[0]} examples of the {name}; got examples={examples}")
        X, y = X[:examples], y[:examples]
    top = K if labels == 1 else K - 1
    if y.size and (int(np.min(y)) < 0 or int(np.max(y)) > top):
        hint = " (labels 1..K: pass labels=1, --labels 1)" if labels == 0 and int(np.max(y)) == K else ""
        raise GradlabError(f"{name}: labels must lie in {'1..K (or 0..K-1)' if labels == 1 else '0..K-1'} for K = "
                           f"sizes[-1] = {K}; got labels {int(np.min(y))}..{int(np.max(y))}{hint}")
    units = (y.astype(np.int64) - 1) % K if labels == 1 else y.astype(np.int64)
    return Problem(network, X, units, lam)


def user_point(sizes=None, *, data=None, data_labels=None, weights=None, labels: int = 0, unroll: str = "C",
               examples=None, lam: float = 1.0):
    """The network, problem and weights a check at the user's own point needs.

    Parameters
    ----------
    sizes : sequence of int, optional
        Layer sizes; taken from ``weights`` when they are matrices, and required otherwise
        when ``data`` is given.
    data : str or path-like, optional
        As ``gradlab train --data`` takes it: ``digits``, a ``.mat`` file or IDX images.
    data_labels : str or path-like, optional
        The IDX labels file for IDX images.
    weights : str or path-like, optional
        A file :func:`load_weights` reads.
    labels, unroll : as for :func:`gradlab.check`
        Labels decide how the data's classes become output units (:func:`problem_from_data`);
        unroll how a flat ``params`` in the weights file is read.
    examples : int, optional
        Keep the first ``examples`` rows of the data.
    lam : float, default 1.0

    Returns
    -------
    (Network, Problem or None, params or None)
        None where gradlab's random point is to be used.

    Raises
    ------
    GradlabError
        Unreadable files; sizes that do not match the data or the weights; labels outside
        the convention's range. Every message is one line naming the file or option.
    """
    conv = Convention(labels, unroll)
    w_sizes, w = (None, None) if weights is None else load_weights(weights)
    if sizes is None:
        if w_sizes is None and data is not None:
            raise GradlabError("data needs the layer sizes: give sizes (--sizes), or weights as matrices Theta1, ...")
        sizes = w_sizes
    network = None if sizes is None else (sizes if isinstance(sizes, Network) else Network(sizes))
    if network is not None and w_sizes is not None and w_sizes != network.sizes:
        raise GradlabError(f"weights {os.fspath(weights)} are for sizes {w_sizes}; the check's sizes are "
                           f"{network.sizes}")
    if w is not None and network is None:
        raise GradlabError(f"weights {os.fspath(weights)} hold a flat params; give the layer sizes (--sizes) to read it")
    params = None if w is None else read_params(w, network, conv, name="weights")
    problem = None
    if data is not None:
        dataset = load_data(data, data_labels)
        problem = problem_from_data(dataset, network, labels=labels, lam=lam, examples=examples,
                                    name=f"data {dataset.name}")
    return network, problem, params
