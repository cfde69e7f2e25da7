"""Check anyone's Hessian-vector product ``hvp(problem, params, v)``: blame, localisation, diagnosis.

The same engine as the gradient checker, one order up. The user's function is called **on
copies** of its arguments (writes into params, v or the data are reported), twice (it must be
deterministic), and its ``H v`` is compared with gradlab's independent witnesses: jax's
forward-over-reverse product of the shared cost (exact) and central differences of the
back-propagated gradient along v (numeric, with a per-entry error estimate). A disagreement is
blamed three ways, as for gradients: your product, a numerical problem, or the cost.

Every diagnosis comes from an experiment:

* **lambda on and off** -- right at ``lam = 0`` and wrong at ``lam > 0`` means the
  regularisation term, whose Hessian is ``lam/m`` on every weight but the bias;
* **blocks** -- directions that move one weight matrix only show which blocks of H are wrong:
  ``H v``'s rows of ``Theta_a`` when v moves ``Theta_b`` is the block ``H[Theta_a, Theta_b]``;
* **ratios** -- a block of ``H v`` that is ``c`` times the truth (a sign, a missing 1/m);
* **missing terms** -- the R-operator with one product-rule term left out
  (:data:`gradlab.sources.rop.TERMS`: the activation's second derivative, the output sigmoid's
  derivative, a delta times the moved weights, ...) is computed for every term and layer; when
  your product equals one of them, that term is what your derivation lost;
* **symmetry** -- ``u . H v`` against ``v . H u`` for a second random direction u (a Hessian is
  symmetric, so a product that breaks it is wrong along one of the two directions).
"""

from __future__ import annotations

import numpy as np

from gradlab import _resources
from gradlab import _validate as v
from gradlab._errors import UserCodeError, UserCodeStopped
from gradlab._judge import (MAX_LAM, MAX_WEIGHT_SCALE, NUMERIC_SAFETY, TINY, factor, fits, hvp_agree,
                            hvp_roundoff_floor, is_ratio, norm, norm_ratio, numeric_bound, symmetry_tolerance)
from gradlab._usercode import check_signature, code_file, fn_name, one_line, raised_where, user_code
from gradlab.check.calls import Call, as_gradient, mutation_findings, same
from gradlab.check.point import case
from gradlab.check.prepare import DEFAULT_EXAMPLES, DEFAULT_LAM
from gradlab.check.findings import Finding, differing, entry_finding, factor_name, layer_slices
from gradlab.check.report import CheckReport
from gradlab.network import Network, Problem
from gradlab.sources import rop
from gradlab.sources.second_order import HVP_SOURCES, hvp

__all__ = ["check_hvp", "AGAINST"]

#: The witnesses a Hessian-vector product can be checked against.
AGAINST = ("jax", "backprop", "numeric")

_WHAT = "Hessian-vector product"


class HvpCaller:
    """Calls the user's ``hvp(problem, params, v)`` on copies and records what it wrote."""

    def __init__(self, fn):
        self.fn = fn
        self.name = fn_name(fn)
        self.file = code_file(fn)

    def __call__(self, problem: Problem, params: np.ndarray, direction: np.ndarray) -> Call:
        theta, vec = params.copy(), direction.copy()
        prob = problem.writeable_copy()
        named = {"v": (direction, vec), "problem.X": (problem.X, prob.X), "problem.y": (problem.y, prob.y)}
        if prob.labels is not None:
            named["problem.Y"] = (problem.Y, prob.Y)
        try:
            with user_code():
                raw = self.fn(prob, theta, vec)
        except (KeyboardInterrupt, UserCodeStopped):  # Ctrl-C; an isolated function stopped (nothing raised)
            raise
        except BaseException as exc:  # the user's code: reported whatever it raised (see gradlab._usercode)
            raise UserCodeError(f"hvp_fn {self.name} raised {one_line(exc)}{raised_where(exc, self.file)}") from exc
        writes = {}
        if not same(params, theta):
            writes["params"] = (params.copy(), theta.copy())
        for key, (orig, given) in named.items():
            if not same(orig, given):
                writes[key] = (np.asarray(orig), np.array(given, copy=True))
        return Call(raw, writes, theta)


