"""Hand-written gradients as students write them: the course's sister programs and the
classic layer-by-layer assignments, each correct -- or with one planted bug.

Each ``make_<name>(bug=None)`` returns the pair gradlab checks: ``(f, grad)`` for a scalar
function (``grad`` None when ``f`` returns ``(value, gradient)``), or ``(forward,
backward)`` for a layer. Forward passes and costs marked *array API* are written against
``xp = array_namespace(...)`` so that jax can trace them; the others are plain numpy
(loops, in-place assignment), as naive reference implementations are. Backward passes are
plain numpy: gradlab never traces them.

``CASES`` lists, per implementation, how to draw inputs away from kinks, the planted
bug and what a check must say about it: the input named and the wrong entries.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace


def _named(fn, name):
    fn.__name__ = fn.__qualname__ = name
    return fn


# ------------------------------------------------------ regularised linear regression (array API)


def make_linear_regression(bug=None):
    """J = 1/(2m) |X theta - y|^2 + lam/(2m) |theta[1:]|^2 (theta[0] the bias, not regularised)."""

    def cost(theta, X, y, lam):
        xp = array_namespace(theta, X, y)
        m = X.shape[0]
        r = X @ theta - y
        return xp.sum(r * r) / (2 * m) + lam / (2 * m) * xp.sum(theta[1:] * theta[1:])

    def grad(theta, X, y, lam):
        m = X.shape[0]
        g = X.T @ (X @ theta - y) / m
        reg = lam / m * theta.copy()
        if bug != "bias_regularised":
            reg[0] = 0.0
        return g + reg

    return _named(cost, "linear_cost"), _named(grad, "linear_grad")


# ---------------------------------------------------- regularised logistic regression (array API)


def make_logistic_regression(bug=None):
    """J = -(1/m) sum [y log h + (1 - y) log(1 - h)] + lam/(2m) |theta[1:]|^2, h = sigmoid(X theta);
    returns (J, grad) from one function, as the course's costFunctionReg does."""

    def cost_function_reg(theta, X, y, lam):
        xp = array_namespace(theta, X, y)
        m = X.shape[0]
        z = X @ theta
        # log h = -softplus(-z), log(1 - h) = -softplus(z): finite for saturated units.
        softplus = lambda t: xp.maximum(t, 0.0) + xp.log1p(xp.exp(-xp.abs(t)))
        J = xp.sum(y * softplus(-z) + (1 - y) * softplus(z)) / m + lam / (2 * m) * xp.sum(theta[1:] ** 2)
        h = 1.0 / (1.0 + xp.exp(-z))
        err = (y - h) if bug == "sign_data_term" else (h - y)
        g = X.T @ err / m
        mask = xp.concat([xp.zeros(1, dtype=theta.dtype), xp.ones(theta.shape[0] - 1, dtype=theta.dtype)])
        return J, g + lam / m * theta * mask

    return _named(cost_function_reg, "cost_function_reg"), None


# --------------------------------------------------------------------------- affine (array API)


def make_affine(bug=None):
    def affine_forward(x, w, b):
        N = x.shape[0]
        xp = array_namespace(x, w, b)
        out = xp.reshape(x, (N, -1)) @ w + b
        return out, (x, w, b)

    def affine_backward(dout, cache):
        x, w, b = cache
        N = x.shape[0]
        dx = (dout @ w.T).reshape(x.shape)
        dw = x.reshape(N, -1).T @ dout
        db = dout[0] if bug == "db_first_example" else dout.sum(axis=0)
        return dx, dw, db

    return affine_forward, affine_backward


# ---------------------------------------------------------------- activations (array API)


def make_relu(bug=None):
    def relu_forward(x):
        xp = array_namespace(x)
        return xp.maximum(x, 0.0), x

    def relu_backward(dout, cache):
        x = cache
        if bug == "no_mask":
            return dout.copy()
        return dout * (x > 0)

    return relu_forward, relu_backward


