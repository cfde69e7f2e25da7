"""Resource guards: refuse, up front, work that would not fit in memory or would take hours.

Memory. :func:`problem_memory` estimates the bytes a problem needs from its layer sizes and
its number of examples alone -- the flat parameter vectors, the inputs and targets, the
activations and deltas one forward and backward pass keeps, jax's device copies -- and
:func:`require_memory` compares that with the memory this process may use
(:func:`available_memory`: the smallest of the cgroup limit, ``MemAvailable`` and physical
memory, or ``GRADLAB_MEMORY_LIMIT``). Both are arithmetic on a few integers, so a problem
that would need hundreds of GiB is refused in microseconds, before anything is allocated.

Time. A full finite-difference gradient costs a number of cost evaluations proportional
to the number of parameters P. :func:`require_time` estimates the seconds as evaluations
times the seconds of one evaluation and refuses work above :data:`NUMERIC_TIME_LIMIT`
unless forced. The seconds of one evaluation are *timed* (best of three) rather than taken
from a flop model, because the same flops run 100 times faster on one machine than on
another (BLAS threads, cache sizes, numpy's per-call overhead on small arrays). Timing is
skipped when a pessimistic flop model already puts the work under the limit (every small
case, such as the default ``gradlab compare``), and when an optimistic one already puts it
over (a huge network is refused without running its cost).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import os
import re
import time

import numpy as np

from gradlab import _cost
from gradlab._errors import GradlabError

__all__ = [
    "MEMORY_ENV",
    "MEMORY_FRACTION",
    "NUMERIC_TIME_LIMIT",
    "MemoryEstimate",
    "problem_memory",
    "init_memory",
    "available_memory",
    "require_memory",
    "require_time",
    "forced",
]

#: Environment variable that sets the memory gradlab may use, in bytes or with a K, M, G
#: or T suffix (powers of 1024): for shared machines, where what is free is not what is
#: fair to take, and for tests.
MEMORY_ENV = "GRADLAB_MEMORY_LIMIT"

#: gradlab plans to use at most this fraction of the memory it *finds* available. The
#: estimate counts gradlab's own arrays; the rest is for what it cannot count: the
#: interpreter and its libraries (jax's runtime alone takes a few hundred MiB), numpy's
#: short-lived temporaries, and other processes whose demand grows while gradlab runs.
#: A limit set with GRADLAB_MEMORY_LIMIT is taken as it is.
MEMORY_FRACTION = 0.8

#: Bytes of one float64.
_FLOAT = 8

#: Flat parameter-sized vectors alive during one gradient evaluation: the caller's
#: vector, gradlab's validated copy, the source's own copy and the gradient.
PARAM_VECTORS = 4

#: ... during training: those, plus the optimiser's working vectors (scipy's CG and
#: L-BFGS keep the iterate, the gradient, the search direction, the previous gradient and
#: a few line-search points) and the trainer's best-so-far copy.
TRAIN_PARAM_VECTORS = 10

#: ... while an initialiser runs: each layer's part and the concatenated vector, plus the
#: temporaries of the largest layer (the debug weights take arange, sin and a quotient).
INIT_PARAM_VECTORS = 3

#: m x (units) arrays per layer that one forward and backward pass keeps: the activation
#: (written over its pre-activation) and, going back, the delta.
ACTIVATION_COPIES = 2

#: ... for :func:`gradlab.explain`, which keeps every intermediate of both passes: z, a,
#: delta, the back-propagated product and g'(z) from back-propagation, jax's dJ/dz, and
#: the copies the report makes of them.
EXPLAIN_ACTIVATION_COPIES = 8

#: ... for jax's side: the forward values it saves for the reverse pass and the
#: cotangents of the reverse pass itself.
JAX_ACTIVATION_COPIES = 3

#: m x n_inputs arrays of inputs: the caller's X and the Problem's read-only copy.
INPUT_COPIES = 2

#: m x K arrays of targets: the one-hot Y and back-propagation's column-major Y and 1 - Y.
TARGET_COPIES = 3


def format_bytes(n: float) -> str:
    """A byte count in the largest binary unit that keeps it at least 1 (3 significant digits)."""
    for unit, size in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    return f"{int(n)} bytes"


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a piece of work needs, by part (``parts``: name -> bytes)."""

    what: str
    parts: dict

    @property
    def total(self) -> int:
        return int(sum(self.parts.values()))

    def describe(self) -> str:
        """``needs about 157 GiB (parameters 149 GiB, ...)``."""
        inner = ", ".join(f"{name} {format_bytes(b)}" for name, b in self.parts.items() if b)
        return f"{self.what} needs about {format_bytes(self.total)} ({inner})"


def _n_params(sizes) -> int:
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def init_memory(sizes) -> MemoryEstimate:
    """Bytes the initialisers need for a network of these layer sizes."""
    sizes = tuple(int(s) for s in sizes)
    return MemoryEstimate(f"sizes={sizes}", {"parameters": INIT_PARAM_VECTORS * _FLOAT * _n_params(sizes)})