def _unit(rng, n: int, mask=None) -> np.ndarray:
    x = rng.standard_normal(n)
    if mask is not None:
        x = np.where(mask, x, 0.0)
    return x / norm(x)


def check_hvp(hvp_fn, sizes=(3, 5, 3), *, lam: float = DEFAULT_LAM, examples: int = DEFAULT_EXAMPLES,
              seed: int = 0, weight_scale: float = 1.0, against=("jax", "numeric")) -> CheckReport:
    """Check a Hessian-vector product function: blame, localise and explain what is wrong with it.

    Parameters
    ----------
    hvp_fn : callable
        ``hvp_fn(problem, params, v) -> flat H v`` of the regularised cost.
    sizes : sequence of int or Network, default (3, 5, 3)
        The network to check on (a :class:`gradlab.Network` brings its activation).
    lam : float, default 1.0
        lambda for the check (>= 0). When positive, lambda = 0 is tried as well.
    examples : int, default 5
        Number of examples m.
    seed : int, default 0
        Seed for the weights, the data and the directions.
    weight_scale : float, default 1.0
        Multiplies the initial weights.
    against : sequence of {"jax", "backprop", "numeric"}, default ("jax", "numeric")
        The witnesses; with an exact one and ``"numeric"`` a disagreement is blamed three ways.

    Returns
    -------
    CheckReport
        ``.ok``, ``.findings`` (layer, rows, columns, values, a sentence and the experiment),
        ``.to_dict()``, ``str()``.

    Raises
    ------
    GradlabError
        Bad arguments, or a function whose signature cannot take ``(problem, params, v)``.
    UserCodeError
        ``hvp_fn`` raised on the check problem.

    Examples
    --------
    >>> import gradlab
    >>> def doubled(problem, params, v):
    ...     return 2 * gradlab.hvp(problem, params, v)
    >>> r = gradlab.check(doubled, (3, 5, 3), order=2, against=("backprop",))
    >>> r.ok, r.findings[0].kind
    (False, 'constant_factor')
    """
    if isinstance(against, str) or not hasattr(against, "__iter__"):
        raise v.fail("against", against, "a sequence of source names from " + ", ".join(map(repr, AGAINST)))
    against = tuple(against)
    if not against or len(set(against)) != len(against) or any(a not in AGAINST for a in against):
        raise v.fail("against", against, "distinct source names from " + ", ".join(map(repr, AGAINST)))
    if not callable(hvp_fn):
        raise v.fail("hvp_fn", hvp_fn, "a callable")
    network = sizes if isinstance(sizes, Network) else Network(sizes)
    lam = v.real("lam", lam, minimum=0.0, maximum=MAX_LAM)
    examples = v.integer("examples", examples, minimum=1)
    seed = v.integer("seed", seed, minimum=0)
    weight_scale = v.real("weight_scale", weight_scale, minimum=0.0, maximum=MAX_WEIGHT_SCALE)
    check_signature(hvp_fn, 3, "hvp_fn", "(problem, params, v)")
    _resources.require_memory(_resources.problem_memory(network.sizes, examples, jax="jax" in against))
    problem, params = case(network, examples, lam, seed, weight_scale)
    info = {"function": fn_name(hvp_fn), "signature": "hvp (problem, params, v)", "sizes": list(network.sizes),
            "n_params": network.n_params, "examples": examples, "lam": lam, "seed": seed,
            "weight_scale": weight_scale, "mode": "order 2", "against": list(against),
            "activation": network.activation, "what": "Hessian-vector product"}
    return _run(HvpCaller(hvp_fn), problem, params, against, info, np.random.default_rng([seed, 2]))


