"""Fast mode with an exact witness: every entry compared with jax (or backprop) by the
checker, the witness itself confirmed by finite differences along random directions, and
the disagreement judged along its own direction -- a few dozen cost evaluations whatever
the size, so nothing the witness sees is missed and the diagnosis is full mode's."""

from __future__ import annotations

import numpy as np

from gradlab._judge import EPS, NUMERIC_SAFETY, ROUNDOFF_EVALS
from gradlab.check.fast import FAST_DIRECTIONS, FAST_REPORT_MISS, MISS_RULE, Directional, cost_box, detectable
from gradlab.check.findings import layer_slices
from gradlab.network import Problem

__all__ = ["witness_check"]


def witness_check(U, R, problem: Problem, params, rng, ref_name: str):
    """The network's fast mode with an exact witness ``R`` (every entry of ``U`` is compared
    with it exactly by the caller): finite differences along random directions confirm the
    witness layer by layer, and one direction -- that of the disagreement ``U - R`` -- says
    which of the two the cost's derivative sides with. A few dozen cost evaluations whatever P.

    Returns ``(failed_layers, probe, stats)``: the layers where the witness failed its
    directions; the disagreement probe (None when U equals R); the report's fast block.
    """
    net = problem.network
    dd = Directional(cost_box(problem, params))
    R1 = np.asarray(R)[None, :]
    layers_info, failed = [], []
    for layer, sl in enumerate(layer_slices(net), start=1):
        idx = np.arange(sl.start, sl.stop)
        flags = [dd.probe(R1, idx, rng) for _ in range(FAST_DIRECTIONS)]
        if layer == 1:
            flags = [dd.calibrate(R1, f) for f in flags]
        tol = float(max(np.max(f.tol) for f in flags))
        layers_info.append({"layer": layer, "tolerance": tol, "detectable_error": detectable(tol, idx.size),
                            "flagged": any(f.flagged for f in flags)})
        if any(f.flagged for f in flags):
            failed.append(layer)
    probe = None
    diff = np.asarray(U) - np.asarray(R)
    size = float(np.linalg.norm(diff))
    if size > 0.0:
        everything = np.arange(net.n_params)
        d = diff / size
        d1 = float(dd.derivative(everything, d, dd.h)[0])
        d2 = float(dd.derivative(everything, d, 2.0 * dd.h)[0])
        # Round-off of two evaluations plus the truncation estimated along this very direction.
        tol = NUMERIC_SAFETY * (ROUNDOFF_EVALS * EPS * float(dd.size[0]) / dd.h + abs(d2 - d1) / 3.0)
        yours, ref = float(np.asarray(U) @ d), float(np.asarray(R) @ d)
        probe = {"yours": yours, ref_name: ref, "numeric": d1, "tolerance": tol,
                 "numeric_agrees_with_yours": abs(yours - d1) <= tol,
                 f"numeric_agrees_with_{ref_name}": abs(ref - d1) <= tol,
                 "can_tell": abs(yours - ref) > 2.0 * tol}
    stats = {"witness": ref_name, "exact_entries": int(net.n_params), "directions_per_layer": FAST_DIRECTIONS,
             "miss_probability": FAST_REPORT_MISS, "cost_evaluations": dd.bb.count,
             "full_check_evaluations": 2 * net.n_params, "stopped_bisecting": False, "step": dd.h,
             "layers": layers_info, "disagreement_probe": probe,
             "miss_probability_rule": f"every entry is compared with {ref_name} exactly; {ref_name} itself is "
                                      f"confirmed along random directions, where {MISS_RULE}"}
    return failed, probe, stats
