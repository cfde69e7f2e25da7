"""Network, Problem, parameter layout, initialisers, the forward pass, the cost, predict.

The cost and the forward pass are written **once**, here, against an array namespace
``xp`` (``numpy`` or ``jax.numpy``). numpy evaluates them for back-propagation and
finite differences; jax traces the very same functions for autodiff. No other copy of
this maths exists in gradlab, so agreement between the gradient sources means something.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers

import numpy as np

from gradlab import _resources
from gradlab import _validate as v
from gradlab._errors import GradlabError

__all__ = [
    "Network",
    "Problem",
    "random_init",
    "debug_init",
    "debug_problem",
    "cost",
    "predict",
    "accuracy",
]


# --------------------------------------------------------------------------------------
# Network: layer sizes and the flat parameter layout
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Network:
    """A fully connected network, described by its layer sizes and hidden activation.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first and outputs last, e.g. ``(400, 25, 10)``. At least
        two layers; every size a positive integer.
    activation : {"sigmoid", "tanh", "relu"}, default "sigmoid"
        Activation of the hidden units. The output layer is always sigmoid with the
        cross-entropy cost. ``"relu"`` has a kink at 0, where the cost is not
        differentiable; gradlab takes relu'(0) = 0 and the numeric source reports
        finite-difference stencils that cross a kink (see :mod:`gradlab.sources.numeric`).

    Notes
    -----
    ``Theta_l`` maps layer ``l`` to layer ``l + 1`` and has shape ``(s_{l+1}, s_l + 1)``;
    column 0 multiplies the bias unit. All matrices travel as one flat float64 vector,
    ``Theta_1`` then ``Theta_2`` ..., each flattened row by row, exactly as the seed
    program lays them out.

    Raises
    ------
    GradlabError
        If ``sizes`` has fewer than two entries or any entry is not a positive integer,
        or ``activation`` is not one of the names above.

    Examples
    --------
    >>> net = Network((3, 5, 3))
    >>> net.shapes, net.n_params
    (((5, 4), (3, 6)), 38)
    >>> Network((3, 5, 3), activation="relu")
    Network(sizes=(3, 5, 3), activation='relu')
    """

    sizes: tuple[int, ...]
    activation: str = "sigmoid"

    def __post_init__(self):
        sizes = self.sizes
        accepted = "at least two positive integers"
        if (isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__")
                or (isinstance(sizes, np.ndarray) and sizes.ndim != 1)):
            raise v.fail("sizes", sizes, accepted)
        if isinstance(sizes, (set, frozenset, dict)):
            # No order (and a set drops a repeated width): which layer is which would be a guess.
            raise v.fail("sizes", sizes, accepted + " in order (a list or tuple, not a set)")
        sizes = tuple(sizes)
        if len(sizes) < 2 or any(
            isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1
            for s in sizes
        ):
            raise v.fail("sizes", sizes, accepted)
        object.__setattr__(self, "sizes", tuple(int(s) for s in sizes))
        # str(): a numpy string (from an array of names) is kept as the plain name.
        object.__setattr__(self, "activation", str(v.choice("activation", self.activation, ACTIVATIONS)))
        if self.n_params > _MAX_PARAMS:
            # Python's integers do not overflow, numpy's indices do: refuse here rather
            # than let an initialiser fail with OverflowError deep inside numpy.
            raise v.fail("sizes", self.sizes, f"layer sizes whose parameter count ({self.n_params:.3g}) fits in a numpy "
                         f"array (at most {_MAX_PARAMS:.3g} entries)")

    @property
    def n_layers(self) -> int:
        """Number of layers, inputs and outputs included."""
        return len(self.sizes)

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Shape of each weight matrix ``Theta_l``: ``(s_{l+1}, s_l + 1)``."""
        return tuple((b, a + 1) for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each ``Theta_l`` in the flat vector, plus the total length at the end."""
        out = [0]
        for r, c in self.shapes:
            out.append(out[-1] + r * c)
        return tuple(out)

    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector."""
        return self.offsets[-1]

    def check_params(self, params, name: str = "params") -> np.ndarray:
        """Validate a flat parameter vector for this network; return a float64 copy."""
        arr = v.float_array(name, params, ndim=1)
        if arr.shape[0] != self.n_params:
            raise GradlabError(
                f"{name} must be a 1-D array of length {self.n_params} for sizes={self.sizes}; "
                f"got {name} with length {arr.shape[0]}"
            )
        return arr

    def unpack(self, params) -> list[np.ndarray]:
        """The weight matrices as views into ``params`` (no copy when it is float64 1-D).

        The views share memory with ``params``: writing into them writes into the vector.
        """
        arr = np.asarray(params)
        if arr.ndim != 1 or arr.shape[0] != self.n_params:
            raise GradlabError(
                f"params must be a 1-D array of length {self.n_params} for sizes={self.sizes}; "
                f"got params with shape {arr.shape}"
            )
        return _unpack(self, arr)

    def pack(self, matrices) -> np.ndarray:
        """Flatten a list of weight matrices (row by row) into a new flat vector."""
        if isinstance(matrices, (str, bytes, np.ndarray)) or not hasattr(matrices, "__iter__"):
            raise v.fail("matrices", matrices, f"a sequence of {len(self.shapes)} weight matrices")
        matrices = list(matrices)
        if len(matrices) != len(self.shapes):
            raise GradlabError(
                f"matrices must hold {len(self.shapes)} arrays for sizes={self.sizes}; "
                f"got {len(matrices)}"
            )
        parts = []
        for i, (m, shape) in enumerate(zip(matrices, self.shapes), start=1):
            arr = v.float_array(f"matrices[{i - 1}]", m, ndim=2)
            if arr.shape != shape:
                raise GradlabError(
                    f"matrices[{i - 1}] (Theta{i}) must have shape {shape}; got shape {arr.shape}"
                )
            parts.append(arr.ravel())
        return np.concatenate(parts)

    def locate(self, index: int) -> tuple[int, int, int]:
        """Map a flat index to ``(layer, row, column)``: layer 1 is Theta1, column 0 the bias."""
        index = v.integer("index", index, minimum=0)
        if index >= self.n_params:
            raise v.fail("index", index, f"an integer in [0, {self.n_params - 1}]")
        offsets = self.offsets
        for layer, (start, (_, cols)) in enumerate(zip(offsets, self.shapes), start=1):
            if index < offsets[layer]:
                row, col = divmod(index - start, cols)
                return layer, row, col
        raise AssertionError("unreachable")  # pragma: no cover


def _unpack(network: Network, params):
    """Per-layer matrices of a flat vector; works for numpy and jax arrays alike.

    A stack of vectors ``(B, n_params)`` gives stacks of matrices ``(B, rows, cols)``.
    """
    offsets = network.offsets
    lead = params.shape[:-1]
    return [
        params[..., offsets[i] : offsets[i + 1]].reshape(lead + shape)
        for i, shape in enumerate(network.shapes)
    ]


#: The most entries a numpy array can have: its index type's largest value.
_MAX_PARAMS = int(np.iinfo(np.intp).max)


# --------------------------------------------------------------------------------------
# Initialisers
# --------------------------------------------------------------------------------------


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(v.integer("seed", seed, minimum=0))


def _check_network(network) -> Network:
    if not isinstance(network, Network):
        raise v.fail("network", network, "a gradlab.Network")
    return network


def random_init(network: Network, seed=0) -> np.ndarray:
    """Random weights as the seed draws them: uniform in ``[-eps, eps]`` per layer.

    ``eps = sqrt(6 / (L_in + L_out))`` with ``L_in`` and ``L_out`` the sizes of the two
    layers a matrix joins (the seed's ``randInitializeWeights``).

    Parameters
    ----------
    network : Network
    seed : int or numpy.random.Generator
        Same seed, same weights.

    Returns
    -------
    numpy.ndarray
        Flat float64 vector of length ``network.n_params``.

    Examples
    --------
    >>> p = random_init(Network((3, 5, 3)), seed=0)
    >>> p.shape, bool(abs(p).max() <= (6 / 8) ** 0.5)
    ((38,), True)
    """
    network = _check_network(network)
    rng = _rng(seed)
    _resources.require_memory(_resources.init_memory(network.sizes))
    parts = []
    for (rows, cols) in network.shapes:
        eps = np.sqrt(6.0 / (rows + cols - 1))
        parts.append(rng.uniform(-eps, eps, size=rows * cols))
    return np.concatenate(parts)


def _debug_matrix(rows: int, cols: int) -> np.ndarray:
    """The seed's ``debugInitializeWeights``: sin(1..n)/10 reshaped row by row."""
    return np.sin(np.arange(1, rows * cols + 1, dtype=np.float64)).reshape(rows, cols) / 10.0


def debug_init(network: Network) -> np.ndarray:
    """Deterministic weights, ``sin(1..n) / 10`` layer by layer (the seed's debug weights).

    Examples
    --------
    >>> debug_init(Network((3, 5, 3)))[:2].round(6).tolist()
    [0.084147, 0.09093]
    """
    network = _check_network(network)
    _resources.require_memory(_resources.init_memory(network.sizes))
    return np.concatenate([_debug_matrix(r, c).ravel() for r, c in network.shapes])


# --------------------------------------------------------------------------------------
# Problem: a network with its data, validated and prepared once
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """A network, data and a regularisation strength: everything the cost depends on.

    Parameters
    ----------
    network : Network or sequence of int
        The network (layer sizes are accepted and turned into a Network).
    X : array_like, shape (m, n_inputs)
        Inputs, one example per row; finite real numbers, at least one row.
    y : array_like
        Either integer labels ``0..K-1`` of shape ``(m,)`` (or ``(m, 1)``), turned into
        one-hot rows, or a target matrix of shape ``(m, K)`` with entries in ``[0, 1]``
        (each output is an independent binary cross-entropy, so multi-label rows and
        all-zero rows are valid). A 2-D array of shape ``(m, K)`` is always read as a
        target matrix.
    lam : float, default 0.0
        Regularisation strength lambda >= 0.

    Notes
    -----
    The arrays are copied once and made read-only: nothing gradlab does can change the
    caller's data, and the one-hot encoding is done here rather than in every call.

    Raises
    ------
    GradlabError
        For any input outside the accepted set; the message names the argument and value.
    """

    network: Network
    X: np.ndarray
    y: np.ndarray
    lam: float = 0.0

    def __post_init__(self):
        net = self.network
        if not isinstance(net, Network):
            net = Network(net)
        if isinstance(self.X, np.ndarray) and self.X.ndim == 2 and self.X.shape[1] == net.n_inputs:
            # Before the copy below: a problem too big to evaluate is refused up front.
            _resources.require_memory(_resources.problem_memory(net.sizes, self.X.shape[0]))
        X = v.float_array("X", self.X, ndim=2)
        if X.shape[0] < 1:
            raise GradlabError(f"X must have at least one row; got X with shape {X.shape}")
        if X.shape[1] != net.n_inputs:
            raise GradlabError(
                f"X must have {net.n_inputs} columns (sizes[0]) for sizes={net.sizes}; "
                f"got X with shape {X.shape}"
            )
        Y, labels = _targets(self.y, X.shape[0], net.n_outputs)
        lam = v.real("lam", self.lam, minimum=0.0, maximum=MAX_LAM)
        X.flags.writeable = False
        Y.flags.writeable = False
        if labels is not None:
            labels.flags.writeable = False
        object.__setattr__(self, "network", net)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", labels if labels is not None else Y)
        object.__setattr__(self, "lam", lam)
        object.__setattr__(self, "_Y", Y)
        object.__setattr__(self, "_labels", labels)
        object.__setattr__(self, "_cache", {})

    @property
    def m(self) -> int:
        """Number of examples."""
        return self.X.shape[0]

    @property
    def Y(self) -> np.ndarray:
        """Target matrix ``(m, K)`` (one-hot rows when labels were given); read-only."""
        return self._Y

    @property
    def labels(self) -> np.ndarray | None:
        """Integer labels when the problem was built from labels, else None."""
        return self._labels

    def with_lam(self, lam) -> "Problem":
        """The same network and data with another lambda (no re-validation of the data)."""
        lam = v.real("lam", lam, minimum=0.0, maximum=MAX_LAM)
        new = object.__new__(Problem)
        for field in ("network", "X", "y", "_Y", "_labels"):
            object.__setattr__(new, field, getattr(self, field))
        object.__setattr__(new, "lam", lam)
        # Device copies of X and Y do not depend on lam, so they can be shared.
        object.__setattr__(new, "_cache", self._cache)
        return new

    def __repr__(self) -> str:
        act = "" if self.network.activation == "sigmoid" else f", activation={self.network.activation!r}"
        return f"Problem(sizes={self.network.sizes}{act}, m={self.m}, lam={self.lam:g})"


def _targets(y, m: int, K: int):
    """Validate ``y``; return the (m, K) float64 target matrix and the labels (or None)."""
    if isinstance(y, np.ma.MaskedArray) and np.ma.is_masked(y):
        raise GradlabError(f"y must have no masked entries; got y with {int(np.ma.count_masked(y))} masked "
                           f"entries (their hidden values would be used as labels)")
    arr = np.asarray(y)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer)
        or np.issubdtype(arr.dtype, np.floating)
        or arr.dtype == np.bool_
    ):
        raise v.fail("y", y, f"integer labels 0..{K - 1} of shape ({m},) or a target matrix ({m}, {K})")
    if arr.ndim == 2 and arr.shape == (m, K):
        Y = np.array(arr, dtype=np.float64, copy=True)
        if not np.all(np.isfinite(Y)) or Y.min() < 0.0 or Y.max() > 1.0:
            bad = np.argwhere(~((Y >= 0.0) & (Y <= 1.0)))[0]
            raise GradlabError(
                f"y (a target matrix) must hold entries in [0, 1]; "
                f"got y[{bad[0]}, {bad[1]}]={float(Y[tuple(bad)])!r}"
            )
        return Y, None
    if arr.ndim == 2 and arr.shape[1] == 1 and arr.shape[0] == m:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != m:
        raise GradlabError(
            f"y must be labels of shape ({m},) or a target matrix of shape ({m}, {K}) "
            f"for m={m} examples and K={K} outputs; got y with shape {np.shape(y)}"
        )
    if arr.dtype == np.bool_:
        raise v.fail("y", y, f"integer labels 0..{K - 1}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            bad = int(np.argwhere(~np.isfinite(arr) | (arr != np.round(arr)))[0, 0])
            raise GradlabError(
                f"y (labels) must hold integers 0..{K - 1}; got y[{bad}]={float(arr[bad])!r}"
            )
    # Range first, on y as given: a cast of 1e300 (or of a uint64 above 2**63) to int64
    # is undefined, warns, and would show a different number in the message.
    out_of_range = (arr < 0) | (arr >= K)
    if np.any(out_of_range):
        bad = int(np.argwhere(out_of_range)[0, 0])
        shown = float(arr[bad]) if arr.dtype.kind == "f" else int(arr[bad])
        raise GradlabError(
            f"y (labels) must hold integers 0..{K - 1} (K={K} outputs); got y[{bad}]={shown!r}"
        )
    labels = arr.astype(np.int64)
    Y = np.zeros((m, K), dtype=np.float64)
    Y[np.arange(m), labels] = 1.0
    return Y, labels


def _check_problem(problem) -> Problem:
    if not isinstance(problem, Problem):
        raise v.fail("problem", problem, "a gradlab.Problem")
    return problem


def debug_problem(sizes=(3, 5, 3), examples: int = 5, lam: float = 0.0) -> Problem:
    """The seed's gradient-check problem, with its label bug fixed.

    X holds the debug weights of shape ``(examples, sizes[0])`` (``sin(1..n)/10``) and
    the labels are ``i mod K`` for ``i = 1..examples`` (the seed used ``1 + i mod K``,
    which the one-hot code cannot represent).

    Examples
    --------
    >>> p = debug_problem()
    >>> p.labels.tolist()
    [1, 2, 0, 1, 2]
    """
    net = sizes if isinstance(sizes, Network) else Network(sizes)
    m = v.integer("examples", examples, minimum=1)
    _resources.require_memory(_resources.problem_memory(net.sizes, m))
    X = _debug_matrix(m, net.n_inputs)
    y = np.arange(1, m + 1) % net.n_outputs
    return Problem(net, X, y, lam)


# --------------------------------------------------------------------------------------
# The maths, written once against an array namespace xp
# --------------------------------------------------------------------------------------
#
# Stable forms. With pos = Re(z) > 0, s = +1 where pos and -1 elsewhere, e = exp(-s z)
# never overflows (|e| <= 1), and
#     sigmoid(z)            = where(pos, 1, e) / (1 + e)
#     -log sigmoid(z)  = softplus(-z) = log1p(e) + where(pos, 0, -z)
#     -log(1-sigmoid(z)) = softplus(z) = log1p(e) + where(pos, z, 0)
# Each branch is an analytic function of z, so the forms also hold for complex z.


def _exp_neg_abs(xp, z):
    pos = xp.real(z) > 0
    return pos, xp.exp(xp.where(pos, -z, z))


def _sigmoid(xp, z, out=None):
    """Logistic function g(z) = 1 / (1 + exp(-z)), finite for any z.

    ``out`` (numpy only) receives the result; it may be ``z`` itself.
    """
    if xp is np and np.isrealobj(z):
        # Real numpy arrays: 1 / (1 + exp(-z)) in four in-place passes (the stable form
        # below takes about eight and several temporaries), good to a few ulp. exp(-z)
        # overflows to inf only for z < -709.78, where the result becomes 0 instead of
        # a subnormal number below 2.3e-308: an absolute error no gradient can see.
        t = np.asarray(np.negative(z, out=out))
        with np.errstate(over="ignore"):
            np.exp(t, out=t)
        t += 1.0
        return np.reciprocal(t, out=t)
    pos, e = _exp_neg_abs(xp, z)
    return xp.where(pos, 1.0, e) / (1.0 + e)


def _cross_entropy(xp, z, Y):
    """Per-entry binary cross-entropy of outputs g(z) against targets Y, from z directly.

    -[y log g(z) + (1 - y) log(1 - g(z))] = y softplus(-z) + (1 - y) softplus(z)
    = log1p(e) + where(pos, (1 - y) z, -y z); no log of a rounded probability, so a
    saturated unit gives a finite cost, and no subtraction cancels for y in {0, 1}.
    """
    pos, e = _exp_neg_abs(xp, z)
    return xp.log1p(e) + xp.where(pos, (1.0 - Y) * z, -Y * z)


def _tanh(xp, z, out=None):
    """Hyperbolic tangent; analytic, so complex inputs propagate.

    ``out`` (numpy only) receives the result; it may be ``z`` itself.
    """
    if out is not None:
        return np.tanh(z, out=out)
    return xp.tanh(z)


def _relu(xp, z, out=None):
    """max(0, z), written as a branch on Re(z) so that a complex step stays analytic.

    At z = 0 it takes the "off" branch, so the derivative used by every source is
    relu'(0) = 0: jax differentiates this very ``where``, back-propagation uses
    ``z > 0`` (equivalently ``a > 0``) as its local derivative, and the complex step
    never leaves the branch. ``out`` (real numpy only) receives the result.
    """
    if out is not None:
        return np.maximum(z, 0.0, out=out)
    return xp.where(xp.real(z) > 0, z, 0.0 * z)


#: Largest lambda accepted. The gradient's regularisation part (lam / m) w must stay
#: squarable in float64 (every norm squares it: |g| < sqrt(1.8e308) ~ 1.3e154) for weights
#: up to +-1e4, the range whose costs and gradients gradlab keeps finite; 1e150 leaves that
#: margin. At lam = 1e200 the gradient's norm overflowed (found by fuzzing the command line).
MAX_LAM = 1e150

#: Hidden-layer activations by name: the forward function of each (the local
#: derivatives live beside back-propagation, in :mod:`gradlab.sources.backprop`).
ACTIVATIONS = {"sigmoid": _sigmoid, "tanh": _tanh, "relu": _relu}

#: Activations with a kink at z = 0 (the cost is only piecewise smooth there).
KINKED_ACTIVATIONS = frozenset({"relu"})


def _affine(xp, a, theta):
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


def _forward(xp, network: Network, params, X, z_shifts=None, keep_z=True):
    """Forward pass. Returns ``zs`` (pre-activations of layers 2..L) and ``acts``
    (activations of layers 1..L-1 without the bias unit; ``acts[0]`` is X).

    ``keep_z=False`` (real numpy only) saves memory for back-propagation, which needs the
    activations but not the hidden pre-activations: each hidden ``a = g(z)`` is written
    over its ``z``, and ``zs`` then holds the output layer's ``z`` alone.

    Hidden layers apply ``network.activation``; the output layer's pre-activation is
    returned as is (the cost applies the sigmoid inside its stable cross-entropy).

    ``params`` is the flat vector, or a stack of them with shape ``(B, n_params)``;
    then every z and activation gains the same leading axis B (see :func:`_affine`).

    ``z_shifts`` (optional, one array per layer 2..L, shaped like its z) is added to each
    pre-activation. At zero shifts nothing changes, and the derivative of the cost with
    respect to the shifts is dJ/dz for every layer: how autodiff exposes the deltas.
    """
    g = ACTIVATIONS[network.activation]
    thetas = _unpack(network, params)
    acts = [X]
    zs = []
    a = X
    for i, theta in enumerate(thetas):
        z = _affine(xp, a, theta)
        if z_shifts is not None:
            z = z + z_shifts[i]
        hidden = i + 1 < len(thetas)
        if keep_z or not hidden:
            zs.append(z)
        if hidden:
            a = g(xp, z) if keep_z else g(xp, z, out=z)
            acts.append(a)
    return zs, acts


def _regularisation(xp, network: Network, params, lam, m):
    """lam / (2m) times the sum of squares of every weight except column 0 (the bias).

    ``w * w``, not ``abs(w) ** 2``: the square is analytic, so a complex step through
    the cost stays exact. Sums run over the last two axes (one total per batch entry).
    """
    total = 0.0
    for theta in _unpack(network, params):
        w = theta[..., 1:]
        total = total + xp.sum(w * w, axis=(-2, -1))
    return lam / (2.0 * m) * total


def _cost_from_forward(xp, network: Network, params, z_out, Y, lam, columns=None):
    """J from the output pre-activations of a forward pass already run (no second pass).

    ``columns`` (unbatched numpy only) sums the cross-entropy over blocks of that many
    output units (columns of ``z_out``, contiguous in the forward pass's layout), so its
    temporaries are a few m x columns arrays instead of a few m x K arrays.
    """
    m, K = z_out.shape[-2], z_out.shape[-1]
    if columns is None or columns >= K:
        data_sum = xp.sum(_cross_entropy(xp, z_out, Y), axis=(-2, -1))
    else:
        data_sum = sum(
            xp.sum(_cross_entropy(xp, z_out[:, k : k + columns], Y[:, k : k + columns]))
            for k in range(0, K, columns)
        )
    return data_sum / m + _regularisation(xp, network, params, lam, m)


def _cost(xp, network: Network, params, X, Y, lam, z_shifts=None):
    """The regularised cross-entropy cost J(params): the one definition in gradlab.

    ``params`` of shape ``(n_params,)`` gives a scalar; a stack ``(B, n_params)`` gives
    the B costs, shape ``(B,)``, through one set of (batched) matrix products. Complex
    ``params`` propagate analytically (every branch is chosen on the real part and is
    an analytic function), which is what the complex-step derivative needs.
    """
    zs, _ = _forward(xp, network, params, X, z_shifts)
    return _cost_from_forward(xp, network, params, zs[-1], Y, lam)


# --------------------------------------------------------------------------------------
# Magnitudes: refuse inputs and weights whose cost or gradient would overflow float64
# --------------------------------------------------------------------------------------
#
# A matrix product that overflows gives inf without a warning (BLAS does not report it),
# and the first inf meets a 0 or another inf soon after: 0 * inf and inf - inf are NaN,
# with a RuntimeWarning from numpy and a NaN gradient from jax. So every source first
# bounds, from the largest |X| and the largest weight of each layer, what its sums can
# reach, and refuses the problem with the culprit named when a bound passes float64's
# range. The bounds cost O(P) (|X|'s maximum is found once per problem).

_LOG_FLOAT_MAX = math.log(float(np.finfo(np.float64).max))
#: Headroom the bounds keep below the largest float64, as a factor: the numeric sources
#: evaluate the cost at weights moved by up to 1/16 of themselves (Richardson's first
#: step, a factor 1.0625), and each sum adds a few roundings; 4 covers both with room,
#: while inputs up to about 1e306 (with weights of order 0.1) are still evaluated.
OVERFLOW_HEADROOM = 4.0
#: Largest value of each hidden activation's derivative: a delta grows by at most this
#: factor (times the weights) per layer on its way back.
_GPRIME_BOUND = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def _largest(arr) -> float:
    """max |arr| without an |arr| temporary."""
    if np.iscomplexobj(arr):
        return float(np.max(np.abs(arr))) if arr.size else 0.0
    return float(max(np.max(arr), -np.min(arr))) if arr.size else 0.0


def _refuse(what: str, quantity: str, log_bound: float, cause: str):
    raise GradlabError(
        f"X and params are too large to {what} in float64: {quantity} could reach "
        f"about 1e{log_bound / math.log(10):.0f} ({cause}), beyond the largest float64 "
        f"(1.8e+308) with room for the numeric steps; standardise the inputs (scale=True, "
        f"--scale) or use smaller weights"
    )


def _forward_bounds(net: Network, xmax: float, thetas, refuse):
    """Bounds (as logs) on each layer's |a| and largest weight and on the output |z|;
    ``refuse(quantity, log_bound, cause)`` is called when a pre-activation could overflow."""
    limit = _LOG_FLOAT_MAX - math.log(OVERFLOW_HEADROOM)
    log_a = [_log(max(1.0, xmax))]  # bound on |a_l| (the bias unit is 1) per layer
    log_w = []
    for l, theta in enumerate(thetas, start=1):
        w = _largest(theta)
        log_w.append(_log(w))
        log_z = log_w[-1] + math.log(theta.shape[1]) + log_a[-1]
        if log_z > limit:
            refuse(f"the pre-activations of layer {l + 1}", log_z,
                   f"max |{'X' if l == 1 else f'a_{l}'}| = {math.exp(log_a[-1]) if log_a[-1] < _LOG_FLOAT_MAX else math.inf:.3g}"
                   f" with the bias, max |Theta{l}| = {w:.3g}, {theta.shape[1]} columns")
        if l < len(thetas):
            log_a.append(max(0.0, log_z) if net.activation == "relu" else 0.0)
    return log_a, log_w, log_z


def _check_magnitudes(problem: "Problem", params) -> None:
    """Raise GradlabError when the cost or the gradient at ``params`` could overflow float64.

    Bounds (each a sum over the terms float64 actually adds, before any division by m):
    ``|z_(l+1)| <= max|Theta_l| (s_l + 1) max(1, max|a_l|)``, with ``|a| <= 1`` after a
    sigmoid or tanh and ``|a| <= |z|`` after a relu; the cross-entropy sums m K terms of at
    most ``|z_L| + log 2``; ``D_l`` sums m products ``|delta_(l+1)| max(1, |a_l|)`` with
    ``|delta_L| <= 1`` and ``|delta_l| <= |delta_(l+1)| s_(l+1) max|Theta_l| max g'``; the
    regularisation sums P squares of the largest weight.
    """
    net = problem.network
    xmax = problem._cache.get("xmax")
    if xmax is None:
        xmax = problem._cache["xmax"] = _largest(problem.X)
    limit = _LOG_FLOAT_MAX - math.log(OVERFLOW_HEADROOM)
    thetas = _unpack(net, np.asarray(params))
    m, K = problem.m, net.n_outputs
    refuse = functools.partial(_refuse, "evaluate the cost")
    log_a, log_w, log_z = _forward_bounds(net, xmax, thetas, refuse)
    log_cost = math.log(m * K) + max(log_z, 0.0) + math.log(2.0)
    if log_cost > limit:
        refuse("the cross-entropy summed over the m x K outputs", log_cost,
               f"output pre-activations up to 1e{log_z / math.log(10):.0f}, m={m}, K={K}")
    log_delta = 0.0
    for l in range(len(thetas), 0, -1):
        log_sum = math.log(m) + log_delta + log_a[l - 1]
        if log_sum > limit:
            refuse(f"the gradient of Theta{l} (a sum over the m={m} examples)", log_sum,
                   f"max |{'X' if l == 1 else f'a_{l}'}| = 1e{log_a[l - 1] / math.log(10):.0f}")
        rows = thetas[l - 1].shape[0]
        log_delta += math.log(rows) + log_w[l - 1] + math.log(_GPRIME_BOUND[net.activation])
    # Checked whatever lam is: the cost computes the sum of squares before multiplying by
    # lam, so at lam = 0 an overflowing sum still gives inf * 0 = NaN (and a warning).
    log_reg = math.log(net.n_params) + 2.0 * max(log_w)
    if log_reg > limit:
        refuse("the regularisation's sum of squared weights (computed even at lam=0)", log_reg,
               f"the largest weight is {math.exp(max(log_w)):.3g}")


# --------------------------------------------------------------------------------------
# Public evaluation
# --------------------------------------------------------------------------------------


def cost(problem: Problem, params) -> float:
    """The regularised cross-entropy cost J at ``params``.

    ``J = -(1/m) sum_i sum_k [y_ik log h_ik + (1 - y_ik) log(1 - h_ik)]
    + lam/(2m) * sum of squares of every weight except column 0``, evaluated in a
    log-sigmoid form that stays finite (and silent) for saturated units.

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)

    Returns
    -------
    float

    Examples
    --------
    >>> p = debug_problem()
    >>> round(cost(p, debug_init(p.network)), 6)
    2.096802
    """
    problem = _check_problem(problem)
    theta = problem.network.check_params(params)
    _check_magnitudes(problem, theta)
    return float(_cost(np, problem.network, theta, problem.X, problem.Y, problem.lam))


def _check_X(network: Network, X) -> np.ndarray:
    X = v.float_array("X", X, ndim=2)
    if X.shape[1] != network.n_inputs or X.shape[0] < 1:
        raise GradlabError(
            f"X must have at least one row and {network.n_inputs} columns for "
            f"sizes={network.sizes}; got X with shape {X.shape}"
        )
    return X


def predict(network: Network, params, X) -> np.ndarray:
    """Index of the largest output for each row of X (the seed's ``predict``).

    The sigmoid is monotone, so the largest output is the largest pre-activation.
    """
    network = _check_network(network)
    theta = network.check_params(params)
    X = _check_X(network, X)
    # An overflowing forward pass gives inf - inf = NaN outputs without a warning (BLAS
    # does not report overflow), and argmax would silently pick the first NaN.
    _forward_bounds(network, _largest(X), _unpack(network, theta), functools.partial(_refuse, "predict"))
    zs, _ = _forward(np, network, theta, X)
    return np.argmax(zs[-1], axis=1)


def accuracy(network: Network, params, X, y) -> float:
    """Fraction of rows of X whose predicted class equals the label in y (0..K-1)."""
    network = _check_network(network)
    X = _check_X(network, X)
    _, labels = _targets(y, X.shape[0], network.n_outputs)
    if labels is None:
        raise v.fail("y", y, "integer labels for accuracy")
    return float(np.mean(predict(network, params, X) == labels))
