"""What the checker reports: the kinds of finding, :class:`Finding`, and the helpers that
build one from the entries of a gradient (which layer, rows, columns, values)."""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab import _judge
from gradlab._judge import TINY, is_ratio
from gradlab.check.inputs import axis_name
from gradlab.network import Network

__all__ = ["KINDS", "MAX_LISTED", "Finding", "entry_finding", "values", "rows_cols", "layer_slices", "grid",
           "differing", "factor_name", "INPUT_KINDS", "INPUT_FAILING", "InputFinding", "groups_of"]

#: At most this many entries are listed with their values in one finding.
MAX_LISTED = 5

#: The kinds of finding, with what each means.
KINDS = {
    "bad_output": "the function returned something that is not a finite gradient of the right shape",
    "convention": "the function is right in another convention (labels 1..K, column-major unrolling): pass the option",
    "input_mutation": "the function wrote into its arguments (params, X or y)",
    "non_determinism": "two calls on identical arguments returned different gradients",
    "forward_without_bias": "the gradient is the true one at weights with the bias column zeroed",
    "regularisation": "right at lam = 0, wrong at lam > 0: the regularisation term",
    "bias_column": "only column 0 (the bias) of a weight matrix is wrong",
    "constant_factor": "a block is a constant multiple of the true gradient",
    "sign_flip": "a block is minus the true gradient",
    "transposed": "a block holds the true numbers transposed",
    "one_layer": "the error enters at one layer (the layers below at most inherit it)",
    "examples": "right on the first examples, wrong once later ones are included",
    "entries": "individual entries are wrong, no simpler pattern fits",
    "numeric_problem": "finite differences disagree with two exact gradients that agree",
    "cost_mismatch": "the user's cost differs from gradlab's cost",
    "cost_suspect": "the exact and numeric references disagree with each other",
    "missing_term": "a Hessian-vector product is the R-operator without one of its product-rule terms",
    "hessian_block": "a Hessian-vector product is wrong in some blocks H[Theta_a, Theta_b] of the Hessian",
    "asymmetric": "u . Hv differs from v . Hu: the product is not a symmetric matrix's",
}


@dataclasses.dataclass
class Finding:
    """One thing the checker found, with where, how much, and why it thinks so.

    ``layer`` is 1 for Theta1, 2 for Theta2 ... (None for findings about X, y, the cost
    or the whole call); ``rows`` are units and ``columns`` inputs of that layer, column 0
    the bias. ``blame`` is ``"user"`` (your function), ``"numeric"`` (a finite-difference
    problem, not your fault), ``"cost"`` (the cost itself is suspect), ``"convention"``
    (right in another convention, which the finding names) or ``"precision"``.
    """

    kind: str
    layer: int | None
    sentence: str
    experiment: str
    rows: list = dataclasses.field(default_factory=list)
    columns: list = dataclasses.field(default_factory=list)
    values: list = dataclasses.field(default_factory=list)
    error: float | None = None
    rel_error: float | None = None
    blame: str = "user"
    cause: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return d


def differing(a, b, floor) -> np.ndarray:
    """Indices of the entries where two exact gradients differ beyond round-off (at least the
    MAX_LISTED worst when the norm fails though no single entry stands out)."""
    return _judge.differing_entries(a, b, floor, MAX_LISTED)


def factor_name(c: float, m: int) -> str | None:
    """Name a ratio in the words of a student's usual slip."""
    if is_ratio(c, -1.0):
        return "sign flipped"
    if m > 1 and is_ratio(c, float(m)):
        return f"missing 1/m (factor m = {m})"
    if m > 1 and is_ratio(c, 1.0 / m):
        return f"divided by m twice (factor 1/m = 1/{m})"
    if m > 1 and is_ratio(c, -float(m)):
        return f"sign flipped and missing 1/m (factor -m = {-m})"
    if is_ratio(c, 2.0):
        return "counted twice (factor 2)"
    if is_ratio(c, 0.5):
        return "halved (factor 1/2)"
    if is_ratio(c, 0.0):
        return "all zero"
    return None



def values(network, layer, idx, yours, expected, limit=MAX_LISTED):
    """The first few wrong entries of one layer, as dicts."""
    out = []
    for i in idx[:limit]:
        _, row, col = network.locate(int(i))
        out.append({"row": row, "column": col, "index": int(i), "yours": float(yours[i]),
                    "expected": float(expected[i]), "error": float(abs(yours[i] - expected[i]))})
    return out


