#!/usr/bin/env python
"""gradlab's benchmark suite: one command, a table on stdout, the numbers as JSON.

    python benchmarks/run.py [--quick] [--json OUT] [--repeats N]

Rows (medians of repeats; the things a ratio compares are timed interleaved, round by
round, so a load spike on this shared machine hits all of them alike):

* gradient time for 400-25-10 at m = 5,000 and 784-256-128-10 at m = 10,000, float64,
  synthetic data: gradlab's "backprop" and "jax" sources through the public API, the
  raw jitted ``jax.value_and_grad`` on device arrays, a per-example loop written here the
  way the seed program computes its gradient (and one that runs the forward pass per
  example too, for reference), the matrix-product floor (only the
  products one forward + backward pass needs, on contiguous operands, in the faster of
  the two orientations), and the fair floor: those products plus the transcendental work
  no implementation of this cost can skip (one exponential per hidden and output unit and
  example, one logarithm per output unit and example), timed in one call;
* peak memory of one backprop gradient (tracemalloc sees numpy's allocations) against
  the activations a backward pass must keep;
* a full numeric gradient of 400-25-10 x 5,000: one cost evaluation at a time, and
  gradlab's batched numeric source once it exists;
* gradlab's fast check localising one wrong gradient entry (once ``gradlab.check``
  exists), training the shipped digits (once ``gradlab.train`` exists);
* cold ``gradlab compare --sizes 3,5,3`` and ``gradlab --help`` (fresh processes), and
  whether ``--help`` imports jax or matplotlib.

A row whose code is not on this branch yet prints "not available" with the reason.
Nothing here changes OPENBLAS_* settings: the numbers are what a user gets. The numpy rows
written here (the floors, the per-example loops, the one-at-a-time numeric gradient) run on
the BLAS threads gradlab chooses for the same problem (gradlab._threads: one thread up to
2e9 flops in the largest product, so 400-25-10 at m = 5,000 on one thread and
784-256-128-10 at m = 10,000 on the library's default), so that every ratio compares the
same thread setting.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import gradlab  # noqa: E402
from gradlab import _resources, _threads  # noqa: E402
from gradlab._cost import cost as _cost  # noqa: E402

#: The two gradient problems the speed goals are set on.
GRADIENT_PROBLEMS = (((400, 25, 10), 5000), ((784, 256, 128, 10), 10000))
#: lambda for every synthetic problem (regularisation on, as in the seed's training).
LAM = 1.0
SEED = 0

#: Goals of the speed work. Each is checked against a ratio measured in the same run.
GOAL_BACKPROP_OVER_JAX = 0.9
GOAL_BACKPROP_OVER_FLOOR = 1.25
#: Against the fair floor: the products plus the exponentials and logarithms
#: every implementation of this cost must evaluate.
GOAL_BACKPROP_OVER_FAIR_FLOOR = 1.25
GOAL_LOOP_OVER_BACKPROP = 30.0
GOAL_PEAK_OVER_ACTIVATIONS = 2.0
GOAL_FAST_CHECK_S = 1.0
GOAL_COMPARE_S = 3.0
GOAL_HELP_S = 0.5
GOAL_TRAIN_S = 5.0

#: Agreement demanded of the benchmark's own implementations before they are timed
#: (both compute the same float64 sums; see gradlab.compare.EXACT_NORM_RATIO).
SANITY_NORM_RATIO = 1e-10


class NotAvailable(Exception):
    """A row whose code is not on this branch (yet)."""


# --------------------------------------------------------------------------- helpers


def _now():
    return time.perf_counter()


def _interleaved(fns: dict, repeats: int, counts: dict | None = None) -> dict:
    """Time each callable ``repeats`` times (or ``counts[name]``), round-robin."""
    counts = counts or {}
    times = {name: [] for name in fns}
    for r in range(max([repeats, *counts.values()])):
        for name, fn in fns.items():
            if r >= counts.get(name, repeats):
                continue
            t0 = _now()
            fn()
            times[name].append(_now() - t0)
    return times


def _summary(ts: list[float]) -> dict:
    return {"median_s": statistics.median(ts), "min_s": min(ts), "repeats": len(ts), "times_s": ts}


def _norm_ratio(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(a + b))


def _synthetic(sizes, m, seed=SEED) -> tuple[gradlab.Problem, np.ndarray]:
    """Inputs uniform in [0, 1) (pixel-like), labels uniform over the classes."""
    rng = np.random.default_rng(seed)
    net = gradlab.Network(sizes)
    X = rng.random((m, sizes[0]))
    y = rng.integers(0, sizes[-1], size=m)
    return gradlab.Problem(net, X, y, LAM), gradlab.random_init(net, seed)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _seed_loop_gradient(network, params, X, Y, lam):
    """The seed's gradient as SEED.md describes it: a vectorised forward pass with the
    bias column stacked on, then back-propagation one example at a time, each adding
    its outer products to the running sums (``D = D + d^T a``) and taking g'(z) as
    g(z)(1 - g(z)) from the stored z, as the seed's sigmoidGradient does."""
    thetas = [t.copy() for t in network.unpack(params)]
    m, L = X.shape[0], len(thetas)
    with np.errstate(over="ignore"):
        acts, zs = [np.hstack((np.ones((m, 1)), X))], []
        for t in thetas[:-1]:
            z = np.dot(acts[-1], t.T)
            zs.append(z)
            acts.append(np.hstack((np.ones((m, 1)), _sigmoid(z))))
        h = _sigmoid(np.dot(acts[-1], thetas[-1].T))
        grads = [np.zeros(t.shape) for t in thetas]
        for i in range(m):
            d = (h[i, :] - Y[i, :]).reshape(1, -1)
            for layer in range(L - 1, -1, -1):
                grads[layer] = grads[layer] + np.dot(d.T, acts[layer][i, :].reshape(1, -1))
                if layer > 0:
                    g = _sigmoid(zs[layer - 1][i, :])
                    d = np.dot(d, thetas[layer][:, 1:]) * (g * (1.0 - g))
    for g, t in zip(grads, thetas):
        g /= m
        g[:, 1:] += lam / m * t[:, 1:]
    return np.concatenate([g.ravel() for g in grads])


