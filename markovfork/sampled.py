"""Sampled engine: Monte Carlo rollouts over the reasoning tree, n samples per problem.

A rollout of problem p starts at ``start[p]`` and ends at a leaf v below it, reached with
probability reach(v) = product of ``probs[p, w]`` over the steps w on the path. Two exact
samplers draw it; ``method`` picks one:

* **walk**, one uniform per step: at each internal node, step to the first child c whose
  cumulative probability (children in order) exceeds the uniform (inverse CDF), until a leaf.
  O(steps) per rollout, no set-up.
* **path**, one uniform per rollout: the nodes, in id order, split [0, 1) into intervals of width
  reach(v) at the leaves below the start (0 elsewhere); rollout i returns the leaf whose interval
  holds its uniform (inverse CDF over leaves). Set-up per problem is O(N): one pass validates
  the row and computes reach, one computes the leaves' integer thresholds, one builds a guide
  table (Chen and Asau, 1974) that jumps close to the right interval; then per rollout one guide
  read and four compares (a scan on for the rare rollout that lands past them).
* **auto** (the default) takes, per problem, paths once the rollouts could take N/6 steps or
  more (``_uses_path``), walks otherwise.

Both give exactly the leaf distribution reach(v) (up to floating-point rounding: path
intervals are reach(v) rounded to a multiple of 2^-53), but consume the stream differently, so
the same seed gives different leaves under the two methods.

Random streams
--------------
Problem p draws from its own stream (:mod:`markovfork.streams`), a function of ``(seed, p)``
only, so results do not depend on how problems are split across threads (same seed, same
result, whatever the thread count). Walks consume the stream's uniforms in order, one per step,
rollout after rollout; paths give rollout i the stream's i-th uniform.

Floating-point guards
---------------------
Probabilities sum to 1 only up to rounding. A walk's uniform at or beyond a node's rounded row
sum takes the last child with positive probability (never a zero-probability child, never a
child of the next node: QuantEcon's walk-off-the-CDF bug). A path's uniform beyond the rounded
total takes the last leaf with positive width. Zero-probability steps are never taken by
either.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from markovfork.streams import (
    _check_int,
    _check_seed,
    _stream_states_kernel,
    _to_unit,
    _xoshiro_next,
    stream_states,
    stream_uniforms,
)
from markovfork.tree import PROB_TOL

__all__ = [
    "RolloutCounts",
    "sample_rollouts",
    "sample_leaves",
    "sample_leaves_reference",
    "stream_states",
    "stream_uniforms",
    "path_types_reference",
]

_U64 = np.uint64
_TWO53 = 2.0**53
_NEVER = np.int64(2**53)  # integer threshold no 53-bit uniform reaches (the rounding guard)
_PAD = 3  # thresholds past the last node (all 2^53), so _path_pick may read a window of 4
_U1, _U2, _U3 = np.uint64(1), np.uint64(2), np.uint64(3)


# --------------------------------------------------------------------------------------------
# Validation (kernels)
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _row_sums_kernel(child_start, nodes, probs, out):
    """out[p, i] = sum of probs[p] over the children of nodes[i] (for validation)."""
    for p in range(probs.shape[0]):
        for i in range(nodes.shape[0]):
            acc = 0.0
            for v in range(child_start[nodes[i]], child_start[nodes[i] + 1]):
                acc += probs[p, v]
            out[p, i] = acc


@numba.njit(cache=True)
def _last_child_flags(child_start):
    """flag[v] = v is the last child of its parent. Children of successive nodes are successive
    id ranges tiling 1..N-1, so these flags cut that range into the per-node rows."""
    n_nodes = child_start.shape[0] - 1
    flag = np.zeros(n_nodes, dtype=np.bool_)
    for u in range(n_nodes):
        if child_start[u + 1] > child_start[u]:
            flag[child_start[u + 1] - 1] = True
    return flag


@numba.njit(cache=True)
def _row_ok(last_child, row, tol):
    """True iff every entry of row is finite and >= 0 and every internal node's row sums to 1
    within tol. One sequential pass: a running sum over ids 1..N-1, checked and reset at each
    last child, adds each node's children in the order _row_sums_kernel does, so the two agree
    exactly. A NaN or infinite entry makes its node's sum fail; negatives are caught by the
    running minimum (min/compare, not per-entry boolean updates: 3x faster here)."""
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
def _probs_ok_kernel(last_child, probs, tol):
    """_row_ok for every problem, problems in parallel; the Python layer re-runs the detailed
    checks only when this fails, to name the offending entry."""
    ok = np.ones(probs.shape[0], dtype=np.bool_)
    for p in numba.prange(probs.shape[0]):
        ok[p] = _row_ok(last_child, probs[p], tol)
    return ok.all()


# --------------------------------------------------------------------------------------------
# The two samplers (kernels)
# --------------------------------------------------------------------------------------------

AUTO, WALK, PATH = 0, 1, 2  # kernel codes of the ``method`` argument
_METHODS = {"auto": AUTO, "walk": WALK, "path": PATH}


@numba.njit(cache=True)
def _max_heights(parent):
    """height[v] = the most steps from v down to a leaf below it (0 at leaves)."""
    height = np.zeros(parent.shape[0], dtype=np.int64)
    for v in range(parent.shape[0] - 1, 0, -1):  # children have larger ids than their parent
        height[parent[v]] = max(height[parent[v]], height[v] + 1)
    return height


@numba.njit(cache=True, inline="always")
def _uses_path(method, n_samples, height_at_start, n_nodes):
    """Whether a problem is sampled by paths (O(N) set-up, then O(1) per rollout) rather than
    by walks (O(height) per rollout, no set-up): ``auto`` takes paths once the rollouts could
    take N/6 steps or more. Measured break-even (both include the O(N) validation): 8664-node
    tree of height 10 at n = 100 rollouts (n x height = 0.12 N); 267-node tree of height 6 at
    n = 10 (0.22 N)."""
    if method == AUTO:
        return height_at_start > 0 and 6 * n_samples * height_at_start >= n_nodes
    return method == PATH


@numba.njit(cache=True, inline="always")
def _step(child_start, row, v, u):
    """Child of internal node v taken by uniform u: the first child c with u < row[first] + ...
    + row[c] (inverse CDF, sums accumulated in child order). Zero-probability children are never
    taken. Rounding guard: a u at or beyond the row's rounded sum takes the last child with
    positive probability (not a zero-probability child, not a child of the next node). Node ids
    are uint64 here and in _walk: unsigned indices spare Numba's negative-index wraparound code."""
    v = np.uint64(v)
    a, b = np.uint64(child_start[v]), np.uint64(child_start[v + _U1])
    acc = 0.0
    for c in range(a, b):
        acc += row[c]
        if u < acc:
            return c
    c = b - _U1
    while c > a and not row[c] > 0.0:
        c -= _U1
    return c


