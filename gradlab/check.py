"""Check anyone's gradient function: blame, localisation, diagnosis, purity, fast mode.

:func:`check` builds a reproducible problem (random weights and data from a seed), calls
the user's gradient function **on copies**, and compares what it returns with gradlab's
independent witnesses: ``jax.grad`` of the shared cost (exact) and central differences
over the cost as a black box (numeric, with a per-entry error estimate).

Every diagnosis comes from an experiment the checker runs, never from a guess:

* **purity** -- the arguments handed to the user are copies; afterwards they are compared
  with pristine ones, entry by entry (which argument, which entries). Every reference is
  computed on pristine arrays, so a function that writes into its input cannot fool it;
* **repeated calls** -- two calls on identical copies must agree (non-determinism), and a
  call on the array the user's function changed shows what a trainer would see next;
* **lambda on and off** -- right at ``lam = 0`` and wrong at ``lam > 0`` means the
  regularisation term; its ratio to ``lam/m * Theta`` (and whether column 0 got it) says how;
* **bias zeroed** -- a gradient equal to the true gradient at weights whose bias column is
  zero comes from a forward pass that leaves out the bias;
* **ratios and layouts** -- a block that is ``c`` times the truth (``c = m``: no ``1/m``;
  ``c = -1``: a sign flip), or the truth transposed;
* **one example** -- with ``m = 1`` the bias column of ``D_l`` *is* ``delta_{l+1}``, so the
  user's deltas can be read off and compared with the true ones layer by layer: the first
  wrong delta names the layer where the error enters (and whether ``g'(z)`` is missing);
  layers below that only inherit it are said to do so.

Fast mode (large networks) replaces the ``2P`` cost evaluations of a full central-difference
check with random-direction checks (two evaluations per direction, whatever ``P``) and then
localises the wrong entries by bisection over parameter blocks with masked directions.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import inspect
import math
import os
import sys

import numpy as np

from gradlab import _resources
from gradlab import _validate as v
from gradlab._errors import GradlabError, UserCodeError, user_code
from gradlab._report import Report, fmt
from gradlab.compare import EXACT_NORM_RATIO, NUMERIC_SAFETY, _numeric_bound, _roundoff_floor
from gradlab.network import MAX_LAM, Network, Problem, _cost, _forward, random_init

__all__ = [
    "check",
    "shrink",
    "load_function",
    "CheckReport",
    "Finding",
    "UserCodeError",
    "KINDS",
    "FULL_MODE_MAX_PARAMS",
]

# --------------------------------------------------------------------------------------
# Constants (each with where it comes from)
# --------------------------------------------------------------------------------------

#: ``mode="auto"`` runs the full check (4P cost evaluations for the numeric gradient and its
#: error estimate) up to this many parameters; beyond it, fast mode. At 2,000 parameters
#: and a few examples the full check takes well under a second on one core.
FULL_MODE_MAX_PARAMS = 2000

#: Largest ``weight_scale``: check's random weights lie within +-sqrt(6 / (in + out)) <= +-sqrt(3)
#: times it, so 1e4 reaches weights of ~1e4, the range whose costs and gradients gradlab keeps
#: finite (every sigmoid is saturated long before). At 1e200 the gradient overflowed (found
#: by fuzzing the command line).
MAX_WEIGHT_SCALE = 1e4

#: A diagnosis "fits" when its model reproduces the user's numbers to this relative
#: accuracy (norm of the residual over the norm of the numbers). Round-off leaves about
#: 1e-15; a different bug leaves a residual of order 1. 1e-6 sits far from both.
FIT_RTOL = 1e-6

#: A ratio is "equal" to a named value (m, -1, 1/m, 2 ...) when within this relative
#: distance; ratios come out of fits good to FIT_RTOL, so 1e-4 is generous.
RATIO_RTOL = 1e-4

#: At most this many entries are listed with their values in one finding.
MAX_LISTED = 5

#: Fast mode: random directions per weight matrix in the first pass.
FAST_DIRECTIONS = 2

#: Fast mode: bisection stops splitting once this many wrong blocks are open at a time
#: (many wrong entries are then reported as blocks instead of single entries).
FAST_MAX_LEAVES = 16

#: Fast mode: a half's residual obtained by subtraction carries the sum of its parents'
#: tolerances; past this many single-probe tolerances a half that looks clean is re-probed.
FAST_MAX_ACCUMULATED = 4.0

#: Fast mode reports the single-entry error above which the chance of missing it is below
#: this probability.
FAST_REPORT_MISS = 1e-3

#: Step for directional central differences: eps^(1/3), the minimiser of truncation +
#: round-off (the same error model as :mod:`gradlab.sources.numeric`).
_EPS = float(np.finfo(np.float64).eps)
DIRECTION_STEP = _EPS ** (1.0 / 3.0)
#: Round-off of one cost evaluation in units of eps * |J| (same model as the numeric source).
DIRECTION_ROUNDOFF = 8.0

#: Relative tolerance between the user's cost and gradlab's: the same round-off argument
#: as EXACT_NORM_RATIO (two float64 evaluations of one sum).
COST_RTOL = EXACT_NORM_RATIO

#: Defaults of :func:`check`: lambda > 0 so that regularisation bugs can show (the lambda = 0
#: experiment is always run as well); 5 examples, as in the seed's gradient check.
DEFAULT_LAM = 1.0
DEFAULT_EXAMPLES = 5

_TINY = np.finfo(np.float64).tiny

#: The kinds of finding, with what each means.
KINDS = {
    "bad_output": "the function returned something that is not a finite gradient of the right shape",
    "input_mutation": "the function wrote into its arguments (params, X or y)",
    "non_determinism": "two calls on identical arguments returned different gradients",
    "forward_without_bias": "the gradient is the true one at weights with the bias column zeroed",
    "regularisation": "right at lam = 0, wrong at lam > 0: the regularisation term",
    "bias_column": "only column 0 (the bias) of a weight matrix is wrong",
    "constant_factor": "a block is a constant multiple of the true gradient",
    "sign_flip": "a block is minus the true gradient",
    "transposed": "a block holds the true numbers transposed",
    "one_layer": "the error enters at one layer (the layers below at most inherit it)",
    "entries": "individual entries are wrong, no simpler pattern fits",
    "numeric_problem": "finite differences disagree with two exact gradients that agree",
    "cost_mismatch": "the user's cost differs from gradlab's cost",
    "cost_suspect": "the exact and numeric references disagree with each other",
}

_SIGNATURES = ("gradlab", "seed")
_MODES = ("auto", "full", "fast")
_AGAINST = ("jax", "backprop", "numeric")




# --------------------------------------------------------------------------------------
# Findings and the report
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Finding:
    """One thing the checker found, with where, how much, and why it thinks so.

    ``layer`` is 1 for Theta1, 2 for Theta2 ... (None for findings about X, y, the cost
    or the whole call); ``rows`` are units and ``columns`` inputs of that layer, column 0
    the bias. ``blame`` is ``"user"`` (your function), ``"numeric"`` (a finite-difference
    problem, not your fault) or ``"cost"`` (the cost itself is suspect).
    """

    kind: str
    layer: int | None
    sentence: str
    experiment: str
    rows: list = dataclasses.field(default_factory=list)
    columns: list = dataclasses.field(default_factory=list)
    values: list = dataclasses.field(default_factory=list)
    error: float | None = None
    rel_error: float | None = None
    blame: str = "user"
    cause: str | None = None
    extra: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return d


class CheckReport(Report):
    """The result of :func:`check`.

    Attributes
    ----------
    ok : bool
        True when nothing is blamed on the user's function or the cost (a numerical
        problem of finite differences alone does not fail the check).
    findings : list[Finding]
    info : dict
        The case (sizes, m, lam, seed, weight_scale, signature, mode) and the comparisons.
    """

    def __init__(self, info, findings, comparisons, fast=None, reproducer=None):
        self.info = dict(info)
        self.findings = list(findings)
        self.comparisons = dict(comparisons)
        self.fast = fast
        self.reproducer = reproducer
        self.ok = not any(f.blame in ("user", "cost") for f in self.findings)

    @property
    def kinds(self) -> list[str]:
        """The kinds of the findings, in order."""
        return [f.kind for f in self.findings]

    def to_dict(self) -> dict:
        d = {"ok": self.ok, **self.info, "comparisons": self.comparisons,
             "findings": [f.to_dict() for f in self.findings]}
        if self.fast is not None:
            d["fast"] = self.fast
        if self.reproducer is not None:
            d["reproducer"] = self.reproducer
        return d

    def _text(self) -> str:
        i = self.info
        lines = [
            f"gradlab check: {i['function']} (signature {i['signature']}), sizes "
            f"{','.join(map(str, i['sizes']))}, {i['n_params']} parameters, m={i['examples']}, "
            f"lambda={i['lam']:g}, seed={i['seed']}, mode={i['mode']}"
        ]
        for name, c in self.comparisons.items():
            verdict = "agree" if c["ok"] else "DIFFER"
            measure = "" if c["value"] is None else f"{c['measure']} {fmt(c['value'])}; "
            lines.append(f"  {name:<18} {verdict:<7} ({measure}criterion {c['criterion']})")
        if self.fast is not None:
            f = self.fast
            lines.append(
                f"  fast mode: {f['directions_per_layer']} random direction(s) per layer, "
                f"{f['cost_evaluations']} cost evaluations (a full central-difference check needs "
                f"{f['full_check_evaluations']})"
            )
            for lay in f["layers"]:
                lines.append(
                    f"    Theta{lay['layer']}: a single wrong entry off by more than "
                    f"{fmt(lay['detectable_error'])} is missed with probability < {FAST_REPORT_MISS:g}"
                )
        if "blame" in i:
            lines.append(f"  blame for the values: {i['blame']}")
        lines.append("")
        if not self.findings:
            lines.append("no problems found: the gradient agrees with every witness")
        for n, f in enumerate(self.findings, start=1):
            where = "" if f.layer is None else f" Theta{f.layer}"
            lines.append(f"{n}. [{f.kind}]{where}" + (f" ({f.cause})" if f.cause else "")
                         + ("" if f.blame == "user" else f"  -- blame: {f.blame}"))
            lines.append(_wrap(f.sentence, "   "))
            if f.rows or f.columns:
                lines.append(f"   rows (units) {_ranges(f.rows)}; columns (inputs, 0 = bias) {_ranges(f.columns)}")
            for val in f.values:
                loc = ", ".join(f"{k}={val[k]}" for k in ("row", "column", "index", "entry") if k in val)
                nums = ", ".join(f"{k}={val[k]:.6g}" for k in ("yours", "expected", "before", "after", "first", "second") if k in val)
                lines.append(f"     {loc}: {nums}")
            lines.append(_wrap("experiment: " + f.experiment, "   "))
        if self.reproducer is not None:
            r = self.reproducer
            lines += ["", f"smallest failing case found by shrinking ({r['tried']} cases tried):",
                      f"  sizes={r['sizes']}, lam={r['lam']!r}, m={r['examples']}, seed={r['seed']}, "
                      f"weight_scale={r['weight_scale']!r}",
                      f"  command: {r['command']}", "  pytest:"]
            lines += ["    " + line for line in r["pytest"].splitlines()]
        lines.append("")
        lines.append("verdict: " + ("PASS" if self.ok else "FAIL") + (
            "" if self.ok else f" ({sum(f.blame in ('user', 'cost') for f in self.findings)} finding(s))"))
        return "\n".join(lines)


def _wrap(text: str, indent: str, width: int = 96) -> str:
    import textwrap

    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def _ranges(items) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2, 5``."""
    items = sorted(set(int(i) for i in items))
    if not items:
        return "-"
    out, start, prev = [], items[0], items[0]
    for i in items[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(out)


# --------------------------------------------------------------------------------------
# Loading a user's function (CLI) and calling it safely
# --------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    try:
        text = " ".join(str(exc).split())
    except Exception as inner:  # the user's exception class may fail to describe itself
        text = f"(no message: str() of it raised {type(inner).__name__})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _short(path: str) -> str:
    """A path as a person would type it: relative when it lies under the working folder."""
    try:
        rel = os.path.relpath(path)
    except (ValueError, OSError):  # another drive (Windows); the working folder was deleted
        return path
    return path if rel.startswith(os.pardir) else rel


def _raised_where(exc: BaseException, user_file: str | None) -> str:
    """`` (FILE, line N)``: where the user's code raised -- the innermost frame in the user's
    file when there is one (the error may surface inside numpy), else the innermost frame."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    own = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in frames if not os.path.abspath(f.filename).startswith(own + os.sep)]
    if not frames:
        return ""
    mine = [f for f in frames if user_file and os.path.abspath(f.filename) == os.path.abspath(user_file)]
    frame = (mine or frames)[-1]
    return f" ({_short(frame.filename)}, line {frame.lineno}, in {frame.name})"


def load_function(target: str, name: str = "target"):
    """Load ``PATH.py:FUNC`` or ``module:FUNC`` and return the function.

    Parameters
    ----------
    target : str
        A Python file and a function name (``student.py:my_gradient``) or an importable
        module and a function name (``mypackage.grads:my_gradient``).
    name : str
        How error messages name the argument (the CLI's ``target`` or ``--cost``).

    Returns
    -------
    callable

    Raises
    ------
    GradlabError
        Malformed target, file or module not found, a folder or a file that is not
        Python source (``.py``), an unreadable file, no such function, not callable.
    UserCodeError
        Importing the user's module failed: a syntax error (the message names the file
        and line) or an exception while running it (the message names the exception and
        where it was raised). Also ``SystemExit``: a module that calls ``sys.exit()`` does
        not end gradlab.
    """
    if not isinstance(target, str) or target.count(":") < 1:
        raise v.fail(name, target, "PATH.py:FUNC or module:FUNC")
    where, _, func = target.rpartition(":")
    if not where or not func.isidentifier():
        raise v.fail(name, target, "PATH.py:FUNC or module:FUNC")
    module = _load_module(where, name)
    fn = getattr(module, func, None)
    if fn is None:
        raise GradlabError(f"{name} names no function {func!r} in {where}; got {name}={target!r}")
    if not callable(fn):
        raise GradlabError(f"{name} must name a function; {func!r} in {where} is a {type(fn).__name__}")
    return fn


_MODULE_CACHE: dict = {}

# _USER_FAILURES: what the user's code raises is reported, whatever it is -- an Exception,
# SystemExit (sys.exit() in the module or function), GeneratorExit or the user's own
# BaseException subclass (which escaped main()'s last line of defence as a bare traceback).
# Only KeyboardInterrupt passes: it is the person at the keyboard, not the code.


def _import_failed(name: str, where: str, exc: BaseException, user_file: str | None) -> UserCodeError:
    if isinstance(exc, SyntaxError):
        line = f", line {exc.lineno}" if exc.lineno else ""
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        file = _short(exc.filename) if exc.filename else where
        return UserCodeError(f"{name}: syntax error in {file}{line}: {exc.msg}{text}")
    return UserCodeError(f"{name}: importing {where} raised {_one_line(exc)}{_raised_where(exc, user_file)}")


def _load_module(where: str, name: str):
    from gradlab import _files

    if where.endswith(".py") or os.sep in where or "/" in where:
        path = _files.absolute(where, name)
        if not os.path.lexists(path):
            raise GradlabError(f"{name}: file not found: {where}")
        _files.file_path(name, path)  # a folder, a device: refused with the reason
        if not where.endswith(".py"):
            # Only Python source is run: never a data or model file named by mistake.
            raise GradlabError(f"{name} must name a Python file (.py) and a function; got {where!r}")
        _files.read_bytes(name, path)  # unreadable: a gradlab error, not an import error
        if path in _MODULE_CACHE:
            return _MODULE_CACHE[path]
        # As `python PATH.py` would: the file's folder on the path, so its own imports work.
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        mod_name = "_gradlab_user_" + str(abs(hash(path)))
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        try:
            with user_code():
                spec.loader.exec_module(module)
        except KeyboardInterrupt:  # the user's Ctrl-C, not the code's failure
            raise
        except BaseException as exc:  # the user's code: report it, never a traceback (see _USER_FAILURES)
            raise _import_failed(name, where, exc, path) from exc
        _MODULE_CACHE[path] = module
        return module
    try:
        with user_code():
            return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and where.startswith(exc.name):
            raise GradlabError(f"{name}: no module named {where!r} (nor a file {where!r})") from None
        raise _import_failed(name, where, exc, None) from exc
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise _import_failed(name, where, exc, None) from exc


def _check_signature(fn, n_args: int, name: str, shape: str) -> None:
    """Refuse a function that cannot take ``n_args`` positional arguments, or that returns
    a generator or coroutine (whose body would never run) instead of a value."""
    try:
        target = inspect.unwrap(fn)
    except ValueError:  # a cycle of __wrapped__
        target = fn
    if inspect.isgeneratorfunction(target) or inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        kind = "a coroutine function" if inspect.iscoroutinefunction(target) else "a generator function"
        raise GradlabError(f"{name} must be a function that returns its result; got {_fn_name(fn)}, "
                           f"{kind} (its body runs only when iterated or awaited)")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # builtins and C functions: let the call decide
    try:
        sig.bind(*range(n_args))
    except TypeError:
        raise GradlabError(
            f"{name} must take {n_args} positional arguments {shape}; got "
            f"{getattr(fn, '__name__', fn)!s}{sig}"
        ) from None


def _guarded(fn, what: str, name: str, n_args: int, shape: str):
    """The user's callable as ``(call, label)``: its signature checked now; each call runs
    under :func:`~gradlab._errors.user_code`, and an exception (or ``sys.exit``) inside it
    becomes a UserCodeError naming ``what``, the function, the exception and where it was
    raised, the original chained (``__cause__``) so its traceback is kept."""
    label = getattr(fn, "__name__", None) or type(fn).__name__
    _check_signature(fn, n_args, name, shape)
    code = getattr(fn, "__code__", None)
    file = code.co_filename if code is not None else None

    @functools.wraps(fn)
    def call(*args):
        try:
            with user_code():
                return fn(*args)
        except (Exception, SystemExit) as exc:  # SystemExit: sys.exit() in the user's code
            raise UserCodeError(f"{what} {label!r} raised {_one_line(exc)}{_raised_where(exc, file)}") from exc

    return call, label


def _fn_name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


@dataclasses.dataclass
class _Call:
    """What one call of the user's function returned and what it wrote."""

    raw: object
    writes: dict  # argument name -> (before, after) arrays, only when changed
    params_after: np.ndarray


def _writable_problem(problem: Problem) -> Problem:
    """A Problem whose arrays are fresh writeable copies (so writes can be seen, not refused)."""
    new = object.__new__(Problem)
    X = problem.X.copy()
    Y = problem.Y.copy()
    labels = None if problem.labels is None else problem.labels.copy()
    for field, val in (("network", problem.network), ("X", X), ("y", labels if labels is not None else Y),
                       ("_Y", Y), ("_labels", labels), ("lam", problem.lam), ("_cache", {})):
        object.__setattr__(new, field, val)
    return new


class _Caller:
    """Calls the user's gradient (or cost) function on copies and records what it wrote."""

    def __init__(self, fn, signature: str, network: Network, what: str = "grad_fn"):
        self.fn = fn
        self.signature = signature
        self.network = network
        self.what = what
        self.name = _fn_name(fn)
        try:
            code = getattr(inspect.unwrap(fn), "__code__", None)
        except ValueError:  # a cycle of __wrapped__
            code = None
        self.file = code.co_filename if code is not None else None

    def __call__(self, problem: Problem, params: np.ndarray, *, inplace: np.ndarray | None = None) -> _Call:
        theta = params.copy() if inplace is None else inplace
        if self.signature == "seed":
            s = problem.network.sizes
            X = problem.X.copy()
            y = problem.labels.copy()
            args = (theta, s[0], s[1], s[2], X, y, problem.lam)
            named = {"X": (problem.X, X), "y": (problem.labels, y)}
        else:
            prob = _writable_problem(problem)
            args = (prob, theta)
            named = {"problem.X": (problem.X, prob.X), "problem.y": (problem.y, prob.y)}
            if prob.labels is not None:
                named["problem.Y"] = (problem.Y, prob.Y)
        before = params.copy() if inplace is None else inplace.copy()
        try:
            with user_code():
                raw = self.fn(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # see _USER_FAILURES
            raise UserCodeError(f"{self.what} {self.name} raised {_one_line(exc)}"
                                f"{_raised_where(exc, self.file)}") from exc
        writes = {}
        if not _same(before, theta):
            writes["params"] = (before, theta.copy())
        for key, (orig, given) in named.items():
            if not _same(orig, given):
                writes[key] = (np.asarray(orig), np.array(given, copy=True))
        return _Call(raw, writes, theta)


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b))