def problem_memory(sizes, m: int, *, jax: bool = False, param_vectors: int = PARAM_VECTORS,
                   activation_copies: int = ACTIVATION_COPIES, extra: dict | None = None) -> MemoryEstimate:
    """Bytes one cost-and-gradient evaluation needs for ``sizes`` and ``m`` examples.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, inputs first.
    m : int
        Number of examples.
    jax : bool, default False
        Add jax's device copies of the data and parameters and its reverse-pass values.
    param_vectors, activation_copies : int
        Parameter-sized vectors and m x (units) arrays per layer alive at once.
    extra : dict, optional
        Further parts (name -> bytes), e.g. the numeric source's working memory.

    Returns
    -------
    MemoryEstimate
    """
    sizes = tuple(int(s) for s in sizes)
    m = int(m)
    P = _n_params(sizes)
    units = sum(sizes[1:])
    parts = {
        "parameters and gradients": param_vectors * _FLOAT * P,
        "inputs": INPUT_COPIES * _FLOAT * m * sizes[0],
        "targets": TARGET_COPIES * _FLOAT * m * sizes[-1],
        "activations and deltas": activation_copies * _FLOAT * m * units,
    }
    if jax:
        parts["jax's copies"] = _FLOAT * (m * (sizes[0] + sizes[-1]) + 2 * P + JAX_ACTIVATION_COPIES * m * units)
    parts.update(extra or {})
    return MemoryEstimate(f"sizes={sizes} with m={m} example{'s' if m != 1 else ''}", parts)


# ------------------------------------------------------------------ memory available

_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _parse_limit(text: str) -> int:
    """``GRADLAB_MEMORY_LIMIT``: bytes, or a number with a K, M, G or T suffix (powers of 1024)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:i?B)?\s*", text, flags=re.IGNORECASE)
    value = float(match.group(1)) * _SUFFIXES[match.group(2).upper()] if match else 0.0
    if not match or not math.isfinite(value) or value < 1:
        raise GradlabError(
            f"{MEMORY_ENV} must be a positive number of bytes, optionally with a K, M, G or T suffix "
            f"(powers of 1024), e.g. 8G; got {MEMORY_ENV}={text!r}"
        )
    return int(value)


def read_int(path: str) -> int | None:
    """An integer from a one-line file (None when missing, unreadable or not a number, e.g. 'max')."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


#: ``(pid, cgroup_paths())`` of the process that last read them: every resource guard asks
#: (thousands of times in a property run), and reading /proc/self/cgroup took ~25 us of the
#: ~100 us a guard cost. A process's cgroup is set when it starts; the pid makes a forked
#: child read its own.
_cgroup_paths_seen: tuple[int, dict] | None = None


def cgroup_paths() -> dict:
    """This process's cgroup path per hierarchy ('' for v2), from /proc/self/cgroup (read once
    per process)."""
    global _cgroup_paths_seen
    seen = _cgroup_paths_seen
    if seen is not None and seen[0] == os.getpid():
        return dict(seen[1])
    out = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else [""]:
                    out[c] = path
    except (OSError, ValueError):
        pass
    _cgroup_paths_seen = (os.getpid(), out)
    return dict(out)


def cgroup_available(root: str = "/sys/fs/cgroup") -> int | None:
    """Memory left under this process's cgroup limit (v2 ``memory.max``, v1
    ``memory.limit_in_bytes``), minus what the group uses now; None without a limit."""
    paths = cgroup_paths()
    candidates = []
    v2 = paths.get("", "/").lstrip("/")
    for folder in (os.path.join(root, v2), root):
        candidates.append((os.path.join(folder, "memory.max"), os.path.join(folder, "memory.current")))
    v1 = paths.get("memory", "/").lstrip("/")
    for folder in (os.path.join(root, "memory", v1), os.path.join(root, "memory")):
        candidates.append((os.path.join(folder, "memory.limit_in_bytes"),
                           os.path.join(folder, "memory.usage_in_bytes")))
    for limit_file, usage_file in candidates:
        limit = read_int(limit_file)
        if limit is not None:
            return max(0, limit - (read_int(usage_file) or 0))
    return None


def meminfo_available() -> int | None:
    """``MemAvailable`` from /proc/meminfo (the kernel's estimate of memory usable without swapping)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def resident_memory(pid: int) -> int | None:
    """The resident memory of process ``pid`` in bytes, from ``/proc/PID/statm``; None where it
    cannot be read (no /proc, as on macOS, or the process has ended)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def available_memory() -> tuple[int | None, str]:
    """Bytes gradlab may use and where that number comes from.

    ``GRADLAB_MEMORY_LIMIT`` when set (taken as it is); otherwise :data:`MEMORY_FRACTION`
    of the smallest of the cgroup's remaining limit, ``MemAvailable`` and physical memory.
    ``(None, ...)`` when none of them can be read (the guard then stays silent).
    """
    text = os.environ.get(MEMORY_ENV)
    if text is not None and text.strip():
        limit = _parse_limit(text)
        return limit, f"the limit is {format_bytes(limit)} ({MEMORY_ENV}={text.strip()})"
    found = [b for b in (cgroup_available(), meminfo_available(), physical_memory()) if b is not None]
    if not found:
        return None, "unknown"
    have = min(found)
    return int(MEMORY_FRACTION * have), (
        f"this machine has {format_bytes(have)} available and gradlab uses at most "
        f"{MEMORY_FRACTION:.0%} of it (set {MEMORY_ENV} to change the limit)"
    )