@numba.njit(cache=True, inline="always")
def _walk(child_start, row, v, s0, s1, s2, s3):
    """Walk from node v to a leaf, one uniform per step; returns (leaf, new rng state)."""
    v = np.uint64(v)
    while child_start[v] < child_start[v + _U1]:
        x, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
        v = _step(child_start, row, v, _to_unit(x))
    return v, s0, s1, s2, s3


@numba.njit(cache=True, inline="always")
def _check_and_reach(parent, last_child, row, mass, v0, v1, tol, lowest, acc, n_bad):
    """Nodes v0 .. v1-1 of the fused pass of ``_path_setup``: _row_ok's running checks and
    mass[v] = mass[parent[v]] * row[v]; returns the updated (lowest, acc, n_bad)."""
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
def _path_setup(parent, last_child, leaves, row, s, tol, mass, thresholds, guide, shift):
    """Validate ``row`` and build the path sampler's tables for rollouts from s; returns whether
    the row is valid (``_row_ok``'s exact test; no tables are built if it is not).

    One pass over the nodes checks the row and computes mass[v] = reach(v) = mass[parent[v]] *
    row[v] (1 at s, 0 off its subtree). Then, over the leaves in id order, thresholds[i] =
    sum over j <= i of round(2^53 reach(leaves[j])), an exact integer prefix sum: a 53-bit
    uniform k picks the first i with k < thresholds[i], i.e. leaf i with probability
    round(2^53 reach) / 2^53, never a leaf of width 0 (zero reach, off the subtree). Rounding
    guard: the last leaf of positive width and every slot after it (padding included) get 2^53,
    above any k, so a k beyond the rounded total takes that leaf. Finally ``_guide_table``.
    """
    n_nodes = row.shape[0]
    first_ok = row[0] >= 0.0 and row[0] < np.inf  # the root's entry is in no node's row
    mass[0] = 1.0 if s == 0 else 0.0
    # the checks of _row_ok fused with the reach pass, split at s (no per-node select)
    lowest, acc, n_bad = _check_and_reach(parent, last_child, row, mass, 1, s + 1, tol, row[0], 0.0, 0)
    mass[s] = 1.0
    lowest, acc, n_bad = _check_and_reach(parent, last_child, row, mass, s + 1, n_nodes, tol, lowest, acc, n_bad)
    if not (first_ok and n_bad == 0 and lowest >= 0.0):
        return False  # no tables from an invalid row (a NaN reach would index out of bounds)
    n_leaves = leaves.shape[0]
    total = np.int64(0)
    for i in range(n_leaves):
        total += np.int64(mass[leaves[i]] * _TWO53 + 0.5)  # leaves: uint32, no wraparound code
        thresholds[i] = total
    last = n_leaves - 1  # the last leaf of positive width
    while last > 0 and thresholds[last - 1] == thresholds[last]:
        last -= 1
    for i in range(last, n_leaves + _PAD):
        thresholds[i] = _NEVER
    _guide_table(thresholds[:last], guide, shift)
    return True


