"""Full central-difference gradient of 400-25-10 on 5,000 examples: batched vs one at a time.

    PYTHONPATH=. python benchmarks/numeric_batched.py [--subset 300] [--repeat 1]

Batched: gradlab's "numeric" source, which stacks the 2P perturbed parameter vectors
and pushes them through the one shared cost a chunk at a time (numeric.BATCH_BYTES).
One at a time: the same 2P evaluations, each a separate call of the shared cost on one
vector -- timed on a fixed subset of entries spread over both layers (the full run
takes minutes) and extrapolated to all P entries. Both give the same numbers; the
benchmark checks that on the subset.

Synthetic data (uniform pixels in [0, 1], labels 0..9, seed 0) of the seed program's
shape; timings depend on the machine and its load, so run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import gradlab
from gradlab._cost import cost as _cost
from gradlab.sources import numeric


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subset", type=int, default=300, help="entries timed one at a time (default 300)")
    ap.add_argument("--examples", type=int, default=5000)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    net = gradlab.Network((400, 25, 10))
    X = rng.uniform(0.0, 1.0, size=(args.examples, 400))
    y = rng.integers(0, 10, size=args.examples)
    problem = gradlab.Problem(net, X, y, lam=1.0)
    theta = gradlab.random_init(net, seed=0)
    P = net.n_params
    print(f"network 400-25-10, P = {P} parameters, m = {args.examples} examples, "
          f"{2 * P} cost evaluations per central-difference gradient")
    print(f"BLAS threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}")

    # One at a time, on a fixed subset spread over both layers.
    subset = np.unique(np.linspace(0, P - 1, args.subset).astype(int))
    h = numeric.default_steps(theta)
    X_, Y_ = problem.X, problem.Y
    one = np.empty(subset.size)
    work = theta.copy()
    t0 = time.perf_counter()
    for n, i in enumerate(subset):
        work[i] = theta[i] + h[i]
        plus = float(_cost(np, net, work, X_, Y_, problem.lam))
        work[i] = theta[i] - h[i]
        minus = float(_cost(np, net, work, X_, Y_, problem.lam))
        work[i] = theta[i]
        one[n] = (plus - minus) / (2 * h[i])
    t_one_subset = time.perf_counter() - t0
    t_one_full = t_one_subset / subset.size * P
    print(f"one at a time : {t_one_subset:7.2f} s for {subset.size} entries "
          f"({t_one_subset / (2 * subset.size) * 1e3:.2f} ms per evaluation) "
          f"-> {t_one_full:7.1f} s extrapolated to all {P}")

    # Batched: the library's numeric source, the full gradient.
    t0 = time.perf_counter()
    g = gradlab.gradient(problem, theta, "numeric")
    t_batched = time.perf_counter() - t0
    print(f"batched       : {t_batched:7.1f} s for the full gradient "
          f"({t_batched / (2 * P) * 1e3:.2f} ms per evaluation; "
          f"{numeric.Evaluator(problem, theta).chunk()} vectors per chunk)")
    print(f"speed-up      : {t_one_full / t_batched:.1f}x")
    same = np.max(np.abs(g[subset] - one))
    print(f"max |batched - one at a time| on the subset: {same:.3e}")
    ref = gradlab.gradient(problem, theta, "backprop")
    ratio = np.linalg.norm(g - ref) / np.linalg.norm(g + ref)
    print(f"norm ratio vs backprop: {ratio:.3e}")


if __name__ == "__main__":
    main()
