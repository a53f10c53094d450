"""Shared test configuration: hypothesis profiles.

``ci`` is derandomised (the same examples every run) and is selected by ``.ci/run`` through
HYPOTHESIS_PROFILE=ci; ``dev`` (default) explores fresh examples each run.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
