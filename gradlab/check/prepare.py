"""check()'s arguments, validated once: the callers of the user's code, and the point."""

from __future__ import annotations

import numpy as np

from gradlab import _resources
from gradlab import _validate as v
from gradlab._errors import GradlabError, UserCodeError
from gradlab._judge import MAX_LAM, MAX_WEIGHT_SCALE
from gradlab._usercode import check_signature
from gradlab.check.calls import Caller
from gradlab.check.conventions import SIGNATURE_NAMES, CallTemplate, Convention, check_names, target_kind
from gradlab.check.point import case, read_params
from gradlab.network import Network, check_problem, random_init

__all__ = ["DEFAULT_SIZES", "DEFAULT_LAM", "DEFAULT_EXAMPLES", "SIGNATURES", "callers", "point"]

#: Defaults of :func:`check`: lambda > 0 so that regularisation bugs can show (the lambda = 0
#: experiment is always run as well); 5 examples, as in the seed's gradient check.
DEFAULT_SIZES = (3, 5, 3)
DEFAULT_LAM = 1.0
DEFAULT_EXAMPLES = 5

SIGNATURES = tuple(SIGNATURE_NAMES)

_SHAPES = {"gradlab": "(problem, params)",
           "seed": "(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda)"}


def _template(call, target, name):
    return call if isinstance(call, CallTemplate) else CallTemplate(call, target, name=name)


def callers(grad_fn, signature, call, cost_fn, cost_call, network: Network, convention: Convention,
            has_labels: bool):
    """``(caller, cost_caller or None)`` for the user's gradient and cost, every argument checked."""
    # A class loaded in a worker process (isolated) arrives as a stand-in that is not a class.
    kind = "class" if getattr(grad_fn, "stands_in_for_class", False) is True else target_kind(grad_fn)
    if kind == "function" and not callable(grad_fn):
        raise v.fail("grad_fn", grad_fn, "a callable, a class or a module (with call=)")
    if cost_fn is not None and not callable(cost_fn):
        raise v.fail("cost_fn", cost_fn, "a callable or None")
    if cost_fn is not None and cost_call is not None:
        raise GradlabError("give the cost as cost_fn or as cost_call, not both")
    if call is not None and signature != "gradlab":
        raise GradlabError(f"give signature={signature!r} or call=, not both (signature='seed' is the call "
                           "'f(params, input_layer_size, hidden_layer_size, num_labels, X, y, lam)')")
    template = None
    if call is not None:
        template = _template(call, grad_fn, "call")
        check_names(template.names, network, has_labels, template.what)
        if cost_fn is not None:
            raise GradlabError("with call=, give the cost as cost_call= (a template too), not cost_fn")
    elif kind != "function":  # the target's own shape (a batch reports it as that target's error)
        raise UserCodeError(f"grad_fn is a {kind}; say how to call it with call=, e.g. "
                           "call='NeuralNet(sizes, X, y, lam).gradient(params)' (--call on the command line)")
    else:
        if signature == "seed" and network.n_layers != 3:
            raise v.fail("sizes", network.sizes, "three layer sizes (input, hidden, output) for signature='seed'")
        check_signature(grad_fn, len(SIGNATURE_NAMES[signature]), "grad_fn", _SHAPES[signature])
        if cost_fn is not None:
            check_signature(cost_fn, len(SIGNATURE_NAMES[signature]), "cost_fn", _SHAPES[signature])
        if signature == "seed" and not has_labels:
            raise GradlabError("signature='seed' passes labels y, but the problem has a target matrix")
    caller = Caller(grad_fn, signature, network, "grad_fn" if template is None else template.what,
                    convention=convention, template=template)
    if convention.labels == 1 and not {"y", "y_col"} & set(caller.names):
        raise GradlabError(f"labels=1 changes the labels y and y_col the function is given, but "
                           f"{caller.name} is given neither ({', '.join(caller.names)})")
    cost_caller = None
    if cost_fn is not None:
        cost_caller = Caller(cost_fn, signature, network, "cost_fn", convention=convention)
    elif cost_call is not None:
        tpl = _template(cost_call, grad_fn, "cost_call")
        check_names(tpl.names, network, has_labels, tpl.what)
        cost_caller = Caller(grad_fn, signature, network, tpl.what, convention=convention, template=tpl)
    return caller, cost_caller


def point(sizes, problem, params, *, lam, examples, seed, weight_scale, convention: Convention, jax: bool):
    """``(problem, params, info)``: the user's own data and weights where given, gradlab's
    random ones (from ``seed``) elsewhere."""
    seed = v.integer("seed", seed, minimum=0)
    if problem is not None:
        problem = check_problem(problem)
        network = problem.network
        if sizes is not None and tuple(sizes if not isinstance(sizes, Network) else sizes.sizes) != network.sizes:
            raise GradlabError(f"sizes must match the problem's network {network.sizes}; got sizes={tuple(sizes)}")
        if examples is not None:
            raise GradlabError(f"examples: the problem holds its own {problem.m} examples; leave examples out "
                               "(or pass fewer rows in the Problem)")
        if lam is not None:
            problem = problem.with_lam(v.real("lam", lam, minimum=0.0, maximum=MAX_LAM))
    else:
        network = sizes if isinstance(sizes, Network) else Network(DEFAULT_SIZES if sizes is None else sizes)
    if params is not None and weight_scale is not None:
        raise GradlabError("weight_scale multiplies gradlab's random weights; with params= leave it out")
    weight_scale = 1.0 if weight_scale is None else v.real("weight_scale", weight_scale, minimum=0.0,
                                                           maximum=MAX_WEIGHT_SCALE)
    info = {"data": "given" if problem is not None else "random",
            "weights": "given" if params is not None else "random"}
    if problem is None:
        lam = DEFAULT_LAM if lam is None else v.real("lam", lam, minimum=0.0, maximum=MAX_LAM)
        examples = DEFAULT_EXAMPLES if examples is None else v.integer("examples", examples, minimum=1)
        _resources.require_memory(_resources.problem_memory(network.sizes, examples, jax=jax))
        problem, random_params = case(network, examples, lam, seed, weight_scale)
    else:
        _resources.require_memory(_resources.problem_memory(network.sizes, problem.m, jax=jax))
        random_params = random_init(network, np.random.default_rng(seed)) * weight_scale
    params = random_params if params is None else read_params(params, network, convention)
    info.update(weight_scale=weight_scale, seed=seed)
    return problem, params, info