def make_sigmoid(bug=None):
    def sigmoid_forward(x):
        xp = array_namespace(x)
        out = 1.0 / (1.0 + xp.exp(-x))
        return out, out

    def sigmoid_backward(dout, cache):
        s = cache
        return dout * s if bug == "missing_1_minus_s" else dout * s * (1.0 - s)

    return sigmoid_forward, sigmoid_backward


def make_tanh(bug=None):
    def tanh_forward(x):
        xp = array_namespace(x)
        out = xp.tanh(x)
        return out, out

    def tanh_backward(dout, cache):
        t = cache
        return dout * (1.0 - t) if bug == "forgot_square" else dout * (1.0 - t * t)

    return tanh_forward, tanh_backward


# ------------------------------------------------------------------------- losses (array API)


def make_softmax_loss(bug=None):
    """Mean cross-entropy of softmax scores x (N, C) against integer labels y; returns (loss, dx)."""

    def softmax_loss(x, y):
        xp = array_namespace(x)
        N, C = x.shape
        shifted = x - xp.max(x, axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        onehot = xp.astype(xp.reshape(y, (N, 1)) == xp.reshape(xp.arange(C), (1, C)), x.dtype)
        loss = -xp.sum(log_p * onehot) / N
        dx = xp.exp(log_p) - onehot
        return loss, (dx if bug == "no_1_over_N" else dx / N)

    return softmax_loss, None


def make_svm_loss(bug=None):
    """Multiclass hinge loss, mean over the batch, margin 1; returns (loss, dx)."""

    def svm_loss(x, y):
        xp = array_namespace(x)
        N, C = x.shape
        onehot = xp.reshape(y, (N, 1)) == xp.reshape(xp.arange(C), (1, C))
        correct = xp.sum(xp.where(onehot, x, 0.0), axis=1, keepdims=True)
        margins = xp.where(onehot, 0.0, xp.maximum(x - correct + 1.0, 0.0))
        loss = xp.sum(margins) / N
        positive = xp.astype(margins > 0, x.dtype)
        count = xp.sum(positive, axis=1, keepdims=True)
        dx = positive if bug == "no_correct_class_term" else positive - xp.astype(onehot, x.dtype) * count
        return loss, dx / N

    return svm_loss, None


# --------------------------------------------------------------- normalisation (array API)


def make_batchnorm(bug=None):
    """Batch normalisation in training mode: statistics of the batch, over axis 0."""

    def batchnorm_forward(x, gamma, beta, bn_param):
        xp = array_namespace(x, gamma, beta)
        eps = bn_param.get("eps", 1e-5)
        mu = xp.mean(x, axis=0)
        var = xp.mean((x - mu) ** 2, axis=0)
        inv = 1.0 / xp.sqrt(var + eps)
        xhat = (x - mu) * inv
        return gamma * xhat + beta, (xhat, gamma, inv)

    def batchnorm_backward(dout, cache):
        xhat, gamma, inv = cache
        N = dout.shape[0]
        dbeta = dout.sum(axis=0)
        dgamma = (dout * xhat).sum(axis=0)
        dxhat = dout * gamma
        if bug == "dx_without_mean_terms":
            dx = dxhat * inv
        else:
            dx = inv / N * (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
        return dx, dgamma, dbeta

    return batchnorm_forward, batchnorm_backward


def make_layernorm(bug=None):
    """Layer normalisation: statistics of each example, over axis 1."""

    def layernorm_forward(x, gamma, beta, ln_param):
        xp = array_namespace(x, gamma, beta)
        eps = ln_param.get("eps", 1e-5)
        mu = xp.mean(x, axis=1, keepdims=True)
        var = xp.mean((x - mu) ** 2, axis=1, keepdims=True)
        inv = 1.0 / xp.sqrt(var + eps)
        xhat = (x - mu) * inv
        return gamma * xhat + beta, (x, xhat, gamma, inv)

    def layernorm_backward(dout, cache):
        x, xhat, gamma, inv = cache
        D = dout.shape[1]
        dbeta = dout.sum(axis=0)
        dgamma = (dout * (x if bug == "dgamma_uses_x" else xhat)).sum(axis=0)
        dxhat = dout * gamma
        dx = inv / D * (D * dxhat - dxhat.sum(axis=1, keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=1, keepdims=True))
        return dx, dgamma, dbeta

    return layernorm_forward, layernorm_backward


# ------------------------------------------------ naive convolution and max pooling (numpy loops)


def make_conv(bug=None):
    """Naive convolution (cross-correlation) of x (N, C, H, W) with w (F, C, HH, WW), bias b (F,),
    conv_param {"stride", "pad"}: loops over examples, filters and output positions."""

    def conv_forward_naive(x, w, b, conv_param):
        stride, pad = conv_param["stride"], conv_param["pad"]
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
        xp_ = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w, b))
        for n in range(N):
            for f in range(F):
                for i in range(Ho):
                    for j in range(Wo):
                        window = xp_[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                        out[n, f, i, j] = np.sum(window * w[f]) + b[f]
        return out, (x, w, b, conv_param)

    def conv_backward_naive(dout, cache):
        x, w, b, conv_param = cache
        stride, pad = conv_param["stride"], conv_param["pad"]
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        _, _, Ho, Wo = dout.shape
        xp_ = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        dx_pad = np.zeros_like(xp_)
        dw = np.zeros_like(w)
        db = dout.sum(axis=(0, 2, 3))
        for n in range(N):
            for f in range(F):
                for i in range(Ho):
                    for j in range(Wo):
                        hs, ws = i * stride, j * stride
                        dw[f] += xp_[n, :, hs:hs + HH, ws:ws + WW] * dout[n, f, i, j]
                        dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]
        if bug == "unpad_from_corner":
            dx = dx_pad[:, :, :H, :W]
        else:
            dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
        return dx, dw, db

    return conv_forward_naive, conv_backward_naive


