"""What a fresh process pays before gradlab computes anything: interpreter, imports, jax's start.

Every command-line run, every example and every process gradlab starts for a user's code
begins here, so these seconds are paid again and again: by a teacher's batch of files (one
process per file) and by a test suite that runs the command line. Each row is a fresh
process, timed from outside (wall seconds and the CPU seconds the process used, from the
kernel's accounting of the child); rows are interleaved, one repeat of each in turn, and
medians are reported.

``--python OTHER`` runs every row with a second interpreter too, interleaved with this one:
a virtual environment that differs in one package (jax's dependency ml_dtypes, say) gives
the two columns side by side in one run. The other interpreter finds gradlab through
PYTHONPATH (this checkout) when it has none installed.

Run:  python benchmarks/startup.py [--repeats 15] [--python /path/to/other/bin/python]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (label, code run by ``python -c``); the last row runs the command line's compare.
ROWS = (
    ("python -c pass", "pass"),
    ("import numpy", "import numpy"),
    ("import ml_dtypes", "import ml_dtypes"),
    ("import jax; jax.devices()", "import jax; jax.devices()"),
    ("import gradlab", "import gradlab"),
    ("the worker for a user's code (its imports)", "from gradlab._isolation import serve"),
    ("gradlab compare --sizes 3,5,3", "import sys; from gradlab.cli import main; sys.exit(main(['compare', '--sizes', '3,5,3']))"),
)


def _one(python: str, code: str) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh ``python -c code``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([python, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _version(python: str, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--python", help="a second interpreter, timed interleaved with this one")
    args = parser.parse_args()
    pythons = [sys.executable] + ([args.python] if args.python else [])
    load_before = os.getloadavg()[0]
    for python in pythons:
        _one(python, "import gradlab, jax")  # bytecode written and files in the page cache before any timing
    times = {(p, label): [] for p in pythons for label, _ in ROWS}
    for _ in range(args.repeats):
        for label, code in ROWS:
            for python in pythons:
                times[(python, label)].append(_one(python, code))
    heads = [f"{Path(p).parent.parent.name} (ml_dtypes {_version(p, 'ml_dtypes')}, jax {_version(p, 'jax')})"
             for p in pythons]
    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {args.repeats} repeats, "
          f"medians, wall s / CPU s")
    print("| process | " + " | ".join(heads) + " |")
    print("| --- |" + " ---: |" * len(pythons))
    for label, _ in ROWS:
        cells = []
        for python in pythons:
            walls, cpus = zip(*times[(python, label)])
            cells.append(f"{statistics.median(walls):.2f} / {statistics.median(cpus):.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
