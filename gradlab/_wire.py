"""How values cross between gradlab and the user's process: pickles with arrays beside them.

Arrays travel as out-of-band buffers (pickle protocol 5): written to the pipe from their own
memory and read into the memory they will live in, never copied on the way. An array passed
together with views of it arrives as one array and views of it, so a write through either is
seen through both; what the user's code wrote into its copies is found bit for bit and copied
back into the caller's arrays. A value that cannot be pickled (a generator, an open file)
travels as a :class:`StandIn` named after its type. Used by :mod:`gradlab._isolation`.
"""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np

from gradlab import _usercode

__all__ = ["StandIn", "FindArrays", "PutArrays", "KnownArrays", "transport", "rebuild", "changed", "copy_back",
           "sendable", "encode", "decode", "blocking_reader", "write_all", "CHUNK", "HEADER"]

#: Bytes read or written in one system call (and the width of a pipe where it can be set).
CHUNK = 1 << 20
#: A message: the pickle's length and how many out-of-band buffers follow it, their lengths,
#: the pickle, the buffers. Arrays travel as buffers (pickle protocol 5): written to the pipe
#: from their own memory and read into the memory they will live in, never copied on the way.
HEADER = struct.Struct("<QQ")


class StandIn:
    """In place of a value the user's code returned that cannot be sent between processes (a
    generator, an open file): its type's name is the original's, so a report says what came."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (not sent from the user's process: {self.text})>"


def stand_in(type_name: str, text: str) -> StandIn:
    return type(type_name, (StandIn,), {})(text)


class Unsendable:
    """Pickles as a :class:`StandIn` named after ``obj``'s type."""

    def __init__(self, obj, exc: BaseException):
        self.type_name, self.text = type(obj).__name__, _usercode.one_line(exc)

    def __reduce__(self):
        return stand_in, (self.type_name, self.text)


# --------------------------------------------------------------------------------------
# Arrays across the boundary
# --------------------------------------------------------------------------------------


class FindArrays(pickle.Pickler):
    """Pickles everything but plain arrays, which it lists (their place in the list is the id)."""

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.found: list[np.ndarray] = []
        self._index: dict[int, int] = {}

    def persistent_id(self, obj):
        if type(obj) is not np.ndarray or obj.dtype.hasobject:
            return None
        k = self._index.get(id(obj))
        if k is None:
            k = self._index[id(obj)] = len(self.found)
            self.found.append(obj)
        return k


class PutArrays(pickle.Unpickler):
    def __init__(self, file, arrays):
        super().__init__(file)
        self.arrays = arrays

    def persistent_load(self, pid):
        return self.arrays[pid]


class KnownArrays(pickle.Pickler):
    """Pickles the user's result; an array the child received is sent as its id."""

    def __init__(self, file, arrays):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._ids = {id(a): k for k, a in enumerate(arrays)}
        self._arrays = arrays

    def persistent_id(self, obj):
        k = self._ids.get(id(obj))
        return k if k is not None and self._arrays[k] is obj else None


def plain(a: np.ndarray) -> bool:
    return type(a) is np.ndarray and not a.dtype.hasobject and (a.flags.c_contiguous or a.flags.f_contiguous)


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def transport(found: list[np.ndarray]):
    """How each found array travels: ``("a", i)``, root ``i`` itself, or ``("v", i, ...)``,
    a view into root ``i`` -- when an array passed is a view of another array passed, only
    the outer one is sent, and the view rebuilt on it, so that a write through either is
    seen through both, as in the caller's process."""
    passed = {id(a) for a in found}
    roots: list[np.ndarray] = []
    where: dict[int, int] = {}
    refs = []

    def root(a):
        if id(a) not in where:
            where[id(a)] = len(roots)
            roots.append(a)
        return where[id(a)]

    for a in found:
        outer, b = None, a.base
        while isinstance(b, np.ndarray):
            if id(b) in passed and plain(b):
                outer = b
            b = b.base
        if outer is None:
            refs.append(("a", root(a)))
        else:
            refs.append(("v", root(outer), address(a) - address(outer), a.shape, a.strides, a.dtype,
                         bool(a.flags.writeable)))
    return refs, roots, [bool(r.flags.writeable) for r in roots]


def rebuild(refs, roots, writeable):
    """The child's side of :func:`transport`: the arrays, their views, their flags."""
    out_roots = []
    for r, w in zip(roots, writeable):
        if w and not r.flags.writeable:
            r = r.copy()
        elif not w:
            r.flags.writeable = False
        out_roots.append(r)
    arrays = []
    for ref in refs:
        if ref[0] == "a":
            arrays.append(out_roots[ref[1]])
            continue
        _, i, offset, shape, strides, dtype, w = ref
        memory = out_roots[i].ravel(order="K").view(np.uint8)
        view = np.ndarray(shape, dtype, buffer=memory, offset=offset, strides=strides)
        if not w:
            view.flags.writeable = False
        arrays.append(view)
    return arrays, out_roots


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit (a NaN is its own value, -0.0 differs from 0.0): what was written is seen."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    try:  # the memory itself, without a copy (the roots are contiguous, their copies alike)
        return bool(np.array_equal(a.ravel(order="K").view(np.uint8), b.ravel(order="K").view(np.uint8)))
    except ValueError:  # a dtype numpy cannot view as bytes (zero-sized items)
        return a.tobytes(order="A") == b.tobytes(order="A")


def changed(roots, before) -> dict:
    return {i: r for i, (r, b) in enumerate(zip(roots, before)) if not same_bytes(r, b)}


def copy_back(roots, written: dict) -> None:
    """Write what the user's code changed in the child (``written``, from :func:`changed`)
    into the caller's arrays."""
    for i, new in written.items():
        target = roots[i]
        if target.shape != new.shape or target.dtype != new.dtype:
            continue  # resized in place in the child: an array's shape cannot change here
        if target.flags.writeable:
            np.copyto(target, new)
            continue
        try:  # the user's code made a read-only array writeable to write into it
            target.flags.writeable = True
        except ValueError:
            continue
        np.copyto(target, new)
        target.flags.writeable = False


def sendable(result):
    """``result`` with every part that cannot be pickled replaced by a stand-in."""
    try:
        pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        return result
    except Exception as exc:  # noqa: BLE001 - whatever pickling raises, the value cannot travel
        if type(result) in (tuple, list):
            return type(result)(sendable(x) for x in result)
        if type(result) is dict:
            return {k: sendable(x) for k, x in result.items()}
        return Unsendable(result, exc)


# --------------------------------------------------------------------------------------
# Messages: a length and a pickle
# --------------------------------------------------------------------------------------


def encode(message) -> list:
    """The pieces of a message to write, in order (see :data:`HEADER`)."""
    buffers: list = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    head = HEADER.pack(len(data), len(raws)) + struct.pack(f"<{len(raws)}Q", *(r.nbytes for r in raws))
    return [head, data, *raws]


def decode(read) -> object:
    """A message, from ``read(n) -> bytearray`` of exactly n bytes."""
    n_data, n_buffers = HEADER.unpack(read(HEADER.size))
    sizes = struct.unpack(f"<{n_buffers}Q", read(8 * n_buffers)) if n_buffers else ()
    data = read(n_data)
    return pickle.loads(data, buffers=[read(n) for n in sizes])


def blocking_reader(fd: int):
    """``read(n)`` for the child's side: blocks; EOFError when the parent is gone."""

    def read(n: int) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = os.readv(fd, [view[got:]])
            if k == 0:
                raise EOFError
            got += k
        return buf

    return read


def write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view[:CHUNK]):]
