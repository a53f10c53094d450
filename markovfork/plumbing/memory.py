"""Peak memory of this process: the one measurement the bridge's summary and the benchmarks use.

    peak_rss_gib() = ru_maxrss / 2^20   (getrusage(RUSAGE_SELF); ru_maxrss is KiB on Linux, bytes on macOS)

The high-water mark of the resident set since the process started (Python, NumPy, Numba and
torch allocations alike); it never goes down. The memory a run *may* use is
:func:`markovfork.plumbing.checks.physical_memory`, and the "needs X GiB, have Y" check is
:func:`markovfork.plumbing.checks.fits_in_memory`.
"""

from __future__ import annotations

import resource
import sys

__all__ = ["peak_rss_gib"]


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, in GiB (module docstring)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20