def _run(caller: HvpCaller, problem: Problem, params, against, info, rng) -> CheckReport:
    net = problem.network
    name = caller.name
    direction, u = _unit(rng, net.n_params), _unit(rng, net.n_params)
    info["direction"] = f"a random unit vector (seed {info['seed']})"
    findings: list[Finding] = []
    comparisons: dict = {}

    first = caller(problem, params, direction)
    U, bad = as_gradient(first.raw, net, "gradlab", name, _WHAT)
    again = None
    if "params" in first.writes:
        try:
            again, _ = as_gradient(caller(problem, first.params_after.copy(), direction).raw, net, "gradlab", name, _WHAT)
        except UserCodeError:
            again = None
    findings += mutation_findings(net, first, again if U is not None else None, U, name)
    if bad is not None:
        findings.append(bad)
        if U is None:
            return CheckReport(info, findings, comparisons)

    floor = hvp_roundoff_floor(problem, params, direction)
    if bad is not None and bad.blame == "precision":
        floor = floor * (float(np.finfo(np.dtype(bad.extra["dtype"])).eps) / float(np.finfo(np.float64).eps))
    U2, _ = as_gradient(caller(problem, params, direction).raw, net, "gradlab", name, _WHAT)
    if U2 is not None and not hvp_agree(U, U2, floor):
        idx = differing(U, U2, floor)
        f = entry_finding(net, "non_determinism", net.locate(int(idx[0]))[0] if idx.size else None, idx, U, U2,
                          f"two calls of {name} on identical copies of the arguments returned different products "
                          f"(norm ratio {norm_ratio(U, U2):.3g}): it depends on something besides its arguments.",
                          "called the function twice on fresh, identical copies of its arguments")
        for val in f.values:
            val["first"], val["second"] = val.pop("yours"), val.pop("expected")
        findings.append(f)

    exact = next((a for a in against if a != "numeric"), None)
    R = hvp(problem, params, direction, exact) if exact else None
    est = HVP_SOURCES["numeric"].estimate(problem, params.copy(), direction.copy()) if "numeric" in against else None
    exact_crit = "norm ratio <= 1e-10, or every entry within its round-off bound"
    num_crit = f"every entry within {NUMERIC_SAFETY:g}x the numeric error estimate + the exact side's round-off"
    u_r = u_n = r_n = None
    if R is not None:
        u_r = hvp_agree(U, R, floor)
        comparisons[f"yours vs {exact}"] = {"ok": u_r, "measure": "||a-b||/||a+b||", "value": norm_ratio(U, R),
                                            "criterion": exact_crit}
    if est is not None and est.kink.any():
        info["numeric"] = "not judged: the central-difference stencil along v crosses a relu kink"
        findings.append(Finding(
            "numeric_problem", None, "central differences of the gradient along v cross a relu kink here, so they "
            "cannot judge your product" + ("; only the exact witness does." if exact else
                                           ": nothing judged its values (add an exact witness, e.g. against=('jax',))."),
            "looked at every hidden unit's on/off pattern along the stencil", blame="numeric"))
        est = None
    if est is not None:
        N = est.hvp
        bound = numeric_bound(est.error, U, N, floor)
        u_n = bool(np.all(np.abs(U - N) <= bound))
        comparisons["yours vs numeric"] = {"ok": u_n, "measure": "max |a-b| / bound",
                                           "value": float((np.abs(U - N) / np.maximum(bound, TINY)).max()),
                                           "criterion": num_crit}
        if R is not None:
            rn_bound = numeric_bound(est.error, R, N, floor)
            r_n = bool(np.all(np.abs(R - N) <= rn_bound))
            comparisons[f"{exact} vs numeric"] = {
                "ok": r_n, "measure": "max |a-b| / bound",
                "value": float((np.abs(R - N) / np.maximum(rn_bound, TINY)).max()), "criterion": num_crit}

    # Symmetry: u . U(v) against v . U(u), on the user's own products.
    Uu, _ = as_gradient(caller(problem, params, u).raw, net, "gradlab", name, _WHAT)
    sym_ok, asymmetric = True, None
    if Uu is not None:
        tol = symmetry_tolerance(u, direction, Uu, U, hvp_roundoff_floor(problem, params, u), floor)
        uHv, vHu = float(u @ U), float(direction @ Uu)
        sym_ok = abs(uHv - vHu) <= tol
        comparisons["symmetry u.Hv = v.Hu"] = {"ok": sym_ok, "measure": "|u.Hv - v.Hu|", "value": abs(uHv - vHu),
                                               "criterion": f"<= {tol:.3g}, the round-off of the two products"}
        if not sym_ok:
            asymmetric = (Finding(
                "asymmetric", None,
                f"your product is not that of a symmetric matrix: u . Hv = {uHv:.10g} but v . Hu = {vHu:.10g} "
                f"(difference {abs(uHv - vHu):.3g}, round-off allows {tol:.3g}). A Hessian is symmetric, so your "
                "H v is wrong along at least one of the two directions.",
                "called your function along v and along a second random unit vector u and compared u . Hv "
                "with v . Hu", error=abs(uHv - vHu), extra={"u_Hv": uHv, "v_Hu": vHu, "tolerance": tol}))
    # Listed after the entries and the diagnosis (which say more), whoever is blamed.
    asymmetric = [asymmetric] if not sym_ok else []

    if R is None:  # numeric only: entries, no experiments
        if u_n is False:
            for layer, sl in enumerate(layer_slices(net), start=1):
                idx = sl.start + np.flatnonzero(np.abs(U[sl] - est.hvp[sl]) > bound[sl])
                if idx.size:
                    findings.append(entry_finding(
                        net, "entries", layer, idx, U, est.hvp,
                        f"{idx.size} entr{'y' if idx.size == 1 else 'ies'} of H v in Theta{layer}'s rows differ from "
                        "central differences of the gradient by more than their error estimate allows.",
                        "compared every entry with central differences of the gradient along v"))
        return CheckReport(info, findings + asymmetric, comparisons)

    if u_r:
        info["blame"] = (f"none -- your product agrees with {exact}" + (
            "; finite differences disagree with both: a numerical problem, not yours" if r_n is False else
            " and with finite differences" if r_n else ""))
        if r_n is False:
            idx = np.flatnonzero(np.abs(R - est.hvp) > rn_bound)
            findings.append(entry_finding(
                net, "numeric_problem", net.locate(int(idx[0]))[0], idx, est.hvp, R,
                f"your product and {exact} agree, but central differences of the gradient differ from both at "
                f"{idx.size} entries by more than their own error estimate: a numerical problem, not yours.",
                f"compared your product, {exact} and central differences three ways", blame="numeric"))
        return CheckReport(info, findings + asymmetric, comparisons)
    if r_n is False:
        info["blame"] = f"the cost -- {exact} and finite differences of the same gradient disagree"
        idx = np.flatnonzero(np.abs(R - est.hvp) > rn_bound)
        findings.append(entry_finding(
            net, "cost_suspect", net.locate(int(idx[0]))[0], idx, est.hvp, R,
            f"{exact} and central differences of the gradient disagree with each other: the cost itself is "
            "suspect here (not smooth, or not the function both witnesses see).",
            f"compared your product, {exact} and central differences three ways", blame="cost"))
    else:
        info["blame"] = f"your product -- it differs from {exact}" + (" while finite differences agree with it"
                                                                      if r_n else "")
    diag = _Diagnoser(caller, exact, problem, params, direction, rng)
    findings += diag.run(U, R, floor)
    if diag.notes:
        for f in findings:
            f.extra["notes"] = diag.notes
    return CheckReport(info, findings + asymmetric, comparisons)


