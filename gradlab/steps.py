"""The step curve: how the error of each finite-difference method moves with the step.

For steps h from 1e-1 down to 1e-16 the gradient is taken by forward differences,
central differences, the complex step and Richardson extrapolation, and compared with
jax's gradient of the same cost. Forward and central differences trace a V: on the
right the truncation error (~ h and ~ h^2) dominates, on the left the round-off error
(~ eps |J| / h) does. The complex step has no subtraction, so it stays at round-off.
"""

from __future__ import annotations

import os

import numpy as np

from gradlab import _files, _progress, _resources, _threads
from gradlab import _validate as v
from gradlab._judge import norm
from gradlab._report import Report, fmt
from gradlab.network import Problem, check_problem
from gradlab.plots import figure, figure_format, save_figure
from gradlab.sources import gradient
from gradlab.sources import numeric as num

__all__ = ["step_curve", "StepsReport", "DEFAULT_STEPS", "plot_steps"]

#: 1e-1 .. 1e-16, four steps per decade.
DEFAULT_STEPS = tuple(float(10.0 ** (-k / 4.0)) for k in range(4, 65))

#: Methods in the order of the table and the figure.
_METHODS = ("forward", "central", "richardson", "complex")
#: Size and resolution of the figure: room for four curves, their labels and a two-line title.
FIGURE_INCHES = (9.5, 6.2)
FIGURE_DPI = 110
_LABELS = {
    "forward": "forward  (J(θ+h) − J(θ)) / h",
    "central": "central  (J(θ+h) − J(θ−h)) / 2h",
    "richardson": "Richardson  (central at h, h/2, h/4 combined)",
    "complex": "complex step  Im J(θ+ih) / h",
}


class StepsReport(Report):
    """Errors of each method at each step, against jax.

    Attributes
    ----------
    steps : numpy.ndarray
        The relative steps h (entry i uses ``h * max(1, |theta_i|)``).
    errors : dict[str, numpy.ndarray]
        Relative error ``||D - g|| / ||g||`` of each method's gradient D at each step,
        with g jax's gradient.
    best : dict[str, tuple[float, float]]
        Per method, the step with the smallest error and that error.
    """

    ok = None

    def __init__(self, problem: Problem, steps, errors, info=None):
        self.problem = problem
        self.steps = np.asarray(steps)
        self.errors = errors
        self.info = dict(info or {})
        self.best = {}
        for m, e in errors.items():
            k = int(np.nanargmin(e))
            self.best[m] = (float(self.steps[k]), float(e[k]))

    def to_dict(self) -> dict:
        net = self.problem.network
        return {
            "sizes": list(net.sizes),
            "activation": net.activation,
            "examples": self.problem.m,
            "lam": self.problem.lam,
            **self.info,
            "reference": "jax",
            "error": "||D - g_jax|| / ||g_jax||",
            "steps": self.steps.tolist(),
            "errors": {m: e.tolist() for m, e in self.errors.items()},
            "best": {m: {"step": s, "error": e} for m, (s, e) in self.best.items()},
            "default_steps": {"forward": num.FORWARD_STEP, "central": num.CENTRAL_STEP},
        }

    def _text(self) -> str:
        net = self.problem.network
        lines = [
            f"gradlab steps: sizes {','.join(map(str, net.sizes))}, {net.n_params} parameters, "
            f"m={self.problem.m}, lambda={self.problem.lam:g}",
            "relative error ||D - g|| / ||g|| of each finite-difference gradient D against jax's g",
            "(step h is relative: entry i moves by h * max(1, |theta_i|))",
            "",
            f"  {'step h':>9}" + "".join(f"  {m:>11}" for m in _METHODS),
        ]
        for k, h in enumerate(self.steps):
            lines.append(f"  {h:>9.2e}" + "".join(f"  {fmt(self.errors[m][k]):>11}" for m in _METHODS))
        lines.append("")
        for m in _METHODS:
            s, e = self.best[m]
            lines.append(f"  best {m:<11} error {fmt(e)} at h = {s:.2e}")
        lines.append(
            f"  defaults: forward h = sqrt(eps) = {num.FORWARD_STEP:.1e}, "
            f"central h = eps^(1/3) = {num.CENTRAL_STEP:.1e}, complex h = {num.COMPLEX_STEP:g}"
        )
        return "\n".join(lines)


