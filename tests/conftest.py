"""Shared test configuration: hypothesis profiles."""

import os

from hypothesis import HealthCheck, settings

# jit compilation on first sight of a network shape makes single examples slow, so no
# per-example deadline. The CI profile is the default: >= 200 examples per property.
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("GRADLAB_HYPOTHESIS_PROFILE", "ci"))
