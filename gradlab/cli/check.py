"""``gradlab check``: check the user's gradient function (thin over :mod:`gradlab.check`)."""

from __future__ import annotations

import argparse

from gradlab._errors import GradlabError
from gradlab.cli.args import add_force, add_progress, forcible, integer, number, sizes


def add_check(sub) -> None:
    """The ``check`` command and its options."""
    p = sub.add_parser(
        "check",
        help="check your gradient function: who is wrong, where, and why",
        description=(
            "Check a gradient against jax and finite differences, on copies of its arguments "
            "(writes into them are reported). Three forms:\n"
            "  gradlab check FILE.py:GRAD [--cost COST [--own-cost]]   a network gradient (the course's "
            "cost, or your own)\n"
            "  gradlab check --function FILE.py:F [--grad G] --inputs MAKE [--wrt NAMES]   any scalar "
            "function: F(*inputs) returns the value, or (value, gradients) without --grad\n"
            "  gradlab check --layer FILE.py:FORWARD:BACKWARD --inputs MAKE [--wrt NAMES]   a layer: "
            "FORWARD(*inputs) -> (out, cache), BACKWARD(dout, cache) -> gradients\n"
            "MAKE names a function of the same file (or FILE.py:MAKE) returning the tuple of inputs; "
            "it may take one argument, a numpy Generator seeded by --seed. Findings name the layer, "
            "rows and columns (networks) or the input and its entries (functions, layers), the values "
            "and the likely slip. With --order 2, FILE.py:HVP is a Hessian-vector product hvp(problem, params, v), "
            "checked against jax's jvp of grad and differences of the gradient; the wrong blocks of the Hessian "
            "and any product-rule term the derivation lost are named. "
            "Exit status: 0 pass, 1 a problem found, 2 usage or load error."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", nargs="?", default=None,
                   help="PATH.py:FUNC or module:FUNC, the network gradient function to check (with --call also "
                        "a class, or PATH.py / a module alone; with --order 2, the Hessian-vector product function)")
    p.add_argument("--order", type=integer, default=1,
                   help="1: a gradient function f(problem, params); 2: a Hessian-vector product "
                        "hvp(problem, params, v) (default 1)")
    p.add_argument("--function", default=None, metavar="FILE.py:F",
                   help="check the gradient of this scalar function of any inputs (with --inputs)")
    p.add_argument("--grad", default=None, metavar="G",
                   help="with --function: the gradient function (a name in the same file, or FILE.py:G); "
                        "without it F returns (value, gradients)")
    p.add_argument("--layer", default=None, metavar="FILE.py:FORWARD:BACKWARD",
                   help="check this layer's backward pass against its forward pass (with --inputs)")
    p.add_argument("--inputs", default=None, metavar="MAKE",
                   help="with --function or --layer: the function returning the inputs (a name in the same "
                        "file, or FILE.py:MAKE)")
    p.add_argument("--wrt", default=None, metavar="NAMES",
                   help="with --function or --layer: the inputs to differentiate, comma-separated names or "
                        "positions (default every float array)")
    p.add_argument("--douts", type=integer, default=3,
                   help="with --layer: random upstream gradients to check with (default 3)")
    p.add_argument("--against", default=None, metavar="WITNESSES",
                   help="with --function or --layer: jax,numeric (default), or one of them")
    p.add_argument("--signature", choices=("gradlab", "seed"), default="gradlab",
                   help="gradlab: f(problem, params); seed: nnGradient(nn_params, input_layer_size, "
                        "hidden_layer_size, num_labels, X, y, Lambda) (default gradlab)")
    p.add_argument("--cost", default=None, metavar="FUNC",
                   help="also check this cost function (same signature; a name in the same file, or PATH.py:FUNC)")
    p.add_argument("--own-cost", dest="own_cost", action="store_true",
                   help="--cost is your own cost (not the course's cross-entropy): judge the gradient against it; "
                        "how it differs from the course's cost is a note")
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
    add_progress(p)
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
    g.add_argument("--labels", dest="first_label", choices=("0", "1"), default="0",
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
            "labels": int(args.first_label), "unroll": args.unroll}


def _point(args) -> dict:
    """check()'s point arguments: the user's data and weights (read here), or gradlab's random ones."""
    from gradlab.check import user_point

    if args.data is None and args.weights is None:
        if args.data_labels is not None:
            raise GradlabError("--data-labels goes with --data (IDX images)")
        return {"sizes": args.sizes, "lam": args.lam, "examples": args.examples, "weight_scale": args.weight_scale}
    network, problem, params = user_point(args.sizes, data=args.data, data_labels=args.data_labels,
                                          weights=args.weights, labels=int(args.first_label), unroll=args.unroll,
                                          examples=args.examples, lam=args.lam)
    if problem is None:
        return {"sizes": network.sizes, "lam": args.lam, "examples": args.examples, "params": params,
                "weight_scale": args.weight_scale}
    return {"sizes": network.sizes, "problem": problem, "params": params, "weight_scale": args.weight_scale}


def run_check(args) -> int:
    """``gradlab check``: load the functions, check (or shrink), print; 0 on a pass, else 1."""
    forms = [name for name, given in (("target", args.target), ("--function", args.function),
                                      ("--layer", args.layer)) if given is not None]
    if len(forms) != 1:
        raise GradlabError("gradlab check needs exactly one of FILE.py:GRAD, --function FILE.py:F or "
                           f"--layer FILE.py:FORWARD:BACKWARD; got {', '.join(forms) or 'none'}")
    if args.target is None:
        if args.order != 1:
            raise GradlabError("--order 2 checks a network's Hessian-vector product FILE.py:HVP, not --function "
                               "or --layer")
        return _run_generic(args)
    generic_only = [o for o, given in (("--grad", args.grad), ("--inputs", args.inputs), ("--wrt", args.wrt),
                                        ("--against", args.against)) if given is not None]
    if generic_only:
        raise GradlabError(f"{generic_only[0]} goes with --function or --layer, not with a network gradient")
    from gradlab.check import check, load_function, load_target, shrink

    if args.order == 2:
        given = [flag for flag, on in (("--signature", args.signature != "gradlab"), ("--cost", args.cost is not None),
                                       ("--own-cost", args.own_cost), ("--mode", args.mode != "auto"),
                                       ("--shrink", args.shrink), ("--call", args.call is not None),
                                       ("--cost-call", args.cost_call is not None), ("--data", args.data is not None),
                                       ("--weights", args.weights is not None), ("--labels", args.first_label != "0"),
                                       ("--unroll", args.unroll != "C")) if on]
        if given:
            raise GradlabError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to gradient "
                               "checks, not to --order 2")
        fn = load_function(args.target, "target")
        report = check(fn, args.sizes, lam=args.lam, examples=args.examples, seed=args.seed,
                       weight_scale=args.weight_scale, order=2)
        print(report.to_json() if args.json else report)
        return 0 if report.ok else 1
    fn = (load_target if args.call is not None else load_function)(args.target, "target")
    cost_fn = cost_target = None
    if args.cost is not None:
        where = args.target.rpartition(":")[0] or args.target
        cost_target = args.cost if ":" in args.cost else f"{where}:{args.cost}"
        cost_fn = load_function(cost_target, "--cost")
    if args.own_cost and cost_fn is None:
        raise GradlabError("--own-cost judges the gradient against --cost's function; give --cost")
    calls = _calls(args, fn)
    report = None
    if args.shrink:
        if args.own_cost:
            raise GradlabError("--shrink searches against the course's cost; it does not go with --own-cost")
        report = shrink(fn, signature=args.signature, cost_fn=cost_fn, max_examples=args.max_examples,
                        target=args.target, cost_target=cost_target, data=args.data, data_labels=args.data_labels,
                        weights=args.weights, sizes=args.sizes, **calls)
        if report is None and not args.json:
            print(f"--shrink: no failing case in {args.max_examples} tried; checking the given case")
    if report is None:
        report = check(fn, signature=args.signature, cost_fn=cost_fn, seed=args.seed, mode=args.mode,
                       own_cost=args.own_cost, order=args.order, **calls, **_point(args))
        for key in ("data", "weights"):  # the report names the files the user gave
            if getattr(args, key) is not None:
                report.info[key] = str(getattr(args, key))
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1


