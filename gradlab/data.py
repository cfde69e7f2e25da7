"""Data: the shipped digits, loaders for MATLAB ``.mat`` and MNIST IDX files, a
deterministic stratified split and feature standardisation.

Every loader returns a :class:`Dataset`, which unpacks like a pair::

    X, y = gradlab.data.load_digits()      # X float64 (1797, 64), y int64 0..9

and also carries what a person should know about the data (``notes``, e.g. that labels
10 were read as digit 0) and the image layout the figures need (``image_shape``,
``pixel_order``).

scipy.io is imported only by the ``.mat`` loader.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from gradlab import _validate as v
from gradlab._errors import GradlabError

__all__ = [
    "Dataset",
    "Split",
    "Scaling",
    "DATASETS",
    "data_dir",
    "load_digits",
    "load_mat",
    "load_idx",
    "read_idx",
    "load",
    "train_test_split",
]

#: The shipped digits, relative to the folder above the ``gradlab`` package (the
#: repository root in a ``pip install -e .`` checkout). See data/README.md.
DIGITS_FILE = "digits.npz"
#: What the shipped file must hold (UCI optical-recognition digits, test part).
DIGITS_ROWS = 1797
DIGITS_IMAGE = (8, 8)
DIGITS_MAX_PIXEL = 16


# --------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and labels, with what was learnt while reading them.

    Attributes
    ----------
    X : numpy.ndarray, shape (m, n), float64
        One example per row.
    y : numpy.ndarray, shape (m,), int64
        Labels ``0..K-1``.
    name : str
        Where the data came from (a file name or ``"digits"``).
    notes : tuple of str
        Things the loader did that a person should know (e.g. a label mapping).
    image_shape : tuple of int or None
        ``(height, width)`` when each row is an image.
    pixel_order : {"C", "F"}
        How a row unrolls its image: row by row ("C") or column by column ("F", MATLAB).

    A Dataset unpacks as ``X, y = dataset``.
    """

    X: np.ndarray
    y: np.ndarray
    name: str = "data"
    notes: tuple[str, ...] = ()
    image_shape: tuple[int, int] | None = None
    pixel_order: str = "C"

    def __iter__(self):
        return iter((self.X, self.y))

    @property
    def m(self) -> int:
        """Number of examples."""
        return self.X.shape[0]

    def images(self) -> np.ndarray:
        """The rows as ``(m, height, width)`` images, in reading order (row 0 at the top)."""
        if self.image_shape is None:
            raise GradlabError(
                f"{self.name} has no image shape: its {self.X.shape[1]} features are not an image"
            )
        return rows_as_images(self.X, self.image_shape, self.pixel_order)

    def describe(self) -> str:
        """One line: name, size, image shape."""
        shape = "" if self.image_shape is None else f", images {self.image_shape[0]}x{self.image_shape[1]}"
        return (
            f"{self.name}: {self.m} examples, {self.X.shape[1]} features{shape}, "
            f"labels {int(self.y.min())}..{int(self.y.max())}"
        )


def rows_as_images(X, image_shape, pixel_order: str = "C") -> np.ndarray:
    """Reshape rows of X into ``(m, h, w)`` images; ``pixel_order`` "F" is MATLAB's column order."""
    X = np.asarray(X)
    h, w = image_shape
    if X.ndim != 2 or X.shape[1] != h * w:
        raise GradlabError(
            f"X must have {h * w} columns for image_shape={tuple(image_shape)}; got X with shape {X.shape}"
        )
    order = v.choice("pixel_order", pixel_order, ("C", "F"))
    if order == "C":
        return X.reshape(-1, h, w)
    return X.reshape(-1, w, h).transpose(0, 2, 1)