def make_max_pool(bug=None):
    """Naive max pooling of x (N, C, H, W), pool_param {"pool_height", "pool_width", "stride"}."""

    def max_pool_forward_naive(x, pool_param):
        ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
        N, C, H, W = x.shape
        Ho, Wo = 1 + (H - ph) // s, 1 + (W - pw) // s
        out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
        for i in range(Ho):
            for j in range(Wo):
                out[:, :, i, j] = np.max(x[:, :, i * s:i * s + ph, j * s:j * s + pw], axis=(2, 3))
        return out, (x, pool_param)

    def max_pool_backward_naive(dout, cache):
        x, pool_param = cache
        ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
        N, C, H, W = x.shape
        _, _, Ho, Wo = dout.shape
        dx = np.zeros_like(x)
        for n in range(N):
            for c in range(C):
                for i in range(Ho):
                    for j in range(Wo):
                        window = x[n, c, i * s:i * s + ph, j * s:j * s + pw]
                        if bug == "spread_evenly":
                            dx[n, c, i * s:i * s + ph, j * s:j * s + pw] += dout[n, c, i, j] / window.size
                        else:
                            a, b_ = np.unravel_index(np.argmax(window), window.shape)
                            dx[n, c, i * s + a, j * s + b_] += dout[n, c, i, j]
        return dx

    return max_pool_forward_naive, max_pool_backward_naive


# -------------------------------------------------------------------------- dropout (numpy)


def make_dropout(bug=None):
    """Inverted dropout in training mode with a fixed mask: drawn from dropout_param["seed"]."""

    def dropout_forward(x, dropout_param):
        p = dropout_param["p"]  # probability of keeping a unit
        mask = np.random.default_rng(dropout_param["seed"]).random(x.shape) < p
        return x * mask / p, (mask, p)

    def dropout_backward(dout, cache):
        mask, p = cache
        return dout * mask if bug == "forgot_1_over_p" else dout * mask / p

    return dropout_forward, dropout_backward


# --------------------------------------------------------------------- RNN step (array API)