@numba.njit(cache=True)
def _guide_table(thresholds, guide, shift):
    """guide[j] = #{i: thresholds[i] <= j 2^shift} for j < m = guide.shape[0] - 2: the first
    candidate for any k in [j 2^shift, (j+1) 2^shift) (Chen and Asau's guide table).
    ``thresholds``: the ones below the rounding guard (non-decreasing).

    Branch-free build: bucket b(i) = ceil(thresholds[i] / 2^shift) is non-decreasing in i, so
    storing i + 1 at b(i) for i in order leaves the last such i at each bucket; guide[j] is then
    the running maximum. Thresholds up to 2^53 have b(i) <= m, inside the table, and need no
    clamp (a clamp in this loop cost 28% of the build); the few beyond 2^53 (reach sums exceed 1
    by rounding or tolerance) collect in guide[m + 1], never read. A separate pass: fused into
    the thresholds loop, the scattered stores slowed it by more than the pass costs."""
    m = guide.shape[0] - 2
    guide[:] = 0
    r = (np.int64(1) << shift) - 1
    n = thresholds.shape[0]
    end = n  # thresholds[:end] <= 2^53
    while end > 0 and thresholds[end - 1] > _NEVER:
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
def _path_pick(thresholds, guide, shift, k):
    """Index of the leaf whose threshold interval holds the 53-bit uniform k: the first i with
    k < thresholds[i], searched from the guide. Thresholds below 2^53 are non-decreasing, so
    those <= k in a window of 4 are a prefix: counting them (four independent loads, no branch)
    skips them. Only when all four are <= k (about 4% of picks on the benchmark tree: runs of
    near-zero-width leaves share a bucket) does a loop scan on. A scan loop from the guide, with
    its data-dependent exit, cost 1.1x as much per pick (8.0 vs 7.2 us per 2000 picks)."""
    i = np.uint64(guide[np.uint64(k) >> np.uint64(shift)])  # unsigned indices: no wraparound code (-27%)
    c = (np.int64(thresholds[i] <= k) + np.int64(thresholds[i + _U1] <= k) + np.int64(thresholds[i + _U2] <= k)
         + np.int64(thresholds[i + _U3] <= k))
    i += np.uint64(c)
    if c == 4:
        while thresholds[i] <= k:
            i += _U1
    return i


