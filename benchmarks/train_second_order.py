#!/usr/bin/env python
"""Second-order training on the shipped digits against CG, on the same budget of passes.

    python benchmarks/train_second_order.py [--maxiter 100] [--json OUT] [--markdown OUT.md]

64-25-10, lambda 1, seed 0, the 1,438 / 359 stratified split, gradient and Hessian-vector
products from back-propagation (Pearlmutter's R-operator for H v). Each method starts from the
same weights. Rows:

* ``cg``, ``newton-cg``, ``trust-ncg``, ``trust-krylov`` at ``--maxiter`` iterations;
* ``cg, same passes as newton-cg``: CG given as many passes as newton-cg used.

A *pass* is one forward and one backward sweep over the m examples: a gradient is one, one
H v two (the R-operator's forward + R-forward and backward + R-backward sweeps; the benchmark
benchmarks/hvp.py measures one H v at 1.5-2 gradients). CG evaluates about two gradients per
iteration, so the matching CG run gets ``maxiter = passes / 2``. Times are wall-clock on this
machine and vary with its load; the passes do not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradlab  # noqa: E402
from gradlab._files import atomic_write  # noqa: E402
from gradlab.data import load_digits, train_test_split  # noqa: E402

#: Passes one Hessian-vector product costs, in gradients (see the module docstring).
PASSES_PER_HVP = 2
#: Gradients CG evaluates per iteration (scipy CG's line search: one or two trial points,
#: about two on the digits -- measured 202 evaluations for 100 iterations).
CG_GRADIENTS_PER_ITERATION = 2


def run(method: str, maxiter: int, split, init) -> dict:
    t0 = time.perf_counter()
    r = gradlab.train(split.X_train, split.y_train, hidden=25, lam=1.0, method=method, maxiter=maxiter,
                      init=init, test=(split.X_test, split.y_test), progress=False)
    seconds = time.perf_counter() - t0
    grads, hvps = r.meta["evaluations"], r.meta.get("hvp_evaluations", 0)
    return {"method": method, "maxiter": maxiter, "iterations": r.n_iter, "gradients": grads, "hvps": hvps,
            "passes": grads + PASSES_PER_HVP * hvps, "cost": float(r.history.cost[-1]),
            "test_accuracy": r.test_accuracy, "train_accuracy": r.train_accuracy, "stop": r.stop,
            "seconds": seconds}


def bench(maxiter: int = 100) -> dict:
    X, y = load_digits()
    split = train_test_split(X, y, test_fraction=0.2, seed=0)
    init = gradlab.random_init(gradlab.Network((64, 25, 10)), seed=0)
    rows = [run(m, maxiter, split, init) for m in ("cg", "newton-cg", "trust-ncg", "trust-krylov")]
    newton = rows[1]
    matched = run("cg", max(1, newton["passes"] // CG_GRADIENTS_PER_ITERATION), split, init)
    matched["method"] = "cg, same passes as newton-cg"
    rows.append(matched)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"maxiter": maxiter, "rows": rows, "load_average": load,
            "measured_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def markdown(res: dict) -> str:
    lines = [f"Measured {res['measured_utc']} UTC (load average {res['load_average']}); 64-25-10, lambda 1, seed 0, "
             f"digits split 1,438 / 359; a pass = one gradient, H v = {PASSES_PER_HVP} passes.", "",
             "| method | iterations | gradients | H v | passes | final cost | test accuracy | stop | seconds |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in res["rows"]:
        lines.append(f"| {r['method']} | {r['iterations']} | {r['gradients']} | {r['hvps']} | {r['passes']} | "
                     f"{r['cost']:.5f} | {100 * r['test_accuracy']:.2f}% | {r['stop']} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maxiter", type=int, default=100)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    if args.maxiter < 1:
        ap.error("--maxiter must be positive")
    res = bench(args.maxiter)
    text = markdown(res)
    print(text)
    if args.json:
        payload = (json.dumps(res, indent=2) + "\n").encode()
        atomic_write(args.json, lambda f: f.write(payload), name="--json")
    if args.markdown:
        atomic_write(args.markdown, lambda f: f.write((text + "\n").encode()), name="--markdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
