"""Calling the user's gradient (or cost) function on copies: what it returned, what it wrote.

Every argument handed to the user is a copy; afterwards it is compared with the pristine
original, entry by entry, so a function that writes into its input is seen (which argument,
which entries) and cannot fool the references, which are computed on pristine arrays.
"""

from __future__ import annotations

import copy
import dataclasses
import sys

import numpy as np

from gradlab._errors import GradlabError, UserCodeError, UserCodeStopped
from gradlab._judge import EPS, exact_agree, norm_ratio
from gradlab._usercode import code_file, fn_name, one_line, raised_where, user_code
from gradlab.check.conventions import DEFAULT, SIGNATURE_NAMES, CallTemplate, Convention, arguments, target_kind
from gradlab.check.findings import MAX_LISTED, Finding, layer_slices, rows_cols
from gradlab.network import Network, Problem

__all__ = ["Call", "Caller", "same", "split_pair", "as_gradient", "mutation_findings", "target_file", "arrays_in",
           "Write", "Snapshot", "SNAPSHOT_DEPTH"]

#: How deep the generic purity snapshot looks into tuples, lists and dicts (a cache of
#: tuples of arrays is two levels; deeper structures are rare and the walk must end on cycles).
SNAPSHOT_DEPTH = 4


@dataclasses.dataclass
class Call:
    """What one call of the user's function returned and what it wrote."""

    raw: object
    writes: dict  # argument name -> (before, after) arrays, only when changed
    params_after: np.ndarray  # the params argument after the call, in gradlab's (row-major) order


class Caller:
    """Calls the user's gradient (or cost) function on copies and records what it wrote.

    The user's callable -- the function itself, or a :class:`CallTemplate` -- is called
    as ``self.fn(*values)`` with ordinary arguments: the values of ``self.names`` in the
    chosen :class:`Convention` (labels, unrolling), each a fresh copy.
    """

    def __init__(self, fn, signature: str, network: Network, what: str = "grad_fn", *,
                 convention: Convention = DEFAULT, template: CallTemplate | None = None):
        self.target = fn
        self.fn = fn if template is None else template
        self.template = template
        self.signature = signature if template is None else "call"
        self.names = SIGNATURE_NAMES[signature] if template is None else template.names
        self.network = network
        self.what = what
        self.convention = convention
        self.name = fn_name(fn) if template is None else template.source
        self.file = target_file(fn)

    def with_convention(self, convention: Convention) -> "Caller":
        """The same function called in another convention."""
        other = copy.copy(self)
        other.convention = convention
        return other

    def __call__(self, problem: Problem, params: np.ndarray, *, inplace: np.ndarray | None = None) -> Call:
        net, conv = self.network, self.convention
        theta = conv.params_out(net, params if inplace is None else inplace)
        before = theta.copy()
        values, watched = arguments(self.names, problem, theta, params if inplace is None else inplace, conv)
        try:
            with user_code():
                raw = self.fn(*values)
        except (KeyboardInterrupt, UserCodeStopped):  # Ctrl-C; an isolated function stopped (nothing raised)
            raise
        except BaseException as exc:  # the user's code: reported whatever it raised (see gradlab._usercode)
            raise UserCodeError(f"{self.what} {self.name} raised {one_line(exc)}"
                                f"{raised_where(exc, self.file)}") from exc
        writes = {}
        if "params" in self.names and not same(before, theta):
            writes["params"] = (conv.params_in(net, before), conv.params_in(net, theta.copy()))
        for key, (orig, given) in watched.items():
            if not same(orig, given):
                writes[key] = (np.asarray(orig), np.array(given, copy=True))
        return Call(raw, writes, np.array(conv.params_in(net, theta), copy=True))

    def read(self, raw):
        """(gradient in gradlab's order, finding) from what the function returned."""
        return as_gradient(raw, self.network, self.signature, self.name, convention=self.convention)

    def read_cost(self, raw) -> tuple[float, np.dtype]:
        """The cost in what the function returned (the J of a (J, grad) pair), and its dtype."""
        if raw is None:
            raise GradlabError(f"{self.what} {self.name} returned None (is its return statement missing?); "
                               f"it must return the cost, one number")
        J, rest = split_pair(raw)
        val = rest if J is None else J
        arr = np.asarray(val) if _numeric(val) else None
        if arr is None or arr.size != 1:
            raise GradlabError(f"{self.what} {self.name} must return one number (or a (J, grad) pair); got "
                               f"{type(raw).__name__}" + ("" if arr is None else f" of shape {arr.shape}"))
        return float(arr.reshape(())), arr.dtype