def _rel_error(d, g) -> float:
    ng = norm(g)
    diff = norm(d - g)
    if ng == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / ng


#: Real-cost-equivalent evaluations per parameter and step: forward differences 1,
#: central 2, Richardson's three central differences 6, the complex step 1 complex
#: evaluation (about 4 real ones).
EVALUATIONS_PER_STEP = 13
#: Stacked cost evaluations per step and parameter, a complex one counting once (what the
#: progress line counts): forward 1, central 2, three central for Richardson 6, complex 1.
STACKED_PER_STEP = 10


def step_curve(problem: Problem, params, *, steps=DEFAULT_STEPS, force: bool = False) -> StepsReport:
    """Error of forward, central, Richardson and complex-step gradients as the step varies.

    Parameters
    ----------
    problem : Problem
    params : array_like, shape (n_params,)
    steps : sequence of float, default 1e-1 .. 1e-16 (four per decade)
        Relative steps in (0, 1]; entry i uses ``h * max(1, |theta_i|)``, at least one
        unit in the last place of theta_i.
    force : bool, default False
        Run even when the estimated time (``13 P`` cost evaluations per step) is above
        :data:`gradlab._resources.NUMERIC_TIME_LIMIT`.

    Returns
    -------
    StepsReport
        ``.errors[method]`` per step, against jax's gradient; ``str()`` is a table,
        :func:`plot_steps` draws the figure.

    Examples
    --------
    >>> import gradlab
    >>> from gradlab.steps import step_curve
    >>> p = gradlab.debug_problem()
    >>> r = step_curve(p, gradlab.debug_init(p.network), steps=[1e-3, 1e-6])
    >>> bool(r.errors["central"][1] < r.errors["forward"][1])
    True
    """
    problem = check_problem(problem)
    theta = problem.network.check_params(params)
    hs = v.float_array("steps", steps, ndim=1)
    if hs.size < 1 or np.any(hs <= 0) or np.any(hs > 1):
        raise v.fail("steps", steps, "a non-empty sequence of relative steps in (0, 1]")
    force = v.flag("force", force)
    net = problem.network
    _resources.require_memory(_resources.problem_memory(
        net.sizes, problem.m, jax=True, extra={"numeric working memory": num.working_memory(net.sizes, problem.m)}))
    _resources.require_time(problem, theta, EVALUATIONS_PER_STEP * net.n_params * hs.size + 1,
                            f"the step curve over {hs.size} steps", force=bool(force),
                            instead="pass fewer steps")
    g = gradient(problem, theta, "jax")
    total = STACKED_PER_STEP * net.n_params * hs.size + 1
    with _threads.for_problem(problem), _progress.task("step curve", total, "cost evaluations"):
        errors = _curve(problem, theta, hs, g)
    return StepsReport(problem, hs, errors)


def _curve(problem, theta, hs, g) -> dict:
    """The relative error of each method at each relative step in ``hs``."""
    ev = num.Evaluator(problem, theta)
    index = np.arange(theta.size)
    scale = np.maximum(1.0, np.abs(theta))
    ulp = np.spacing(np.abs(theta))
    errors = {m: np.empty(hs.size) for m in _METHODS}
    for k, rel in enumerate(hs):
        h = np.maximum(num.representable(theta, rel * scale), ulp)
        errors["forward"][k] = _rel_error(num.forward_difference(ev, theta, h, index)[0], g)
        errors["central"][k] = _rel_error(num.central(ev, theta, h, index)[0], g)
        ds = [num.central(ev, theta, np.maximum(num.representable(theta, h / 2.0**j), ulp), index)[0] for j in range(3)]
        errors["richardson"][k] = _rel_error(num.richardson_tableau(ds)[2, 2], g)
        errors["complex"][k] = _rel_error(num.complex_step(ev, theta, rel * scale, index)[0], g)
    return errors