def _seed_style_gradient(network, params, X, Y, lam):
    """A per-example loop that runs the forward pass one example at a time too (the
    outer products are added in place). On this machine it is slower than the seed's."""
    thetas = network.unpack(params)
    grads = [np.zeros_like(t) for t in thetas]
    m = X.shape[0]
    with np.errstate(over="ignore"):
        for x, y in zip(X, Y):
            acts = [np.r_[1.0, x]]
            for t in thetas[:-1]:
                acts.append(np.r_[1.0, 1.0 / (1.0 + np.exp(-(t @ acts[-1])))])
            h = 1.0 / (1.0 + np.exp(-(thetas[-1] @ acts[-1])))
            d = h - y
            for layer in range(len(thetas) - 1, -1, -1):
                grads[layer] += np.outer(d, acts[layer])
                if layer > 0:
                    a = acts[layer][1:]
                    d = (thetas[layer][:, 1:].T @ d) * a * (1.0 - a)
    for g, t in zip(grads, thetas):
        g /= m
        g[:, 1:] += lam / m * t[:, 1:]
    return np.concatenate([g.ravel() for g in grads])


def _floors(network, params, X):
    """The products one forward + backward pass needs, nothing else, two orientations.

    ``rows``: activations m x s, ``z = a W^T``; ``cols``: activations s x m,
    ``z^T = W a^T`` (gradlab's layout). Weights are contiguous copies made here, once;
    the activations and deltas are arrays of the right shapes (the products' cost does
    not depend on the values).
    """
    rng = np.random.default_rng(1)
    thetas = network.unpack(params)
    W = [np.ascontiguousarray(t[:, 1:]) for t in thetas]          # s_{l+1} x s_l
    Wt = [np.ascontiguousarray(t[:, 1:].T) for t in thetas]       # s_l x s_{l+1}
    m, sizes = X.shape[0], network.sizes
    acts_r = [X] + [rng.random((m, s)) for s in sizes[1:-1]]
    acts_c = [X.T] + [rng.random((s, m)) for s in sizes[1:-1]]
    d_r = rng.random((m, sizes[-1]))
    d_c = rng.random((sizes[-1], m))
    L = len(thetas)

    def rows():
        for layer in range(L):
            acts_r[layer] @ Wt[layer]                   # forward: z_{l+1}
        d = d_r
        for layer in range(L - 1, -1, -1):
            d.T @ acts_r[layer]                         # D_l
            if layer > 0:
                d = d @ W[layer]                        # delta_l (before g')

    def cols():
        for layer in range(L):
            W[layer] @ acts_c[layer]
        d = d_c
        for layer in range(L - 1, -1, -1):
            d @ acts_c[layer].T
            if layer > 0:
                d = Wt[layer] @ d

    n_products = 2 * L + (L - 1)
    return rows, cols, n_products


