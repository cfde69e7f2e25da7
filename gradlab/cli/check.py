"""``gradlab check``: check the user's gradient function (thin over :mod:`gradlab.check`).

A network gradient runs in a process of its own (:func:`gradlab.check.grade`). One target
gives the full report; several (or ``--batch``, ``--csv``) give one line per target -- with
``--json``, one JSON object per line -- and an exit status for the batch.
"""

from __future__ import annotations

import argparse

from gradlab._errors import GradlabError
from gradlab._isolation import DEFAULT_TIMEOUT
from gradlab.cli.args import add_force, add_progress, forcible, integer, number, short, sizes


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
            "A network gradient runs in a process of its own: a hang past "
            "--timeout, a crash or its prints cannot reach gradlab (what it prints is shown as its "
            "output). Several targets (subs/*.py:nnGradient) are checked one after another, one line "
            "each. Exit status: 0 pass, 1 a problem found, 2 usage or load error; with several "
            "targets, 0 when every target passes, 1 otherwise, 2 only for a usage error of gradlab's own."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("targets", nargs="*", metavar="target",
                   help="PATH.py:FUNC or module:FUNC, the network gradient function to check (with --call also "
                        "a class, or PATH.py / a module alone; with --order 2, the Hessian-vector product "
                        "function); several (or a pattern such as 'subs/*.py:nnGradient') for a batch, one line each")
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
    # dest n_douts: check_layer's argument, so that its messages are said again as --douts.
    p.add_argument("--douts", dest="n_douts", type=integer, default=None,
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
                   help="full: every entry against jax and central differences; fast: every entry against "
                        "jax, confirmed along random directions (without jax: random directions and bisection); "
                        "auto: full for small networks (default auto)")
    p.add_argument("--shrink", action="store_true",
                   help="search (hypothesis) for the smallest failing case and print a reproducer")
    p.add_argument("--max-examples", dest="max_examples", type=integer, default=200,
                   help="cases --shrink tries (default 200)")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON (several targets: one JSON object per line)")
    add_isolation(p)
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


def _calls(args, worker) -> dict:
    """The call templates and conventions as check() and shrink() take them; the templates
    made in the worker, next to the target's module."""
    from gradlab.check.isolated import remote_template

    def template(source, name):
        return None if source is None else remote_template(worker, source, args.target, name)

    return {"call": template(args.call, "--call"), "cost_call": template(args.cost_call, "--cost-call"),
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


def add_isolation(p) -> None:
    """``--timeout``, ``--batch`` and ``--csv``: the target's own process and a grader's batch."""
    p.add_argument("--timeout", type=number, default=DEFAULT_TIMEOUT, metavar="S",
                   help="seconds the target's code may run in all, its import and every call the check makes; "
                        f"past them it is stopped and the verdict is a timeout (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--batch", action="store_true",
                   help="one line per target and the batch's exit status, even for one target (as with several)")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="also write one row per target to FILE (target, status, findings, detail, error, "
                        "output, seconds); implies --batch")


def run_check(args) -> int:
    """``gradlab check``: check the target (or each target), or a function or layer; print; 0 on a pass, else 1."""
    args.target = args.targets[0] if args.targets else None
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
                                        ("--against", args.against), ("--douts", args.n_douts)) if given is not None]
    if generic_only:
        forms = "--layer" if generic_only[0] == "--douts" else "--function or --layer"
        raise GradlabError(f"{generic_only[0]} goes with {forms}, not with a network gradient")
    if args.cost is not None and args.cost_call is not None:
        raise GradlabError("--cost and --cost-call both name the cost (a function, or a call template); give one")
    if args.own_cost and args.cost is None:
        raise GradlabError("--own-cost judges the gradient against --cost's function; give --cost")
    if args.shrink and args.own_cost:
        raise GradlabError("--shrink searches against the course's cost; it does not go with --own-cost")
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
    targets, pattern = checked_targets(args)
    if args.batch or args.csv is not None or pattern or len(targets) > 1:
        return run_batch(args, targets)
    args.target = targets[0]
    return show_one(args, grade_target(args, args.target))


