"""The ``gradlab`` command line: thin commands over the library.

Exit status: 0 success / all gradients agree; 1 a disagreement (a result, not an error);
2 a usage error, reported as one line on stderr.

Importing this module imports neither jax nor matplotlib: ``gradlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from gradlab._errors import GradlabError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse's hook
        raise GradlabError(f"{self.prog}: {message} (see {self.prog} --help)")


def _sizes(text: str) -> tuple[int, ...]:
    """Parse ``3,5,3`` into a tuple of ints (validation of the values is Network's job)."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"sizes must be comma-separated integers such as 3,5,3; got {text!r}"
        ) from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


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
    p.add_argument("--sizes", type=_sizes, default=(3, 5, 3), help="layer sizes, inputs first (default 3,5,3)")
    p.add_argument("--lambda", dest="lam", type=float, default=0.0, help="regularisation strength lambda >= 0 (default 0)")
    p.add_argument("--examples", type=int, default=5, help="number of examples m (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed for --init random (default 0)")
    p.add_argument("--init", choices=("debug", "random"), default="debug",
                   help="weights: the seed's deterministic sin(1..n)/10 (debug) or uniform +-sqrt(6/(in+out)) (random)")
    p.add_argument("--sources", type=_names, default=("backprop", "jax", "numeric"),
                   help="comma-separated gradient sources, at least two, from: " + ", ".join(SOURCES)
                   + " (default all)")
    p.add_argument("--activation", default="sigmoid", help="hidden activation: sigmoid, tanh or relu (default sigmoid)")
    p.add_argument("--show", type=int, default=0, help="list the first N gradient entries side by side")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_run_compare)


def _run_compare(args) -> int:
    import gradlab

    problem = gradlab.debug_problem(gradlab.Network(args.sizes, args.activation), args.examples, args.lam)
    if args.init == "debug":
        params = gradlab.debug_init(problem.network)
    else:
        params = gradlab.random_init(problem.network, args.seed)
    info = {"init": args.init} if args.init == "debug" else {"init": args.init, "seed": args.seed}
    report = gradlab.compare(problem, params, args.sources, show=args.show, info=info)
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
    p.add_argument("--sizes", type=_sizes, default=(3, 5, 3), help="layer sizes, inputs first (default 3,5,3)")
    p.add_argument("--activation", default="sigmoid", help="hidden activation: sigmoid, tanh or relu (default sigmoid)")
    p.add_argument("--lambda", dest="lam", type=float, default=0.0, help="regularisation strength lambda >= 0 (default 0)")
    p.add_argument("--examples", type=int, default=5, help="number of examples m (default 5)")
    p.add_argument("--init", choices=("debug", "random"), default="debug", help="weights: debug sin(1..n)/10 or random")
    p.add_argument("--seed", type=int, default=0, help="seed for --init random (default 0)")
    p.add_argument("--out", default=None, help="write the figure here (.png, .pdf or .svg)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(run=_run_steps)


def _run_steps(args) -> int:
    import gradlab
    from gradlab.steps import plot_steps, step_curve

    net = gradlab.Network(args.sizes, args.activation)
    problem = gradlab.debug_problem(net, args.examples, args.lam)
    if args.init == "debug":
        params = gradlab.debug_init(net)
    else:
        params = gradlab.random_init(net, args.seed)
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
    _add_steps,
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gradlab",
        description=(
            "Cross-check neural-network gradients: hand-written back-propagation, finite "
            "differences and jax.grad of one regularised cost, side by side."
        ),
    )
    from gradlab import __version__

    parser.add_argument("--version", action="version", version=f"gradlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``gradlab`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return args.run(args)
    except GradlabError as exc:
        print(f"gradlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