def _guide_shift(n_leaves: int) -> int:
    """Guide-table buckets m = 2^(53 - shift): between L/4 and L/2 for L = n_leaves above 4096,
    where that measured fastest (5042 leaves: m = 2048 beat 4096 and 8192 by 4-12% and matched
    1024; a smaller table builds faster and stays in L1, and the window of 4 in _path_pick still
    covers ~96% of picks); 1024 for 513..4096 leaves; 2L to 4L for smaller trees (building them
    costs little, and a bucket holding more than four thresholds sends picks into the slow scan:
    25-877-leaf trees ran 25-28% faster than with L/4..L/2)."""
    bits = (max(int(n_leaves), 2) - 1).bit_length()  # 2^(bits-1) < L <= 2^bits
    return 53 - max(bits - 2, min(bits + 1, 10))


@numba.njit(cache=True)
def _problem_leaves(child_start, parent, last_child, leaves, height, row, s, state, method, tol, shift, mass,
                    thresholds, guide, out_row):
    """out_row[i] = leaf reached by rollout i from node s, using the stream ``state`` (4 words):
    by paths (rollout i consumes uniform i) or by walks (one uniform per step, rollouts in order),
    as ``_uses_path`` decides. Returns whether ``row`` is valid; if not, nothing is sampled
    (out_row is left as it was)."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    if _uses_path(method, out_row.shape[0], height[s], row.shape[0]):
        if not _path_setup(parent, last_child, leaves, row, s, tol, mass, thresholds, guide, shift):
            return False
        for i in range(out_row.shape[0]):
            x, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
            out_row[i] = leaves[_path_pick(thresholds, guide, shift, np.int64(x >> _U64(11)))]
    else:
        if not _row_ok(last_child, row, tol):
            return False
        for i in range(out_row.shape[0]):
            leaf, s0, s1, s2, s3 = _walk(child_start, row, s, s0, s1, s2, s3)
            out_row[i] = leaf
    return True


@numba.njit(cache=True)
def _path_buffers(n_nodes, n_leaves, shift):
    """Scratch of one chunk of problems: mass (N), thresholds (L + padding), guide (m + 2)."""
    return (np.empty(n_nodes), np.empty(n_leaves + _PAD, dtype=np.int64),
            np.empty((1 << (53 - shift)) + 2, dtype=np.uint32))


@numba.njit(cache=True)
def _leaves_chunk(child_start, parent, last_child, leaves, height, shift, probs, start, states, method, tol, lo, hi,
                  out, ok):
    """out[p, i] = leaf reached by rollout i of problem p (stream states[p]) and ok[p] = whether
    probs[p] is valid (invalid rows are not sampled), for problems lo..hi-1, one set of buffers."""
    mass, thresholds, guide = _path_buffers(probs.shape[1], leaves.shape[0], shift)
    for p in range(lo, hi):
        ok[p] = _problem_leaves(child_start, parent, last_child, leaves, height, probs[p], start[p], states[p],
                                method, tol, shift, mass, thresholds, guide, out[p])


@numba.njit(cache=True)
def _counts_chunk(child_start, parent, last_child, leaves, height, shift, probs, start, states, method, tol,
                  n_samples, hard_edges, correct, valid, lo, hi, out, ok):
    """out[p] = (correct, easy_valid, hard_valid, invalid) counts over n_samples rollouts of p (the
    leaves of _leaves_chunk, classified instead of stored) for problems lo..hi-1.

    hard_edges[v] = number of hard steps on the root -> v path, so a rollout from s to leaf v is
    all-easy exactly when hard_edges[v] == hard_edges[s].
    """
    mass, thresholds, guide = _path_buffers(probs.shape[1], leaves.shape[0], shift)
    rollout_leaves = np.empty(n_samples, dtype=np.int64)
    for p in range(lo, hi):
        s = start[p]
        ok[p] = _problem_leaves(child_start, parent, last_child, leaves, height, probs[p], s, states[p], method, tol,
                                shift, mass, thresholds, guide, rollout_leaves)
        if not ok[p]:
            continue
        hard_at_start = hard_edges[s]
        n_correct = 0
        n_easy = 0
        n_valid = 0
        pu = np.uint64(p)
        for leaf in rollout_leaves:  # counts, not branches: the outcomes are random
            lu = np.uint64(leaf)  # unsigned indices: no wraparound code
            is_valid = np.int64(valid[pu, lu])
            n_correct += np.int64(correct[pu, lu])
            n_valid += is_valid
            n_easy += is_valid & np.int64(hard_edges[lu] == hard_at_start)
        out[p, 0] = n_correct
        out[p, 1] = n_easy
        out[p, 2] = n_valid - n_easy
        out[p, 3] = n_samples - n_valid


@numba.njit(cache=True, parallel=True)
def _leaves_kernel(child_start, parent, last_child, leaves, height, shift, probs, start, states, method, tol, n_chunks,
                   out, ok):
    """_leaves_chunk over n_chunks contiguous chunks of problems run in parallel. The result does
    not depend on n_chunks: problem p only uses its own stream."""
    n_problems = probs.shape[0]
    for chunk in numba.prange(n_chunks):
        _leaves_chunk(child_start, parent, last_child, leaves, height, shift, probs, start, states, method, tol,
                      chunk * n_problems // n_chunks, (chunk + 1) * n_problems // n_chunks, out, ok)


@numba.njit(cache=True, parallel=True)
def _counts_kernel(child_start, parent, last_child, leaves, height, shift, probs, start, states, method, tol,
                   n_samples, hard_edges, correct, valid, n_chunks, out, ok):
    """_counts_chunk over n_chunks contiguous chunks of problems run in parallel."""
    n_problems = probs.shape[0]
    for chunk in numba.prange(n_chunks):
        _counts_chunk(child_start, parent, last_child, leaves, height, shift, probs, start, states, method, tol,
                      n_samples, hard_edges, correct, valid, chunk * n_problems // n_chunks,
                      (chunk + 1) * n_problems // n_chunks, out, ok)


def _run_chunks(chunk_fn, kernel_fn, n_problems: int, *args) -> np.ndarray:
    """Run a sampling kernel over all problems; returns the per-problem validity flags. One
    thread: the chunk function over all problems (the parallel kernel with one thread measured
    6-8% slower); more: the parallel kernel, several chunks per thread, handed out dynamically
    for load balance (results do not depend on it)."""
    ok = np.ones(n_problems, dtype=np.bool_)
    n_threads = numba.get_num_threads()
    if n_threads == 1 or n_problems < 2:
        chunk_fn(*args[:-1], 0, n_problems, args[-1], ok)
    else:
        kernel_fn(*args[:-1], min(n_problems, 8 * n_threads), args[-1], ok)
    return ok


# --------------------------------------------------------------------------------------------
# Python layer: validation, seeding, thread control
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutCounts:
    """Per-problem outcome counts of ``n_samples`` rollouts (easy_valid + hard_valid + invalid = n)."""

    correct: np.ndarray  # (P,) int64: rollouts ending at a correct leaf
    easy_valid: np.ndarray  # (P,) int64: all-easy path (every edge tree.edge_easy) to a valid leaf
    hard_valid: np.ndarray  # (P,) int64: valid leaf, some hard edge on the way
    invalid: np.ndarray  # (P,) int64: leaf not valid
    n_samples: int  # rollouts per problem


def _check_n_threads(n_threads) -> int | None:
    if n_threads is None:
        return None
    return _check_int("n_threads", n_threads, 1, numba.config.NUMBA_NUM_THREADS)


@contextmanager
def _numba_threads(n_threads: int | None):
    """Run the body with ``n_threads`` numba threads (None: leave as is) and dynamic scheduling
    of prange iterations (one chunk of problems at a time: a thread slowed by other processes
    on a shared core then takes fewer chunks); restore both afterwards."""
    with numba.parallel_chunksize(1):
        if n_threads is None:
            yield
            return
        previous = numba.get_num_threads()
        numba.set_num_threads(n_threads)
        try:
            yield
        finally:
            numba.set_num_threads(previous)


def _walk_arrays(tree, probs, start) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous (probs (P, N) float64, start (P,) int64) with checked shapes and start ids; the
    probability values are checked by the kernels (``_row_ok``) or :func:`_check_walk_inputs`."""
    n_nodes = tree.n_nodes
    start = np.asarray(start)
    if start.ndim != 1 or not (np.issubdtype(start.dtype, np.integer) or start.size == 0):
        raise ValueError(f"start must be a 1-D array of node ids, got shape {start.shape} dtype {start.dtype}")
    start = np.ascontiguousarray(start, dtype=np.int64)
    if start.size and (start.min() < 0 or start.max() >= n_nodes):
        bad = int(start[(start < 0) | (start >= n_nodes)][0])
        raise ValueError(f"start node {bad} is not a node id of the tree (0..{n_nodes - 1})")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (start.shape[0], n_nodes):
        raise ValueError(f"probs must have shape (P, n_nodes) = ({start.shape[0]}, {n_nodes}), got {probs.shape}")
    return np.ascontiguousarray(probs), start


