"""The ``gradlab`` program: the parser, ``main`` and its last line of defence.

The commands live one group to a module (:mod:`gradlab.cli.compare`, :mod:`gradlab.cli.check`,
:mod:`gradlab.cli.train`), each thin over the library, which they import when a command runs:
importing this module imports neither jax nor matplotlib, so ``gradlab --help`` stays fast.
Exit statuses and their meanings are in :mod:`gradlab.cli.status`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
import traceback

from gradlab import __version__, _progress
from gradlab._errors import GradlabError
from gradlab.cli.args import short
from gradlab.cli.check import add_check
from gradlab.cli.compare import add_compare, add_explain, add_steps
from gradlab.cli.status import (
    DEBUG_ENV,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_SOFTWARE,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Terminated,
    caused_by_interrupt,
    epilog,
)
from gradlab.cli.train import add_plot, add_predict, add_train


#: Options whose value is a comma-separated list, and what the list holds (for the hint
#: when the values were separated by spaces: ``--sizes 3 5 3``).
LIST_OPTIONS = {"--sizes": "layer sizes", "--hidden": "hidden layer sizes", "--sources": "sources"}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2.

    ``main`` prints ``gradlab: error:`` before the message, so the message does not repeat
    the program's name; it ends by naming the help of the command that was run.
    """

    def error(self, message):  # noqa: D401 - argparse's hook
        raise GradlabError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        argv = list(sys.argv[1:] if args is None else args)
        args, extras = self.parse_known_args(argv, namespace)
        if extras:
            # argparse joins unrecognised arguments with spaces, so '' or ' ' vanish from the
            # message; their reprs show exactly what was not understood.
            command = getattr(args, "command", None)
            where = f"{self.prog} {command}" if command else self.prog
            raise GradlabError("unrecognized arguments: " + " ".join(short(e) for e in extras)
                               + _list_hint(argv, extras) + f" (see {where} --help)")
        return args


def _list_hint(argv: list, extras: list) -> str:
    """``; layer sizes are comma-separated, without spaces: --sizes 3,5,3`` when the first
    extras follow such an option's value (``--sizes 3 5 3``), else nothing."""
    for i in range(2, len(argv)):
        if argv[i] == extras[0] and argv[i - 2] in LIST_OPTIONS and not argv[i - 1].startswith("-"):
            run = [argv[i - 1]]
            for token in argv[i:]:
                if token.startswith("-") and not token.lstrip("-").isdigit():
                    break
                run.append(token)
            option = argv[i - 2]
            return f"; {LIST_OPTIONS[option]} are comma-separated, without spaces: {option} {','.join(run)}"
    return ""


