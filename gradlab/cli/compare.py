"""``gradlab compare``, ``gradlab explain`` and ``gradlab steps``: one check problem, three views of it.

Each command has its ``add_*`` (its options, on the parser) and its ``run_*`` (the work,
thin over the library, which is imported when the command runs).
"""

from __future__ import annotations

from gradlab._errors import GradlabError
from gradlab.cli.args import add_force, add_progress, forcible, integer, names, number, output_file, short, sizes


def add_problem_args(p, *, activation: bool = True) -> None:
    """Options of the seed-style check problem shared by compare, explain and steps."""
    p.add_argument("--sizes", type=sizes, default=(3, 5, 3), help="layer sizes, inputs first (default 3,5,3)")
    if activation:
        p.add_argument("--activation", default="sigmoid", help="hidden activation: sigmoid, tanh or relu (default sigmoid)")
    p.add_argument("--lambda", dest="lam", type=number, default=0.0, help="regularisation strength lambda >= 0 (default 0)")
    p.add_argument("--examples", type=integer, default=5, help="number of examples m (default 5)")
    p.add_argument("--init", choices=("debug", "random"), default="debug",
                   help="weights: the seed's deterministic sin(1..n)/10 (debug) or uniform +-sqrt(6/(in+out)) (random)")
    p.add_argument("--seed", type=integer, default=0,
                   help="seed for --init random (and for compare --order 2's random directions; default 0)")


def problem_and_params(args):
    """The check problem the options describe: (problem, params, info for the report)."""
    import gradlab

    net = gradlab.Network(args.sizes, getattr(args, "activation", "sigmoid"))
    problem = gradlab.debug_problem(net, args.examples, args.lam)
    if args.init == "debug":
        return problem, gradlab.debug_init(net), {"init": args.init}
    return problem, gradlab.random_init(net, args.seed), {"init": args.init, "seed": args.seed}


# ------------------------------------------------------------------------------- compare


def add_compare(sub) -> None:
    """The ``compare`` command and its options."""
    from gradlab.sources import SOURCES

    from gradlab.compare import FULL_HESSIAN_MAX_PARAMS
    from gradlab.sources.second_order import HVP_SOURCES

    p = sub.add_parser(
        "compare",
        help="compute the gradient (or H v) with several sources side by side and judge each pair",
        description=(
            "Compute the gradient of the regularised cross-entropy cost with each source and "
            "compare every pair, per weight matrix and overall. The defaults reproduce the seed "
            "program's gradient check: 5 examples, debug weights sin(1..n)/10, X = debug "
            "weights of shape (m, n_inputs), labels i mod K for i = 1..m. "
            "--order 2 compares Hessian-vector products H v instead (Pearlmutter's R-operator, "
            "jax's jvp of grad, differences of the gradient along v), checks the symmetry "
            "u.Hv = v.Hu, and for networks of at most " + str(FULL_HESSIAN_MAX_PARAMS) + " parameters "
            "assembles the full Hessian and reports its eigenvalues' signs. "
            "Exit status: 0 all pairs agree, 1 some pair disagrees, 2 usage error."
        ),
    )
    add_problem_args(p)
    p.add_argument("--order", type=integer, default=1,
                   help="1: gradients; 2: Hessian-vector products H v (default 1)")
    p.add_argument("--direction", default="random", metavar="FILE.npy|random|ones",
                   help="--order 2: the vector v -- a random unit vector drawn from --seed (default), all "
                        "ones, or a .npy file holding one number per parameter")
    p.add_argument("--sources", type=names, default=("backprop", "jax", "numeric"),
                   help="comma-separated sources, at least two (default backprop,jax,numeric); gradients: "
                   + ", ".join(SOURCES) + "; with --order 2: " + ", ".join(HVP_SOURCES))
    p.add_argument("--show", type=integer, default=0, help="list the first N gradient entries side by side")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_force(p, "the numeric sources")
    add_progress(p)
    p.set_defaults(run=forcible(run_compare))