def make_rnn_step(bug=None):
    """next_h = tanh(x Wx + prev_h Wh + b)."""

    def rnn_step_forward(x, prev_h, Wx, Wh, b):
        xp = array_namespace(x, prev_h, Wx, Wh, b)
        next_h = xp.tanh(x @ Wx + prev_h @ Wh + b)
        return next_h, (x, prev_h, Wx, Wh, next_h)

    def rnn_step_backward(dnext_h, cache):
        x, prev_h, Wx, Wh, next_h = cache
        dz = dnext_h * (1.0 - next_h ** 2)
        dx = dz @ Wx.T
        dprev_h = dz @ Wh.T
        dWx = x.T @ dz
        dWh = dz.T @ prev_h if bug == "dWh_transposed" else prev_h.T @ dz
        db = dz.sum(axis=0)
        return dx, dprev_h, dWx, dWh, db

    return rnn_step_forward, rnn_step_backward


# ---------------------------------------------------------------------- drawing inputs


def away_from_zero(rng, shape, low=0.1, high=2.0):
    """Entries with |x| in [low, high], random signs: far from relu's kink at 0."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def distinct(rng, shape, gap=0.05):
    """Entries a random permutation of a grid with spacing ``gap``: no two within a
    finite-difference step of each other, so no max has a near tie."""
    n = int(np.prod(shape))
    return (rng.permutation(n) - n / 2.0).reshape(shape) * gap


def svm_scores(rng, N, C):
    """Scores whose hinge margins s_j - s_y + 1 stay at least 0.011 from 0: 0.1 k + 0.037 j
    with integer k; a margin is 0.1 dk + 0.037 dj + 1, and 0.037 dj (0 < |dj| < 6) is never
    within 0.011 of a multiple of 0.1."""
    return 0.1 * rng.integers(-15, 15, size=(N, C)) + 0.037 * np.arange(C)[None, :]


def inputs_for(name, rng):
    """Inputs, away from kinks, for ``name`` (CASES' keys)."""
    N = 4
    if name == "linear_regression":
        X = np.c_[np.ones(N + 2), rng.normal(size=(N + 2, 3))]
        return rng.normal(size=4), X, rng.normal(size=N + 2), 0.7
    if name == "logistic_regression":
        X = np.c_[np.ones(N + 2), rng.normal(size=(N + 2, 2))]
        return rng.normal(size=3), X, (rng.random(N + 2) < 0.5).astype(float), 0.7
    if name == "affine":
        return rng.normal(size=(N, 2, 3)), rng.normal(size=(6, 5)), rng.normal(size=5)
    if name in ("relu",):
        return (away_from_zero(rng, (N, 5)),)
    if name in ("sigmoid", "tanh"):
        return (rng.normal(size=(N, 5)),)
    if name == "softmax_loss":
        return rng.normal(size=(N, 3)), rng.integers(0, 3, size=N)
    if name == "svm_loss":
        return svm_scores(rng, N, 3), rng.integers(0, 3, size=N)
    if name == "batchnorm":
        return rng.normal(size=(N, 3)) * 2 + 1, rng.normal(size=3), rng.normal(size=3), {"eps": 1e-5}
    if name == "layernorm":
        return rng.normal(size=(N, 5)) * 2 + 1, rng.normal(size=5), rng.normal(size=5), {"eps": 1e-5}
    if name == "conv":
        return (rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3),
                {"stride": 2, "pad": 1})
    if name == "max_pool":
        return distinct(rng, (2, 2, 4, 4)), {"pool_height": 2, "pool_width": 2, "stride": 2}
    if name == "dropout":
        return rng.normal(size=(N, 5)), {"p": 0.5, "seed": int(rng.integers(0, 2 ** 31))}
    if name == "rnn_step":
        return (rng.normal(size=(N, 3)), rng.normal(size=(N, 5)), rng.normal(size=(3, 5)) * 0.5,
                rng.normal(size=(5, 5)) * 0.5, rng.normal(size=5))
    raise KeyError(name)


