"""gradlab: one regularised neural-network cost, three independent gradients, cross-checked."""

from gradlab._errors import GradlabError
from gradlab.compare import CompareReport, compare
from gradlab.network import (
    ACTIVATIONS,
    Network,
    Problem,
    accuracy,
    cost,
    debug_init,
    debug_problem,
    predict,
    random_init,
)
from gradlab.sources import SOURCES, gradient, value_and_gradient
from gradlab.sources.numeric import METHODS as NUMERIC_METHODS
from gradlab.sources.numeric import NumericGradient, numeric_gradient

__version__ = "0.1.0"

__all__ = [
    "GradlabError",
    "Network",
    "ACTIVATIONS",
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
    "compare",
    "CompareReport",
    "numeric_gradient",
    "NumericGradient",
    "NUMERIC_METHODS",
]