def target_file(target) -> str | None:
    """The file of the user's function, class or module (None when it has none)."""
    kind = target_kind(target)
    if kind == "module":
        return getattr(target, "__file__", None)
    if kind == "class":
        return getattr(sys.modules.get(target.__module__), "__file__", None)
    return code_file(target)


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b))


def _numeric(x) -> bool:
    try:
        arr = np.asarray(x)
    except Exception:  # ragged sequences, exotic objects
        return False
    return arr.dtype.kind in "fiu" and arr.dtype != np.bool_


def split_pair(raw):
    """``(J, grad)`` when ``raw`` is a pair whose first item is one number and whose second
    is not; else ``(None, raw)``. (A gradient block holds at least two entries, so a pair
    is never mistaken for the per-matrix gradients of a two-matrix network.)"""
    if isinstance(raw, (tuple, list)) and len(raw) == 2 and _numeric(raw[0]) and np.size(raw[0]) == 1 \
            and not (_numeric(raw[1]) and np.size(raw[1]) == 1):
        return raw[0], raw[1]
    return None, raw


def _per_matrix(raw, network: Network, convention: Convention, name: str, exp: str):
    """(flat gradient, None) from one gradient per weight matrix, (None, finding) when one
    has the wrong shape, (None, None) when ``raw`` is not such a sequence."""
    shapes = network.shapes
    if not isinstance(raw, (tuple, list)) or len(raw) != len(shapes) or not all(_numeric(b) for b in raw):
        return None, None
    blocks = [np.asarray(b) for b in raw]
    if [b.size for b in blocks] != [r * c for r, c in shapes]:
        return None, None
    out = []
    for k, (b, (r, c)) in enumerate(zip(blocks, shapes), start=1):
        if b.ndim == 2 and b.shape == (r, c):
            out.append(b.ravel())
        elif b.ndim == 1 or (b.ndim == 2 and 1 in b.shape):
            out.append(np.reshape(b.ravel(), (r, c), order=convention.unroll).ravel())
        else:
            return None, Finding("bad_output", k, f"{name} returned one gradient per weight matrix, but the one for "
                                 f"Theta{k} has shape {b.shape}; Theta{k} is {r}x{c}"
                                 + (" -- it is transposed" if b.shape == (c, r) else "") + ".", exp,
                                 cause=f"Theta{k} gradient of shape {b.shape}")
    dtype = np.result_type(*blocks)
    return np.concatenate(out).astype(dtype, copy=False), None


