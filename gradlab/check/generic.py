"""The generic checks' engine (any function, any layer): your gradient against jax and
finite differences, blamed three ways.

1. **Your code, on copies**: the first calls return your gradient and show what your code
   wrote into its arguments (purity); a second call on identical copies must agree with
   the first (determinism), for the function's values too -- finite differences of a
   function that changes between calls mean nothing.
2. **The witnesses**: jax (exact) when it can trace the function, and central
   differences with their error estimate; when jax cannot, a second numeric method --
   the complex step where the function proves analytic, else Richardson extrapolation.
3. **Blame**, entry by entry: yours against the exact witness, and each witness against
   the finite differences. Witnesses that agree with each other and not with you: your
   gradient. Finite differences alone against the rest: a numerical problem (not yours).
   Two witnesses of the same function that disagree while you match neither: the function
   itself is suspect. At a kink, the one-sided quotients decide.
4. **Diagnosis** of each input blamed on you (:mod:`gradlab.check.patterns`).

What is checked is a *case* (:class:`Case`): ``K`` scalar functions of one flat vector (the
black box the finite differences evaluate), your gradient of each (``K`` rows), and the
same functions traced by jax. :mod:`gradlab.check.function` makes one of a scalar
function (K = 1), :mod:`gradlab.check.layer` of a layer's ``<dout_k, forward(theta)>``.
"""

from __future__ import annotations

import time

import numpy as np

from gradlab._errors import GradlabError
from gradlab._judge import EPS, EXACT_NORM_RATIO, NUMERIC_SAFETY, ROUNDOFF_EVALS, resolution_floor
from gradlab._resources import NUMERIC_TIME_LIMIT
from gradlab.check import traced
from gradlab.check.agreement import Judge
from gradlab.check.blackbox import BlackBox, central, complex_step, complex_trial, richardson
from gradlab.check.fast import FULL_MODE_MAX_PARAMS, fast_inputs
from gradlab.check.findings import InputFinding, groups_of
from gradlab.check.inputs import Inputs
from gradlab.check.patterns import MAX_ENTRIES, MAX_LISTED, Diagnoser
from gradlab.check.report import GradientReport
from gradlab.check.traced import JaxUnavailable

__all__ = ["Case", "run"]


# --------------------------------------------------------------------------------------
# A case: K scalar functions of one flat vector, your gradient of each, jax's
# --------------------------------------------------------------------------------------


class Case:
    """Base of the two kinds of check (see the module docstring).

    A subclass provides: ``check`` (the front door's name), ``K``, ``title``, ``grad_what``
    (how messages name the gradient's code), ``scalars(theta) -> (values, sizes)`` (the
    black box), ``first() -> (U, findings, scale)`` (your gradient, K rows, with purity and
    output findings), ``again()`` (a second call), ``jax() -> (values, R)`` (or
    JaxUnavailable), and the experiments' variants ``sub(k, n)`` (the first k examples of a
    batch of n) and ``masked(k, n)`` (layers: dout's rows from k on zeroed; else None).
    """

    check = ""
    K = 1

    def __init__(self, inputs: Inputs):
        self.inputs = inputs

    def _dynamic(self) -> list[int]:
        """Pass-through inputs handed to the compiled witness as arguments: numeric arrays
        (numpy ones become jax arrays, so ``array_namespace(x, y)`` finds one namespace)."""
        return [i for i, x in enumerate(self.inputs.values)
                if i not in self.inputs.positions and traced.numeric_array(x)]

    def _compiled(self, fn, tag, build):
        """The jitted witness for ``fn`` at inputs of these shapes, compiled once and kept.

        Keyed by the function, the shapes and dtypes of the differentiated and array
        inputs, and the other pass-through inputs by type and value (``repr``): a check
        repeated over many random inputs (a property test) compiles once per shape.
        """
        parts = []
        for i, x in enumerate(self.inputs.values):
            if i in self.inputs.positions:
                parts.append(("wrt", self.inputs.slots_by_position[i].shape))
            elif traced.numeric_array(x):
                parts.append(("array", tuple(np.shape(x)), str(x.dtype)))
            else:
                parts.append(("static", type(x).__qualname__, repr(x)))
        return traced.compiled((fn, tag, tuple(parts)), build)

    def _passthrough_builder(self):
        """``(arrays) -> passthrough list``: the static inputs as this case has them, the
        dynamic ones from the compiled function's arguments."""
        statics = list(self.inputs.values)
        dynamic = self._dynamic()

        def passthrough(arrays):
            out = list(statics)
            for i, a in zip(dynamic, arrays):
                out[i] = a
            return out

        return passthrough

    def _dynamic_args(self, jnp):
        return tuple(jnp.asarray(self.inputs.values[i]) for i in self._dynamic())

    def batch_size(self) -> int | None:
        return self.inputs.batch_size()