def _options(parser, command) -> dict:
    """The options of ``command``'s parser by their destination: ``{"lam": "--lambda", ...}``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return {a.dest: max(a.option_strings, key=len)
                    for a in action.choices[command]._actions if a.option_strings}
    return {}


def _typed(argv: list, option: str) -> str | None:
    """The value the user typed for ``option`` (its last occurrence), or None."""
    found = None
    for i, token in enumerate(argv):
        if token == option and i + 1 < len(argv):
            found = argv[i + 1]
        elif token.startswith(option + "="):
            found = token[len(option) + 1:]
    return found


def _python_names_as_typed(message: str, options: dict) -> str:
    """``message`` with the command's parameter names that only Python spells (those with an
    underscore: ``label_column='z'``) said as options (``--label-column 'z'``).

    Names without an underscore are left alone: ``labels`` or ``data`` are also plain words
    of a message ("labels must be whole numbers"), and some messages name the Python
    spelling beside the option on purpose (``pass labels=1, --labels 1``).
    """
    for dest, option in options.items():
        if "_" in dest:
            message = re.sub(rf"(?<![\w.'\"/-]){re.escape(dest)}(?:=|\b)",
                             lambda m, option=option: option + (" " if m.group().endswith("=") else ""), message)
    return message


def as_typed(exc: GradlabError, parser, command, argv: list) -> str:
    """The library's message about an argument, said again with the option the user typed:
    ``--lambda must be a finite real number >= 0; got --lambda -1`` for ``lam ... lam=-1.0``."""
    options = _options(parser, command)
    option = options.get(getattr(exc, "argument", None))
    if option is None or not hasattr(exc, "accepted"):
        return _python_names_as_typed(str(exc), options)
    typed = _typed(argv, option)
    got = f"{option} {typed}" if typed is not None else exc.shown
    return f"{option} must be {exc.accepted}; got {got}"


#: One line per command: the CLI's subcommands in the order --help lists them.
COMMANDS = [
    add_compare,
    add_check,
    add_train,
    add_predict,
    add_plot,
    add_explain,
    add_steps,
]


def build_parser() -> argparse.ArgumentParser:
    """The ``gradlab`` argument parser with every command of :data:`COMMANDS`."""
    parser = Parser(
        prog="gradlab",
        description=(
            "Cross-check neural-network gradients: hand-written back-propagation, finite "
            "differences and jax.grad of one regularised cost, side by side."
        ),
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gradlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def _one_line(text: str) -> str:
    """``text`` with its line breaks folded, so a message stays one line on stderr."""
    return " ".join(str(text).split()) or "(no message)"


def main(argv=None) -> int:
    """Entry point of the ``gradlab`` console script; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        One of :data:`gradlab.cli.status.EXIT_STATUSES`. Every failure is reported as one line on stderr:
        ``gradlab: error: ...`` for bad input (status 2), ``gradlab: internal error: ...``
        for a bug in gradlab (status 70; with ``GRADLAB_DEBUG=1`` the traceback instead).
    """
    _safe_output()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise GradlabError(
                f"a command is required, one of {', '.join(_command_names(parser))} (see gradlab --help)"
            )
        mode = True if getattr(args, "progress", False) else False if getattr(args, "quiet", False) else None
        with _sigterm_interrupts(), _progress.shown(mode):
            return args.run(args)
    except GradlabError as exc:
        if caused_by_interrupt(exc):
            return _interrupted(exc)
        message = as_typed(exc, parser, getattr(args, "command", None), argv)
        print(f"gradlab: error: {_one_line(message)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except BrokenPipeError:
        # The reader went away (`gradlab compare | head`): stop quietly. Point stdout at
        # devnull so that the interpreter's final flush does not raise again.
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except MemoryError as exc:
        # Not a bug but a request too large for this machine: the user can ask for less.
        detail = f" ({_one_line(exc)})" if str(exc) else ""
        print(f"gradlab: error: out of memory{detail}; try smaller --sizes, --hidden, "
              "--examples or data", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and _cwd_gone():
            # A relative path that no gradlab check resolved (a library's own abspath).
            print("gradlab: error: the current folder no longer exists (deleted or moved), so relative "
                  "paths cannot be used; cd to an existing folder", file=sys.stderr)
            return EXIT_USAGE
        # Files gradlab opens turn their OSErrors into GradlabErrors naming the file; what
        # is left is I/O no option names, such as stdout on a full disk.
        _discard_stdout()
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"gradlab: error: input/output error: {exc.strerror or _one_line(exc)}{where}", file=sys.stderr)
        return EXIT_IO
    except Exception as exc:  # the last line of defence: a bug in gradlab, never a bare traceback
        if caused_by_interrupt(exc):
            return _interrupted(exc)
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            traceback.print_exc()
        else:
            print(f"gradlab: internal error: {type(exc).__name__}: {_one_line(exc)} (a bug in gradlab; "
                  f"run with {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return EXIT_SOFTWARE


def _interrupted(exc: BaseException) -> int:
    """One line: which signal, and what the long work had done and had not when it came."""
    cause, seen = exc, set()
    while cause is not None and not isinstance(cause, KeyboardInterrupt) and id(cause) not in seen:
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    terminated = isinstance(cause, Terminated)
    name = "SIGTERM" if terminated else "Ctrl-C"
    open_tasks = _progress.stopped(exc)
    if open_tasks:
        during = ", in it ".join(f"{what}: {done}" for what, done in open_tasks)
        print(f"gradlab: interrupted by {name} during {during}; no result printed", file=sys.stderr)
    else:
        print(f"gradlab: interrupted by {name}", file=sys.stderr)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM raises :class:`Terminated` inside the block (as Ctrl-C raises KeyboardInterrupt);
    a SIGTERM that was being ignored when gradlab started stays ignored."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _safe_output() -> None:
    """Let stdout and stderr print any text, whatever their encoding.

    Reports hold characters such as λ, ≤ and ε, and paths hold whatever the user named; on a
    terminal or pipe set to ASCII (PYTHONIOENCODING=ascii, some CI systems) printing them
    raised UnicodeEncodeError. Characters the encoding lacks are written as \\u escapes.
    """
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict":
            try:
                stream.reconfigure(errors="backslashreplace")
            except (AttributeError, ValueError, OSError):  # not a reconfigurable text stream
                pass


def _cwd_gone() -> bool:
    """Whether the working folder was deleted (every relative path then fails)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


def _discard_stdout() -> None:
    """Point stdout at devnull, so that the interpreter's final flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no stdout at all (closed, or None)
        pass


def _command_names(parser) -> list[str]:
    """The subcommands of ``parser``, in the order --help lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []

