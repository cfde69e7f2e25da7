"""Training with any gradient source: scipy's CG (the seed's method), L-BFGS, or a
second-order method (Newton-CG, trust-ncg, trust-krylov) with any Hessian-vector product source.

The objective hands scipy the cost and the gradient together (``jac=True``), from one
pass of the source where it provides one (backprop and jax do), so no iteration pays for
a second forward pass. Every accepted iterate is recorded (cost, gradient norm, elapsed
time); the optimiser's own status and message are kept verbatim, so a stop for precision
loss is visible rather than swallowed. Ctrl-C (KeyboardInterrupt) ends training cleanly
with the best parameters reached so far.
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable, NamedTuple

import numpy as np

from gradlab import _progress, _resources, _threads, _usercode
from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab._judge import MAX_LAM, norm
from gradlab._optimisers import OPTIMISERS
from gradlab.data import Dataset, Scaling, make_dataset
from gradlab.model import History, TrainResult
from gradlab.network import Network, Problem, check_problem, predict, random_init
from gradlab.sources import get_source, numeric, value_and_gradient
from gradlab.sources.second_order import get_hvp_source, hvp

__all__ = [
    "train",
    "TrainResult",
    "History",
    "Iteration",
    "OPTIMISERS",
    "GRADIENTS_PER_ITERATION",
    "numeric_estimate",
]


#: Gradients an optimiser iteration takes, for the time estimate of training with a
#: numeric source: CG and L-BFGS-B accept most first trial steps and rarely need more
#: than two or three points per line search; the lower end keeps the estimate a fair
#: "at least". (The time limit itself is gradlab._resources.NUMERIC_TIME_LIMIT.)
GRADIENTS_PER_ITERATION = 2

#: Recent (params, cost, gradient) evaluations kept to find the gradient at an accepted
#: iterate without recomputing it; a line search rarely needs more than a few points.
_EVAL_CACHE = 8


class Iteration(NamedTuple):
    """One accepted iterate, as passed to a ``callback``."""

    iteration: int
    cost: float
    grad_norm: float
    elapsed: float
    params: np.ndarray


# --------------------------------------------------------------------------------------
# Progress on stderr
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# train()
# --------------------------------------------------------------------------------------


def _user_callback(fn):
    """The user's callback, its signature checked and its exceptions named (chained)."""
    return _usercode.guarded(fn, "callback", "callback", 1, "(an Iteration)")[0]


def _hidden(hidden) -> tuple[int, ...]:
    accepted = "a positive integer or a sequence of positive integers, e.g. 25 or (64, 32)"
    if isinstance(hidden, (bool, np.bool_)):
        raise v.fail("hidden", hidden, accepted)
    if isinstance(hidden, np.ndarray) and hidden.ndim == 0:
        hidden = hidden[()]  # np.array(25): one width, as 25 is (iterating it would fail)
    if isinstance(hidden, (int, np.integer)):
        hidden = (hidden,)
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise v.fail("hidden", hidden, accepted)
    hidden = tuple(hidden)
    for h in hidden:
        if isinstance(h, (bool, np.bool_)) or not isinstance(h, (int, np.integer)) or h < 1:
            raise v.fail("hidden", hidden, accepted)
    return tuple(int(h) for h in hidden)


def numeric_estimate(problem: Problem, params) -> str:
    """What one central-difference gradient costs for this problem, in words.

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
        Where one cost evaluation is timed (best of three).

    Returns
    -------
    str
        The number of cost evaluations (2P + 1) and the estimated seconds on this machine.
    """
    problem = check_problem(problem)
    params = problem.network.check_params(params)
    P = problem.network.n_params
    evals = 2 * P + 1
    seconds = evals * _resources.seconds_per_cost(problem, params)
    return (
        f"one numeric gradient takes {evals} cost evaluations (2P + 1, P = {P} parameters), "
        f"about {seconds:.2g} s here; CG needs 2 or 3 gradients per iteration"
    )


def train(
    data,
    y=None,
    *,
    hidden=None,
    grad_source="backprop",
    method: str = "cg",
    hvp_source=None,
    lam=None,
    maxiter: int = 100,
    seed=0,
    scale: bool = False,
    progress: bool | None = None,
    callback: Callable[[Iteration], object] | None = None,
    init=None,
    test=None,
    force: bool = False,
    info: dict | None = None,
) -> TrainResult:
    """Train a sigmoid network with scipy.optimize.minimize and any gradient source.

    Parameters
    ----------
    data : array_like (m, n), Dataset or Problem
        Training inputs (then ``y`` gives the labels), a :class:`gradlab.data.Dataset`,
        or a :class:`gradlab.Problem` (whose network and lambda are used as they are).
    y : array_like (m,), optional
        Integer labels 0..K-1 for array inputs; K = max(y) + 1 output units.
    hidden : int or sequence of int, default (25,)
        Hidden layer sizes, any number of layers (``()`` for none). Leave out with a Problem.
    grad_source : {"backprop", "jax", "numeric"} or callable, default "backprop"
        A callable takes ``(problem, params)`` and returns the flat gradient.
    method : {"cg", "lbfgs", "newton-cg", "trust-ncg", "trust-krylov"}, default "cg"
        scipy's nonlinear conjugate gradient (the seed's method), L-BFGS-B, or a method that
        also takes Hessian-vector products (:data:`gradlab._optimisers.OPTIMISERS`).
    hvp_source : {"backprop", "jax", "numeric", "numeric-complex"} or callable, optional
        For the second-order methods: where ``H v`` comes from (default ``"backprop"``,
        Pearlmutter's R-operator); a callable takes ``(problem, params, v)``. Refused with
        ``"cg"`` and ``"lbfgs"``, which take none.
    lam : float, default 1.0
        Regularisation strength. Leave out with a Problem.
    maxiter : int, default 100
    seed : int or numpy.random.Generator, default 0
        Seeds the initial weights (uniform in +-sqrt(6 / (in + out)), the seed's rule).
    scale : bool, default False
        Standardise the inputs, with mean and standard deviation fitted on ``data`` (the
        training split) only; the result applies the same scaling in ``predict``.
    progress : bool or None, default None
        A progress line on stderr (iterations done of maxiter, rate, time left, cost):
        True always, False never, None when stderr is a terminal (or as the caller's
        :func:`gradlab._progress.shown` block decided, as the command line does).
    callback : callable, optional
        Called after every iteration with an :class:`Iteration` (iteration, cost,
        grad_norm, elapsed, a copy of params). Return True to stop training.
    init : array_like (n_params,), optional
        Starting weights instead of the random ones.
    test : (X_test, y_test), optional
        Held-out data, never used for training; its accuracy is reported.
    force : bool, default False
        Train with a numeric source even when the estimated time (``maxiter`` times
        :data:`GRADIENTS_PER_ITERATION` numeric gradients) is above
        :data:`gradlab._resources.NUMERIC_TIME_LIMIT`.
    info : dict, optional
        Extra metadata to keep with the result (and in its model file).

    Returns
    -------
    TrainResult
        ``.params``, ``.history``, ``.stop`` / ``.message`` (the optimiser's), ``.ok``,
        ``.predict(X)``, ``.accuracy(X, y)``, ``.save(path)``, ``.to_dict()``, ``str()``.

    Raises
    ------
    GradlabError
        Bad input; a problem that would not fit in memory; or a numeric source whose
        estimated training time is above the limit, without ``force``.

    Notes
    -----
    A KeyboardInterrupt (Ctrl-C) during training is caught: the result holds the best
    parameters reached so far and ``stop == "interrupted"``.

    Examples
    --------
    >>> import numpy as np, gradlab
    >>> X = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]); y = np.array([0, 1, 1, 0])
    >>> r = gradlab.train(X, y, hidden=3, lam=0.0, maxiter=200, progress=False)
    >>> r.accuracy(X, y)
    1.0
    """
    # ----------------------------------------------------------------- the problem
    test_data = None
    dataset = None
    if isinstance(data, Problem):
        if hidden is not None or lam is not None:
            raise GradlabError(
                "hidden and lam must be left out when training a Problem (its network and lambda "
                f"are used); got hidden={hidden!r}, lam={lam!r}"
            )
        if y is not None:
            raise GradlabError("y must be left out when training a Problem (it holds its targets)")
        problem = data
        X_train, labels = problem.X, problem.labels
    else:
        if isinstance(data, Dataset):
            if y is not None:
                raise GradlabError("y must be left out when data is a Dataset (it holds its labels)")
            dataset = data
        else:
            if isinstance(data, (str, bytes, os.PathLike)):
                raise v.fail("data", data, "an array of inputs (with y), a gradlab.data.Dataset or a "
                             "gradlab.Problem; load files and named datasets with gradlab.data.load")
            if y is None:
                raise GradlabError("y (the labels) is required when data is an array of inputs")
            dataset = make_dataset(data, y, "data")
        X_train, labels = dataset.X, dataset.y
        lam = 1.0 if lam is None else v.real("lam", lam, minimum=0.0, maximum=MAX_LAM)
        sizes = (X_train.shape[1], *_hidden((25,) if hidden is None else hidden), int(labels.max()) + 1)
        if sizes[-1] < 2:
            raise GradlabError("y must hold at least two classes (labels 0..K-1, K >= 2); got only label 0")
        problem = None
    maxiter = v.integer("maxiter", maxiter, minimum=1)
    method = v.choice("method", method, OPTIMISERS)
    if OPTIMISERS[method].hessp:
        hsrc = get_hvp_source("backprop" if hvp_source is None else hvp_source, "hvp_source")
    elif hvp_source is not None:
        raise v.fail("hvp_source", hvp_source, f"None for method={method!r} (it takes no Hessian-vector products; "
                     "the second-order methods are " + ", ".join(repr(k) for k, o in OPTIMISERS.items() if o.hessp) + ")")
    else:
        hsrc = None
    src = get_source(grad_source, "grad_source")
    if not isinstance(seed, np.random.Generator):
        seed = v.integer("seed", seed, minimum=0)
    scale, force = v.flag("scale", scale), v.flag("force", force)
    progress = None if progress is None else v.flag("progress", progress)
    if callback is not None and not callable(callback):
        raise v.fail("callback", callback, "a callable taking an Iteration, or None")
    if callback is not None:
        callback = _user_callback(callback)
    info = v.metadata("info", info)

    # Before anything as large as the data is made: the scaled copy, the Problem, the weights.
    net_sizes = problem.network.sizes if problem is not None else sizes
    try:
        _resources.require_memory(_resources.problem_memory(
            net_sizes, X_train.shape[0], jax=src.name.startswith("jax") or (hsrc is not None and hsrc.name in ("jax", "numeric-complex")),
            param_vectors=_resources.TRAIN_PARAM_VECTORS,
            extra={"scaled inputs": 8 * X_train.size} if scale else None))
    except GradlabError as exc:
        if problem is None and net_sizes[-1] > len(np.unique(labels)):
            # One stray label (say 10**9 among 0..9) makes K = max(y) + 1 output units: say so.
            raise GradlabError(
                f"{exc}; the {net_sizes[-1]} output units come from the largest label, "
                f"y.max()={int(labels.max())} (K = max(y) + 1), while y holds {len(np.unique(labels))} "
                f"distinct labels") from None
        raise
    scaling = Scaling.fit(X_train) if scale else None
    if problem is None:
        X_used = scaling.apply(X_train) if scaling is not None else X_train
        problem = Problem(Network(sizes), X_used, labels, lam)
    elif scaling is not None:
        problem = Problem(problem.network, scaling.apply(X_train), problem.y, problem.lam)
    network = problem.network

    if test is not None:
        if not isinstance(test, (tuple, list)) or len(test) != 2:
            raise v.fail("test", test, "a pair (X_test, y_test)")
        X_test = network.check_inputs(test[0])
        test_data = make_dataset(X_test, test[1], "test")
        if np.any(test_data.y >= network.n_outputs):
            # Before training, not after: the test accuracy would refuse this label anyway.
            i = int(np.argmax(test_data.y >= network.n_outputs))
            raise GradlabError(f"test: y_test must hold labels 0..{network.n_outputs - 1}, one per output "
                               f"unit (K={network.n_outputs}, from the training labels); got y_test[{i}]="
                               f"{int(test_data.y[i])}")

    params0 = random_init(network, seed) if init is None else network.check_params(init, "init")

    if src.method is not None:
        per_gradient = numeric.evaluations(network.n_params, src.method, error=False)
        _resources.require_time(
            problem, params0, per_gradient * (GRADIENTS_PER_ITERATION * maxiter + 1),
            f"training with grad_source={src.name!r} for maxiter={maxiter} (at least "
            f"{GRADIENTS_PER_ITERATION} gradients per iteration, {per_gradient:,} cost evaluations each)",
            force=force, instead="train with 'backprop' or 'jax'")

    # ----------------------------------------------------------------- the loop
    import scipy.optimize

    opt = OPTIMISERS[method]
    recent: dict[bytes, tuple[float, np.ndarray]] = {}
    counts = {"evaluations": 0, "re-evaluations": 0, "hvp": 0}
    rec_iter, rec_cost, rec_gnorm, rec_time = [], [], [], []
    best = {"cost": math.inf, "params": params0.copy(), "iteration": 0}
    bar = None
    stopped_by_callback = False

    def objective(x):
        f, g = value_and_gradient(problem, x, src)
        counts["evaluations"] += 1
        if len(recent) >= _EVAL_CACHE:
            recent.pop(next(iter(recent)))
        recent[x.tobytes()] = (f, g)
        return f, g

    def hessp(x, p):
        counts["hvp"] += 1
        return hvp(problem, x, p, hsrc)

    def at(x):
        hit = recent.get(x.tobytes())
        if hit is None:  # the optimiser moved to a point it did not evaluate
            counts["re-evaluations"] += 1
            hit = value_and_gradient(problem, x, src)
        return hit

    def record(k, x, f, g):
        gnorm = norm(g)
        elapsed = time.perf_counter() - t0
        rec_iter.append(k)
        rec_cost.append(float(f))
        rec_gnorm.append(gnorm)
        rec_time.append(elapsed)
        if f < best["cost"]:
            best.update(cost=float(f), params=np.array(x, copy=True), iteration=k)
        if k:
            bar.advance(1, cost=f"{float(f):.6f}")
        return gnorm, elapsed

    def step(intermediate_result):
        nonlocal stopped_by_callback
        x = np.asarray(intermediate_result.x)
        f, g = at(x)
        k = len(rec_iter)
        gnorm, elapsed = record(k, x, f, g)
        if callback is not None and callback(Iteration(k, float(f), gnorm, elapsed, np.array(x, copy=True))) is True:
            stopped_by_callback = True
            raise StopIteration

    t0 = time.perf_counter()
    try:
        # The whole run was guarded above; its single gradients need no guard of their own.
        # BLAS threads are chosen once for the whole optimisation (not per gradient).
        with (_resources.forced(), _threads.for_problem(problem), _progress.shown(progress),
              _progress.task("training", maxiter, "iterations") as bar):
            f0, g0 = value_and_gradient(problem, params0, src)
            counts["evaluations"] += 1
            recent[params0.tobytes()] = (f0, g0)
            record(0, params0, f0, g0)
            res = scipy.optimize.minimize(
                objective, params0, jac=True, method=opt.scipy_method,
                options={"maxiter": maxiter}, callback=step, **({"hessp": hessp} if opt.hessp else {}),
            )
    except KeyboardInterrupt:
        res = None
    elapsed = time.perf_counter() - t0

    def assemble() -> TrainResult:
        """The result, its accuracies' forward passes on the threads chosen for the problem."""
        with _threads.for_problem(problem):
            return assemble_result()

    def assemble_result() -> TrainResult:
        """The result: the final parameters, the history, accuracies and metadata."""
        scipy_status = None
        if res is None:
            stop = "interrupted"
            message = (
                f"interrupted (Ctrl-C) after {len(rec_iter) - 1} iterations; keeping the best "
                f"parameters reached (iteration {best['iteration']}, cost {best['cost']:.6g})"
            )
            final = best["params"]
        else:
            scipy_status = int(res.status)
            message = str(res.message)
            if stopped_by_callback:
                stop = "callback"
                message = f"stopped by the callback after {len(rec_iter) - 1} iterations"
            else:
                stop = opt.stops.get(scipy_status, "other")
            final = np.asarray(res.x, dtype=np.float64)
            if not (np.all(np.isfinite(final)) and float(res.fun) <= best["cost"]):
                final = best["params"]
        history = History(
            np.asarray(rec_iter, dtype=np.int64), np.asarray(rec_cost), np.asarray(rec_gnorm), np.asarray(rec_time)
        )
        train_acc = None
        if problem.labels is not None:
            train_acc = float(np.mean(predict(network, final, problem.X) == problem.labels))
        meta = {
            "init": "random" if init is None else "given",
            "maxiter": maxiter,
            "evaluations": counts["evaluations"] + counts["re-evaluations"],
            # Evaluations at an accepted iterate the optimiser had not evaluated itself
            # (expected 0 for CG and L-BFGS-B: both accept a point their line search evaluated).
            "re_evaluations": counts["re-evaluations"],
            "elapsed": elapsed,
            **({"hvp_source": hsrc.name, "hvp_evaluations": counts["hvp"]} if hsrc is not None else {}),
            "m_train": problem.m,
        }
        if init is None:
            meta["seed"] = seed if isinstance(seed, int) else "generator"
        if dataset is not None:
            meta["data"] = dataset.name
            meta["image_shape"] = list(dataset.image_shape) if dataset.image_shape else None
            meta["pixel_order"] = dataset.pixel_order
            if dataset.notes:
                meta["notes"] = list(dataset.notes)
        if test_data is not None:
            meta["m_test"] = test_data.m
        meta.update(info or {})
        result = TrainResult(
            network, final, history, source=src.name, method=method, lam=problem.lam, stop=stop,
            message=message, scipy_status=scipy_status, scaling=scaling, train_accuracy=train_acc, meta=meta,
        )
        if test_data is not None:
            result.test_accuracy = result.accuracy(test_data.X, test_data.y)
        return result

    try:
        return assemble()
    except KeyboardInterrupt:
        # Ctrl-C in the milliseconds between the end of training and the return (while the
        # accuracies are computed) must not throw the trained parameters away: assemble the
        # result once more. A further Ctrl-C during that second pass aborts as usual.
        return assemble()
