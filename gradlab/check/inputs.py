"""The inputs of a checked function: names, positions, which are differentiated, one flat vector.

Every witness sees the differentiated inputs as one flat float64 vector ``theta`` (the
inputs named by ``wrt``, each flattened in C order, one after the other), exactly as the
network check sees its parameters. :class:`Inputs` keeps pristine copies of everything
the caller passed -- the caller's own objects are never handed to user code -- and builds
fresh argument lists at any ``theta`` for each call: real, complex (the complex step) or
jax arrays (the jax witness). Inputs that are not differentiated pass through untouched
in value (a fresh copy each call, so that one call writing into them cannot change the
next).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import numbers

import numpy as np

from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab._report import with_article

#: Names of the axes of an input, by its number of dimensions, for grouping wrong entries:
#: matrices have rows and columns; NCHW image batches (convolution, pooling) an example
#: axis, channels and the image's rows and columns.
AXIS_NAMES = {
    1: ("entry",),
    2: ("row", "column"),
    3: ("axis-0 index", "row", "column"),
    4: ("axis-0 index", "channel", "row", "column"),
}


def axis_name(ndim: int, axis: int) -> str:
    """How a report names ``axis`` of an ``ndim``-dimensional input."""
    names = AXIS_NAMES.get(ndim)
    return names[axis] if names else f"axis-{axis} index"


@dataclasses.dataclass(frozen=True)
class Slot:
    """One differentiated input: where it sits in the call and in the flat vector."""

    position: int
    name: str
    shape: tuple
    start: int
    stop: int
    scalar: bool  # a Python or numpy float, not an array
    dtype: str  # as the caller gave it (float32 inputs are checked in float64)

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def label(self) -> str:
        return f"{self.name} (input {self.position})"

    def index(self, k: int) -> tuple:
        """The multi-index of flat entry ``k`` of this input (``k`` local to the slot)."""
        return tuple(int(i) for i in np.unravel_index(k, self.shape)) if self.shape else ()


def _is_float_array(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    if hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "__array__"):  # jax, torch (cpu)
        try:
            return np.dtype(value.dtype).kind == "f"
        except TypeError:
            return False
    return False


def _is_float_scalar(value) -> bool:
    return isinstance(value, (float, np.floating)) and not isinstance(value, bool)


def _kind(value) -> str:
    """A value's kind in a message: ``an int64 array of shape (4,)``, ``a dict``."""
    if isinstance(value, np.ndarray):
        return f"{with_article(str(value.dtype))} array of shape {value.shape}"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, numbers.Number):
        return f"a {type(value).__name__}"
    return f"a {type(value).__name__}"


def parameter_names(fn, count: int) -> list[str]:
    """The names ``fn``'s signature gives its first ``count`` positional parameters;
    ``input<i>`` where it gives none (``*args``, builtins)."""
    names: list[str] = []
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            break
    names = names[:count]
    names += [f"input{i}" for i in range(len(names), count)]
    return names


def _is_jax(value) -> bool:
    return type(value).__module__.startswith(("jax", "jaxlib"))