class _Diagnoser:
    """The experiments that explain a Hessian-vector product's disagreement with the exact one."""

    def __init__(self, caller, exact, problem, params, direction, rng):
        self.caller, self.exact = caller, exact
        self.problem, self.params, self.direction, self.rng = problem, params, direction, rng
        self.network = problem.network
        self.notes: list[str] = []

    def user(self, problem, direction):
        try:
            raw = self.caller(problem, self.params, direction).raw
        except UserCodeError as exc:
            self.notes.append(f"an experiment was skipped: {exc}")
            return None
        return as_gradient(raw, self.network, "gradlab", self.caller.name, _WHAT)[0]

    def ref(self, problem, direction):
        return hvp(problem, self.params, direction, self.exact)

    def run(self, U, R, floor) -> list[Finding]:
        p, lam = self.problem, self.problem.lam
        if lam > 0:
            p0 = p.with_lam(0.0)
            U0, R0 = self.user(p0, self.direction), self.ref(p0, self.direction)
            if U0 is None:
                return []
        else:
            p0, U0, R0 = p, U, R
        out = []
        if not hvp_agree(U0, R0, floor):
            out += self._data_term(p0, U0, R0, floor)
        if lam > 0:
            out += self._regularisation(U - U0, R - R0, floor, U0, R0)
        return out

    def _regularisation(self, user_reg, ref_reg, floor, U0, R0) -> list[Finding]:
        net, p, vec = self.network, self.problem, self.direction
        lam, m = p.lam, p.m
        out = []
        exp = (f"ran your function at lambda = {lam:g} and at lambda = 0; the difference is your regularisation "
               "term's Hessian times v, compared with lam/m * v (column 0, the bias, excluded)")
        for layer, sl in enumerate(layer_slices(net), start=1):
            u, r = user_reg[sl], ref_reg[sl]
            if hvp_agree(u, r, 2 * floor[sl]):
                continue
            # Wrong at lambda = 0 too, at these entries and by the same entrywise ratio (your H v
            # is the right one times a factor, penalty included): the finding at lambda = 0
            # already says it, and blaming the regularisation term would mislead.
            wrong_reg = np.abs(u - r) > 2 * floor[sl]
            wrong_data = np.abs(U0[sl] - R0[sl]) > floor[sl]
            if wrong_data.any() and not (wrong_reg & ~wrong_data).any() and fits(
                    u[wrong_reg] * R0[sl][wrong_reg], r[wrong_reg] * U0[sl][wrong_reg]):
                continue
            where = (f"besides the error at lambda = 0, Theta{layer}'s regularisation term in H v (the change from "
                     f"lambda = 0 to lambda = {lam:g}) is wrong" if wrong_data.any() else
                     f"H v in Theta{layer}'s rows is right at lambda = 0 and wrong at lambda = {lam:g}")
            idx = sl.start + differing(u, r, 2 * floor[sl])
            rows_, cols_ = net.shapes[layer - 1]
            weights = np.arange(rows_ * cols_).reshape(rows_, cols_)[:, 1:].ravel()
            # Within round-off of zero on every weight: the term left out (a factor 0 that
            # factor() cannot fit to round-off).
            c = 0.0 if np.all(np.abs(u[weights]) <= 2 * floor[sl][weights]) else factor(u[weights], r[weights])
            if fits(u, (lam / m) * vec[sl]):
                cause = "bias regularised"
                sentence = (f"{where}: you regularise the bias. The penalty lam/(2m) sum(Theta^2) leaves column 0 "
                            "out, so its Hessian is lam/m on every weight and 0 on the bias.")
            elif c is not None and np.allclose(u.reshape(rows_, cols_)[:, 0], 0.0):
                said = {m: "lam where lam/m belongs", 0: "no regularisation at all", 0.5: "lam/(2m), the cost's "
                        "factor, where the Hessian needs lam/m", 2: "2 lam/m: the square's 2 is already cancelled"}
                label = next((t for k, t in said.items() if is_ratio(c, float(k))), None)
                cause = f"regularisation factor {c:.6g} x lam/m" + (f": {label}" if label else "")
                sentence = (f"{where}: your regularisation term is {c:.6g} times lam/m * v"
                            + (f" -- {label}." if label else "."))
            else:
                cause = "regularisation term wrong"
                sentence = (f"{where}: the error is in your regularisation term, which should add lam/m * v with "
                            "column 0 zero.")
            out.append(entry_finding(net, "regularisation", layer, idx, user_reg, ref_reg, sentence, exp, cause=cause))
        return out

    def _blocks(self, p0, floor) -> dict[int, list[int]]:
        """For each row layer a, the column layers b whose directions make H v wrong there."""
        net = self.network
        slices = layer_slices(net)
        wrong: dict[int, list[int]] = {}
        for b, sl in enumerate(slices, start=1):
            mask = np.zeros(net.n_params, dtype=bool)
            mask[sl] = True
            vb = _unit(self.rng, net.n_params, mask)
            Ub = self.user(p0, vb)
            if Ub is None:
                continue
            Rb = self.ref(p0, vb)
            fb = hvp_roundoff_floor(p0, self.params, vb)
            for a, sa in enumerate(slices, start=1):
                if not hvp_agree(Ub[sa], Rb[sa], fb[sa]):
                    wrong.setdefault(a, []).append(b)
        return wrong

    def _data_term(self, p0, U0, R0, floor) -> list[Finding]:
        net = self.network
        slices = layer_slices(net)
        wrong_layers = [k + 1 for k, sl in enumerate(slices) if not hvp_agree(U0[sl], R0[sl], floor[sl])]
        blocks = self._blocks(p0, floor)
        block_text = "; ".join(f"rows of Theta{a} when v moves " + ", ".join(f"Theta{b}" for b in bs)
                               for a, bs in sorted(blocks.items()))
        block_exp = ("then along directions that move one weight matrix at a time, to find the wrong blocks "
                     "H[Theta_a, Theta_b] of the Hessian")
        extra = {"blocks": {f"Theta{a}": [f"Theta{b}" for b in bs] for a, bs in sorted(blocks.items())}}
        idx_all = differing(U0, R0, floor)
        first = wrong_layers[0] if wrong_layers else (net.locate(int(idx_all[0]))[0] if idx_all.size else None)

        def in_layer(layer):
            sl = slices[layer - 1]
            return idx_all[(idx_all >= sl.start) & (idx_all < sl.stop)]

        # A product-rule term left out: the R-operator without it reproduces your numbers.
        for term, k in rop.terms(net):
            model = rop.r_pass(p0, self.params, self.direction, without={(term, k)})
            if fits(U0, model) and not fits(R0, model):
                where = f"unit layer {k}" + (" (the output)" if k == net.n_layers else "")
                sentence = (f"your H v is the R-operator without one product-rule term, at {where}: "
                            f"{rop.TERMS[term]}. Wrong: " + (", ".join(f"Theta{w}" for w in wrong_layers) or "-")
                            + (f" (wrong blocks of H: {block_text})." if block_text else "."))
                return [entry_finding(net, "missing_term", first, in_layer(first) if first else idx_all, U0, R0,
                                      sentence, "computed the R-operator with each product-rule term left out in turn "
                                      "and compared it with your product; " + block_exp,
                                      cause=f"missing {term} at layer {k}", term=term, unit_layer=k, **extra)]
        out = []
        for layer in wrong_layers:
            sl = slices[layer - 1]
            c = factor(U0[sl], R0[sl])
            if c is None:
                continue
            label = factor_name(c, p0.m)
            kind = "sign_flip" if is_ratio(c, -1.0) else "constant_factor"
            out.append(entry_finding(
                net, kind, layer, in_layer(layer), U0, R0,
                f"every entry of H v in Theta{layer}'s rows is {c:.6g} times the true value"
                + (f" ({label})" if label else "") + ".",
                f"fitted your block to a multiple of {self.exact}'s", cause=label, factor=c, **extra))
        explained = {f.layer for f in out}
        for layer in wrong_layers:
            if layer in explained:
                continue
            idx = in_layer(layer)
            rows_blocks = blocks.get(layer, [])
            out.append(entry_finding(
                net, "hessian_block" if rows_blocks else "entries", layer, idx, U0, R0,
                f"{idx.size} entr{'y' if idx.size == 1 else 'ies'} of H v in Theta{layer}'s rows are wrong"
                + ("; the wrong blocks of the Hessian: " + ", ".join(f"H[Theta{layer}, Theta{b}]" for b in rows_blocks)
                   if rows_blocks else "") + ".",
                f"compared every entry with {self.exact}; " + block_exp, **extra))
        return out
