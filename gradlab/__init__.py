"""gradlab: one regularised neural-network cost, three independent gradients, cross-checked."""

from gradlab._errors import GradlabError
from gradlab.check import CheckReport, check, shrink
from gradlab.compare import CompareReport, compare
from gradlab.explain import ExplainReport, explain
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
from gradlab.sources import SOURCES, gradient, jax_source, value_and_gradient
from gradlab.sources.numeric import METHODS as NUMERIC_METHODS
from gradlab.sources.numeric import NumericGradient, numeric_gradient

# Training, data, model files. plots is imported on use: it draws with matplotlib.
from gradlab import data
from gradlab._version import __version__  # noqa: F401 - the package version
from gradlab.model import TrainResult, load
from gradlab.trainer import train

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
    "jax_source",
    "compare",
    "CompareReport",
    "explain",
    "ExplainReport",
    "train",
    "TrainResult",
    "load",
    "data",
    "check",
    "shrink",
    "CheckReport",
    "numeric_gradient",
    "NumericGradient",
    "NUMERIC_METHODS",
]
