"""The ``gradlab`` command line: thin commands over the library.

Exit status: 0 success / all gradients agree; 1 a disagreement (a result, not an error);
2 a usage error, reported as one line on stderr; 70 an internal error (a bug in gradlab,
one line on stderr; ``GRADLAB_DEBUG=1`` prints the traceback); 130 interrupted (Ctrl-C);
141 the reader of the output went away.

Importing this module imports neither jax nor matplotlib: ``gradlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import traceback

from gradlab._errors import GradlabError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse's hook
        raise GradlabError(f"{self.prog}: {message} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        # argparse joins unrecognised arguments with spaces, so '' or ' ' vanish from the
        # message; their reprs show exactly what was not understood.
        args, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error("unrecognized arguments: " + " ".join(_short(e) for e in extras))
        return args


#: Longest rendering of a user's value in a message: enough to recognise it, and a 10,000
#: character argument still gives a readable line.
_SHOW_CHARS = 60


def _short(text: str) -> str:
    """``repr(text)``, cut to :data:`_SHOW_CHARS` characters."""
    shown = repr(text)
    return shown if len(shown) <= _SHOW_CHARS else shown[: _SHOW_CHARS - 4] + "...'"


#: Integers on the command line are ASCII digits: Python's int() also takes '١٢' (Arabic-Indic
#: digits, = 12) and '1_000', and a user who typed either meant something else or nothing.
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: Decimal numbers as a person writes them (1, 0.5, .5, 1e-3); not float()'s 'nan', 'inf',
#: 'infinity' or non-ASCII digits.
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
#: Integers are handed to numpy and scipy, whose integers are 64-bit.
INT_MAX = 2**63 - 1


def _integer(text: str) -> int:
    """An argparse type: an integer in ASCII digits within 64 bits (ranges are the library's job)."""
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        raise argparse.ArgumentTypeError(f"must be an integer such as 5 (digits 0-9); got {_short(text)}")
    value = int(stripped)
    if abs(value) > INT_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer within 64 bits (|n| <= {INT_MAX}); got {_short(text)}")
    return value


def _number(text: str) -> float:
    """An argparse type: a finite decimal number such as 0.5 or 1e-3 (ranges are the library's job)."""
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        raise argparse.ArgumentTypeError(f"must be a finite number such as 0.5 or 1e-3; got {_short(text)}")
    value = float(stripped)
    if not math.isfinite(value):  # 1e309 overflows to inf
        raise argparse.ArgumentTypeError(f"must be a finite number (at most {sys.float_info.max:.6g} in size); "
                                         f"got {_short(text)}")
    return value


def _integer_list(text: str, name: str, example: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",")]
    if not all(_INTEGER.fullmatch(part) for part in parts):
        raise argparse.ArgumentTypeError(
            f"{name} must be comma-separated integers such as {example}; got {_short(text)}"
        )
    values = tuple(int(part) for part in parts)
    if any(abs(v) > INT_MAX for v in values):
        raise argparse.ArgumentTypeError(f"{name} must be integers within 64 bits (|n| <= {INT_MAX}); got {_short(text)}")
    return values


def _sizes(text: str) -> tuple[int, ...]:
    """Parse ``3,5,3`` into a tuple of ints (validation of the values is Network's job)."""
    return _integer_list(text, "sizes", "3,5,3")


def _output_file(text: str) -> str:
    """An argparse type: a file gradlab can write (checked before any work, by a trial write)."""
    from gradlab._files import check_writable

    try:
        return check_writable(text, name="--out")
    except GradlabError as exc:
        # argparse would replace a ValueError's message with "invalid value"; keep ours.
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--out: ")) from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _add_problem_args(p, *, activation: bool = True) -> None:
    """Options of the seed-style check problem shared by compare, explain and steps."""
    p.add_argument("--sizes", type=_sizes, default=(3, 5, 3), help="layer sizes, inputs first (default 3,5,3)")
    if activation:
        p.add_argument("--activation", default="sigmoid", help="hidden activation: sigmoid, tanh or relu (default sigmoid)")
    p.add_argument("--lambda", dest="lam", type=_number, default=0.0, help="regularisation strength lambda >= 0 (default 0)")
    p.add_argument("--examples", type=_integer, default=5, help="number of examples m (default 5)")
    p.add_argument("--init", choices=("debug", "random"), default="debug",
                   help="weights: the seed's deterministic sin(1..n)/10 (debug) or uniform +-sqrt(6/(in+out)) (random)")
    p.add_argument("--seed", type=_integer, default=0, help="seed for --init random (default 0)")


