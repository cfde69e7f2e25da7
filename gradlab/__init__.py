"""gradlab: one regularised neural-network cost, three independent gradients, cross-checked.

A network and its data are values; a gradient source is any ``(problem, params) -> grad``::

    import gradlab
    problem = gradlab.debug_problem((3, 5, 3), lam=1.0)    # or gradlab.Problem(net, X, y, lam)
    params = gradlab.debug_init(problem.network)           # or gradlab.random_init(net, seed=0)
    net = gradlab.Network((64, 25, 10))                    # layer sizes, hidden activation

Compare -- the gradient three ways, side by side (``gradlab compare``)
    gradlab.compare(problem, params, ("backprop", "jax", "numeric"))   -> CompareReport
    gradlab.gradient(problem, params, source="jax"), gradlab.value_and_gradient(...)
    gradlab.cost(problem, params), gradlab.SOURCES (the registered sources by name)
    gradlab.numeric_gradient(problem, params, method="central")        -> NumericGradient

Check -- is YOUR gradient right, and if not, where and why (``gradlab check``)
    gradlab.check(my_gradient, (3, 5, 3))        -> CheckReport (.ok, .findings, str())
    gradlab.shrink(my_gradient)                  -> the smallest failing case, or None
    gradlab.check_function(f, grad, *inputs)     any scalar function    -> GradientReport
    gradlab.check_layer(forward, backward, *inputs)   a layer's backward pass
    from gradlab.check import load_function      load "file.py:name" as the CLI does

Train -- on the shipped digits or your data (``gradlab train / predict / plot``)
    gradlab.data.load_digits(), gradlab.data.train_test_split(X, y, seed=0)
    gradlab.train(X, y, hidden=25, grad_source="backprop")   -> TrainResult (.save(path))
    gradlab.load("model.npz").predict(X), gradlab.predict, gradlab.accuracy
    gradlab.plots (imported on use: it needs matplotlib)

Explain -- back-propagation's deltas are reverse-mode autodiff (``gradlab explain``)
    gradlab.explain(problem, params, example=0)  -> ExplainReport

Second order -- Hessian-vector products three ways (``--order 2`` of compare, check, explain)
    gradlab.hvp(problem, params, v, source="backprop")   -> H v (Pearlmutter's R-operator)
    gradlab.HVP_SOURCES ("backprop", "jax", "numeric", "numeric-complex"; or a callable)
    gradlab.numeric_hvp(problem, params, v)      -> NumericHvp (.hvp, .error per entry)
    gradlab.compare(problem, params, order=2)    -> HvpCompareReport (symmetry, the Hessian's signs)
    gradlab.check(my_hvp, (3, 5, 3), order=2), gradlab.explain(problem, params, order=2)
    gradlab.train(X, y, method="newton-cg", hvp_source="backprop")   (also trust-ncg, trust-krylov)

Steps -- finite-difference error against the step (``gradlab steps``)
    gradlab.step_curve(problem, params)          -> StepsReport

Testing -- hypothesis strategies for your own suite (imported on use: it needs hypothesis)
    from gradlab.testing import problems_with_parameters, networks, assert_gradients_agree
    problems_with_parameters() draws 3-layer networks; networks(min_layers=2, max_layers=5)
    assert_gradients_agree(problem, params, sources=(my_gradient, "jax"))
    shaped_inputs(...), assert_function_gradients(...), assert_layer_gradients(...)

Every report has ``.ok`` where it judges, ``str()`` for the text the CLI prints and
``.to_dict()`` for its JSON. Bad input raises GradlabError (a ValueError) naming the
argument, the value and what is accepted. Precision is float64 throughout;
``gradlab.jax_source("float32")`` is jax in single precision, usable wherever a source is.
"""

import importlib
import sys
import types

from gradlab._errors import GradlabError
from gradlab._version import __version__  # noqa: F401 - the package version

# The names below are imported on first use (PEP 562), not by `import gradlab`: a process that
# needs only a part -- `gradlab --help`, a command that stops at a usage error, the process
# gradlab starts for a user's code -- does not load the rest (0.1-0.2 s of CPU a process;
# benchmarks/startup.py). `from gradlab import check` and `gradlab.check(...)` work as
# before. plots is not among them: it draws with matplotlib, and is imported as
# `gradlab.plots` on purpose.
_EXPORTS = {
    "gradlab.check": ("CheckReport", "GradientReport", "check", "check_function", "check_layer", "shrink"),
    "gradlab.compare": ("CompareReport", "HvpCompareReport", "compare"),
    "gradlab.explain": ("ExplainReport", "explain"),
    "gradlab.network": ("ACTIVATIONS", "Network", "Problem", "accuracy", "cost", "debug_init", "debug_problem",
                        "predict", "random_init"),
    "gradlab.sources": ("SOURCES", "gradient", "jax_source", "value_and_gradient"),
    "gradlab.sources.numeric": ("NumericGradient", "numeric_gradient"),
    "gradlab.sources.second_order": ("HVP_SOURCES", "hvp", "numeric_hvp"),
    "gradlab.sources.hvp_numeric": ("NumericHvp",),
    "gradlab.steps": ("StepsReport", "step_curve"),
    "gradlab.model": ("TrainResult", "load"),
    "gradlab.trainer": ("train",),
}
#: name -> (module, its name there); a module itself where that name is None.
_LAZY = {name: (module, name) for module, names in _EXPORTS.items() for name in names}
_LAZY["NUMERIC_METHODS"] = ("gradlab.sources.numeric", "METHODS")
_LAZY["data"] = ("gradlab.data", None)


def __getattr__(name):
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gradlab' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """gradlab's module type: a name exported from a submodule of the same name (check,
    compare, explain) stays the export.

    Importing a submodule binds it on its package (``gradlab.check`` the subpackage), which
    would hide the function once ``gradlab.check.core`` or the like is first imported. The
    submodules stay reachable as always, through ``import gradlab.check.core``.
    """

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name, (None, None))[1] is not None:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = ["GradlabError", *_LAZY]