# --------------------------------------------------------------------------------------
# Small numerical helpers
# --------------------------------------------------------------------------------------


def _norm_ratio(a, b) -> float:
    num = float(np.linalg.norm(a - b))
    if num == 0.0:
        return 0.0
    den = float(np.linalg.norm(a + b))
    return num / den if den > 0 else math.inf


def _fits(actual, model) -> bool:
    """Does ``model`` reproduce ``actual`` to FIT_RTOL (relative to the larger norm)?"""
    actual, model = np.asarray(actual, float), np.asarray(model, float)
    scale = max(float(np.linalg.norm(actual)), float(np.linalg.norm(model)))
    return float(np.linalg.norm(actual - model)) <= FIT_RTOL * scale if scale > 0 else True


def _is(value: float, target: float) -> bool:
    """``value`` equals the named ratio ``target`` (relative; absolute near 0)."""
    return abs(value - target) <= RATIO_RTOL * max(abs(target), 1.0)


def _factor(actual, ref) -> float | None:
    """The scalar c with actual = c * ref, when one fits; else None."""
    den = float(np.dot(ref.ravel(), ref.ravel()))
    if den == 0.0:
        return None
    c = float(np.dot(actual.ravel(), ref.ravel())) / den
    return c if _fits(actual, c * ref) else None


