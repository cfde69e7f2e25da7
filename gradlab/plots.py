"""Figures: a grid of digits, the hidden units' incoming weights, the training curve.

matplotlib is imported inside the functions, and only its object-oriented ``Figure``
with the Agg renderer is used: no pyplot, no window, no change to the user's backend.
Every figure has a fixed size in pixels (given in each docstring) and is written
atomically.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from gradlab import _validate as v
from gradlab._errors import GradlabError, could_not_start
from gradlab._files import atomic_write
from gradlab._report import printable
from gradlab.data import Dataset, rows_as_images
from gradlab.model import TrainResult

__all__ = ["plot_digits", "plot_weights", "plot_history", "DPI"]

#: Resolution of every figure; sizes below are in inches, so pixels = inches * DPI.
DPI = 100
_DIGITS_INCHES = (8, 8.5)
_WEIGHTS_INCHES = (8, 8.5)
_HISTORY_INCHES = (8, 6)
#: White space between tiles of a mosaic, as a fraction of a tile.
_PAD = 0.12


def _matplotlib():
    """Import matplotlib; one that cannot start is a GradlabError naming the likely cause.

    matplotlib reads ``MPLBACKEND`` while it is imported and refuses a name it does not
    know, although gradlab never uses the backend (it draws with Agg): without this, a
    typo in the user's environment was an internal error.
    """
    try:
        import matplotlib
    except Exception as exc:  # ValueError for MPLBACKEND, ImportError for a broken install
        raise could_not_start("matplotlib", exc, "MPLBACKEND",
                              "unset it or name a backend matplotlib knows, e.g. Agg") from None
    return matplotlib


def figure(inches):
    """A matplotlib Figure on an Agg canvas, whatever backend the user's matplotlib is set to."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=inches, dpi=DPI)
    FigureCanvasAgg(fig)  # render with Agg whatever backend the user's matplotlib is set to
    return fig


#: Figure formats by file extension (matplotlib's Agg canvas writes all three).
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
_ENDINGS = ", ".join(list(FORMATS)[:-1]) + " or " + list(FORMATS)[-1]


def figure_format(out, *, name: str = "out") -> str:
    """The format a figure written to ``out`` takes, from its extension; checked before drawing."""
    if not isinstance(out, (str, os.PathLike)):
        raise v.fail(name, out, "a file path ending in " + _ENDINGS)
    ext = os.path.splitext(os.fspath(out))[1].lower()
    if ext not in FORMATS:
        raise v.fail(name, os.fspath(out), "a file name ending in " + _ENDINGS)
    return FORMATS[ext]


def _plain(text) -> str:
    """``text`` from a file or a file name, safe to draw as a title.

    matplotlib reads text between two ``$`` as mathematics and refuses what it cannot parse
    (a model file whose source is ``$\\frac{$`` was an internal error), so ``$`` is escaped;
    control characters (which no font draws) are shown as escapes.
    """
    return printable(text).replace("$", r"\$")


def _draw(fig, f, fmt: str, dpi: float) -> None:
    with warnings.catch_warnings():
        # A title may hold any character a file name or model file holds; one the font lacks
        # is drawn as a box, which is all that can be done, so matplotlib's warning about it
        # is no news to the user (and an error where warnings are errors).
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
        fig.savefig(f, format=fmt, dpi=dpi)


def save_figure(fig, out, *, dpi: float = DPI) -> str:
    """Write ``fig`` to ``out`` atomically, in the format its extension names."""
    fmt = figure_format(out)
    if not hasattr(fig, "savefig"):
        raise v.fail("fig", fig, "a matplotlib Figure")
    return atomic_write(out, lambda f: _draw(fig, f, fmt, dpi), name="out")


def _grid(count: int) -> tuple[int, int]:
    """Rows and columns of a near-square grid holding ``count`` tiles."""
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def _tiles(ax, images, cmap, vmin, vmax, labels=None):
    """Draw images as a grid of tiles in one axes, with an optional label per tile."""
    n, h, w = images.shape
    rows, cols = _grid(n)
    ph, pw = max(1, round(_PAD * h)), max(1, round(_PAD * w))
    mosaic = np.full((rows * (h + ph) - ph, cols * (w + pw) - pw), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        mosaic[r * (h + ph): r * (h + ph) + h, c * (w + pw): c * (w + pw) + w] = img
    matplotlib = _matplotlib()
    cm = matplotlib.colormaps[cmap].with_extremes(bad="white")
    im = ax.imshow(mosaic, cmap=cm, vmin=vmin, vmax=vmax, interpolation="nearest")
    if labels is not None:
        for i, lab in enumerate(labels):
            r, c = divmod(i, cols)
            ax.text(c * (w + pw) + 0.1 * w, r * (h + ph) + 0.1 * h, str(int(lab)), color="tab:red",
                    fontsize=7, ha="left", va="top")
    ax.set_axis_off()
    return im


def _image_shape(n_features: int, image_shape):
    if image_shape is None:
        side = int(round(math.sqrt(n_features)))
        if side * side != n_features:
            raise GradlabError(
                f"image_shape must be given when the {n_features} features are not a square image"
            )
        return (side, side)
    shape = tuple(image_shape)
    if len(shape) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in shape) or shape[0] * shape[1] != n_features:
        raise v.fail("image_shape", image_shape, f"(height, width) with height * width = {n_features}")
    return (int(shape[0]), int(shape[1]))


#: Examples plot_digits draws by default: the seed's 10 x 10 grid.
DIGITS_SHOWN = 100


