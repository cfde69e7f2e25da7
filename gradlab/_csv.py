"""Reading comma-separated values: cells to numbers, a header, the label column, and an
error naming the file, line and column for every way a file can be wrong.

:func:`gradlab.data.load_csv` is the public face (it documents the format).
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import re

import numpy as np

from gradlab import _validate as v
from gradlab._errors import GradlabError

#: Characters that, inside a cell that is not a number, suggest another separator.
_OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


#: A number in a cell as people and programs write them (1, -2.5, .5, 1e-3, 3.0E+2), and
#: the non-finite values numpy and spreadsheets write (nan, inf, -Infinity), which are
#: numbers to refuse by name. Not float()'s other forms ('1_000', non-ASCII digits).
_CSV_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)",
                         re.IGNORECASE)


def _number(cell: str) -> float | None:
    """The (stripped) cell as a float, or None when it is not a number."""
    return float(cell) if _CSV_NUMBER.fullmatch(cell) else None


def _column_label(col: int, header) -> str:
    """``column 3`` or ``column 3 ('x2')`` (1-based, as a spreadsheet counts)."""
    return f"column {col + 1}" + (f" ({header[col]!r})" if header is not None else "")


def _label_index(label_column, header, n_columns: int, path: str) -> int:
    """The 0-based index of the label column: a 1-based number, negative from the end, or a header name."""
    if label_column is None:
        return n_columns - 1
    if isinstance(label_column, str):
        if header is None:
            raise GradlabError(
                f"{path}: label_column={label_column!r} names a column, but the file has no header row "
                f"(its first row is all numbers); give the column's number instead (1..{n_columns}, -1 the last)"
            )
        if label_column not in header:
            raise GradlabError(
                f"{path}: label_column={label_column!r} is not a column of the header; its columns are "
                + ", ".join(repr(h) for h in header)
            )
        if header.count(label_column) > 1:
            raise GradlabError(f"{path}: label_column={label_column!r} names {header.count(label_column)} "
                               f"columns of the header; give the column's number instead")
        return header.index(label_column)
    accepted = f"a column number 1..{n_columns} (or -{n_columns}..-1 from the end; -1 the last) or a header name"
    if isinstance(label_column, (bool, np.bool_)) or not isinstance(label_column, numbers.Integral):
        raise v.fail("label_column", label_column, accepted)
    n = int(label_column)
    if n == 0 or not -n_columns <= n <= n_columns:
        raise v.fail("label_column", label_column, accepted)
    return n - 1 if n > 0 else n_columns + n



def parse(path: str, raw: bytes, label_column=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, y, notes)`` from the bytes of the .csv file ``path`` (see gradlab.data.load_csv)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GradlabError(f"{path} is not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r}); "
                           f"a .csv file for gradlab is comma-separated text") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header, rows, lines = None, [], []
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells) and len(cells) == 1:
                continue  # a blank line
            cells = [c.strip() for c in cells]
            if header is None and not rows and all(_number(c) is None for c in cells):
                header = cells
                header_line = reader.line_num
                continue
            rows.append(cells)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise GradlabError(f"{path}, line {reader.line_num}: not readable as comma-separated values: {exc}") from None
    if header is None and not rows:
        raise GradlabError(f"{path} is empty: a .csv file for gradlab holds one example per row "
                           f"(its features, then its label), separated by commas")
    width = len(header) if header is not None else len(rows[0])
    if width < 2:
        first = header_line if header is not None else lines[0]
        hint = next((f"; the file seems to be separated by {name}, gradlab reads commas"
                     for sep, name in _OTHER_SEPARATORS.items() if sep in text.splitlines()[first - 1]), "")
        raise GradlabError(f"{path}, line {first}: one column only; a .csv file for gradlab needs at least "
                           f"two, the features and the label{hint}")
    if not rows:
        raise GradlabError(f"{path}: no examples: only a header row (line {header_line})")
    label = _label_index(label_column, header, width, path)
    X = np.empty((len(rows), width - 1), dtype=np.float64)
    y = np.empty(len(rows), dtype=np.int64)
    features = [c for c in range(width) if c != label]
    for i, (cells, line) in enumerate(zip(rows, lines)):
        if len(cells) != width:
            what = "the header" if header is not None else f"line {lines[0]}"
            raise GradlabError(f"{path}, line {line}: {len(cells)} cells, but {what} has {width}; every row "
                               f"needs one cell per column")
        values = [_number(c) for c in cells]
        for col, value in enumerate(values):
            if value is None:
                where = f"{path}, line {line}, {_column_label(col, header)}"
                if cells[col] == "":
                    raise GradlabError(f"{where}: an empty cell; every cell must be a number")
                hint = next((f"; the file seems to be separated by {name}, gradlab reads commas"
                             for sep, name in _OTHER_SEPARATORS.items() if sep in cells[col]), "")
                if not hint and i == 0 and header is None:
                    raise GradlabError(f"{where}: {cells[col]!r} is not a number; the first row mixes names and "
                                       f"numbers, so it is neither a header (no cell a number) nor a row of data")
                if col == label:
                    raise GradlabError(f"{where}: labels must be whole numbers >= 0 (the classes 0..K-1); "
                                       f"got {cells[col]!r}{hint}")
                raise GradlabError(f"{where}: {cells[col]!r} is not a number{hint}")
            if not math.isfinite(value):
                raise GradlabError(f"{path}, line {line}, {_column_label(col, header)}: {cells[col]!r} is not "
                                   f"a finite number")
        lab = values[label]
        if lab != round(lab) or lab < 0 or lab > np.iinfo(np.int64).max // 2:
            raise GradlabError(f"{path}, line {line}, {_column_label(label, header)}: labels must be whole "
                               f"numbers >= 0 (the classes 0..K-1); got {cells[label]!r}")
        X[i] = [values[c] for c in features]
        y[i] = int(lab)
    notes = []
    if header is not None:
        notes.append(f"header row: {', '.join(header)}; labels from {_column_label(label, header)}")
    elif label != width - 1:
        notes.append(f"labels from {_column_label(label, None)}")
    return X, y, notes


def comma_hint(path: str) -> str:
    """A hint for comma-separated text under another name."""
    try:
        with open(path, "rb") as f:
            first = f.readline(4096)
    except OSError:
        return ""
    return "; a comma-separated file must be named .csv" if b"," in first else ""
