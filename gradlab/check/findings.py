"""What the checker reports: the kinds of finding, :class:`Finding`, and the helpers that
build one from the entries of a gradient (which layer, rows, columns, values)."""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab import _judge
from gradlab._judge import TINY, is_ratio
from gradlab.network import Network

__all__ = ["KINDS", "MAX_LISTED", "Finding", "entry_finding", "values", "rows_cols", "layer_slices", "grid",
           "differing", "factor_name"]

#: At most this many entries are listed with their values in one finding.
MAX_LISTED = 5

#: The kinds of finding, with what each means.
KINDS = {
    "bad_output": "the function returned something that is not a finite gradient of the right shape",
    "input_mutation": "the function wrote into its arguments (params, X or y)",
    "non_determinism": "two calls on identical arguments returned different gradients",
    "forward_without_bias": "the gradient is the true one at weights with the bias column zeroed",
    "regularisation": "right at lam = 0, wrong at lam > 0: the regularisation term",
    "bias_column": "only column 0 (the bias) of a weight matrix is wrong",
    "constant_factor": "a block is a constant multiple of the true gradient",
    "sign_flip": "a block is minus the true gradient",
    "transposed": "a block holds the true numbers transposed",
    "one_layer": "the error enters at one layer (the layers below at most inherit it)",
    "entries": "individual entries are wrong, no simpler pattern fits",
    "numeric_problem": "finite differences disagree with two exact gradients that agree",
    "cost_mismatch": "the user's cost differs from gradlab's cost",
    "cost_suspect": "the exact and numeric references disagree with each other",
}


@dataclasses.dataclass
class Finding:
    """One thing the checker found, with where, how much, and why it thinks so.

    ``layer`` is 1 for Theta1, 2 for Theta2 ... (None for findings about X, y, the cost
    or the whole call); ``rows`` are units and ``columns`` inputs of that layer, column 0
    the bias. ``blame`` is ``"user"`` (your function), ``"numeric"`` (a finite-difference
    problem, not your fault) or ``"cost"`` (the cost itself is suspect).
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

