"""``check_function``: the gradient of a scalar function of any inputs.

``f(*inputs)`` returns a scalar (or ``(value, gradients)``); your gradient -- ``grad(*inputs)``
or f's second result -- is checked against jax (when it traces f) and finite differences
of f, by the generic engine (:mod:`gradlab.check.generic`), with the float inputs named by
``wrt`` flattened into one vector (:mod:`gradlab.check.inputs`).
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

__all__ = ["check_function", "FunctionCase"]


class FunctionCase(Case):
    """A scalar function ``f(*inputs)`` and its gradient (``grad``, or f's second result)."""

    check = "check_function"

    def __init__(self, f, grad, inputs: Inputs):
        super().__init__(inputs)
        self.f, self.grad = f, grad
        self.fname = title(f)
        self.gname = None if grad is None else title(grad)
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
                                   f"{describe(raw)} (pass grad= if it returns the value alone)")
            raw = raw[0]
        arr = numeric_value(raw, f"f {self.fname!r}", "a scalar (a number, or an array with one entry)")
        if arr.size != 1:
            raise GradlabError(f"f {self.fname!r} must return a scalar (a number, or an array with one entry); "
                               f"got an array of shape {arr.shape}")
        return arr.reshape(())[()]

    def scalars(self, theta):
        value = self._value(call_user(self.f, self.inputs.args(theta), f"f {self.fname!r}"))
        return np.array([value]), np.array([abs(value) * precision(value)], dtype=np.float64)

    def _named(self, args):
        return [(f"{self.inputs.names[i]} (input {i})", a) for i, a in enumerate(args)]

    def first(self):
        """Your gradient at the inputs (K = 1 row), with purity and output findings."""
        findings = []
        args = self.inputs.args()
        snap = Snapshot(self._named(args))
        raw = call_user(self.f, args, f"f {self.fname!r}")
        self._value(raw)
        findings += input_mutations(snap.writes(), f"f {self.fname!r}")
        if self.grad is not None:
            args = self.inputs.args()
            snap = Snapshot(self._named(args))
            raw = call_user(self.grad, args, self.grad_what)
            findings += input_mutations(snap.writes(), self.grad_what)
        else:
            raw = raw[1]
        U, more, scale = parse_gradients(raw, self.inputs, self.grad_what, self.hint)
        return (None if U is None else U[None, :]), findings + more, scale

    def again(self):
        """Your gradient from a second call on fresh, identical copies (None if unusable)."""
        args = self.inputs.args()
        raw = call_user(self.grad or self.f, args, self.grad_what)
        if self.grad is None:
            raw = raw[1] if isinstance(raw, (tuple, list)) and len(raw) == 2 else None
        U, _, _ = parse_gradients(raw, self.inputs, self.grad_what, "")
        return None if U is None else U[None, :]

    def jax(self):
        """(values, gradient rows) of f traced by jax in float64; JaxUnavailable if it cannot be."""
        jax = ready()
        import jax.numpy as jnp

        what = f"f {self.fname!r}"
        inputs, f, grad_none = self.inputs, self.f, self.grad is None

        def build():
            passthrough = self._passthrough_builder()

            def J(t, arrays):
                raw = f(*inputs.args(t, xp=jnp, passthrough=passthrough(arrays)))
                if grad_none:
                    raw = raw[0]
                return jnp.reshape(jnp.asarray(raw), ())

            # One compilation of the whole function, not one per operation.
            return jax.jit(jax.value_and_grad(J))

        try:
            with autodiff.x64(), user_code():
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



def check_function(f, grad=None, *inputs, wrt=None, names=None, mode: str = "auto",
                   against=("jax", "numeric"), seed: int = 0) -> GradientReport:
    """Check the gradient of a scalar function of any inputs: who is wrong, where, and why.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` returns a scalar -- or ``(value, gradients)`` when ``grad`` is None.
    grad : callable or None
        ``grad(*inputs)`` returns the gradient(s) with respect to the inputs named by
        ``wrt``: one array per input, in order (a single array when there is one).
    *inputs
        The point to check at. Float arrays are differentiated (by default); anything
        else -- labels, a settings dict, a regularisation strength -- passes through
        untouched. Nothing gradlab calls receives the caller's own objects: each call gets
        fresh copies.
    wrt : int, str or sequence of them, optional
        The inputs to differentiate, by position or by name (names come from ``f``'s
        signature, or ``names``). Default: every float array input. A float (not an
        array) may be named too.
    names : sequence of str, optional
        A name per input, for reports (default: ``f``'s parameter names).
    mode : {"auto", "full", "fast"}
        ``"full"`` compares every entry; ``"fast"`` random directions and bisection (for
        large inputs; never more evaluations than a full check); ``"auto"``: full up to
        :data:`gradlab._anygrad.engine.FULL_MODE_MAX_ENTRIES` entries.
    against : sequence of {"jax", "numeric"}, default ("jax", "numeric")
        The witnesses. jax is used whenever it can trace ``f`` (written against the array
        API, ``xp = array_namespace(x)``, or with ``jax.numpy``); when it cannot, the
        report says why in one line and judges with two numeric methods (central
        differences, and the complex step where ``f`` proves analytic, else Richardson).
    seed : int, default 0
        Seeds the random directions (complex-step trial, fast mode).

    Returns
    -------
    GradientReport
        ``.ok``, ``.findings`` (each naming the input by name and position, the wrong
        entries as multi-indices and their groups), ``.to_dict()``, ``str()``.

    Raises
    ------
    GradlabError
        Bad arguments; ``f`` returning something that is not a scalar.
    UserCodeError
        ``f`` or ``grad`` raised at the check point.

    Examples
    --------
    >>> import numpy as np, gradlab
    >>> def f(w, X, y):
    ...     r = X @ w - y
    ...     return 0.5 * r @ r, X.T @ r * 2          # the 2 is a bug
    >>> rng = np.random.default_rng(0)
    >>> report = gradlab.check_function(f, None, rng.normal(size=3), rng.normal(size=(5, 3)),
    ...                                 rng.normal(size=5), wrt="w", against=("numeric",))
    >>> report.ok, report.findings[0].kind, report.findings[0].input
    (False, 'constant_factor', 'w')
    """
    if grad is not None and not callable(grad):
        raise v.fail("grad", grad, "a callable or None (the inputs follow it: check_function(f, None, x, ...))")
    if not inputs:
        raise GradlabError("check_function needs at least one input after f and grad: "
                           "check_function(f, grad, x, ...); got no inputs")
    callable_arg("f", f, len(inputs), "(*inputs)")
    if grad is not None:
        callable_arg("grad", grad, len(inputs), "(*inputs), like f")
    mode, against, seed = common_options(mode, against, seed)
    ins = Inputs(inputs, input_names(names, f, len(inputs)), wrt, what=f"f {title(f)!r}")
    with float64():
        case = FunctionCase(f, grad, ins)
        return run(case, mode=mode, against=against, seed=seed, info={})