def checked_report(args, fn, cost_fn, worker):
    """Check (or shrink) ``fn`` as the options say: the report. ``fn`` and ``cost_fn`` are
    stand-ins for the user's functions in ``worker`` (``fn`` is None with ``--call``: the
    template, made there, is the function)."""
    from gradlab.check import check, shrink

    if args.order == 2:
        return check(fn, args.sizes, lam=args.lam, examples=args.examples, seed=args.seed,
                     weight_scale=args.weight_scale, order=2)
    calls = _calls(args, worker)
    fn = calls["call"] if fn is None else fn
    cost_target = None
    if args.cost is not None:
        where = args.target.rpartition(":")[0] or args.target
        cost_target = args.cost if ":" in args.cost else f"{where}:{args.cost}"
    report = None
    if args.shrink:
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
    return report


# ------------------------------------------------------------------ isolation and batches


def checked_targets(args) -> tuple[list[str], bool]:
    """The targets, each of the form PATH.py:FUNC or module:FUNC -- with --call also PATH.py or
    a module alone -- (else a usage error, before any runs), and whether a pattern was expanded.

    A pattern (``subs/*.py:nnGradient``) is expanded here, in sorted order: the shell leaves
    it as it is, since no file name ends in ``:nnGradient``. One that matches no file is a
    usage error. So is a --call or --cost-call that is not a Python expression (whatever the
    target); one that names what a target's module lacks is that target's error.
    """
    import ast
    import glob
    import os

    from gradlab import _validate as v
    from gradlab._isolation import check_timeout

    check_timeout(args.timeout)
    for option, source in (("--call", args.call), ("--cost-call", args.cost_call)):
        if source is not None:
            text = " ".join(source.split())  # as CallTemplate reads it (and names it in its messages)
            try:
                ast.parse(text, mode="eval")
            except SyntaxError as exc:
                col = f" at column {exc.offset}" if exc.offset else ""
                raise GradlabError(f"{option}: syntax error{col}: {exc.msg}; got {option}={text!r} (a Python "
                                   "expression over params, X, y, ...)") from None
    whole_module = args.call is not None
    out, pattern = [], False
    for target in args.targets:
        where, colon, func = target.rpartition(":")
        if not colon and whole_module:
            where, func = target, ""
        elif not where or not func.isidentifier():
            raise v.fail("target", target, "PATH.py:FUNC or module:FUNC" + (
                ", PATH.py or a module" if whole_module else
                " (a file or module alone, or a class, goes with --call EXPR, which says how to call it)"
                if not colon else ""))
        if glob.has_magic(where) and not os.path.lexists(where):
            files = sorted(glob.glob(where))
            if not files:
                raise GradlabError(f"target {short(target)}: the pattern {short(where)} matches no file")
            out += [f"{f}:{func}" if func else f for f in files]
            pattern = True
        else:
            out.append(target)
    return out, pattern


def grade_target(args, target: str):
    """One target checked in its own process: its :class:`~gradlab.check.Outcome`."""
    from gradlab.check import grade

    def run(fn, cost_fn, worker):
        args.target = target
        return checked_report(args, fn, cost_fn, worker)

    # With --call the template, made in the worker, starts from the target (a module, a class, a
    # function): nothing to load first.
    return grade(target, run, cost_fn=args.cost, timeout=args.timeout, preload=args.call is None)


def show_one(args, outcome) -> int:
    """One target: its report (with what its code printed). A target that could not be
    checked is one line on stderr and status 2, as a load error always was -- after its
    output, or its JSON document (``--json`` always prints exactly one)."""
    from gradlab.check.report import output_block

    if outcome.report is not None:
        print(outcome.to_json(indent=2) if args.json else outcome.report)
        return 0 if outcome.ok else 1
    if args.json:
        print(outcome.to_json(indent=2))
    elif outcome.output:
        print("\n".join(output_block(outcome.output, args.target.rpartition(":")[2])[1:]))
    raise outcome.exception


