"""The walk sampler: one uniform per step, inverse CDF over each node's children.

At internal node v with children c_1 < ... < c_m and uniform u, the step goes to the first c_j
with u < row[c_1] + ... + row[c_j]; the walk repeats until a leaf. O(steps) per rollout, no
set-up. Rounding guard: a u at or beyond the row's rounded sum takes the last child with positive
probability (never a zero-probability child, never a child of the next node: QuantEcon's
walk-off-the-CDF bug).

Node ids are uint64 here: unsigned indices spare Numba's negative-index wraparound code.
"""

from __future__ import annotations

import numba
import numpy as np

from markovfork.model.indices import U1
from markovfork.engines.sampled.streams import to_unit, xoshiro_next

__all__ = ["step", "walk"]


@numba.njit(cache=True, inline="always")
def step(child_start, row, v, u):
    """Child of internal node v taken by uniform u (see the module docstring)."""
    v = np.uint64(v)
    a, b = np.uint64(child_start[v]), np.uint64(child_start[v + U1])
    acc = 0.0
    for c in range(a, b):
        acc += row[c]
        if u < acc:
            return c
    c = b - U1
    while c > a and not row[c] > 0.0:
        c -= U1
    return c


@numba.njit(cache=True, inline="always")
def walk(child_start, row, v, s0, s1, s2, s3):
    """Walk from node v to a leaf, one uniform of the stream (s0..s3) per step; returns (leaf,
    new stream state)."""
    v = np.uint64(v)
    while child_start[v] < child_start[v + U1]:
        x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        v = step(child_start, row, v, to_unit(x))
    return v, s0, s1, s2, s3
