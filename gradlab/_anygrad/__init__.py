"""Check any gradient: scalar functions of any inputs, and layers' backward passes (VJPs).

The same witnesses, rules and report face as the network check, for a function the user
writes: ``check_function(f, grad, *inputs)`` and ``check_layer(forward, backward, *inputs)``.
"""

from gradlab._anygrad.api import DEFAULT_DOUTS, check_function, check_layer
from gradlab._anygrad.engine import FULL_MODE_MAX_ENTRIES
from gradlab._anygrad.report import KINDS, Finding, GradientReport

__all__ = ["check_function", "check_layer", "GradientReport", "Finding", "KINDS", "DEFAULT_DOUTS",
           "FULL_MODE_MAX_ENTRIES"]
