#!/usr/bin/env python
"""A user's property suite with each witness: jax against finite differences.

    python benchmarks/property_suite.py [--examples 200] [--rounds 3] [--fresh 1] [--unbucketed] [--json OUT]

The run timed is what ``gradlab.testing``'s docstring tells a user to paste into a test
suite: ``--examples`` hypothesis examples (derandomised, so both witnesses see the same
problems) of ::

    assert_gradients_agree(problem, params, sources=("backprop", WITNESS))

over ``problems_with_parameters(STRATEGY)``, with WITNESS ``"jax"`` or ``"numeric"`` and
STRATEGY

* ``default``: ``problems_with_parameters()``, gradlab.testing's default networks;
* ``any depth``: ``problems_with_parameters(networks(min_layers=2, max_layers=4))``.

Two measurements per strategy, each with the two witnesses interleaved (jax, numeric,
jax, numeric, ...) so that load on this shared machine hits both alike:

* **first run**: a fresh Python process per run, with gradlab imported and jax started
  before the clock starts (both stated separately), so the jax witness pays for tracing
  and compiling every shape it meets -- what a user's suite pays on each ``pytest`` run;
* **warm re-run**: the same 200 examples again in one process, after one untimed run of
  each witness (every shape compiled): the cost of the checks alone.

The fresh-process runs are repeated with jax's persistent compilation cache pointed at an
empty folder and then at the filled one (``cold disk cache`` / ``warm disk cache``), to
show what the disk cache adds on top. Backend compiles are counted with jax's own
monitoring events, not by gradlab. Reported: medians over repeats and the ratio
jax-witness / numeric-witness.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: The goal: the jax-witness run at most this many times the numeric-witness run.
GOAL_JAX_OVER_NUMERIC = 4.0
STRATEGIES = ("default", "any depth")
WITNESSES = ("jax", "numeric")
#: With --unbucketed: the jax source computing every problem at its own shape (one
#: compile per network shape and m, as before shape buckets), timed beside the others.
UNBUCKETED = "jax unbucketed"
#: jax's event for one XLA backend compile (jax._src.dispatch.BACKEND_COMPILE_EVENT; also
#: emitted, with a short duration, when the function is loaded from the disk cache), and
#: the name jax gives gradlab's compiled cost in it.
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
COST_FUNCTION = "jit(gradlab_cost)"


def _strategy(name):
    from gradlab.testing import networks, problems_with_parameters

    if name == "default":
        return problems_with_parameters()
    return problems_with_parameters(networks(min_layers=2, max_layers=4))


def _suite(strategy_name: str, witness: str, examples: int):
    """The user's property test, ready to call; it raises on any disagreement."""
    from hypothesis import HealthCheck, given, settings

    from gradlab.testing import assert_gradients_agree

    if witness == UNBUCKETED:
        from gradlab.sources import autodiff

        def jax_unbucketed(problem, params):
            return autodiff.gradient(problem, params, bucketed=False)

        source = jax_unbucketed
    else:
        source = witness

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(_strategy(strategy_name))
    def test_gradients_agree(case):
        problem, params = case
        assert_gradients_agree(problem, params, sources=("backprop", source))

    return test_gradients_agree


class _Compiles:
    """Counts jax backend compiles (and their seconds) while active."""

    def __init__(self):
        import jax.monitoring

        self.count, self.cost, self.seconds, self.active = 0, 0, 0.0, False
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kw):
        if self.active and event == COMPILE_EVENT:
            self.count += 1
            self.cost += kw.get("fun_name") == COST_FUNCTION
            self.seconds += duration


def _timed(test, compiles) -> dict:
    compiles.count, compiles.cost, compiles.seconds, compiles.active = 0, 0, 0.0, True
    t0 = time.perf_counter()
    try:
        test()
    finally:
        elapsed = time.perf_counter() - t0
        compiles.active = False
    return {"seconds": elapsed, "compiles": compiles.count, "cost_compiles": compiles.cost,
            "compile_seconds": compiles.seconds}


def child(strategy_name: str, witness: str, examples: int) -> dict:
    """One fresh-process run: imports and jax start-up timed apart from the suite."""
    t0 = time.perf_counter()
    import gradlab  # noqa: F401
    from gradlab.sources import autodiff

    autodiff.ready()
    startup = time.perf_counter() - t0
    compiles = _Compiles()
    test = _suite(strategy_name, witness, examples)
    return dict(_timed(test, compiles), startup_seconds=startup)