#: name -> (kind, make, planted bug, the input the finding must name, its kind, wrong entries)
#: where "wrong entries" is a function of the inputs giving the set of multi-indices, or None
#: when every entry is wrong.
CASES = {
    "linear_regression": ("function", make_linear_regression, "bias_regularised", "theta", "entries",
                          lambda ins: {(0,)}),
    "logistic_regression": ("function", make_logistic_regression, "sign_data_term", "theta", "entries", None),
    "affine": ("layer", make_affine, "db_first_example", "b", "partial_batch", None),
    "relu": ("layer", make_relu, "no_mask", "x", "entries",
             lambda ins: {tuple(int(i) for i in e) for e in np.argwhere(ins[0] < 0)}),
    "sigmoid": ("layer", make_sigmoid, "missing_1_minus_s", "x", "entries", None),
    "tanh": ("layer", make_tanh, "forgot_square", "x", "entries", None),
    "softmax_loss": ("function", make_softmax_loss, "no_1_over_N", "x", "constant_factor", None),
    "svm_loss": ("function", make_svm_loss, "no_correct_class_term", "x", "entries",
                 lambda ins: _svm_wrong(*ins)),
    "batchnorm": ("layer", make_batchnorm, "dx_without_mean_terms", "x", "entries", None),
    "layernorm": ("layer", make_layernorm, "dgamma_uses_x", "gamma", "entries", None),
    "conv": ("layer", make_conv, "unpad_from_corner", "x", "entries", None),
    "max_pool": ("layer", make_max_pool, "spread_evenly", "x", "entries", None),
    "dropout": ("layer", make_dropout, "forgot_1_over_p", "x", "constant_factor", None),
    "rnn_step": ("layer", make_rnn_step, "dWh_transposed", "Wh", "transposed", None),
}

#: Implementations whose forward pass (or cost) is written against the array API.
ARRAY_API = {"linear_regression", "logistic_regression", "affine", "relu", "sigmoid", "tanh", "softmax_loss",
             "svm_loss", "batchnorm", "layernorm", "rnn_step"}

#: The inputs each check differentiates (None: every float array).
WRT = {"linear_regression": "theta", "logistic_regression": "theta", "softmax_loss": "x", "svm_loss": "x"}


def planted_wrong_entries(name, inputs, index, *, seed=99, n_douts=3):
    """The entries of the ``index``-th gradient (in the order the implementation returns its
    gradients) where the planted bug's differs from the correct implementation's -- for a
    layer, with any of ``n_douts`` random upstream gradients. An oracle for the wrong entries
    independent of gradlab: the two hand-written implementations side by side."""
    kind, make, bug = CASES[name][:3]
    (f_good, g_good), (f_bad, g_bad) = make(None), make(bug)

    def grads(f, g, *args):
        out = f(*inputs)[1] if g is None else g(*args)
        return out if isinstance(out, tuple) else (out,)

    if kind == "function":
        pairs = [(grads(f_good, g_good, *inputs)[index], grads(f_bad, g_bad, *inputs)[index])]
    else:
        rng = np.random.default_rng(seed)
        out, _ = f_good(*inputs)
        pairs = []
        for _ in range(n_douts):
            dout = rng.normal(size=np.shape(out))
            pairs.append((grads(lambda *a: None, g_good, dout, f_good(*inputs)[1])[index],
                          grads(lambda *a: None, g_bad, dout, f_bad(*inputs)[1])[index]))
    wrong = np.zeros(np.shape(pairs[0][0]), dtype=bool)
    for good, bad in pairs:
        wrong |= ~np.isclose(good, bad, rtol=1e-9, atol=1e-12)
    return {tuple(int(i) for i in e) for e in np.argwhere(wrong)}


def _svm_wrong(x, y):
    """Entries the missing correct-class term leaves wrong: (i, y_i) of every example with a
    positive margin."""
    N, C = x.shape
    out = set()
    for i in range(N):
        margins = x[i] - x[i, y[i]] + 1.0
        margins[y[i]] = 0.0
        if np.any(margins > 0):
            out.add((i, int(y[i])))
    return out
