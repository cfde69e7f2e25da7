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
import io
import math
import numbers
import os
import re
import zlib
from importlib import resources
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from gradlab import _csv, _files, _usercode
from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab._report import counted

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
    "load_csv",
    "load",
    "train_test_split",
]

#: The shipped digits, in the package's data folder (:data:`DATA_FOLDER`), read with
#: importlib.resources so that a wheel, an sdist and a checkout all find them. Their
#: provenance and licence: ``gradlab/_data/README.md``.
DIGITS_FILE = "digits.npz"
#: The package's data folder, inside ``gradlab`` (not ``gradlab/data``: that name would
#: clash with this module).
DATA_FOLDER = "_data"
#: Overrides the data folder (a folder holding ``digits.npz``).
DATA_ENV = "GRADLAB_DATA"
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

    def __post_init__(self):
        # Loaders pass arrays _dataset has validated and frozen; a Dataset built by hand gets
        # the same checks (and copies), so that train() and the plots never meet None or a
        # ragged list deep inside.
        X, y = self.X, self.y
        ready = (isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2 and not X.flags.writeable
                 and isinstance(y, np.ndarray) and y.dtype == np.int64 and y.shape == X.shape[:1]
                 and not y.flags.writeable)
        if not isinstance(self.name, str):
            raise v.fail("name", self.name, "a string")
        image_shape = None if self.image_shape is None else _check_image_shape(self.image_shape)
        pixel_order = v.choice("pixel_order", self.pixel_order, ("C", "F"))
        if not ready:
            checked = make_dataset(X, y, self.name)
            object.__setattr__(self, "X", checked.X)
            object.__setattr__(self, "y", checked.y)
        if image_shape is not None and image_shape[0] * image_shape[1] != self.X.shape[1]:
            raise v.fail("image_shape", self.image_shape, f"(height, width) with height * width = {self.X.shape[1]}, "
                         f"the number of features")
        object.__setattr__(self, "image_shape", image_shape)
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))
        object.__setattr__(self, "pixel_order", pixel_order)

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
    h, w = _check_image_shape(image_shape)
    if X.ndim != 2 or X.shape[1] != h * w:
        raise GradlabError(
            f"X must have {h * w} columns for image_shape={tuple(image_shape)}; got X with shape {X.shape}"
        )
    order = v.choice("pixel_order", pixel_order, ("C", "F"))
    if order == "C":
        return X.reshape(-1, h, w)
    return X.reshape(-1, w, h).transpose(0, 2, 1)


def _check_image_shape(image_shape) -> tuple[int, int]:
    """``(height, width)``: two positive integers."""
    accepted = "(height, width), two positive integers"
    if isinstance(image_shape, (str, bytes)) or not hasattr(image_shape, "__len__") or len(image_shape) != 2:
        raise v.fail("image_shape", image_shape, accepted)
    if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1 for s in image_shape):
        raise v.fail("image_shape", image_shape, accepted)
    return int(image_shape[0]), int(image_shape[1])


def _square_image(n: int) -> tuple[int, int] | None:
    side = int(round(n**0.5))
    return (side, side) if side * side == n else None


