"""``check_layer``: a layer's backward pass, the vector-Jacobian product ``dout . J``.

``forward(*inputs) -> (out, cache)`` and ``backward(dout, cache) -> gradients``; the check is
of ``J_k(theta) = <dout_k, forward(theta)>`` for several seeded random upstream gradients
(or the given ones): its gradient is what backward returns for ``dout_k``, and the finite
differences of all K come from the same forward evaluations. jax, when it traces forward,
gives every ``dout_k . J`` from one ``jax.vjp``.
"""

from __future__ import annotations

import numpy as np

from gradlab import _validate as v
from gradlab._errors import GradlabError
from gradlab.check.calls import Snapshot
from gradlab.check.callables import (call_user, callable_arg, describe, float64, input_mutations, numeric_value,
                                     parse_gradients, precision, title)
from gradlab.check.generic import Case, run
from gradlab._usercode import user_code
from gradlab.check.inputs import Inputs, common_options, input_names
from gradlab.check.report import GradientReport
from gradlab.check.traced import JaxUnavailable, ready
from gradlab.check.traced import reason as jax_reason
from gradlab.sources import autodiff

__all__ = ["check_layer", "LayerCase", "DEFAULT_DOUTS"]

#: Random upstream gradients a layer is checked with by default: one would do for a
#: correct backward pass; several catch errors a single dout hides by chance (a wrong
#: entry whose dout entry happens to be small) and let a factor be fitted across them.
DEFAULT_DOUTS = 3


class LayerCase(Case):
    """A layer: ``forward(*inputs) -> (out, cache)``, ``backward(dout, cache) -> gradients``."""

    check = "check_layer"

    def __init__(self, forward, backward, inputs: Inputs, douts=None, n_douts: int = 3, rng=None):
        super().__init__(inputs)
        self.forward, self.backward = forward, backward
        self.fname, self.bname = title(forward), title(backward)
        self.hint = " Pass wrt= naming the inputs backward returns gradients for, in that order."
        out, _ = self._call_forward(self.inputs.args())
        self.out_shape = out.shape
        self.random_douts = douts is None
        if douts is None:
            rng = np.random.default_rng(0) if rng is None else rng
            douts = rng.standard_normal((n_douts,) + out.shape)
        self.douts = np.asarray(douts, dtype=np.float64)
        if self.douts.shape[1:] != out.shape:
            raise GradlabError(f"dout must have the shape of forward's output {out.shape} (or be a sequence of "
                               f"such arrays); got dout of shape {self.douts.shape[1:]}")
        self.K = self.douts.shape[0]
        self._flat = self.douts.reshape(self.K, -1)

    @property
    def title(self) -> str:
        return f"{self.fname} / {self.bname} ({', '.join(self.inputs.names)})"

    @property
    def grad_what(self) -> str:
        return f"backward {self.bname!r}"

    def _out(self, raw):
        if not (isinstance(raw, (tuple, list)) and len(raw) == 2):
            raise GradlabError(f"forward {self.fname!r} must return (out, cache); got {describe(raw)}")
        out = numeric_value(raw[0], f"forward {self.fname!r}", "(out, cache) with out a float array")
        if hasattr(self, "out_shape") and out.shape != self.out_shape:
            raise GradlabError(f"forward {self.fname!r} returned out of shape {out.shape} at a perturbed input; "
                               f"at the check point it was {self.out_shape}")
        return out

    def _call_forward(self, args):
        raw = call_user(self.forward, args, f"forward {self.fname!r}")
        return self._out(raw), raw[1]

    def scalars(self, theta):
        out, _ = self._call_forward(self.inputs.args(theta))
        flat = out.reshape(-1)
        return self._flat @ flat, (np.abs(self._flat) @ np.abs(flat)) * precision(out)

    def _one(self, k: int, check_purity: bool):
        args = self.inputs.args()
        named = [(f"{self.inputs.names[i]} (input {i})", a) for i, a in enumerate(args)]
        snap_f = Snapshot(named) if check_purity else None
        _, cache = self._call_forward(args)
        findings = input_mutations(snap_f.writes(), f"forward {self.fname!r}") if check_purity else []
        dout = self.douts[k].copy()
        aliases = {id(a): f"the array forward received as {name}" for name, a in named if isinstance(a, np.ndarray)}
        snap_b = Snapshot([("dout", dout), ("cache", cache)]) if check_purity else None
        raw = call_user(self.backward, (dout, cache), self.grad_what)
        if check_purity:
            findings += input_mutations(snap_b.writes(aliases), self.grad_what)
        return raw, findings

    def first(self):
        """Your backward pass for each dout (K rows), with purity and output findings (first dout)."""
        rows, findings, scale = [], [], {}
        for k in range(self.K):
            raw, found = self._one(k, check_purity=(k == 0))
            U, more, sc = parse_gradients(raw, self.inputs, self.grad_what, self.hint)
            if k == 0:
                findings += found + more
                scale = sc
            if U is None:
                if k == 0:
                    return None, findings, scale
                findings += more
                return None, findings, scale
            rows.append(U)
        return np.array(rows), findings, scale

    def again(self):
        raw, _ = self._one(0, check_purity=False)
        U, _, _ = parse_gradients(raw, self.inputs, self.grad_what, "")
        return None if U is None else U[None, :]

    def jax(self):
        jax = ready()
        import jax.numpy as jnp

        what = f"forward {self.fname!r}"
        inputs, forward = self.inputs, self.forward

        def build():
            passthrough = self._passthrough_builder()

            def vjps(t, arrays, D):
                def F(theta):
                    return jnp.asarray(forward(*inputs.args(theta, xp=jnp, passthrough=passthrough(arrays)))[0])

                out, vjp = jax.vjp(F, t)
                return out, jax.vmap(lambda d: vjp(d.astype(out.dtype))[0])(D)

            # One compilation of the forward pass and every dout's VJP (jit, vmap).
            return jax.jit(vjps)

        try:
            with autodiff.x64(), user_code():
                fn = self._compiled(forward, ("layer",), build)
                out, rows = fn(jnp.asarray(self.inputs.theta0), self._dynamic_args(jnp), jnp.asarray(self.douts))
                rows = np.array(rows, dtype=np.float64)
                out = np.array(out, dtype=np.float64).reshape(-1)
        except KeyboardInterrupt:
            raise
        except (Exception, SystemExit) as exc:
            raise JaxUnavailable(jax_reason(exc, what)) from None
        return self._flat @ out, rows

    def batch_size(self) -> int | None:
        """A layer's batch: the output's leading dimension, when a differentiated input
        shares it (x of affine, conv, batch norm); else None."""
        if not self.out_shape or self.out_shape[0] < 2:
            return None
        N = self.out_shape[0]
        return N if any(s.shape and s.shape[0] == N for s in self.inputs.slots) else None

    def sub(self, k: int, n: int):
        douts = self.douts[:, :k] if self.out_shape and self.out_shape[0] == n else None
        return LayerCase(self.forward, self.backward, self.inputs.sliced(k, n), douts=douts, n_douts=self.K)

    def masked(self, k: int, n: int):
        """The same inputs with every dout's rows from ``k`` on set to zero: the true
        gradients then count only the first ``k`` examples."""
        if not self.out_shape or self.out_shape[0] != n:
            return None
        douts = self.douts.copy()
        douts[:, k:] = 0.0
        return LayerCase(self.forward, self.backward, self.inputs, douts=douts)

