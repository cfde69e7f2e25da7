"""BLAS threads chosen for the work: one thread for the small matrix products of gradlab's
own hot loops (back-propagation, training, finite differences), the BLAS's own setting for
large ones.

Why: a network's products are small (the shipped digits: 1,438 x 65 times 65 x 25). With
a second BLAS thread they gain a little on an idle machine (0.75-0.9x the one-thread time
measured here) and lose a great deal on a busy one: each threaded product waits for a
core that other processes hold, which made training the digits 15-20 times slower than
with one thread on 2 cores beside two CPU-bound processes (benchmarks/threads.py; its
results in benchmarks/README.md).

The limit holds only while gradlab's own call runs (:func:`for_problem` is a context
manager) and is put back as it was on the way out, so the user's setting (an
``OPENBLAS_NUM_THREADS`` or a threadpoolctl limit of their own) is untouched outside it.
Inside, it applies to everything that runs in that block, a user's gradient function
called by the trainer included. BLAS thread settings are process-wide: another Python
thread using numpy while gradlab works sees the same limit.
"""

from __future__ import annotations

import contextlib
import sys
import threading

from threadpoolctl import ThreadpoolController

#: Below this many floating-point operations in the largest matrix product of a problem,
#: gradlab runs its products on one BLAS thread. Measured on 2 cores beside two CPU-bound
#: processes (benchmarks/threads.py, results in benchmarks/README.md), a threaded product
#: loses a fixed 25 ms or more plus up to its own one-thread time: 10-115x slower for
#: largest products of 5e6-1e8 flops, about 2x at 8e8-4e9. 2e9 flops take about 80 ms on
#: one core here (25 GFLOP/s), so above it the loss on a busy machine stays near 2x while
#: the gain on idle cores grows with their number (0.6x the one-thread time on 2 idle cores
#: at 4e9 flops); below it the fixed loss dominates and one thread is the safe choice.
SMALL_PRODUCT_FLOPS = 2e9
#: Below this many flops one and two BLAS threads measured the same here (0.98-1.05x for
#: largest products of 3e5 and 1e6 flops, busy or quiet): the BLAS keeps such products on
#: one thread by itself. No limit is set for them, which saves its cost (about 8-16 us an
#: entry, 5-10% of a whole back-propagation of the debug network).
BLAS_ALONE_FLOPS = 1e6

_state = threading.local()
_cache = {"controller": None, "modules": -1}


def largest_product_flops(sizes, m: int) -> float:
    """Flops (two per multiply-add) of the largest product a forward or backward pass over
    ``m`` examples makes for layer sizes ``sizes``: ``2 m (s_l + 1) s_{l+1}`` at its largest."""
    return max(2.0 * m * (a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def one_thread_for(sizes, m: int) -> bool:
    """Whether gradlab limits the BLAS to one thread for this network and number of examples."""
    flops = largest_product_flops(sizes, m)
    return BLAS_ALONE_FLOPS <= flops < SMALL_PRODUCT_FLOPS


def _controller():
    """A threadpoolctl controller, made again when modules were imported since the last one
    (a newly imported module may have loaded another BLAS); making one costs about 1 ms."""
    if _cache["modules"] != len(sys.modules):
        _cache["controller"] = ThreadpoolController()
        _cache["modules"] = len(sys.modules)
    return _cache["controller"]


@contextlib.contextmanager
def limited(one_thread: bool):
    """One BLAS thread inside the block when ``one_thread``; nested blocks cost nothing."""
    if not one_thread or getattr(_state, "depth", 0):
        yield
        return
    _state.depth = 1
    try:
        with _controller().limit(limits=1, user_api="blas"):
            yield
    finally:
        _state.depth = 0


def for_problem(problem):
    """The BLAS threads chosen for ``problem``'s products, for the duration of a ``with`` block."""
    return limited(one_thread_for(problem.network.sizes, problem.m))