def _problem_and_params(args):
    """The check problem the options describe: (problem, params, info for the report)."""
    import gradlab

    net = gradlab.Network(args.sizes, getattr(args, "activation", "sigmoid"))
    problem = gradlab.debug_problem(net, args.examples, args.lam)
    if args.init == "debug":
        return problem, gradlab.debug_init(net), {"init": args.init}
    return problem, gradlab.random_init(net, args.seed), {"init": args.init, "seed": args.seed}


def _add_force(p, what: str) -> None:
    """``--force``: run finite differences whose estimated time is above gradlab's limit."""
    p.add_argument("--force", action="store_true",
                   help=f"run {what} even when the estimated time is above gradlab's limit (a minute)")


def _forcible(run):
    """``run(args)`` with the time guards of finite differences lifted when ``--force`` is given."""

    def forcible(args) -> int:
        from gradlab._resources import forced

        with forced(args.force):
            return run(args)

    return forcible


# ------------------------------------------------------------------------------- compare


def _add_compare(sub) -> None:
    from gradlab.sources import SOURCES

    p = sub.add_parser(
        "compare",
        help="compute the gradient with several sources side by side and judge each pair",
        description=(
            "Compute the gradient of the regularised cross-entropy cost with each source and "
            "compare every pair, per weight matrix and overall. The defaults reproduce the seed "
            "program's gradient check: 5 examples, debug weights sin(1..n)/10, X = debug "
            "weights of shape (m, n_inputs), labels i mod K for i = 1..m. "
            "Exit status: 0 all pairs agree, 1 some pair disagrees, 2 usage error."
        ),
    )
    _add_problem_args(p)
    p.add_argument("--sources", type=_names, default=("backprop", "jax", "numeric"),
                   help="comma-separated gradient sources, at least two, from: " + ", ".join(SOURCES)
                   + " (default all)")
    p.add_argument("--show", type=_integer, default=0, help="list the first N gradient entries side by side")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_force(p, "the numeric sources")
    p.set_defaults(run=_forcible(_run_compare))


def _run_compare(args) -> int:
    import gradlab

    problem, params, info = _problem_and_params(args)
    report = gradlab.compare(problem, params, args.sources, show=args.show, info=info)
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1


# ------------------------------------------------------------------------------- explain


def _add_explain(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="walk the network from the output down: backprop's deltas next to jax's dJ/dz",
        description=(
            "Show, layer by layer from the output down, that back-propagation's deltas are the "
            "vector-Jacobian products reverse-mode autodiff computes: z and a from the shared "
            "forward pass, backprop's delta next to m times jax's dJ/dz (J is a mean over m "
            "examples), and backprop's dJ/dTheta next to jax.grad's. Same problem as 'gradlab "
            "compare'. Exit status: 0 all agree, 1 some layer disagrees, 2 usage error."
        ),
    )
    _add_problem_args(p, activation=False)  # the walk-through is written for sigmoid units
    p.add_argument("--example", type=_integer, default=0, help="which example the tables show, 0..m-1 (default 0)")
    p.add_argument("--jaxpr", action="store_true", help="also print the cost's jaxpr with each step marked")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_run_explain)


def _run_explain(args) -> int:
    from gradlab.explain import explain

    problem, params, info = _problem_and_params(args)
    report = explain(problem, params, example=args.example, jaxpr=args.jaxpr, info=info)
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1


