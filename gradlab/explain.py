"""Back-propagation is reverse-mode autodiff: the walk-through, layer by layer.

For each layer, from the output down, :func:`explain` puts back-propagation's delta (from
the hand-written numpy recursion in :mod:`gradlab.sources.backprop`) next to jax's
derivative of the cost with respect to that layer's pre-activations, and each gradient
block ``dJ/dTheta_l`` next to ``jax.grad``'s. The two sides share the forward pass and the
cost (:mod:`gradlab.network`) and nothing else: jax never sees the hand-written deltas.

How jax gets dJ/dz for every layer at once: the shared forward pass accepts ``z_shifts``,
one array per layer added to that layer's pre-activation. ``J(Theta, shifts)`` at
``shifts = 0`` is the cost itself, and its gradient with respect to the shift of layer l
is ``dJ/dz_l`` -- one reverse pass gives all of them, and ``dJ/dTheta`` too.

Convention: ``J = (1/m) sum_i J_i + R(Theta)`` is a *mean* over the m examples, while
row i of back-propagation's delta_l is ``dJ_i/dz_l`` for example i alone. So
``delta_l = m * dJ/dz_l``; the report compares delta_l with m times jax's dJ/dz_l.
The regularisation R does not depend on z, so it enters dJ/dTheta only.

jax is imported inside the functions that need it, so ``gradlab --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import textwrap

import numpy as np

from gradlab import _cost, _resources
from gradlab import _validate as v
from gradlab._judge import DELTA_TOLERANCE, EXACT_NORM_RATIO, norm, norm_ratio, roundoff_floor
from gradlab._report import Report, fmt
from gradlab.explain_hvp import explain_hvp
from gradlab.network import Problem, check_problem
from gradlab.sources import autodiff
from gradlab.sources.backprop import backward

__all__ = ["explain", "ExplainReport", "LayerStep", "GradientBlock", "DELTA_TOLERANCE"]

# DELTA_TOLERANCE, the largest accepted max |delta_l - m dJ/dz_l| / max(1, max |delta_l|),
# lives with every other tolerance in gradlab._judge.

#: The text rendering fits a terminal this wide.
WIDTH = 100
#: Layers with at most this many units are listed unit by unit; wider ones show their
#: first SHOW_UNITS units and a summary.
SHOW_UNITS = 12
#: Weight matrices up to this many rows and columns are printed whole (8 columns of
#: 11 characters fit in WIDTH); larger ones are summarised.
MATRIX_MAX_ROWS = 12
MATRIX_MAX_COLS = 8

_NUM = 12  # width of a number column: "-1.23456e-01" is 12 characters


# ------------------------------------------------------------------------------ results


@dataclasses.dataclass(frozen=True)
class LayerStep:
    """One layer of the walk: forward values, back-propagation's delta and jax's dJ/dz.

    Arrays have one row per example and one column per unit. ``layer`` is l (2..L).
    ``back`` (``delta_{l+1} Theta_l[:, 1:]``) and ``gprime`` (``g'(z_l)``) are the two
    factors of a hidden layer's delta, from back-propagation; None for the output layer.
    ``primitives`` names the jax primitives, read from the cost's jaxpr, whose VJPs give
    this step: ``loss`` and ``mean`` for the output layer, ``matrix_product`` and
    ``sigmoid`` for a hidden one (ops that only reshape or retype are left out).
    """

    layer: int
    output: bool
    z: np.ndarray
    a: np.ndarray
    delta: np.ndarray
    jax_dJdz: np.ndarray
    back: np.ndarray | None
    gprime: np.ndarray | None
    max_abs: float
    scaled_error: float
    ok: bool
    primitives: dict

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "kind": "output" if self.output else "hidden",
            "units": int(self.z.shape[1]),
            "ok": self.ok,
            "max_abs_diff": self.max_abs,
            "scaled_error": self.scaled_error,
            "primitives": self.primitives,
            "z": self.z,
            "a": self.a,
            "backprop_delta": self.delta,
            "jax_dJ_dz": self.jax_dJdz,
            "jax_dJ_dz_times_m": self.jax_dJdz * self.z.shape[0],
            "backprop_delta_next_times_theta": self.back,
            "backprop_g_prime": self.gprime,
        }


@dataclasses.dataclass(frozen=True)
class GradientBlock:
    """``dJ/dTheta_l`` from back-propagation and from ``jax.grad``, with their difference."""

    theta: int
    backprop: np.ndarray
    jax: np.ndarray
    max_abs: float
    norm_ratio: float
    worst: tuple[int, int]
    ok: bool

    def to_dict(self) -> dict:
        return {
            "theta": self.theta,
            "shape": list(self.backprop.shape),
            "ok": self.ok,
            "max_abs_diff": self.max_abs,
            "norm_ratio": self.norm_ratio,
            "worst": {"row": self.worst[0], "column": self.worst[1]},
            "backprop": self.backprop,
            "jax": self.jax,
        }


# --------------------------------------------------------------------------- jax side


@functools.lru_cache(maxsize=16)
def _compiled_with_shifts(network):
    """jit(value_and_grad) of the shared cost w.r.t. params and the z shifts, per network."""
    import jax
    import jax.numpy as jnp

    # Arguments of the partial: (params, X, Y, lam, z_shifts); differentiate 0 and 4.
    return jax.jit(jax.value_and_grad(functools.partial(_cost.cost, jnp, network), argnums=(0, 4)))


def _jax_side(problem: Problem, theta: np.ndarray):
    """J, dJ/dTheta and dJ/dz for every layer from one jax reverse pass over the shared cost."""
    import jax.numpy as jnp

    net = problem.network
    with autodiff.x64():
        X, Y = autodiff.device_data(problem)
        shifts = [jnp.zeros((problem.m, s), dtype=jnp.float64) for s in net.sizes[1:]]
        J, (g_theta, g_z) = _compiled_with_shifts(net)(jnp.asarray(theta, dtype=jnp.float64), X, Y, problem.lam, shifts)
        return float(J), np.array(g_theta, dtype=np.float64), [np.array(g, dtype=np.float64) for g in g_z]


_TAGS = {"matmul": "M", "sigmoid": "S", "loss": "L", "mean": "L", "reg": "R", "unpack": "", "other": ""}
# Primitives that only move, reshape or retype data: their VJPs carry no derivative of
# their own, so the step descriptions leave them out (the jaxpr listing shows them all).
_BOOKKEEPING = frozenset({"convert_element_type", "broadcast_in_dim", "reshape", "squeeze", "slice", "transpose"})


def _roles(jaxpr, n_products: int) -> list[tuple[str, int]]:
    """Each equation's role in the cost, found from what it computes (its data flow).

    Every variable is traced back to the cost's inputs (params, X, Y, lam) and counted in
    matrix products of X-dependent values on its way: the k-th ``dot_general`` on X is
    layer k's product and the ``add`` of a params-only value right after it is the bias;
    other X-dependent work before the last product is the hidden activation of that
    layer, after it the loss; once the X-dependent value has been summed, the mean; what
    depends on the weights alone is their unpacking when it feeds the forward pass and the
    regularisation when it does not. No file or function name is read, so moving or
    renaming the cost's code leaves the marks as they are. Returns ``(role, layer)`` per
    equation, ``layer`` the number of products before it.
    """
    params, X, Y, lam = jaxpr.invars
    on_x, depth, summed, from_dot = set(), {}, set(), set()
    on_x.add(X)
    depth[X] = 0
    rows = []

    def inputs(eqn):
        return [i for i in eqn.invars if type(i).__name__ != "Literal"]

    for eqn in jaxpr.eqns:
        ins = inputs(eqn)
        xs = [i for i in ins if i in on_x]
        prim = eqn.primitive.name
        if not xs:
            rows.append(["params", 0])
            continue
        d = max(depth[i] for i in xs)
        done = any(i in summed for i in xs)
        if prim == "dot_general" and not done:
            d += 1
            role = "matmul"
        elif prim == "add" and not done and any(i in from_dot for i in xs) and len(xs) < len(ins):
            role = "matmul"  # the bias column added to the product
        elif done or (prim == "reduce_sum" and d == n_products):
            role = "mean"
        elif d < n_products:
            role = "sigmoid"
        else:
            role = "loss"
        for o in eqn.outvars:
            on_x.add(o)
            depth[o] = d
            if role == "mean":
                summed.add(o)
            if prim == "dot_general":
                from_dot.add(o)
        rows.append([role, d])
    # Weights-only equations: unpacking where their values reach the forward pass (an
    # X-dependent equation, directly or through other weights-only ones), else the
    # regularisation. Walked backwards, so a value's consumers are known first.
    feeds = set()
    for eqn, row in zip(reversed(jaxpr.eqns), reversed(rows)):
        if row[0] == "params":
            reaches = any(o in feeds for o in eqn.outvars)
            row[0] = "unpack" if reaches else "reg"
        if row[0] != "reg":
            feeds.update(i for i in inputs(eqn) if i not in on_x)
    return [tuple(r) for r in rows]


def _primitive_names(eqn) -> list[str]:
    """The primitive, or for a nested jit (jnp.where is one) the primitives inside it."""
    inner = eqn.params.get("jaxpr") if eqn.primitive.name in ("jit", "pjit") else None
    if inner is None:
        return [eqn.primitive.name]
    inner = getattr(inner, "jaxpr", inner)
    names = []
    for e in inner.eqns:
        names += _primitive_names(e)
    return names


def _dedupe(names):
    return list(dict.fromkeys(names))


def _cost_jaxpr(problem: Problem, theta: np.ndarray):
    """The cost's jaxpr, one line per equation with its role; and primitives per step."""
    import jax
    import jax.numpy as jnp

    net = problem.network
    with autodiff.x64():
        X, Y = autodiff.device_data(problem)
        closed = jax.make_jaxpr(functools.partial(_cost.cost, jnp, net))(
            jnp.asarray(theta, dtype=jnp.float64), X, Y, problem.lam
        )
    jaxpr = closed.jaxpr
    names = {}
    for var, label in zip(jaxpr.invars, ("params", "X", "Y", "lam")):
        names[var] = label

    def name(var):
        if type(var).__name__ == "Literal":
            value = np.asarray(getattr(var, "val", np.nan))
            return f"{value.item():g}" if value.size == 1 else f"const{list(value.shape)}"
        if var not in names:
            names[var] = f"v{len(names) - len(jaxpr.invars) + 1}"
        return names[var]

    def typed(var):
        aval = var.aval
        return f"{name(var)}:{aval.str_short(short_dtypes=True)}"

    lines = []
    prims = {"loss": [], "mean": [], "reg": []}
    layer = 1  # the current layer's input: Theta_layer's product is next
    last_matmul = 0
    for eqn, (role, _) in zip(jaxpr.eqns, _roles(jaxpr, len(net.shapes))):
        prim = eqn.primitive.name
        shown = prim
        if prim in ("jit", "pjit") and "name" in eqn.params:
            shown = f"{prim}[{eqn.params['name']}]"
        text = f"{', '.join(typed(o) for o in eqn.outvars)} = {shown} {' '.join(name(i) for i in eqn.invars)}"
        note = ""
        if role == "matmul" and prim == "dot_general":
            last_matmul += 1
            layer = last_matmul
            note = f"z{layer + 1} = a{layer} Theta{layer}[:,1:]^T"
            prims.setdefault(f"matmul{layer}", []).append(prim)
        elif role == "matmul":
            note = f"bias: z{layer + 1} += Theta{layer}[:,0]" if prim == "add" and last_matmul else ""
        elif role == "sigmoid":
            note = f"a{last_matmul + 1} = g(z{last_matmul + 1})"
            prims.setdefault(f"sigmoid{last_matmul + 1}", []).extend(_primitive_names(eqn))
        elif role == "loss":
            note = f"loss of z{net.n_layers} against Y"
            prims["loss"].extend(_primitive_names(eqn))
        elif role == "mean":
            note = "J = data term + R" if prim == "add" else "data term = sum / m"
            prims["mean"].extend(_primitive_names(eqn))
        elif role == "reg":
            note = "R = lam/(2m) sum Theta[:,1:]^2"
            prims["reg"].extend(_primitive_names(eqn))
        lines.append({"equation": text, "primitive": prim, "role": role, "tag": _TAGS[role], "note": note})
    return lines, {k: _dedupe(v) for k, v in prims.items()}


# ----------------------------------------------------------------------------- report


class ExplainReport(Report):
    """The walk-through: per layer, back-propagation's delta next to jax's dJ/dz.

    Attributes
    ----------
    ok : bool
        True when every layer's delta matches m times jax's dJ/dz within
        :data:`DELTA_TOLERANCE` and every gradient block matches ``jax.grad`` by
        ``||a-b|| / ||a+b|| <=`` :data:`gradlab.compare.EXACT_NORM_RATIO` (or, for a block
        so small that round-off rivals it, every entry within its round-off floor).
    layers : list[LayerStep]
        From the output layer down to layer 2.
    blocks : list[GradientBlock]
        ``dJ/dTheta_l`` from the last matrix down to Theta1.
    cost_backprop, cost_jax : float
        J from the numpy pass and from jax.
    jaxpr : list[dict]
        The cost's jaxpr, one equation per entry, with its role in the network.
    """

    def __init__(self, problem, params, example, cost_backprop, cost_jax, layers, blocks,
                 jaxpr_lines, show_jaxpr, info=None):
        self.problem = problem
        self.params = params
        self.example = example
        self.cost_backprop = cost_backprop
        self.cost_jax = cost_jax
        self.layers = layers
        self.blocks = blocks
        self.jaxpr = jaxpr_lines
        self.show_jaxpr = show_jaxpr
        self.info = dict(info or {})
        self.ok = all(s.ok for s in layers) and all(b.ok for b in blocks)

    def layer(self, l: int) -> LayerStep:
        """The step for layer ``l`` (2..L)."""
        for s in self.layers:
            if s.layer == l:
                return s
        raise v.fail("l", l, f"a layer number in 2..{self.problem.network.n_layers}")

    def to_dict(self) -> dict:
        net = self.problem.network
        out = {
            "ok": self.ok,
            "sizes": list(net.sizes),
            "examples": self.problem.m,
            "lam": self.problem.lam,
            **self.info,
            "example": self.example,
            "cost": {"backprop": self.cost_backprop, "jax": self.cost_jax},
            "convention": (
                "J is the mean over m examples; row i of backprop_delta is dJ_i/dz for example i, "
                "so backprop_delta = m * jax_dJ_dz"
            ),
            "tolerances": {"delta": DELTA_TOLERANCE, "gradient_norm_ratio": EXACT_NORM_RATIO},
            "y": self.problem.Y,
            "layers": [s.to_dict() for s in self.layers],
            "gradients": [b.to_dict() for b in self.blocks],
        }
        if self.show_jaxpr:
            out["jaxpr"] = self.jaxpr
        return out

    # ------------------------------------------------------------------ text rendering

    def _text(self) -> str:
        net, m, i = self.problem.network, self.problem.m, self.example
        act = _cost.ACTIVATIONS[net.activation]
        L = net.n_layers
        extra = "".join(f", {k}={val}" for k, val in self.info.items())
        out = [
            f"gradlab explain: sizes {','.join(map(str, net.sizes))}, {net.n_params} parameters, "
            f"m={m}, lambda={self.problem.lam:g}{extra}",
            f"cost J = {self.cost_backprop:.10g} (numpy)   {self.cost_jax:.10g} (jax)",
            "",
            "Forward (shared pass, gradlab._cost.forward): a1 = x; for l = 1..L-1",
            "  z(l+1) = [1, a(l)] Theta(l)^T,  a(l+1) = g(z(l+1)),  h = a(L).",
            "Backward (gradlab.sources.backprop): delta(L) = a(L) - y;",
            f"  delta(l) = (delta(l+1) Theta(l)[:, 1:]) * g'(z(l)),  g'(z) = {act.gprime_formula}"
            + ("." if act.name == "sigmoid" else f" ({act.name})."),
            "jax: grad of the same cost w.r.t. a zero shift added to every z (z_shifts) = dJ/dz.",
            f"J is a mean over the m={m} examples, and row i of delta is dJ_i/dz for example i",
            "alone, so delta = m * dJ/dz: the tables compare delta with m times jax's dJ/dz.",
            f"Tables show example {i} (--example); 'max over all' covers every example and unit.",
        ]
        blocks = {b.theta: b for b in self.blocks}
        for step in self.layers:
            out.append("")
            out += self._layer_text(step, L, m, i)
            out.append("")
            out += self._block_text(blocks[step.layer - 1], m)
        out.append("")
        out.append("layer 1 is the input x: no delta is needed there (the cost is not differentiated in X).")
        out.append("")
        bad_l = [s.layer for s in self.layers if not s.ok]
        bad_b = [b.theta for b in self.blocks if not b.ok]
        if self.ok:
            out.append(
                f"verdict: for every layer delta = m dJ/dz (<= {DELTA_TOLERANCE:g}) and every "
                f"dJ/dTheta = jax.grad (<= {EXACT_NORM_RATIO:g}):"
            )
            out.append("  back-propagation is reverse-mode autodiff of the cost.")
        else:
            out.append(
                "verdict: DISAGREE at "
                + ", ".join([f"delta{l}" for l in bad_l] + [f"dJ/dTheta{t}" for t in bad_b])
            )
        if self.show_jaxpr:
            out.append("")
            out += self._jaxpr_text()
        else:
            out.append("(--jaxpr prints the cost's jaxpr with these steps marked)")
        return "\n".join(out)

    @staticmethod
    def _primitive_list(step: LayerStep, key: str) -> str:
        names = step.primitives.get(key) or []
        return ", ".join(names) if names else "(not found in the jaxpr)"

    def _layer_text(self, step: LayerStep, L: int, m: int, i: int) -> list[str]:
        act = self.problem.network.activation
        l = step.layer
        units = step.z.shape[1]
        out = []
        if step.output:
            out.append(f"layer {l} (output, {units} units)   delta{l} = a{l} - y")
            out += _wrap(
                f"jax: the cost is written from z{l} directly (softplus form, no sigmoid in between), "
                f"so the VJPs of the loss ops [{self._primitive_list(step, 'loss')}] and of the mean "
                f"[{self._primitive_list(step, 'mean')}] give dJ/dz{l} = (a{l} - y) / m."
            )
            cols = [(f"z{l}", step.z), (f"a{l}", step.a), ("y", self.problem.Y)]
            sides = ["forward", "forward", "data"]
        else:
            out.append(f"layer {l} (hidden, {units} units)   delta{l} = (delta{l + 1} Theta{l}[:, 1:]) * g'(z{l})")
            out += _wrap(
                f"jax: z{l + 1} = a{l} Theta{l}[:,1:]^T is a dot_general; its VJP w.r.t. a{l} is a "
                f"dot_general with the transposed operand, giving dJ/dz{l + 1} Theta{l}[:, 1:]. The VJPs "
                f"of the {act}'s ops [{self._primitive_list(step, 'sigmoid')}] then multiply by "
                f"g'(z{l}) = {_gprime_of_layer(act, l)}."
            )
            cols = [(f"z{l}", step.z), (f"a{l}", step.a), (f"g'(z{l})", step.gprime),
                    (f"d{l + 1}*Theta{l}", step.back)]
            sides = ["forward", "forward", "backprop", "backprop"]
        cols += [(f"delta{l}", step.delta), (f"m dJ/dz{l}", step.jax_dJdz * m)]
        sides += ["backprop", "jax"]
        out.append(f"  {'':>4}" + "".join(f" {side:>{_NUM}}" for side in sides))
        header = f"  {'unit':>4}" + "".join(f" {name:>{_NUM}}" for name, _ in cols) + f" {'|diff|':>9}"
        out.append(header)
        diff = np.abs(step.delta - m * step.jax_dJdz)
        shown = min(units, SHOW_UNITS)
        for u in range(shown):
            cells = "".join(f" {arr[i, u]:>{_NUM}.5e}" for _, arr in cols)
            out.append(f"  {u:>4}{cells} {diff[i, u]:>9.2e}")
        if units > shown:
            out.append(f"  ... {units - shown} more units (|delta{l}|: max {np.abs(step.delta[i]).max():.3e}, "
                       f"norm {norm(step.delta[i]):.3e} for example {i})")
        verdict = "AGREE" if step.ok else "DISAGREE"
        out.append(
            f"  max over all {m} examples: |delta{l} - m dJ/dz{l}| = {fmt(step.max_abs)}, "
            f"scaled {fmt(step.scaled_error)}   {verdict} (<= {DELTA_TOLERANCE:g})"
        )
        return out

    def _block_text(self, block: GradientBlock, m: int) -> list[str]:
        t = block.theta
        rows, cols = block.backprop.shape
        reg = " + (lambda/m) Theta" + f"{t}" + " (column 0 excluded)" if self.problem.lam else ""
        out = [
            f"dJ/dTheta{t} = delta{t + 1}^T [1, a{t}] / m{reg}   ({rows}x{cols}; column 0 = bias)",
            f"  jax: that dot_general's VJP w.r.t. Theta{t}[:,1:] gives dJ/dz{t + 1}^T a{t}; the bias add's "
            f"VJP sums dJ/dz{t + 1}",
            "  over the examples for column 0.",
        ]
        for label, mat in (("backprop", block.backprop), ("jax.grad", block.jax)):
            if rows <= MATRIX_MAX_ROWS and cols <= MATRIX_MAX_COLS:
                out.append(f"  {label}:")
                for r in range(rows):
                    out.append("    " + " ".join(f"{x:>10.3e}" for x in mat[r]))
            else:
                out.append(
                    f"  {label:<9} min {mat.min():>10.3e}  max {mat.max():>10.3e}  "
                    f"norm {norm(mat):.6e}"
                )
        verdict = "AGREE" if block.ok else "DISAGREE"
        r, c = block.worst
        out.append(
            f"  max |backprop - jax| = {fmt(block.max_abs)} at [{r}, {c}], norm ratio "
            f"{fmt(block.norm_ratio)}   {verdict} "
            + (f"(<= {EXACT_NORM_RATIO:g})" if block.norm_ratio <= EXACT_NORM_RATIO or not block.ok
               else "(every entry within its round-off floor)")
        )
        return out

    def _jaxpr_text(self) -> list[str]:
        act = _cost.ACTIVATIONS[self.problem.network.activation]
        out = [
            "The cost's jaxpr (jax.make_jaxpr of gradlab._cost.cost; one line per equation):",
            "  [M] matrix product: the VJP of dot_general is a dot_general with the other operand",
            "      transposed: delta(l+1) Theta(l)[:,1:] going down, delta(l+1)^T [1, a(l)] for Theta(l)",
            f"  [S] {act.name} ops: their VJPs multiply to g'(z) = {act.gprime_formula}",
            "  [L] loss and mean: their VJP gives dJ/dz(L) = (a(L) - y) / m",
            "  [R] regularisation: its VJP gives (lambda/m) Theta(l)[:,1:]",
        ]
        eq_width = 56
        previous = None
        for line in self.jaxpr:
            eq = line["equation"]
            if len(eq) > eq_width:
                eq = eq[: eq_width - 3] + "..."
            tag = f"[{line['tag']}]" if line["tag"] else ""
            # The note names a group of equations; it is printed on the group's first line.
            note = line["note"] if (tag, line["note"]) != previous else ""
            previous = (tag, line["note"])
            out.append(f"  {eq:<{eq_width}} {tag} {note}".rstrip()[:WIDTH])
        return out


# --------------------------------------------------------------------------- explain


def explain(problem: Problem, params, *, example: int = 0, jaxpr: bool = False, info=None, order: int = 1,
            direction=None, seed=0):
    """Walk the network from the output down: back-propagation's deltas next to jax's dJ/dz.

    With ``order=2``, the R-pass instead: Pearlmutter's R-operator line by line next to
    ``jax.jvp`` (:func:`gradlab.explain_hvp.explain_hvp`; ``direction`` and ``seed`` choose v).

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
    example : int, default 0
        Which example's rows the text tables show (0..m-1); the checks cover all of them.
    jaxpr : bool, default False
        Include the cost's jaxpr, one line per equation, with the steps marked.
    info : dict, optional
        Extra ``name: value`` pairs for the report's header (the CLI records the init).
    order : {1, 2}, default 1
        2 walks the R-pass of a Hessian-vector product instead (``jaxpr`` does not apply).
    direction : {"random", "ones"} or array_like, optional
        ``order=2`` only: v (default a random unit vector from ``seed``).
    seed : int, default 0
        ``order=2`` only: seeds the random v.

    Returns
    -------
    ExplainReport
        Per layer l = L..2: z_l, a_l, back-propagation's delta_l (from the numpy
        recursion) and jax's dJ/dz_l (from ``jax.grad`` of the shared cost with respect
        to a zero shift of z_l), compared as ``delta_l = m dJ/dz_l``; per matrix,
        back-propagation's dJ/dTheta_l next to ``jax.grad``'s. ``ok`` is True when all
        agree.

    Raises
    ------
    GradlabError
        For a problem, params or example outside the accepted set.

    Examples
    --------
    >>> import gradlab
    >>> p = gradlab.debug_problem((3, 5, 3))
    >>> r = gradlab.explain(p, gradlab.debug_init(p.network))
    >>> r.ok, [s.layer for s in r.layers]
    (True, [3, 2])
    """
    order = v.integer("order", order)
    if order not in (1, 2):
        raise v.fail("order", order, "1 (the gradient's walk-through) or 2 (the R-pass of H v)")
    if order == 2:
        if jaxpr:
            raise v.fail("jaxpr", jaxpr, "False with order=2 (the jaxpr listing is the gradient's)")
        return explain_hvp(problem, params, direction=direction, seed=seed, example=example, info=info)
    if direction is not None:
        raise v.fail("direction", direction, "None for order=1 (a direction is for order=2)")
    problem = check_problem(problem)
    theta = problem.network.check_params(params)
    example = v.integer("example", example, minimum=0)
    # Every intermediate of both passes is kept (and copied into the report).
    _resources.require_memory(_resources.problem_memory(
        problem.network.sizes, problem.m, jax=True, activation_copies=_resources.EXPLAIN_ACTIVATION_COPIES))
    if example >= problem.m:
        raise v.fail("example", example, f"an integer in [0, {problem.m - 1}] (m={problem.m} examples)")
    if not isinstance(jaxpr, (bool, np.bool_)):
        raise v.fail("jaxpr", jaxpr, "True or False")
    info = v.metadata("info", info)
    net, m = problem.network, problem.m

    # The hand-written side: numpy only; its deltas never reach jax.
    bw = backward(problem, theta.copy(), keep=True)
    # The jax side: the shared cost, differentiated w.r.t. the parameters and the z shifts.
    cost_jax, g_theta, g_z = _jax_side(problem, theta)
    jaxpr_lines, prims = _cost_jaxpr(problem, theta)

    L = net.n_layers
    layers = []
    for idx in range(L - 2, -1, -1):  # z_{idx+2}, from the output down
        delta, dz = bw.deltas[idx], g_z[idx]
        diff = np.abs(delta - m * dz)
        max_abs = float(diff.max())
        scaled = max_abs / max(1.0, float(np.abs(delta).max()))
        hidden = idx < L - 2
        layers.append(
            LayerStep(
                layer=idx + 2,
                output=not hidden,
                z=bw.zs[idx],
                a=bw.acts[idx + 1] if hidden else _output_activation(bw),
                delta=delta,
                jax_dJdz=dz,
                back=bw.backs[idx] if hidden else None,
                gprime=bw.gprimes[idx] if hidden else None,
                max_abs=max_abs,
                scaled_error=scaled,
                ok=bool(scaled <= DELTA_TOLERANCE),
                primitives=_step_primitives(prims, idx + 2, hidden),
            )
        )
    bp_blocks, jax_blocks = net.unpack(bw.grad), net.unpack(g_theta)
    # As in compare: a block so small that round-off rivals it (saturated units, e.g.
    # weights of 1e4) agrees when every entry is within the a-priori round-off floor.
    floors = net.unpack(roundoff_floor(problem, theta))
    blocks = []
    for t in range(len(net.shapes), 0, -1):
        a, b = bp_blocks[t - 1], jax_blocks[t - 1]
        diff = np.abs(a - b)
        r, c = np.unravel_index(int(np.argmax(diff)), diff.shape)
        ratio = norm_ratio(a, b)
        blocks.append(GradientBlock(t, a.copy(), b.copy(), float(diff.max()), ratio, (int(r), int(c)),
                                    bool(ratio <= EXACT_NORM_RATIO or np.all(diff <= floors[t - 1]))))
    return ExplainReport(problem, theta, example, bw.J, cost_jax, layers, blocks, jaxpr_lines, bool(jaxpr), info)


def _step_primitives(prims: dict, layer: int, hidden: bool) -> dict:
    """The jax primitives (from the cost's jaxpr) whose VJPs give this layer's delta."""
    keep = lambda names: [n for n in names if n not in _BOOKKEEPING]  # noqa: E731
    if not hidden:
        return {"loss": keep(prims.get("loss", [])), "mean": keep(prims.get("mean", []))}
    return {
        "matrix_product": keep(prims.get(f"matmul{layer}", [])),
        "sigmoid": keep(prims.get(f"sigmoid{layer}", [])),
    }


def _wrap(text: str, indent: str = "  ") -> list[str]:
    """Prose wrapped to the report's width."""
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def _gprime_of_layer(activation: str, layer: int) -> str:
    """The activation table's g'(z) formula with layer ``layer``'s a: ``a2 (1 - a2)``."""
    return re.sub(r"\ba\b", f"a{layer}", _cost.ACTIVATIONS[activation].gprime_formula)


def _output_activation(bw) -> np.ndarray:
    """h = a_L: the output layer's activation, from the shared sigmoid (display only)."""
    return _cost.sigmoid(np, bw.zs[-1])
