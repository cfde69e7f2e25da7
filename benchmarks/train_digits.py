"""How long does training the shipped digits take with each gradient source?

    python benchmarks/train_digits.py [--repeat 3]

Trains 64-25-10 (lambda 1, CG, 100 iterations, seed 0) on the 1,438-example training
split with "backprop" and "jax", several times each, and prints the best and median wall
time and the time per cost+gradient evaluation. jax is compiled once before timing.
Small matrices: on a busy machine, BLAS threads can cost more than they save; compare
with OPENBLAS_NUM_THREADS=1 (or the equivalent for your BLAS).
"""

import argparse
import statistics
import time

import gradlab
from gradlab.data import load_digits, train_test_split
from gradlab.trainer import numeric_estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    X, y = load_digits()
    s = train_test_split(X, y, test_fraction=0.2, seed=0)
    kwargs = dict(hidden=25, lam=1.0, method="cg", maxiter=100, seed=0, progress=False,
                  test=(s.X_test, s.y_test))
    gradlab.train(s.X_train, s.y_train, grad_source="jax", **{**kwargs, "maxiter": 1})  # compile
    print(f"{'source':<10}{'best s':>9}{'median s':>10}{'evals':>7}{'ms/eval':>9}   test accuracy")
    for source in ("backprop", "jax"):
        times, result = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = gradlab.train(s.X_train, s.y_train, grad_source=source, **kwargs)
            times.append(time.perf_counter() - t0)
        evals = result.meta["evaluations"]
        print(f"{source:<10}{min(times):>9.3f}{statistics.median(times):>10.3f}{evals:>7}"
              f"{1e3 * min(times) / evals:>9.2f}   {100 * result.test_accuracy:.2f}%")
    problem = gradlab.Problem((64, 25, 10), s.X_train, s.y_train, lam=1.0)
    print("numeric:", numeric_estimate(problem, gradlab.random_init(problem.network, 0)))


if __name__ == "__main__":
    main()
