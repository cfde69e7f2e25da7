"""Shrinking: search with hypothesis for a failing case and shrink it to the smallest."""

from __future__ import annotations

import random

from gradlab import _progress
from gradlab import _validate as v
from gradlab._errors import UserCodeError
from gradlab._usercode import fn_name
from gradlab.check.core import SIGNATURES, check, validate_against
from gradlab.check.findings import Finding
from gradlab.check.report import CheckReport
from gradlab.network import Network

__all__ = ["shrink"]


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

    signature = v.choice("signature", signature, SIGNATURES)
    max_examples = v.integer("max_examples", max_examples, minimum=1)
    seed = v.integer("seed", seed, minimum=0)
    against = validate_against(against)
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
    bar = None

    def fails(case) -> bool:
        tried[0] += 1
        try:
            failed = not check(grad_fn, case["sizes"], signature=signature, cost_fn=cost_fn, lam=case["lam"],
                               examples=case["examples"], seed=case["seed"], weight_scale=case["weight_scale"],
                               mode="full", against=against).ok
        except UserCodeError as exc:
            raised[repr(case)] = str(exc)
            failed = True
        bar.advance(1)
        return failed

    cfg = settings(max_examples=max_examples, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    try:
        # Up to max_examples cases while searching; shrinking a failure found tries more.
        with _progress.task("shrinking (cases searched, then shrunk)", max_examples, "cases") as bar:
            case = find(cases, fails, settings=cfg, random=random.Random(seed))
    except NoSuchExample:
        return None
    kw = dict(signature=signature, cost_fn=cost_fn, lam=case["lam"], examples=case["examples"],
              seed=case["seed"], weight_scale=case["weight_scale"])
    try:
        report = check(grad_fn, case["sizes"], **kw)
    except UserCodeError as exc:
        report = CheckReport({"function": fn_name(grad_fn), "signature": signature, "sizes": list(case["sizes"]),
                              "n_params": Network(case["sizes"]).n_params, "examples": case["examples"],
                              "lam": case["lam"], "seed": case["seed"], "weight_scale": case["weight_scale"],
                              "mode": "full", "against": ["jax", "numeric"]},
                             [Finding("bad_output", None, f"on this case {exc}", "called the function",
                                      cause="raised")], {})
    report.reproducer = _reproducer(case, signature, target or f"PATH.py:{fn_name(grad_fn)}",
                                    cost_fn, tried[0])
    return report


def _reproducer(case, signature, target, cost_fn, tried) -> dict:
    sizes = ",".join(map(str, case["sizes"]))
    parts = ["gradlab check", target, "--sizes", sizes, "--examples", str(case["examples"]),
             "--lambda", repr(case["lam"]), "--seed", str(case["seed"]), "--weight-scale", repr(case["weight_scale"])]
    if signature != "gradlab":
        parts += ["--signature", signature]
    if cost_fn is not None:
        parts += ["--cost", fn_name(cost_fn)]
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