def check_layer(forward, backward, *inputs, wrt=None, dout=None, n_douts: int = DEFAULT_DOUTS, names=None,
                mode: str = "auto", against=("jax", "numeric"), seed: int = 0) -> GradientReport:
    """Check a layer's backward pass -- the vector-Jacobian product ``dout . J`` -- against its forward pass.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs) -> (out, cache)``, with ``out`` a float array.
    backward : callable
        ``backward(dout, cache) -> gradients``: one per differentiated input, in order (a
        single array when there is one).
    *inputs
        The point to check at; float arrays are differentiated by default, the rest (a
        ``conv_param`` dict, a mask, labels) passes through untouched.
    wrt : int, str or sequence of them, optional
        The inputs backward returns gradients for, by position or name (names from
        ``forward``'s signature, or ``names``). Default: every float array input.
    dout : array or sequence of arrays, optional
        Upstream gradient(s) of ``out``'s shape. Default: ``n_douts`` standard normal
        ones, seeded by ``seed``.
    n_douts : int, default 3
        How many random upstream gradients (when ``dout`` is not given).
    names, mode, against, seed
        As for :func:`check_function`.

    Returns
    -------
    GradientReport

    Raises
    ------
    GradlabError
        Bad arguments; ``forward`` not returning ``(out, cache)``.
    UserCodeError
        ``forward`` or ``backward`` raised at the check point.

    Examples
    --------
    >>> import numpy as np, gradlab
    >>> def forward(x, w):
    ...     return x @ w, (x, w)
    >>> def backward(dout, cache):
    ...     x, w = cache
    ...     return dout @ w.T, x.T @ dout
    >>> rng = np.random.default_rng(0)
    >>> gradlab.check_layer(forward, backward, rng.normal(size=(4, 3)), rng.normal(size=(3, 2))).ok
    True
    """
    if not inputs:
        raise GradlabError("check_layer needs at least one input after forward and backward: "
                           "check_layer(forward, backward, x, ...); got no inputs")
    callable_arg("forward", forward, len(inputs), "(*inputs)")
    callable_arg("backward", backward, 2, "(dout, cache)")
    mode, against, seed = common_options(mode, against, seed)
    n_douts = v.integer("n_douts", n_douts, minimum=1)
    ins = Inputs(inputs, input_names(names, forward, len(inputs)), wrt, what=f"forward {title(forward)!r}")
    douts = None
    rng = np.random.default_rng(seed)
    if dout is not None:
        douts = _douts(dout)
    with float64():
        case = LayerCase(forward, backward, ins, douts=douts, n_douts=n_douts, rng=rng)
        return run(case, mode=mode, against=against, seed=seed, info={})


def _douts(dout):
    """One array, or a sequence of arrays of one shape, as a stack (checked against out later)."""
    if isinstance(dout, (list, tuple)) and dout and all(isinstance(d, np.ndarray) for d in dout):
        arrs = [v.float_array("dout", d, ndim=np.ndim(d)) for d in dout]
        if len({a.shape for a in arrs}) != 1:
            raise GradlabError(f"dout must be one array or arrays of one shape; got shapes {[a.shape for a in arrs]}")
        return np.stack(arrs)
    arr = v.float_array("dout", dout, ndim=np.ndim(dout))
    return arr[None]
