"""How the user's function is called: conventions (labels, unrolling) and call templates.

gradlab's own layout is labels ``0..K-1`` (the output unit of each example) and weights
unrolled row by row, Theta1 then Theta2 ... A user's function may count labels from 1
(Octave's ``y == 1:K``: label k is output unit k - 1, so the course's label K -- the digit
0 -- is the last unit) and unroll column by column (Octave's ``[Theta1(:); Theta2(:)]``).
A :class:`Convention` converts gradlab's arguments to the user's and the user's flat
gradient back.

A call template is a Python expression over the check's names (:data:`NAMES`) and the
target module's globals -- ``NeuralNet(sizes, X, y, lam).gradient(params)`` -- parsed as
an expression only (``mode="eval"``), its names checked against the namespace before
anything runs, and evaluated by walking its syntax tree (names, calls, attributes,
subscripts, arithmetic), never compiled and run as code.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import inspect
import math
import operator
import sys
import types

import numpy as np

from gradlab import _cost
from gradlab import _validate as v
from gradlab._errors import GradlabError

__all__ = ["Convention", "DEFAULT", "LABELS", "UNROLLS", "NAMES", "SIGNATURE_NAMES", "CallTemplate",
           "check_names", "arguments", "target_kind"]

#: The first class label a function may expect: 0 (gradlab, numpy) or 1 (Octave's 1..K).
LABELS = (0, 1)
#: How a flat parameter vector is unrolled: "C" row by row (numpy), "F" column by column
#: (Octave's Theta(:)), each matrix in turn.
UNROLLS = ("C", "F")

#: The names a call template may use, with what each holds. Matrices and labels follow the
#: chosen convention; every array is a fresh copy (writes into it are reported).
NAMES = {
    "params": "the flat parameter vector, unrolled in the chosen order",
    "sizes": "the layer sizes, a list",
    "input_layer_size": "sizes[0]",
    "hidden_layer_size": "sizes[1] (networks with one hidden layer)",
    "num_labels": "sizes[-1], K",
    "X": "the inputs, m x sizes[0]",
    "y": "the labels, a 1-D integer array in the chosen convention",
    "y_col": "the labels as an (m, 1) column",
    "Y": "one-hot targets, m x K",
    "lam": "lambda",
    "m": "the number of examples",
    "problem": "the gradlab Problem (labels 0..K-1 whatever the convention)",
}
_THETA = "Theta"  # Theta1 ... ThetaL: the weight matrices, each (s_{l+1}, s_l + 1)

#: The arguments of the two fixed signatures, in the order they are passed.
SIGNATURE_NAMES = {
    "gradlab": ("problem", "params"),
    "seed": ("params", "input_layer_size", "hidden_layer_size", "num_labels", "X", "y", "lam"),
}

#: Builtins a template may use besides the check's names and the module's globals: pure
#: constructors and arithmetic, nothing that reaches files, imports or attributes by name.
_SAFE_BUILTINS = {name: getattr(builtins, name) for name in (
    "abs", "bool", "dict", "enumerate", "float", "int", "len", "list", "max", "min", "reversed",
    "round", "slice", "sorted", "sum", "tuple", "zip")}


@dataclasses.dataclass(frozen=True)
class Convention:
    """The labels and unrolling a user's function expects (gradlab's own: 0 and "C")."""

    labels: int = 0
    unroll: str = "C"

    def __post_init__(self):
        if self.labels not in LABELS or isinstance(self.labels, bool):
            raise v.fail("labels", self.labels, "0 (labels 0..K-1) or 1 (labels 1..K, as Octave's y == 1:K)")
        v.choice("unroll", self.unroll, UNROLLS)

    def params_out(self, network, params) -> np.ndarray:
        """gradlab's row-major vector as the user's function expects it (a new array)."""
        if self.unroll == "C":
            return np.array(params, dtype=np.float64, copy=True)
        return np.concatenate([t.ravel(order="F") for t in _cost.unpack(network, params)])

    def params_in(self, network, flat) -> np.ndarray:
        """The user's flat vector (of P entries) in gradlab's row-major order."""
        flat = np.asarray(flat)
        if self.unroll == "C":
            return flat
        o = network.offsets
        return np.concatenate([flat[o[k]:o[k + 1]].reshape(shape, order="F").ravel()
                               for k, shape in enumerate(network.shapes)])

    def labels_out(self, units) -> np.ndarray:
        """Output units 0..K-1 as the labels the user's function expects."""
        return np.asarray(units, dtype=np.int64) + self.labels

    def options(self, *, cli: bool = True) -> str:
        """How to ask for this convention: ``--labels 1 --unroll F`` or ``labels=1, unroll='F'``."""
        if cli:
            return f"--labels {self.labels} --unroll {self.unroll}"
        return f"labels={self.labels}, unroll={self.unroll!r}"

    def differs(self, other: "Convention") -> list[str]:
        """What ``other`` changes, in words."""
        out = []
        if other.unroll != self.unroll:
            out.append("params unrolled column by column (Octave's Theta(:), unroll='F')" if other.unroll == "F"
                       else "params unrolled row by row (numpy's order, unroll='C')")
        if other.labels != self.labels:
            out.append("labels 1..K (label k is output unit k - 1, labels=1)" if other.labels == 1
                       else "labels 0..K-1 (labels=0)")
        return out