def _factor_name(c: float, m: int) -> str | None:
    """Name a ratio in the words of a student's usual slip."""
    if _is(c, -1.0):
        return "sign flipped"
    if m > 1 and _is(c, float(m)):
        return f"missing 1/m (factor m = {m})"
    if m > 1 and _is(c, 1.0 / m):
        return f"divided by m twice (factor 1/m = 1/{m})"
    if m > 1 and _is(c, -float(m)):
        return f"sign flipped and missing 1/m (factor -m = {-m})"
    if _is(c, 2.0):
        return "counted twice (factor 2)"
    if _is(c, 0.5):
        return "halved (factor 1/2)"
    if _is(c, 0.0):
        return "all zero"
    return None


def _entry_tolerance(a, b) -> float:
    """Per-entry tolerance between two exact gradients: EXACT_NORM_RATIO of their size."""
    return EXACT_NORM_RATIO * (float(np.linalg.norm(a)) + float(np.linalg.norm(b)))


def _agree(a, b, floor) -> bool:
    """Two exact gradients agree: Ng's norm criterion, or every entry within its round-off floor."""
    return _norm_ratio(a, b) <= EXACT_NORM_RATIO or bool(np.all(np.abs(a - b) <= floor))


def _bad(a, b, floor) -> np.ndarray:
    """Indices of the entries where two exact gradients differ beyond round-off."""
    diff = np.abs(a - b)
    idx = np.flatnonzero(diff > np.maximum(_entry_tolerance(a, b), floor))
    if idx.size == 0:  # the norm fails though no single entry stands out: list the worst
        idx = np.flatnonzero(diff > floor)
        idx = idx[np.argsort(-diff[idx])][:MAX_LISTED]
    return idx


def _values(network, layer, idx, yours, expected, limit=MAX_LISTED):
    """The first few wrong entries of one layer, as dicts."""
    out = []
    for i in idx[:limit]:
        _, row, col = network.locate(int(i))
        out.append({"row": row, "column": col, "index": int(i), "yours": float(yours[i]),
                    "expected": float(expected[i]), "error": float(abs(yours[i] - expected[i]))})
    return out


def _rows_cols(network, idx):
    rows, cols = set(), set()
    for i in idx:
        _, r, c = network.locate(int(i))
        rows.add(r)
        cols.add(c)
    return sorted(rows), sorted(cols)


def _layer_slices(network):
    o = network.offsets
    return [slice(o[k], o[k + 1]) for k in range(len(network.shapes))]


def _entry_finding(network, kind, layer, idx, U, R, sentence, experiment, blame="user", cause=None, **extra):
    rows, cols = _rows_cols(network, idx)
    err = np.abs(U[idx] - R[idx]) if len(idx) else np.zeros(0)
    rel = err / np.maximum(np.maximum(np.abs(U[idx]), np.abs(R[idx])), _TINY) if len(idx) else err
    return Finding(kind, layer, sentence, experiment, rows, cols, _values(network, layer, idx, U, R),
                   float(err.max()) if err.size else None, float(rel.max()) if rel.size else None,
                   blame, cause, extra)


# --------------------------------------------------------------------------------------
# Output checks, purity and repeat experiments
# --------------------------------------------------------------------------------------


def _as_gradient(raw, network: Network, signature: str, name: str):
    """(gradient, finding): the finding is a bad_output when the result is unusable."""
    n = network.n_params
    exp = f"looked at what {name} returned: type, shape, dtype, finite entries"
    try:
        arr = np.asarray(raw)
    except Exception:  # pragma: no cover - exotic objects
        arr = np.asarray(None, dtype=object)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        what = type(raw).__name__ if arr.dtype == object else f"an array of dtype {arr.dtype}"
        return None, Finding("bad_output", None, f"{name} returned {what}; a gradient is a float array of "
                             f"length {n} (one entry per weight).", exp, cause=f"type {what}")
    accepted = [(n,)] + ([(n, 1), (1, n)] if signature == "seed" else [])
    if arr.shape not in accepted:
        return None, Finding("bad_output", None, f"{name} returned an array of shape {arr.shape}; the gradient "
                             f"of the {n} weights must have shape ({n},) -- Theta1's gradient flattened row by row, "
                             "then Theta2's, and so on.", exp, cause=f"shape {arr.shape}")
    grad = np.array(arr.reshape(n), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(grad))
    if bad.size:
        layer = network.locate(int(bad[0]))[0]
        rows, cols = _rows_cols(network, bad)
        vals = [{"row": network.locate(int(i))[1], "column": network.locate(int(i))[2], "index": int(i),
                 "entry": str(grad[i])} for i in bad[:MAX_LISTED]]
        return None, Finding("bad_output", layer, f"{name} returned {bad.size} non-finite entr"
                             f"{'y' if bad.size == 1 else 'ies'} (NaN or inf), the first in Theta{layer}. "
                             "A log of a saturated sigmoid (log(0)) or a division by zero is the usual cause.",
                             exp, rows, cols, vals, cause="NaN/inf")
    if arr.dtype != np.float64:
        low = arr.dtype.kind == "f" and np.finfo(arr.dtype).eps > _EPS
        sentence = (f"{name} returned dtype {arr.dtype}, not float64. " + (
            "It is judged at that precision (round-off bounds scaled by its eps), so correct float32 code is "
            "not flagged; but bugs smaller than that precision cannot be seen -- compute in float64 to check "
            "closely." if low else "A gradient is a float array; integers cannot hold it."))
        return grad, Finding("bad_output", None, sentence, exp, cause=f"dtype {arr.dtype}",
                             blame="precision" if low else "user", extra={"dtype": str(arr.dtype)})
    return grad, None


def _mutation_findings(network, call: _Call, again: np.ndarray | None, first: np.ndarray, name: str):
    out = []
    for arg, (before, after) in call.writes.items():
        changed = np.argwhere(~((before == after) | (np.isnan(before) & np.isnan(after)))) if before.shape == after.shape else None
        if arg == "params" and changed is not None:
            flat = changed[:, 0]
            consequence = ""
            if again is not None:
                consequence = (f" Called again on the array it changed, it returns a different gradient "
                               f"(||g1-g2||/||g1+g2|| = {_norm_ratio(first, again):.3g}): a trainer that "
                               "passes the same vector each step would see weights your function damaged.")
            for layer, sl in enumerate(_layer_slices(network), start=1):
                idx = flat[(flat >= sl.start) & (flat < sl.stop)]
                if not idx.size:
                    continue
                rows, cols = _rows_cols(network, idx)
                vals = [{"row": network.locate(int(i))[1], "column": network.locate(int(i))[2], "index": int(i),
                         "before": float(before[i]), "after": float(after[i])} for i in idx[:MAX_LISTED]]
                only_bias = cols == [0]
                zeroed = bool(np.all(after[idx] == 0))
                cause = ("bias column zeroed in place" if only_bias and zeroed else
                         "bias column changed in place" if only_bias else "weights changed in place")
                sentence = (f"{name} wrote into its params argument: {idx.size} entr{'y' if idx.size == 1 else 'ies'} "
                            f"of Theta{layer}" + (" -- the whole bias column (column 0) --" if only_bias else "")
                            + (" set to 0" if zeroed else " changed") + ". The weight matrices you reshape from "
                            "params are views of the caller's vector, so writing into them changes the caller's "
                            "weights; copy first (Theta = params[...].reshape(...).copy())." + consequence)
                out.append(Finding("input_mutation", layer, sentence,
                                   "called the function on a copy of params and compared the copy with the "
                                   "pristine vector afterwards; then called it again on the changed copy",
                                   rows, cols, vals, cause=cause, extra={"argument": "params"}))
        else:
            if changed is None:
                entries = []
                text = f"its shape changed from {before.shape} to {after.shape}"
                n_changed = before.size
            else:
                n_changed = len(changed)
                entries = [{"entry": ",".join(map(str, e)), "before": float(before[tuple(e)]),
                            "after": float(after[tuple(e)])} for e in changed[:MAX_LISTED]]
                text = f"{n_changed} entr{'y' if n_changed == 1 else 'ies'} changed"
            out.append(Finding("input_mutation", None,
                               f"{name} wrote into its {arg} argument ({text}). The caller's data must stay as it "
                               "was: the next call, or the next epoch of training, would see changed data. Work on "
                               "a copy.", f"called the function on a copy of {arg} and compared it afterwards",
                               values=entries, cause=f"{arg} changed", extra={"argument": arg, "changed": int(n_changed)}))
    return out