# ------------------------------------------------------------ train, predict, plot (issue 3)
# The work is done in gradlab/_train_cli.py, imported when one of these commands runs.

_DATA_HELP = ("digits (the shipped 8x8 UCI digits), FILE.mat (keys X, y), FILE.csv (one example per row, "
              "the label last or in --label-column) or IDX images (.idx or .idx.gz, with --labels)")


def _hidden(text: str) -> tuple[int, ...]:
    """Parse ``25`` or ``64,32`` (hidden layer sizes); ``none`` for no hidden layer."""
    if text.strip().lower() == "none":
        return ()
    return _integer_list(text, "hidden", "25 or 64,32 (or none)")


def _add_data_args(p, *, default="digits") -> None:
    p.add_argument("--data", default=default, help=f"{_DATA_HELP} (default {default})")
    p.add_argument("--labels", help="IDX labels file (.idx or .idx.gz) for IDX images")
    p.add_argument("--label-column", type=_label_column, metavar="N|NAME",
                   help="the labels' column of a .csv file: its number counted from 1 (-1 the last, "
                   "the default) or its header name")


def _label_column(text: str):
    """``3`` or ``-1`` (a column number) or a header name."""
    try:
        return int(text)
    except ValueError:
        return text


def _add_train(sub) -> None:
    from gradlab.sources import SOURCES
    from gradlab.trainer import OPTIMISERS

    p = sub.add_parser(
        "train",
        help="train a network on digits (or your .mat / IDX data) with any gradient source",
        description=(
            "Train a sigmoid network with scipy's CG (the seed's method) or L-BFGS, taking the "
            "gradient from the source you name. The data are split into training and test parts "
            "(stratified, deterministic); --scale standardises the inputs with statistics of the "
            "training part only. Progress goes to stderr. Ctrl-C stops training, keeps the best "
            "parameters so far and still writes --out. Exit status: 0 done, 1 the optimiser "
            "stopped early (e.g. precision loss), 2 usage error, 130 interrupted."
        ),
    )
    _add_data_args(p)
    p.add_argument("--hidden", type=_hidden, default=(25,), help="hidden layer sizes, e.g. 25 or 64,32 (default 25)")
    p.add_argument("--grad-source", default="backprop", choices=tuple(SOURCES), help="gradient source (default backprop)")
    p.add_argument("--method", default="cg", choices=tuple(OPTIMISERS),
                   help="; ".join(f"{k}: {o.description}" for k, o in OPTIMISERS.items()) + " (default cg)")
    p.add_argument("--maxiter", type=_integer, default=100, help="iterations (default 100)")
    p.add_argument("--lambda", dest="lam", type=_number, default=1.0, help="regularisation strength (default 1)")
    p.add_argument("--seed", type=_integer, default=0, help="seed of the initial weights and the split (default 0)")
    p.add_argument("--scale", action="store_true", help="standardise inputs (fitted on the training part)")
    p.add_argument("--test-fraction", type=_number, default=0.2, help="share held out for testing, in [0, 1) (default 0.2)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the jax source (float32 is faster on accelerators); backprop "
                   "and numeric always compute in float64 (default float64)")
    p.add_argument("--force", action="store_true", help="let --grad-source numeric train a large network")
    p.add_argument("--out", type=_output_file, help="write the trained model to this .npz file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(run=_run_train)


def _run_train(args) -> int:
    from gradlab._train_cli import run_train

    return run_train(args)


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="accuracy of a saved model on data (and its predictions with --json)",
        description="Load a model written by `gradlab train --out` and score it on data.",
    )
    p.add_argument("model", help="model file (.npz) written by gradlab train --out")
    _add_data_args(p)
    p.add_argument("--split", choices=("all", "train", "test"), default="all",
                   help="score all rows, or the training / test part of the split the model was trained with (default all)")
    p.add_argument("--json", action="store_true", help="print accuracy and every prediction as JSON")
    p.set_defaults(run=_run_predict)


def _run_predict(args) -> int:
    from gradlab._train_cli import run_predict

    return run_predict(args)


