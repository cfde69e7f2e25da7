"""Exit statuses of ``gradlab``, what each one means, and how a Ctrl-C is recognised.

0 success / all gradients agree; 1 a disagreement (a result, not an error); 2 a usage error,
reported as one line on stderr; 70 an internal error (a bug in gradlab, one line on stderr;
``GRADLAB_DEBUG=1`` prints the traceback); 74 a read or write no option names failed;
130 interrupted (Ctrl-C); 141 the reader of the output went away; 143 stopped by SIGTERM.
"""

from __future__ import annotations

#: Success: every pair of gradients agrees, no problem found.
EXIT_OK = 0
#: A result, not an error: gradients disagree, a check found a problem, training stopped early.
EXIT_FOUND = 1
#: The input was bad (argparse's status for a usage error).
EXIT_USAGE = 2
#: EX_SOFTWARE from BSD's sysexits.h: gradlab itself failed; distinct from EXIT_USAGE so
#: that a script can tell "my input was wrong" from "gradlab has a bug".
EXIT_SOFTWARE = 70
#: EX_IOERR from sysexits.h: the system refused a read or write that no argument of the
#: user names (standard output on a full disk); neither bad input nor a bug in gradlab.
EXIT_IO = 74
#: 128 + SIGINT, the shell's status for a process stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE, as a shell reports a process killed by writing into a closed pipe.
EXIT_BROKEN_PIPE = 141
#: 128 + SIGTERM: stopped by ``kill PID`` (``gradlab train`` still writes --out).
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is (as Ctrl-C raises KeyboardInterrupt), so that
    the same code stops the work, keeps what it keeps, and says what was done."""

#: Set (to anything but empty or 0) to see the traceback of an internal error.
DEBUG_ENV = "GRADLAB_DEBUG"

#: What each status means, one line each, in the order ``gradlab --help`` lists them.
MEANINGS = {
    EXIT_OK: "success; every pair of gradients agrees; no problem found",
    EXIT_FOUND: "a result, not an error: a disagreement, a problem found, training stopped early",
    EXIT_USAGE: "usage error: bad option, value or file (one line on stderr: gradlab: error: ...)",
    EXIT_SOFTWARE: f"internal error, a bug in gradlab (one line on stderr; {DEBUG_ENV}=1 prints the traceback)",
    EXIT_IO: "the system refused a read or write no option names (e.g. stdout on a full disk)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); gradlab train still writes --out",
    EXIT_BROKEN_PIPE: "the reader of the output went away (gradlab ... | head)",
    EXIT_TERMINATED: "stopped by SIGTERM (kill PID); gradlab train still writes --out",
}

#: The exit statuses main() can return, in the order --help lists them (written out, not
#: taken from MEANINGS, so that a test can hold the two against each other).
EXIT_STATUSES = (EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_SOFTWARE, EXIT_IO, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE,
                 EXIT_TERMINATED)


def epilog() -> str:
    """The ``exit status:`` table that ends ``gradlab --help``."""
    return "exit status:\n" + "".join(f"  {status:<5}{meaning}\n" for status, meaning in MEANINGS.items())


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is how a Ctrl-C surfaced: a KeyboardInterrupt in its chain of causes.

    Ctrl-C while a C extension initialises (the lazy imports of scipy and jax) comes out
    as ``ImportError: initialization failed`` caused by the KeyboardInterrupt; reported as
    itself, that was an internal error (status 70) for a person who pressed Ctrl-C. The
    chain is followed through ``raise ... from None`` too (``__context__`` stays set).
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