def as_gradient(raw, network: Network, signature: str, name: str, what: str = "gradient", *,
                convention: Convention = DEFAULT):
    """(gradient, finding): the finding is a bad_output when the result is unusable.

    ``what`` names the result in the messages ("gradient", "Hessian-vector product").

    Accepted: a flat array of P entries of shape (P,), (P, 1) or (1, P) unrolled in the
    convention's order; one gradient per weight matrix (matrices, or vectors unrolled in
    that order); either of them as the second item of a ``(J, grad)`` pair.
    """
    n = network.n_params
    exp = f"looked at what {name} returned: type, shape, dtype, finite entries"
    if raw is None:
        return None, Finding("bad_output", None, f"{name} returned None (is its return statement missing?); "
                             f"a {what} is a float array of length {n} (one entry per weight).", exp,
                             cause="returned None")
    _, raw = split_pair(raw)
    arr, bad = _per_matrix(raw, network, convention, name, exp)
    if bad is not None:
        return None, bad
    order = convention if arr is None else DEFAULT  # per-matrix blocks come back in gradlab's order already
    if arr is None:
        try:
            arr = np.asarray(raw)
        except Exception:  # ragged sequences, exotic objects
            arr = np.asarray(None, dtype=object)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        got = type(raw).__name__ if arr.dtype == object else f"an array of dtype {arr.dtype}"
        pair = " a (J, grad) pair," if what == "gradient" else ""
        return None, Finding("bad_output", None, f"{name} returned {got}; a {what} is a float array of "
                             f"{n} entries (one per weight, shape ({n},), ({n}, 1) or (1, {n})),{pair} "
                             f"or one block per weight matrix.", exp, cause=f"type {got}")
    if arr.shape not in [(n,), (n, 1), (1, n)]:
        return None, Finding("bad_output", None, f"{name} returned an array of shape {arr.shape}; the {what} "
                             f"of the {n} weights must have {n} entries, shape ({n},), ({n}, 1) or (1, {n}) -- "
                             "Theta1's block unrolled, then Theta2's, and so on.", exp, cause=f"shape {arr.shape}")
    grad = np.array(order.params_in(network, arr.reshape(n)), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(grad))
    if bad.size:
        layer = network.locate(int(bad[0]))[0]
        rows, cols = rows_cols(network, bad)
        vals = [{"row": network.locate(int(i))[1], "column": network.locate(int(i))[2], "index": int(i),
                 "entry": str(grad[i])} for i in bad[:MAX_LISTED]]
        return None, Finding("bad_output", layer, f"{name} returned {bad.size} non-finite entr"
                             f"{'y' if bad.size == 1 else 'ies'} (NaN or inf), the first in Theta{layer}. "
                             "A log of a saturated sigmoid (log(0)) or a division by zero is the usual cause.",
                             exp, rows, cols, vals, cause="NaN/inf")
    if arr.dtype != np.float64:
        low = arr.dtype.kind == "f" and np.finfo(arr.dtype).eps > EPS
        sentence = (f"{name} returned dtype {arr.dtype}, not float64. " + (
            "It is judged at that precision (round-off bounds scaled by its eps), so correct float32 code is "
            "not flagged; but bugs smaller than that precision cannot be seen -- compute in float64 to check "
            "closely." if low else f"A {what} is a float array; integers cannot hold it."))
        return grad, Finding("bad_output", None, sentence, exp, cause=f"dtype {arr.dtype}",
                             blame="precision" if low else "user", extra={"dtype": str(arr.dtype)})
    return grad, None


def mutation_findings(network, call: Call, again: np.ndarray | None, first: np.ndarray, name: str, floor=None):
    """input_mutation findings for what ``call`` wrote; ``again`` is the gradient returned
    when called on the array it changed (None when not tried), ``floor`` its round-off."""
    out = []
    for arg, (before, after) in call.writes.items():
        changed = np.argwhere(~((before == after) | (np.isnan(before) & np.isnan(after)))) if before.shape == after.shape else None
        if arg == "params" and changed is not None:
            flat = changed[:, 0]
            consequence = ""
            if again is not None:
                ratio = norm_ratio(first, again)
                if ratio == 0.0 or (floor is not None and exact_agree(first, again, floor)):
                    consequence = (" Called again on the array it changed, it returns the same gradient"
                                   + ("" if ratio == 0.0 else " (to round-off)") + ", so the gradient does not show "
                                   "the damage; but the caller's weights are changed all the same, and a trainer "
                                   "that passes its vector each step would keep the changed values.")
                else:
                    consequence = (f" Called again on the array it changed, it returns a different gradient "
                                   f"(||g1-g2||/||g1+g2|| = {ratio:.3g}): a trainer that "
                                   "passes the same vector each step would see weights your function damaged.")
            for layer, sl in enumerate(layer_slices(network), start=1):
                idx = flat[(flat >= sl.start) & (flat < sl.stop)]
                if not idx.size:
                    continue
                rows, cols = rows_cols(network, idx)
                vals = [{"row": network.locate(int(i))[1], "column": network.locate(int(i))[2], "index": int(i),
                         "before": float(before[i]), "after": float(after[i])} for i in idx[:MAX_LISTED]]
                only_bias = cols == [0]
                zeroed = bool(np.all(after[idx] == 0))
                cause = ("bias column zeroed in place" if only_bias and zeroed else
                         "bias column changed in place" if only_bias else "weights changed in place")
                whole = only_bias and len(rows) == network.shapes[layer - 1][0]
                where = (" -- the whole bias column (column 0) --" if whole else
                         " in the bias column (column 0)" if only_bias else "")
                sentence = (f"{name} wrote into its params argument: {idx.size} entr{'y' if idx.size == 1 else 'ies'} "
                            f"of Theta{layer}" + where
                            + (" set to 0" if zeroed else " changed") + ". The weight matrices you reshape from "
                            "params are views of the caller's vector, so writing into them changes the caller's "
                            "weights; copy first (Theta = params[...].reshape(...).copy())." + consequence)
                out.append(Finding("input_mutation", layer, sentence,
                                   "called the function on a copy of params and compared the copy with the "
                                   "pristine vector afterwards; then called it again on the changed copy",
                                   rows, cols, vals, cause=cause, extra={"argument": "params"}))
        else:
            if changed is None:
                entries = []
                text = f"its shape changed from {before.shape} to {after.shape}"
                n_changed = before.size
            else:
                n_changed = len(changed)
                entries = [{"entry": ",".join(map(str, e)), "before": float(before[tuple(e)]),
                            "after": float(after[tuple(e)])} for e in changed[:MAX_LISTED]]
                text = f"{n_changed} entr{'y' if n_changed == 1 else 'ies'} changed"
            out.append(Finding("input_mutation", None,
                               f"{name} wrote into its {arg} argument ({text}). The caller's data must stay as it "
                               "was: the next call, or the next epoch of training, would see changed data. Work on "
                               "a copy.", f"called the function on a copy of {arg} and compared it afterwards",
                               values=entries, cause=f"{arg} changed", extra={"argument": arg, "changed": int(n_changed)}))
    return out


