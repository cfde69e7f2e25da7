#!/usr/bin/env python
"""One Hessian-vector product against one gradient, 400-25-10 on 5,000 examples.

    python benchmarks/hvp.py [--repeats 30] [--examples 5000] [--json OUT] [--markdown OUT.md]

Rows, each through gradlab's public functions (validation and copies included), timed
interleaved -- one repeat of each row in turn, so a load spike on a shared machine hits them
alike -- and summarised by medians (and the fastest repeats, which load inflates less):

* ``gradient backprop`` / ``gradient jax``: ``gradlab.gradient`` with that source;
* ``hvp backprop``: Pearlmutter's R-operator (``gradlab.hvp``, the default source);
* ``hvp jax``: jax's ``jvp`` of ``grad`` of the shared cost, compiled;
* ``hvp numeric``: central differences of the backprop gradient along v (two gradients);
* ``hvp numeric-complex``: the complex step of jax's gradient along v.

Goal: one backprop H v costs at most 2.5 backprop gradients (Pearlmutter's estimate is about
two: a second forward and a second backward pass). Before timing, the backprop and jax
products are checked to agree (the comparison's 1e-10 norm ratio).

Synthetic data as in benchmarks/run.py: inputs uniform in [0, 1), labels uniform over the 10
classes, lambda = 1, seed 0, gradlab's random initial weights, a random unit direction v.
Nothing here changes BLAS thread settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import gradlab  # noqa: E402
from gradlab import _judge  # noqa: E402
from gradlab._files import atomic_write  # noqa: E402

SIZES = (400, 25, 10)
EXAMPLES = 5000
LAM = 1.0
SEED = 0
#: The goal: one backprop H v within this many backprop gradients.
GOAL_HVP_OVER_GRADIENT = 2.5


def problem_and_point(sizes=SIZES, m=EXAMPLES, seed=SEED):
    """The synthetic problem, gradlab's random initial weights and a random unit direction."""
    rng = np.random.default_rng(seed)
    net = gradlab.Network(sizes)
    problem = gradlab.Problem(net, rng.random((m, sizes[0])), rng.integers(0, sizes[-1], size=m), LAM)
    v = rng.standard_normal(net.n_params)
    return problem, gradlab.random_init(net, seed), v / np.linalg.norm(v)


def rows(problem, params, v) -> dict:
    """The timed callables, by row name."""
    return {
        "gradient backprop": lambda: gradlab.gradient(problem, params, "backprop"),
        "gradient jax": lambda: gradlab.gradient(problem, params, "jax"),
        "hvp backprop": lambda: gradlab.hvp(problem, params, v, "backprop"),
        "hvp jax": lambda: gradlab.hvp(problem, params, v, "jax"),
        "hvp numeric": lambda: gradlab.hvp(problem, params, v, "numeric"),
        "hvp numeric-complex": lambda: gradlab.hvp(problem, params, v, "numeric-complex"),
    }


def interleaved(fns: dict, repeats: int) -> dict:
    """Each callable ``repeats`` times, round-robin; seconds per call, by name."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def bench(sizes=SIZES, m=EXAMPLES, repeats: int = 30) -> dict:
    """Sanity check, warm-up (jax compiles), then the interleaved timings and the ratios."""
    problem, params, v = problem_and_point(sizes, m)
    fns = rows(problem, params, v)
    a, b = gradlab.hvp(problem, params, v), gradlab.hvp(problem, params, v, "jax")
    floor = _judge.hvp_roundoff_floor(problem, params, v)
    if not _judge.hvp_agree(a, b, floor):
        raise SystemExit("backprop and jax Hessian-vector products disagree; not timing them")
    for fn in fns.values():  # compile and warm caches outside the timings
        fn()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    times = interleaved(fns, repeats)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    summary = {name: {"median_s": statistics.median(ts), "min_s": min(ts), "repeats": len(ts)}
               for name, ts in times.items()}
    grad = summary["gradient backprop"]
    ratios = {name: {"median": s["median_s"] / grad["median_s"], "min": s["min_s"] / grad["min_s"]}
              for name, s in summary.items()}
    goal_ratio = ratios["hvp backprop"]
    return {
        "sizes": list(sizes), "examples": m, "lam": LAM, "repeats": repeats,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}",
        "load_average": [load_before, load_after],
        "measured_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "sanity_norm_ratio": float(np.linalg.norm(a - b) / np.linalg.norm(a + b)),
        "timings": summary,
        "ratios_to_backprop_gradient": ratios,
        "goal": {"target": GOAL_HVP_OVER_GRADIENT, "measured_median": goal_ratio["median"],
                 "measured_min": goal_ratio["min"], "met": goal_ratio["median"] <= GOAL_HVP_OVER_GRADIENT},
    }


def markdown(res: dict) -> str:
    """The results as the table benchmarks/README.md records."""
    sizes = "-".join(map(str, res["sizes"]))
    load = ", ".join("?" if x is None else f"{x:.1f}" for x in res["load_average"])
    lines = [
        f"Measured {res['measured_utc']} UTC on {res['machine']}; load average {load} (before, after); "
        f"{sizes}, m = {res['examples']:,}, lambda = {res['lam']:g}, {res['repeats']} interleaved repeats; "
        f"backprop vs jax H v norm ratio {res['sanity_norm_ratio']:.1e}.",
        "",
        "| row | median ms | min ms | median / backprop gradient | min / min |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, s in res["timings"].items():
        r = res["ratios_to_backprop_gradient"][name]
        lines.append(f"| {name} | {s['median_s'] * 1e3:.2f} | {s['min_s'] * 1e3:.2f} | {r['median']:.2f} | {r['min']:.2f} |")
    g = res["goal"]
    lines += ["", f"Goal: one backprop H v <= {g['target']:g} backprop gradients: measured {g['measured_median']:.2f} "
              f"(medians), {g['measured_min']:.2f} (fastest repeats): {'met' if g['met'] else '**missed**'}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--examples", type=int, default=EXAMPLES)
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--markdown", help="write the table as Markdown to this file")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.examples < 1:
        ap.error("--repeats and --examples must be positive")
    res = bench(m=args.examples, repeats=args.repeats)
    text = markdown(res)
    print(text)
    if args.json:
        payload = (json.dumps(res, indent=2) + "\n").encode()
        atomic_write(args.json, lambda f: f.write(payload), name="--json")
    if args.markdown:
        atomic_write(args.markdown, lambda f: f.write((text + "\n").encode()), name="--markdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