DEFAULT = Convention()


def target_kind(target) -> str:
    """'module', 'class' or 'function' (any other callable counts as a function)."""
    if isinstance(target, types.ModuleType):
        return "module"
    if inspect.isclass(target):
        return "class"
    return "function"


def _globals_of(target) -> dict:
    """The namespace a template sees besides the check's names: the target's module."""
    kind = target_kind(target)
    if kind == "module":
        return vars(target)
    if kind == "class":
        mod = sys.modules.get(getattr(target, "__module__", None) or "")
        return vars(mod) if mod is not None else {}
    fn = inspect.unwrap(target) if callable(target) else target
    return getattr(fn, "__globals__", None) or {}


class CallTemplate:
    """A call of the user's code written as a Python expression over the check's names.

    Parameters
    ----------
    source : str
        The expression, e.g. ``"NeuralNet(sizes, X, y, lam).gradient(params)"``.
    target : function, class or module
        Its module's globals are visible to the expression; a function or class is
        visible under its own name too.
    name : str
        How error messages name the template (``"call"``, ``"--call"``, ``"--cost-call"``).

    The expression is parsed once and evaluated by walking its syntax tree: names,
    literals, attributes (no double-underscore ones), calls (with ``*args`` and keyword
    arguments), subscripts and slices, arithmetic, comparisons and conditional
    expressions -- nothing that binds a name, imports or runs text. Calling the template
    with the values of :attr:`names` (in that order) evaluates it.
    """

    def __init__(self, source, target, *, name: str = "call"):
        if not isinstance(source, str) or not source.strip():
            raise v.fail(name, source, "a Python expression such as 'f(params, X, y, lam)'")
        self.source = " ".join(source.split())
        self.what = name
        self.target = target
        try:
            tree = ast.parse(self.source, mode="eval")
        except SyntaxError as exc:
            col = f" at column {exc.offset}" if exc.offset else ""
            raise GradlabError(f"{name}: syntax error{col}: {exc.msg}; got {name}={self.source!r} "
                               "(a Python expression over params, X, y, ...)") from None
        except (ValueError, RecursionError, MemoryError) as exc:  # a NUL byte; nesting too deep to parse
            raise GradlabError(f"{name}: not a Python expression ({type(exc).__name__}: {' '.join(str(exc).split())}); "
                               f"got {name}={self.source!r}") from None
        for node in ast.walk(tree):
            if not isinstance(node, _NODES):
                raise GradlabError(f"{name} may use names, literals, attributes, calls, subscripts and arithmetic; "
                                   f"got {type(node).__name__} at column {getattr(node, 'col_offset', 0) + 1} in "
                                   f"{name}={self.source!r}")
            if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
                raise GradlabError(f"{name} may not reach double-underscore attributes; got .{node.attr} in "
                                   f"{name}={self.source!r}")
            if isinstance(node, ast.Name) and node.id.startswith("__"):
                raise GradlabError(f"{name} may not use double-underscore names; got {node.id} in "
                                   f"{name}={self.source!r}")
        free = list(dict.fromkeys(n.id for n in ast.walk(tree) if isinstance(n, ast.Name)))
        self._globals = _globals_of(target)
        own = getattr(target, "__name__", None)
        self._own = {own: target} if isinstance(own, str) and own.isidentifier() and target_kind(target) != "module" \
            else {}
        self.names = tuple(n for n in free if _is_check_name(n))
        unknown = [n for n in free if not _is_check_name(n) and n not in self._own and n not in self._globals
                   and n not in _SAFE_BUILTINS]
        if unknown:
            raise GradlabError(
                f"{name} uses {', '.join(map(repr, unknown))}, which {'is' if len(unknown) == 1 else 'are'} neither "
                f"a name of the check ({', '.join(NAMES)}, Theta1 ... ThetaL) nor a global of "
                f"{_where(target)}; got {name}={self.source!r}")
        self._tree = tree.body
        self.__name__ = self.source

    def __call__(self, *values):
        ns = dict(_SAFE_BUILTINS)
        ns.update(self._globals)
        ns.update(self._own)
        ns.update(zip(self.names, values))
        return _evaluate(self._tree, ns)

    def __repr__(self) -> str:
        return f"CallTemplate({self.source!r})"


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.MatMult: operator.matmul, ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
           ast.BitXor: operator.xor, ast.LShift: operator.lshift, ast.RShift: operator.rshift}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