def _transcendentals(network, m):
    """The elementwise work no gradient of this cost can skip: one exponential per hidden
    and output unit and example (the activations g(z), and the output sigmoid with its
    cross-entropy share one), and one logarithm per output unit and example (the
    cross-entropy). In place on preallocated arrays, nothing else: the cheapest form.

    The inputs are in the ranges a trained network's z and the cost's ``1 + e`` take
    (|z| <= 5, 1 + e in (1, 2]); the time of numpy's vectorised exp and log hardly depends
    on the values within them.
    """
    rng = np.random.default_rng(2)
    sizes = network.sizes
    exp_in = [rng.uniform(-5.0, 5.0, size=(s, m)) for s in sizes[1:]]
    exp_out = [np.empty_like(a) for a in exp_in]
    log_in = rng.uniform(1.0, 2.0, size=(sizes[-1], m))
    log_out = np.empty_like(log_in)

    def run():
        for a, out in zip(exp_in, exp_out):
            np.exp(a, out=out)
        np.log(log_in, out=log_out)

    n_exp = m * sum(sizes[1:])
    return run, {"exponentials": n_exp, "logarithms": m * sizes[-1]}


def _as_gradlab_threads(problem, fn):
    """``fn`` run on the BLAS threads gradlab chooses for ``problem`` (as its backprop is)."""
    def run():
        with _threads.for_problem(problem):
            return fn()
    return run


def _fair(products, transcendental):
    """Matrix products and then the transcendental work, in one timed call."""
    def run():
        products()
        transcendental()
    return run


def _jax_raw(problem, params):
    """jax.jit(value_and_grad) of the shared cost on device arrays, nothing around it."""
    import functools

    import jax
    import jax.numpy as jnp

    from gradlab.sources import autodiff

    fn = jax.jit(jax.value_and_grad(functools.partial(_cost, jnp, problem.network)))
    with autodiff.x64():
        X, Y = autodiff.device_data(problem)
        theta = jnp.asarray(params, dtype=jnp.float64)

    def call():
        with autodiff.x64():
            value, grad = fn(theta, X, Y, problem.lam)
            grad.block_until_ready()

    return call


# --------------------------------------------------------------------------- sections


