"""What is checked: a scalar function with its gradient, or a layer with its backward pass.

Both are seen by the engine the same way: ``K`` scalar functions of one flat vector (the
black box the finite differences evaluate), your gradient of each (``K`` rows), and the
same functions traced by jax. For a layer, ``J_k(theta) = <dout_k, forward(theta)>``: the
gradient of that is ``dout_k . J``, the vector-Jacobian product your backward pass
computes, and the finite differences of all K come from the same forward evaluations.
"""

from __future__ import annotations

import collections

import numpy as np

from gradlab._errors import GradlabError
from gradlab._anygrad.arrays import Inputs
from gradlab._anygrad.calls import Snapshot, guarded, label
from gradlab._anygrad.report import Finding
from gradlab._anygrad.witnesses import JaxUnavailable, jax_ready, jax_reason

_EPS = float(np.finfo(np.float64).eps)
MAX_LISTED = 5

#: Compiled jax witnesses kept (function x input shapes); each holds a compiled program.
COMPILED_CACHE_SIZE = 64
_COMPILED: collections.OrderedDict = collections.OrderedDict()


def _numeric_array(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "biuf"
    return type(x).__module__.startswith(("jax", "jaxlib")) and hasattr(x, "dtype")


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return f"a {type(x).__name__}"


# ---------------------------------------------------------------- what a gradient must be


def parse_gradients(raw, inputs: Inputs, what: str, hint: str):
    """Your returned gradient(s) as one flat float64 vector, with findings about the form.

    One array per differentiated input, in ``wrt`` order (a tuple or list; a dict keyed by
    the inputs' names; a single array when there is one input). Returns ``(flat or None,
    findings, scale)``: ``flat`` is None when the result cannot be used; ``scale`` maps a
    slot's position to the factor its round-off bounds grow by (a float32 result).
    """
    slots = inputs.slots
    names = ", ".join(s.name for s in slots)
    exp = f"looked at what {what} returned: how many arrays, their types, shapes, dtypes, finite entries"
    findings: list[Finding] = []
    scale: dict = {}
    if len(slots) == 1 and isinstance(raw, (tuple, list)) and len(raw) > 1 and any(
            isinstance(x, np.ndarray) and x.ndim >= 1 for x in raw):
        findings.append(Finding("bad_output", None, None,
                                f"{what} returned {len(raw)} gradients; the differentiated input is {names} (1): "
                                f"return its gradient alone.{hint}", exp, cause="count"))
        return None, findings, scale
    if len(slots) == 1:
        if isinstance(raw, (tuple, list)) and len(raw) == 1 and not np.isscalar(raw[0]) \
                and np.ndim(raw[0]) == len(slots[0].shape):
            raw = raw[0]
        elif isinstance(raw, dict) and set(raw) == {slots[0].name}:
            raw = raw[slots[0].name]
        items = [raw]
    elif isinstance(raw, dict):
        if set(raw) != {s.name for s in slots}:
            findings.append(Finding("bad_output", None, None,
                                    f"{what} returned a dict with keys {sorted(map(str, raw))}; the differentiated "
                                    f"inputs are {names}: one key per input.{hint}", exp, cause="keys"))
            return None, findings, scale
        items = [raw[s.name] for s in slots]
    elif isinstance(raw, (tuple, list)) and len(raw) == len(slots):
        items = list(raw)
    else:
        got = (f"{len(raw)} gradients" if isinstance(raw, (tuple, list)) else _describe(raw))
        findings.append(Finding("bad_output", None, None,
                                f"{what} returned {got}; the differentiated inputs are {names} ({len(slots)}): "
                                f"return one gradient per input, in that order.{hint}", exp, cause="count"))
        return None, findings, scale
    pieces = []
    for s, item in zip(slots, items):
        try:
            arr = np.asarray(item)
        except Exception:  # an object numpy cannot read
            arr = np.asarray(None, dtype=object)
        where = f"the gradient for {s.label}"
        if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
            array = isinstance(item, np.ndarray)
            what_ = f"an array of dtype {arr.dtype}" if array else f"a {type(item).__name__}"
            findings.append(Finding("bad_output", s.name, s.position,
                                    f"{where} is {what_}; a gradient is a float array of {s.name}'s shape "
                                    f"{s.shape}.", exp,
                                    cause=f"dtype {arr.dtype}" if array else f"type {type(item).__name__}"))
            return None, findings, scale
        if arr.shape != s.shape:
            if arr.ndim == 2 and arr.shape == s.shape[::-1]:
                findings.append(Finding(
                    "transposed", s.name, s.position,
                    f"{where} has shape {arr.shape}, {s.name}'s shape {s.shape} transposed; it is judged "
                    f"transposed back. A gradient has its input's shape: form it as the transpose (e.g. "
                    f"x.T @ dout rather than dout.T @ x).", exp, cause="transposed shape"))
                arr = arr.T
            elif arr.size == s.size and tuple(d for d in arr.shape if d != 1) == tuple(d for d in s.shape if d != 1):
                findings.append(Finding(
                    "bad_output", s.name, s.position,
                    f"{where} has shape {arr.shape}, {s.name} has shape {s.shape}: the same entries with "
                    "a length-1 axis more or less. It is judged reshaped; return it with its input's shape "
                    "(a trainer's update would broadcast it).", exp, blame="shape", cause=f"shape {arr.shape}"))
                arr = arr.reshape(s.shape)
            else:
                findings.append(Finding("bad_output", s.name, s.position,
                                        f"{where} has shape {arr.shape}; {s.name} has shape {s.shape}.{hint}", exp,
                                        cause=f"shape {arr.shape}"))
                return None, findings, scale
        grad = np.array(arr, dtype=np.float64).reshape(-1)
        bad = np.flatnonzero(~np.isfinite(grad))
        if bad.size:
            entries = [s.index(int(k)) for k in bad]
            findings.append(Finding(
                "bad_output", s.name, s.position,
                f"{where} has {bad.size} non-finite entr{'y' if bad.size == 1 else 'ies'} (NaN or inf): a log "
                "of 0, a division by zero or an overflow.", exp, entries=entries,
                values=[{"entry": e, "entry_value": str(grad[k])} for e, k in zip(entries[:MAX_LISTED], bad)],
                cause="NaN/inf", extra={"n_entries": int(bad.size)}))
            return None, findings, scale
        if arr.dtype != np.float64:
            low = arr.dtype.kind == "f" and np.finfo(arr.dtype).eps > _EPS
            if low:
                scale[s.position] = float(np.finfo(arr.dtype).eps) / _EPS
            findings.append(Finding(
                "bad_output", s.name, s.position,
                f"{where} has dtype {arr.dtype}, not float64. " + (
                    "It is judged at that precision (round-off bounds scaled by its eps), so bugs smaller than "
                    "that precision cannot be seen." if low else "A gradient is a float array; integers cannot "
                    "hold it."), exp, blame="precision" if low else "user", cause=f"dtype {arr.dtype}",
                extra={"dtype": str(arr.dtype)}))
        pieces.append(grad)
    return np.concatenate(pieces), findings, scale


def mutation_findings(writes, what: str) -> list[Finding]:
    """A finding per argument the user's code wrote."""
    out = []
    for w in writes:
        if not w.entries and w.total:
            text = "its shape changed"
        else:
            text = f"{w.total} entr{'y' if w.total == 1 else 'ies'} changed"
        alias = f" -- {w.alias} --" if w.alias else ""
        sentence = (f"{what} wrote into {w.path}{alias} ({text}). Arguments must stay as they were: "
                    "the caller (a trainer, the next layer's backward pass) still uses them. Work on a copy "
                    "(x = x.copy(), or build a new array instead of assigning into this one).")
        values = [{"entry": list(e), "before": b, "after": a} for e, b, a in zip(w.entries, w.before, w.after)]
        out.append(Finding("input_mutation", None, None, sentence,
                           f"handed {what} copies of its arguments and compared them, entry by entry, with "
                           "pristine ones afterwards", entries=w.entries, values=values, cause=f"{w.path} written",
                           extra={"argument": w.path, "n_entries": w.total}))
    return out


def _precision(value) -> float:
    """How much coarser than float64 a value's dtype rounds (1 for float64): a function
    computed in float32 has float32's round-off, and its error estimates must say so."""
    dtype = np.asarray(value).dtype
    if dtype.kind == "c":
        dtype = np.finfo(dtype).dtype
    return float(np.finfo(dtype).eps) / _EPS if dtype.kind == "f" and np.finfo(dtype).eps > _EPS else 1.0


def _numeric_value(x, what: str, accepted: str):
    try:
        arr = np.asarray(x)
    except Exception:
        arr = np.asarray(None, dtype=object)
    if arr.dtype.kind not in "fiuc" or arr.dtype == np.bool_:
        raise GradlabError(f"{what} must return {accepted}; got {_describe(x)}")
    return arr


# ------------------------------------------------------------------------------ cases


class Case:
    """Base of the two kinds of check (see the module docstring)."""

    check = ""
    K = 1

    def __init__(self, inputs: Inputs):
        self.inputs = inputs

    def _dynamic(self) -> list[int]:
        """Pass-through inputs handed to the compiled witness as arguments: numeric arrays
        (numpy ones become jax arrays, so ``array_namespace(x, y)`` finds one namespace)."""
        return [i for i, x in enumerate(self.inputs.values)
                if i not in self.inputs.positions and _numeric_array(x)]

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
            elif _numeric_array(x):
                parts.append(("array", tuple(np.shape(x)), str(x.dtype)))
            else:
                parts.append(("static", type(x).__qualname__, repr(x)))
        key = (fn, tag, tuple(parts))
        hit = _COMPILED.get(key)
        if hit is None:
            hit = build()
            _COMPILED[key] = hit
            while len(_COMPILED) > COMPILED_CACHE_SIZE:
                _COMPILED.popitem(last=False)
        else:
            _COMPILED.move_to_end(key)
        return hit

    def _passthrough_builder(self, jnp):
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


class FunctionCase(Case):
    """A scalar function ``f(*inputs)`` and its gradient (``grad``, or f's second result)."""

    check = "check_function"

    def __init__(self, f, grad, inputs: Inputs):
        super().__init__(inputs)
        self.f, self.grad = f, grad
        self.fname = label(f)
        self.gname = None if grad is None else label(grad)
        self.K = 1
        self.hint = " Pass wrt= naming the inputs your gradient is for."

    @property
    def title(self) -> str:
        names = ", ".join(self.inputs.names)
        return f"{self.fname}({names})" + ("" if self.grad is None else f" with gradient {self.gname}")

    @property
    def grad_what(self) -> str:
        return f"f {self.fname!r} (its second result)" if self.grad is None else f"grad {self.gname!r}"

    def _value(self, raw):
        if self.grad is None:
            if not (isinstance(raw, (tuple, list)) and len(raw) == 2):
                raise GradlabError(f"f {self.fname!r} must return (value, gradients) when grad is None; got "
                                   f"{_describe(raw)} (pass grad= if it returns the value alone)")
            raw = raw[0]
        arr = _numeric_value(raw, f"f {self.fname!r}", "a scalar (a number, or an array with one entry)")
        if arr.size != 1:
            raise GradlabError(f"f {self.fname!r} must return a scalar (a number, or an array with one entry); "
                               f"got an array of shape {arr.shape}")
        return arr.reshape(())[()]

    def scalars(self, theta):
        value = self._value(guarded(self.f, self.inputs.args(theta), f"f {self.fname!r}"))
        return np.array([value]), np.array([abs(value) * _precision(value)], dtype=np.float64)

    def _named(self, args):
        return [(f"{self.inputs.names[i]} (input {i})", a) for i, a in enumerate(args)]

    def first(self):
        """Your gradient at the inputs (K = 1 row), with purity and output findings."""
        findings = []
        args = self.inputs.args()
        snap = Snapshot(self._named(args))
        raw = guarded(self.f, args, f"f {self.fname!r}")
        self._value(raw)
        findings += mutation_findings(snap.writes(), f"f {self.fname!r}")
        if self.grad is not None:
            args = self.inputs.args()
            snap = Snapshot(self._named(args))
            raw = guarded(self.grad, args, self.grad_what)
            findings += mutation_findings(snap.writes(), self.grad_what)
        else:
            raw = raw[1]
        U, more, scale = parse_gradients(raw, self.inputs, self.grad_what, self.hint)
        return (None if U is None else U[None, :]), findings + more, scale

    def again(self):
        """Your gradient from a second call on fresh, identical copies (None if unusable)."""
        args = self.inputs.args()
        raw = guarded(self.grad or self.f, args, self.grad_what)
        if self.grad is None:
            raw = raw[1] if isinstance(raw, (tuple, list)) and len(raw) == 2 else None
        U, _, _ = parse_gradients(raw, self.inputs, self.grad_what, "")
        return None if U is None else U[None, :]

    def jax(self):
        """(values, gradient rows) of f traced by jax in float64; JaxUnavailable if it cannot be."""
        jax = jax_ready()
        import jax.numpy as jnp

        from gradlab._errors import user_code
        from gradlab.sources.autodiff import x64

        what = f"f {self.fname!r}"
        inputs, f, grad_none = self.inputs, self.f, self.grad is None

        def build():
            passthrough = self._passthrough_builder(jnp)

            def J(t, arrays):
                raw = f(*inputs.args(t, xp=jnp, passthrough=passthrough(arrays)))
                if grad_none:
                    raw = raw[0]
                return jnp.reshape(jnp.asarray(raw), ())

            # One compilation of the whole function, not one per operation.
            return jax.jit(jax.value_and_grad(J))

        try:
            with x64(), user_code():
                fn = self._compiled(f, ("function", grad_none), build)
                value, g = fn(jnp.asarray(self.inputs.theta0), self._dynamic_args(jnp))
                value, g = float(value), np.array(g, dtype=np.float64)
        except KeyboardInterrupt:
            raise
        except (Exception, SystemExit) as exc:  # what jax or the user's code raised while tracing
            raise JaxUnavailable(jax_reason(exc, what)) from None
        return np.array([value]), g[None, :]

    def sub(self, k: int, n: int):
        """The same check on the first ``k`` examples of a batch of ``n``."""
        return FunctionCase(self.f, self.grad, self.inputs.sliced(k, n))

    def masked(self, k: int, n: int):
        return None


class LayerCase(Case):
    """A layer: ``forward(*inputs) -> (out, cache)``, ``backward(dout, cache) -> gradients``."""

    check = "check_layer"

    def __init__(self, forward, backward, inputs: Inputs, douts=None, n_douts: int = 3, rng=None):
        super().__init__(inputs)
        self.forward, self.backward = forward, backward
        self.fname, self.bname = label(forward), label(backward)
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
            raise GradlabError(f"forward {self.fname!r} must return (out, cache); got {_describe(raw)}")
        out = _numeric_value(raw[0], f"forward {self.fname!r}", "(out, cache) with out a float array")
        if hasattr(self, "out_shape") and out.shape != self.out_shape:
            raise GradlabError(f"forward {self.fname!r} returned out of shape {out.shape} at a perturbed input; "
                               f"at the check point it was {self.out_shape}")
        return out

    def _call_forward(self, args):
        raw = guarded(self.forward, args, f"forward {self.fname!r}")
        return self._out(raw), raw[1]

    def scalars(self, theta):
        out, _ = self._call_forward(self.inputs.args(theta))
        flat = out.reshape(-1)
        return self._flat @ flat, (np.abs(self._flat) @ np.abs(flat)) * _precision(out)

    def _one(self, k: int, check_purity: bool):
        args = self.inputs.args()
        named = [(f"{self.inputs.names[i]} (input {i})", a) for i, a in enumerate(args)]
        snap_f = Snapshot(named) if check_purity else None
        _, cache = self._call_forward(args)
        findings = mutation_findings(snap_f.writes(), f"forward {self.fname!r}") if check_purity else []
        dout = self.douts[k].copy()
        aliases = {id(a): f"the array forward received as {name}" for name, a in named if isinstance(a, np.ndarray)}
        snap_b = Snapshot([("dout", dout), ("cache", cache)]) if check_purity else None
        raw = guarded(self.backward, (dout, cache), self.grad_what)
        if check_purity:
            findings += mutation_findings(snap_b.writes(aliases), self.grad_what)
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
        jax = jax_ready()
        import jax.numpy as jnp

        from gradlab._errors import user_code
        from gradlab.sources.autodiff import x64

        what = f"forward {self.fname!r}"
        inputs, forward = self.inputs, self.forward

        def build():
            passthrough = self._passthrough_builder(jnp)

            def vjps(t, arrays, D):
                def F(theta):
                    return jnp.asarray(forward(*inputs.args(theta, xp=jnp, passthrough=passthrough(arrays)))[0])

                out, vjp = jax.vjp(F, t)
                return out, jax.vmap(lambda d: vjp(d.astype(out.dtype))[0])(D)

            # One compilation of the forward pass and every dout's VJP (jit, vmap).
            return jax.jit(vjps)

        try:
            with x64(), user_code():
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
        return self.inputs.batch_size(extra_leading=self.out_shape[:1])

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
