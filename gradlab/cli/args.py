"""Argument types and shared options of the ``gradlab`` commands.

The types check the form of a value (strict integers and numbers, sizes, a writable output
file); its range is the library's job, which names the argument in its own message.
"""

from __future__ import annotations

import argparse
import math
import re
import sys

from gradlab._errors import GradlabError

#: Longest rendering of a user's value in a message: enough to recognise it, and a 10,000
#: character argument still gives a readable line.
SHOW_CHARS = 60


def short(text: str) -> str:
    """``repr(text)``, cut to :data:`SHOW_CHARS` characters."""
    shown = repr(text)
    return shown if len(shown) <= SHOW_CHARS else shown[: SHOW_CHARS - 4] + "...'"


#: Integers on the command line are ASCII digits: Python's int() also takes '١٢' (Arabic-Indic
#: digits, = 12) and '1_000', and a user who typed either meant something else or nothing.
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: Decimal numbers as a person writes them (1, 0.5, .5, 1e-3); not float()'s 'nan', 'inf',
#: 'infinity' or non-ASCII digits.
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: Integers are handed to numpy and scipy, whose integers are 64-bit.
INT_MAX = 2**63 - 1


def label_column(text: str):
    """An argparse type: a column number (``3``, ``-1``) or, otherwise, a header name."""
    stripped = text.strip()
    return int(stripped) if _INTEGER.fullmatch(stripped) else text


def integer(text: str) -> int:
    """An argparse type: an integer in ASCII digits within 64 bits (ranges are the library's job)."""
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        raise argparse.ArgumentTypeError(f"must be an integer such as 5 (digits 0-9); got {short(text)}")
    value = int(stripped)
    if abs(value) > INT_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer within 64 bits (|n| <= {INT_MAX}); got {short(text)}")
    return value


def number(text: str) -> float:
    """An argparse type: a finite decimal number such as 0.5 or 1e-3 (ranges are the library's job)."""
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        raise argparse.ArgumentTypeError(f"must be a finite number such as 0.5 or 1e-3; got {short(text)}")
    value = float(stripped)
    if not math.isfinite(value):  # 1e309 overflows to inf
        raise argparse.ArgumentTypeError(f"must be a finite number (at most {sys.float_info.max:.6g} in size); "
                                         f"got {short(text)}")
    return value


def integer_list(text: str, name: str, example: str) -> tuple[int, ...]:
    """Parse comma-separated ASCII integers within 64 bits; ``name`` and ``example`` go in the message."""
    parts = [part.strip() for part in text.split(",")]
    if not all(_INTEGER.fullmatch(part) for part in parts):
        raise argparse.ArgumentTypeError(
            f"{name} must be comma-separated integers such as {example}; got {short(text)}"
        )
    values = tuple(int(part) for part in parts)
    if any(abs(v) > INT_MAX for v in values):
        raise argparse.ArgumentTypeError(f"{name} must be integers within 64 bits (|n| <= {INT_MAX}); got {short(text)}")
    return values


def sizes(text: str) -> tuple[int, ...]:
    """Parse ``3,5,3`` into a tuple of ints (validation of the values is Network's job)."""
    return integer_list(text, "sizes", "3,5,3")


def hidden(text: str) -> tuple[int, ...]:
    """Parse ``25`` or ``64,32`` (hidden layer sizes); ``none`` for no hidden layer."""
    if text.strip().lower() == "none":
        return ()
    return integer_list(text, "hidden", "25 or 64,32 (or none)")


def names(text: str) -> tuple[str, ...]:
    """Parse ``backprop,jax`` into its non-empty names."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def output_file(text: str) -> str:
    """An argparse type: a file gradlab can write (checked before any work, by a trial write)."""
    from gradlab._files import check_writable

    try:
        return check_writable(text, name="--out")
    except GradlabError as exc:
        # argparse would replace a ValueError's message with "invalid value"; keep ours.
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--out: ")) from None


def add_progress(p) -> None:
    """``--progress`` and ``--quiet``: the progress line on stderr, forced on or off."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", action="store_true",
                       help="show progress on stderr even when it is not a terminal (logs, CI); "
                       "by default it is shown on a terminal, for work that lasts over two seconds")
    group.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_force(p, what: str) -> None:
    """``--force``: run finite differences whose estimated time is above gradlab's limit."""
    p.add_argument("--force", action="store_true",
                   help=f"run {what} even when the estimated time is above gradlab's limit (a minute)")


def forcible(run):
    """``run(args)`` with the time guards of finite differences lifted when ``--force`` is given."""

    def forcible(args) -> int:
        from gradlab._resources import forced

        with forced(args.force):
            return run(args)

    return forcible
