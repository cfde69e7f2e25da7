"""The ``gradlab`` command line (the console script ``gradlab`` and ``python -m gradlab``).

The public face is :func:`main`, :func:`build_parser` and the exit statuses; the parser and
``main`` are in :mod:`gradlab.cli.program`, the statuses and their meanings in
:mod:`gradlab.cli.status`, the commands one group to a module.
"""

from gradlab.cli.program import build_parser, main
from gradlab.cli.status import (
    EXIT_BROKEN_PIPE,
    EXIT_FOUND,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_OK,
    EXIT_SOFTWARE,
    EXIT_STATUSES,
    EXIT_TERMINATED,
    EXIT_USAGE,
)

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FOUND",
    "EXIT_INTERRUPTED",
    "EXIT_IO",
    "EXIT_OK",
    "EXIT_SOFTWARE",
    "EXIT_STATUSES",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "build_parser",
    "main",
]
