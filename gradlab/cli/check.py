"""``gradlab check``: check the user's gradient function (thin over :mod:`gradlab.check`)."""

from __future__ import annotations

from gradlab._errors import GradlabError
from gradlab.cli.args import add_force, forcible, integer, number, sizes


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
    p.add_argument("target", help="PATH.py:FUNC or module:FUNC, the gradient function to check (with --call also "
                                  "a class, or PATH.py / a module alone)")
    p.add_argument("--signature", choices=("gradlab", "seed"), default="gradlab",
                   help="gradlab: f(problem, params); seed: nnGradient(nn_params, input_layer_size, "
                        "hidden_layer_size, num_labels, X, y, Lambda) (default gradlab)")
    p.add_argument("--cost", default=None, metavar="FUNC",
                   help="also check this cost function (same signature; a name in the same file, or PATH.py:FUNC)")
    p.add_argument("--sizes", type=sizes, default=None, help="layer sizes (default 3,5,3, or those of --weights)")
    p.add_argument("--lambda", dest="lam", type=number, default=1.0,
                   help="lambda for the check, >= 0; lambda = 0 is tried too (default 1)")
    p.add_argument("--examples", type=integer, default=None,
                   help="number of examples m (default 5; with --data every row, or the first M)")
    p.add_argument("--seed", type=integer, default=0, help="seed of the weights and data (default 0)")
    p.add_argument("--weight-scale", dest="weight_scale", type=number, default=None,
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
    _add_convention_args(p)
    p.set_defaults(run=forcible(run_check))


def _add_convention_args(p) -> None:
    """How the function is called (templates, conventions) and where (the user's data and weights)."""
    g = p.add_argument_group("calling your code as it is, at your own point")
    g.add_argument("--call", default=None, metavar="EXPR",
                   help="a Python expression that returns the gradient, over params, sizes, input_layer_size, "
                        "hidden_layer_size, num_labels, X, y, y_col, Y, lam, m, Theta1..ThetaL and the module's "
                        "names, e.g. 'NeuralNet(sizes, X, y, lam).gradient(params)'")
    g.add_argument("--cost-call", dest="cost_call", default=None, metavar="EXPR",
                   help="the cost as such an expression, checked against gradlab's cost")
    g.add_argument("--labels", dest="first_label", type=integer, choices=(0, 1), default=0,
                   help="the first class label your function expects: 0 (0..K-1) or 1 (1..K, Octave's y == 1:K; "
                        "with --data label K is the digit 0); default 0")
    g.add_argument("--unroll", choices=("C", "F"), default="C",
                   help="how params and a flat gradient are unrolled: C row by row (numpy), F column by column "
                        "(Octave's Theta(:)); default C")
    g.add_argument("--data", default=None, metavar="FILE",
                   help="check at your data: digits, FILE.mat (X, y) or IDX images (with --data-labels)")
    g.add_argument("--data-labels", dest="data_labels", default=None, metavar="FILE",
                   help="the IDX labels file for IDX images given to --data")
    g.add_argument("--weights", default=None, metavar="FILE",
                   help="check at your weights: .mat or .npz with Theta1, Theta2, ... (or a flat params), or a "
                        "gradlab model file")


def _calls(args, fn) -> dict:
    """The call templates and conventions as check() and shrink() take them."""
    from gradlab.check import CallTemplate

    return {"call": None if args.call is None else CallTemplate(args.call, fn, name="--call"),
            "cost_call": None if args.cost_call is None else CallTemplate(args.cost_call, fn, name="--cost-call"),
            "labels": args.first_label, "unroll": args.unroll}


def _point(args) -> dict:
    """check()'s point arguments: the user's data and weights (read here), or gradlab's random ones."""
    from gradlab.check import user_point

    if args.data is None and args.weights is None:
        if args.data_labels is not None:
            raise GradlabError("--data-labels goes with --data (IDX images)")
        return {"sizes": args.sizes, "lam": args.lam, "examples": args.examples, "weight_scale": args.weight_scale}
    network, problem, params = user_point(args.sizes, data=args.data, data_labels=args.data_labels,
                                          weights=args.weights, labels=args.first_label, unroll=args.unroll,
                                          examples=args.examples, lam=args.lam)
    if problem is None:
        return {"sizes": network.sizes, "lam": args.lam, "examples": args.examples, "params": params,
                "weight_scale": args.weight_scale}
    return {"sizes": network.sizes, "problem": problem, "params": params, "weight_scale": args.weight_scale}


def run_check(args) -> int:
    """``gradlab check``: load the functions, check (or shrink), print; 0 on a pass, else 1."""
    from gradlab.check import check, load_function, load_target, shrink

    fn = (load_target if args.call is not None else load_function)(args.target, "target")
    cost_fn = cost_target = None
    if args.cost is not None:
        where = args.target.rpartition(":")[0] or args.target
        cost_target = args.cost if ":" in args.cost else f"{where}:{args.cost}"
        cost_fn = load_function(cost_target, "--cost")
    calls = _calls(args, fn)
    report = None
    if args.shrink:
        report = shrink(fn, signature=args.signature, cost_fn=cost_fn, max_examples=args.max_examples,
                        target=args.target, cost_target=cost_target, data=args.data, data_labels=args.data_labels,
                        weights=args.weights, sizes=args.sizes, **calls)
        if report is None and not args.json:
            print(f"--shrink: no failing case in {args.max_examples} tried; checking the given case")
    if report is None:
        report = check(fn, signature=args.signature, cost_fn=cost_fn, seed=args.seed, mode=args.mode, **calls,
                       **_point(args))
        for key in ("data", "weights"):  # the report names the files the user gave
            if getattr(args, key) is not None:
                report.info[key] = str(getattr(args, key))
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1
