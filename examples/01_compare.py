"""The three gradients side by side: back-propagation, jax.grad and finite differences.

One regularised cost (gradlab/network.py), three independent ways to differentiate it.
Run: python examples/01_compare.py
"""

import sys

import numpy as np

import gradlab


def side_by_side(problem, params, n_rows=10):
    """Print the first entries of each source's gradient, labelled by layer, row, column."""
    grads = {name: gradlab.gradient(problem, params, source=name) for name in ("backprop", "jax", "numeric")}
    net = problem.network
    print(f"{'entry':<16}{'backprop':>20}{'jax':>20}{'numeric':>20}")
    for i in range(min(n_rows, net.n_params)):
        layer, row, col = net.locate(i)
        label = f"Theta{layer}[{row},{col}]" + (" b" if col == 0 else "")
        print(f"{label:<16}" + "".join(f"{grads[n][i]:>20.12e}" for n in grads))
    bp = grads["backprop"]
    for other in ("jax", "numeric"):
        g = grads[other]
        ratio = np.linalg.norm(bp - g) / np.linalg.norm(bp + g)
        print(f"||backprop - {other}|| / ||backprop + {other}|| = {ratio:.3e}")
    return grads


def main() -> int:
    # 1. The seed program's gradient check: 3-5-3 network, 5 examples, debug weights.
    problem = gradlab.debug_problem((3, 5, 3))
    params = gradlab.debug_init(problem.network)
    print(f"== {problem!r}, cost J = {gradlab.cost(problem, params):.10f}")
    print("(b = bias column; the numeric gradient uses central differences, step ~ eps^(1/3))")
    side_by_side(problem, params)

    # 2. A deeper network, random weights and regularisation: the verdict from compare().
    problem = gradlab.debug_problem((4, 6, 6, 5, 2), examples=8, lam=1.0)
    params = gradlab.random_init(problem.network, seed=1)
    report = gradlab.compare(problem, params)
    print()
    print(f"== {problem!r}, random weights (seed 1)")
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