# --------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------


def _rows(U, slot):
    return U[:, slot.start:slot.stop]


class _Witness:
    """Which reference the experiments use, computed again at another case when asked."""

    def __init__(self, jax_ok: bool, complex_ok: bool):
        self.jax_ok, self.complex_ok = jax_ok, complex_ok
        self.evaluations = 0

    def __call__(self, case, position):
        s = case.inputs.slots_by_position[position]
        if self.jax_ok:
            _, R = case.jax()
            return _rows(R, s)
        bb = BlackBox(case.scalars, case.inputs.theta0, case.K)
        idx = np.arange(s.start, s.stop)
        est = complex_step(bb, idx) if self.complex_ok else central(bb, idx)
        self.evaluations += bb.count
        return est.value


def _determinism(case, bb, U, floor, findings) -> bool:
    """Two evaluations of the function and two of your gradient, on identical copies.
    Returns False when the function's own values differ (nothing numeric can be judged)."""
    J2, _ = bb.at(bb.theta0)
    tol = NUMERIC_SAFETY * ROUNDOFF_EVALS * EPS * bb.size0  # deterministic code repeats itself to round-off
    if not np.all(np.abs(J2 - bb.J0) <= tol):
        findings.append(InputFinding(
            "non_determinism", None, None,
            f"two calls on identical copies of the inputs returned different values ({bb.J0[0]:.17g} and "
            f"{J2[0]:.17g}): the function depends on something besides its arguments -- randomness (a dropout "
            "mask drawn inside: fix it with a seed or pass it in), global state, data kept between calls. "
            "Finite differences of it mean nothing, so the gradient is not judged.",
            "evaluated the function twice at the same inputs", cause="function values differ",
            values=[{"argument": "value", "first": float(np.real(bb.J0[0])), "second": float(np.real(J2[0]))}]))
        return False
    U2 = case.again()
    if U2 is not None and not np.all(np.abs(U2[0] - U[0]) <= np.maximum(floor[0], EXACT_NORM_RATIO * np.abs(U[0]))):
        bad = np.flatnonzero(np.abs(U2[0] - U[0]) > np.maximum(floor[0], EXACT_NORM_RATIO * np.abs(U[0])))
        s, e = case.inputs.locate(int(bad[0]))
        findings.append(InputFinding(
            "non_determinism", s.name, s.position,
            f"two calls of {case.grad_what} on identical copies of the arguments returned different gradients "
            f"({bad.size} entries differ, the first in {s.label}): it depends on something besides its "
            "arguments -- global state it changes, randomness, data kept between calls.",
            "called it twice on fresh, identical copies of the arguments",
            entries=[case.inputs.locate(int(i))[1] for i in bad[:MAX_ENTRIES]],
            values=[{"entry": case.inputs.locate(int(i))[1], "first": float(U[0, i]), "second": float(U2[0, i])}
                    for i in bad[:MAX_LISTED]], cause="gradients differ",
            extra={"n_entries": int(bad.size)}))
    return True


def _slot_finding(kind, s, mask, A, B, a_name, b_name, sentence, experiment, blame):
    """A finding about the entries ``mask`` of input ``s``, with both witnesses' values."""
    per = mask.any(axis=0)[s.start:s.stop]
    flat = np.flatnonzero(per)
    values = []
    for i in flat[:MAX_LISTED]:
        k = int(np.flatnonzero(mask[:, s.start + i])[0])
        values.append({"entry": s.index(int(i)), a_name: float(A[k, s.start + i]),
                       b_name: float(B[k, s.start + i])})
    return InputFinding(kind, s.name, s.position, sentence, experiment,
                        entries=[s.index(int(i)) for i in flat[:MAX_ENTRIES]],
                        groups=groups_of(per, s.shape) if 0 < flat.size < s.size else [],
                        values=values, blame=blame, extra={"n_entries": int(flat.size)})


