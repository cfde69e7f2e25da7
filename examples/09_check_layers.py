"""Check layer-by-layer backward passes: affine, relu, batch norm and a naive convolution.

The classic assignments write each layer as `forward(*inputs) -> (out, cache)` and
`backward(dout, cache) -> gradients`. `gradlab.check_layer` checks the backward pass --
the vector-Jacobian product dout . J -- with several seeded random upstream gradients:
against jax when the forward pass is written against the array API (affine, relu, batch
norm here), against two numeric methods when it is plain numpy with loops (the
convolution). Each layer is checked correct, then with one planted bug, and the finding
names the input the bug is in (dx versus dw versus db) with the wrong entries.

Run:  python examples/09_check_layers.py
"""

import sys

import numpy as np
from array_api_compat import array_namespace

import gradlab


# --------------------------------------------------------------------------------- affine


def affine_forward(x, w, b):
    xp = array_namespace(x, w, b)
    return xp.reshape(x, (x.shape[0], -1)) @ w + b, (x, w)


def affine_backward(dout, cache, bug=False):
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout[0] if bug else dout.sum(axis=0)  # bug: the bias gradient of the first example only
    return dx, dw, db


# ----------------------------------------------------------------------------------- relu


def relu_forward(x):
    return array_namespace(x).maximum(x, 0.0), x


def relu_backward(dout, cache, bug=False):
    x = cache
    return dout * (x > 0) if not bug else dout.copy()  # bug: the mask forgotten


# ---------------------------------------------------------------------- batch normalisation


def batchnorm_forward(x, gamma, beta, bn_param):
    xp = array_namespace(x, gamma, beta)
    mu = xp.mean(x, axis=0)
    var = xp.mean((x - mu) ** 2, axis=0)
    inv = 1.0 / xp.sqrt(var + bn_param["eps"])
    xhat = (x - mu) * inv
    return gamma * xhat + beta, (xhat, gamma, inv)


def batchnorm_backward(dout, cache, bug=False):
    xhat, gamma, inv = cache
    N = dout.shape[0]
    dgamma = (dout * xhat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dxhat = dout * gamma
    if bug:  # the two terms through the batch mean and variance left out
        return dxhat * inv, dgamma, dbeta
    return inv / N * (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)), dgamma, dbeta


# ---------------------------------------------------------------- naive convolution (loops)


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * p - HH) // s, 1 + (W + 2 * p - WW) // s
    xp_ = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w, b))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, f, i, j] = np.sum(xp_[n, :, i * s:i * s + HH, j * s:j * s + WW] * w[f]) + b[f]
    return out, (x, w, conv_param)


def conv_backward_naive(dout, cache, bug=False):
    x, w, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    _, _, H, W = x.shape
    F, _, HH, WW = w.shape
    xp_ = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dx_pad, dw = np.zeros_like(xp_), np.zeros_like(w)
    for n in range(x.shape[0]):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = (n, slice(None), slice(i * s, i * s + HH), slice(j * s, j * s + WW))
                    dw[f] += xp_[window] * dout[n, f, i, j]
                    dx_pad[window] += w[f] * dout[n, f, i, j]
    db = dout.sum(axis=(0, 2, 3))
    if bug:  # the filter gradient flipped, as if the forward pass were a true convolution
        dw = dw[:, :, ::-1, ::-1]
    return dx_pad[:, :, p:p + H, p:p + W], dw, db


def main() -> int:
    rng = np.random.default_rng(0)
    layers = [
        ("affine", affine_forward, affine_backward,
         (rng.normal(size=(4, 2, 3)), rng.normal(size=(6, 5)), rng.normal(size=5)), "b"),
        ("relu", relu_forward, relu_backward,
         (rng.uniform(0.1, 2.0, size=(4, 5)) * rng.choice([-1.0, 1.0], size=(4, 5)),), "x"),
        ("batch norm", batchnorm_forward, batchnorm_backward,
         (rng.normal(size=(5, 3)) * 2 + 1, rng.normal(size=3), rng.normal(size=3), {"eps": 1e-5}), "x"),
        ("convolution", conv_forward_naive, conv_backward_naive,
         (rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), {"stride": 2, "pad": 1}),
         "w"),
    ]
    all_ok = True
    for n, (name, fw, bw, inputs, buggy_input) in enumerate(layers, start=1):
        good = gradlab.check_layer(fw, bw, *inputs)
        bad = gradlab.check_layer(fw, lambda dout, cache, bw=bw: bw(dout, cache, bug=True), *inputs)
        witnesses = "jax and central differences" if "yours vs jax" in good.comparisons else \
            "central differences and the complex step"
        first = next(iter(good.comparisons.values()))
        print(f"{n}. {name}: inputs {good.info['inputs_text']}")
        for note in good.notes:
            print(f"   {note}")
        print(f"   witnesses {witnesses}; correct backward: {'PASS' if good.ok else 'FAIL'} "
              f"({next(iter(good.comparisons))}: {first['measure']} {first['value']:.3e})")
        blamed = [f for f in bad.findings if f.blame == "user"]
        for f in blamed:
            val = f.values[0]
            print(f"   planted bug: [{f.kind}] in the gradient of {f.input} (input {f.position}), "
                  f"{f.extra['n_entries']} wrong entr{'y' if f.extra['n_entries'] == 1 else 'ies'}; "
                  f"e.g. {f.input}{list(val['entry'])}: yours={val['yours']:.6f}, expected={val['expected']:.6f}")
        all_ok &= good.ok and not bad.ok and [f.input for f in blamed] == [buggy_input]
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
