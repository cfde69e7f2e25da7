"""Network, Problem, initialisers, and the cost, predictions and accuracy they give.

``Network`` and ``Problem`` are small immutable values; the maths they are evaluated
with -- the one cost and forward pass, written against an array namespace -- lives in
:mod:`gradlab._cost`, and the bounds that keep it finite in :mod:`gradlab._judge`.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from gradlab import _cost, _judge, _resources
from gradlab import _validate as v
from gradlab._cost import ACTIVATIONS
from gradlab._errors import GradlabError
from gradlab._judge import MAX_LAM

__all__ = [
    "Network",
    "Problem",
    "random_init",
    "debug_init",
    "debug_problem",
    "cost",
    "predict",
    "accuracy",
    "ACTIVATIONS",
    "MAX_LAM",
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

    def check_inputs(self, X, name: str = "X") -> np.ndarray:
        """Validate inputs for this network (at least one row, ``sizes[0]`` columns); a float64 copy."""
        X = v.float_array(name, X, ndim=2)
        if X.shape[1] != self.n_inputs or X.shape[0] < 1:
            raise GradlabError(
                f"{name} must have at least one row and {self.n_inputs} columns for "
                f"sizes={self.sizes}; got {name} with shape {X.shape}"
            )
        return X

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
        return _cost.unpack(self, arr)

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


#: The most entries a numpy array can have: its index type's largest value.
_MAX_PARAMS = int(np.iinfo(np.intp).max)


# --------------------------------------------------------------------------------------
# Initialisers
# --------------------------------------------------------------------------------------


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
    network = v.instance("network", network, Network, "a gradlab.Network")
    rng = v.rng(seed)
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
    network = v.instance("network", network, Network, "a gradlab.Network")
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

    @property
    def max_abs_input(self) -> float:
        """max |X|, found once (the magnitude bounds of :mod:`gradlab._judge` start from it)."""
        return self.prepared("max_abs_input", lambda: _judge.largest(self.X))

    def prepared(self, key, build):
        """A per-problem constant, built by ``build()`` on first use and kept with the problem.

        For work done once per problem rather than in every call (device copies of the data,
        column-major targets): the data never change, so neither do such constants. They are
        shared with :meth:`with_lam` problems; ``key`` names the constant for its user.
        """
        cache = self._cache
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _derived(self, lam, arrays=None) -> "Problem":
        """The same problem with another lambda (and, given, other arrays), not re-validated."""
        new = object.__new__(Problem)
        X, Y, labels = arrays or (self.X, self.Y, self.labels)
        for field, val in (("network", self.network), ("X", X), ("y", labels if labels is not None else Y),
                           ("_Y", Y), ("_labels", labels), ("lam", lam)):
            object.__setattr__(new, field, val)
        # Constants derived from the data (device copies of X and Y) do not depend on lam.
        object.__setattr__(new, "_cache", self._cache if arrays is None else {})
        return new

    def with_lam(self, lam) -> "Problem":
        """The same network and data with another lambda (no re-validation of the data)."""
        return self._derived(v.real("lam", lam, minimum=0.0, maximum=MAX_LAM))

    def writeable_copy(self) -> "Problem":
        """The same problem with fresh, *writeable* copies of X, y and Y.

        For handing to code that may write into its arguments (the checker's purity
        experiment): the writes land in the copies, where they can be seen, instead of
        raising on the read-only originals.
        """
        labels = None if self.labels is None else self.labels.copy()
        return self._derived(self.lam, (self.X.copy(), self.Y.copy(), labels))

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


def check_problem(problem, name: str = "problem") -> Problem:
    """``problem`` itself when it is a :class:`Problem`; else the standard GradlabError."""
    return v.instance(name, problem, Problem, "a gradlab.Problem")


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
    problem = check_problem(problem)
    theta = problem.network.check_params(params)
    _judge.check_magnitudes(problem, theta)
    return float(_cost.cost(np, problem.network, theta, problem.X, problem.Y, problem.lam))


def predict(network: Network, params, X) -> np.ndarray:
    """Index of the largest output for each row of X (the seed's ``predict``).

    The sigmoid is monotone, so the largest output is the largest pre-activation.
    """
    network = v.instance("network", network, Network, "a gradlab.Network")
    theta = network.check_params(params)
    X = network.check_inputs(X)
    # An overflowing forward pass gives inf - inf = NaN outputs without a warning (BLAS
    # does not report overflow), and argmax would silently pick the first NaN.
    _judge.check_forward(network, _judge.largest(X), theta, "predict")
    zs, _ = _cost.forward(np, network, theta, X)
    return np.argmax(zs[-1], axis=1)


def accuracy(network: Network, params, X, y) -> float:
    """Fraction of rows of X whose predicted class equals the label in y (0..K-1)."""
    network = v.instance("network", network, Network, "a gradlab.Network")
    X = network.check_inputs(X)
    _, labels = _targets(y, X.shape[0], network.n_outputs)
    if labels is None:
        raise v.fail("y", y, "integer labels for accuracy")
    return float(np.mean(predict(network, params, X) == labels))