#: The syntax a template may use (every other node -- lambda, comprehension, walrus,
#: f-string, await -- is refused when it is parsed).
_NODES = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Call, ast.keyword, ast.Starred,
          ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Dict, ast.BinOp, ast.UnaryOp, ast.Compare,
          ast.BoolOp, ast.And, ast.Or, ast.IfExp, *_BINARY, *_UNARY, *_COMPARE)


#: A template's arithmetic on Python integers and sequences stays this small: a typo such as
#: ``9**9**9`` or ``[0]*10**10`` must not take the machine's time or memory. A call template
#: passes arrays and sizes; nothing it needs comes near 2^4096 or a million repeated items.
MAX_TEMPLATE_INT_BITS = 4096
MAX_TEMPLATE_REPEAT = 10**6


def _bounded(op, left, right) -> None:
    """Refuse a power, shift or repetition of plain Python values beyond the bounds above."""
    ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (left, right))
    if ints and isinstance(op, ast.Pow) and abs(left) > 1 and right > 0 \
            and right * math.log2(abs(left)) > MAX_TEMPLATE_INT_BITS:
        raise GradlabError(f"a call template's power {left}**{right} is too large (over "
                           f"{MAX_TEMPLATE_INT_BITS} bits)")
    if ints and isinstance(op, ast.LShift) and right > MAX_TEMPLATE_INT_BITS:
        raise GradlabError(f"a call template's shift by {right} bits is too large")
    if isinstance(op, ast.Mult):
        for seq, k in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(k, int) and k * max(len(seq), 1) > \
                    MAX_TEMPLATE_REPEAT:
                raise GradlabError(f"a call template's repetition of {len(seq)} items {k} times is too large")


def _items(nodes, ns) -> list:
    """Positional items, ``*iterable`` spread."""
    out = []
    for n in nodes:
        if isinstance(n, ast.Starred):
            out.extend(_evaluate(n.value, ns))
        else:
            out.append(_evaluate(n, ns))
    return out