def _add_plot(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="figures: a grid of digits, a model's hidden-unit weights, its training curve",
        description=(
            "digits: 100 random examples as images (--data); weights MODEL: each hidden unit's "
            "incoming weights as an image; history MODEL: cost and gradient norm per iteration. "
            "Writes the figure as .png, .pdf or .svg, as --out names it (matplotlib, no window)."
        ),
    )
    p.add_argument("figure", choices=("digits", "weights", "history"), help="which figure")
    p.add_argument("model", nargs="?", help="model file (.npz), for weights and history")
    _add_data_args(p)
    p.add_argument("--seed", type=_integer, default=0, help="which random digits (default 0)")
    p.add_argument("--out", type=_output_file, required=True, help="figure file to write: .png, .pdf or .svg")
    p.set_defaults(run=_run_plot)


def _run_plot(args) -> int:
    from gradlab._train_cli import run_plot

    return run_plot(args)


# --------------------------------------------------------------------------------- check


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check",
        help="check your gradient function: who is wrong, where, and why",
        description=(
            "Check a gradient function against jax and finite differences of gradlab's cost, on "
            "copies of its arguments (writes into them are reported). Findings name the layer "
            "(1 = Theta1), the rows (units) and columns (inputs, 0 = bias), the values and the "
            "likely slip. Exit status: 0 pass, 1 a problem found, 2 usage or load error."
        ),
    )
    p.add_argument("target", help="PATH.py:FUNC or module:FUNC, the gradient function to check")
    p.add_argument("--signature", choices=("gradlab", "seed"), default="gradlab",
                   help="gradlab: f(problem, params); seed: nnGradient(nn_params, input_layer_size, "
                        "hidden_layer_size, num_labels, X, y, Lambda) (default gradlab)")
    p.add_argument("--cost", default=None, metavar="FUNC",
                   help="also check this cost function (same signature; a name in the same file, or PATH.py:FUNC)")
    p.add_argument("--sizes", type=_sizes, default=(3, 5, 3), help="layer sizes (default 3,5,3)")
    p.add_argument("--lambda", dest="lam", type=_number, default=1.0,
                   help="lambda for the check, >= 0; lambda = 0 is tried too (default 1)")
    p.add_argument("--examples", type=_integer, default=5, help="number of examples m (default 5)")
    p.add_argument("--seed", type=_integer, default=0, help="seed of the weights and data (default 0)")
    p.add_argument("--weight-scale", dest="weight_scale", type=_number, default=1.0,
                   help="multiply the random weights (large values saturate the sigmoids; default 1)")
    p.add_argument("--mode", choices=("auto", "full", "fast"), default="auto",
                   help="full: every entry; fast: random directions and bisection; auto: full for small "
                        "networks (default auto)")
    p.add_argument("--shrink", action="store_true",
                   help="search (hypothesis) for the smallest failing case and print a reproducer")
    p.add_argument("--max-examples", dest="max_examples", type=_integer, default=200,
                   help="cases --shrink tries (default 200)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_force(p, "the full check's finite differences")
    p.set_defaults(run=_forcible(_run_check))


def _run_check(args) -> int:
    from gradlab.check import check, load_function, shrink

    fn = load_function(args.target, "target")
    cost_fn = None
    if args.cost is not None:
        where = args.target.rpartition(":")[0]
        cost_fn = load_function(args.cost if ":" in args.cost else f"{where}:{args.cost}", "--cost")
    report = None
    if args.shrink:
        report = shrink(fn, signature=args.signature, cost_fn=cost_fn, max_examples=args.max_examples,
                        target=args.target)
        if report is None and not args.json:
            print(f"--shrink: no failing case in {args.max_examples} tried; checking the given case")
    if report is None:
        report = check(fn, args.sizes, signature=args.signature, cost_fn=cost_fn, lam=args.lam,
                       examples=args.examples, seed=args.seed, weight_scale=args.weight_scale, mode=args.mode)
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1
# --------------------------------------------------------------------------------- steps


def _add_steps(sub) -> None:
    p = sub.add_parser(
        "steps",
        help="error of forward, central, complex-step and Richardson derivatives as the step runs 1e-1..1e-16",
        description=(
            "Take the gradient by forward differences, central differences, Richardson "
            "extrapolation and the complex step at steps from 1e-1 to 1e-16 and print each "
            "one's relative error against jax: the V of truncation against round-off. "
            "--out also draws it as a labelled log-log figure. Problem as in 'gradlab compare'."
        ),
    )
    _add_problem_args(p)
    p.add_argument("--out", type=_output_file, default=None, help="write the figure here (.png, .pdf or .svg)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    _add_force(p, "the step curve")
    p.set_defaults(run=_forcible(_run_steps))


def _run_steps(args) -> int:
    from gradlab.steps import plot_steps, step_curve

    problem, params, _ = _problem_and_params(args)
    report = step_curve(problem, params)
    if args.out is not None:
        plot_steps(report, args.out)
    print(report.to_json() if args.json else report)
    if args.out is not None and not args.json:
        print(f"figure written to {args.out}")
    return 0


# ----------------------------------------------------------------------------- commands

#: One line per command: the CLI's subcommands in the order --help lists them.
COMMANDS = [
    _add_compare,
    _add_check,
    _add_train,
    _add_predict,
    _add_plot,
    _add_explain,
    _add_steps,
]


#: Exit statuses of ``gradlab`` (listed in ``gradlab --help``).
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
#: 128 + SIGTERM: ``gradlab train`` stopped by ``kill PID`` (it still writes --out).
EXIT_TERMINATED = 143
#: The exit statuses main() can return, in the order --help lists them.
EXIT_STATUSES = (EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_SOFTWARE, EXIT_IO, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE,
                 EXIT_TERMINATED)

#: Set (to anything but empty or 0) to see the traceback of an internal error.
DEBUG_ENV = "GRADLAB_DEBUG"

_EPILOG = f"""\
exit status:
  {EXIT_OK}    success; every pair of gradients agrees; no problem found
  {EXIT_FOUND}    a result, not an error: a disagreement, a problem found, training stopped early
  {EXIT_USAGE}    usage error: bad option, value or file (one line on stderr: gradlab: error: ...)
  {EXIT_SOFTWARE}   internal error, a bug in gradlab (one line on stderr; {DEBUG_ENV}=1 prints the traceback)
  {EXIT_IO}   the system refused a read or write no option names (e.g. stdout on a full disk)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); gradlab train still writes --out
  {EXIT_BROKEN_PIPE}  the reader of the output went away (gradlab ... | head)
  {EXIT_TERMINATED}  gradlab train stopped by SIGTERM (kill PID); it still writes --out
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``gradlab`` argument parser with every command of :data:`COMMANDS`."""
    parser = _Parser(
        prog="gradlab",
        description=(
            "Cross-check neural-network gradients: hand-written back-propagation, finite "
            "differences and jax.grad of one regularised cost, side by side."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from gradlab import __version__

    parser.add_argument("--version", action="version", version=f"gradlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
        One of :data:`EXIT_STATUSES`. Every failure is reported as one line on stderr:
        ``gradlab: error: ...`` for bad input (status 2), ``gradlab: internal error: ...``
        for a bug in gradlab (status 70; with ``GRADLAB_DEBUG=1`` the traceback instead).
    """
    _safe_output()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise GradlabError(
                f"a command is required, one of {', '.join(_command_names(parser))} (see gradlab --help)"
            )
        return args.run(args)
    except GradlabError as exc:
        if caused_by_interrupt(exc):
            return _interrupted()
        print(f"gradlab: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return _interrupted()
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
            return _interrupted()
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            traceback.print_exc()
        else:
            print(f"gradlab: internal error: {type(exc).__name__}: {_one_line(exc)} (a bug in gradlab; "
                  f"run with {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        return EXIT_SOFTWARE


def _interrupted() -> int:
    print("gradlab: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