def _raise_bad_probs(tree, probs) -> None:
    """Raise the ValueError naming the first bad entry or row of probs (finite, >= 0, rows sum to
    1 within PROB_TOL); the slow, explicit twin of ``_row_ok``."""
    if not np.all(np.isfinite(probs)):
        p, v = np.argwhere(~np.isfinite(probs))[0]
        raise ValueError(f"probs[{p}, {v}] is not finite ({probs[p, v]})")
    if np.any(probs < 0):
        p, v = np.argwhere(probs < 0)[0]
        raise ValueError(f"probs[{p}, {v}] is negative ({probs[p, v]})")
    internal = np.flatnonzero(tree.n_children > 0)
    if internal.size and probs.shape[0]:
        row_sums = np.empty((probs.shape[0], internal.size))
        _row_sums_kernel(tree.child_start, internal, probs, row_sums)
        bad = np.abs(row_sums - 1.0) > PROB_TOL
        if np.any(bad):
            p, i = np.argwhere(bad)[0]
            raise ValueError(
                f"problem {p}: step probabilities out of node {int(internal[i])} sum to {row_sums[p, i]:.9g}, not 1"
            )


def _check_kernel_flags(tree, probs, ok: np.ndarray) -> None:
    """After a sampling kernel: raise for the problems whose probs it rejected (not sampled)."""
    if ok.all():
        return
    _raise_bad_probs(tree, probs)  # the error path: names the first bad entry of all problems
    raise RuntimeError(f"internal error: problem {int(np.argmin(ok))}'s probs failed the kernel's check only")


