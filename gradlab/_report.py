"""The common face of gradlab's reports: ``.ok``, ``.to_dict()``, ``str()``, ``to_json()``."""

from __future__ import annotations

import json
import math

import numpy as np


def jsonable(value):
    """Replace what JSON cannot hold (inf, nan, numpy scalars) with plain values."""

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


class Report:
    """Base class: subclasses implement ``to_dict`` and ``_text``; ``ok`` where a verdict applies."""

    ok: bool | None = None

    def to_dict(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=indent, allow_nan=False)

    def _text(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        return self._text()


def printable(text) -> str:
    """``text`` with every character that is not printable written as its escape (as repr does).

    For strings a file supplies (a model file's metadata): printed as they are, a newline
    forges a line of gradlab's output and an escape sequence drives the user's terminal.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``1 finding``, ``3 findings``: a count and its noun, in the right number."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def with_article(noun: str) -> str:
    """``an int64``, ``a float64``, ``a uint8``: the noun with its indefinite article (by its
    first letter; a leading u is said "you" in the type names messages use)."""
    return f"{'an' if noun[:1].lower() in 'aeio' and noun else 'a'} {noun}"


def fmt(x: float) -> str:
    """Compact scientific notation for a table cell."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3e}"