def _in_file(text: str, where: str, name: str):
    """``NAME`` in the file ``where``, or ``FILE.py:NAME`` (loaded and guarded)."""
    from gradlab.check import load_function

    return load_function(text if ":" in text else f"{where}:{text}", name)


def _run_generic(args) -> int:
    """``--function`` / ``--layer``: load, make the inputs, check, print."""
    import numpy as np

    from gradlab._errors import GradlabError
    from gradlab._usercode import guarded
    from gradlab.check import check_function, check_layer, load_function

    if args.cost is not None or args.own_cost or args.shrink:
        raise GradlabError("--cost, --own-cost and --shrink go with a network gradient, not --function or --layer")
    network_only = [o for o, given in (("--call", args.call), ("--cost-call", args.cost_call), ("--data", args.data),
                                        ("--data-labels", args.data_labels), ("--weights", args.weights),
                                        ("--labels", None if args.first_label == "0" else args.first_label),
                                        ("--unroll", None if args.unroll == "C" else args.unroll)) if given is not None]
    if network_only:
        raise GradlabError(f"{network_only[0]} goes with a network gradient, not --function or --layer")
    if args.inputs is None:
        raise GradlabError(f"{'--function' if args.function else '--layer'} needs --inputs MAKE, the function "
                           "returning the inputs to check at")
    if args.function is not None:
        where = args.function.rpartition(":")[0]
        fns = (load_function(args.function, "--function"),
               None if args.grad is None else _in_file(args.grad, where, "--grad"))
    else:
        if args.grad is not None:
            raise GradlabError("--grad goes with --function; a layer's gradient is its BACKWARD")
        head, _, backward = args.layer.rpartition(":")
        where, _, forward = head.rpartition(":")
        if not where or not forward or not backward:
            raise GradlabError(f"--layer must be FILE.py:FORWARD:BACKWARD; got --layer={args.layer!r}")
        fns = (load_function(f"{where}:{forward}", "--layer"), load_function(f"{where}:{backward}", "--layer"))
    make = _in_file(args.inputs, where, "--inputs")
    inputs = _make_inputs(make, args.seed, guarded, np)
    wrt = None if args.wrt is None else [int(w) if w.strip().lstrip("-").isdigit() else w.strip()
                                          for w in args.wrt.split(",")]
    against = ("jax", "numeric") if args.against is None else tuple(a.strip() for a in args.against.split(","))
    common = dict(wrt=wrt, mode=args.mode, against=against, seed=args.seed)
    if args.function is not None:
        report = check_function(fns[0], fns[1], *inputs, **common)
    else:
        report = check_layer(fns[0], fns[1], *inputs, n_douts=args.douts, **common)
    print(report.to_json() if args.json else report)
    return 0 if report.ok else 1


def _make_inputs(make, seed: int, guarded, np) -> tuple:
    """Call ``--inputs``'s function (with a seeded numpy Generator when it takes one argument)."""
    import inspect

    from gradlab._errors import GradlabError

    try:
        takes = len([p for p in inspect.signature(make).parameters.values()
                     if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        takes = 0
    call, _ = guarded(make, "--inputs function", "--inputs", 1 if takes else 0, "(rng) or ()")
    made = call(np.random.default_rng(seed)) if takes else call()
    if not isinstance(made, (tuple, list)) or not made:
        raise GradlabError("--inputs must name a function returning a non-empty tuple (or list) of inputs; got "
                           f"{type(made).__name__}")
    return tuple(made)