def plot_steps(report: StepsReport, path) -> str:
    """Draw the step curve as a labelled log-log teaching figure; write it atomically.

    Parameters
    ----------
    report : StepsReport
    path : str or os.PathLike
        Output file; the format follows the extension (``.png``, ``.pdf``, ``.svg``).

    Returns
    -------
    str
        The path written.
    """
    if not isinstance(report, StepsReport):
        raise v.fail("report", report, "a StepsReport from step_curve")
    figure_format(path)  # before drawing
    path = os.fspath(path)
    if not os.path.isdir(os.path.dirname(_files.absolute(path, "out"))):
        raise v.fail("out", path, "a path in an existing folder")

    eps = num.EPS
    floor = eps / 10.0  # an error of exactly 0 is drawn here
    h = report.steps
    colours = {"forward": "#d62728", "central": "#1f77b4", "richardson": "#2ca02c", "complex": "#9467bd"}
    fig = figure(FIGURE_INCHES)
    ax = fig.add_subplot()
    style = {"forward": ("o-", 1.6), "central": ("o-", 3.0), "richardson": ("o-", 1.6), "complex": ("s--", 1.3)}
    for m in _METHODS:
        e = np.maximum(report.errors[m], floor)
        marker, lw = style[m]
        ax.loglog(h, e, marker, ms=3.5, lw=lw, color=colours[m], label=_LABELS[m])
        s, best = report.best[m]
        ax.loglog([s], [max(best, floor)], "*", ms=13, color=colours[m], mec="black", mew=0.6, zorder=5)

    # Guide lines: where the two error sources come from.
    c = report.errors["central"]
    k_mid = int(np.nanargmin(c))
    anchor_h, anchor_e = h[k_mid], max(c[k_mid], floor)
    left = h[h <= anchor_h]
    ax.loglog(left, anchor_e * anchor_h / left * 0.5, ":", color="grey", lw=1.2)
    ax.text(2e-13, 1e-6,
            "round-off  ~ ε|J| / h\n(step too small: J(θ+h) and J(θ−h)\nagree in almost every digit)",
            fontsize=8.5, color="dimgrey", ha="right", va="top")
    right = h[h >= anchor_h]
    ax.loglog(right, anchor_e * (right / anchor_h) ** 2 * 0.5, "--", color="grey", lw=1.2)
    ax.text(2e-5, 2.0, "truncation  ~ h  (forward)\n~ h²  (central and complex step)\n(step too large)",
            fontsize=8.5, color="dimgrey", ha="left", va="top")
    for name, step, ls in (("forward default √ε", num.FORWARD_STEP, (0, (2, 2))), ("central default ∛ε", num.CENTRAL_STEP, (0, (5, 2)))):
        ax.axvline(step, color="black", lw=0.8, ls=ls)
        ax.text(step * 1.15, 3e-1, name, rotation=90, fontsize=8, va="top")
    ax.axhline(eps, color="black", lw=0.6, alpha=0.5)
    ax.text(h[0], eps * 1.4, "machine ε = 2.2e−16", fontsize=8, ha="right", va="bottom")
    ax.text(1e-12, report.best["complex"][1] * 12 if report.best["complex"][1] > 0 else eps * 12,
            "complex step: no subtraction, so no round-off blow-up", fontsize=8.5, color=colours["complex"], ha="left")

    net = report.problem.network
    ax.set_title(
        f"Finite-difference error against the step h  —  network {'-'.join(map(str, net.sizes))}, "
        f"{net.n_params} parameters\nthe V: truncation error falls as h shrinks, round-off error grows; "
        "★ marks each method's best step",
        fontsize=10,
    )
    ax.set_xlabel("step h  (each parameter moves by h·max(1, |θᵢ|); smaller steps to the left)")
    ax.set_ylabel("relative error of the gradient  ‖D − ∇J‖ / ‖∇J‖\n(∇J from jax: exact to round-off)")
    ax.set_ylim(floor / 2, 10.0)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.005, 0.2), fontsize=8.5, framealpha=0.95)
    fig.tight_layout()

    return save_figure(fig, path, dpi=FIGURE_DPI)
