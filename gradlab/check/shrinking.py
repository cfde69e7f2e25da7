"""Shrinking: search with hypothesis for a failing case and shrink it to the smallest that
fails the same way."""

from __future__ import annotations

import random
import re
import shlex

from gradlab import _progress
from gradlab import _validate as v
from gradlab._errors import GradlabError, UserCodeError, UserCodeStopped
from gradlab._isolation import DEFAULT_TIMEOUT
from gradlab._usercode import code_file, fn_name
from gradlab.check.conventions import CallTemplate, Convention
from gradlab.check.core import SIGNATURES, check, validate_against
from gradlab.check.findings import Finding
from gradlab.check.isolated import in_process, run_isolated, wanted
from gradlab.check.point import load_weights, problem_from_data, read_params
from gradlab.check.report import CheckReport
from gradlab.data import load as load_data
from gradlab.network import Network

__all__ = ["shrink"]

#: The smallest output layer shrinking may reach: with one output unit (and one example)
#: every error of the output delta is a scalar, so any bug looks like a constant factor.
MIN_OUTPUTS = 2
#: The largest layer and number of random examples the search draws (small cases shrink fast).
MAX_DRAWN_SIZE = 6
MAX_DRAWN_EXAMPLES = 8


def _layers(signature: str, template) -> tuple[int, int]:
    """How many layers (min, max) the function can take: fixed by the seed signature, by
    hidden_layer_size or by the Theta matrices a template names; 2..4 otherwise."""
    if signature == "seed":
        return 3, 3
    names = set(template.names) if template is not None else set()
    thetas = [int(n[5:]) for n in names if n.startswith("Theta")]
    if thetas:
        return max(thetas) + 1, max(thetas) + 1
    if "hidden_layer_size" in names:
        return 3, 3
    return 2, 4


