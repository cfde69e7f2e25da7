"""``gradlab check``: check the user's gradient function (thin over :mod:`gradlab.check`)."""

from __future__ import annotations

from gradlab.cli.args import add_force, add_progress, forcible, integer, number, sizes


def add_check(sub) -> None:
    """The ``check`` command and its options."""
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
    p.add_argument("--sizes", type=sizes, default=(3, 5, 3), help="layer sizes (default 3,5,3)")
    p.add_argument("--lambda", dest="lam", type=number, default=1.0,
                   help="lambda for the check, >= 0; lambda = 0 is tried too (default 1)")
    p.add_argument("--examples", type=integer, default=5, help="number of examples m (default 5)")
    p.add_argument("--seed", type=integer, default=0, help="seed of the weights and data (default 0)")
    p.add_argument("--weight-scale", dest="weight_scale", type=number, default=1.0,
                   help="multiply the random weights (large values saturate the sigmoids; default 1)")
    p.add_argument("--mode", choices=("auto", "full", "fast"), default="auto",
                   help="full: every entry; fast: random directions and bisection; auto: full for small "
                        "networks (default auto)")
    p.add_argument("--shrink", action="store_true",
                   help="search (hypothesis) for the smallest failing case and print a reproducer")
    p.add_argument("--max-examples", dest="max_examples", type=integer, default=200,
                   help="cases --shrink tries (default 200)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_force(p, "the full check's finite differences")
    add_progress(p)
    p.set_defaults(run=forcible(run_check))


def run_check(args) -> int:
    """``gradlab check``: load the functions, check (or shrink), print; 0 on a pass, else 1."""
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