# --------------------------------------------------------------------------------------
# The case: a reproducible problem from (sizes, examples, lam, seed, weight_scale)
# --------------------------------------------------------------------------------------


def _case(network: Network, examples: int, lam: float, seed: int, weight_scale: float):
    """Random weights (the seed's initialiser, scaled), inputs in [-1, 1], every class present."""
    rng = np.random.default_rng(seed)
    params = random_init(network, rng) * weight_scale
    X = rng.uniform(-1.0, 1.0, size=(examples, network.n_inputs))
    y = rng.permutation(np.arange(examples) % network.n_outputs)
    return Problem(network, X, y, lam), params


def _reference(name: str):
    from gradlab.sources import SOURCES

    src = SOURCES[name]
    return lambda problem, params: np.asarray(src.gradient(problem, params.copy()), dtype=np.float64)


# --------------------------------------------------------------------------------------
# Diagnosis (full mode): experiments against an exact reference
# --------------------------------------------------------------------------------------


class _Diagnoser:
    """Runs the experiments that explain a disagreement with the exact reference."""

    def __init__(self, caller: _Caller, signature: str, ref, ref_name: str, problem: Problem, params, floor):
        self.caller, self.signature, self.ref, self.ref_name = caller, signature, ref, ref_name
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
        grad, _ = _as_gradient(call.raw, self.network, self.signature, self.name)
        return grad

    def run(self, U, R) -> list[Finding]:
        problem, params, net = self.problem, self.params, self.network
        findings: list[Finding] = []
        lam = problem.lam
        if lam > 0:
            p0 = problem.with_lam(0.0)
            U0, R0 = self.user(p0, params), self.ref(p0, params)
            if U0 is None:
                return findings
        else:
            p0, U0, R0 = problem, U, R
        if not _agree(U0, R0, self.floor):
            findings = self._data_term(p0, U0, R0)
        if lam > 0:
            findings += self._regularisation(U - U0, R - R0, findings)
        return findings

    # -- lambda on and off ---------------------------------------------------------------
    def _regularisation(self, user_reg, ref_reg, data_findings) -> list[Finding]:
        net, p, params = self.network, self.problem, self.params
        out = []
        lam, m = p.lam, p.m
        exp = (f"ran your function at lambda = {lam:g} and at lambda = 0; the difference is your regularisation "
               f"term, compared with lam/m * Theta (column 0 excluded)")
        with_bias = (lam / m) * params
        for layer, sl in enumerate(_layer_slices(net), start=1):
            u, r = user_reg[sl], ref_reg[sl]
            if _agree(u, r, 2 * self.floor[sl]):
                continue
            rows_, cols_ = net.shapes[layer - 1]
            # The same slip as in the data term (a factor, a transpose) explains it already.
            same = [f for f in data_findings if f.layer == layer and (
                (f.kind == "transposed" and _fits(u.reshape(cols_, rows_).T.ravel(), r))
                or (f.kind in ("constant_factor", "sign_flip") and _fits(u, f.extra["factor"] * r)))]
            if same:
                same[0].extra["also_in_regularisation"] = True
                continue
            idx = sl.start + _bad(u, r, 2 * self.floor[sl])
            full_u = u.reshape(rows_, cols_)
            cause = None
            if _fits(u, with_bias[sl]):
                cause = "bias regularised"
                sentence = (f"Theta{layer} is right at lambda = 0 and wrong at lambda = {lam:g}: you regularise the "
                            "bias column. The regularisation term is lam/m * Theta with column 0 (the bias weights) "
                            "left out -- set it to zero before adding.")
            else:
                w = (_grid(net, layer) - sl.start)[:, 1:].ravel()
                c = _factor(u[w], r[w])
                bias_ok = np.allclose(full_u[:, 0], 0.0)
                if c is not None and bias_ok:
                    said = {m: "lam where lam/m belongs", 0.5: "lam/(2m), the cost's factor, where the gradient "
                            "needs lam/m (the 2 of the square's derivative cancels it)", 0: "no regularisation at all",
                            2: "2 lam/m: the 2 from differentiating the square is already cancelled by the cost's 1/2",
                            1.0 / m: "lam/m^2 (divided by m twice)"}
                    label = next((t for k, t in said.items() if _is(c, float(k))), None)
                    cause = f"regularisation factor {c:.6g} x lam/m" + (f": {label}" if label else "")
                    sentence = (f"Theta{layer} is right at lambda = 0 and wrong at lambda = {lam:g}: your "
                                f"regularisation term is {c:.6g} times lam/m * Theta"
                                + (f" -- {label}." if label else ".") + " The gradient of lam/(2m) * sum(Theta^2) is "
                                "lam/m * Theta (bias column excluded).")
                else:
                    cause = "regularisation term wrong"
                    sentence = (f"Theta{layer} is right at lambda = 0 and wrong at lambda = {lam:g}: the error is in "
                                "your regularisation term, which should be lam/m * Theta with column 0 set to zero.")
            out.append(_entry_finding(net, "regularisation", layer, idx, user_reg, ref_reg, sentence, exp, cause=cause))
        return out

    # -- the data term ---------------------------------------------------------------------
    def _data_term(self, p0, U0, R0) -> list[Finding]:
        net = self.network
        slices = _layer_slices(net)
        wrong = [k + 1 for k, sl in enumerate(slices) if not _agree(U0[sl], R0[sl], self.floor[sl])]
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
            idx = sl.start + _bad(u, r, self.floor[sl])
            c = _factor(u, r)
            if c is not None:
                label = _factor_name(c, m)
                everywhere = len(wrong) == len(slices)
                kind = "sign_flip" if _is(c, -1.0) else "constant_factor"
                sentence = (f"every entry of Theta{layer}'s gradient is {c:.6g} times the true value"
                            + (f" ({label})" if label else "") + "."
                            + (" The same happens in every layer, so look at what all layers share: the output "
                               "error delta_L = h - y and the final division by m." if everywhere else ""))
                if label and label.startswith("missing 1/m"):
                    sentence += " Divide the accumulated sum delta^T a by m, the number of examples."
                elif _is(c, -1.0):
                    sentence += " You return the gradient of -J: check delta_L = h - y (not y - h)."
                f = _entry_finding(net, kind, layer, idx, U0, R0, sentence,
                                   "fitted your block as a constant times the true block (least squares) "
                                   "at lambda = 0", cause=label or f"factor {c:.6g}", factor=c)
                if label or kind == "sign_flip":
                    out.append(f)
                    continue
                pending[layer] = f
            if rows_ > 1 or cols_ > 1:
                if _fits(u.reshape(cols_, rows_).T.ravel(), r):
                    out.append(_entry_finding(
                        net, "transposed", layer, idx, U0, R0,
                        f"Theta{layer}'s gradient has the right numbers in the wrong places: read as a "
                        f"{cols_}x{rows_} matrix and transposed, it is exactly the true {rows_}x{cols_} gradient. "
                        "You formed a^T delta instead of delta^T a (or flattened column by column); Theta"
                        f"{layer}'s gradient must have Theta{layer}'s shape, flattened row by row.",
                        "read your block with the transposed shape and compared it with the true block",
                        cause="transposed block"))
                    continue
            local = _grid(net, layer) - sl.start
            bias_idx, weight_idx = local[:, 0], local[:, 1:].ravel()
            if _agree(u[weight_idx], r[weight_idx], self.floor[sl][weight_idx]):
                cb = _factor(u[bias_idx], r[bias_idx])
                label = None if cb is None else _factor_name(cb, m)
                out.append(_entry_finding(
                    net, "bias_column", layer, idx, U0, R0,
                    f"only the bias column (column 0) of Theta{layer}'s gradient is wrong; every weight column is "
                    "right" + (f" (the bias column is {label})" if label else "") + ". The bias unit is a constant "
                    f"1, so the bias gradient of a unit is the sum of its delta over the examples, divided by m.",
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
        weight_cols = np.concatenate([_grid(net, k)[:, 1:].ravel() for k in range(1, n + 1)])
        for size in range(1, n + 1):
            for subset in _subsets(n, size):
                zeroed = params.copy()
                for layer in subset:
                    zeroed[_layer_slices(net)[layer - 1]].reshape(net.shapes[layer - 1])[:, 0] = 0.0
                if np.array_equal(zeroed, params):
                    continue
                Rz = self.ref(p0, zeroed)
                if _agree(U0[weight_cols], Rz[weight_cols], self.floor[weight_cols]):
                    names = " and ".join(f"Theta{k}" for k in subset)
                    out = []
                    for layer in subset:
                        sl = _layer_slices(net)[layer - 1]
                        R0 = self.ref(p0, params)
                        idx = sl.start + _bad(U0[sl], R0[sl], self.floor[sl])
                        out.append(_entry_finding(
                            net, "forward_without_bias", layer, idx, U0, R0,
                            f"your gradient is exactly the true gradient at weights whose bias column in {names} is "
                            f"zero: your forward pass leaves out Theta{layer}'s bias weights (column 0). Prepend the "
                            f"bias unit, a_l = [1, g(z_l)], and multiply by all of Theta{layer}.",
                            f"set column 0 of {names} to zero, recomputed the true gradient there, and compared it "
                            "with yours (weight columns)", cause=f"bias of Theta{layer} ignored in the forward pass"))
                    return out
        return []

    def _deltas(self, layers, U0, R0) -> list[Finding]:
        """With one example, read the user's deltas off the bias columns and compare them."""
        net, params = self.network, self.params
        p = self.problem
        labels = p.labels
        p1 = Problem(net, p.X[:1], labels[:1] if labels is not None else p.Y[:1], 0.0)
        U1, R1 = self.user(p1, params), self.ref(p1, params)
        zs, acts = _forward(np, net, params, p1.X)
        slices = _layer_slices(net)
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
                if _fits(blk_u[:, 1:], np.outer(blk_u[:, 0], a)):
                    user_delta[layer + 1] = blk_u[:, 0]
        out = []
        inherited: dict[int, int] = {}
        for layer in sorted(layers, reverse=True):
            if layer in inherited:
                continue
            sl = slices[layer - 1]
            idx = sl.start + _bad(U0[sl], R0[sl], self.floor[sl])
            k = layer + 1  # the delta that enters D_layer
            cause, detail = None, ""
            if k in user_delta and not _fits(user_delta[k], true_delta[k]):
                du, dr = user_delta[k], true_delta[k]
                if k < net.n_layers:
                    a = acts[k - 1][0]
                    gp = a * (1.0 - a)
                    if _fits(du * gp, dr):
                        cause = f"missing g'(z_{k})"
                        detail = (f" Your delta_{k} times g'(z_{k}) = a_{k}(1 - a_{k}) equals the true delta_{k}: "
                                  f"the factor g'(z_{k}) is missing.")
                    elif _fits(du, dr * gp):
                        cause = f"g'(z_{k}) applied twice"
                        detail = f" Your delta_{k} is the true one times g'(z_{k}) once more: g' is applied twice."
                    elif np.all(gp > 0) and _fits(du, dr / gp * a):
                        cause = f"g(z_{k}) used as g'(z_{k})"
                        detail = (f" Your delta_{k} uses g(z_{k}) = a_{k} where g'(z_{k}) = a_{k}(1 - a_{k}) "
                                  "belongs.")
                    elif (k + 1) in user_delta:
                        back = (user_delta[k + 1] @ thetas[k - 1][:, 1:]) * gp
                        if not _fits(du, back):
                            detail = (f" It is not delta_{k + 1} Theta{k}[:, 1:] * g'(z_{k}) of your own "
                                      f"delta_{k + 1} either: check that line.")
                else:
                    zL = zs[-1][0]
                    hL = 1.0 / (1.0 + np.exp(-zL))
                    if _fits(du, dr * hL * (1.0 - hL)):
                        cause = f"extra g'(z_{k}) at the output"
                        detail = (f" Your output error is (h - y) g'(z_{k}), the squared-error form; with the "
                                  "cross-entropy cost the g' cancels and delta_L = h - y.")
                # Which lower layers only inherit this delta?
                below = []
                for j in range(k - 1, 1, -1):
                    if j not in user_delta or (j + 1) not in user_delta:
                        break
                    a = acts[j - 1][0]
                    back = (user_delta[j + 1] @ thetas[j - 1][:, 1:]) * (a * (1.0 - a))
                    if _fits(user_delta[j], back) and (j - 1) in layers:
                        inherited[j - 1] = layer
                        below.append(j - 1)
                    else:
                        break
                tail = ""
                if below:
                    names = ", ".join(f"Theta{b}" for b in below)
                    tail = (f" {names} {'is' if len(below) == 1 else 'are'} wrong only because back-propagation "
                            f"carries your delta_{k} down correctly from there.")
                out.append(_entry_finding(
                    net, "one_layer", layer, idx, U0, R0,
                    f"the error enters at Theta{layer}: with one example, the bias column of your Theta{layer} "
                    f"gradient is your delta_{k}, and it differs from the true delta_{k}"
                    + (" (the layers above are right)" if layer < n else "") + "." + detail + tail,
                    f"ran your function on one example (m = 1), where D_l = delta_(l+1)^T [1, a_l], read your deltas "
                    "off the bias columns and compared them, layer by layer, with the true ones",
                    cause=cause or f"delta_{k} wrong", inherited_by=below))
                continue
            single = len(layers) == 1
            out.append(_entry_finding(
                net, "one_layer" if single else "entries", layer, idx, U0, R0,
                (f"only Theta{layer}'s gradient is wrong; the other layers are right. No simple pattern (a "
                 "factor, a transpose, the bias column, a missing g') explains it: compare how you form this "
                 "layer's gradient, delta^T [1, a] / m, with the formula." if single else
                 f"Theta{layer}'s gradient is wrong in {len(idx)} entries, and no simple pattern (a factor, a "
                 "transpose, the bias column, a missing g') explains it."),
                "compared your gradient with the exact reference layer by layer and tried each pattern",
                cause=None))
        return out


def _grid(network: Network, layer: int) -> np.ndarray:
    """Flat indices of Theta_layer, shaped like the matrix."""
    start, (rows, cols) = network.offsets[layer - 1], network.shapes[layer - 1]
    return start + np.arange(rows * cols).reshape(rows, cols)


def _subsets(n: int, size: int):
    from itertools import combinations

    return [tuple(c) for c in combinations(range(1, n + 1), size)]


# --------------------------------------------------------------------------------------
# Fast mode: random directions and bisection with masked directions
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Node:
    """A block of entries, the direction used on it, its residual U.v - D_v J and tolerance."""

    idx: np.ndarray
    v: np.ndarray
    r: float
    tol: float

    @property
    def flagged(self) -> bool:
        return abs(self.r) > self.tol


class _Directional:
    """Directional central differences of the cost, a black box (two evaluations each)."""

    def __init__(self, problem: Problem, params: np.ndarray):
        net, X, Y, lam = problem.network, problem.X, problem.Y, problem.lam
        self._J = lambda theta: float(_cost(np, net, theta, X, Y, lam))
        self.params = params
        self.m = problem.m
        self.evaluations = 0
        self.J0 = self._J(params)
        self.h = DIRECTION_STEP * max(1.0, float(np.max(np.abs(params))) if params.size else 1.0)
        self.truncation = 0.0

    def J(self, theta) -> float:
        self.evaluations += 1
        return self._J(theta)

    def derivative(self, idx, v, step) -> float:
        work = self.params.copy()
        work[idx] += step * v
        plus = self.J(work)
        work[idx] = self.params[idx] - step * v
        minus = self.J(work)
        return (plus - minus) / (2.0 * step)

    def tolerance(self) -> float:
        """Error bound of one directional difference: round-off plus truncation (calibrated)."""
        return NUMERIC_SAFETY * (DIRECTION_ROUNDOFF * _EPS * abs(self.J0) / self.h + self.truncation)

    def calibrate(self, U, node: _Node) -> _Node:
        """Estimate truncation on a probe already made, at step 2h too (Richardson: /3)."""
        d1 = float(U[node.idx] @ node.v) - node.r
        d2 = self.derivative(node.idx, node.v, 2.0 * self.h)
        self.truncation = abs(d2 - d1) / 3.0
        return _Node(node.idx, node.v, node.r, self.tolerance())

    def residual(self, U, idx, v) -> float:
        """``U.v - D_v J`` along ``v`` masked to ``idx`` (signed; two evaluations)."""
        return float(U[idx] @ v) - self.derivative(idx, v, self.h)

    def probe(self, U, idx, rng) -> _Node:
        """A fresh random unit direction masked to ``idx``."""
        v = rng.standard_normal(len(idx))
        v /= np.linalg.norm(v)
        return _Node(idx, v, self.residual(U, idx, v), self.tolerance())

    def partial(self, i) -> tuple[float, float]:
        """The partial derivative along one coordinate, with its own error estimate (4 evaluations)."""
        idx = np.array([i])
        one = np.ones(1)
        d1 = self.derivative(idx, one, self.h)
        d2 = self.derivative(idx, one, 2.0 * self.h)
        return d1, abs(d2 - d1) / 3.0 + DIRECTION_ROUNDOFF * _EPS * abs(self.J0) / self.h

    def split(self, U, node: _Node, k: int, rng):
        """Halves of a node, for two evaluations instead of four.

        Directional derivatives are linear in the direction: with ``v = v_left + v_right``,
        ``U.v - D_v = (U.v_left - D_left) + (U.v_right - D_right)``. So the left half is probed
        with the parent's own direction restricted to it, and the right half's residual is the
        parent's minus the left's -- no evaluation -- with the two tolerances added. A right
        half that looks clean only under more than FAST_MAX_ACCUMULATED single-probe
        tolerances is probed afresh, so accumulated tolerance cannot hide an error.
        """
        if k <= 0 or k >= len(node.idx):
            return (node, None) if k > 0 else (None, node)
        left_idx, right_idx = node.idx[:k], node.idx[k:]
        v_left = node.v[:k]
        if not np.any(v_left):
            left = self.probe(U, left_idx, rng)
        else:
            left = _Node(left_idx, v_left, self.residual(U, left_idx, v_left), self.tolerance())
        right = _Node(right_idx, node.v[k:], node.r - left.r, node.tol + left.tol)
        # A right half that looks clean only under an accumulated tolerance is probed afresh.
        if not np.any(right.v) or (not right.flagged and right.tol > FAST_MAX_ACCUMULATED * self.tolerance()):
            right = self.probe(U, right_idx, rng)
        return left, right


def _fast(U, problem: Problem, params, rng, name: str):
    net = problem.network
    dd = _Directional(problem, params)
    findings: list[Finding] = []
    layers_info = []
    for layer, sl in enumerate(_layer_slices(net), start=1):
        rows_, cols_ = net.shapes[layer - 1]
        idx = np.arange(sl.start, sl.stop)
        flags = [dd.probe(U, idx, rng) for _ in range(FAST_DIRECTIONS)]
        if layer == 1:  # the first probe calibrates the truncation part of every tolerance
            flags = [dd.calibrate(U, f) for f in flags]
        tol = max(f.tol for f in flags)
        # e.v for a unit direction uniform on the sphere of dimension d is about N(0, |e|^2/d):
        # P(|e.v| < tol) <= sqrt(2/pi) tol sqrt(d)/|e| per direction, independent directions multiply.
        detect = math.sqrt(2.0 / math.pi) * tol * math.sqrt(idx.size) / FAST_REPORT_MISS ** (1.0 / FAST_DIRECTIONS)
        layers_info.append({"layer": layer, "tolerance": tol, "detectable_error": detect,
                            "flagged": any(f.flagged for f in flags)})
        if not any(f.flagged for f in flags):
            continue
        factor = _fast_factor(dd, U, flags, rng)
        if factor is not None:
            c, label = factor
            kind = "sign_flip" if _is(c, -1.0) else "constant_factor"
            findings.append(Finding(
                kind, layer, f"Theta{layer}'s gradient is {c:.6g} times the true one along every random direction "
                f"tried" + (f" ({label})" if label else "") + ": the whole layer is scaled, not single entries.",
                f"compared U.v with the cost's directional derivative along {FAST_DIRECTIONS + 1} random directions "
                f"masked to Theta{layer}: their ratio is the same each time", list(range(rows_)),
                list(range(cols_)), [], None, None, "user", label or f"factor {c:.6g}",
                {"factor": c, "blame_basis": "numeric (fast mode does not run jax)"}))
            continue
        # Split the most clearly flagged direction into the bias column and the weight columns.
        top = max(flags, key=lambda f: abs(f.r) / f.tol)
        local = _grid(net, layer) - sl.start
        order = np.r_[local[:, 0], local[:, 1:].ravel()]
        top = _Node(top.idx[order], top.v[order], top.r, top.tol)
        bias, weights = dd.split(U, top, rows_, rng)
        blocks = [b for b in (bias, weights) if b is not None and b.flagged]
        if not blocks:
            blocks = [top]  # the layer was flagged but neither part alone: search it all
        leaves, open_blocks = _bisect(dd, U, blocks, rng)
        confirmed = []
        for i in leaves:
            d, err = dd.partial(int(i))
            if abs(U[i] - d) > NUMERIC_SAFETY * err:
                confirmed.append((int(i), d, err))
        if not confirmed and not open_blocks:
            continue
        idx_bad = np.array([c[0] for c in confirmed] + [int(j) for b in open_blocks for j in b], dtype=int)
        expected = U.copy()
        for i, d, _ in confirmed:
            expected[i] = d
        rows, cols = _rows_cols(net, idx_bad)
        vals = [{"row": net.locate(i)[1], "column": net.locate(i)[2], "index": i, "yours": float(U[i]),
                 "expected": float(d), "error": float(abs(U[i] - d)), "numeric_error_estimate": float(err)}
                for i, d, err in confirmed[:MAX_LISTED]]
        exp = (f"random directions masked to Theta{layer}, then to its bias column and its weight columns, then "
               "bisection over the flagged block with masked directions; each wrong entry confirmed by a central "
               "difference with its own error estimate")
        if cols == [0]:
            kind, cause = "bias_column", "bias column"
            sentence = (f"only the bias column (column 0) of Theta{layer} is wrong"
                        + (f": {len(confirmed)} entr{'y' if len(confirmed) == 1 else 'ies'} located" if confirmed else "")
                        + ". The bias gradient of a unit is the sum of its delta over the examples, divided by m.")
        elif open_blocks:
            kind, cause = ("one_layer" if sum(i["flagged"] for i in layers_info) == 1 else "entries"), "many entries"
            sentence = (f"many entries of Theta{layer} are wrong (more than {FAST_MAX_LEAVES} blocks); rows "
                        f"{_ranges(rows)}. Run mode='full' on a smaller network for a diagnosis.")
        else:
            kind, cause = "entries", "individual entries"
            where = ", ".join(f"Theta{layer}[{net.locate(i)[1]}, {net.locate(i)[2]}]" for i, _, _ in confirmed[:MAX_LISTED])
            sentence = (f"{len(confirmed)} wrong entr{'y' if len(confirmed) == 1 else 'ies'} in Theta{layer}: {where}. "
                        "Your value there differs from the finite-difference derivative by far more than its error "
                        "estimate; every other entry of the layer passed the random-direction checks.")
        err = [abs(U[i] - d) for i, d, _ in confirmed]
        findings.append(Finding(kind, layer, sentence, exp, rows, cols, vals, max(err) if err else None,
                                None, "user", cause, {"blame_basis": "numeric (fast mode does not run jax)"}))
    stats = {"directions_per_layer": FAST_DIRECTIONS, "cost_evaluations": dd.evaluations,
             "full_check_evaluations": 2 * net.n_params, "step": dd.h, "layers": layers_info,
             "miss_probability_rule": "a single entry off by e is missed by one unit random direction over d "
                                      "entries with probability <= sqrt(2/pi) * tolerance * sqrt(d) / e"}
    return findings, stats


def _fast_factor(dd: _Directional, U, flags, rng):
    """Is the layer's gradient c times the truth? The ratio U.v / D_v is then the same for
    every direction; a third direction confirms what two suggest. Returns (c, name) or None."""
    def ratio_fits(c, node):
        d = float(U[node.idx] @ node.v) - node.r
        return abs(float(U[node.idx] @ node.v) - c * d) <= (1.0 + abs(c)) * node.tol

    first = flags[0]
    d1 = float(U[first.idx] @ first.v) - first.r
    if abs(d1) <= first.tol:
        return None
    c = float(U[first.idx] @ first.v) / d1
    if _is(c, 1.0) or not all(ratio_fits(c, f) for f in flags[1:]):
        return None
    extra = dd.probe(U, first.idx, rng)
    if not ratio_fits(c, extra):
        return None
    return c, _factor_name(c, dd.m)


def _bisect(dd: _Directional, U, blocks, rng):
    """Halve flagged blocks until single entries remain (two evaluations per split).

    Returns (single wrong entries, blocks left open when more than FAST_MAX_LEAVES are open).
    """
    leaves = []
    stack = [b for b in blocks if len(b.idx)]
    while stack:
        if len(stack) > FAST_MAX_LEAVES:
            return leaves, [b.idx for b in stack]
        node = stack.pop()
        if len(node.idx) == 1:
            leaves.append(int(node.idx[0]))
            continue
        left, right = dd.split(U, node, len(node.idx) // 2, rng)
        stack += [h for h in (right, left) if h is not None and h.flagged]
    return leaves, []


# --------------------------------------------------------------------------------------
# The user's cost
# --------------------------------------------------------------------------------------


def _check_cost(cost_caller: _Caller, problem: Problem, params, U, rng) -> list[Finding]:
    net = problem.network
    findings = []
    name = cost_caller.name

    def user_cost(prob, theta):
        call = cost_caller(prob, theta)
        findings.extend(f for f in _mutation_findings(net, call, None, U, f"cost_fn {name}")
                        if not any(g.kind == f.kind and g.layer == f.layer and g.extra == f.extra for g in findings))
        val = np.asarray(call.raw, dtype=np.float64).ravel() if np.asarray(call.raw).dtype.kind in "fiu" else None
        if val is None or val.size != 1:
            raise GradlabError(f"cost_fn {name} must return one number; got {type(call.raw).__name__}")
        return float(val[0])

    J = lambda prob, theta: float(_cost(np, net, theta, prob.X, prob.Y, prob.lam))
    points = [params] + [params + 0.1 * rng.standard_normal(params.size) for _ in range(2)]
    bad = []
    for theta in points:
        for prob in ([problem, problem.with_lam(0.0)] if problem.lam > 0 else [problem]):
            mine, ours = user_cost(prob, theta), J(prob, theta)
            if not math.isfinite(mine) or abs(mine - ours) > COST_RTOL * max(1.0, abs(ours)):
                bad.append((prob.lam, mine, ours))
    if not bad:
        return findings
    lams = {b[0] for b in bad}
    only_reg = 0.0 not in lams
    vals = [{"entry": f"lam={b[0]:g}", "yours": b[1], "expected": b[2]} for b in bad[:MAX_LISTED]]
    nonfinite = any(not math.isfinite(b[1]) for b in bad)
    # Is the user's gradient the gradient of the user's own cost? Two evaluations per direction.
    consistent = None
    if not nonfinite:
        h = DIRECTION_STEP * max(1.0, float(np.max(np.abs(params))))
        gaps, tols = [], []
        Jm = user_cost(problem, params)
        for _ in range(2):
            v = rng.standard_normal(params.size)
            v /= np.linalg.norm(v)
            d1, d2 = ((user_cost(problem, params + s * v) - user_cost(problem, params - s * v)) / (2 * s)
                      for s in (h, 2 * h))
            gaps.append(abs(float(U @ v) - d1))
            # Round-off of the two evaluations plus truncation estimated from step 2h (Richardson).
            tols.append(NUMERIC_SAFETY * (DIRECTION_ROUNDOFF * _EPS * abs(Jm) / h + abs(d2 - d1) / 3.0))
        consistent = all(g <= t for g, t in zip(gaps, tols))
    if nonfinite:
        cause = "cost not finite"
        sentence = (f"cost_fn {name} returned {bad[0][1]} where the cost is {bad[0][2]:.6g}: taking log(h) of a "
                    "saturated sigmoid gives log(0). Compute the cost from z with log-sigmoid (softplus) forms.")
    elif only_reg:
        cause = "regularisation term of the cost"
        sentence = (f"cost_fn {name} agrees with gradlab's cost at lambda = 0 but not at lambda = {problem.lam:g}: "
                    "the regularisation term lam/(2m) * (sum of squares, bias column excluded) is wrong.")
    else:
        cause = "data term of the cost"
        sentence = (f"cost_fn {name} differs from gradlab's cost already at lambda = 0: the cross-entropy "
                    "-(1/m) sum [y log h + (1 - y) log(1 - h)] is computed differently.")
    if consistent:
        sentence += " Your gradient is the gradient of your own cost, so the cost is where the bug is."
    elif consistent is False:
        sentence += " Your gradient is not the gradient of your own cost either."
    findings.append(Finding("cost_mismatch", None, sentence,
                            "evaluated your cost and gradlab's at the check point and two perturbed points, at "
                            "lambda on and off; then compared your gradient with your cost's directional "
                            "derivatives along two random directions",
                            values=vals, blame="cost", cause=cause,
                            extra={"gradient_consistent_with_your_cost": consistent}))
    return findings


# --------------------------------------------------------------------------------------
# check()
# --------------------------------------------------------------------------------------


def _validate_against(against) -> tuple[str, ...]:
    if isinstance(against, str) or not hasattr(against, "__iter__"):
        raise v.fail("against", against, "a sequence of source names from " + ", ".join(map(repr, _AGAINST)))
    out = tuple(against)
    if not out or len(set(out)) != len(out) or any(a not in _AGAINST for a in out):
        raise v.fail("against", out, "distinct source names from " + ", ".join(map(repr, _AGAINST)))
    return out


def check(grad_fn, sizes=(3, 5, 3), *, signature: str = "gradlab", cost_fn=None, lam: float = DEFAULT_LAM,
          examples: int = DEFAULT_EXAMPLES, seed: int = 0, weight_scale: float = 1.0, mode: str = "auto",
          against=("jax", "numeric"), force: bool = False) -> CheckReport:
    """Check a gradient function: blame, localise and explain what is wrong with it.

    Parameters
    ----------
    grad_fn : callable
        ``grad_fn(problem, params) -> flat gradient`` (``signature="gradlab"``), or the seed's
        ``nnGradient(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda)``
        (``signature="seed"``; 3-layer networks, labels ``0..K-1``, a column-vector result
        is accepted).
    sizes : sequence of int, default (3, 5, 3)
        Layer sizes of the network to check on.
    signature : {"gradlab", "seed"}
    cost_fn : callable, optional
        A cost function with the same signature as ``grad_fn`` (for ``"seed"``: the seed's
        ``nnCostFunction``), checked against gradlab's cost too.
    lam : float, default 1.0
        lambda for the check (>= 0). When positive, lambda = 0 is tried as well.
    examples : int, default 5
        Number of examples m.
    seed : int, default 0
        Seed for the weights (the seed's uniform initialiser), inputs (uniform in [-1, 1])
        and labels (every class present when m >= K).
    weight_scale : float, default 1.0
        Multiplies the initial weights (large values saturate the sigmoids).
    mode : {"auto", "full", "fast"}
        ``"full"``: compare every entry with jax and with central differences and run the
        diagnosis experiments. ``"fast"``: random-direction checks and bisection (a few
        dozen cost evaluations whatever the size). ``"auto"``: full up to
        :data:`FULL_MODE_MAX_PARAMS` parameters, fast beyond.
    against : sequence of {"jax", "backprop", "numeric"}, default ("jax", "numeric")
        The witnesses of the full check. With an exact one and ``"numeric"``, a
        disagreement is blamed three ways (your gradient / a numerical problem / the
        cost); ``("backprop",)`` is a cheap exact-only check.
    force : bool, default False
        Run the full check's numeric gradient even when its estimated time is above
        :data:`gradlab._resources.NUMERIC_TIME_LIMIT`. (``mode="auto"`` picks fast mode
        rather than a full check over the limit.)

    Returns
    -------
    CheckReport
        ``.ok``, ``.findings`` (each with ``layer``, ``kind``, ``rows``, ``columns``,
        values, error and a sentence), ``.to_dict()``, ``str()``.

    Raises
    ------
    GradlabError
        Bad arguments, or a function whose signature cannot take the arguments.
    UserCodeError
        ``grad_fn`` (or ``cost_fn``) raised on the check problem; the message names the
        exception.

    Examples
    --------
    >>> import gradlab
    >>> def halved(problem, params):
    ...     return gradlab.gradient(problem, params) / 2
    >>> report = gradlab.check(halved, (3, 5, 3), against=("backprop",))
    >>> report.ok, report.findings[0].kind, report.findings[0].layer
    (False, 'constant_factor', 1)
    """
    signature = v.choice("signature", signature, _SIGNATURES)
    mode = v.choice("mode", mode, _MODES)
    against = _validate_against(against)
    if not callable(grad_fn):
        raise v.fail("grad_fn", grad_fn, "a callable")
    if cost_fn is not None and not callable(cost_fn):
        raise v.fail("cost_fn", cost_fn, "a callable or None")
    network = sizes if isinstance(sizes, Network) else Network(sizes)
    if signature == "seed" and network.n_layers != 3:
        raise v.fail("sizes", network.sizes, "three layer sizes (input, hidden, output) for signature='seed'")
    lam = v.real("lam", lam, minimum=0.0, maximum=MAX_LAM)
    examples = v.integer("examples", examples, minimum=1)
    seed = v.integer("seed", seed, minimum=0)
    weight_scale = v.real("weight_scale", weight_scale, minimum=0.0, maximum=MAX_WEIGHT_SCALE)
    shape = "(problem, params)" if signature == "gradlab" else \
        "(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda)"
    n_args = 2 if signature == "gradlab" else 7
    _check_signature(grad_fn, n_args, "grad_fn", shape)
    if cost_fn is not None:
        _check_signature(cost_fn, n_args, "cost_fn", shape)
    if not isinstance(force, (bool, np.bool_)):
        raise v.fail("force", force, "True or False")
    _resources.require_memory(_resources.problem_memory(network.sizes, examples, jax="jax" in against))
    problem, params = _case(network, examples, lam, seed, weight_scale)
    if mode == "auto":
        mode = "full" if network.n_params <= FULL_MODE_MAX_PARAMS and not _slow(problem, params) else "fast"
    info = {"function": _fn_name(grad_fn), "signature": signature, "sizes": list(network.sizes),
            "n_params": network.n_params, "examples": examples, "lam": lam, "seed": seed,
            "weight_scale": weight_scale, "mode": mode, "against": list(against)}
    with _resources.forced(force):
        return _run(grad_fn, cost_fn, signature, problem, params, mode, against, info, seed)


def _slow(problem, params) -> bool:
    """Would the full check's numeric gradient take longer than gradlab's time limit?"""
    seconds, _ = _resources.time_estimate(problem, params, _resources.numeric_evaluations(problem.network.n_params))
    return seconds is not None and seconds > _resources.NUMERIC_TIME_LIMIT


def _run(grad_fn, cost_fn, signature, problem, params, mode, against, info, seed) -> CheckReport:
    net = problem.network
    caller = _Caller(grad_fn, signature, net)
    name = caller.name
    rng = np.random.default_rng([seed, 1])
    findings: list[Finding] = []
    comparisons: dict = {}

    # Purity and output: the first call, on copies.
    first = caller(problem, params)
    U, bad = _as_gradient(first.raw, net, signature, name)
    again = None
    if "params" in first.writes:
        try:
            second_raw = caller(problem, params, inplace=first.params_after.copy()).raw
            again, _ = _as_gradient(second_raw, net, signature, name)
        except UserCodeError:
            again = None
    findings += _mutation_findings(net, first, again if U is not None else None, U, name)
    if bad is not None:
        findings.append(bad)
        if U is None:
            return CheckReport(info, findings, comparisons)

    # Repeated call on fresh copies: is it deterministic?
    U2, _ = _as_gradient(caller(problem, params).raw, net, signature, name)
    floor = _roundoff_floor(problem, params)
    if bad is not None and bad.blame == "precision":
        # A float32 (or float16) result carries that type's round-off, not float64's.
        floor = floor * (float(np.finfo(np.dtype(bad.extra["dtype"])).eps) / _EPS)
    if U2 is not None and not _agree(U, U2, floor):
        idx = _bad(U, U2, floor)
        layer = net.locate(int(idx[0]))[0] if idx.size else None
        f = _entry_finding(net, "non_determinism", layer, idx, U, U2,
                           f"two calls of {name} on identical copies of the arguments returned different gradients "
                           f"(||g1-g2||/||g1+g2|| = {_norm_ratio(U, U2):.3g}): it depends on something besides its "
                           "arguments -- global state it changes, randomness, or data kept between calls.",
                           "called the function twice on fresh, identical copies of its arguments")
        for val in f.values:
            val["first"], val["second"] = val.pop("yours"), val.pop("expected")
        findings.append(f)

    if cost_fn is not None:
        findings += _check_cost(_Caller(cost_fn, signature, net, "cost_fn"), problem, params, U, rng)

    if mode == "fast":
        fast_findings, stats = _fast(U, problem, params, rng, name)
        findings += fast_findings
        comparisons["yours vs numeric"] = {
            "ok": not fast_findings, "measure": "random directions", "value": None,
            "criterion": f"|g.v - D_v J| <= {NUMERIC_SAFETY:g}x the directional error estimate"}
        return CheckReport(info, findings, comparisons, fast=stats)

    exact = next((a for a in against if a != "numeric"), None)
    R = _reference(exact)(problem, params) if exact else None
    N = Nerr = None
    if "numeric" in against:
        from gradlab.sources import SOURCES

        N, Nerr = SOURCES["numeric"].estimate(problem, params.copy())
        N, Nerr = np.asarray(N, float), np.asarray(Nerr, float)
    exact_crit = f"<= {EXACT_NORM_RATIO:g}, or every entry within its round-off bound"
    num_crit = f"every entry within {NUMERIC_SAFETY:g}x the numeric error estimate + the exact side's round-off"
    u_r = u_n = r_n = None
    if R is not None:
        u_r = _agree(U, R, floor)
        comparisons[f"yours vs {exact}"] = {"ok": u_r, "measure": "||a-b||/||a+b||", "value": _norm_ratio(U, R),
                                            "criterion": exact_crit}
    if N is not None:
        bound = _numeric_bound(Nerr, U, N, floor)
        excess_u = np.abs(U - N) / np.maximum(bound, _TINY)
        u_n = bool(np.all(np.abs(U - N) <= bound))
        comparisons["yours vs numeric"] = {"ok": u_n, "measure": "max |a-b| / bound",
                                           "value": float(excess_u.max()), "criterion": num_crit}
        if R is not None:
            rn_bound = _numeric_bound(Nerr, R, N, floor)
            r_n = bool(np.all(np.abs(R - N) <= rn_bound))
            comparisons[f"{exact} vs numeric"] = {
                "ok": r_n, "measure": "max |a-b| / bound",
                "value": float((np.abs(R - N) / np.maximum(rn_bound, _TINY)).max()),
                "criterion": num_crit}

    if R is None:  # numeric only: entries, no experiments
        if not u_n:
            for layer, sl in enumerate(_layer_slices(net), start=1):
                idx = sl.start + np.flatnonzero(np.abs(U[sl] - N[sl]) > bound[sl])
                if idx.size:
                    findings.append(_entry_finding(
                        net, "entries", layer, idx, U, N,
                        f"{idx.size} entr{'y' if idx.size == 1 else 'ies'} of Theta{layer} differ from central "
                        "differences by more than their error estimate allows.",
                        "compared every entry with central differences and their error estimate"))
        return CheckReport(info, findings, comparisons)

    if u_r:
        info["blame"] = (f"none -- your gradient's values agree with {exact}" + (
            "; finite differences disagree with both: a numerical problem, not yours" if r_n is False else
            " and with finite differences" if r_n else ""))
    elif r_n is False:
        info["blame"] = (f"the cost -- {exact} and finite differences of the same cost disagree"
                         + ("" if u_n else ", and your gradient matches neither"))
    else:
        info["blame"] = f"your gradient -- it differs from {exact}" + (
            " while finite differences agree with it" if r_n else "")
    if r_n is False:  # the entries where jax and finite differences disagree, and the first layer
        rn_idx = np.flatnonzero(np.abs(R - N) > rn_bound)
        rn_layer = net.locate(int(rn_idx[0]))[0]
    if u_r:
        if r_n is False:
            findings.append(_entry_finding(
                net, "numeric_problem", rn_layer, rn_idx, N, R,
                f"your gradient and {exact} agree, but finite differences differ from both at {rn_idx.size} "
                "entr" + ("y" if rn_idx.size == 1 else "ies") + " by more than their own error estimate: a numerical "
                "problem (the step, a kink, precision), not your gradient.",
                f"compared your gradient, {exact} and central differences three ways", blame="numeric"))
        return CheckReport(info, findings, comparisons)

    if r_n is False:
        findings.append(_entry_finding(
            net, "cost_suspect", rn_layer, rn_idx, N, R,
            f"{exact} and finite differences of the same cost disagree with each other"
            + (" and with your gradient" if not u_n else ", while your gradient matches finite differences")
            + ": the cost itself is suspect here (not smooth, or not the function both witnesses see).",
            f"compared your gradient, {exact} and central differences three ways", blame="cost"))
    diag = _Diagnoser(caller, signature, _reference(exact), exact, problem, params, floor)
    found = diag.run(U, R)
    if not found:
        idx = _bad(U, R, floor)
        for layer, sl in enumerate(_layer_slices(net), start=1):
            sel = idx[(idx >= sl.start) & (idx < sl.stop)]
            if sel.size:
                found.append(_entry_finding(net, "entries", layer, sel, U, R,
                                            f"{sel.size} entries of Theta{layer} are wrong.",
                                            f"compared every entry with {exact}"))
    for f in found:
        f.extra.setdefault("blame_basis", f"yours differs from {exact}" + (
            " while numeric agrees with it" if r_n else ""))
    if diag.notes:
        for f in found:
            f.extra["notes"] = diag.notes
    findings += found
    return CheckReport(info, findings, comparisons)


# --------------------------------------------------------------------------------------
# Shrinking: the smallest failing case, as a reproducer
# --------------------------------------------------------------------------------------


def shrink(grad_fn, *, signature: str = "gradlab", cost_fn=None, max_examples: int = 200,
           target: str | None = None, against=("backprop",), seed: int = 0) -> CheckReport | None:
    """Search with hypothesis for a case where ``grad_fn`` fails; shrink it to the smallest.

    Hypothesis draws layer sizes, the number of examples, lambda, the weights' seed and
    scale; every draw is checked against ``against`` (exact witnesses keep it cheap); the
    first failure is shrunk to the smallest failing case, which is then checked in full.

    Parameters
    ----------
    grad_fn, signature, cost_fn
        As for :func:`check`.
    max_examples : int, default 200
        Cases to try before giving up.
    target : str, optional
        How the user names the function (``PATH.py:FUNC``), for the pasteable command.
    against : sequence of str, default ("backprop",)
        Witnesses used during the search.
    seed : int, default 0
        Seeds hypothesis's own random choices, so the search is repeatable.

    Returns
    -------
    CheckReport or None
        The full check of the smallest failing case, with ``reproducer`` (sizes, lam, m,
        seed, weight_scale, a command and a pytest snippet); None when no failure was found.
    """
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample

    signature = v.choice("signature", signature, _SIGNATURES)
    max_examples = v.integer("max_examples", max_examples, minimum=1)
    seed = v.integer("seed", seed, minimum=0)
    against = _validate_against(against)
    if target is not None and not isinstance(target, str):
        raise v.fail("target", target, "a string naming the function (PATH.py:FUNC) or None")
    n_layers = st.just(3) if signature == "seed" else st.integers(2, 4)
    cases = st.fixed_dictionaries({
        "sizes": n_layers.flatmap(lambda n: st.lists(st.integers(1, 6), min_size=n, max_size=n)).map(tuple),
        "examples": st.integers(1, 8),
        "lam": st.one_of(st.just(0.0), st.floats(0.0, 10.0, allow_nan=False)),
        "seed": st.integers(0, 2 ** 16),
        "weight_scale": st.one_of(st.just(1.0), st.floats(0.0, 5.0, allow_nan=False)),
    })
    tried = [0]
    raised: dict = {}

    def fails(case) -> bool:
        tried[0] += 1
        try:
            return not check(grad_fn, case["sizes"], signature=signature, cost_fn=cost_fn, lam=case["lam"],
                             examples=case["examples"], seed=case["seed"], weight_scale=case["weight_scale"],
                             mode="full", against=against).ok
        except UserCodeError as exc:
            raised[repr(case)] = str(exc)
            return True

    import random

    cfg = settings(max_examples=max_examples, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    try:
        case = find(cases, fails, settings=cfg, random=random.Random(seed))
    except NoSuchExample:
        return None
    kw = dict(signature=signature, cost_fn=cost_fn, lam=case["lam"], examples=case["examples"],
              seed=case["seed"], weight_scale=case["weight_scale"])
    try:
        report = check(grad_fn, case["sizes"], **kw)
    except UserCodeError as exc:
        report = CheckReport({"function": _fn_name(grad_fn), "signature": signature, "sizes": list(case["sizes"]),
                              "n_params": Network(case["sizes"]).n_params, "examples": case["examples"],
                              "lam": case["lam"], "seed": case["seed"], "weight_scale": case["weight_scale"],
                              "mode": "full", "against": ["jax", "numeric"]},
                             [Finding("bad_output", None, f"on this case {exc}", "called the function",
                                      cause="raised")], {})
    report.reproducer = _reproducer(case, signature, target or f"PATH.py:{_fn_name(grad_fn)}",
                                    cost_fn, tried[0])
    return report


def _reproducer(case, signature, target, cost_fn, tried) -> dict:
    sizes = ",".join(map(str, case["sizes"]))
    parts = ["gradlab check", target, "--sizes", sizes, "--examples", str(case["examples"]),
             "--lambda", repr(case["lam"]), "--seed", str(case["seed"]), "--weight-scale", repr(case["weight_scale"])]
    if signature != "gradlab":
        parts += ["--signature", signature]
    if cost_fn is not None:
        parts += ["--cost", _fn_name(cost_fn)]
    func = target.rpartition(":")[2]
    snippet = (
        "import gradlab\n"
        "from gradlab.check import load_function\n\n\n"
        f"def test_{func}_smallest_failing_case():\n"
        f"    fn = load_function({target!r})\n"
        f"    report = gradlab.check(fn, {tuple(case['sizes'])!r}, signature={signature!r}, "
        f"lam={case['lam']!r}, examples={case['examples']}, seed={case['seed']}, "
        f"weight_scale={case['weight_scale']!r})\n"
        "    assert report.ok, str(report)\n"
    )
    return {"sizes": list(case["sizes"]), "lam": case["lam"], "examples": case["examples"], "seed": case["seed"],
            "weight_scale": case["weight_scale"], "command": " ".join(parts), "pytest": snippet, "tried": tried}
