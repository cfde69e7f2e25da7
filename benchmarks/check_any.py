"""What the generic checks cost: check_layer / check_function against the usual numeric helper.

Measured side by side, in one run:

1. Per layer (affine, relu, batch norm: array API, jax a witness; a naive convolution:
   numpy loops, two numeric methods), the time of ``gradlab.check_layer`` on a correct
   backward pass -- the first call (jax compiles) and a repeated call at the same shapes
   (compiled witness reused) -- against the 20-line ``eval_numerical_gradient_array``
   helper students use (central differences, step 1e-5, one dout), interleaved.
2. Fast mode against the full check on a scalar function of 5,000 entries with one wrong
   gradient entry: evaluations, time, and whether the entry is named.

Run:  PYTHONPATH=. python benchmarks/check_any.py [--repeats 3]
"""

import argparse
import os
import statistics
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from array_api_compat import array_namespace  # noqa: E402

import gradlab  # noqa: E402


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """The helper of the classic assignments: central differences of f at x against df."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = f(x).copy()
        x[ix] = old - h
        neg = f(x).copy()
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def affine_forward(x, w, b):
    return x @ w + b, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def relu_forward(x):
    return array_namespace(x).maximum(x, 0.0), x


def relu_backward(dout, x):
    return dout * (x > 0)


def batchnorm_forward(x, gamma, beta):
    xp = array_namespace(x, gamma, beta)
    mu = xp.mean(x, axis=0)
    inv = 1.0 / xp.sqrt(xp.mean((x - mu) ** 2, axis=0) + 1e-5)
    xhat = (x - mu) * inv
    return gamma * xhat + beta, (xhat, gamma, inv)


def batchnorm_backward(dout, cache):
    xhat, gamma, inv = cache
    N = dout.shape[0]
    dxhat = dout * gamma
    dx = inv / N * (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def conv_forward(x, w, b):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    Ho, Wo = (H + 2 - HH) // 2 + 1, (W + 2 - WW) // 2 + 1
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w, b))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, f, i, j] = np.sum(xp_[n, :, 2 * i:2 * i + HH, 2 * j:2 * j + WW] * w[f]) + b[f]
    return out, (x, w)


def conv_backward(dout, cache):
    x, w = cache
    _, _, H, W = x.shape
    F, _, HH, WW = w.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dxp, dw = np.zeros_like(xp_), np.zeros_like(w)
    for n in range(x.shape[0]):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    win = (n, slice(None), slice(2 * i, 2 * i + HH), slice(2 * j, 2 * j + WW))
                    dw[f] += xp_[win] * dout[n, f, i, j]
                    dxp[win] += w[f] * dout[n, f, i, j]
    return dxp[:, :, 1:1 + H, 1:1 + W], dw, dout.sum(axis=(0, 2, 3))


def _layers(rng):
    return [
        ("affine 8x6, 6x5", affine_forward, affine_backward,
         (rng.normal(size=(8, 6)), rng.normal(size=(6, 5)), rng.normal(size=5))),
        ("relu 8x6", relu_forward, relu_backward, (rng.uniform(0.1, 1, (8, 6)) * rng.choice([-1, 1], (8, 6)),)),
        ("batch norm 8x6", batchnorm_forward, batchnorm_backward,
         (rng.normal(size=(8, 6)), rng.normal(size=6), rng.normal(size=6))),
        ("naive conv 2x3x6x6, 4x3x3x3", conv_forward, conv_backward,
         (rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4))),
    ]


def _helper(fw, bw, inputs, rng):
    """What the helper-based check costs: every input's numeric VJP against backward, one dout."""
    out, cache = fw(*inputs)
    dout = rng.normal(size=np.shape(out))
    grads = bw(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    worst = 0.0
    for i, g in enumerate(grads):
        x = np.array(inputs[i], dtype=float)

        def f(xi, i=i):
            args = list(inputs)
            args[i] = xi
            return np.asarray(fw(*args)[0])

        num = eval_numerical_gradient_array(f, x, dout)
        worst = max(worst, float(np.max(np.abs(num - g) / np.maximum(1e-8, np.abs(num) + np.abs(g)))))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'layer':<30}{'witnesses':<26}{'first check':>12}{'repeat (median)':>17}{'helper (median)':>17}"
          f"{'repeat/helper':>15}")
    for name, fw, bw, inputs in _layers(rng):
        t = time.perf_counter()
        report = gradlab.check_layer(fw, bw, *inputs)
        first = time.perf_counter() - t
        assert report.ok, report
        ours, theirs = [], []
        for _ in range(args.repeats):  # interleaved: a load spike hits both alike
            t = time.perf_counter()
            gradlab.check_layer(fw, bw, *inputs)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            _helper(fw, bw, inputs, rng)
            theirs.append(time.perf_counter() - t)
        witnesses = "jax + central" if "yours vs jax" in report.comparisons else "central + complex step"
        o, h = statistics.median(ours), statistics.median(theirs)
        print(f"{name:<30}{witnesses:<26}{first:>11.3f}s{o:>16.3f}s{h:>16.3f}s{o / h:>15.2f}")

    n = 5000
    a = np.linspace(-1.0, 1.0, n)

    def f(w):
        return np.sum(a * np.sin(w))

    def grad(w):
        g = a * np.cos(w)
        g[1234] += 1e-3
        return g

    w = rng.normal(size=n)
    print(f"\nscalar function of {n} entries, one wrong gradient entry (index 1234, off by 1e-3), numeric witnesses:")
    for mode in ("fast", "full"):
        t = time.perf_counter()
        report = gradlab.check_function(f, grad, w, mode=mode, against=("numeric",))
        dt = time.perf_counter() - t
        named = any((1234,) in [tuple(e) for e in x.entries] for x in report.findings)
        evals = report.info["evaluations"]
        print(f"  {mode:<5} {dt:8.3f} s  {evals:7d} evaluations  ok={report.ok}  names entry 1234: {named}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
