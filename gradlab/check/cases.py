"""The checker's case: a reproducible problem and weights from a seed, and its defaults."""

from __future__ import annotations

import numpy as np

from gradlab.network import Network, Problem, random_init

__all__ = ["case", "DEFAULT_LAM", "DEFAULT_EXAMPLES"]

#: Defaults of the checks: lambda > 0 so that regularisation bugs can show (the lambda = 0
#: experiment is always run as well); 5 examples, as in the seed's gradient check.
DEFAULT_LAM = 1.0
DEFAULT_EXAMPLES = 5


def case(network: Network, examples: int, lam: float, seed: int, weight_scale: float):
    """Random weights (the seed's initialiser, scaled), inputs in [-1, 1], every class present."""
    rng = np.random.default_rng(seed)
    params = random_init(network, rng) * weight_scale
    X = rng.uniform(-1.0, 1.0, size=(examples, network.n_inputs))
    y = rng.permutation(np.arange(examples) % network.n_outputs)
    return Problem(network, X, y, lam), params