def _fresh(strategy_name, witness, examples, cache_dir=None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if cache_dir is None:
        env["GRADLAB_JAX_CACHE"] = "off"
    else:
        env["GRADLAB_JAX_CACHE"] = str(cache_dir)
    proc = subprocess.run([sys.executable, __file__, "--child", strategy_name, witness, "--examples", str(examples)],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child run failed ({strategy_name}, {witness}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(rows, key="seconds"):
    return statistics.median(r[key] for r in rows)


def first_runs(examples: int, repeats: int, disk_cache: bool, witnesses) -> dict:
    out = {}
    for name in STRATEGIES:
        runs = {w: [] for w in witnesses}
        cached = {"cold disk cache": [], "warm disk cache": []}
        for _ in range(repeats):
            for w in witnesses:
                runs[w].append(_fresh(name, w, examples))
            if disk_cache:
                with tempfile.TemporaryDirectory(prefix="gradlab-jax-cache-") as d:
                    cached["cold disk cache"].append(_fresh(name, "jax", examples, d))
                    cached["warm disk cache"].append(_fresh(name, "jax", examples, d))
        row = {w: {"median_s": _median(r), "runs": r} for w, r in runs.items()}
        row["jax/numeric"] = row["jax"]["median_s"] / row["numeric"]["median_s"]
        if UNBUCKETED in row:
            row["jax unbucketed/numeric"] = row[UNBUCKETED]["median_s"] / row["numeric"]["median_s"]
        if disk_cache:
            for k, r in cached.items():
                row[f"jax, {k}"] = {"median_s": _median(r), "runs": r}
        out[name] = row
    return out


def warm_reruns(examples: int, rounds: int, witnesses) -> dict:
    from gradlab.sources import autodiff

    autodiff.ready()
    compiles = _Compiles()
    out = {}
    for name in STRATEGIES:
        tests = {w: _suite(name, w, examples) for w in witnesses}
        first = {w: _timed(t, compiles) for w, t in tests.items()}  # compiles every shape
        runs = {w: [] for w in witnesses}
        for _ in range(rounds):
            for w, t in tests.items():
                runs[w].append(_timed(t, compiles))
        row = {w: {"first_in_process": first[w], "median_s": _median(r), "runs": r} for w, r in runs.items()}
        row["jax/numeric"] = row["jax"]["median_s"] / row["numeric"]["median_s"]
        if UNBUCKETED in row:
            row["jax unbucketed/numeric"] = row[UNBUCKETED]["median_s"] / row["numeric"]["median_s"]
        out[name] = row
    return out


def _machine() -> dict:
    import jax
    import numpy as np

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "numpy": np.__version__, "jax": jax.__version__,
            "threads_env": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")},
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def _print(results) -> None:
    m = results["machine"]
    print(f"property suite, {results['examples']} examples per run; {m['date_utc']} UTC, {m['cpu']}, "
          f"{m['cores']} cores, jax {m['jax']}; thread settings {m['threads_env'] or 'none'}; "
          f"load {results['load_before'][0]:.1f} before, {results['load_after'][0]:.1f} after")
    for name in STRATEGIES:
        print(f"\nstrategy: {name}")
        f = results["first_run"].get(name)
        present = [w for w in (*WITNESSES, UNBUCKETED) if w in results["warm"][name]]
        if f:
            for w in present:
                runs = f[w]["runs"]
                print(f"  first run (fresh process), {w:14s} {f[w]['median_s']:8.2f} s   compiles "
                      f"{runs[0]['compiles']:4d}, of the cost {runs[0]['cost_compiles']:4d} "
                      f"({runs[0]['compile_seconds']:.2f} s)   start-up "
                      f"{runs[0]['startup_seconds']:.2f} s not counted   n={len(runs)}")
            for k in ("jax, cold disk cache", "jax, warm disk cache"):
                if k in f:
                    r = f[k]["runs"][0]
                    print(f"  first run, {k:30s} {f[k]['median_s']:8.2f} s   compiles or loads "
                          f"{r['compiles']:4d} ({r['compile_seconds']:.2f} s)")
            print(f"  first run jax/numeric: {f['jax/numeric']:.2f}"
                  + (f"   (jax unbucketed/numeric {f['jax unbucketed/numeric']:.2f})" if UNBUCKETED in f else ""))
        w_ = results["warm"][name]
        for w in present:
            print(f"  warm re-run,               {w:14s} {w_[w]['median_s']:8.2f} s   compiles "
                  f"{w_[w]['runs'][0]['compiles']:4d}   (first in that process {w_[w]['first_in_process']['seconds']:.2f} s, "
                  f"{w_[w]['first_in_process']['compiles']} compiles)   n={len(w_[w]['runs'])}")
        print(f"  warm re-run jax/numeric: {w_['jax/numeric']:.2f}   (goal <= {GOAL_JAX_OVER_NUMERIC:g})"
              + (f"   (jax unbucketed/numeric {w_['jax unbucketed/numeric']:.2f})" if UNBUCKETED in w_ else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="hypothesis examples per run (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="warm re-runs of each witness (default 3)")
    parser.add_argument("--fresh", type=int, default=1, help="fresh-process first runs of each witness (default 1; 0 skips)")
    parser.add_argument("--no-disk-cache", action="store_true", help="skip the persistent-cache rows")
    parser.add_argument("--unbucketed", action="store_true",
                        help="also time the jax witness at each problem's own shape (one compile per shape)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    parser.add_argument("--child", nargs=2, metavar=("STRATEGY", "WITNESS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.examples)))
        return 0
    witnesses = (*WITNESSES, UNBUCKETED) if args.unbucketed else WITNESSES
    results = {"examples": args.examples, "load_before": list(os.getloadavg())}
    results["first_run"] = (first_runs(args.examples, args.fresh, not args.no_disk_cache, witnesses)
                            if args.fresh else {})
    results["warm"] = warm_reruns(args.examples, args.rounds, witnesses)
    results["load_after"] = list(os.getloadavg())
    results["machine"] = _machine()
    _print(results)
    if args.json:
        from run import _write_json  # the benchmarks' one atomic JSON writer (benchmarks/run.py)

        _write_json(args.json, results)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