def run(case, *, mode: str, against, seed: int, info: dict) -> GradientReport:
    """The whole check of one case (see the module docstring)."""
    rng = np.random.default_rng([seed, 1])
    inputs = case.inputs
    findings: list[InputFinding] = []
    notes: list[str] = []
    comparisons: dict = {}
    info = {**info, "check": case.check, "function": case.title, "inputs_text": inputs.describe(),
            "inputs": [{"name": s.name, "position": s.position, "shape": list(s.shape), "dtype": s.dtype}
                       for s in inputs.slots],
            "n_entries": inputs.n, "seed": seed, "against": list(against)}
    if case.check == "check_layer":
        info.update(douts=case.K, out_shape=list(case.out_shape), douts_random=case.random_douts)

    U, found, scale = case.first()
    findings += found
    if U is None:
        info["mode"] = mode
        return GradientReport(info, findings, comparisons, notes)

    started = time.perf_counter()
    bb = BlackBox(case.scalars, inputs.theta0, case.K)
    seconds = time.perf_counter() - started
    floor = resolution_floor(bb.size0, inputs.theta0)
    for s in inputs.slots:
        if s.position in scale:  # a float32 result: judged at its precision
            floor[:, s.start:s.stop] *= scale[s.position]
    if not _determinism(case, bb, U, floor, findings):
        info["mode"] = mode
        return GradientReport(info, findings, comparisons, notes)

    R = None
    if "jax" in against:
        try:
            values, R = case.jax()
            # J's scale: its own size, or what a change of each input by its own scale does to it
            # (J itself may cancel to 0 while its terms do not).
            scale = np.maximum.reduce([bb.size0, np.abs(values),
                                       np.abs(R) @ np.maximum(1.0, np.abs(inputs.theta0))])
            if not np.all(np.abs(values - np.real(bb.J0)) <= EXACT_NORM_RATIO * scale):
                raise JaxUnavailable(f"under jax the function has another value ({values[0]:.17g}, numpy "
                                     f"{np.real(bb.J0[0]):.17g}): jax does not see the function numpy evaluates")
            if not np.all(np.isfinite(R)):
                raise JaxUnavailable("jax's gradient has non-finite entries")
        except JaxUnavailable as exc:
            notes.append(f"jax witness unavailable: {exc}")
            R = None
    if R is None and "numeric" not in against:
        raise GradlabError(f"against={tuple(against)!r} names jax alone, and {notes[-1]}; add 'numeric' to "
                           "judge with finite differences")
    jax_ok = R is not None
    n = inputs.n
    if mode == "auto":
        full_evals = 4 * n + (0 if jax_ok else 24 * n)
        mode = "full" if n <= FULL_MODE_MAX_PARAMS and seconds * full_evals <= NUMERIC_TIME_LIMIT else "fast"
    info["mode"] = mode
    witnesses = (["jax (reverse mode, float64, traces your code)"] if jax_ok else [])

    if mode == "fast":
        return _run_fast(case, U, R, bb, rng, floor, findings, notes, comparisons, witnesses, info)

    N = central(bb) if "numeric" in against else None
    N2 = None
    complex_ok = False
    if not jax_ok:
        reason = complex_trial(bb, rng)
        if reason is None:
            N2, complex_ok = complex_step(bb), True
        else:
            notes.append(f"complex step unavailable: {reason}")
            N2 = richardson(bb)
    if N is not None:
        witnesses.append(f"central differences ({N.evaluations} evaluations; error estimate from half the step)")
    if N2 is not None:
        witnesses.append(f"{N2.method} ({N2.evaluations} evaluations)")
    info["witnesses"] = witnesses
    judge = Judge(inputs.slots, floor)

    # Kinks: the one-sided quotients of the central stencil decide there.
    kink = N.kink if N is not None else np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        lo = np.fmin(N.left, N.right) - N.side_tol if N is not None else None
        hi = np.fmax(N.left, N.right) + N.side_tol if N is not None else None
        in_side = (U >= lo) & (U <= hi) if N is not None else np.zeros(U.shape, dtype=bool)
    in_side &= kink[None, :]

    blamed = np.zeros(U.shape, dtype=bool)
    numeric_bad = np.zeros(U.shape, dtype=bool)
    suspect = np.zeros(U.shape, dtype=bool)
    if jax_ok:
        ref, ref_name = R, "jax"
        p_ur = judge.exact("yours", "jax", U, R, accept=in_side)
        comparisons["yours vs jax"] = p_ur.to_dict()
        p_rn = None
        if N is not None:
            comparisons["yours vs central"] = judge.numeric("yours", "central", U, N.value, N.error, kink).to_dict()
            p_rn = judge.numeric("jax", "central", R, N.value, N.error, kink)
            comparisons["jax vs central"] = p_rn.to_dict()
        blamed = p_ur.bad
        if p_rn is not None:
            numeric_bad = p_rn.bad & ~blamed
            suspect = p_rn.bad & blamed
            # Inputs yours gets right: where central differs from jax is finite differences' problem.
            for s in inputs.slots:
                if p_ur.inputs[s.name]["ok"]:
                    numeric_bad[:, s.start:s.stop] = p_rn.bad[:, s.start:s.stop]
    else:
        names = ("central", N2.method)
        p_un = judge.numeric("yours", names[0], U, N.value, N.error, kink)
        p_un2 = judge.numeric("yours", names[1], U, N2.value, N2.error, kink)
        p_nn = judge.numeric(names[0], names[1], N.value, N2.value, N.error + N2.error, kink)
        comparisons[f"yours vs {names[0]}"] = p_un.to_dict()
        comparisons[f"yours vs {names[1]}"] = p_un2.to_dict()
        comparisons[f"{names[0]} vs {names[1]}"] = p_nn.to_dict()
        sharper = N2.error <= N.error
        ref = np.where(sharper, N2.value, N.value)
        ref_name = f"the numeric witnesses ({N2.method}, central differences)"
        blamed = np.where(sharper, p_un2.bad, p_un.bad) & ~p_nn.bad
        blamed |= kink[None, :] & ~in_side
        numeric_bad = p_nn.bad & ~(p_un.bad & p_un2.bad)
        suspect = p_nn.bad & p_un.bad & p_un2.bad
        blamed &= ~suspect

    # The kinks, each with its one-sided quotients.
    kinks = []
    for i in np.flatnonzero(kink):
        s, e = inputs.locate(int(i))
        k = 0
        kinks.append({"input": s.name, "position": s.position, "entry": list(e), "yours": float(U[k, i]),
                      "left": float(N.left[k, i]), "right": float(N.right[k, i]),
                      "ok": bool(not blamed[:, i].any())})
    if kinks:
        ok_k = sum(k["ok"] for k in kinks)
        bad_k = len(kinks) - ok_k  # wrong ones are also among the input's wrong entries below
        findings.append(InputFinding(
            "kink", None, None,
            f"{len(kinks)} entr{'y' if len(kinks) == 1 else 'ies'}' finite-difference stencil crossed a kink (the "
            "slope jumps there: relu at 0, a max with a near tie, a hinge); central differences are not used for "
            f"them. {ok_k} of your value(s) are the derivative "
            + ("of jax or " if jax_ok else "") + "of one side (or between), as a subgradient may be"
            + (f"; {bad_k} lie outside both one-sided quotients." if bad_k else "."),
            "compared the second differences at two steps (a smooth function's halve with the step; a kink's do "
            "not) and computed the left and right one-sided quotients", blame="numeric", cause="kink crossed",
            extra={"n_entries": len(kinks)}))

    # Blame, input by input.
    user_slots = [s for s in inputs.slots if blamed[:, s.start:s.stop].any()]
    n_num = int(numeric_bad.any(axis=0).sum())
    if suspect.any():
        info["blame"] = ("the function -- two witnesses of the same function disagree"
                         + (" where your gradient matches neither" if not jax_ok else ""))
    elif not user_slots:
        info["blame"] = ("none -- your gradient agrees with " + ("jax" if jax_ok else "both numeric methods")
                         + (f"; finite differences disagree at {n_num} entr{'y' if n_num == 1 else 'ies'}: a "
                            "numerical problem, not yours" if n_num else ""))
    else:
        info["blame"] = (f"your gradient -- it differs from {ref_name} in "
                         + ", ".join(s.label for s in user_slots)
                         + (" while finite differences agree with jax" if jax_ok and N is not None else ""))
    for s in inputs.slots:
        sl = slice(s.start, s.stop)
        if numeric_bad[:, sl].any():
            findings.append(_slot_finding(
                "numeric_problem", s, numeric_bad, N.value, ref if not jax_ok else R, "central",
                "jax" if jax_ok else "reference",
                f"finite differences of {s.label} differ from " + ("jax" if jax_ok else "the other numeric method")
                + " by more than their own error estimate, while your gradient agrees with "
                + ("jax" if jax_ok else "one of them") + ": a numerical problem (the step, a kink, round-off), "
                "not your gradient.", "compared the witnesses pairwise", blame="numeric"))
        if suspect[:, sl].any():
            findings.append(_slot_finding(
                "function_suspect", s, suspect, N.value, R if jax_ok else N2.value, "central",
                "jax" if jax_ok else N2.method,
                f"two witnesses of the same function disagree on {s.label}, and your gradient matches neither: "
                "the function itself is suspect here (not smooth at this point, random, or computing something "
                "else under jax than under numpy).", "compared the witnesses pairwise", blame="function"))

    witness = _Witness(jax_ok, complex_ok)
    diag = Diagnoser(case, U, ref, ref_name, floor, witness, notes)
    found = []
    for s in user_slots:
        found.append(diag.slot(s, blamed[:, s.start:s.stop], found))
    # A transposed-shape finding from the output check already says it all for its input.
    shape_t = {f.input for f in findings if f.kind == "transposed"}
    findings += [f for f in found if not (f.input in shape_t and f.kind == "transposed")]
    info["evaluations"] = bb.count + witness.evaluations
    return GradientReport(info, findings, comparisons, notes, kinks)