def _evaluate(node, ns):
    """The value of one checked expression node."""
    ev = lambda n: _evaluate(n, ns)  # noqa: E731
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return ns[node.id]
    if isinstance(node, ast.Attribute):
        return getattr(ev(node.value), node.attr)
    if isinstance(node, ast.Call):
        kwargs = {}
        for k in node.keywords:
            if k.arg is None:  # **mapping
                kwargs.update(ev(k.value))
            else:
                kwargs[k.arg] = ev(k.value)
        return ev(node.func)(*_items(node.args, ns), **kwargs)
    if isinstance(node, ast.Subscript):
        return ev(node.value)[ev(node.slice)]
    if isinstance(node, ast.Slice):
        return slice(*(None if p is None else ev(p) for p in (node.lower, node.upper, node.step)))
    if isinstance(node, (ast.Tuple, ast.List)):
        items = _items(node.elts, ns)
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        out = {}
        for k, val in zip(node.keys, node.values):
            if k is None:  # **mapping
                out.update(ev(val))
            else:
                out[ev(k)] = ev(val)
        return out
    if isinstance(node, ast.BinOp):
        left, right = ev(node.left), ev(node.right)
        _bounded(node.op, left, right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](ev(node.operand))
    if isinstance(node, ast.Compare):
        left = ev(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = ev(right_node)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        value = None
        for part in node.values:
            value = ev(part)
            if isinstance(node.op, ast.And) != bool(value):
                return value
        return value
    if isinstance(node, ast.IfExp):
        return ev(node.body) if ev(node.test) else ev(node.orelse)
    raise GradlabError(f"a call template cannot evaluate {type(node).__name__}")  # refused when parsed


def _where(target) -> str:
    kind = target_kind(target)
    if kind == "module":
        return f"module {target.__name__}"
    return f"{getattr(target, '__module__', None) or 'its module'} (where {getattr(target, '__name__', target)!s} lives)"


def _is_check_name(n: str) -> bool:
    return n in NAMES or (n.startswith(_THETA) and n[len(_THETA):].isdigit() and not n[len(_THETA)].startswith("0"))


def check_names(names, network, has_labels: bool, what: str) -> None:
    """Refuse names this network or problem cannot give (Theta3 of a 3-layer network ...)."""
    for n in names:
        if n.startswith(_THETA) and n not in NAMES:
            k = int(n[len(_THETA):])
            if not 1 <= k <= len(network.shapes):
                raise GradlabError(f"{what} uses {n}, but sizes {network.sizes} has only Theta1 ... "
                                   f"Theta{len(network.shapes)}")
        elif n == "hidden_layer_size" and network.n_layers != 3:
            raise GradlabError(f"{what} uses hidden_layer_size, which is defined for one hidden layer; sizes "
                               f"{network.sizes} has {network.n_layers - 2} (use sizes instead)")
        elif n in ("y", "y_col") and not has_labels:
            raise GradlabError(f"{what} uses {n}, but the problem has a target matrix, not labels (use Y)")


def arguments(names, problem, theta_user, params, convention: Convention):
    """The values of ``names`` for one call, and the arrays to compare afterwards.

    ``theta_user`` is the user-order vector handed over as ``params`` (compared by the
    caller); every other array is a fresh copy, returned with its pristine original as
    ``watched[label] = (original, given)``.
    """
    net = problem.network
    values, watched = [], {}
    thetas = None
    for n in names:
        if n == "params":
            val = theta_user
        elif n == "problem":
            val = problem.writeable_copy()
            watched["problem.X"] = (problem.X, val.X)
            watched["problem.y"] = (problem.y, val.y)
            if val.labels is not None:
                watched["problem.Y"] = (problem.Y, val.Y)
        elif n in ("X", "Y"):
            orig = getattr(problem, n)
            val = orig.copy()
            watched[n] = (orig, val)
        elif n in ("y", "y_col"):
            orig = convention.labels_out(problem.labels)
            if n == "y_col":
                orig = orig.reshape(-1, 1)
            val = orig.copy()
            watched[n] = (orig, val)
        elif n == "sizes":
            val = list(net.sizes)
        elif n == "input_layer_size":
            val = net.sizes[0]
        elif n == "hidden_layer_size":
            val = net.sizes[1]
        elif n == "num_labels":
            val = net.n_outputs
        elif n == "lam":
            val = problem.lam
        elif n == "m":
            val = problem.m
        else:  # Theta<k>
            if thetas is None:
                thetas = _cost.unpack(net, np.asarray(params))
            orig = thetas[int(n[len(_THETA):]) - 1]
            val = orig.copy()
            watched[n] = (orig, val)
        values.append(val)
    return values, watched