def bench_gradients(sizes, m, repeats, loop_repeats) -> dict:
    problem, params = _synthetic(sizes, m)
    net = problem.network
    t0 = _now()
    J_jax, g_jax = gradlab.value_and_gradient(problem, params, "jax")
    jax_first = _now() - t0
    J_bp, g_bp = gradlab.value_and_gradient(problem, params, "backprop")
    t0 = _now()
    with _threads.for_problem(problem):
        g_loop = _seed_loop_gradient(net, params, problem.X, problem.Y, problem.lam)
    loop_first = _now() - t0
    g_lean = _seed_style_gradient(net, params, problem.X, problem.Y, problem.lam)
    sanity = {"backprop_vs_jax": _norm_ratio(g_bp, g_jax), "loop_vs_backprop": _norm_ratio(g_loop, g_bp),
              "loop_forward_too_vs_backprop": _norm_ratio(g_lean, g_bp),
              "cost_rel_diff": abs(J_bp - J_jax) / abs(J_jax)}
    if max(sanity["backprop_vs_jax"], sanity["loop_vs_backprop"], sanity["loop_forward_too_vs_backprop"]) > SANITY_NORM_RATIO:
        raise RuntimeError(f"implementations disagree before timing: {sanity}")

    rows, cols, n_products = _floors(net, params, problem.X)
    exp_log, counts = _transcendentals(net, m)
    raw = _jax_raw(problem, params)
    jax32 = gradlab.jax_source("float32")
    fns = {
        "backprop": lambda: gradlab.value_and_gradient(problem, params, "backprop"),
        "jax": lambda: gradlab.value_and_gradient(problem, params, "jax"),
        "jax.jit raw": raw,
        "jax float32": lambda: gradlab.value_and_gradient(problem, params, jax32),
        "floor rows": rows,
        "floor cols": cols,
        "exp/log alone": exp_log,
        "fair floor rows": _fair(rows, exp_log),
        "fair floor cols": _fair(cols, exp_log),
        "per-example loop": lambda: _seed_loop_gradient(net, params, problem.X, problem.Y, problem.lam),
        "per-example loop, forward too": lambda: _seed_style_gradient(net, params, problem.X, problem.Y, problem.lam),
    }
    loops = ("per-example loop", "per-example loop, forward too")
    numpy_rows = ("floor rows", "floor cols", "exp/log alone", "fair floor rows", "fair floor cols", *loops)
    fns.update({name: _as_gradlab_threads(problem, fns[name]) for name in numpy_rows})
    for name, fn in fns.items():  # warm-up (BLAS buffers, jit dispatch caches)
        if name not in loops:
            fn()
    times = _interleaved(fns, repeats, {name: loop_repeats for name in loops})
    times["per-example loop"].append(loop_first)  # the untimed-warm first run is a fair sample
    res = {name: _summary(ts) for name, ts in times.items()}
    floor_name = min(("floor rows", "floor cols"), key=lambda k: res[k]["median_s"])
    res["floor"] = dict(res[floor_name], orientation=floor_name.split()[1], n_products=n_products)
    fair_name = min(("fair floor rows", "fair floor cols"), key=lambda k: res[k]["median_s"])
    res["fair floor"] = dict(res[fair_name], orientation=fair_name.split()[2], n_products=n_products, **counts)

    # Memory: tracemalloc sees numpy's allocations. "Must keep": the activations a_2..a_L
    # (m x s_l float64 each; X is the problem's and is not allocated by the gradient).
    gradlab.value_and_gradient(problem, params, "backprop")
    tracemalloc.start()
    tracemalloc.reset_peak()
    gradlab.value_and_gradient(problem, params, "backprop")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    activations = m * sum(sizes[1:]) * 8
    hidden = m * sum(sizes[1:-1]) * 8

    med = {k: v["median_s"] for k, v in res.items()}
    low = {k: v["min_s"] for k, v in res.items()}
    return {
        "sizes": list(sizes), "m": m, "n_params": net.n_params, "lam": LAM, "dtype": "float64",
        "timings": res, "jax_first_call_s": jax_first, "sanity": sanity,
        "ratios": {
            "backprop/jax_raw": med["backprop"] / med["jax.jit raw"],
            "backprop/jax_source": med["backprop"] / med["jax"],
            "backprop/floor": med["backprop"] / med["floor"],
            "backprop/fair_floor": med["backprop"] / med["fair floor"],
            "loop/backprop": med["per-example loop"] / med["backprop"],
            "loop forward too/backprop": med["per-example loop, forward too"] / med["backprop"],
            # The most any gradient could gain over the loop without beating the floor.
            "loop/floor": med["per-example loop"] / med["floor"],
        },
        # The same ratios from the fastest repeat of each: less sensitive to load spikes.
        "ratios_of_minimums": {
            "backprop/jax_raw": low["backprop"] / low["jax.jit raw"],
            "backprop/floor": low["backprop"] / min(low["floor rows"], low["floor cols"]),
            "backprop/fair_floor": low["backprop"] / min(low["fair floor rows"], low["fair floor cols"]),
            "loop/backprop": low["per-example loop"] / low["backprop"],
        },
        "memory": {"peak_bytes": peak, "activations_bytes": activations, "hidden_activations_bytes": hidden,
                   "peak/activations": peak / activations},
    }


def _numeric_one_at_a_time(problem, params, entries):
    """Central differences, each of the 2 x len(entries) cost evaluations on its own (on
    the BLAS threads gradlab's numeric source uses for the problem)."""
    with _threads.for_problem(problem):
        return _numeric_loop(problem, params, entries)


def _numeric_loop(problem, params, entries):
    net, X, Y, lam = problem.network, problem.X, problem.Y, problem.lam
    h = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(params))
    work = params.copy()
    out = np.empty(len(entries))
    for k, i in enumerate(entries):
        base = work[i]
        work[i] = base + h[i]
        plus = float(_cost(np, net, work, X, Y, lam))
        work[i] = base - h[i]
        minus = float(_cost(np, net, work, X, Y, lam))
        work[i] = base
        out[k] = (plus - minus) / (2.0 * h[i])
    return out


