"""BLAS threads for gradlab's small products: what threads cost on a busy machine, and
what gradlab's choice (gradlab/_threads.py) gives.

    python benchmarks/threads.py [--repeats 5] [--quick] [--json OUT]

Four measurements, printed as markdown tables:

1. **Overhead**: one ``threadpool_limits(1)`` entry and exit (it looks for the loaded
   libraries every time), one with a kept ``ThreadpoolController``, one back-propagation
   of the debug network and of the digits' training problem, for scale.
2. **One core's rate**: the median time of one 2e9-flop product (10,000 x 785 times
   785 x 128, a 784-128 layer on 10,000 examples) on one BLAS thread.
3. **Sweep**: one back-propagation gradient at one BLAS thread against the BLAS's default,
   for networks whose largest product ranges from 3e5 to 4e9 flops, on a quiet machine
   and beside two CPU-bound processes; interleaved repeats, medians. gradlab's own limit
   is switched off here, so both rows are the BLAS as it is.
4. **Training the shipped digits** (hidden 25, lambda 1, CG 100 iterations, backprop,
   seed 0, the 1,438-example training split), each run in a fresh process, three ways:
   ``gradlab`` (this branch's defaults), ``before`` (gradlab's limit switched off: the BLAS
   default threads, as before the change) and ``OPENBLAS_NUM_THREADS=1``; quiet and
   beside two CPU-bound processes (``python -c "while True: pass"``, started by this
   script and killed after). Repeats interleaved (one run of each variant in turn),
   medians and minima of the training time measured inside the process. Each run also
   reports the BLAS threads seen inside training, checked against what the variant claims.

Goals (BLAS threads): beside two busy processes, ``gradlab`` <= 1.5x
``OPENBLAS_NUM_THREADS=1``; on a quiet machine, ``gradlab`` no slower than ``before``.
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
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The networks of the sweep: (sizes, m). Largest products from 3.3e5 to 4e9 flops.
SWEEP = [
    ((64, 25, 10), 100), ((64, 25, 10), 300), ((64, 25, 10), 1438), ((64, 25, 10), 5000),
    ((100, 50, 10), 2000), ((400, 25, 10), 5000), ((400, 100, 10), 5000), ((784, 256, 10), 2000),
    ((784, 256, 128, 10), 10000),
]
#: One run of training, in a fresh process: prints its time and the BLAS threads it saw.
TRAIN_SCRIPT = r"""
import json, sys, time
from threadpoolctl import threadpool_info
import gradlab
from gradlab import _threads
from gradlab.data import load_digits, train_test_split
if sys.argv[1] == "before":
    _threads.SMALL_PRODUCT_FLOPS = 0.0   # gradlab's limit off: the BLAS as it is