def _flag(name: str, value) -> bool:
    """A True/False argument (numpy bools accepted; 0, 1 and strings are not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise v.fail(name, value, "True or False")
    return bool(value)


def _square_image(n: int) -> tuple[int, int] | None:
    side = int(round(n**0.5))
    return (side, side) if side * side == n else None


def _dataset(X, y, name, notes=(), image_shape=None, pixel_order="C") -> Dataset:
    """Validate and freeze a dataset (X finite 2-D, y integer labels >= 0, same length)."""
    X = v.float_array("X", X, ndim=2)
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and 1 in y_arr.shape:
        y_arr = y_arr.ravel()
    if y_arr.ndim != 1 or y_arr.shape[0] != X.shape[0]:
        raise GradlabError(
            f"{name}: labels y must be a vector with one entry per row of X ({X.shape[0]}); "
            f"got y with shape {np.shape(y)}"
        )
    if X.shape[0] < 1:
        raise GradlabError(f"{name}: no examples (X has shape {X.shape})")
    if not (np.issubdtype(y_arr.dtype, np.integer) or np.issubdtype(y_arr.dtype, np.floating)):
        raise GradlabError(f"{name}: labels y must be integers; got dtype {y_arr.dtype}")
    as_int = np.asarray(np.round(y_arr), dtype=np.int64) if y_arr.dtype.kind == "f" else y_arr.astype(np.int64)
    if y_arr.dtype.kind == "f" and (not np.all(np.isfinite(y_arr)) or np.any(as_int != y_arr)):
        bad = int(np.argwhere(~np.isfinite(y_arr) | (np.round(y_arr) != y_arr))[0, 0])
        raise GradlabError(f"{name}: labels y must be integers; got y[{bad}]={float(y_arr[bad])!r}")
    if np.any(as_int < 0):
        bad = int(np.argwhere(as_int < 0)[0, 0])
        raise GradlabError(f"{name}: labels y must be >= 0; got y[{bad}]={int(as_int[bad])}")
    X.flags.writeable = False
    as_int = np.array(as_int, copy=True)
    as_int.flags.writeable = False
    return Dataset(X, as_int, name, tuple(notes), image_shape, pixel_order)


# --------------------------------------------------------------------------------------
# The shipped digits
# --------------------------------------------------------------------------------------


def data_dir() -> Path:
    """The folder holding gradlab's shipped data: ``data/`` next to the ``gradlab`` package.

    The environment variable ``GRADLAB_DATA`` overrides it.
    """
    override = os.environ.get("GRADLAB_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "data"


def load_digits(*, raw: bool = False) -> Dataset:
    """The shipped handwritten digits: 1,797 images of 8x8 pixels, labels 0..9.

    The UCI "Optical Recognition of Handwritten Digits" data (test part; E. Alpaydin and
    C. Kaynak, CC BY 4.0), stored in ``data/digits.npz`` as uint8; see data/README.md.

    Parameters
    ----------
    raw : bool, default False
        False: pixel intensities in [0, 1] (the stored counts divided by 16), the range
        of the course's digit images, where sigmoid units start unsaturated. True: the
        stored counts 0..16 (each pixel counts the "on" pixels in a 4x4 block).

    Returns
    -------
    Dataset
        ``X`` float64 of shape (1797, 64), each row an 8x8 image read row by row; ``y``
        int64 of shape (1797,), the digit 0..9. Unpacks as ``X, y``.

    Raises
    ------
    GradlabError
        If the file is missing (gradlab looks for ``data/`` next to the package, as in
        a ``pip install -e .`` checkout, or in ``$GRADLAB_DATA``) or does not hold the
        expected arrays.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, X.dtype.name, float(X.max()), sorted(set(y.tolist())) == list(range(10))
    ((1797, 64), 'float64', 1.0, True)
    """
    path = data_dir() / DIGITS_FILE
    if not path.is_file():
        raise GradlabError(
            f"the shipped digits are missing: no file {path}. gradlab looks for data/ next to "
            f"the gradlab package (install from a checkout with `pip install -e .`) or in the "
            f"folder named by $GRADLAB_DATA"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels = np.array(f["images"]), np.array(f["labels"])
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise GradlabError(f"the shipped digits file {path} is unreadable: {exc}") from None
    h, w = DIGITS_IMAGE
    if (
        images.shape != (DIGITS_ROWS, h, w)
        or labels.shape != (DIGITS_ROWS,)
        or images.dtype != np.uint8
        or labels.dtype != np.uint8
        or images.max() > DIGITS_MAX_PIXEL
        or labels.max() > 9
    ):
        raise GradlabError(
            f"the shipped digits file {path} does not hold {DIGITS_ROWS} uint8 images of "
            f"{h}x{w} pixels (0..{DIGITS_MAX_PIXEL}) with uint8 labels 0..9; got images "
            f"{images.shape} {images.dtype}, labels {labels.shape} {labels.dtype}"
        )
    X = images.reshape(DIGITS_ROWS, h * w).astype(np.float64)
    if not _flag("raw", raw):
        X /= DIGITS_MAX_PIXEL
    return _dataset(X, labels.astype(np.int64), "digits", image_shape=DIGITS_IMAGE)


# --------------------------------------------------------------------------------------
# MATLAB .mat (the course's layout: keys X and y, digit 0 stored as label 10)
# --------------------------------------------------------------------------------------

#: The course's digit files store digit 0 as this label (labels run 1..10).
MATLAB_ZERO_LABEL = 10


def load_mat(path, *, x_key: str = "X", y_key: str = "y") -> Dataset:
    """Read a MATLAB ``.mat`` file in the course's layout: an (m, n) matrix X and labels y.

    Labels: when y holds labels 1..10 and no 0, the file is in the course's layout, where
    label 10 means the digit 0; gradlab maps 10 to 0 and says so in ``notes``. Any other
    labels are kept as they are (they must be integers >= 0).

    Images: when n is a perfect square each row is taken as a square image unrolled
    column by column (MATLAB's order, as in the course's 20x20 digits).

    Parameters
    ----------
    path : str or path-like
    x_key, y_key : str
        Names of the variables in the file (default "X" and "y").

    Returns
    -------
    Dataset

    Raises
    ------
    GradlabError
        Missing or unreadable file, a MATLAB v7.3 (HDF5) file, missing keys, shapes that
        do not match, non-integer labels.
    """
    path = _existing_file("path", path)
    import scipy.io

    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError:
        raise GradlabError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which gradlab cannot read; save it with "
            f"MATLAB's -v7 option (save('file.mat', 'X', 'y', '-v7'))"
        ) from None
    except Exception as exc:  # scipy raises many types for a damaged or foreign file
        raise GradlabError(f"{path} is not a readable MATLAB .mat file: {exc}") from None
    found = sorted(k for k in contents if not k.startswith("__"))
    for key in (x_key, y_key):
        if key not in contents:
            raise GradlabError(
                f"{path} has no variable {key!r}; a .mat file for gradlab holds X (m x n) and "
                f"y (m x 1); found: {', '.join(found) or 'nothing'}"
            )
    X, y = contents[x_key], np.asarray(contents[y_key])
    if not isinstance(X, np.ndarray) or X.dtype.kind not in "uif" or X.ndim != 2:
        raise GradlabError(f"{path}: {x_key} must be a real (m, n) matrix; got {_describe(X)}")
    if y.dtype.kind not in "uif" or not (y.ndim == 1 or (y.ndim == 2 and 1 in y.shape)):
        raise GradlabError(f"{path}: {y_key} must be a real vector; got {_describe(y)}")
    y = y.ravel()
    notes = []
    values = set(np.unique(y).tolist())
    if MATLAB_ZERO_LABEL in values and 0 not in values and values <= set(range(1, MATLAB_ZERO_LABEL + 1)):
        y = np.where(y == MATLAB_ZERO_LABEL, 0, y)
        notes.append(
            f"labels: {y_key} holds 1..{MATLAB_ZERO_LABEL} and no 0 (the course's layout, where "
            f"label {MATLAB_ZERO_LABEL} is the digit 0); read label {MATLAB_ZERO_LABEL} as 0"
        )
    shape = _square_image(X.shape[1])
    return _dataset(X, y, Path(path).name, notes, shape, "F")


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__


def _existing_file(name: str, path) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise v.fail(name, path, "a file path")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GradlabError(f"{name}: no such file: {path}")
    return path


# --------------------------------------------------------------------------------------
# MNIST IDX files (plain or gzip)
# --------------------------------------------------------------------------------------

#: IDX type codes (third byte of the magic number) and their big-endian numpy types.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), plain or gzip-compressed, into an array.

    The header is two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then
    each dimension as a big-endian uint32; the data follow, big-endian, row by row.
    gzip is recognised by its magic bytes, not by the file name.

    Raises
    ------
    GradlabError
        Missing file, damaged gzip stream, bad magic number, or a data length that does
        not match the header (a truncated file).
    """
    path = _existing_file("path", path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise GradlabError(f"{path} is a damaged gzip file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise GradlabError(
            f"{path} is not an IDX file: it must start with two zero bytes, a type code "
            f"({', '.join(hex(t) for t in IDX_TYPES)}) and a number of dimensions >= 1; "
            f"got first bytes {raw[:4].hex(' ') or '(empty file)'}"
        )
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GradlabError(f"{path}: IDX header truncated ({len(raw)} bytes, header needs {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise GradlabError(
            f"{path}: IDX data {what}: header says shape {dims} of {dtype.name} "
            f"({expected} bytes in all), file holds {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def load_idx(images, labels) -> Dataset:
    """Read MNIST-style IDX images and labels (plain or .gz) into a Dataset.

    Parameters
    ----------
    images : path
        IDX file of shape (m, height, width) (or (m, n) feature rows).
    labels : path
        IDX file of shape (m,) with integer labels >= 0.

    Returns
    -------
    Dataset
        X float64 (m, height*width), pixel values as stored (0..255 for MNIST; consider
        ``scale=True`` when training); y int64.
    """
    imgs = read_idx(images)
    labs = read_idx(labels)
    if imgs.ndim not in (2, 3):
        raise GradlabError(f"{images}: IDX images must have 2 or 3 dimensions (m, h, w); got shape {imgs.shape}")
    if labs.ndim != 1:
        raise GradlabError(f"{labels}: IDX labels must have 1 dimension (m,); got shape {labs.shape}")
    if labs.dtype.kind not in "iu":
        raise GradlabError(f"{labels}: IDX labels must be integers; got {labs.dtype.name}")
    if imgs.shape[0] != labs.shape[0]:
        raise GradlabError(
            f"images and labels differ in length: {images} holds {imgs.shape[0]} images, "
            f"{labels} holds {labs.shape[0]} labels"
        )
    shape = tuple(imgs.shape[1:]) if imgs.ndim == 3 else _square_image(imgs.shape[1])
    X = imgs.reshape(imgs.shape[0], -1).astype(np.float64)
    return _dataset(X, labs.astype(np.int64), Path(images).name, (), shape, "C")


# --------------------------------------------------------------------------------------
# One entry point for the CLI: a dataset name or a file
# --------------------------------------------------------------------------------------

#: Shipped datasets by name, one line each; ``gradlab train --data NAME`` lists these.
DATASETS: dict[str, Callable[[], Dataset]] = {
    "digits": load_digits,
}


def load(spec, labels=None) -> Dataset:
    """Load data named the way the command line names it.

    Parameters
    ----------
    spec : str or path-like
        A shipped dataset's name (``"digits"``), a ``.mat`` file, or an IDX images file
        (plain or ``.gz``; needs ``labels``).
    labels : str or path-like, optional
        The IDX labels file that goes with IDX images.
    """
    if isinstance(spec, str) and spec in DATASETS:
        if labels is not None:
            raise GradlabError(f"labels must be left out for the shipped dataset {spec!r}; got labels={labels!r}")
        return DATASETS[spec]()
    if not isinstance(spec, (str, os.PathLike)):
        raise v.fail("data", spec, "a dataset name (" + ", ".join(DATASETS) + "), a .mat file or an IDX file")
    path = os.fspath(spec)
    if path.lower().endswith(".mat"):
        if labels is not None:
            raise GradlabError(f"labels must be left out for a .mat file (it holds y); got labels={labels!r}")
        return load_mat(path)
    if not os.path.isfile(path):
        raise GradlabError(
            f"data must be a dataset name ({', '.join(DATASETS)}), a .mat file or an IDX file; "
            f"got data={path!r}, which is neither a name nor an existing file"
        )
    if labels is None:
        raise GradlabError(f"data={path!r} is taken as IDX images, which need an IDX labels file (--labels)")
    return load_idx(path, labels)


# --------------------------------------------------------------------------------------
# Stratified split and standardisation
# --------------------------------------------------------------------------------------


class Split(NamedTuple):
    """A train/test split of a dataset (arrays are new copies)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray


def _stratified_indices(y: np.ndarray, test_fraction: float, rng: np.random.Generator):
    """Test rows per class by largest remainder, so the test set has round(f * m) rows
    and each class its share; rows are drawn at random within each class."""
    classes, counts = np.unique(y, return_counts=True)
    n_test = int(round(test_fraction * y.shape[0]))
    quota = test_fraction * counts
    take = np.floor(quota).astype(np.int64)
    short = n_test - int(take.sum())
    if short > 0:
        # Largest remainders first; ties go to the smaller class label (stable sort).
        order = np.argsort(-(quota - take), kind="stable")
        take[order[:short]] += 1
    test = []
    for cls, k in zip(classes, take):
        rows = np.flatnonzero(y == cls)
        test.append(rng.permutation(rows)[:k])
    test_index = np.sort(np.concatenate(test)) if test else np.empty(0, dtype=np.int64)
    mask = np.ones(y.shape[0], dtype=bool)
    mask[test_index] = False
    return np.flatnonzero(mask), test_index


def train_test_split(X, y, *, test_fraction: float = 0.2, seed=0) -> Split:
    """A deterministic stratified split: each class keeps its share in both parts.

    The test part has ``round(test_fraction * m)`` rows, shared out among the classes in
    proportion to their sizes (largest remainder); which rows of a class go to the test
    part is drawn with ``seed``. Same data and seed, same split. Rows keep their order.

    Parameters
    ----------
    X : array_like, shape (m, n)
    y : array_like, shape (m,)
        Integer labels.
    test_fraction : float in [0, 1), default 0.2
    seed : int or numpy.random.Generator

    Returns
    -------
    Split
        ``X_train, y_train, X_test, y_test, train_index, test_index``.

    Examples
    --------
    >>> X, y = load_digits()
    >>> s = train_test_split(X, y, test_fraction=0.2, seed=0)
    >>> len(s.y_train), len(s.y_test)
    (1438, 359)
    """
    data = _dataset(X, y, "data")
    f = v.real("test_fraction", test_fraction, minimum=0.0)
    if f >= 1.0:
        raise v.fail("test_fraction", test_fraction, "a number in [0, 1)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(v.integer("seed", seed, minimum=0))
    train_index, test_index = _stratified_indices(data.y, f, rng)
    if train_index.size == 0:
        raise GradlabError(f"test_fraction={f} leaves no training examples out of {data.m}")
    return Split(
        data.X[train_index].copy(), data.y[train_index].copy(),
        data.X[test_index].copy(), data.y[test_index].copy(),
        train_index, test_index,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Scaling:
    """Feature standardisation ``(X - mean) / std``, fitted on training data only.

    A feature that is constant in the training data (e.g. a corner pixel that is always
    0) has std 0; it is left unscaled (std taken as 1), so it maps to 0 and never
    divides by zero.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X) -> "Scaling":
        """Mean and standard deviation of each column of the training inputs."""
        X = v.float_array("X", X, ndim=2)
        if X.shape[0] < 1:
            raise GradlabError(f"X must have at least one row to fit a scaling; got shape {X.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            mean = X.mean(axis=0)
            std = X.std(axis=0)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            # Sums (and squares) of inputs near float max overflow: fit on the columns
            # divided by their largest magnitude, then scale back (both stay finite).
            scale = np.max(np.abs(X), axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            mean = (X / scale).mean(axis=0) * scale
            std = (X / scale).std(axis=0) * scale
        std = np.where(std > 0, std, 1.0)
        mean.flags.writeable = False
        std.flags.writeable = False
        return cls(mean, std)

    def apply(self, X) -> np.ndarray:
        """The standardised copy of X (never written in place)."""
        X = v.float_array("X", X, ndim=2)
        if X.shape[1] != self.mean.shape[0]:
            raise GradlabError(
                f"X must have {self.mean.shape[0]} columns, as the data the scaling was fitted on; "
                f"got X with shape {X.shape}"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            out = (X - self.mean) / self.std
            if not np.all(np.isfinite(out)):
                # X - mean overflows for inputs near float max of both signs; dividing
                # first keeps every term in range.
                out = X / self.std - self.mean / self.std
        if not np.all(np.isfinite(out)):
            i, j = (int(k) for k in np.argwhere(~np.isfinite(out))[0])
            raise GradlabError(
                f"X must stay finite when standardised with the training data's mean and std; got "
                f"X[{i}, {j}]={float(X[i, j])!r} with mean {float(self.mean[j])!r} and std {float(self.std[j])!r}"
            )
        return out