def bench_numeric(quick: bool) -> dict:
    from gradlab.sources import numeric

    problem, params = _synthetic((400, 25, 10), 5000)
    P = problem.network.n_params
    result = {"sizes": [400, 25, 10], "m": 5000, "n_params": P, "cost_evaluations": 2 * P}
    if quick:
        rng = np.random.default_rng(SEED)
        entries = np.sort(rng.choice(P, size=200, replace=False))
        t0 = _now()
        _numeric_one_at_a_time(problem, params, entries)
        elapsed = _now() - t0
        result["one_at_a_time"] = {"median_s": elapsed * P / len(entries), "repeats": 1,
                                   "note": f"estimated from {len(entries)} of {P} entries (--quick)"}
    else:
        t0 = _now()
        g = _numeric_one_at_a_time(problem, params, np.arange(P))
        elapsed = _now() - t0
        result["one_at_a_time"] = {"median_s": elapsed, "repeats": 1, "note": "all entries"}
        result["one_at_a_time_vs_backprop"] = _norm_ratio(g, gradlab.gradient(problem, params, "backprop"))
    batched = sorted(name for name in dir(numeric) if "batch" in name.lower())
    if not batched:
        result["batched"] = {"status": "not available: gradlab's numeric source is not batched"}
    else:
        t0 = _now()
        # The same 2P evaluations (the "numeric" source: central differences without the
        # error estimate, which would double them); forced past the time guard, which
        # refuses a numeric gradient estimated above a minute.
        with _resources.forced():
            gradlab.gradient(problem, params, "numeric")
        elapsed = _now() - t0
        result["batched"] = {"median_s": elapsed, "repeats": 1, "via": "gradlab.gradient(source='numeric'), forced",
                             "detected": batched}
        result["speedup"] = result["one_at_a_time"]["median_s"] / elapsed
    return result


def bench_check(repeats: int) -> dict:
    if not hasattr(gradlab, "check"):
        raise NotAvailable("gradlab.check is not available")
    sizes = (400, 25, 10)
    net = gradlab.Network(sizes)
    wrong = net.offsets[0] + 7 * net.shapes[0][1] + 123   # Theta1, row 7, column 123
    layer, row, col = net.locate(wrong)

    def one_wrong_entry(problem, params):
        g = gradlab.gradient(problem, params, "backprop")
        g[wrong] += 1e-2 * max(1e-3, float(np.abs(g).max()))   # 1% of the largest entry
        return g

    times, report = [], None
    for _ in range(repeats):
        t0 = _now()
        try:
            report = gradlab.check(one_wrong_entry, sizes, examples=5000, lam=LAM, seed=SEED, mode="fast")
        except TypeError as exc:
            raise NotAvailable(f"gradlab.check has another signature than expected: {exc}") from None
        times.append(_now() - t0)
    d = report.to_dict()
    found = [f for f in d.get("findings", [])
             if f.get("layer") == layer and row in (f.get("rows") or []) and col in (f.get("columns") or [])]
    return dict(_summary(times), planted={"layer": layer, "row": row, "column": col},
                detected=not report.ok, localised=bool(found))


def bench_train(repeats: int) -> dict:
    if not hasattr(gradlab, "train"):
        raise NotAvailable("gradlab.train is not available")
    try:
        from gradlab.data import load_digits
    except ImportError:
        raise NotAvailable("gradlab.data.load_digits is not available") from None
    X, y = load_digits()
    out = {"data": f"shipped digits, {X.shape[0]} x {X.shape[1]}", "hidden": [25], "method": "cg", "maxiter": 100}
    fns = {}
    for source in ("backprop", "jax"):
        def run(source=source):
            return gradlab.train(X, y, hidden=(25,), grad_source=source, method="cg", maxiter=100,
                                 lam=1.0, seed=SEED, progress=False)
        try:
            run()  # warm (jax compiles here)
        except TypeError as exc:
            raise NotAvailable(f"gradlab.train has another signature than expected: {exc}") from None
        fns[source] = run
    times = _interleaved(fns, repeats)
    out.update({k: _summary(v) for k, v in times.items()})
    return out


def _subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


_HELP_IMPORTS = (
    "import io, contextlib, json, sys\n"
    "from gradlab.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n"
    "        main(['--help'])\n"
    "    except SystemExit:\n"
    "        pass\n"
    "print(json.dumps({m: m in sys.modules for m in ('jax', 'matplotlib', 'scipy')}))\n"
)