def _check_walk_inputs(tree, probs, start) -> tuple[np.ndarray, np.ndarray]:
    """Validated contiguous (probs (P, N) float64, start (P,) int64): shapes, ids and values."""
    probs, start = _walk_arrays(tree, probs, start)
    if not _probs_ok_kernel(_last_child_flags(tree.child_start), probs, PROB_TOL):
        _raise_bad_probs(tree, probs)
    return probs, start


def _check_method(method) -> int:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}, got {method!r}")
    return _METHODS[method]


def sample_leaves(tree, probs, start, n_samples: int, seed: int, n_threads: int | None = None, *,
                  method: str = "auto") -> np.ndarray:
    """(P, n_samples) int64 leaf ids reached by rollouts of each problem from ``start[p]``.

    ``probs`` (P, N) are per-problem step probabilities (:func:`markovfork.policy.transition_probs`);
    problem p uses stream (seed, p), so the result is independent of ``n_threads`` (numba
    threads for this call; None keeps the current setting). ``method``: ``"walk"`` (one uniform
    per step), ``"path"`` (one uniform per rollout, O(N) set-up per problem) or ``"auto"`` (per
    problem, whichever is cheaper for ``n_samples``; see the module docstring). All three draw
    from the same distribution; a given method and seed always give the same leaves.
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    seed = _check_seed(seed)
    n_threads = _check_n_threads(n_threads)
    code = _check_method(method)
    probs, start = _walk_arrays(tree, probs, start)
    with _numba_threads(n_threads):
        states = np.empty((start.shape[0], 4), dtype=np.uint64)
        _stream_states_kernel(seed, states)
        out = np.empty((start.shape[0], n_samples), dtype=np.int64)
        ok = _run_chunks(_leaves_chunk, _leaves_kernel, len(start), *_kernel_tree(tree), probs, start, states, code,
                         PROB_TOL, out)
    _check_kernel_flags(tree, probs, ok)
    return out


class _KernelTree(NamedTuple):
    """The tree as the sampling kernels read it (built once per tree, see ``_kernel_tree``)."""

    child_start: np.ndarray  # (N+1,) int64
    parent: np.ndarray  # (N,) uint32 (root: 2^32 - 1, never read): 32-bit, unsigned (no wraparound code)
    last_child: np.ndarray  # (N,) bool: _last_child_flags
    leaves: np.ndarray  # (L,) uint32: leaf ids in increasing order
    height: np.ndarray  # (N,) int64: _max_heights
    shift: int  # _guide_shift(L)


_KERNEL_TREES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _kernel_tree(tree) -> _KernelTree:
    """The kernels' view of ``tree``, cached per tree object (trees are immutable once built):
    rebuilding it cost about as much as sampling a few problems."""
    cached = _KERNEL_TREES.get(tree)
    if cached is None:
        if tree.n_nodes >= 2**31 - _PAD:
            raise ValueError(f"trees of {tree.n_nodes} nodes are too large for the sampled engine (< 2^31)")
        leaves = tree.leaves
        cached = _KernelTree(tree.child_start, tree.parent.astype(np.uint32), _last_child_flags(tree.child_start),
                             leaves.astype(np.uint32), _max_heights(tree.parent), _guide_shift(leaves.size))
        _KERNEL_TREES[tree] = cached
    return cached


def _hard_edges_kernel(parent, edge_easy):
    """hard[v] = number of hard (not edge_easy) steps on the path root -> v."""
    hard = np.zeros(parent.shape[0], dtype=np.int64)
    for v in range(1, parent.shape[0]):  # parents have smaller ids
        hard[v] = hard[parent[v]] + np.int64(not edge_easy[v])
    return hard


_HARD_EDGES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hard_edges(tree) -> np.ndarray:
    """(N,) int64 number of hard steps on the path root -> v, cached per tree object."""
    hard = _HARD_EDGES.get(tree)
    if hard is None:
        hard = _HARD_EDGES[tree] = _hard_edges_kernel(tree.parent, tree.edge_easy)
    return hard


def sample_rollouts(tree, probs, problems, n_samples: int, seed: int, n_threads: int | None = None, *,
                    method: str = "auto") -> RolloutCounts:
    """Counts of correct / easy-valid / hard-valid / invalid rollouts, ``n_samples`` per problem.

    Same draws and leaves as :func:`sample_leaves` with the same arguments (problem p uses stream
    (seed, p)); the leaves are classified on the fly instead of stored.
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    seed = _check_seed(seed)
    n_threads = _check_n_threads(n_threads)
    code = _check_method(method)
    problems.check_tree(tree)
    probs, start = _walk_arrays(tree, probs, problems.start)
    with _numba_threads(n_threads):
        states = np.empty((start.shape[0], 4), dtype=np.uint64)
        _stream_states_kernel(seed, states)
        out = np.empty((start.shape[0], 4), dtype=np.int64)
        ok = _run_chunks(
            _counts_chunk, _counts_kernel, len(start), *_kernel_tree(tree), probs, start, states, code, PROB_TOL,
            n_samples, _hard_edges(tree), np.ascontiguousarray(problems.correct, dtype=np.bool_),
            np.ascontiguousarray(problems.valid, dtype=np.bool_), out,
        )
    _check_kernel_flags(tree, probs, ok)
    return RolloutCounts(
        correct=out[:, 0].copy(), easy_valid=out[:, 1].copy(), hard_valid=out[:, 2].copy(),
        invalid=out[:, 3].copy(), n_samples=n_samples,
    )