# --------------------------------------------------------------------------------------
# Purity for any function: every array reachable from the arguments
# --------------------------------------------------------------------------------------


def arrays_in(obj, path: str, depth: int = 0, seen=None):
    """``(path, array)`` for every numpy array reachable from ``obj`` through tuples, lists
    and dicts (``cache[1]``, ``bn_param['gamma']``)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > SNAPSHOT_DEPTH:
        return
    if isinstance(obj, np.ndarray):
        seen.add(id(obj))
        yield path, obj
    elif isinstance(obj, (tuple, list)):
        seen.add(id(obj))
        for i, item in enumerate(obj):
            yield from arrays_in(item, f"{path}[{i}]", depth + 1, seen)
    elif isinstance(obj, dict):
        seen.add(id(obj))
        for key, item in obj.items():
            yield from arrays_in(item, f"{path}[{key!r}]", depth + 1, seen)


@dataclasses.dataclass
class Write:
    """Entries of one array the user's code wrote."""

    path: str  # how the argument is named: "x (input 0)", "dout", "cache[0]"
    entries: list  # multi-indices
    before: list
    after: list
    total: int
    shape: tuple
    alias: str | None = None  # "the array forward received as x (input 0)"


class Snapshot:
    """Copies of every array handed to the user's code, to see afterwards what it wrote."""

    def __init__(self, named):
        self.items = []
        seen: set = set()  # an array reachable twice (an input kept in the cache) is listed once
        for name, obj in named:
            for path, arr in arrays_in(obj, name, seen=seen):
                self.items.append((path, arr, arr.copy()))

    def writes(self, aliases: dict | None = None) -> list[Write]:
        out = []
        for path, live, before in self.items:
            if live.shape != before.shape:
                out.append(Write(path, [], [], [], int(before.size), before.shape))
                continue
            with np.errstate(invalid="ignore"):
                same = (live == before) | ((live != live) & (before != before))
            if bool(np.all(same)):
                continue
            changed = np.argwhere(~same)
            take = changed[:MAX_LISTED]
            entries = [tuple(int(i) for i in e) for e in take]
            out.append(Write(path, entries, [_num(before[e]) for e in entries], [_num(live[e]) for e in entries],
                             int(len(changed)), before.shape,
                             None if aliases is None else aliases.get(id(live))))
        return out


def _num(x):
    """A numpy entry as a plain Python number for a report."""
    x = x.item() if hasattr(x, "item") else x
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