def bench_cli(repeats: int) -> dict:
    env = _subprocess_env()
    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "gradlab --help": [py, "-m", "gradlab", "--help"],
        "gradlab compare --sizes 3,5,3": [py, "-m", "gradlab", "compare", "--sizes", "3,5,3"],
    }
    status = {}

    def runner(name, cmd):
        def run():
            proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
            status[name] = proc.returncode
        return run

    times = _interleaved({k: runner(k, c) for k, c in commands.items()}, repeats)
    out = {k: dict(_summary(v), exit_status=status[k]) for k, v in times.items()}
    proc = subprocess.run([py, "-c", _HELP_IMPORTS], env=env, cwd=ROOT, capture_output=True, text=True)
    out["help_imports"] = json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr.strip()}
    return out


# --------------------------------------------------------------------------- report


def _machine() -> dict:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import jax
    import scipy

    blas = {}
    with contextlib.suppress(Exception):
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "scipy": scipy.__version__, "jax": jax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
        "blas": {k: blas.get(k) for k in ("name", "version")},
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def _goal(name, target, measured, ok, note=""):
    return {"goal": name, "target": target, "measured": measured, "ok": ok, "note": note}


def _goals(results) -> list[dict]:
    goals = []
    for g in results["gradient"]:
        tag = "-".join(map(str, g["sizes"])) + f" m={g['m']}"
        r, lo = g["ratios"], g["ratios_of_minimums"]

        def note(key):
            return f"ratio of fastest repeats {lo[key]:.3g}"

        goals.append(_goal(f"backprop <= {GOAL_BACKPROP_OVER_JAX}x jax.jit(value_and_grad), {tag}",
                           GOAL_BACKPROP_OVER_JAX, r["backprop/jax_raw"], r["backprop/jax_raw"] <= GOAL_BACKPROP_OVER_JAX,
                           note("backprop/jax_raw")))
        goals.append(_goal(f"backprop <= {GOAL_BACKPROP_OVER_FLOOR}x matrix-product floor, {tag}",
                           GOAL_BACKPROP_OVER_FLOOR, r["backprop/floor"], r["backprop/floor"] <= GOAL_BACKPROP_OVER_FLOOR,
                           note("backprop/floor")))
        goals.append(_goal(f"backprop <= {GOAL_BACKPROP_OVER_FAIR_FLOOR}x fair floor (products + one exp per unit, "
                           f"one log per output), {tag}",
                           GOAL_BACKPROP_OVER_FAIR_FLOOR, r["backprop/fair_floor"],
                           r["backprop/fair_floor"] <= GOAL_BACKPROP_OVER_FAIR_FLOOR, note("backprop/fair_floor")))
        goals.append(_goal(f"backprop >= {GOAL_LOOP_OVER_BACKPROP:g}x faster than the per-example loop, {tag}",
                           GOAL_LOOP_OVER_BACKPROP, r["loop/backprop"], r["loop/backprop"] >= GOAL_LOOP_OVER_BACKPROP,
                           note("loop/backprop") + f"; loop/floor {r['loop/floor']:.3g}, the most any gradient "
                           "could reach without beating the matrix products"))
        mem = g["memory"]["peak/activations"]
        goals.append(_goal(f"backprop peak memory <= {GOAL_PEAK_OVER_ACTIVATIONS:g}x activations a_2..a_L, {tag}",
                           GOAL_PEAK_OVER_ACTIVATIONS, mem, mem <= GOAL_PEAK_OVER_ACTIVATIONS))
    check = results["check"]
    if "median_s" in check:
        ok = check["median_s"] < GOAL_FAST_CHECK_S and check["localised"]
        goals.append(_goal("fast check finds and localises one wrong entry, 400-25-10 m=5000, < 1 s",
                           GOAL_FAST_CHECK_S, check["median_s"], ok, "" if check["localised"] else "not localised"))
    else:
        goals.append(_goal("fast check finds and localises one wrong entry, < 1 s", GOAL_FAST_CHECK_S, None, None, check["status"]))
    cli = results["cli"]
    c = cli["gradlab compare --sizes 3,5,3"]["median_s"]
    goals.append(_goal("cold `gradlab compare --sizes 3,5,3` < 3 s", GOAL_COMPARE_S, c, c < GOAL_COMPARE_S))
    h = cli["gradlab --help"]["median_s"]
    imports = cli["help_imports"]
    clean = imports.get("jax") is False and imports.get("matplotlib") is False
    goals.append(_goal("`gradlab --help` < 0.5 s, imports neither jax nor matplotlib", GOAL_HELP_S, h,
                       h < GOAL_HELP_S and clean, f"imports: {imports}"))
    train = results["train"]
    if "backprop" in train:
        t = train["backprop"]["median_s"]
        goals.append(_goal("train shipped digits (CG, 100 iterations) < 5 s", GOAL_TRAIN_S, t, t < GOAL_TRAIN_S))
    else:
        goals.append(_goal("train shipped digits (CG, 100 iterations) < 5 s", GOAL_TRAIN_S, None, None, train["status"]))
    return goals


