"""Shared test configuration: hypothesis profiles.

``ci`` is derandomised (the same examples every run) and is selected by ``.ci/run`` through
HYPOTHESIS_PROFILE=ci; ``dev`` (default) explores fresh examples each run.
"""

import os
import sys

# One BLAS thread, as the `markovfork` command sets for itself, before anything imports NumPy:
# sweep workers run with one thread, and GEMM results can differ in the last bits between
# thread counts, so the in-process run (workers=1) must use one thread too to compare equal.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
assert "numpy" not in sys.modules or os.environ["OPENBLAS_NUM_THREADS"] == "1", "numpy was imported before conftest"

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
