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
    p.add_argument("--show", type=int, default=0, help="list the first N gradient entries side by side")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_run_compare)


def _run_compare(args) -> int:
    import gradlab

    problem = gradlab.debug_problem(args.sizes, args.examples, args.lam)
    if args.init == "debug":
        params = gradlab.debug_init(problem.network)
    else:
        params = gradlab.random_init(problem.network, args.seed)
    info = {"init": args.init} if args.init == "debug" else {"init": args.init, "seed": args.seed}
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
    p.add_argument("--sizes", type=_sizes, default=(3, 5, 3), help="layer sizes, inputs first (default 3,5,3)")
    p.add_argument("--example", type=int, default=0, help="which example the tables show, 0..m-1 (default 0)")
    p.add_argument("--lambda", dest="lam", type=float, default=0.0, help="regularisation strength lambda >= 0 (default 0)")
    p.add_argument("--examples", type=int, default=5, help="number of examples m (default 5)")
    p.add_argument("--init", choices=("debug", "random"), default="debug",
                   help="weights: deterministic sin(1..n)/10 (debug) or uniform +-sqrt(6/(in+out)) (random)")
    p.add_argument("--seed", type=int, default=0, help="seed for --init random (default 0)")
    p.add_argument("--jaxpr", action="store_true", help="also print the cost's jaxpr with each step marked")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_run_explain)


def _run_explain(args) -> int:
    import gradlab
    from gradlab.explain import explain

    problem = gradlab.debug_problem(args.sizes, args.examples, args.lam)
    if args.init == "debug":
        params = gradlab.debug_init(problem.network)
    else:
        params = gradlab.random_init(problem.network, args.seed)
    info = {"init": args.init} if args.init == "debug" else {"init": args.init, "seed": args.seed}
    report = explain(problem, params, example=args.example, jaxpr=args.jaxpr, info=info)
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1


# ----------------------------------------------------------------------------- commands

#: One line per command: the CLI's subcommands in the order --help lists them.
COMMANDS = [
    _add_compare,
    _add_explain,
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
