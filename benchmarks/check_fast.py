"""Fast mode on the seed's network: 400-25-10, 5,000 examples, one wrong gradient entry.

Measures how long ``gradlab.check(..., mode="fast")`` takes to detect the wrong entry and
name its layer, row and column, and how many cost evaluations it used; for scale, it
times a few cost evaluations and states what a full central-difference check (2P
evaluations, plus 2P more for its error estimate) would take.

Run:  PYTHONPATH=. python benchmarks/check_fast.py [--repeat 5]
"""

import argparse
import os
import time

# One BLAS thread unless told otherwise: on a small shared machine (2 cores, other jobs
# running) multithreaded BLAS spins and makes each cost evaluation several times slower.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import gradlab  # noqa: E402
from gradlab._cost import cost as _cost  # noqa: E402

SIZES = (400, 25, 10)
EXAMPLES = 5000
WRONG = (1, 7, 123)  # layer, row, column of the planted error


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--delta", type=float, default=1e-3, help="error added to the wrong entry")
    args = parser.parse_args()
    net = gradlab.Network(SIZES)
    layer, row, col = WRONG
    index = net.offsets[layer - 1] + row * net.shapes[layer - 1][1] + col

    def one_wrong_entry(problem, params):
        g = gradlab.gradient(problem, params, "backprop")
        g[index] += args.delta
        return g

    print(f"network {SIZES}, {net.n_params} parameters, m={EXAMPLES}; wrong entry Theta{layer}[{row}, {col}] "
          f"off by {args.delta:g}")
    for k in range(args.repeat):
        t = time.perf_counter()
        report = gradlab.check(one_wrong_entry, SIZES, examples=EXAMPLES, mode="fast")
        dt = time.perf_counter() - t
        found = [(v["row"], v["column"]) for f in report.findings for v in f.values if f.layer == layer]
        hit = (row, col) in found
        print(f"  run {k + 1}: {dt:.3f} s, {report.fast['cost_evaluations']} cost evaluations, "
              f"ok={report.ok}, findings={[(f.kind, f.layer) for f in report.findings]}, "
              f"names Theta{layer}[{row}, {col}]: {hit}")
    def correct(problem, params):
        return gradlab.gradient(problem, params, "backprop")

    t = time.perf_counter()
    clean = gradlab.check(correct, SIZES, examples=EXAMPLES, mode="fast")
    print(f"  correct gradient: {time.perf_counter() - t:.3f} s, {clean.fast['cost_evaluations']} cost evaluations, "
          f"ok={clean.ok}")
    print()
    print(report)
    _side_by_side(net, index)
    problem = gradlab.Problem(net, np.random.default_rng(0).uniform(-1, 1, (EXAMPLES, SIZES[0])),
                              np.arange(EXAMPLES) % SIZES[-1], 1.0)
    params = gradlab.random_init(net, 0)
    t = time.perf_counter()
    for _ in range(10):
        _cost(np, net, params, problem.X, problem.Y, 1.0)
    per = (time.perf_counter() - t) / 10
    print(f"\none cost evaluation: {per * 1e3:.1f} ms; a full central-difference check needs 2P = {2 * net.n_params} "
          f"evaluations (~{2 * net.n_params * per:.0f} s), 4P = {4 * net.n_params} with its error estimate "
          f"(~{4 * net.n_params * per:.0f} s)")


def _side_by_side(net, index):
    """Fast mode with the jax witness against fast mode on finite differences alone, in one
    run: a single entry times 1.001 (an error of ~7e-8), and a widespread bug (the bias
    column regularised), with the time, the cost evaluations and what each found."""
    def scaled(problem, params):
        g = gradlab.gradient(problem, params, "backprop")
        g[index] *= 1.001
        return g

    def bias_regularised(problem, params):
        g = gradlab.gradient(problem, params, "backprop")
        for D, theta in zip(problem.network.unpack(g), problem.network.unpack(params)):
            D[:, 0] += problem.lam / problem.m * theta[:, 0]
        return g

    print(f"\nside by side (one run each; a full central-difference check needs {2 * net.n_params} evaluations):")
    for name, fn in (("one entry x 1.001", scaled), ("bias regularised", bias_regularised)):
        for against in (("jax", "numeric"), ("numeric",)):
            t = time.perf_counter()
            r = gradlab.check(fn, SIZES, examples=EXAMPLES, mode="fast", against=against)
            print(f"  {name:<18} against={','.join(against):<12} {time.perf_counter() - t:7.2f} s, "
                  f"{r.fast['cost_evaluations']:6d} cost evaluations, ok={r.ok}, "
                  f"findings={sorted({(f.kind, f.layer) for f in r.findings}, key=str)}")


if __name__ == "__main__":
    main()