def run_compare(args) -> int:
    """``gradlab compare``: print the report; 0 when every pair agrees, else 1."""
    import gradlab

    from gradlab.sources import SOURCES
    from gradlab.sources.second_order import HVP_SOURCES

    known, kind = (HVP_SOURCES, "Hessian-vector product sources") if args.order == 2 else (SOURCES, "gradient sources")
    unknown = [name for name in args.sources if name not in known]
    if unknown and args.order in (1, 2):
        # Named here, not by the library: its message also offers a callable, which no
        # command line can pass.
        raise GradlabError(f"--sources must be comma-separated names of {kind}, from: "
                           f"{', '.join(known)}; got {unknown[0]!r} in --sources {','.join(args.sources)}")
    problem, params, info = problem_and_params(args)
    if args.order == 2:
        report = gradlab.compare(problem, params, args.sources, show=args.show, info=info, order=2,
                                 direction=load_direction(args.direction), seed=args.seed)
    else:
        if args.direction != "random":
            raise GradlabError(f"--direction is for --order 2 (H v along a direction); got --direction "
                               f"{short(args.direction)} with --order {args.order}")
        report = gradlab.compare(problem, params, args.sources, show=args.show, info=info, order=args.order)
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1


def load_direction(text: str):
    """``--direction``: a name the library knows ("random", "ones") or the array in a .npy file."""
    import numpy as np

    if text in ("random", "ones"):
        return text
    if not text.endswith(".npy"):
        raise GradlabError(f"--direction must be random, ones or a .npy file; got --direction {short(text)}")
    try:
        with open(text, "rb") as f:
            return np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise GradlabError(f"--direction: cannot read {text} as a .npy array ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'no message'})") from None


# ------------------------------------------------------------------------------- explain


def add_explain(sub) -> None:
    """The ``explain`` command and its options."""
    p = sub.add_parser(
        "explain",
        help="walk the network from the output down: backprop's deltas next to jax's dJ/dz",
        description=(
            "Show, layer by layer from the output down, that back-propagation's deltas are the "
            "vector-Jacobian products reverse-mode autodiff computes: z and a from the shared "
            "forward pass, backprop's delta next to m times jax's dJ/dz (J is a mean over m "
            "examples), and backprop's dJ/dTheta next to jax.grad's. Same problem as 'gradlab "
            "compare'. --order 2 walks Pearlmutter's R-pass instead: every R-quantity (Rz, Ra, "
            "Rdelta, the blocks of H v) next to jax.jvp of the same quantity along the same v. "
            "Exit status: 0 all agree, 1 some layer disagrees, 2 usage error."
        ),
    )
    add_problem_args(p, activation=False)  # the walk-through is written for sigmoid units
    p.add_argument("--order", type=integer, default=1,
                   help="1: back-propagation beside jax.grad; 2: the R-pass beside jax.jvp (default 1)")
    p.add_argument("--direction", default="random", metavar="FILE.npy|random|ones",
                   help="--order 2: the vector v (default a random unit vector drawn from --seed)")
    p.add_argument("--example", type=integer, default=0, help="which example the tables show, 0..m-1 (default 0)")
    p.add_argument("--jaxpr", action="store_true", help="also print the cost's jaxpr with each step marked")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_explain)


def run_explain(args) -> int:
    """``gradlab explain``: print the walk-through; 0 when every layer agrees, else 1."""
    from gradlab.explain import explain

    problem, params, info = problem_and_params(args)
    if args.order == 2:
        report = explain(problem, params, example=args.example, jaxpr=args.jaxpr, info=info, order=2,
                         direction=load_direction(args.direction), seed=args.seed)
    else:
        if args.direction != "random":
            raise GradlabError(f"--direction is for --order 2 (the R-pass along a direction); got --direction "
                               f"{short(args.direction)} with --order {args.order}")
        report = explain(problem, params, example=args.example, jaxpr=args.jaxpr, info=info, order=args.order)
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1


# --------------------------------------------------------------------------------- steps


def add_steps(sub) -> None:
    """The ``steps`` command and its options."""
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
    add_problem_args(p)
    p.add_argument("--out", type=output_file, default=None, help="write the figure here (.png, .pdf or .svg)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    add_force(p, "the step curve")
    add_progress(p)
    p.set_defaults(run=forcible(run_steps))


def run_steps(args) -> int:
    """``gradlab steps``: print the step curve (and draw it with --out); always 0."""
    from gradlab.steps import plot_steps, step_curve

    problem, params, _ = problem_and_params(args)
    report = step_curve(problem, params)
    if args.out is not None:
        plot_steps(report, args.out)
    print(report.to_json() if args.json else report)
    if args.out is not None and not args.json:
        print(f"wrote {args.out}")
    return 0
