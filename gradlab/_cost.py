"""The maths, written once against an array namespace ``xp`` (numpy or jax.numpy).

The regularised cross-entropy cost, the forward pass, the parameter layout and the
hidden activations are defined here and nowhere else. numpy evaluates these functions for
back-propagation and finite differences; jax traces the very same functions for autodiff.
No other copy of this maths exists in gradlab, so agreement between the gradient sources
means something.

This module imports numpy only. Its functions take a ``network`` that has ``sizes``,
``shapes``, ``offsets`` and ``activation`` (a :class:`gradlab.Network`).

Stable forms. With pos = Re(z) > 0, s = +1 where pos and -1 elsewhere, e = exp(-s z)
never overflows (|e| <= 1), and::

    sigmoid(z)          = where(pos, 1, e) / (1 + e)
    -log sigmoid(z)     = softplus(-z) = log1p(e) + where(pos, 0, -z)
    -log(1-sigmoid(z))  = softplus(z)  = log1p(e) + where(pos, z, 0)

Each branch is an analytic function of z, so the forms also hold for complex z.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "SIGMOID",
    "unpack",
    "sigmoid",
    "cross_entropy",
    "affine",
    "forward",
    "regularisation",
    "cost_from_forward",
    "cost",
]


# --------------------------------------------------------------------------------------
# Parameter layout
# --------------------------------------------------------------------------------------


def unpack(network, params):
    """Per-layer matrices of a flat vector, as views; works for numpy and jax arrays alike.

    ``Theta_l`` has shape ``(s_{l+1}, s_l + 1)`` (column 0 multiplies the bias unit) and
    the matrices follow each other in the flat vector, each flattened row by row. A stack
    of vectors ``(B, n_params)`` gives stacks of matrices ``(B, rows, cols)``.
    """
    offsets = network.offsets
    lead = params.shape[:-1]
    return [
        params[..., offsets[i] : offsets[i + 1]].reshape(lead + shape)
        for i, shape in enumerate(network.shapes)
    ]


# --------------------------------------------------------------------------------------
# Activations: each one's g, and right beside it g' (from a = g(z) and from z) and g''
# --------------------------------------------------------------------------------------


def _exp_neg_abs(xp, z):
    pos = xp.real(z) > 0
    return pos, xp.exp(xp.where(pos, -z, z))


def sigmoid(xp, z, out=None, of_negative=False):
    """Logistic function g(z) = 1 / (1 + exp(-z)), finite for any z.

    ``out`` (numpy only) receives the result; it may be ``z`` itself.
    ``of_negative=True`` gives g(-z) = 1 / (1 + exp(z)) without forming -z.
    """
    if xp is np and np.isrealobj(z):
        # Real numpy arrays: 1 / (1 + exp(-z)) in four in-place passes (the stable form
        # below takes about eight and several temporaries), good to a few ulp. exp(-z)
        # overflows to inf only for z < -709.78, where the result becomes 0 instead of
        # a subnormal number below 2.3e-308: an absolute error no gradient can see.
        # g(-z) skips the negation: exp(-(-z)) is exp(z), the very same numbers.
        with np.errstate(over="ignore"):
            if of_negative:
                t = np.asarray(np.exp(z, out=out))
            else:
                t = np.asarray(np.negative(z, out=out))
                np.exp(t, out=t)
        t += 1.0
        return np.reciprocal(t, out=t)
    if of_negative:
        z = -z
    pos, e = _exp_neg_abs(xp, z)
    return xp.where(pos, 1.0, e) / (1.0 + e)


def _times_sigmoid_prime(delta, a):
    """delta *= a (1 - a) in place; ``a`` is overwritten."""
    delta *= a
    np.subtract(1.0, a, out=a)
    delta *= a


def _sigmoid_first_second(z, a):
    """(g'(z), g''(z)) from z and a = g(z): g' = g(z) g(-z), g'' = g' (g(-z) - g(z)).

    The product form keeps a saturated unit's tiny derivative to full relative accuracy
    (``a (1 - a)`` rounds it to zero once a rounds to 1)."""
    t = np.negative(z)
    sigmoid(np, t, out=t)  # g(-z) = 1 - g(z), without the cancellation
    gp = a * t
    t -= a                  # g(-z) - g(z) = 1 - 2a
    t *= gp
    return gp, t


def _tanh(xp, z, out=None):
    """Hyperbolic tangent; analytic, so complex inputs propagate.

    ``out`` (numpy only) receives the result; it may be ``z`` itself.
    """
    if out is not None:
        return np.tanh(z, out=out)
    return xp.tanh(z)


def _times_tanh_prime(delta, a):
    """delta *= 1 - a^2 in place; ``a`` is overwritten."""
    np.multiply(a, a, out=a)
    np.subtract(1.0, a, out=a)
    delta *= a


def _tanh_first_second(z, a):
    """(g'(z), g''(z)) from z and a = tanh z: g' = sech^2 z = 4e / (1 + e)^2 with
    e = exp(-2|z|) (never overflows, keeps a saturated unit's tiny derivative), g'' = -2 a g'."""
    e = np.abs(z)
    e *= -2.0
    np.exp(e, out=e)
    d = e + 1.0
    d *= d
    gp = np.divide(e, d, out=e)
    gp *= 4.0
    return gp, (-2.0 * a) * gp


def _relu(xp, z, out=None):
    """max(0, z), written as a branch on Re(z) so that a complex step stays analytic.

    At z = 0 it takes the "off" branch, so the derivative used by every source is
    relu'(0) = 0: jax differentiates this very ``where``, back-propagation uses
    ``a > 0`` as its local derivative, and the complex step never leaves the branch.
    ``out`` (real numpy only) receives the result.
    """
    if out is not None:
        return np.maximum(z, 0.0, out=out)
    return xp.where(xp.real(z) > 0, z, 0.0 * z)


def _times_relu_prime(delta, a):
    """delta *= (a > 0) in place (0 at the kink, as jax differentiates the ``where``)."""
    delta *= a > 0


def _relu_first_second(z, a):
    """(g'(z), None): g' = 1 if z > 0 else 0, g'' = 0 away from the kink (None: zero);
    at the kink both are 0, as jax differentiates the ``where``."""
    return (z > 0).astype(np.float64), None


@dataclasses.dataclass(frozen=True)
class Activation:
    """One hidden activation: its function and its derivative, side by side.

    Attributes
    ----------
    name : str
    g : callable
        ``g(xp, z, out=None)``, the activation (``out``: numpy only, may be ``z``).
    gprime_from_a : callable
        ``g'(z)`` computed from the activation ``a = g(z)`` (numpy), a new array.
    gprime_from_z : callable
        ``g'(z)`` computed from ``z`` (numpy).
    times_gprime : callable
        ``times_gprime(delta, a)``: ``delta *= g'(z)`` in place, from ``a``, which it may
        overwrite (back-propagation's hot loop).
    gprime_formula : str
        g'(z) written in terms of ``a`` (for reports: "a (1 - a)").
    gprime_max : float
        The largest value of g' (a delta grows by at most this factor, times the weights,
        per layer on its way back; bounds round-off and overflow).
    first_second : callable
        ``first_second(z, a)``: ``(g'(z), g''(z))`` from z and ``a = g(z)`` (numpy), new
        arrays; g'' is None where it is zero everywhere (relu). For the R-operator
        (:mod:`gradlab.sources.rop`), whose R-backward pass needs g''.
    gsecond_formula : str
        g''(z) written in terms of ``a`` (for reports: "a (1 - a) (1 - 2a)").
    gsecond_max : float
        The largest value of |g''| (bounds the round-off of Hessian-vector products).
    kink : bool
        The activation has a kink at z = 0, where the cost is only piecewise smooth.
    bounded : bool
        ``|g(z)| <= 1`` for every z (sigmoid, tanh); relu's output grows with z.
    """

    name: str
    g: Callable
    gprime_from_a: Callable
    gprime_from_z: Callable
    times_gprime: Callable
    gprime_formula: str
    gprime_max: float
    first_second: Callable
    gsecond_formula: str
    gsecond_max: float
    kink: bool
    bounded: bool

    def __call__(self, xp, z, out=None):
        """``g(xp, z, out)``: an activation is called as its function."""
        return self.g(xp, z, out)


SIGMOID = Activation(
    "sigmoid", sigmoid,
    gprime_from_a=lambda a: a * (1.0 - a),
    gprime_from_z=lambda z: sigmoid(np, z) * sigmoid(np, -np.asarray(z)),
    times_gprime=_times_sigmoid_prime, gprime_formula="a (1 - a)", gprime_max=0.25,
    # |g''| is largest at g = 1/2 +- 1/(2 sqrt 3): 1/(6 sqrt 3)
    first_second=_sigmoid_first_second, gsecond_formula="a (1 - a) (1 - 2 a)", gsecond_max=1.0 / (6.0 * math.sqrt(3.0)),
    kink=False, bounded=True)

#: Hidden-layer activations by name, one line each. The output layer is always sigmoid
#: with the cross-entropy cost (:data:`SIGMOID`).
ACTIVATIONS = {
    "sigmoid": SIGMOID,
    "tanh": Activation("tanh", _tanh, gprime_from_a=lambda a: 1.0 - a * a,
                       gprime_from_z=lambda z: 1.0 - np.tanh(z) ** 2, times_gprime=_times_tanh_prime,
                       gprime_formula="1 - a^2", gprime_max=1.0,
                       # |g''| is largest at tanh z = +-1/sqrt 3: 4/(3 sqrt 3)
                       first_second=_tanh_first_second, gsecond_formula="-2 a (1 - a^2)",
                       gsecond_max=4.0 / (3.0 * math.sqrt(3.0)), kink=False, bounded=True),
    "relu": Activation("relu", _relu, gprime_from_a=lambda a: (a > 0).astype(np.float64),
                       gprime_from_z=lambda z: (np.real(z) > 0).astype(np.float64), times_gprime=_times_relu_prime,
                       gprime_formula="1 if a > 0 else 0", gprime_max=1.0,
                       first_second=_relu_first_second, gsecond_formula="0 (away from the kink)", gsecond_max=0.0,
                       kink=True, bounded=False),
}


# --------------------------------------------------------------------------------------
# Forward pass and cost
# --------------------------------------------------------------------------------------


def cross_entropy(xp, z, Y):
    """Per-entry binary cross-entropy of outputs g(z) against targets Y, from z directly.

    -[y log g(z) + (1 - y) log(1 - g(z))] = y softplus(-z) + (1 - y) softplus(z)
    = log1p(e) + where(pos, (1 - y) z, -y z); no log of a rounded probability, so a
    saturated unit gives a finite cost, and no subtraction cancels for y in {0, 1}.
    """
    pos, e = _exp_neg_abs(xp, z)
    return xp.log1p(e) + xp.where(pos, (1.0 - Y) * z, -Y * z)


def affine(xp, a, theta):
    """``z = [1, a] Theta^T``, computed as ``a Theta[:, 1:]^T + Theta[:, 0]``.

    The same sum without building the bias column. Written with ``swapaxes`` and
    ``...`` so that ``theta`` (and ``a``) may carry a leading batch axis: a stack of B
    weight matrices ``(B, rows, cols)`` maps ``a`` of shape ``(m, n)`` or ``(B, m, n)`` to
    ``(B, m, rows)`` in one broadcast matrix product (how the numeric source evaluates
    many perturbed parameter vectors at once). Unbatched it is exactly
    ``a @ theta[:, 1:].T + theta[:, 0]``.
    """
    if xp is np and a.ndim == 2 and theta.ndim == 2:
        # numpy: z^T = Theta[:, 1:] a^T, so z comes out transposed (column-major), the
        # orientation BLAS runs 10-30% faster for tall data; the next layer and the
        # backward products read it without a copy. The bias is added in place (no second
        # m x s array). (jax picks its own layouts; it traces the plain product below.)
        z = (theta[:, 1:] @ a.T).T
        z += theta[:, 0]
        return z
    if a.ndim == 2 and theta.ndim == 3:
        # Shared input (the first layer): one tall matrix product for all B stacks of
        # weights, (m, n) @ (n, B*rows), instead of B thin ones -- about 1.5x faster.
        B, rows, cols = theta.shape
        z = (a @ theta[..., 1:].reshape(B * rows, cols - 1).T).reshape(a.shape[0], B, rows)
        return xp.swapaxes(z, 0, 1) + theta[:, None, :, 0]
    return a @ xp.swapaxes(theta[..., 1:], -1, -2) + theta[..., None, :, 0]


def forward(xp, network, params, X, z_shifts=None, keep_z=True):
    """Forward pass. Returns ``zs`` (pre-activations of layers 2..L) and ``acts``
    (activations of layers 1..L-1 without the bias unit; ``acts[0]`` is X).

    ``keep_z=False`` (real numpy only) saves memory for back-propagation, which needs the
    activations but not the hidden pre-activations: each hidden ``a = g(z)`` is written
    over its ``z``, and ``zs`` then holds the output layer's ``z`` alone.

    Hidden layers apply ``network.activation``; the output layer's pre-activation is
    returned as is (the cost applies the sigmoid inside its stable cross-entropy).

    ``params`` is the flat vector, or a stack of them with shape ``(B, n_params)``;
    then every z and activation gains the same leading axis B (see :func:`affine`).

    ``z_shifts`` (optional, one array per layer 2..L, shaped like its z) is added to each
    pre-activation. At zero shifts nothing changes, and the derivative of the cost with
    respect to the shifts is dJ/dz for every layer: how autodiff exposes the deltas.
    """
    g = ACTIVATIONS[network.activation].g
    thetas = unpack(network, params)
    acts = [X]
    zs = []
    a = X
    for i, theta in enumerate(thetas):
        z = affine(xp, a, theta)
        if z_shifts is not None:
            z = z + z_shifts[i]
        hidden = i + 1 < len(thetas)
        if keep_z or not hidden:
            zs.append(z)
        if hidden:
            a = g(xp, z) if keep_z else g(xp, z, out=z)
            acts.append(a)
    return zs, acts


def regularisation(xp, network, params, lam, m):
    """lam / (2m) times the sum of squares of every weight except column 0 (the bias).

    ``w * w``, not ``abs(w) ** 2``: the square is analytic, so a complex step through
    the cost stays exact. Sums run over the last two axes (one total per batch entry).
    """
    total = 0.0
    for theta in unpack(network, params):
        w = theta[..., 1:]
        total = total + xp.sum(w * w, axis=(-2, -1))
    return lam / (2.0 * m) * total


def cost_from_forward(xp, network, params, z_out, Y, lam, columns=None, mask=None, m=None):
    """J from the output pre-activations of a forward pass already run (no second pass).

    ``columns`` (unbatched numpy only) sums the cross-entropy over blocks of that many
    output units (columns of ``z_out``, contiguous in the forward pass's layout), so its
    temporaries are a few m x columns arrays instead of a few m x K arrays.

    ``mask`` (optional, shaped like ``Y``, entries 0 or 1) leaves out of the
    cross-entropy sum every entry where it is 0, and ``m`` (optional; the number of rows
    of ``z_out`` by default) is the number of examples in ``1/m`` and ``lam/(2m)``.
    Together they let a network padded with inert units and examples (zero weights,
    zero rows) give exactly the cost of the network inside it: the padded entries'
    cross-entropy is finite and multiplied by 0, and zero weights add nothing to the
    sum of squares.
    """
    K = z_out.shape[-1]
    if m is None:
        m = z_out.shape[-2]
    if mask is not None:
        data_sum = xp.sum(mask * cross_entropy(xp, z_out, Y), axis=(-2, -1))
    elif columns is None or columns >= K:
        data_sum = xp.sum(cross_entropy(xp, z_out, Y), axis=(-2, -1))
    else:
        data_sum = sum(
            xp.sum(cross_entropy(xp, z_out[:, k : k + columns], Y[:, k : k + columns]))
            for k in range(0, K, columns)
        )
    return data_sum / m + regularisation(xp, network, params, lam, m)


def cost(xp, network, params, X, Y, lam, z_shifts=None, mask=None, m=None):
    """The regularised cross-entropy cost J(params): the one definition in gradlab.

    ``params`` of shape ``(n_params,)`` gives a scalar; a stack ``(B, n_params)`` gives
    the B costs, shape ``(B,)``, through one set of (batched) matrix products. Complex
    ``params`` propagate analytically (every branch is chosen on the real part and is
    an analytic function), which is what the complex-step derivative needs.

    ``mask`` and ``m`` (optional) leave entries of ``Y`` out of the sum and fix the
    number of examples; see :func:`cost_from_forward`.
    """
    zs, _ = forward(xp, network, params, X, z_shifts)
    return cost_from_forward(xp, network, params, zs[-1], Y, lam, mask=mask, m=m)
