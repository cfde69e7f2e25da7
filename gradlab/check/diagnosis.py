"""Diagnosis by experiment (full mode): what explains a disagreement with the exact reference.

Every diagnosis comes from an experiment run on the user's function, never from a guess:
lambda on and off (the regularisation term), bias columns zeroed (a forward pass without
the bias), ratios and transposes of whole blocks, and one example, where the bias column of
``D_l`` *is* ``delta_(l+1)``, so the user's deltas can be read off and compared layer by layer.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from gradlab import _cost
from gradlab._errors import UserCodeError
from gradlab._judge import exact_agree, factor, fits, is_ratio, roundoff_floor
from gradlab.check.calls import Caller
from gradlab.check.findings import MAX_LISTED, Finding, differing, entry_finding, factor_name, grid, layer_slices
from gradlab.network import Problem

__all__ = ["Diagnoser"]


class Diagnoser:
    """Runs the experiments that explain a disagreement with the exact reference."""

    def __init__(self, caller: Caller, signature: str, ref, ref_name: str, problem: Problem, params, floor,
                 shapes_ref=None):
        self.caller, self.signature, self.ref, self.ref_name = caller, signature, ref, ref_name
        # For experiments on many numbers of examples: a reference that does not compile per shape.
        self.shapes_ref = shapes_ref or ref
        self.floor = floor
        self.problem, self.params = problem, params
        self.network = problem.network
        self.name = caller.name
        self.notes: list[str] = []

    def user(self, problem, params):
        """The user's gradient in an experiment (None if it fails there)."""
        try:
            call = self.caller(problem, params)
        except UserCodeError as exc:
            self.notes.append(f"an experiment was skipped: {exc}")
            return None
        grad, _ = self.caller.read(call.raw)
        return grad

    def run(self, U, R) -> list[Finding]:
        problem, params = self.problem, self.params
        findings: list[Finding] = []
        lam = problem.lam
        if lam > 0:
            p0 = problem.with_lam(0.0)
            U0, R0 = self.user(p0, params), self.ref(p0, params)
            if U0 is None:
                return findings
        else:
            p0, U0, R0 = problem, U, R
        wrong0 = set()
        if not exact_agree(U0, R0, self.floor):
            findings = self._data_term(p0, U0, R0)
            wrong0 = set(differing(U0, R0, self.floor).tolist())
        if lam > 0:
            findings += self._regularisation(U - U0, R - R0, findings, wrong0)
        return findings

    # -- lambda on and off ---------------------------------------------------------------
    def _regularisation(self, user_reg, ref_reg, data_findings, wrong0) -> list[Finding]:
        net, p, params = self.network, self.problem, self.params
        out = []
        lam, m = p.lam, p.m
        exp = (f"ran your function at lambda = {lam:g} and at lambda = 0; the difference is your regularisation "
               f"term, compared with lam/m * Theta (column 0 excluded)")
        with_bias = (lam / m) * params
        for layer, sl in enumerate(layer_slices(net), start=1):
            u, r = user_reg[sl], ref_reg[sl]
            if exact_agree(u, r, 2 * self.floor[sl]):
                continue
            rows_, cols_ = net.shapes[layer - 1]
            # The same slip as in the data term (a factor, a transpose) explains it already.
            same = [f for f in data_findings if f.layer == layer and (
                (f.kind == "transposed" and fits(u.reshape(cols_, rows_).T.ravel(), r))
                or (f.kind in ("constant_factor", "sign_flip") and fits(u, f.extra["factor"] * r)))]
            if same:
                same[0].extra["also_in_regularisation"] = True
                continue
            idx = sl.start + differing(u, r, 2 * self.floor[sl])
            wrong_at_0 = [i for i in range(sl.start, sl.stop) if i in wrong0]
            if wrong_at_0 and set(idx.tolist()) <= set(wrong_at_0):
                # Only entries already wrong at lambda = 0 change wrongly: the same slip, reported there.
                continue
            # What the sentence may say of lambda = 0: only that the layer is right there if it is.
            opening = (f"besides the error at lambda = 0, Theta{layer}'s regularisation term (the change from lambda = 0 "
                       f"to lambda = {lam:g}) is wrong at entries that are right at 0" if wrong_at_0 else
                       f"Theta{layer} is right at lambda = 0 and wrong at lambda = {lam:g}")
            full_u = u.reshape(rows_, cols_)
            cause = None
            if fits(u, with_bias[sl]):
                cause = "bias regularised"
                sentence = (f"{opening}: you regularise the "
                            "bias column. The regularisation term is lam/m * Theta with column 0 (the bias weights) "
                            "left out -- set it to zero before adding.")
            else:
                w = (grid(net, layer) - sl.start)[:, 1:].ravel()
                c = factor(u[w], r[w])
                bias_ok = np.allclose(full_u[:, 0], 0.0)
                if c is not None and bias_ok:
                    said = {m: "lam where lam/m belongs", 0.5: "lam/(2m), the cost's factor, where the gradient "
                            "needs lam/m (the 2 of the square's derivative cancels it)", 0: "no regularisation at all",
                            2: "2 lam/m: the 2 from differentiating the square is already cancelled by the cost's 1/2",
                            1.0 / m: "lam/m^2 (divided by m twice)"}
                    label = next((t for k, t in said.items() if is_ratio(c, float(k))), None)
                    cause = f"regularisation factor {c:.6g} x lam/m" + (f": {label}" if label else "")
                    sentence = (f"{opening}: your "
                                f"regularisation term is {c:.6g} times lam/m * Theta"
                                + (f" -- {label}." if label else ".") + " The gradient of lam/(2m) * sum(Theta^2) is "
                                "lam/m * Theta (bias column excluded).")
                else:
                    cause = "regularisation term wrong"
                    sentence = (f"{opening}: the error is in "
                                "your regularisation term, which should be lam/m * Theta with column 0 set to zero.")
            out.append(entry_finding(net, "regularisation", layer, idx, user_reg, ref_reg, sentence, exp, cause=cause))
        return out

    # -- the data term ---------------------------------------------------------------------
    def _data_term(self, p0, U0, R0) -> list[Finding]:
        net = self.network
        slices = layer_slices(net)
        wrong = [k + 1 for k, sl in enumerate(slices) if not exact_agree(U0[sl], R0[sl], self.floor[sl])]
        found = self._forward_without_bias(p0, U0)
        if found:
            return found
        out: list[Finding] = []
        unexplained = []
        pending: dict[int, Finding] = {}  # unnamed constant factors, unless a delta experiment says more
        m = p0.m
        for layer in wrong:
            sl = slices[layer - 1]
            u, r = U0[sl], R0[sl]
            rows_, cols_ = net.shapes[layer - 1]
            idx = sl.start + differing(u, r, self.floor[sl])
            c = factor(u, r)
            if c is not None and is_ratio(c, 1.0):
                c = None  # "1 times the true value" names nothing: single entries differ, not the block's scale
            if c is not None:
                label = factor_name(c, m)
                everywhere = len(wrong) == len(slices)
                kind = "sign_flip" if is_ratio(c, -1.0) else "constant_factor"
                sentence = (f"every entry of Theta{layer}'s gradient is {c:.6g} times the true value"
                            + (f" ({label})" if label else "") + "."
                            + (" The same happens in every layer, so look at what all layers share: the output "
                               "error delta_L = h - y and the final division by m." if everywhere else ""))
                if label and label.startswith("missing 1/m"):
                    sentence += " Divide the accumulated sum delta^T a by m, the number of examples."
                elif is_ratio(c, -1.0):
                    sentence += " You return the gradient of -J: check delta_L = h - y (not y - h)."
                f = entry_finding(net, kind, layer, idx, U0, R0, sentence,
                                   "fitted your block as a constant times the true block (least squares) "
                                   "at lambda = 0", cause=label or f"factor {c:.6g}", factor=c)
                if label or kind == "sign_flip":
                    out.append(f)
                    continue
                pending[layer] = f
            if rows_ > 1 or cols_ > 1:
                if fits(u.reshape(cols_, rows_).T.ravel(), r):
                    out.append(entry_finding(
                        net, "transposed", layer, idx, U0, R0,
                        f"Theta{layer}'s gradient has the right numbers in the wrong places: read as a "
                        f"{cols_}x{rows_} matrix and transposed, it is exactly the true {rows_}x{cols_} gradient. "
                        "You formed a^T delta instead of delta^T a (or flattened column by column); Theta"
                        f"{layer}'s gradient must have Theta{layer}'s shape, flattened row by row.",
                        "read your block with the transposed shape and compared it with the true block",
                        cause="transposed block"))
                    continue
            local = grid(net, layer) - sl.start
            bias_idx, weight_idx = local[:, 0], local[:, 1:].ravel()
            if exact_agree(u[weight_idx], r[weight_idx], self.floor[sl][weight_idx]):
                cb = factor(u[bias_idx], r[bias_idx])
                label = None if cb is None else factor_name(cb, m)
                out.append(entry_finding(
                    net, "bias_column", layer, idx, U0, R0,
                    f"only the bias column (column 0) of Theta{layer}'s gradient is wrong; every weight column is "
                    "right" + (f" (the bias column is {label})" if label else "") + ". The bias unit is a constant "
                    "1, so the bias gradient of a unit is the sum of its delta over the examples, divided by m.",
                    "compared the bias column and the weight columns separately", cause=label or "bias column"))
                continue
            unexplained.append(layer)
        if unexplained:
            for f in self._deltas(unexplained, U0, R0):
                generic = f.cause is None or f.cause.startswith("delta_")
                out.append(pending[f.layer] if f.layer in pending and generic else f)
        return out

    def _forward_without_bias(self, p0, U0) -> list[Finding]:
        """Is U0 the true gradient at weights with some layers' bias column zeroed?"""
        net, params = self.network, self.params
        n = len(net.shapes)
        if n > 5:
            return []
        weight_cols = np.concatenate([grid(net, k)[:, 1:].ravel() for k in range(1, n + 1)])
        for size in range(1, n + 1):
            for subset in subsets(n, size):
                zeroed = params.copy()
                for layer in subset:
                    zeroed[layer_slices(net)[layer - 1]].reshape(net.shapes[layer - 1])[:, 0] = 0.0
                if np.array_equal(zeroed, params):
                    continue
                Rz = self.ref(p0, zeroed)
                if exact_agree(U0[weight_cols], Rz[weight_cols], self.floor[weight_cols]):
                    names = " and ".join(f"Theta{k}" for k in subset)
                    out = []
                    for layer in subset:
                        sl = layer_slices(net)[layer - 1]
                        R0 = self.ref(p0, params)
                        idx = sl.start + differing(U0[sl], R0[sl], self.floor[sl])
                        out.append(entry_finding(
                            net, "forward_without_bias", layer, idx, U0, R0,
                            f"your gradient is exactly the true gradient at weights whose bias column in {names} is "
                            f"zero: your forward pass leaves out Theta{layer}'s bias weights (column 0). Prepend the "
                            f"bias unit, a_l = [1, g(z_l)], and multiply by all of Theta{layer}.",
                            f"set column 0 of {names} to zero, recomputed the true gradient there, and compared it "
                            "with yours (weight columns)", cause=f"bias of Theta{layer} ignored in the forward pass"))
                    return out
        return []

    def _prefix(self, k: int) -> Problem:
        p = self.problem
        return Problem(self.network, p.X[:k], p.labels[:k] if p.labels is not None else p.Y[:k], 0.0)

    def _examples(self, layers, U0, R0) -> list[Finding]:
        """Right on one example, wrong on all: bisect the number of leading examples for the
        first that makes it wrong (log2 m experiments; a bug confined to some examples)."""
        right, wrong = 1, self.problem.m
        while wrong - right > 1:
            k = (right + wrong) // 2
            pk = self._prefix(k)
            Uk = self.user(pk, self.params)
            if Uk is None:
                return []
            if _every_entry(Uk, self.shapes_ref(pk, self.params), roundoff_floor(pk, self.params)):
                right = k
            else:
                wrong = k
        out = []
        for layer in sorted(layers):
            sl = layer_slices(self.network)[layer - 1]
            idx = sl.start + differing(U0[sl], R0[sl], self.floor[sl])
            out.append(entry_finding(
                self.network, "examples", layer, idx, U0, R0,
                f"your gradient is right on the first {right} example{'s' if right > 1 else ''} (rows 0..{right - 1} of "
                f"X) and wrong on the first {wrong}: the examples from row {right} on are left out or handled "
                f"differently (a loop bound, a slice such as X[:{right}], a batch size).",
                "ran your function on the first k examples for k halving between 1 and m (lambda = 0) and compared "
                "each with gradlab's back-propagation", cause=f"wrong from example {wrong} on", right_up_to=right))
        return out

    def _deltas(self, layers, U0, R0) -> list[Finding]:
        """With one example, read the user's deltas off the bias columns and compare them."""
        net, params = self.network, self.params
        p = self.problem
        labels = p.labels
        p1 = Problem(net, p.X[:1], labels[:1] if labels is not None else p.Y[:1], 0.0)
        U1, R1 = self.user(p1, params), self.ref(p1, params)
        if U1 is not None and p.m > 1 and _every_entry(U1, R1, roundoff_floor(p1, params)):
            return self._examples(layers, U0, R0)
        zs, acts = _cost.forward(np, net, params, p1.X)
        act = _cost.ACTIVATIONS[net.activation]
        slices = layer_slices(net)
        thetas = net.unpack(params)
        n = len(net.shapes)
        user_delta, true_delta = {}, {}
        if U1 is not None:
            for layer in range(1, n + 1):
                rows_, cols_ = net.shapes[layer - 1]
                blk_u = U1[slices[layer - 1]].reshape(rows_, cols_)
                blk_r = R1[slices[layer - 1]].reshape(rows_, cols_)
                true_delta[layer + 1] = blk_r[:, 0]
                a = acts[layer - 1][0]
                # The user's D_l should be delta^T [1, a_l]: then its bias column is delta.
                if fits(blk_u[:, 1:], np.outer(blk_u[:, 0], a)):
                    user_delta[layer + 1] = blk_u[:, 0]
        out = []
        inherited: dict[int, int] = {}
        for layer in sorted(layers, reverse=True):
            if layer in inherited:
                continue
            sl = slices[layer - 1]
            idx = sl.start + differing(U0[sl], R0[sl], self.floor[sl])
            k = layer + 1  # the delta that enters D_layer
            cause, detail = None, ""
            if k in user_delta and not fits(user_delta[k], true_delta[k]):
                du, dr = user_delta[k], true_delta[k]
                if k < net.n_layers:
                    a = acts[k - 1][0]
                    gp = act.gprime_from_a(a)
                    gp_text = re.sub(r"\ba\b", f"a_{k}", act.gprime_formula)
                    if fits(du * gp, dr):
                        cause = f"missing g'(z_{k})"
                        detail = (f" Your delta_{k} times g'(z_{k}) = {gp_text} equals the true delta_{k}: "
                                  f"the factor g'(z_{k}) is missing.")
                    elif fits(du, dr * gp):
                        cause = f"g'(z_{k}) applied twice"
                        detail = f" Your delta_{k} is the true one times g'(z_{k}) once more: g' is applied twice."
                    elif np.all(gp > 0) and fits(du, dr / gp * a):
                        cause = f"g(z_{k}) used as g'(z_{k})"
                        detail = (f" Your delta_{k} uses g(z_{k}) = a_{k} where g'(z_{k}) = {gp_text} "
                                  "belongs.")
                    elif (k + 1) in user_delta:
                        back = (user_delta[k + 1] @ thetas[k - 1][:, 1:]) * gp
                        if not fits(du, back):
                            detail = (f" It is not delta_{k + 1} Theta{k}[:, 1:] * g'(z_{k}) of your own "
                                      f"delta_{k + 1} either: check that line.")
                else:
                    zL = zs[-1][0]
                    hL = _cost.sigmoid(np, zL)  # the output layer is always sigmoid
                    if fits(du, dr * _cost.SIGMOID.gprime_from_a(hL)):
                        cause = f"extra g'(z_{k}) at the output"
                        detail = (f" Your output error is (h - y) g'(z_{k}), the squared-error form; with the "
                                  "cross-entropy cost the g' cancels and delta_L = h - y.")
                # Which lower layers only inherit this delta?
                below = []
                for j in range(k - 1, 1, -1):
                    if j not in user_delta or (j + 1) not in user_delta:
                        break
                    a = acts[j - 1][0]
                    back = (user_delta[j + 1] @ thetas[j - 1][:, 1:]) * act.gprime_from_a(a)
                    if fits(user_delta[j], back) and (j - 1) in layers:
                        inherited[j - 1] = layer
                        below.append(j - 1)
                    else:
                        break
                tail = ""
                if below:
                    names = ", ".join(f"Theta{b}" for b in below)
                    tail = (f" {names} {'is' if len(below) == 1 else 'are'} wrong only because back-propagation "
                            f"carries your delta_{k} down correctly from there.")
                out.append(entry_finding(
                    net, "one_layer", layer, idx, U0, R0,
                    f"the error enters at Theta{layer}: with one example, the bias column of your Theta{layer} "
                    f"gradient is your delta_{k}, and it differs from the true delta_{k}"
                    + (" (the layers above are right)" if layer < n else "") + "." + detail + tail,
                    "ran your function on one example (m = 1), where D_l = delta_(l+1)^T [1, a_l], read your deltas "
                    "off the bias columns and compared them, layer by layer, with the true ones",
                    cause=cause or f"delta_{k} wrong", inherited_by=below))
                continue
            single = len(layers) == 1
            if idx.size <= MAX_LISTED and idx.size < net.shapes[layer - 1][1]:
                # Fewer wrong entries than one row has: single entries, not a delta or a formula.
                where = ", ".join(f"Theta{layer}[{net.locate(int(i))[1]}, {net.locate(int(i))[2]}]" for i in idx)
                out.append(entry_finding(
                    net, "entries", layer, idx, U0, R0,
                    f"{idx.size} entr{'y' if idx.size == 1 else 'ies'} of Theta{layer}'s gradient "
                    f"{'is' if idx.size == 1 else 'are'} wrong: {where}; every other entry is right.",
                    "compared every entry of your gradient with the exact reference", cause="individual entries"))
                continue
            out.append(entry_finding(
                net, "one_layer" if single else "entries", layer, idx, U0, R0,
                (f"only Theta{layer}'s gradient is wrong; the other layers are right. No simple pattern (a "
                 "factor, a transpose, the bias column, a missing g') explains it: compare how you form this "
                 "layer's gradient, delta^T [1, a] / m, with the formula." if single else
                 f"Theta{layer}'s gradient is wrong in {len(idx)} entries, and no simple pattern (a factor, a "
                 "transpose, the bias column, a missing g') explains it."),
                "compared your gradient with the exact reference layer by layer and tried each pattern",
                cause=None))
        return out



def _every_entry(a, b, floor) -> bool:
    """Every entry within its round-off bound: stricter than exact_agree's norm test, which a
    single slightly wrong entry can pass when the others are large."""
    return bool(np.all(np.abs(a - b) <= floor))


def subsets(n: int, size: int):
    """The layer subsets of ``size`` among layers 1..n."""
    return [tuple(c) for c in itertools.combinations(range(1, n + 1), size)]