def _ms(s):
    return "-" if s is None else f"{s * 1e3:10.2f} ms"


def _print_table(results) -> None:
    mach = results["machine"]
    print(f"gradlab benchmarks  {mach['date_utc']} UTC  {mach['cpu']}, {mach['cores']} cores, "
          f"numpy {mach['numpy']} ({mach['blas'].get('name')}), jax {mach['jax']}")
    print(f"load average before/after: {results['load_before']} / {results['load_after']}")
    for g in results["gradient"]:
        t = g["timings"]
        print(f"\ngradient, {'-'.join(map(str, g['sizes']))}, m={g['m']}, {g['n_params']} params, float64, lam={g['lam']:g}")
        print(f"  {'implementation':28s} {'median':>13s} {'min':>13s}  n")
        for name in ("backprop", "jax", "jax.jit raw", "jax float32", "floor", "floor rows", "floor cols",
                     "exp/log alone", "fair floor", "fair floor rows", "fair floor cols",
                     "per-example loop", "per-example loop, forward too"):
            row = t[name]
            extra = f"  ({row['n_products']} products, {row['orientation']})" if name in ("floor", "fair floor") else ""
            print(f"  {name:28s} {_ms(row['median_s'])} {_ms(row['min_s'])} {row['repeats']:2d}{extra}")
        print(f"  jax first call (trace + compile): {_ms(g['jax_first_call_s']).strip()}")
        r = g["ratios"]
        print("  ratios: " + ", ".join(f"{k} {v:.3g}" for k, v in r.items()))
        mem = g["memory"]
        print(f"  peak memory of one backprop gradient: {mem['peak_bytes'] / 1e6:.2f} MB; activations a_2..a_L "
              f"{mem['activations_bytes'] / 1e6:.2f} MB (hidden only {mem['hidden_activations_bytes'] / 1e6:.2f} MB); "
              f"ratio {mem['peak/activations']:.2f}")
    n = results["numeric"]
    print(f"\nfull numeric gradient, 400-25-10, m=5000 ({n['cost_evaluations']} cost evaluations)")
    print(f"  one at a time   {_ms(n['one_at_a_time']['median_s'])}  ({n['one_at_a_time']['note']})")
    b = n["batched"]
    print(f"  batched         {_ms(b['median_s']) if 'median_s' in b else b['status']}")
    for key, title in (("check", "fast check + localisation, 400-25-10, m=5000"),
                       ("train", "train shipped digits, hidden 25, CG, 100 iterations")):
        sec = results[key]
        print(f"\n{title}")
        if "status" in sec:
            print(f"  {sec['status']}")
        elif key == "check":
            print(f"  {_ms(sec['median_s'])}  detected {sec['detected']}, localised {sec['localised']} "
                  f"(planted at {sec['planted']})")
        else:
            for src in ("backprop", "jax"):
                print(f"  {src:10s} {_ms(sec[src]['median_s'])}")
    print("\ncommand line (fresh processes)")
    for name in ("python -c pass", "gradlab --help", "gradlab compare --sizes 3,5,3"):
        row = results["cli"][name]
        print(f"  {name:32s} {_ms(row['median_s'])}  exit {row['exit_status']}  n={row['repeats']}")
    print(f"  --help imports: {results['cli']['help_imports']}")
    print("\ngoals")
    for g in results["goals"]:
        mark = {True: "MET ", False: "MISS", None: "n/a "}[g["ok"]]
        val = "-" if g["measured"] is None else f"{g['measured']:.3g}"
        print(f"  [{mark}] {g['goal']}: measured {val}" + (f"  ({g['note']})" if g["note"] else ""))