def run_batch(args, targets: list[str]) -> int:
    """Several targets, one after another: a line each (``--json``: a JSON object each), a
    count at the end (text only), ``--csv``; 0 when every target passes, else 1 (70 when a
    bug in gradlab failed a target: its row says so, and the other targets still ran)."""
    import time

    from gradlab import _files
    from gradlab.check import STATUSES, Outcome
    from gradlab.cli.status import EXIT_SOFTWARE

    if args.shrink:
        raise GradlabError(f"--shrink searches one target's failing case; got {len(targets)} targets "
                           "(drop --shrink, or check one target)")
    if args.csv is not None:
        _files.check_writable(args.csv, name="--csv")
        _files.check_not_input(args.csv, {f"target {short(t)}": t.rpartition(":")[0] for t in targets}, name="--csv")
    start = time.monotonic()
    outcomes, internal = [], False
    for target in targets:
        try:
            outcome = grade_target(args, target)
        except (GradlabError, MemoryError, OSError):  # an option refused; the machine, not the target
            raise
        except Exception as exc:  # a bug in gradlab that this target brought out: the others still run
            outcome = Outcome(target, "error", error=f"internal error: {type(exc).__name__}: {exc} (a bug in gradlab)")
            internal = True
        outcomes.append(outcome)
        print(outcome.to_json() if args.json else outcome.line(), flush=True)
    if not args.json:
        counts = ", ".join(f"{sum(o.status == s for o in outcomes)} {s}" for s in STATUSES
                           if any(o.status == s for o in outcomes))
        print(f"{len(outcomes)} target{'s' if len(outcomes) != 1 else ''}: {counts} "
              f"({time.monotonic() - start:.1f} s)")
    if args.csv is not None:
        write_csv(args.csv, outcomes)
    if internal:
        return EXIT_SOFTWARE
    return 0 if all(o.ok for o in outcomes) else 1


#: The columns of ``--csv``, one row per target.
CSV_COLUMNS = ("target", "status", "findings", "detail", "error", "output", "seconds")


def write_csv(path: str, outcomes) -> None:
    """``--csv``: one row per target, written atomically."""
    import csv
    import io

    from gradlab import _files
    from gradlab.check.grading import failing

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    for o in outcomes:
        blamed = 0 if o.report is None else len(failing(o.report))
        writer.writerow([o.target, o.status, blamed, o.detail() if o.report is not None else "", o.error or "",
                         o.output, f"{o.seconds:.3f}"])
    data = text.getvalue().encode("utf-8")
    _files.atomic_write(path, lambda f: f.write(data), name="--csv")


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

    network_only = [o for o, given in (("--call", args.call), ("--cost-call", args.cost_call), ("--data", args.data),
                                        ("--data-labels", args.data_labels), ("--weights", args.weights),
                                        ("--labels", None if args.first_label == "0" else args.first_label),
                                        ("--unroll", None if args.unroll == "C" else args.unroll)) if given is not None]
    if network_only:
        raise GradlabError(f"{network_only[0]} goes with a network gradient, not --function or --layer")
    if args.cost is not None or args.own_cost or args.shrink:
        raise GradlabError("--cost, --own-cost and --shrink go with a network gradient, not --function or --layer")
    if args.inputs is None:
        raise GradlabError(f"{'--function' if args.function else '--layer'} needs --inputs MAKE, the function "
                           "returning the inputs to check at")
    if args.function is not None:
        if args.n_douts is not None:
            raise GradlabError("--douts goes with --layer: a scalar function has no upstream gradient")
        where = args.function.rpartition(":")[0]
        fns = (load_function(args.function, "--function"),
               None if args.grad is None else _in_file(args.grad, where, "--grad"))
    else:
        if args.grad is not None:
            raise GradlabError("--grad goes with --function; a layer's gradient is its BACKWARD")
        head, _, backward = args.layer.rpartition(":")
        where, _, forward = head.rpartition(":")
        if not where or not forward.isidentifier() or not backward.isidentifier():
            raise GradlabError(f"--layer must be FILE.py:FORWARD:BACKWARD; got --layer={args.layer!r}")
        fns = tuple(load_function(f"{where}:{fn}", "--layer", shown=args.layer) for fn in (forward, backward))
    make = _in_file(args.inputs, where, "--inputs")
    inputs = _make_inputs(make, args.seed, guarded, np)
    wrt = None if args.wrt is None else [int(w) if w.strip().lstrip("-").isdigit() else w.strip()
                                          for w in args.wrt.split(",")]
    against = ("jax", "numeric") if args.against is None else tuple(a.strip() for a in args.against.split(","))
    common = dict(wrt=wrt, mode=args.mode, against=against, seed=args.seed)
    if args.function is not None:
        report = check_function(fns[0], fns[1], *inputs, **common)
    else:
        douts = {} if args.n_douts is None else {"n_douts": args.n_douts}
        report = check_layer(fns[0], fns[1], *inputs, **douts, **common)
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