def plot_digits(data, out, *, n: int | None = None, seed=0, image_shape=None, pixel_order=None, title=None) -> str:
    """A grid of ``n`` random examples drawn as images (the seed shows 100 in a 10x10 grid).

    Parameters
    ----------
    data : Dataset or array_like (m, h*w)
        A :class:`gradlab.data.Dataset` (its labels are written in a corner of each
        tile, its image layout is used) or a matrix of image rows.
    out : path
        Figure file to write, in the format its extension names: .png (800 x 850 pixels), .pdf or .svg.
    n : int, optional
        How many examples (at most m), drawn without replacement with ``seed``. Default:
        100 (the seed's 10 x 10 grid), or all m examples when there are fewer.
    image_shape : (height, width), optional
        Default: the dataset's, or a square.
    pixel_order : {"C", "F"}, optional
        How a row unrolls its image ("F" is MATLAB's column order). Default: the dataset's, or "C".

    Returns
    -------
    str
        The path written.
    """
    figure_format(out)  # before any work, not after drawing
    if isinstance(data, Dataset):
        X, labels, name = data.X, data.y, data.name
        image_shape = image_shape or data.image_shape
        pixel_order = pixel_order or data.pixel_order
    else:
        X, labels, name = v.float_array("data", data, ndim=2), None, "data"
    # A small dataset is shown whole by default: a limit the caller never set is no error.
    n = min(DIGITS_SHOWN, X.shape[0]) if n is None else v.integer("n", n, minimum=1)
    if n > X.shape[0]:
        raise v.fail("n", n, f"an integer in [1, {X.shape[0]}] (the number of examples)")
    rng = v.rng(seed)
    shape = _image_shape(X.shape[1], image_shape)
    pick = np.sort(rng.choice(X.shape[0], size=n, replace=False))
    images = rows_as_images(X[pick], shape, pixel_order or "C")
    fig = figure(_DIGITS_INCHES)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9))
    # Drawn divided by the largest |pixel|: the colour scale's vmax - vmin overflows for
    # pixels near +-1.8e308 and loses all precision for subnormal ones; the picture is the same.
    lo, hi = float(X.min()), float(X.max())
    unit = max(abs(lo), abs(hi)) or 1.0
    _tiles(ax, images / unit, "gray_r", lo / unit, hi / unit, None if labels is None else labels[pick])
    if title is None:
        title = f"{n} random examples from {_plain(name)} ({shape[0]}x{shape[1]} pixels)"
        if labels is not None:
            title += ", label in red"
    fig.suptitle(title, fontsize=12)
    return save_figure(fig, out)


def _result(result):
    if not isinstance(result, TrainResult):
        raise v.fail("result", result, "a gradlab TrainResult (from gradlab.train or gradlab.load)")
    return result


def plot_weights(result, out, *, image_shape=None, pixel_order=None) -> str:
    """Each hidden unit's incoming weights (a row of Theta1 without the bias) as an image.

    Each tile has its own colour scale, symmetric about 0: red positive, blue negative,
    white zero. A unit that has learnt a stroke shows it as a red (or blue) shape.

    Parameters
    ----------
    result : TrainResult
    out : path
        Figure file to write, in the format its extension names: .png (800 x 850 pixels), .pdf or .svg.
    image_shape, pixel_order : optional
        Default: what the model file recorded about its data, else a square, "C".

    Returns
    -------
    str
    """
    figure_format(out)  # before any work, not after drawing
    result = _result(result)
    net = result.network
    if net.n_layers < 3:
        raise GradlabError(f"plot_weights needs a hidden layer; the network has sizes {net.sizes}")
    shape = _image_shape(net.n_inputs, image_shape or result.meta.get("image_shape"))
    order = pixel_order or result.meta.get("pixel_order") or "C"
    W = net.unpack(result.params)[0][:, 1:]
    scale = np.abs(W).max(axis=1, keepdims=True)
    W = W / np.where(scale > 0, scale, 1.0)
    fig = figure(_WEIGHTS_INCHES)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.9))
    _tiles(ax, rows_as_images(W, shape, order), "RdBu_r", -1.0, 1.0)
    fig.suptitle(
        f"Incoming weights of the {net.sizes[1]} hidden units (Theta1 without bias), "
        f"{shape[0]}x{shape[1]}\nred positive, blue negative, each tile scaled to its largest |weight|",
        fontsize=11,
    )
    return save_figure(fig, out)


def plot_history(result, out) -> str:
    """The training curve: cost per iteration (top) and gradient norm (bottom, log scale).

    Parameters
    ----------
    result : TrainResult
    out : path
        Figure file to write, in the format its extension names: .png (800 x 600 pixels), .pdf or .svg.

    Returns
    -------
    str
    """
    figure_format(out)  # before any work, not after drawing
    result = _result(result)
    h = result.history
    if len(h) == 0:
        raise GradlabError("the result has no history to plot (no iteration was recorded)")
    fig = figure(_HISTORY_INCHES)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(h.iteration, h.cost, marker=".", color="tab:blue")
    top.set_ylabel("cost J (regularised cross-entropy)")
    top.grid(True, alpha=0.3)
    bottom.semilogy(h.iteration, np.maximum(h.grad_norm, np.finfo(np.float64).tiny), marker=".", color="tab:orange")
    bottom.set_ylabel("gradient norm ||dJ/dtheta||")
    bottom.set_xlabel("iteration")
    bottom.grid(True, alpha=0.3)
    sizes = ",".join(map(str, result.network.sizes))
    fig.suptitle(
        f"Training {sizes}: source {_plain(result.source)}, {_plain(result.method)}, lambda {result.lam:g}; "
        f"stop: {_plain(result.stop)}", fontsize=11,
    )
    fig.subplots_adjust(left=0.12, right=0.97, top=0.92, bottom=0.09, hspace=0.12)
    return save_figure(fig, out)
