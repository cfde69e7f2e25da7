"""What running the user's code in a process of its own costs: the start, each call, a check.

Measured side by side in one run (in-process and isolated calls interleaved, medians):

* the worker's start -- a fresh interpreter importing numpy and gradlab, then the user's
  module (``Worker.load``);
* one call of a function that returns its first argument, in process and through the
  stand-in, with no arrays, with the seed-signature arguments of gradlab's default case
  (3-5-3, m = 5), and with those of the seed's network at its data's size (400-25-10,
  m = 5,000: X alone is 16 MB, sent and compared for writes on every call);
* ``gradlab.check`` of a correct seed-signature gradient at the default case, in process
  and isolated (the worker's start included).

Run:  PYTHONPATH=. python benchmarks/isolation.py [--repeat 200]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import gradlab  # noqa: E402
from gradlab._isolation import Worker  # noqa: E402

HERE = Path(__file__).resolve().parent
USER = """
def same(*args):
    return args[0] if args else None
"""


def _seed_args(sizes, m, rng):
    net = gradlab.Network(sizes)
    return (gradlab.random_init(net, rng), sizes[0], sizes[1], sizes[2], rng.uniform(-1, 1, (m, sizes[0])),
            np.arange(m) % sizes[2], 1.0)


def _median_us(fn, args, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        user = Path(folder) / "user.py"
        user.write_text(USER)
        sys.path.insert(0, folder)
        import user as here_module  # the same function, in this process

        starts = []
        for _ in range(5):
            t = time.perf_counter()
            with Worker() as w:
                w.load(f"{user}:same")
                starts.append(time.perf_counter() - t)
        print(f"worker start + load: median {statistics.median(starts):.3f} s over 5")

        cases = {"no arrays": (), "seed args, 3-5-3 m=5": _seed_args((3, 5, 3), 5, rng),
                 "seed args, 400-25-10 m=5000": _seed_args((400, 25, 10), 5000, rng)}
        with Worker() as w:
            remote = w.load(f"{user}:same")
            for name, call_args in cases.items():
                repeat = args.repeat if "5000" not in name else max(10, args.repeat // 10)
                local_us, remote_us = [], []
                for _ in range(3):  # interleaved rounds
                    local_us.append(_median_us(here_module.same, call_args, repeat))
                    remote_us.append(_median_us(remote, call_args, repeat))
                lo, re_ = statistics.median(local_us), statistics.median(remote_us)
                print(f"one call, {name:<28} in process {lo:9.1f} us   isolated {re_:9.1f} us   "
                      f"overhead {re_ - lo:9.1f} us")

        sys.path.insert(0, str(HERE.parent / "tests"))
        from broken import seed_gradient

        (Path(folder) / "seed.py").write_text(f"import sys\nsys.path.insert(0, {str(HERE.parent / 'tests')!r})\n"
                                              "from broken import seed_gradient\ngrad = seed_gradient(copy=True)\n")
        fn = seed_gradient(copy=True)
        gradlab.check(fn, signature="seed")  # jax's compilation, once, outside the timings
        inproc, isolated = [], []
        for _ in range(5):
            t = time.perf_counter()
            gradlab.check(fn, signature="seed")
            inproc.append(time.perf_counter() - t)
            t = time.perf_counter()
            gradlab.check(f"{folder}/seed.py:grad", signature="seed")
            isolated.append(time.perf_counter() - t)
        print(f"gradlab.check, seed gradient at 3-5-3: in process {statistics.median(inproc):.3f} s, "
              f"isolated {statistics.median(isolated):.3f} s (median of 5)")


if __name__ == "__main__":
    main()