def shrink(grad_fn, *, signature: str = "gradlab", call=None, cost_fn=None, cost_call=None, labels: int = 0,
           unroll: str = "C", data=None, data_labels=None, weights=None, sizes=None, max_examples: int = 200,
           target: str | None = None, cost_target: str | None = None, against=("backprop",),
           seed: int = 0, isolate: bool | None = None, timeout: float = DEFAULT_TIMEOUT) -> CheckReport | None:
    """Search with hypothesis for a case where ``grad_fn`` fails; shrink it to the smallest
    case that fails the same way (the same kinds of finding).

    Hypothesis draws what the check leaves free -- layer sizes (K >= 2 outputs), the
    number of examples (the first rows of ``data`` when given), lambda, the weights' seed
    and scale (unless ``weights`` are given); every draw is checked against ``against``
    (exact witnesses keep it cheap).

    Parameters
    ----------
    grad_fn, signature, call, cost_fn, cost_call, labels, unroll, isolate, timeout
        As for :func:`check` (isolated, ``timeout`` covers the whole search).
    data, data_labels, weights : str or path-like, optional
        The user's data and weights, as :func:`gradlab.check.user_point` reads them; they
        fix the input and output sizes (data) or every size (weights).
    sizes : sequence of int, optional
        With ``data`` and no ``weights``: the sizes whose hidden layers the search starts from.
    max_examples : int, default 200
        Cases to try before giving up.
    target, cost_target : str, optional
        How the user names the function and the cost (``PATH.py:FUNC``), for the
        pasteable command and test.
    against : sequence of str, default ("backprop",)
        Witnesses used during the search.
    seed : int, default 0
        Seeds hypothesis's own random choices, so the search is repeatable.

    Returns
    -------
    CheckReport or None
        The full check of the smallest failing case, with ``reproducer`` (sizes, lam, m,
        seed, weight_scale, a command and a pytest test carrying every argument of the
        check); None when no failure was found.
    """
    if isinstance(grad_fn, str) and target is None:
        target = grad_fn
    if wanted(grad_fn, cost_fn, isolate, timeout):
        return run_isolated(shrink, locals())  # every argument, by name: this function's parameters
    grad_fn, cost_fn = in_process(grad_fn, cost_fn)
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample

    signature = v.choice("signature", signature, SIGNATURES)
    max_examples = v.integer("max_examples", max_examples, minimum=1)
    seed = v.integer("seed", seed, minimum=0)
    against = validate_against(against)
    conv = Convention(labels, unroll)
    for name, value in (("target", target), ("cost_target", cost_target)):
        if value is not None and not isinstance(value, str):
            raise v.fail(name, value, "a string naming the function (PATH.py:FUNC) or None")
    template = None if call is None else (call if isinstance(call, CallTemplate) else
                                          CallTemplate(call, grad_fn, name="call"))
    cost_template = None if cost_call is None else (cost_call if isinstance(cost_call, CallTemplate) else
                                                    CallTemplate(cost_call, grad_fn, name="cost_call"))
    lo, hi = _layers(signature, template)
    fixed_sizes, params, dataset = None, None, None
    if weights is not None:
        w_sizes, w = load_weights(weights)
        fixed_sizes = w_sizes or (tuple(sizes) if sizes is not None else None)
        if fixed_sizes is None:
            raise GradlabError("weights hold a flat params; give sizes to read it")
        params = read_params(w, Network(fixed_sizes), conv, name="weights")
    if data is not None:
        dataset = load_data(data, data_labels)
    hidden = st.integers(1, MAX_DRAWN_SIZE)
    if fixed_sizes is not None:
        size_st = st.just(tuple(fixed_sizes))
    elif dataset is not None:
        top = int(dataset.y.max())
        # Labels 1..K (none 0) count K classes; 0..K-1 count max + 1.
        n_in, K = dataset.X.shape[1], (sizes[-1] if sizes is not None else
                                       top if labels == 1 and int(dataset.y.min()) >= 1 else top + 1)
        size_st = st.integers(lo, hi).flatmap(lambda n: st.lists(hidden, min_size=n - 2, max_size=n - 2)).map(
            lambda h: (n_in, *h, K))
    else:
        size_st = st.integers(lo, hi).flatmap(lambda n: st.tuples(
            st.lists(st.integers(1, MAX_DRAWN_SIZE), min_size=n - 1, max_size=n - 1),
            st.integers(MIN_OUTPUTS, MAX_DRAWN_SIZE))).map(lambda t: (*t[0], t[1]))
    m_max = dataset.m if dataset is not None else MAX_DRAWN_EXAMPLES
    cases = st.fixed_dictionaries({
        "sizes": size_st,
        "examples": st.integers(1, m_max),
        "lam": st.one_of(st.just(0.0), st.floats(0.0, 10.0, allow_nan=False)),
        "seed": st.integers(0, 2 ** 16),
        "weight_scale": st.just(None) if params is not None else
        st.one_of(st.just(1.0), st.floats(0.0, 5.0, allow_nan=False)),
    })
    fixed = dict(signature=signature, call=template, cost_fn=cost_fn, cost_call=cost_template, labels=labels,
                 unroll=unroll, params=params)

    def run(case, mode, against_):
        kw = dict(fixed, seed=case["seed"], weight_scale=case["weight_scale"], mode=mode, against=against_)
        if dataset is not None:
            net = Network(case["sizes"])
            kw["problem"] = problem_from_data(dataset, net, labels=labels, lam=case["lam"], examples=case["examples"])
        else:
            kw.update(lam=case["lam"], examples=case["examples"])
        return check(grad_fn, case["sizes"], **kw)

    tried = [0]
    first_kinds: list = []
    stopped: list[UserCodeStopped] = []
    bar = None

    def fails(case) -> bool:
        bar.advance(1)
        if stopped:  # the function's process is gone: every case "fails" (so none is flaky) until find ends
            return True
        tried[0] += 1
        try:
            report = run(case, "full", against)
            if report.ok:
                return False
            kinds = frozenset(report.kinds)
        except UserCodeError:
            kinds = frozenset({"raised"})
        except UserCodeStopped as exc:  # raised out of find, hypothesis would call it flaky
            stopped.append(exc)
            return True
        if not first_kinds:
            first_kinds.append(kinds)
            return True
        return kinds == first_kinds[0]  # smaller, but failing the same way: no degenerate diagnosis

    cfg = settings(max_examples=max_examples, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    try:
        # Up to max_examples cases while searching; shrinking a failure found tries more.
        with _progress.task("shrinking (cases searched, then shrunk)", max_examples, "cases") as bar:
            case = find(cases, fails, settings=cfg, random=random.Random(seed))
    except NoSuchExample:
        case = None
    except Exception:  # hypothesis's own report of what the stopped function did to the search
        if not stopped:
            raise
    if stopped:
        raise stopped[0]
    if case is None:
        return None
    try:
        report = run(case, "auto", ("jax", "numeric"))
    except UserCodeError as exc:
        report = CheckReport({"function": fn_name(grad_fn), "signature": signature, "sizes": list(case["sizes"]),
                              "n_params": Network(case["sizes"]).n_params, "examples": case["examples"],
                              "lam": case["lam"], "seed": case["seed"], "weight_scale": case["weight_scale"],
                              "mode": "full", "against": ["jax", "numeric"]},
                             [Finding("bad_output", None, f"on this case {exc}", "called the function",
                                      cause="raised")], {})
    target = target or f"PATH.py:{fn_name(grad_fn)}"
    if cost_fn is not None and cost_target is None:
        where = code_file(cost_fn) if code_file(cost_fn) not in (None, code_file(grad_fn)) else target.rpartition(":")[0]
        cost_target = f"{where}:{fn_name(cost_fn)}"
    report.reproducer = _reproducer(case, signature, target, tried[0], call=template, cost_target=cost_target,
                                    cost_call=cost_template, labels=labels, unroll=unroll, data=data,
                                    data_labels=data_labels, weights=weights)
    return report


def _reproducer(case, signature, target, tried, *, call, cost_target, cost_call, labels, unroll, data,
                data_labels, weights) -> dict:
    """The command and the pytest test that rerun the smallest case with every argument."""
    sizes = ",".join(map(str, case["sizes"]))
    point = data is not None or weights is not None
    parts = ["gradlab check", shlex.quote(target), "--sizes", sizes, "--examples", str(case["examples"]),
             "--lambda", repr(case["lam"]), "--seed", str(case["seed"])]
    if case["weight_scale"] is not None:
        parts += ["--weight-scale", repr(case["weight_scale"])]
    if signature != "gradlab":
        parts += ["--signature", signature]
    if call is not None:
        parts += ["--call", shlex.quote(call.source)]
    if cost_target is not None:
        parts += ["--cost", shlex.quote(cost_target)]
    if cost_call is not None:
        parts += ["--cost-call", shlex.quote(cost_call.source)]
    if labels:
        parts += ["--labels", str(labels)]
    if unroll != "C":
        parts += ["--unroll", unroll]
    for opt, val in (("--data", data), ("--data-labels", data_labels), ("--weights", weights)):
        if val is not None:
            parts += [opt, shlex.quote(str(val))]
    func = re.sub(r"\W", "_", target.rpartition(":")[2] or target.rpartition("/")[2].removesuffix(".py")) or "target"
    kw = [f"signature={signature!r}"] if signature != "gradlab" else []
    if call is not None:
        kw.append(f"call={call.source!r}")
    if cost_target is not None:
        kw.append("cost_fn=cost_fn")
    if cost_call is not None:
        kw.append(f"cost_call={cost_call.source!r}")
    if labels:
        kw.append(f"labels={labels}")
    if unroll != "C":
        kw.append(f"unroll={unroll!r}")
    used = ["load_function"] * (cost_target is not None) + ["load_target"] + ["user_point"] * point
    lines = ["import gradlab", f"from gradlab.check import {', '.join(used)}", "", "",
             f"def test_{func}_smallest_failing_case():", f"    target = load_target({target!r})"]
    if cost_target is not None:
        lines.append(f"    cost_fn = load_function({cost_target!r})")
    if point:
        lines.append(f"    _, problem, params = user_point({tuple(case['sizes'])!r}, data={_path(data)}, "
                     f"data_labels={_path(data_labels)}, weights={_path(weights)}, labels={labels}, "
                     f"unroll={unroll!r}, examples={case['examples'] if data is not None else None}, "
                     f"lam={case['lam']!r})")
        kw.append("problem=problem" if data is not None else f"lam={case['lam']!r}, examples={case['examples']}")
        kw.append("params=params" if weights is not None else f"weight_scale={case['weight_scale']!r}")
        kw.append(f"seed={case['seed']}")
    else:
        kw.append(f"lam={case['lam']!r}, examples={case['examples']}, seed={case['seed']}, "
                  f"weight_scale={case['weight_scale']!r}")
    lines += [f"    report = gradlab.check(target, {tuple(case['sizes'])!r}, {', '.join(kw)})",
              "    assert report.ok, str(report)", ""]
    return {"sizes": list(case["sizes"]), "lam": case["lam"], "examples": case["examples"], "seed": case["seed"],
            "weight_scale": case["weight_scale"], "command": " ".join(parts), "pytest": "\n".join(lines),
            "tried": tried}


def _path(p) -> str:
    return "None" if p is None else repr(str(p))