def _markdown(results) -> str:
    """The goals and the gradient timings as Markdown tables, for benchmarks/README.md."""
    mach = results["machine"]
    lines = [f"Measured {mach['date_utc']} UTC on {mach['cpu']}, {mach['cores']} cores, numpy {mach['numpy']} "
             f"({mach['blas'].get('name')} {mach['blas'].get('version')}), jax {mach['jax']}; load average "
             f"{results['load_before'][0]:.1f} before, {results['load_after'][0]:.1f} after"
             + (" (--quick)" if results["quick"] else "")
             + f"; OpenBLAS settings: {mach['openblas_env'] or 'none (library defaults)'}.", "",
             "| goal | target | measured | |", "| --- | --- | --- | --- |"]
    for g in results["goals"]:
        val = "-" if g["measured"] is None else f"{g['measured']:.3g}"
        mark = {True: "met", False: "**missed**", None: "n/a"}[g["ok"]]
        note = f" ({g['note']})" if g["note"] and "imports" not in g["note"] else ""
        lines.append(f"| {g['goal']} | {g['target']:g} | {val} | {mark}{note} |")
    for g in results["gradient"]:
        t = g["timings"]
        lines += ["", f"Gradient, {'-'.join(map(str, g['sizes']))}, m = {g['m']:,}, float64 "
                      f"(median / min of n, ms):", "",
                  "| implementation | median | min | n |", "| --- | ---: | ---: | ---: |"]
        for name in ("backprop", "jax", "jax.jit raw", "jax float32", "floor rows", "floor cols",
                     "exp/log alone", "fair floor rows", "fair floor cols",
                     "per-example loop", "per-example loop, forward too"):
            row = t[name]
            lines.append(f"| {name} | {row['median_s'] * 1e3:.2f} | {row['min_s'] * 1e3:.2f} | {row['repeats']} |")
        mem = g["memory"]
        lines.append(f"| peak memory of one backprop gradient | {mem['peak_bytes'] / 1e6:.2f} MB | "
                     f"activations {mem['activations_bytes'] / 1e6:.2f} MB | {mem['peak/activations']:.2f}x |")
    n, cli = results["numeric"], results["cli"]
    lines += ["", "Other rows (median, ms):", "", "| row | median | note |", "| --- | ---: | --- |",
              f"| full numeric gradient, one at a time, 400-25-10 m=5,000 | "
              f"{n['one_at_a_time']['median_s'] * 1e3:.0f} | {n['one_at_a_time']['note']} |"]
    b = n["batched"]
    lines.append(f"| full numeric gradient, batched | {b['median_s'] * 1e3:.0f} | |" if "median_s" in b
                 else f"| full numeric gradient, batched | - | {b['status']} |")
    for key, title in (("check", "fast check + localisation of one wrong entry"),
                       ("train", "train shipped digits, CG 100 iterations, backprop")):
        sec = results[key]
        if "status" in sec:
            lines.append(f"| {title} | - | {sec['status']} |")
        else:
            row = sec if key == "check" else sec["backprop"]
            lines.append(f"| {title} | {row['median_s'] * 1e3:.0f} | |")
    for name in ("python -c pass", "gradlab --help", "gradlab compare --sizes 3,5,3"):
        lines.append(f"| `{name}` (fresh process) | {cli[name]['median_s'] * 1e3:.0f} | exit {cli[name]['exit_status']} |")
    return "\n".join(lines) + "\n"


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats; the full numeric gradient is estimated from 200 entries")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json",
                        help="where to write the results (default benchmarks/results.json)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables as Markdown")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per gradient timing (default 30, quick 7)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (7 if args.quick else 30)
    small = 3 if args.quick else 7

    results = {"quick": args.quick, "load_before": list(os.getloadavg()), "machine": _machine()}
    results["gradient"] = []
    for sizes, m in GRADIENT_PROBLEMS:
        big = m * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])) > 1e9
        results["gradient"].append(
            bench_gradients(sizes, m, max(3, repeats // 2) if big else repeats, 1 if args.quick else 3))
    results["numeric"] = bench_numeric(args.quick)
    for key, fn in (("check", bench_check), ("train", bench_train)):
        try:
            results[key] = fn(1 if args.quick else 3)
        except NotAvailable as exc:
            results[key] = {"status": f"not available: {exc}"}
    results["cli"] = bench_cli(small)
    results["load_after"] = list(os.getloadavg())
    results["goals"] = _goals(results)
    _print_table(results)
    _write_json(args.json, results)
    print(f"\nwrote {args.json}")
    if args.markdown:
        args.markdown.write_text(_markdown(results))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
