#!/usr/bin/env python
"""The jax source on whatever device jax sees (a GPU when there is one), beside numpy.

    python benchmarks/gpu.py [--repeats N] [--json OUT] [--m M]

784-1024-1024-10 at m = 60,000, synthetic data: the jax gradient in float64 and float32
(warm, jit compiled once), gradlab's backprop on the CPU for reference, and
a short training run with the jax source as the trainer's gradient source.
Prepared so that a session lent a GPU machine runs it in one call; it runs unchanged on
a CPU (where it takes a few minutes: one float64 gradient is about 0.7 TFLOP).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

import gradlab  # noqa: E402
from run import _synthetic, _write_json  # noqa: E402

SIZES = (784, 1024, 1024, 10)
TRAIN_ITERATIONS = 20


def _time(fn, repeats):
    fn()  # warm: compile, transfer X and Y to the device once
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--m", type=int, default=60000, help="examples (default 60,000)")
    parser.add_argument("--skip-backprop", action="store_true", help="leave out the numpy row")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "gpu_results.json")
    args = parser.parse_args(argv)

    import jax

    problem, params = _synthetic(SIZES, args.m)
    out = {"sizes": list(SIZES), "m": args.m, "n_params": problem.network.n_params,
           "jax_devices": [str(d) for d in jax.devices()], "jax": jax.__version__, "rows": {}}
    g64 = gradlab.gradient(problem, params, "jax")
    for dtype in ("float64", "float32"):
        src = gradlab.jax_source(dtype)
        out["rows"][f"jax {dtype}"] = _time(lambda: gradlab.value_and_gradient(problem, params, src), args.repeats)
    g32 = gradlab.gradient(problem, params, gradlab.jax_source("float32"))
    out["float32_vs_float64_norm_ratio"] = float(np.linalg.norm(g32 - g64) / np.linalg.norm(g32 + g64))
    if not args.skip_backprop:
        out["rows"]["backprop (numpy, CPU)"] = _time(
            lambda: gradlab.value_and_gradient(problem, params, "backprop"), args.repeats)
    if hasattr(gradlab, "train"):
        for dtype in ("float64", "float32"):
            t0 = time.perf_counter()
            try:
                gradlab.train(problem.X, problem.y, hidden=SIZES[1:-1], grad_source=gradlab.jax_source(dtype), method="cg",
                              maxiter=TRAIN_ITERATIONS, lam=1.0, seed=0, progress=False)
                out["rows"][f"train jax {dtype}, CG {TRAIN_ITERATIONS} iterations"] = {
                    "median_s": time.perf_counter() - t0, "repeats": 1}
            except TypeError as exc:
                out["rows"][f"train jax {dtype}"] = {"status": f"not available: {exc}"}
    else:
        out["rows"]["train"] = {"status": "not available: gradlab.train is not available"}
    print(f"{'-'.join(map(str, SIZES))}, m={args.m}, devices {out['jax_devices']}")
    for name, row in out["rows"].items():
        value = f"{row['median_s'] * 1e3:10.1f} ms" if "median_s" in row else row["status"]
        print(f"  {name:40s} {value}")
    print(f"  float32 vs float64 gradient, norm ratio {out['float32_vs_float64_norm_ratio']:.2e}")
    _write_json(args.json, out)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
