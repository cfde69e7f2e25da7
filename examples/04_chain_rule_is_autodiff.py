"""Back-propagation is reverse-mode autodiff: the deltas are jax's vector-Jacobian products.

1. `gradlab.explain` walks a 3-5-3 network from the output down and shows, per layer,
   back-propagation's delta next to m times jax's dJ/dz (J is a mean over m examples).
2. One delta recomputed step by step from the report's numbers.
3. A deeper network: the agreement per layer.
4. Cost: reverse mode needs about one extra pass; finite differences need 2P passes.
5. Where each step sits in the jaxpr jax differentiates.

Run: python examples/04_chain_rule_is_autodiff.py   (see docs/chain-rule.md for the maths)
"""

import sys
import time

import numpy as np

import gradlab


def best_time(fn, repeat=5):
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ok = True

    # 1. The walk-through.
    problem = gradlab.debug_problem((3, 5, 3))
    params = gradlab.debug_init(problem.network)
    report = gradlab.explain(problem, params)
    print(report)
    ok &= report.ok

    # 2. delta2 for example 0, one step at a time, from the report's own numbers.
    m = problem.m
    theta2 = problem.network.unpack(params)[1]
    d3, d2 = report.layer(3), report.layer(2)
    print("\n== delta2 for example 0, step by step")
    back = d3.delta[0] @ theta2[:, 1:]
    gprime = d2.a[0] * (1.0 - d2.a[0])
    print("delta3                =", np.array2string(d3.delta[0], precision=6))
    print("delta3 Theta2[:, 1:]  =", np.array2string(back, precision=6), "  <- dot_general's VJP")
    print("a2 (1 - a2)           =", np.array2string(gprime, precision=6), "  <- the sigmoid's VJP")
    print("product (backprop)    =", np.array2string(back * gprime, precision=6))
    print("m dJ/dz2 (jax)        =", np.array2string(m * d2.jax_dJdz[0], precision=6))
    print(f"largest difference    = {np.abs(back * gprime - m * d2.jax_dJdz[0]).max():.3e}")

    # 3. A deeper network with regularisation and random weights.
    deep = gradlab.debug_problem((4, 6, 6, 5, 2), examples=8, lam=1.0)
    deep_report = gradlab.explain(deep, gradlab.random_init(deep.network, seed=3))
    print(f"\n== {deep!r}, random weights (seed 3)")
    for step in deep_report.layers:
        print(f"layer {step.layer}: max |delta - m dJ/dz| = {step.max_abs:.3e}  ({'AGREE' if step.ok else 'DISAGREE'})")
    for block in deep_report.blocks:
        print(f"dJ/dTheta{block.theta}: max |backprop - jax.grad| = {block.max_abs:.3e}, "
              f"norm ratio {block.norm_ratio:.3e}")
    ok &= deep_report.ok

    # 4. What each method costs, in evaluations of the cost (times are this machine's).
    big = gradlab.debug_problem((25, 16, 10), examples=200)
    p_big = gradlab.random_init(big.network, seed=0)
    P = big.network.n_params
    gradlab.gradient(big, p_big, "jax")  # compile once, outside the timing
    t_cost = best_time(lambda: gradlab.cost(big, p_big))
    t_bp = best_time(lambda: gradlab.gradient(big, p_big, "backprop"))
    t_jax = best_time(lambda: gradlab.gradient(big, p_big, "jax"))
    t_num = best_time(lambda: gradlab.gradient(big, p_big, "numeric"), repeat=1)
    print(f"\n== cost of a gradient, {big!r}, P = {P} parameters")
    print(f"one cost evaluation      {t_cost * 1e3:9.3f} ms")
    print(f"backprop (numpy)         {t_bp * 1e3:9.3f} ms = {t_bp / t_cost:7.1f} cost evaluations")
    print(f"jax.grad (jit, compiled) {t_jax * 1e3:9.3f} ms = {t_jax / t_cost:7.1f} cost evaluations")
    print(f"central differences      {t_num * 1e3:9.3f} ms = {t_num / t_cost:7.1f} cost evaluations"
          f" (2P = {2 * P})")

    # 5. The steps in the jaxpr: the first line of each marked group.
    marked = gradlab.explain(problem, params, jaxpr=True)
    print("\n== where the steps sit in the cost's jaxpr (gradlab explain --jaxpr prints it all)")
    printed = set()
    for line in marked.jaxpr:
        if line["tag"] and line["note"] and line["note"] not in printed:
            printed.add(line["note"])
            print(f"  {line['equation']:<44} [{line['tag']}] {line['note']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