X, y = load_digits()
s = train_test_split(X, y, test_fraction=0.2, seed=0)
seen = set()
def look(it):
    seen.update(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
kw = dict(hidden=25, lam=1.0, method="cg", maxiter=100, seed=0, progress=False, grad_source="backprop")
gradlab.train(s.X_train, s.y_train, **{**kw, "maxiter": 2})   # warm: first calls, page faults
t0 = time.perf_counter()
r = gradlab.train(s.X_train, s.y_train, **kw)
t = time.perf_counter() - t0
gradlab.train(s.X_train, s.y_train, **{**kw, "maxiter": 1}, callback=look)
print(json.dumps({"seconds": t, "threads": sorted(seen), "evaluations": r.meta["evaluations"],
                  "cost": r.history.cost[-1].item()}))
"""
VARIANTS = ("gradlab", "before", "OPENBLAS_NUM_THREADS=1")


@contextlib.contextmanager
def busy(n: int = 2):
    """``n`` CPU-bound processes running beside the block, killed after it."""
    children = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5)  # let them start spinning
        yield children
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()


def _median_us(fn, n: int, repeats: int = 7) -> float:
    """Median over ``repeats`` of the mean time of ``n`` calls, in microseconds."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n)
    return 1e6 * statistics.median(out)


def overhead() -> dict:
    from threadpoolctl import ThreadpoolController, threadpool_limits

    import gradlab
    from gradlab.data import load_digits, train_test_split
    from gradlab.sources import backprop

    controller = ThreadpoolController()

    def fresh():
        with threadpool_limits(1, user_api="blas"):
            pass

    def kept():
        with controller.limit(limits=1, user_api="blas"):
            pass

    debug = gradlab.debug_problem()
    th = gradlab.debug_init(debug.network)
    X, y = load_digits()
    s = train_test_split(X, y, test_fraction=0.2, seed=0)
    digits = gradlab.Problem((64, 25, 10), s.X_train, s.y_train, lam=1.0)
    th_d = gradlab.random_init(digits.network, 0)
    return {
        "threadpool_limits entry+exit": _median_us(fresh, 50),
        "kept controller limit entry+exit": _median_us(kept, 500),
        "backprop value_and_gradient, debug 3-5-3 m=5": _median_us(lambda: backprop.value_and_gradient(debug, th), 500),
        "backprop value_and_gradient, digits 64-25-10 m=1438": _median_us(
            lambda: backprop.value_and_gradient(digits, th_d), 50),
    }


def one_core_rate(repeats: int) -> dict:
    from threadpoolctl import ThreadpoolController

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((10000, 785)), rng.standard_normal((785, 128))
    flops = 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
    with ThreadpoolController().limit(limits=1, user_api="blas"):
        a @ b
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    return {"flops": flops, "seconds": t, "gflops": flops / t / 1e9}


def sweep(repeats: int, cases=SWEEP) -> list[dict]:
    from threadpoolctl import ThreadpoolController

    import gradlab
    from gradlab import _threads
    from gradlab.sources import backprop

    controller = ThreadpoolController()
    rng = np.random.default_rng(0)
    rows = []
    saved = _threads.SMALL_PRODUCT_FLOPS
    _threads.SMALL_PRODUCT_FLOPS = 0.0  # gradlab's limit off: both rows are the BLAS as it is
    try:
        for sizes, m in cases:
            X = rng.uniform(0, 1, (m, sizes[0]))
            y = rng.integers(0, sizes[-1], m)
            problem = gradlab.Problem(sizes, X, y, lam=1.0)
            th = gradlab.random_init(problem.network, 0)
            backprop.value_and_gradient(problem, th)
            times = {"one": [], "default": []}
            for _ in range(repeats):
                for name in times:
                    limit = controller.limit(limits=1, user_api="blas") if name == "one" else contextlib.nullcontext()
                    with limit:
                        t0 = time.perf_counter()
                        backprop.value_and_gradient(problem, th)
                        times[name].append(time.perf_counter() - t0)
            one, default = statistics.median(times["one"]), statistics.median(times["default"])
            rows.append({"sizes": sizes, "m": m, "largest_flops": _threads.largest_product_flops(sizes, m),
                         "one_ms": 1e3 * one, "default_ms": 1e3 * default, "ratio": default / one,
                         "gradlab_one_thread": bool(_threads.BLAS_ALONE_FLOPS <= _threads.largest_product_flops(sizes, m) < saved)})
    finally:
        _threads.SMALL_PRODUCT_FLOPS = saved
    return rows


def train_once(variant: str) -> dict:
    """One training run in a fresh process (see :data:`TRAIN_SCRIPT`)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if variant == "OPENBLAS_NUM_THREADS=1":
        env["OPENBLAS_NUM_THREADS"] = "1"
    arg = "before" if variant == "before" else "gradlab"
    done = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT, arg], env=env, capture_output=True,
                          text=True, timeout=600, check=True)
    out = json.loads(done.stdout)
    expect_one = variant != "before" or (os.cpu_count() or 1) == 1
    if expect_one and out["threads"] != [1]:
        raise RuntimeError(f"variant {variant!r} should train on one BLAS thread; saw {out['threads']}")
    if not expect_one and out["threads"] == [1]:
        raise RuntimeError(f"variant 'before' should train on the BLAS's default threads; saw {out['threads']}")
    return out


def train(repeats: int) -> dict:
    runs = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            runs[variant].append(train_once(variant)["seconds"])
    return {v: {"median_s": statistics.median(t), "min_s": min(t), "n": len(t), "all_s": t} for v, t in runs.items()}


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}"


def machine() -> str:
    import numpy

    blas = "unknown BLAS"
    try:
        from threadpoolctl import threadpool_info

        libs = [f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)" for i in threadpool_info()
                if i["user_api"] == "blas"]
        blas = ", ".join(libs) or blas
    except Exception:  # pragma: no cover - threadpoolctl missing
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, numpy {numpy.__version__}, BLAS: {blas}"


def _markdown(res: dict) -> str:
    out = [f"Measured {res['when']} on {res['machine']}.", ""]
    out += ["Overhead (median, us):", "", "| what | us |", "| --- | ---: |"]
    out += [f"| {k} | {v:.1f} |" for k, v in res["overhead"].items()]
    r = res["rate"]
    out += ["", f"One core: a {r['flops']:.2g}-flop product in {1e3 * r['seconds']:.1f} ms "
            f"({r['gflops']:.1f} GFLOP/s).", ""]
    for cond in ("quiet", "busy"):
        sw = res["sweep"][cond]
        if not sw["rows"]:
            continue
        out += [f"Back-propagation, one BLAS thread against the default, {cond} "
                f"(load average {sw['load_before']} before, {sw['load_after']} after; median ms):", "",
                "| sizes | m | largest product, flops | one thread | default | default / one | gradlab uses |",
                "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for row in sw["rows"]:
            out.append(f"| {','.join(map(str, row['sizes']))} | {row['m']} | {row['largest_flops']:.2g} | "
                       f"{row['one_ms']:.3f} | {row['default_ms']:.3f} | {row['ratio']:.2f} | "
                       f"{'one thread' if row['gradlab_one_thread'] else 'the default'} |")
        out.append("")
    out += ["Training the shipped digits (hidden 25, lambda 1, CG 100, backprop), seconds:", "",
            "| condition | variant | median | min | n | / one thread (median) | / before (median) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for cond in ("quiet", "busy"):
        tr = res["train"][cond]
        one, before = tr["runs"]["OPENBLAS_NUM_THREADS=1"]["median_s"], tr["runs"]["before"]["median_s"]
        for v, t in tr["runs"].items():
            out.append(f"| {cond} (load {tr['load_before']} -> {tr['load_after']}) | {v} | {t['median_s']:.3f} | "
                       f"{t['min_s']:.3f} | {t['n']} | {t['median_s'] / one:.2f} | {t['median_s'] / before:.2f} |")
    g = res["goals"]
    out += ["", f"Goals: busy, gradlab / one thread = {g['busy_gradlab_over_one']:.2f} (target <= 1.5); "
            f"quiet, gradlab / before = {g['quiet_gradlab_over_before']:.2f} (target <= 1, no slower)."]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="training runs per variant and condition (default 5)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a shorter sweep, for a smoke run")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--train-only", action="store_true", help="only the training runs (the goals), no sweep")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    sweep_repeats = 3 if args.quick else 15
    cases = SWEEP[:3] if args.quick else SWEEP
    res = {"when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "machine": machine()}
    res["overhead"] = overhead()
    res["rate"] = one_core_rate(3 if args.quick else 9)
    res["sweep"], res["train"] = {}, {}
    for cond in ("quiet", "busy"):
        with busy() if cond == "busy" else contextlib.nullcontext():
            before = _load()
            rows = [] if args.train_only else sweep(sweep_repeats, cases)
            res["sweep"][cond] = {"rows": rows, "load_before": before, "load_after": _load()}
            before = _load()
            runs = train(repeats)
            res["train"][cond] = {"runs": runs, "load_before": before, "load_after": _load()}
    busy_runs, quiet_runs = res["train"]["busy"]["runs"], res["train"]["quiet"]["runs"]
    res["goals"] = {
        "busy_gradlab_over_one": busy_runs["gradlab"]["median_s"] / busy_runs["OPENBLAS_NUM_THREADS=1"]["median_s"],
        "quiet_gradlab_over_before": quiet_runs["gradlab"]["median_s"] / quiet_runs["before"]["median_s"],
    }
    print(_markdown(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