def _copy(value):
    """A fresh copy of a passed-through input (deep where possible; the object itself when
    it refuses to be copied -- a module, an open file -- or needs none: a jax array)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if _is_jax(value):
        return value
    try:
        return copy.deepcopy(value)
    except Exception:  # objects that refuse deepcopy are passed as they are
        return value


class Inputs:
    """The positional inputs of a checked function, with the differentiated ones flattened.

    Parameters
    ----------
    values : sequence
        The inputs as the caller gave them (copied here; never handed to user code).
    names : sequence of str
        One name per input.
    wrt : None, int, str or sequence of them
        The differentiated inputs, by position or name; default every float array.
    what : str
        How messages name the function whose inputs these are.
    """

    def __init__(self, values, names, wrt=None, what: str = "f"):
        self.names = list(names)
        originals = list(values)
        if not originals:
            raise GradlabError(f"{what} needs at least one input to differentiate; got no inputs")
        self.positions = self._resolve(originals, wrt, what)
        self.values = []
        for i, value in enumerate(originals):
            if i in self.positions:
                self.values.append(None)  # rebuilt from theta at each call
            else:
                self.values.append(_copy(value))
        slots, start, flat = [], 0, []
        for pos in self.positions:
            value = originals[pos]
            scalar = _is_float_scalar(value)
            dtype = str(np.asarray(value).dtype)
            arr = v.float_array(self.names[pos], value, ndim=np.ndim(value))
            slots.append(Slot(pos, self.names[pos], arr.shape, start, start + arr.size, scalar, dtype))
            flat.append(arr.ravel())
            start += arr.size
        self.slots = slots
        self.n = start
        self.theta0 = np.concatenate(flat) if flat else np.zeros(0)
        self.theta0.setflags(write=False)

    def _resolve(self, values, wrt, what) -> list[int]:
        n = len(values)
        if wrt is None:
            chosen = [i for i, x in enumerate(values) if _is_float_array(x)]
            if not chosen:
                listing = ", ".join(f"{self.names[i]}: {_kind(x)}" for i, x in enumerate(values))
                raise GradlabError(f"no input of {what} is a float array to differentiate ({listing}); "
                                   "pass wrt= naming the inputs to differentiate")
            return chosen
        items = [wrt] if isinstance(wrt, (str, int, np.integer)) and not isinstance(wrt, bool) else wrt
        accepted = (f"an input position 0..{n - 1}, a name from {self.names}, or a sequence of them")
        if not hasattr(items, "__iter__") or isinstance(items, (bytes, dict)):
            raise v.fail("wrt", wrt, accepted)
        chosen = []
        for item in items:
            if isinstance(item, str):
                if item not in self.names:
                    raise v.fail("wrt", wrt, accepted)
                pos = self.names.index(item)
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
                pos = int(item)
                if not -n <= pos < n:
                    raise v.fail("wrt", wrt, accepted)
                pos %= n
            else:
                raise v.fail("wrt", wrt, accepted)
            if pos in chosen:
                raise GradlabError(f"wrt names {self.names[pos]} (input {pos}) twice; got wrt={wrt!r}")
            value = values[pos]
            if not (_is_float_array(value) or _is_float_scalar(value)):
                raise GradlabError(
                    f"wrt names {self.names[pos]} (input {pos}), {_kind(value)}; only float arrays and floats "
                    "can be differentiated (convert it with numpy.asarray(..., dtype=float) if it should be)")
            chosen.append(pos)
        if not chosen:
            raise v.fail("wrt", wrt, accepted)
        return chosen

    # -- building arguments ------------------------------------------------------------
    def args(self, theta=None, *, xp=None, passthrough=None) -> list:
        """A fresh argument list with the differentiated inputs read from ``theta``.

        ``xp`` is the namespace of ``theta`` (numpy by default; jax.numpy for the jax
        witness, whose slices are reshaped with it). Float-scalar inputs are passed as a
        Python float (numpy) or a 0-d array (complex, jax). ``passthrough`` replaces the
        pass-through values (the jax witness hands over jax arrays).
        """
        theta = self.theta0 if theta is None else theta
        src = self.values if passthrough is None else passthrough
        out = [_copy(x) for x in src]
        for s in self.slots:
            piece = theta[s.start:s.stop]
            if s.scalar:
                value = piece[0]
                out[s.position] = float(value) if xp is None and np.isrealobj(piece) else value
            else:
                out[s.position] = piece.reshape(s.shape) if xp is None else xp.reshape(piece, s.shape)
                if xp is None:
                    out[s.position] = out[s.position].copy()
        return out

    def split(self, flat) -> list[np.ndarray]:
        """One array per slot, shaped like its input."""
        return [np.asarray(flat[s.start:s.stop]).reshape(s.shape) for s in self.slots]

    def locate(self, k: int) -> tuple[Slot, tuple]:
        """The slot and multi-index of flat entry ``k``."""
        for s in self.slots:
            if s.start <= k < s.stop:
                return s, s.index(k - s.start)
        raise IndexError(k)

    def slot_named(self, name: str) -> Slot:
        for s in self.slots:
            if s.name == name:
                return s
        raise KeyError(name)

    def describe(self) -> str:
        """``x (input 0, 4x5), w (input 1, 5x3); y passed through``."""
        parts = [f"{s.name} (input {s.position}, {_shape(s.shape)}"
                 + ("" if s.dtype == "float64" else f", given as {s.dtype}, checked in float64") + ")"
                 for s in self.slots]
        rest = [self.names[i] for i in range(len(self.names)) if i not in self.positions]
        return ", ".join(parts) + (f"; {', '.join(rest)} passed through" if rest else "")

    # -- batches -------------------------------------------------------------------------
    def batch_size(self) -> int | None:
        """The batch size N of a function's inputs: a leading dimension (> 1) shared by at
        least two array inputs (``X`` and ``y``); the largest such when several are; None
        when nothing says which axis is the batch."""
        counts: dict = {}
        for i, x in enumerate(self.values):
            shape = self.slots_by_position[i].shape if i in self.positions else np.shape(x) if _array_like(x) else ()
            if len(shape) >= 1:
                counts[shape[0]] = counts.get(shape[0], 0) + 1
        shared = [n for n, c in counts.items() if c >= 2 and n > 1]
        return max(shared) if shared else None

    @property
    def slots_by_position(self) -> dict:
        return {s.position: s for s in self.slots}

    def sliced(self, k: int, n: int) -> "Inputs":
        """These inputs with every array whose leading dimension is ``n`` cut to its first
        ``k`` rows (the same names and ``wrt``)."""
        values = []
        for i in range(len(self.names)):
            if i in self.positions:
                s = self.slots_by_position[i]
                x = self.theta0[s.start:s.stop].reshape(s.shape) if not s.scalar else float(self.theta0[s.start])
            else:
                x = self.values[i]
            if _array_like(x) and np.ndim(x) >= 1 and np.shape(x)[0] == n:
                x = np.asarray(x)[:k]
            values.append(x)
        return Inputs(values, self.names, self.positions)


def _array_like(x) -> bool:
    return isinstance(x, np.ndarray) or (hasattr(x, "shape") and hasattr(x, "__array__"))


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


# --------------------------------------------------------------------------------------
# The front doors' shared options
# --------------------------------------------------------------------------------------

#: How a generic check may run, and its witnesses.
MODES = ("auto", "full", "fast")
AGAINST = ("jax", "numeric")


def input_names(names, fn, count: int):
    """The inputs' names: ``names`` validated, or ``fn``'s parameter names."""
    if names is None:
        return parameter_names(fn, count)
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise v.fail("names", names, f"a sequence of {count} distinct strings, one per input")
    names = list(names)
    if len(names) != count or not all(isinstance(n, str) and n for n in names) or len(set(names)) != count:
        raise v.fail("names", names, f"a sequence of {count} distinct non-empty strings, one per input")
    return names


def common_options(mode, against, seed):
    """``mode``, ``against`` and ``seed`` of a generic check, validated."""
    mode = v.choice("mode", mode, MODES)
    if isinstance(against, str) or not hasattr(against, "__iter__"):
        raise v.fail("against", against, "a sequence of witness names from 'jax', 'numeric'")
    against = tuple(against)
    if not against or len(set(against)) != len(against) or any(a not in AGAINST for a in against):
        raise v.fail("against", against, "distinct witness names from 'jax', 'numeric'")
    seed = v.integer("seed", seed, minimum=0)
    return mode, against, seed
