"""The R-pass is forward-mode autodiff of back-propagation: the walk-through, line by line.

:func:`explain_hvp` (``gradlab explain --order 2``) runs Pearlmutter's R-operator by hand
(:mod:`gradlab.sources.rop`, numpy only) and puts every R-quantity next to what jax's
forward mode (``jax.jvp``) computes for the same quantity of the shared cost along the same v:

* ``Rz_l`` and ``Ra_l`` next to the tangents of z_l and a_l when ``jax.jvp`` pushes v through
  the shared forward pass (:func:`gradlab._cost.forward`);
* ``delta_l`` next to m dJ/dz_l and ``Rdelta_l`` next to m times the tangent of dJ/dz_l, when
  ``jax.jvp`` pushes v through ``jax.grad`` of the cost with respect to zero shifts of every
  z (the device :mod:`gradlab.explain` uses to expose the deltas);
* each block of ``H v`` next to the tangent of ``jax.grad``'s dJ/dTheta_l.

jax never sees the R-pass, and the R-pass never calls jax: they share the cost and nothing
else. Each R-line is the product rule applied to one line of back-propagation -- exactly the
rule ``jvp`` applies to each primitive -- which is why they agree to round-off.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import textwrap

import numpy as np

from gradlab import _cost, _resources
from gradlab import _validate as v
from gradlab._judge import DELTA_TOLERANCE, hvp_agree, hvp_roundoff_floor, norm, norm_ratio
from gradlab._report import Report, fmt
from gradlab.network import Problem, check_problem
from gradlab.sources import autodiff, rop
from gradlab.sources.second_order import direction_for

__all__ = ["explain_hvp", "HvpExplainReport", "RStep"]

#: The text rendering fits a terminal this wide; wider layers show this many units.
WIDTH = 100
SHOW_UNITS = 12
_NUM = 12


@dataclasses.dataclass(frozen=True)
class RStep:
    """One line of the R-pass next to jax's forward mode, for every example and unit.

    ``name`` is the quantity ("Rz3", "Ra2", "Rdelta2", ...); ``formula`` the R-pass's line;
    ``jax`` what ``jax.jvp`` gives for it; ``primal`` the forward quantity it is the
    derivative of (z3, a2, delta2 ...), for the table. Agreement is
    ``max |R - jax| / max(1, max |R|)`` against :data:`gradlab._judge.DELTA_TOLERANCE`.
    """

    name: str
    primal_name: str
    formula: str
    jax_says: str
    primal: np.ndarray
    rpass: np.ndarray
    jax: np.ndarray
    max_abs: float
    scaled_error: float
    ok: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "primal_name": self.primal_name, "formula": self.formula,
                "jax_says": self.jax_says, "primal": self.primal.tolist(), "rpass": self.rpass.tolist(),
                "jax": self.jax.tolist(), "max_abs": self.max_abs, "scaled_error": self.scaled_error, "ok": self.ok}


def _step(name, primal_name, formula, jax_says, primal, rpass, jax) -> RStep:
    max_abs = float(np.max(np.abs(rpass - jax), initial=0.0))
    scaled = max_abs / max(1.0, float(np.max(np.abs(rpass), initial=0.0)))
    return RStep(name, primal_name, formula, jax_says, np.asarray(primal), np.asarray(rpass), np.asarray(jax),
                 max_abs, scaled, bool(scaled <= DELTA_TOLERANCE))


# --------------------------------------------------------------------------- jax side


@functools.lru_cache(maxsize=16)
def _compiled_tangents(network):
    """jit of the forward pass's and the shifted gradient's jvp along v, per network."""
    import jax
    import jax.numpy as jnp

    def forward(params, X):
        zs, acts = _cost.forward(jnp, network, params, X)
        return zs, acts[1:]

    grad = jax.grad(functools.partial(_cost.cost, jnp, network), argnums=(0, 4))

    def tangents(params, vec, X, Y, lam, shifts):
        _, (Rzs, Racts) = jax.jvp(lambda p: forward(p, X), (params,), (vec,))
        (g_theta, g_z), (Hv, Rg_z) = jax.jvp(lambda p: grad(p, X, Y, lam, shifts), (params,), (vec,))
        return Rzs, Racts, g_z, Rg_z, Hv

    return jax.jit(tangents)


def _jax_side(problem: Problem, theta, vec):
    import jax.numpy as jnp

    net = problem.network
    with autodiff.x64():
        X, Y = autodiff.device_data(problem)
        shifts = [jnp.zeros((problem.m, s), dtype=jnp.float64) for s in net.sizes[1:]]
        out = _compiled_tangents(net)(jnp.asarray(theta, dtype=jnp.float64), jnp.asarray(vec, dtype=jnp.float64),
                                      X, Y, problem.lam, shifts)
        Rzs, Racts, g_z, Rg_z, Hv = out
        as_np = lambda xs: [np.array(x, dtype=np.float64) for x in xs]  # noqa: E731
        return as_np(Rzs), as_np(Racts), as_np(g_z), as_np(Rg_z), np.array(Hv, dtype=np.float64)


# ------------------------------------------------------------------------------ report


class HvpExplainReport(Report):
    """The R-pass line by line next to jax's forward mode; ``ok`` when every line agrees.

    Attributes
    ----------
    forward : list[RStep]
        ``Rz_l`` and ``Ra_l`` for l = 2..L (the R-forward pass), in order.
    backward : list[RStep]
        ``Rdelta_l`` for l = L..2 (the R-backward pass), with ``delta_l`` beside it.
    blocks : list[dict]
        Per weight matrix: the R-pass's block of ``H v``, jax's, and their agreement.
    """

    def __init__(self, problem, params, direction, described, example, forward, backward, blocks, info):
        self.problem, self.params, self.direction, self.described = problem, params, direction, described
        self.example = example
        self.forward, self.backward, self.blocks = forward, backward, blocks
        self.info = dict(info or {})
        self.ok = all(s.ok for s in forward + backward) and all(b["ok"] for b in blocks)

    def to_dict(self) -> dict:
        net = self.problem.network
        return {"ok": self.ok, "order": 2, "sizes": list(net.sizes), "activation": net.activation,
                "examples": self.problem.m, "lam": self.problem.lam, **self.info, "example": self.example,
                "direction": {"described": self.described, "v": self.direction.tolist()},
                "tolerance": DELTA_TOLERANCE, "forward": [s.to_dict() for s in self.forward],
                "backward": [s.to_dict() for s in self.backward],
                "blocks": [{k: (val.tolist() if isinstance(val, np.ndarray) else val) for k, val in b.items()}
                           for b in self.blocks]}

    def _table(self, step: RStep, i: int) -> list[str]:
        units = step.rpass.shape[1]
        shown = min(units, SHOW_UNITS)
        out = [f"  {'unit':>4} {step.primal_name:>{_NUM}} {step.name + ' R-pass':>{_NUM + 4}} "
               f"{step.name + ' jax.jvp':>{_NUM + 4}} {'|diff|':>9}"]
        for u in range(shown):
            out.append(f"  {u:>4} {step.primal[i, u]:>{_NUM}.5e} {step.rpass[i, u]:>{_NUM + 4}.5e} "
                       f"{step.jax[i, u]:>{_NUM + 4}.5e} {abs(step.rpass[i, u] - step.jax[i, u]):>9.2e}")
        if units > shown:
            out.append(f"  ... {units - shown} more units")
        out.append(f"  max over all {self.problem.m} examples: |R-pass - jax| = {fmt(step.max_abs)}, scaled "
                   f"{fmt(step.scaled_error)}   {'AGREE' if step.ok else 'DISAGREE'} (<= {DELTA_TOLERANCE:g})")
        return out

    def _text(self) -> str:
        net, m = self.problem.network, self.problem.m
        extra = "".join(f", {k}={val}" for k, val in self.info.items())
        lines = [
            f"gradlab explain --order 2: sizes {','.join(map(str, net.sizes))}"
            + ("" if net.activation == "sigmoid" else f" ({net.activation} hidden units)")
            + f", m={m}, lambda={self.problem.lam:g}{extra}; v {self.described}",
            "Pearlmutter's R-operator, R{f} = d/dr f(theta + r v) at r = 0, by hand (numpy), next to jax.jvp",
            "of the shared cost along the same v. Each R-line is the product rule applied to one line of",
            f"back-propagation, as jvp applies it to each primitive. Tables show example {self.example}.",
            "",
            "R-forward pass (Ra1 = 0: the inputs do not depend on theta):",
        ]
        for step in self.forward:
            lines.append("")
            lines += _wrap(f"{step.name} = {step.formula}", "")
            lines += _wrap(f"jax: {step.jax_says}")
            lines += self._table(step, self.example)
        lines += ["", "R-backward pass (delta = m dJ/dz, Rdelta = m R{dJ/dz}):"]
        for step in self.backward:
            lines.append("")
            lines += _wrap(f"{step.name} = {step.formula}", "")
            lines += _wrap(f"jax: {step.jax_says}")
            lines += self._table(step, self.example)
        lines += ["", "The blocks of H v:"]
        for b in self.blocks:
            t = b["theta"]
            reg = f" + (lambda/m) V{t} (column 0 excluded)" if self.problem.lam else ""
            moved = f" + delta{t + 1}^T [0, Ra{t}]" if t > 1 else ""  # Ra1 = 0
            lines += _wrap(f"(H v) for Theta{t} = (Rdelta{t + 1}^T [1, a{t}]{moved}) / m{reg}: norm "
                           f"{norm(b['rpass']):.6e}; against jax.jvp of jax.grad, norm ratio {fmt(b['norm_ratio'])}   "
                           f"{'AGREE' if b['ok'] else 'DISAGREE'}")
        lines.append("")
        lines.append("verdict: " + ("every R-line agrees with jax's forward mode" if self.ok else "DISAGREEMENT"))
        return "\n".join(lines)


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def _in_layer(formula: str, layer: int) -> str:
    return re.sub(r"\ba\b", f"a{layer}", formula)


# ----------------------------------------------------------------------------- explain


def explain_hvp(problem: Problem, params, *, direction=None, seed=0, example: int = 0, info=None) -> HvpExplainReport:
    """Walk the R-pass line by line next to jax's forward mode (``explain(..., order=2)``).

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
    direction : {"random", "ones"} or array_like, optional
        v: a random unit vector from ``seed`` (default), all ones, or the given array.
    seed : int, default 0
    example : int, default 0
        Which example's rows the tables show (0..m-1); the checks cover all of them.
    info : dict, optional

    Returns
    -------
    HvpExplainReport
        ``forward`` (Rz_l, Ra_l), ``backward`` (Rdelta_l) and ``blocks`` (H v per matrix),
        each next to jax's; ``ok`` when all agree.

    Raises
    ------
    GradlabError
        For a problem, params, direction, seed or example outside the accepted set.

    Examples
    --------
    >>> import gradlab
    >>> p = gradlab.debug_problem()
    >>> r = gradlab.explain(p, gradlab.debug_init(p.network), order=2)
    >>> r.ok, [s.name for s in r.forward], [s.name for s in r.backward]
    (True, ['Rz2', 'Ra2', 'Rz3'], ['Rdelta3', 'Rdelta2'])
    """
    problem = check_problem(problem)
    net, m = problem.network, problem.m
    theta = net.check_params(params)
    example = v.integer("example", example, minimum=0)
    if example >= m:
        raise v.fail("example", example, f"an integer in [0, {m - 1}] (m={m} examples)")
    info = v.metadata("info", info)
    vec, described = direction_for(net, direction, seed)
    _resources.require_memory(_resources.problem_memory(
        net.sizes, m, jax=True, activation_copies=2 * _resources.EXPLAIN_ACTIVATION_COPIES))

    rp = rop.r_pass(problem, theta.copy(), vec.copy(), keep=True)
    Rzs_j, Racts_j, g_z, Rg_z, Hv_j = _jax_side(problem, theta, vec)
    act = _cost.ACTIVATIONS[net.activation]
    L = net.n_layers

    forward = []
    for idx in range(L - 1):  # z_{idx+2}
        l = idx + 2
        below = "" if idx == 0 else f"Ra{l - 1} Theta{l - 1}[:,1:]^T + "
        forward.append(_step(
            f"Rz{l}", f"z{l}", f"{below}a{l - 1} V{l - 1}[:,1:]^T + V{l - 1}[:,0]   (R of z{l} = a{l - 1} "
            f"Theta{l - 1}[:,1:]^T + Theta{l - 1}[:,0]: the product rule, R{{Theta}} = V)",
            f"the tangent of z{l} when jax.jvp pushes v through the shared forward pass (the dot_general's JVP "
            "is the product rule)", rp.zs[idx], rp.Rzs[idx], Rzs_j[idx]))
        if l < L:
            forward.append(_step(
                f"Ra{l}", f"a{l}", f"g'(z{l}) * Rz{l},  g'(z) = {_in_layer(act.gprime_formula, l)}   (R of a{l} = "
                f"g(z{l}): the chain rule)", f"the tangent of a{l}: the {act.name} ops' JVPs multiply by g'(z{l})",
                rp.acts[idx + 1], rp.Racts[idx + 1], Racts_j[idx]))
    backward = [_step(
        f"Rdelta{L}", f"delta{L}", f"g'(z{L}) * Rz{L},  g'(z) = a{L} (1 - a{L}) the output sigmoid's   (R of delta{L} = "
        f"g(z{L}) - y)", f"m times the tangent of dJ/dz{L} when jax.jvp pushes v through jax.grad of the cost",
        rp.deltas[L - 2], rp.Rdeltas[L - 2], m * Rg_z[L - 2])]
    for idx in range(L - 3, -1, -1):  # hidden z_{idx+2}, from the top down
        l = idx + 2
        gpp = "" if act.gsecond_max == 0 else (f" + (delta{l + 1} Theta{l}[:,1:]) * g''(z{l}) * Rz{l}, "
                                               f"g''(z) = {_in_layer(act.gsecond_formula, l)}")
        backward.append(_step(
            f"Rdelta{l}", f"delta{l}", f"(Rdelta{l + 1} Theta{l}[:,1:] + delta{l + 1} V{l}[:,1:]) * g'(z{l}){gpp}"
            f"   (R of delta{l} = (delta{l + 1} Theta{l}[:,1:]) * g'(z{l}): the product rule, three factors)",
            f"m times the tangent of dJ/dz{l}: the transposed dot_general's JVP and the {act.name} ops' JVPs, "
            f"which bring in g'' through the tangent of g'(z{l})", rp.deltas[idx], rp.Rdeltas[idx], m * Rg_z[idx]))
    # The deltas beside each Rdelta are checked too (as m dJ/dz, the way explain checks them), so
    # that the table's delta column is one jax agrees with.
    for k, idx in enumerate(range(L - 2, -1, -1)):
        off = float(np.max(np.abs(rp.deltas[idx] - m * g_z[idx]), initial=0.0))
        if off > DELTA_TOLERANCE * max(1.0, float(np.max(np.abs(rp.deltas[idx]), initial=0.0))):
            backward[k] = dataclasses.replace(backward[k], ok=False)

    floors = net.unpack(hvp_roundoff_floor(problem, theta, vec))
    ours, theirs = net.unpack(rp.hvp), net.unpack(Hv_j)
    blocks = []
    for t in range(len(net.shapes), 0, -1):
        a, b = ours[t - 1], theirs[t - 1]
        blocks.append({"theta": t, "rpass": a.copy(), "jax": b.copy(), "norm_ratio": norm_ratio(a, b),
                       "ok": hvp_agree(a, b, floors[t - 1])})
    return HvpExplainReport(problem, theta, vec, described, example, forward, backward, blocks, info)
