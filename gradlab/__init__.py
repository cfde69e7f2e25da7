"""gradlab: one regularised neural-network cost, three independent gradients, cross-checked."""

from gradlab._errors import GradlabError
from gradlab.compare import CompareReport, compare
from gradlab.network import (
    Network,
    Problem,
    accuracy,
    cost,
    debug_init,
    debug_problem,
    predict,
    random_init,
)
from gradlab.sources import SOURCES, gradient, jax_source, value_and_gradient

__version__ = "0.1.0"

__all__ = [
    "GradlabError",
    "Network",
    "Problem",
    "random_init",
    "debug_init",
    "debug_problem",
    "cost",
    "predict",
    "accuracy",
    "gradient",
    "value_and_gradient",
    "SOURCES",
    "jax_source",
    "compare",
    "CompareReport",
]