def rows_cols(network, idx):
    rows, cols = set(), set()
    for i in idx:
        _, r, c = network.locate(int(i))
        rows.add(r)
        cols.add(c)
    return sorted(rows), sorted(cols)


def layer_slices(network):
    o = network.offsets
    return [slice(o[k], o[k + 1]) for k in range(len(network.shapes))]


def entry_finding(network, kind, layer, idx, U, R, sentence, experiment, blame="user", cause=None, **extra):
    rows, cols = rows_cols(network, idx)
    err = np.abs(U[idx] - R[idx]) if len(idx) else np.zeros(0)
    rel = err / np.maximum(np.maximum(np.abs(U[idx]), np.abs(R[idx])), TINY) if len(idx) else err
    return Finding(kind, layer, sentence, experiment, rows, cols, values(network, layer, idx, U, R),
                   float(err.max()) if err.size else None, float(rel.max()) if rel.size else None,
                   blame, cause, extra)



def grid(network: Network, layer: int) -> np.ndarray:
    """Flat indices of Theta_layer, shaped like the matrix."""
    start, (rows, cols) = network.offsets[layer - 1], network.shapes[layer - 1]
    return start + np.arange(rows * cols).reshape(rows, cols)


#: The kinds of finding of the generic checks (any function, any layer), with what each means.
INPUT_KINDS = {
    "bad_output": "the gradient returned is not one finite array per differentiated input, of its shape",
    "input_mutation": "the code wrote into an argument (an input, dout or the cache)",
    "non_determinism": "two calls on identical copies of the arguments returned different results",
    "zero_gradient": "an input's gradient is all zeros where the true gradient is not",
    "constant_factor": "an input's gradient is a constant multiple of the true one (1/N: the batch size)",
    "sign_flip": "an input's gradient is minus the true one",
    "transposed": "an input's gradient holds the true numbers transposed",
    "partial_batch": "the gradient is right only for part of the batch (the first k examples)",
    "entries": "individual entries are wrong, no simpler pattern fits (grouped into rows, columns, "
               "channels where they form one)",
    "kink": "a finite-difference stencil crossed a kink (relu, max, hinge); judged by the one-sided quotients",
    "numeric_problem": "finite differences disagree with witnesses that agree with each other",
    "function_suspect": "two witnesses of the same function disagree with each other: the function itself "
                        "is suspect (not smooth there, or not the function both witnesses see)",
}

#: Blames that fail a generic check: the user's gradient, or the function itself. "numeric" (a
#: finite-difference problem), "precision" (a float32 result, judged at its precision) and
#: "shape" (an extra length-1 axis) are reported without failing it.
INPUT_FAILING = ("user", "function")


@dataclasses.dataclass
class InputFinding:
    """One thing a generic check found: where (which input, which entries), how much, and why.

    ``input`` and ``position`` name the input (``"dw"``-style findings name the input the
    gradient belongs to, e.g. ``"w"``, position 1); None for findings about the whole call.
    ``entries`` are multi-indices into that input; ``groups`` say when they form whole rows,
    columns or channels (``{"axis": 0, "name": "row", "indices": [3, 4]}``). ``values``
    lists a few entries with your value and the expected one. ``blame`` is ``"user"``,
    ``"function"``, ``"numeric"``, ``"precision"`` or ``"shape"``.
    """

    kind: str
    input: str | None
    position: int | None
    sentence: str
    experiment: str
    entries: list = dataclasses.field(default_factory=list)
    groups: list = dataclasses.field(default_factory=list)
    values: list = dataclasses.field(default_factory=list)
    error: float | None = None
    rel_error: float | None = None
    blame: str = "user"
    cause: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["entries"] = [list(e) for e in self.entries]
        extra = d.pop("extra")
        d.update(extra)
        return d


def groups_of(per_entry, shape) -> list[dict]:
    """Axes along which the marked entries of an input form whole slabs (rows, columns,
    channels): ``{"axis": 0, "name": "row", "indices": [3, 4]}`` when exactly rows 3 and 4
    (every column) are marked."""
    shape = tuple(shape)
    if len(shape) < 2:
        return []
    mask = np.asarray(per_entry, dtype=bool).reshape(shape)
    out = []
    for axis in range(len(shape)):
        others = tuple(a for a in range(len(shape)) if a != axis)
        touched = mask.any(axis=others)
        full = mask.all(axis=others)
        if touched.any() and np.array_equal(touched, full) and not full.all():
            out.append({"axis": axis, "name": axis_name(len(shape), axis),
                        "indices": [int(i) for i in np.flatnonzero(full)]})
    return out