def _run_fast(case, U, R, bb, rng, floor, findings, notes, comparisons, witnesses, info):
    witnesses.append("central differences along random directions, bisection (fast mode)")
    info["witnesses"] = witnesses
    judge = Judge(case.inputs.slots, floor)
    N_batch = case.batch_size()
    if R is not None:
        p = judge.exact("yours", "jax", U, R)
        comparisons["yours vs jax"] = p.to_dict()
        witness = _Witness(True, False)
        diag = Diagnoser(case, U, R, "jax", floor, witness, notes)
        found = []
        for s in case.inputs.slots:
            if not p.inputs[s.name]["ok"]:
                found.append(diag.slot(s, p.bad[:, s.start:s.stop], found))
        findings += found
        # jax itself along random directions: does it agree with the function's finite differences?
        fast_findings, stats = fast_inputs(case.inputs, R, bb, rng, N_batch)
        for f in fast_findings:
            findings.append(InputFinding("function_suspect", f.input, f.position,
                                         f"jax's gradient of {f.input} disagrees with finite differences of the same "
                                         "function along random directions: the function itself is suspect (not "
                                         "smooth, or not what jax sees).", f.experiment, blame="function"))
        comparisons["jax vs central (directions)"] = {"ok": not fast_findings, "measure": "random directions",
                                                      "value": None, "criterion": "|g.v - D_v J| <= 10x the "
                                                      "directional error estimate"}
        info["blame"] = "your gradient" if found else "none -- your gradient agrees with jax"
    else:
        fast_findings, stats = fast_inputs(case.inputs, U, bb, rng, N_batch)
        findings += fast_findings
        comparisons["yours vs central (directions)"] = {"ok": not fast_findings, "measure": "random directions",
                                                        "value": None, "criterion": "|g.v - D_v J| <= 10x the "
                                                        "directional error estimate"}
        info["blame"] = "your gradient" if fast_findings else "none -- your gradient agrees along every direction"
    info["evaluations"] = bb.count
    return GradientReport(info, findings, comparisons, notes, fast=stats)