# --------------------------------------------------------------------------------------------
# NumPy references
# --------------------------------------------------------------------------------------------


def sample_leaves_reference(tree, probs, start, n_samples: int, seed: int) -> np.ndarray:
    """NumPy reference sampler: (P, n_samples) leaf ids, vectorised over samples.

    Uses ``numpy.random.default_rng(seed)`` (its own draws, not the kernel's streams) and an
    independent guard: per node a padded table of within-node cumulative sums, the child index
    ``#{cumsum <= u}`` clamped to the last child with positive probability.
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    _check_seed(seed)
    probs, start = _check_walk_inputs(tree, probs, start)
    rng = np.random.default_rng(seed)
    cs = tree.child_start
    n_children = tree.n_children
    width = max(int(n_children.max()), 1)
    slot = np.arange(width)
    child = cs[:-1, None] + slot[None, :]  # (N, width) child ids, padded past the last child
    present = slot[None, :] < n_children[:, None]
    child = np.where(present, child, 0)
    out = np.empty((start.shape[0], n_samples), dtype=np.int64)
    for p in range(start.shape[0]):
        q = np.where(present, probs[p][child], 0.0)  # (N, width) step probabilities by slot
        cum = np.where(present, np.cumsum(q, axis=1), np.inf)  # padding: never <= u
        last_pos = np.where(q > 0, slot[None, :], -1).max(axis=1)  # last positive child's slot
        v = np.full(n_samples, start[p], dtype=np.int64)
        active = np.flatnonzero(n_children[v] > 0)
        while active.size:
            u = rng.random(active.size)
            at = v[active]
            k = (cum[at] <= u[:, None]).sum(axis=1)
            k = np.minimum(k, last_pos[at])  # guard: u beyond the rounded row sum
            v[active] = cs[at] + k
            active = active[n_children[v[active]] > 0]
        out[p] = v
    return out


def path_types_reference(tree, problems, leaves: np.ndarray) -> RolloutCounts:
    """Classify sampled leaves (P, n) into :class:`RolloutCounts` with NumPy (test reference)."""
    rows = np.arange(leaves.shape[0])[:, None]
    correct = problems.correct[rows, leaves]
    valid = problems.valid[rows, leaves]
    # the path from start s to a leaf is all-easy iff no hard edge lies between s and the leaf
    hard_from_start = np.zeros(leaves.shape, dtype=bool)
    for p in range(leaves.shape[0]):
        s = problems.start[p]
        for i, leaf in enumerate(leaves[p]):
            u = leaf
            while u != s:
                if not tree.edge_easy[u]:
                    hard_from_start[p, i] = True
                    break
                u = tree.parent[u]
    return RolloutCounts(
        correct=correct.sum(axis=1).astype(np.int64),
        easy_valid=(valid & ~hard_from_start).sum(axis=1).astype(np.int64),
        hard_valid=(valid & hard_from_start).sum(axis=1).astype(np.int64),
        invalid=(~valid).sum(axis=1).astype(np.int64),
        n_samples=int(leaves.shape[1]),
    )
