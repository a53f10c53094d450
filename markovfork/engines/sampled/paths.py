"""The path sampler: one uniform per rollout, inverse CDF over the leaves, with a guide table.

The nodes, in id order, split [0, 1) into intervals of width reach(v) at the leaves v below the
start s (0 elsewhere), reach(v) = product of row[w] over the steps w on the path s -> v. With
53-bit integer thresholds T_i = sum over j <= i of round(2^53 reach(leaf_j)) (an exact integer
prefix sum), the 53-bit uniform k picks the first leaf i with k < T_i: leaf i with probability
round(2^53 reach) / 2^53, never a leaf of width 0. Set-up per problem is O(N) (``path_setup``);
each pick is one guide read and four compares (``path_pick``).

Guide table (Chen and Asau, 1974): guide[j] = #{i: T_i <= j 2^shift}, the first candidate for
any k in bucket j. Rounding guard: the last leaf of positive width and every slot after it get
T = 2^53, above any k, so a k beyond the rounded total takes that leaf.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from markovfork.model.indices import U1, U2, U3

__all__ = ["PAD", "PathTables", "path_buffers", "path_setup", "guide_table", "path_pick", "guide_shift"]

_TWO53 = 2.0**53
NEVER = np.int64(2**53)  # integer threshold no 53-bit uniform reaches (the rounding guard)
PAD = 3  # thresholds past the last leaf (all 2^53), so path_pick may read a window of 4


class PathTables(NamedTuple):
    """Scratch of the path sampler for one problem at a time (see ``path_buffers``)."""

    mass: np.ndarray  # (N,) float64: reach(v) from the start
    thresholds: np.ndarray  # (L + PAD,) int64: T_i, then the guard
    guide: np.ndarray  # (2^(53 - shift) + 2,) uint32: the guide table


@numba.njit(cache=True)
def path_buffers(n_nodes, n_leaves, shift):
    """Empty :class:`PathTables` for a tree of n_nodes nodes and n_leaves leaves."""
    return PathTables(np.empty(n_nodes), np.empty(n_leaves + PAD, dtype=np.int64),
                      np.empty((1 << (53 - shift)) + 2, dtype=np.uint32))


@numba.njit(cache=True, inline="always")
def _check_and_reach(parent, last_child, row, mass, v0, v1, tol, lowest, acc, n_bad):
    """Nodes v0 .. v1-1 of the fused pass of ``path_setup``: ``rows.row_ok``'s running checks
    and mass[v] = mass[parent[v]] * row[v]; returns the updated (lowest, acc, n_bad)."""
    for v in range(np.uint64(v0), np.uint64(v1)):  # unsigned: no negative-index wraparound code
        x = row[v]
        lowest = min(lowest, x)
        acc += x
        mass[v] = mass[parent[v]] * x
        if last_child[v]:
            n_bad += not abs(acc - 1.0) <= tol
            acc = 0.0
    return lowest, acc, n_bad


@numba.njit(cache=True)
def path_setup(tree, row, s, tol, tables):
    """Validate ``row`` and build ``tables`` for rollouts from node s of ``tree`` (a
    ``KernelTree``); returns whether the row is valid (``rows.row_ok``'s exact test; no tables
    are built from an invalid row). Raises before writing anything if a buffer or array does not
    have the size the tree needs.

    One pass over the nodes checks the row and computes mass[v] = reach(v) (1 at s, 0 off its
    subtree); one over the leaves the thresholds T_i; then ``guide_table``.
    """
    parent, last_child, leaves, shift = tree.parent, tree.last_child, tree.leaves, tree.shift
    mass, thresholds, guide = tables.mass, tables.thresholds, tables.guide
    n_nodes = row.shape[0]
    n_leaves = leaves.shape[0]
    if (n_nodes == 0 or parent.shape[0] != n_nodes or last_child.shape[0] != n_nodes or mass.shape[0] < n_nodes
            or thresholds.shape[0] < n_leaves + PAD or not 0 < shift <= 53
            or guide.shape[0] != (np.int64(1) << (53 - shift)) + 2):
        raise ValueError("path_setup: tables or row do not match the tree")
    if s < 0 or s >= n_nodes:
        raise ValueError("path_setup: start is not a node of the tree")
    first_ok = row[0] >= 0.0 and row[0] < np.inf  # the root's entry is in no node's row
    mass[0] = 1.0 if s == 0 else 0.0
    # the checks of row_ok fused with the reach pass, split at s (no per-node select)
    lowest, acc, n_bad = _check_and_reach(parent, last_child, row, mass, 1, s + 1, tol, row[0], 0.0, 0)
    mass[s] = 1.0
    lowest, acc, n_bad = _check_and_reach(parent, last_child, row, mass, s + 1, n_nodes, tol, lowest, acc, n_bad)
    if not (first_ok and n_bad == 0 and lowest >= 0.0):
        return False  # no tables from an invalid row (a NaN reach would index out of bounds)
    total = np.int64(0)
    for i in range(n_leaves):
        total += np.int64(mass[leaves[i]] * _TWO53 + 0.5)  # leaves: uint32, no wraparound code
        thresholds[i] = total
    last = n_leaves - 1  # the last leaf of positive width
    while last > 0 and thresholds[last - 1] == thresholds[last]:
        last -= 1
    for i in range(last, n_leaves + PAD):
        thresholds[i] = NEVER
    guide_table(thresholds[:last], guide, shift)
    return True


@numba.njit(cache=True)
def guide_table(thresholds, guide, shift):
    """guide[j] = #{i: thresholds[i] <= j 2^shift} for j < m = guide.shape[0] - 2.
    ``thresholds``: the ones below the rounding guard (non-decreasing).

    Branch-free build: bucket b(i) = ceil(thresholds[i] / 2^shift) is non-decreasing in i, so
    storing i + 1 at b(i) for i in order leaves the last such i at each bucket; guide[j] is then
    the running maximum. Thresholds up to 2^53 have b(i) <= m, inside the table, and need no
    clamp; the few beyond 2^53 (reach sums exceed 1 by rounding or tolerance) collect in
    guide[m + 1], never read."""
    m = guide.shape[0] - 2
    guide[:] = 0
    r = (np.int64(1) << shift) - 1
    n = thresholds.shape[0]
    end = n  # thresholds[:end] <= 2^53
    while end > 0 and thresholds[end - 1] > NEVER:
        end -= 1
    ushift = np.uint64(shift)
    for i in range(end):
        guide[np.uint64(thresholds[i] + r) >> ushift] = i + 1
    for i in range(end, n):
        guide[m + 1] = i + 1
    c = guide[0]
    for j in range(m):
        c = max(c, guide[j])
        guide[j] = c


@numba.njit(cache=True, inline="always")
def path_pick(thresholds, guide, shift, k):
    """Index of the leaf whose threshold interval holds the 53-bit uniform k: the first i with
    k < thresholds[i], searched from the guide. Thresholds below 2^53 are non-decreasing, so
    those <= k in a window of 4 are a prefix: counting them (four independent loads, no branch)
    skips them; only when all four are <= k does a loop scan on."""
    i = np.uint64(guide[np.uint64(k) >> np.uint64(shift)])
    c = (np.int64(thresholds[i] <= k) + np.int64(thresholds[i + U1] <= k) + np.int64(thresholds[i + U2] <= k)
         + np.int64(thresholds[i + U3] <= k))
    i += np.uint64(c)
    if c == 4:
        while thresholds[i] <= k:
            i += U1
    return i


def guide_shift(n_leaves: int) -> int:
    """Guide buckets m = 2^(53 - shift): 2L to 4L up to 512 leaves (L = n_leaves), 1024 for
    513..4096 leaves, L/4 to L/2 above (measured choices: docs/performance.md)."""
    bits = (max(int(n_leaves), 2) - 1).bit_length()  # 2^(bits-1) < L <= 2^bits
    return 53 - max(bits - 2, min(bits + 1, 10))
