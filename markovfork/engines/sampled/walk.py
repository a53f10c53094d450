"""The walk sampler: one uniform per step, inverse CDF over each node's children, until a leaf.

O(steps) per rollout, no set-up. The step and its rounding guard are
:func:`markovfork.model.kernels.choose_child` (the one definition, shared with the RL rollouts).

Node ids are uint64 here: unsigned indices spare Numba's negative-index wraparound code.
"""

from __future__ import annotations

import numba
import numpy as np

from markovfork.model.indices import U1
from markovfork.model.kernels import choose_child
from markovfork.engines.sampled.streams import to_unit, xoshiro_next

__all__ = ["walk"]


@numba.njit(cache=True, inline="always")
def walk(child_start, row, v, s0, s1, s2, s3):
    """Walk from node v to a leaf, one uniform of the stream (s0..s3) per step; returns (leaf,
    new stream state)."""
    v = np.uint64(v)
    while child_start[v] < child_start[v + U1]:
        x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        v = choose_child(child_start, row, v, to_unit(x))
    return v, s0, s1, s2, s3