def require_memory(estimate: MemoryEstimate) -> None:
    """Raise GradlabError when ``estimate`` exceeds the memory gradlab may use."""
    limit, where = available_memory()
    if limit is not None and estimate.total > limit:
        raise GradlabError(f"{estimate.describe()}; {where}")


# ------------------------------------------------------------------------ time

#: Longest a full finite-difference computation may be expected to take before gradlab
#: asks for ``force=True`` (``--force``): a minute is about as long as anyone waits at a
#: prompt for a gradient check without knowing why; the earlier parameter limit of the
#: trainer (1,000 parameters, about a minute of training on the digits) came to the same.
NUMERIC_TIME_LIMIT = 60.0

#: A pessimistic machine, for skipping the timing of small cases: numpy's fixed cost per
#: cost evaluation (a few dozen array operations at about a microsecond each, measured at
#: about 50 us for three layers; 1 ms is 20 times that) ...
EVALUATION_OVERHEAD = 1e-3
#: ... and a floating-point rate (one old core without vector units runs matrix products
#: at a few GFLOP/s) ...
SLOW_FLOPS = 1e9
#: ... and an optimistic one, for refusing huge work without running it (a many-core
#: server's float64 peak is a few TFLOP/s; numpy's batched products reach a fraction).
FAST_FLOPS = 1e13
#: Floating-point operations of one exp or log1p, per m x (unit) entry of the forward
#: pass and the cost (library implementations take 10-20).
ELEMENTWISE_FLOPS = 20

_forcing = contextvars.ContextVar("gradlab_forcing_slow_work", default=False)


@contextlib.contextmanager
def forced(force: bool = True):
    """Within this context, :func:`require_time` lets slow work run (``force=True`` of callers)."""
    token = _forcing.set(bool(force) or _forcing.get())
    try:
        yield
    finally:
        _forcing.reset(token)


def _cost_flops(sizes, m: int) -> float:
    """Floating-point operations of one cost evaluation: the matrix products (2 per
    multiply-add) and the elementwise exp/log passes."""
    return 2.0 * m * _n_params(sizes) + ELEMENTWISE_FLOPS * m * sum(sizes[1:])


def seconds_per_cost(problem, params) -> float:
    """Seconds of one evaluation of the cost here (best of three: the first pays for
    cold caches and page faults)."""
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        _cost.cost(np, problem.network, params, problem.X, problem.Y, problem.lam)
        best = min(best, time.perf_counter() - t0)
    return best


def _seconds(s: float) -> str:
    if s < 120:
        return f"{s:.2g} s"
    if s < 2 * 3600:
        return f"{s / 60:.3g} min"
    if s < 2 * 86400:
        return f"{s / 3600:.3g} h"
    return f"{s / 86400:.3g} days"


def time_estimate(problem, params, evaluations: int) -> tuple[float | None, str]:
    """Estimated seconds of ``evaluations`` cost evaluations, and how it was found.

    ``(None, ...)`` when a pessimistic model already puts it under the limit (nothing timed).
    """
    sizes, m = problem.network.sizes, problem.m
    flops = _cost_flops(sizes, m)
    if evaluations * (EVALUATION_OVERHEAD + flops / SLOW_FLOPS) <= NUMERIC_TIME_LIMIT:
        return None, "small"
    fastest = evaluations * flops / FAST_FLOPS
    if fastest > NUMERIC_TIME_LIMIT:
        return fastest, f"at least {_seconds(fastest)} even at {FAST_FLOPS:.0e} flop/s"
    one = seconds_per_cost(problem, params)
    total = evaluations * one
    return total, f"about {_seconds(total)} here ({one:.2g} s per evaluation, timed)"


def require_time(problem, params, evaluations: int, what: str, *, force: bool = False,
                 instead: str = "") -> None:
    """Raise GradlabError when ``evaluations`` cost evaluations would take longer than
    :data:`NUMERIC_TIME_LIMIT`, unless ``force`` (or inside :func:`forced`)."""
    if force or _forcing.get():
        return
    seconds, how = time_estimate(problem, params, evaluations)
    if seconds is not None and seconds > NUMERIC_TIME_LIMIT:
        net = problem.network
        raise GradlabError(
            f"{what} takes {evaluations:,} cost evaluations for sizes={net.sizes} "
            f"(P={net.n_params:,} parameters) with m={problem.m} examples: {how}, above the "
            f"limit of {_seconds(NUMERIC_TIME_LIMIT)}; pass force=True (--force) to run it anyway"
            + (f", or {instead}" if instead else "")
        )