def make_dataset(X, y, name, notes=(), image_shape=None, pixel_order="C", *, where=None) -> Dataset:
    """Validate and freeze a dataset (X finite 2-D, y integer labels >= 0, same length).

    ``where`` (a file path) starts every error message, so a bad file is named.
    """
    if where is None:
        X = v.float_array("X", X, ndim=2)
        where = name
    else:
        try:
            X = v.float_array("X", X, ndim=2)
        except GradlabError as exc:
            raise GradlabError(f"{where}: {exc}") from None
    y_arr = np.asarray(y)
    if y_arr.ndim == 2 and 1 in y_arr.shape:
        y_arr = y_arr.ravel()
    if y_arr.ndim != 1 or y_arr.shape[0] != X.shape[0]:
        raise GradlabError(
            f"{where}: labels y must be a vector with one entry per row of X ({X.shape[0]}); "
            f"got y with shape {np.shape(y)}"
        )
    if X.shape[0] < 1:
        raise GradlabError(f"{where}: no examples (X has shape {X.shape})")
    if X.shape[1] < 1:
        raise GradlabError(f"{where}: no features (X has shape {X.shape}); each example needs at least one")
    if y_arr.dtype == np.bool_ or not (np.issubdtype(y_arr.dtype, np.integer) or np.issubdtype(y_arr.dtype, np.floating)):
        raise GradlabError(f"{where}: labels y must be integers; got dtype {y_arr.dtype}")
    if y_arr.dtype.kind == "f":
        # Checked before the cast: NaN, inf or 1e300 cast to int64 is undefined (and warns).
        bad = ~np.isfinite(y_arr) | (np.round(y_arr) != y_arr) | (np.abs(y_arr) > np.iinfo(np.int64).max // 2)
        if np.any(bad):
            i = int(np.argwhere(bad)[0, 0])
            raise GradlabError(f"{where}: labels y must be integers; got y[{i}]={float(y_arr[i])!r}")
        as_int = y_arr.astype(np.int64)
    elif y_arr.dtype == np.uint64 and np.any(y_arr > np.iinfo(np.int64).max):
        i = int(np.argwhere(y_arr > np.iinfo(np.int64).max)[0, 0])
        raise GradlabError(f"{where}: labels y must be integers 0..K-1; got y[{i}]={int(y_arr[i])}")
    else:
        as_int = y_arr.astype(np.int64)
    if np.any(as_int < 0):
        bad = int(np.argwhere(as_int < 0)[0, 0])
        raise GradlabError(f"{where}: labels y must be >= 0; got y[{bad}]={int(as_int[bad])}")
    X.flags.writeable = False
    as_int = np.array(as_int, copy=True)
    as_int.flags.writeable = False
    return Dataset(X, as_int, name, tuple(notes), image_shape, pixel_order)


# --------------------------------------------------------------------------------------
# The shipped digits
# --------------------------------------------------------------------------------------


def data_dir():
    """The folder holding gradlab's shipped data, inside the installed package.

    The environment variable ``GRADLAB_DATA`` names another folder instead.

    Returns
    -------
    importlib.resources.abc.Traversable
        ``gradlab/_data`` as importlib.resources finds it (a :class:`pathlib.Path` for an
        ordinary installation or a checkout), or ``Path($GRADLAB_DATA)``.
    """
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    return resources.files("gradlab").joinpath(DATA_FOLDER)


def load_digits(*, raw: bool = False) -> Dataset:
    """The shipped handwritten digits: 1,797 images of 8x8 pixels, labels 0..9.

    The UCI "Optical Recognition of Handwritten Digits" data (test part; E. Alpaydin and
    C. Kaynak, CC BY 4.0), shipped inside the package as ``gradlab/_data/digits.npz``
    (uint8); see ``gradlab/_data/README.md`` for provenance and licence.

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
        If the file is missing (a damaged installation, or a ``$GRADLAB_DATA`` folder
        without it) or does not hold the expected arrays.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, X.dtype.name, float(X.max()), sorted(set(y.tolist())) == list(range(10))
    ((1797, 64), 'float64', 1.0, True)
    """
    folder = data_dir()
    path = folder.joinpath(DIGITS_FILE)
    if not path.is_file():
        where = (f"the folder named by ${DATA_ENV}" if os.environ.get(DATA_ENV)
                 else "gradlab's installed package (reinstall gradlab, or set $GRADLAB_DATA to a folder holding it)")
        raise GradlabError(f"the shipped digits are missing: no file {DIGITS_FILE} in {folder}, {where}")
    try:
        # Read through the Traversable (bytes), so that a zipped installation works too.
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as f:
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
    if not v.flag("raw", raw):
        X /= DIGITS_MAX_PIXEL
    return make_dataset(X, labels.astype(np.int64), "digits", image_shape=DIGITS_IMAGE)


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

    Only the two variables are read; their declared sizes are checked against the memory
    budget (:func:`gradlab._files.memory_limit`) before they are. scipy's reader never runs
    code from the file (cells, structs and objects come back as plain arrays, which are
    refused here).

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
        Missing, unreadable or empty file, a folder, a MATLAB v7.3 (HDF5) file, a file of
        another format, missing variables, a cell, struct, text, sparse or complex X,
        shapes that do not match, non-finite X, non-integer labels. Every message names
        the file.
    """
    path, raw = _files.read_bytes("path", path)
    for key, arg in ((x_key, "x_key"), (y_key, "y_key")):
        if not isinstance(key, str) or not key:
            raise v.fail(arg, key, "a variable name")
    if not raw:
        raise GradlabError(f"{path} is empty (0 bytes), not a MATLAB .mat file")
    import scipy.io

    def v73() -> GradlabError:
        return GradlabError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which gradlab (scipy.io) cannot read; save it "
            f"in MATLAB with the -v7 option: save('file.mat', 'X', 'y', '-v7')"
        )

    if raw[MATLAB_HDF5_OFFSET:MATLAB_HDF5_OFFSET + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE or raw.startswith(HDF5_SIGNATURE):
        raise v73()
    try:
        listing = scipy.io.whosmat(io.BytesIO(raw))
    except NotImplementedError:
        raise v73() from None
    except Exception as exc:  # scipy raises many types for a damaged or foreign file
        raise GradlabError(f"{path} is not a readable MATLAB .mat file (damaged, truncated or another format): {_usercode.one_line(exc)}") from None
    declared = {name: (shape, cls) for name, shape, cls in listing}
    found = ", ".join(f"{n} ({'x'.join(map(str, s))} {c})" for n, (s, c) in sorted(declared.items()))
    for key in (x_key, y_key):
        if key not in declared:
            # scipy lists a compressed file cut short as the variables before the cut.
            _unreadable_mat(path, raw, declared)
            raise GradlabError(
                f"{path} has no variable {key!r}; a .mat file for gradlab holds X (m x n) and "
                f"y (m x 1); found: {found or 'nothing'}"
            )
        shape, cls = declared[key]
        if cls in MATLAB_REFUSED_CLASSES:
            what = "a real (m, n) matrix" if key == x_key else "a real vector"
            raise GradlabError(f"{path}: {key} must be {what}; got a MATLAB {cls} "
                               f"({MATLAB_REFUSED_CLASSES[cls]})")
        # float64 after conversion: 8 bytes an entry, whatever the stored class.
        _files.check_memory(path, f"{key} (declared {'x'.join(map(str, shape))})",
                            math.prod(int(d) for d in shape) * 8)
    try:
        contents = scipy.io.loadmat(io.BytesIO(raw), variable_names=[x_key, y_key])
    except NotImplementedError:
        raise v73() from None
    except Exception as exc:
        raise GradlabError(f"{path} is not a readable MATLAB .mat file (damaged, truncated or another format): {_usercode.one_line(exc)}") from None
    for key in (x_key, y_key):
        if key not in contents:  # pragma: no cover - listed by whosmat but not read
            raise GradlabError(f"{path}: variable {key!r} could not be read")
    X, y = contents[x_key], contents[y_key]
    if not isinstance(X, np.ndarray) or X.dtype.kind not in "uif" or X.ndim != 2:
        raise GradlabError(f"{path}: {x_key} must be a real (m, n) matrix; got {_describe(X)}")
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "uif" or not (y.ndim == 1 or (y.ndim == 2 and 1 in y.shape)):
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
    return make_dataset(X, y, Path(path).name, notes, shape, "F", where=path)


def _unreadable_mat(path: str, raw: bytes, declared: dict) -> None:
    """Raise when the whole file cannot be read (truncated, damaged); return when it can."""
    import scipy.io

    total = sum(math.prod(int(d) for d in shape) * 8 for shape, _ in declared.values())
    if total > _files.memory_limit():
        return  # too large to try; the caller's message stands
    try:
        scipy.io.loadmat(io.BytesIO(raw))
    except Exception as exc:  # scipy raises many types for a damaged file
        raise GradlabError(f"{path} is not a readable MATLAB .mat file (damaged or truncated): "
                           f"{_usercode.one_line(exc)}") from None


#: MATLAB v7.3 files are HDF5 files with a 512-byte MATLAB preamble; the HDF5 signature
#: follows it (or opens the file when the preamble was stripped).
MATLAB_HDF5_OFFSET = 512
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: MATLAB classes (as scipy.io.whosmat names them) that cannot be a data matrix, and why.
MATLAB_REFUSED_CLASSES = {
    "cell": "a cell array; store a numeric matrix, e.g. cell2mat(X)",
    "struct": "a struct; store its numeric field as its own variable",
    "char": "text; store numbers",
    "sparse": "a sparse matrix; store full(X)",
    "object": "a MATLAB object; store a numeric matrix",
    "function_handle": "a function handle; store a numeric matrix",
    "opaque": "an opaque MATLAB value; store a numeric matrix",
}


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__


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


class _Stream:
    """The bytes of an IDX file, plain or gzip, read in bounded pieces.

    A gzip stream is inflated only as far as asked, so a small .gz whose header claims
    terabytes is refused from its header, never inflated.
    """

    def __init__(self, path: str, raw: bytes):
        self.path = path
        self.zipped = raw[:2] == _GZIP_MAGIC
        self.raw = raw
        if self.zipped:
            self.f = gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb")
        self.pos = 0

    def read(self, n: int) -> bytes:
        if not self.zipped:
            out = self.raw[self.pos:self.pos + n]
            self.pos += len(out)
            return out
        try:
            return self.f.read(n)
        except (OSError, EOFError, zlib.error) as exc:
            raise GradlabError(f"{self.path} is a damaged gzip file: {_usercode.one_line(exc)}") from None

    def size_hint(self) -> str:
        return "after gzip decompression" if self.zipped else "in the file"


def read_idx(path, *, name: str = "path") -> np.ndarray:
    """Read one IDX file (the MNIST format), plain or gzip-compressed, into an array.

    The header is two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then
    each dimension as a big-endian uint32; the data follow, big-endian, row by row.
    gzip is recognised by its magic bytes, not by the file name. ``name`` is how errors
    about the path itself (missing, a folder) name the argument.

    Raises
    ------
    GradlabError
        Missing or unreadable file, a folder, damaged gzip stream, bad magic number, a
        header claiming more than the memory budget (refused before reading the data),
        or a data length that does not match the header (a truncated file).
    """
    path, raw = _files.read_bytes(name, path)
    stream = _Stream(path, raw)
    head = stream.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES or head[3] == 0:
        raise GradlabError(
            f"{path} is not an IDX file: it must start with two zero bytes, a type code "
            f"({', '.join(hex(t) for t in IDX_TYPES)}) and a number of dimensions >= 1; "
            f"got first bytes {head.hex(' ') or '(empty file)'}"
        )
    dtype, ndim = IDX_TYPES[head[2]], head[3]
    header = 4 + 4 * ndim
    rest = stream.read(4 * ndim)
    if len(rest) < 4 * ndim:
        raise GradlabError(f"{path}: IDX header truncated ({4 + len(rest)} bytes, header needs {header})")
    dims = tuple(int(d) for d in np.frombuffer(rest, dtype=">u4", count=ndim))
    # Python integers: a product of 255 uint32 dimensions overflows any fixed-width type.
    count = math.prod(dims)
    # float64 after conversion (load_idx), the larger of the two sizes for every type code.
    _files.check_memory(path, f"the IDX data (header says shape {dims} of {dtype.name})", count * 8)
    expected = header + count * dtype.itemsize
    data = stream.read(count * dtype.itemsize)
    extra = stream.read(1)
    if len(data) != count * dtype.itemsize or extra:
        if len(data) < count * dtype.itemsize:
            what, holds = "truncated", f"the file holds {header + len(data)} bytes {stream.size_hint()}"
        elif not stream.zipped:
            what, holds = "longer than its header says", f"the file holds {len(raw)} bytes"
        else:  # not inflated further: the excess may be a decompression bomb
            what, holds = "longer than its header says", f"the file holds more {stream.size_hint()}"
        raise GradlabError(
            f"{path}: IDX data {what}: header says shape {dims} of {dtype.name} "
            f"({expected} bytes in all), {holds}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


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

    Raises
    ------
    GradlabError
        Either file unusable (see :func:`read_idx`), the wrong number of dimensions,
        non-integer labels, different numbers of images and labels, non-finite pixels.
    """
    imgs = read_idx(images, name="images")
    labs = read_idx(labels, name="labels")
    images, labels = os.fspath(images), os.fspath(labels)
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
    if imgs.shape[0] == 0:
        raise GradlabError(f"{images}: no examples (IDX images of shape {imgs.shape})")
    shape = tuple(imgs.shape[1:]) if imgs.ndim == 3 else _square_image(imgs.shape[1])
    X = imgs.reshape(imgs.shape[0], -1).astype(np.float64)
    if X.shape[1] == 0:
        raise GradlabError(f"{images}: IDX images have no pixels (shape {imgs.shape})")
    if labs.size and np.any(labs < 0):
        i = int(np.argwhere(labs < 0)[0, 0])
        raise GradlabError(f"{labels}: labels must be >= 0; got label[{i}]={int(labs[i])}")
    return make_dataset(X, labs.astype(np.int64), Path(images).name, (), shape, "C", where=images)


# --------------------------------------------------------------------------------------
# Comma-separated values: one example per row, features per column, a label column
# --------------------------------------------------------------------------------------


def load_csv(path, *, label_column=None) -> Dataset:
    """Read a comma-separated file: one example per row, its features, and an integer label.

    Format: cells separated by commas (quoted cells as spreadsheets write them), the same
    number of cells in every row, every cell a number. Blank lines are skipped. The first
    row is taken as a header when none of its cells is a number (``x1,x2,label``); a
    first row mixing names and numbers is refused, since it is neither. The label column
    is the last one unless ``label_column`` says otherwise; its cells must be whole
    numbers >= 0 (``3`` or ``3.0``), the classes 0..K-1. The features must be finite.
    Messages name the file, the line (as an editor numbers it, the header included) and
    the column (counted from 1, with its header name).

    When the number of features is a perfect square, each row is taken as a square image
    read row by row (for ``gradlab plot digits``).

    Parameters
    ----------
    path : str or path-like
    label_column : int or str, optional
        The labels' column: a number counted from 1 (negative counts from the end, -1 the
        last, the default) or the name of a header cell.

    Returns
    -------
    Dataset

    Raises
    ------
    GradlabError
        Missing, unreadable or empty file, not UTF-8 text, a malformed quote, rows of
        different lengths, a cell that is not a number (or not finite), a label that is
        not a whole number >= 0, fewer than two columns, no examples, or a
        ``label_column`` that names no column.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "tiny.csv"
    >>> _ = f.write_text("x1,x2,label\\n0.5,1,0\\n2,3.5,1\\n")
    >>> d = load_csv(f)
    >>> d.X.tolist(), d.y.tolist()
    ([[0.5, 1.0], [2.0, 3.5]], [0, 1])
    """
    path, raw = _files.read_bytes("path", path)
    X, y, notes = _csv.parse(path, raw, label_column)
    return make_dataset(X, y, Path(path).name, notes, _square_image(X.shape[1]), "C", where=path)


# --------------------------------------------------------------------------------------
# One entry point for the CLI: a dataset name or a file
# --------------------------------------------------------------------------------------

#: Shipped datasets by name, one line each; ``gradlab train --data NAME`` lists these.
DATASETS: dict[str, Callable[[], Dataset]] = {
    "digits": load_digits,
}


#: File names taken as IDX without looking inside: ``.idx``, ``.idx.gz`` and MNIST's own
#: names (``train-images-idx3-ubyte``, ``...-ubyte.gz``).
_IDX_NAME = re.compile(r"(\.idx|idx\d+-ubyte)(\.gz)?$", re.IGNORECASE)
#: What ``load`` reads, for messages.
KNOWN_FORMATS = ".mat, IDX (.idx/.idx.gz with --labels) or .csv"


def _looks_like_idx(path: str) -> bool:
    """An IDX name, or contents that start as IDX (two zero bytes and a type code) or gzip."""
    if _IDX_NAME.search(path):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except OSError:
        return False  # read_idx names the failure when it is called
    return head[:2] == _GZIP_MAGIC or (len(head) == 3 and head[:2] == b"\0\0" and head[2] in IDX_TYPES)


def load(spec, labels=None, *, label_column=None) -> Dataset:
    """Load data named the way the command line names it.

    Parameters
    ----------
    spec : str or path-like
        A shipped dataset's name (``"digits"``), a ``.mat`` file, a ``.csv`` file (see
        :func:`load_csv`), or an IDX images file (``.idx``, ``.idx.gz``, MNIST's
        ``...-idx3-ubyte[.gz]`` names, or any file that starts as IDX or gzip; needs
        ``labels``).
    labels : str or path-like, optional
        The IDX labels file that goes with IDX images.
    label_column : int or str, optional
        For a ``.csv`` file: the labels' column (see :func:`load_csv`); default the last.

    Returns
    -------
    Dataset

    Raises
    ------
    GradlabError
        An unknown name, a missing file or a folder, a file of none of the known formats,
        or whatever the loader for the file refuses (:func:`load_mat`, :func:`load_csv`,
        :func:`load_idx`); messages name the file.
    """
    if isinstance(spec, str) and spec in DATASETS:
        if labels is not None:
            raise GradlabError(f"labels must be left out for the shipped dataset {spec!r}; got labels={labels!r}")
        if label_column is not None:
            raise GradlabError(f"label_column is for a .csv file, not the shipped dataset {spec!r}; "
                               f"got label_column={label_column!r}")
        return DATASETS[spec]()
    if not isinstance(spec, (str, os.PathLike)):
        raise v.fail("data", spec, "a dataset name (" + ", ".join(DATASETS) + f"), or a file: {KNOWN_FORMATS}")
    path = os.fspath(spec)
    lower = path.lower()
    if label_column is not None and not lower.endswith(".csv"):
        raise GradlabError(f"label_column is for a .csv file (other formats say which values are labels); "
                           f"got label_column={label_column!r} with data={path!r}")
    if lower.endswith(".mat"):
        if labels is not None:
            raise GradlabError(f"labels must be left out for a .mat file (it holds y); got labels={labels!r}")
        _files.file_path("data", path)  # missing, a folder: named as the data, not as load_mat's path
        return load_mat(path)
    if os.path.isdir(path):
        raise GradlabError(f"data: {path} is a folder; give a dataset name ({', '.join(DATASETS)}) "
                           f"or a file: {KNOWN_FORMATS}")
    if not os.path.exists(path):
        raise GradlabError(
            f"data must be a dataset name ({', '.join(DATASETS)}) or a file ({KNOWN_FORMATS}); "
            f"got data={path!r}, which is neither a name nor an existing file"
        )
    if lower.endswith(".csv"):
        if labels is not None:
            raise GradlabError(f"labels must be left out for a .csv file (a column holds them; see "
                               f"--label-column); got labels={labels!r}")
        _files.file_path("data", path)
        return load_csv(path, label_column=label_column)
    if not _looks_like_idx(path):
        raise GradlabError(f"data={path!r} is not a known format: {KNOWN_FORMATS}{_csv.comma_hint(path)}")
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
    data = make_dataset(X, y, "data")
    f = v.real("test_fraction", test_fraction, minimum=0.0)
    if f >= 1.0:
        raise v.fail("test_fraction", test_fraction, "a number in [0, 1)")
    rng = v.rng(seed)
    train_index, test_index = _stratified_indices(data.y, f, rng)
    lost = np.setdiff1d(data.y, data.y[train_index])  # every label needs a training example
    if lost.size:
        raise GradlabError(f"test_fraction={f} leaves {counted(train_index.size, 'training example')} out of {data.m}, none of "
                           f"label {', '.join(map(str, lost[:5]))}{' ...' if lost.size > 5 else ''}: take less")
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

    def __post_init__(self):
        # fit() and model files give checked vectors; one built by hand is checked here.
        mean = v.float_array("mean", self.mean, ndim=1)
        std = v.float_array("std", self.std, ndim=1)
        if mean.shape != std.shape:
            raise GradlabError(f"mean and std must have the same length; got mean with shape {mean.shape} "
                               f"and std with shape {std.shape}")
        if np.any(std <= 0):
            i = int(np.argmax(std <= 0))
            raise GradlabError(f"std must hold positive numbers (a constant feature takes std 1); got std[{i}]={float(std[i])!r}")
        mean.flags.writeable = False
        std.flags.writeable = False
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

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
