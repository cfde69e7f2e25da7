"""Second order: the Hessian times a vector, three ways, and what it is good for.

1. H v for a 3-5-3 network from Pearlmutter's R-operator (back-propagation run once more,
   forward-mode), from jax (jvp of grad) and from differences of the gradient along v.
2. One R-line recomputed by hand from the R-pass's own numbers: Rdelta2, with its g'' term.
3. H is symmetric: u . Hv = v . Hu; and the full Hessian of a small network from P products,
   with its eigenvalues' signs (a saddle at random weights, a minimum after training).
4. What it costs: one H v against one gradient.
5. Training with it: Newton-CG, which only ever asks for H v, next to CG.

Run: python examples/07_hessian_vector_products.py   (see docs/chain-rule.md, section 6)
"""

import sys
import time

import numpy as np

import gradlab
from gradlab.sources import rop


def best_time(fn, repeat=20):
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ok = True
    problem = gradlab.debug_problem((3, 5, 3), lam=1.0)
    params = gradlab.debug_init(problem.network)
    rng = np.random.default_rng(0)
    v = rng.standard_normal(problem.network.n_params)
    v /= np.linalg.norm(v)

    # 1. Three witnesses.
    print("== H v three ways (3-5-3, m = 5, lambda = 1, a random unit v)")
    products = {name: gradlab.hvp(problem, params, v, name) for name in ("backprop", "jax", "numeric")}
    est = gradlab.numeric_hvp(problem, params, v)
    for name, hv in products.items():
        print(f"{name:<9} |H v| = {np.linalg.norm(hv):.12f}   first entries {np.array2string(hv[:3], precision=9)}")
    ratio = np.linalg.norm(products["backprop"] - products["jax"]) / np.linalg.norm(products["backprop"] + products["jax"])
    worst = np.max(np.abs(products["numeric"] - products["backprop"]) / est.error)
    print(f"backprop vs jax: norm ratio {ratio:.3e} (exact pair: <= 1e-10)")
    print(f"numeric vs backprop: largest |difference| / error estimate = {worst:.3e} (must be <= 10)")
    ok &= ratio <= 1e-10 and worst <= 10

    # 2. Rdelta2 for example 0, by hand, from the R-pass's stored quantities.
    rp = rop.r_pass(problem, params, v, keep=True)
    theta2, V2 = (problem.network.unpack(x)[1] for x in (params, v))
    a2 = rp.acts[1][0]
    gp, gpp = a2 * (1 - a2), a2 * (1 - a2) * (1 - 2 * a2)
    delta3, Rdelta3, Rz2 = rp.deltas[1][0], rp.Rdeltas[1][0], rp.Rzs[0][0]
    by_hand = (Rdelta3 @ theta2[:, 1:] + delta3 @ V2[:, 1:]) * gp + (delta3 @ theta2[:, 1:]) * gpp * Rz2
    print("\n== Rdelta2 for example 0, one product rule at a time")
    print("Rdelta3 Theta2[:,1:] + delta3 V2[:,1:]  =", np.array2string(Rdelta3 @ theta2[:, 1:] + delta3 @ V2[:, 1:], precision=6))
    print("times g'(z2) = a2 (1 - a2)              =", np.array2string(gp, precision=6))
    print("(delta3 Theta2[:,1:]) g''(z2) Rz2       =", np.array2string((delta3 @ theta2[:, 1:]) * gpp * Rz2, precision=6))
    print("sum (by hand)                           =", np.array2string(by_hand, precision=6))
    print("the R-pass                              =", np.array2string(rp.Rdeltas[0][0], precision=6))
    ok &= np.allclose(by_hand, rp.Rdeltas[0][0], rtol=1e-12, atol=1e-15)

    # 3. Symmetry and curvature.
    report = gradlab.compare(problem, params, ("backprop", "jax"), order=2, seed=1)
    print("\n== symmetry: u . Hv = v . Hu for a second random unit u")
    for s in report.symmetry:
        print(f"{s.source:<9} u.Hv = {s.u_Hv:.12f}   v.Hu = {s.v_Hu:.12f}   |diff| = {s.difference:.2e}")
    ok &= report.ok
    rng3 = np.random.default_rng(0)
    X = rng3.standard_normal((30, 3))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 0.8)
    small = gradlab.Problem(gradlab.Network((3, 5, 3)), X, y, 1.0)
    start = gradlab.random_init(small.network, 0)
    print(f"\n== the full Hessian of 3-5-3 on 30 examples, from {small.network.n_params} products")
    newton = gradlab.train(small, method="newton-cg", maxiter=100, init=start, progress=False)
    for label, point in (("random weights", start), ("after Newton-CG", newton.params)):
        sp = gradlab.compare(small, point, ("backprop", "jax"), order=2).spectrum
        print(f"{label:<16} |g| = {sp.grad_norm:.2e}   eigenvalues {sp.eigenvalues[0]:+.3e} .. {sp.eigenvalues[-1]:+.3e}"
              f"   {sp.positive} positive, {sp.negative} negative: {sp.kind}")
        ok &= sp.kind == ("saddle" if point is start else "minimum")

    # 4. Cost.
    rng2 = np.random.default_rng(2)
    net = gradlab.Network((64, 25, 10))
    big = gradlab.Problem(net, rng2.random((1000, 64)), rng2.integers(0, 10, 1000), 1.0)
    w, d = gradlab.random_init(net, 0), rng2.standard_normal(net.n_params)
    t_grad = best_time(lambda: gradlab.gradient(big, w))
    t_hvp = best_time(lambda: gradlab.hvp(big, w, d))
    print(f"\n== cost (64-25-10, m = 1000): gradient {1e3 * t_grad:.3f} ms, H v {1e3 * t_hvp:.3f} ms "
          f"= {t_hvp / t_grad:.2f} gradients; the full Hessian would take {net.n_params} products")

    # 5. Training: Newton-CG asks only for H v, never for H.
    print("\n== training 3-5-3 on the 30 examples from the same random weights")
    cg = gradlab.train(small, method="cg", maxiter=100, init=start, progress=False)
    for r in (cg, newton):
        print(f"{r.method:<10} {r.n_iter:>3} iterations, {r.meta['evaluations']:>3} gradients, "
              f"{r.meta.get('hvp_evaluations', 0):>3} H v: cost {r.history.cost[-1]:.8f}, |g| {r.history.grad_norm[-1]:.2e} "
              f"({r.stop})")
    ok &= newton.history.grad_norm[-1] < cg.history.grad_norm[-1]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
