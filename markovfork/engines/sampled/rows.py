"""Validation of step-probability rows by the kernels: every entry finite and >= 0, and every
internal node's children summing to 1 within a tolerance.

The sampling kernels check each row before they sample from it (``row_ok``, or the same checks
fused into the path set-up), so no value of ``probs`` can send an index out of bounds; an invalid
row is not sampled, and the Python layer then names the first bad entry.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["row_ok", "probs_ok", "row_sums"]


@numba.njit(cache=True)
def row_sums(child_start, nodes, probs, out):
    """out[p, i] = sum of probs[p] over the children of nodes[i], in child order."""
    for p in range(probs.shape[0]):
        for i in range(nodes.shape[0]):
            acc = 0.0
            for v in range(child_start[nodes[i]], child_start[nodes[i] + 1]):
                acc += probs[p, v]
            out[p, i] = acc


@numba.njit(cache=True)
def row_ok(last_child, row, tol):
    """True iff every entry of row is finite and >= 0 and every internal node's row sums to 1
    within tol. One sequential pass: a running sum over ids 1..N-1, checked and reset at each
    last child, adds each node's children in the order ``row_sums`` does, so the two agree
    exactly. A NaN or infinite entry makes its node's sum fail; negatives are caught by the
    running minimum (min/compare rather than per-entry boolean updates)."""
    n_nodes = row.shape[0]
    if n_nodes == 0:
        return True
    lowest = row[0]
    first_ok = row[0] >= 0.0 and row[0] < np.inf  # the root's entry is in no node's row
    n_bad = 0
    acc = 0.0
    for v in range(np.uint64(1), np.uint64(n_nodes)):  # unsigned: no negative-index wraparound code
        x = row[v]
        lowest = min(lowest, x)
        acc += x
        if last_child[v]:
            n_bad += not abs(acc - 1.0) <= tol
            acc = 0.0
    return first_ok and n_bad == 0 and lowest >= 0.0


@numba.njit(cache=True, parallel=True)
def probs_ok(last_child, probs, tol):
    """``row_ok`` for every problem, problems in parallel."""
    ok = np.ones(probs.shape[0], dtype=np.bool_)
    for p in numba.prange(probs.shape[0]):
        ok[p] = row_ok(last_child, probs[p], tol)
    return ok.all()
