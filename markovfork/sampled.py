"""Sampled engine: Monte Carlo rollouts over the reasoning tree, n samples per problem.

A rollout of problem p starts at ``start[p]`` and, at each internal node u, steps to a child
drawn from the per-problem step probabilities ``probs[p, child_start[u]:child_start[u+1]]``
(inverse-CDF on one uniform per step) until it reaches a leaf.

Random streams
--------------
Problem p draws from its own stream, a function of ``(seed, p)`` only, so results do not depend
on how problems are split across threads (same seed, same result, whatever the thread count):

* ``mix64`` is the splitmix64 output function (a bijection on 64-bit words);
* splitmix64 is started at ``mix64(mix64(seed) + p)`` (mod 2^64) and its first four outputs are
  the 256-bit state of a xoshiro256** generator (Blackman & Vigna, 2018), the problem's stream;
* a uniform in [0, 1) is the top 53 bits of a xoshiro256** output times 2^-53.

Distinct (seed, p) pairs give pseudo-random, distinct starting points in xoshiro's 2^256 - 1
period; overlapping stretches are astronomically unlikely (not provably impossible: we do not use
``jump()``, which would cost O(p) to reach stream p). Draws within a problem are consumed in
sample order, one per step, so ``sample_leaves`` and ``sample_rollouts`` see the same walks.

Floating-point guard
--------------------
Each node's step probabilities sum to 1 only up to rounding. The walk compares the uniform with
per-node cumulative thresholds in which the last child with positive probability (and any
zero-probability children after it) get a threshold above any uniform: a uniform beyond the
row's cumulative sum takes the last child with positive probability, never a zero-probability
child and never a child of the next node (QuantEcon's walk-off-the-CDF bug).

Layout
------
Per problem, a lookup table of integer thresholds is built once (O(N)), then each step costs
one draw, one record read and a fixed number of integer compares (see ``_fill_table``). Trees
whose nodes have at most ``MAX_FIXED_WIDTH`` children use fixed-width records (branch-free
steps); wider trees use one threshold per child. Both layouts give identical draws and leaves.
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

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
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64 increment
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53  # 53-bit integer -> [0, 1)
_TWO53 = 2.0**53
_NEVER = np.int64(2**53)  # integer threshold no 53-bit uniform reaches (the rounding guard)
MAX_FIXED_WIDTH = 8  # trees with at most this many children per node use fixed-width records


# --------------------------------------------------------------------------------------------
# Random number generation (kernels)
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _mix64(z):
    """splitmix64's output function on a uint64."""
    z = (z ^ (z >> _U64(30))) * _M1
    z = (z ^ (z >> _U64(27))) * _M2
    return z ^ (z >> _U64(31))


@numba.njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@numba.njit(cache=True, inline="always")
def _xoshiro_next(s0, s1, s2, s3):
    """One xoshiro256** step: (64-bit output, new state)."""
    result = _rotl(s1 * _U64(5), 7) * _U64(9)
    t = s1 << _U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, s0, s1, s2, s3


@numba.njit(cache=True, inline="always")
def _to_unit(x):
    """Top 53 bits of a uint64 as a double in [0, 1)."""
    return np.float64(x >> _U64(11)) * _TO_UNIT


@numba.njit(cache=True)
def _stream_states_kernel(seed, out):
    """out[p] = initial xoshiro256** state of stream (seed, p); see the module docstring."""
    key = _mix64(seed)
    for p in range(out.shape[0]):
        x = _mix64(key + _U64(p))
        for j in range(4):
            x += _GOLDEN
            out[p, j] = _mix64(x)


@numba.njit(cache=True)
def _uniforms_kernel(states, out):
    """out[p, i] = i-th uniform of stream p, starting from states[p] (states are not advanced)."""
    for p in range(out.shape[0]):
        s0, s1, s2, s3 = states[p, 0], states[p, 1], states[p, 2], states[p, 3]
        for i in range(out.shape[1]):
            x, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
            out[p, i] = _to_unit(x)


# --------------------------------------------------------------------------------------------
# The walk (kernels)
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


@numba.njit(cache=True, parallel=True)
def _probs_ok_kernel(child_start, probs, tol):
    """True iff every entry of probs is finite and >= 0 and every internal node's row sums to 1
    within tol (row sums accumulated exactly as _row_sums_kernel does). One pass over probs,
    problems in parallel (run under the caller's thread setting: it is a sizeable share of a
    call); the Python layer re-runs the detailed checks only when this fails, to name the
    offending entry."""
    n_nodes = child_start.shape[0] - 1
    ok = np.ones(probs.shape[0], dtype=np.bool_)
    for p in numba.prange(probs.shape[0]):
        for u in range(n_nodes):
            a, b = child_start[u], child_start[u + 1]
            if a == b:
                continue
            acc = 0.0
            for v in range(a, b):
                acc += probs[p, v]
            if not abs(acc - 1.0) <= tol:  # also catches NaN
                ok[p] = False
                break
        bad = False
        for v in range(n_nodes):
            x = probs[p, v]
            bad |= not (x >= 0.0 and x < np.inf)  # NaN, -inf, +inf, negative
        if bad:
            ok[p] = False
    return ok.all()


@numba.njit(cache=True)
def _fill_table(child_start, probs_row, stride, table):
    """Per-problem lookup table of integer step thresholds (layout chosen by ``stride``).

    Threshold of child v: T(v) = ceil(2^53 * (probability of v and its earlier siblings)). A
    rollout at node u with 53-bit uniform integer k (u = k 2^-53) steps to the first child c
    with k < T(c): the inverse CDF, exactly as the float comparison u < cumsum (scaling by 2^53
    is exact). Rounding guard: the last child with positive probability and every child after it
    get T = 2^53 > any k, so a uniform beyond the row's rounded sum takes that child.

    stride > 0 (fixed-width records, every node has <= stride children): the record of node u is
    table[u*stride : (u+1)*stride] = (first child, T of children 0 .. stride-2, padding 2^53);
    first child = -1 marks a leaf, and a leaf's other slots are never read (left unwritten).
    stride == 0 (any branching): table[v] = T(v) per child.

    One pass per node, writing each slot once (the table build is a sizeable share of a call at
    a few thousand rollouts per problem).
    """
    n_nodes = child_start.shape[0] - 1
    if stride == 0:
        table[0] = _NEVER  # the root is nobody's child
    for u in range(n_nodes):
        a, b = child_start[u], child_start[u + 1]
        if stride > 0 and a == b:
            table[u * stride] = -1
            continue
        if stride > 0:
            # fixed trip counts and selects instead of branches: the children count varies from
            # node to node, and mispredicted loop exits dominated the build
            last_pos = b
            for j in range(stride):
                v = a + j
                last_pos = v if (v < b and probs_row[min(v, n_nodes - 1)] > 0.0) else last_pos
            base = u * stride
            table[base] = a
            acc = 0.0
            for j in range(1, stride):
                v = a + j - 1
                pv = probs_row[min(v, n_nodes - 1)]  # unconditional load, then a select
                acc += pv if v < b else 0.0
                table[base + j] = np.int64(np.ceil(acc * _TWO53)) if v < last_pos else _NEVER
        else:
            last_pos = b
            for v in range(a, b):
                if probs_row[v] > 0.0:
                    last_pos = v
            acc = 0.0
            for v in range(a, b):
                acc += probs_row[v]
                table[v] = np.int64(np.ceil(acc * _TWO53)) if v < last_pos else _NEVER
        # a row with no positive entry (rejected by the Python layer) has last_pos = b: its
        # thresholds are the plain cumulative sums (all 0), and the walk takes its last child.


@numba.njit(cache=True)
def _uniform_heights(child_start):
    """height[v] = the depth of every leaf below v counted from v, or -1 if leaves below v sit at
    different depths (then walks from v have no fixed length). Assumes children have larger ids
    than their parent (breadth-first layout); if not, returns all -1 (no fixed-length walks)."""
    n_nodes = child_start.shape[0] - 1
    height = np.full(n_nodes, -1, dtype=np.int64)
    for u in range(n_nodes):
        if child_start[u + 1] > child_start[u] and child_start[u] <= u:
            return height
    for u in range(n_nodes - 1, -1, -1):
        a, b = child_start[u], child_start[u + 1]
        if a == b:
            height[u] = 0
            continue
        h = height[a]
        for v in range(a + 1, b):
            if height[v] != h:
                h = -1
        height[u] = h + 1 if h >= 0 else -1
    return height


MAX_DIRECT_WIDTH = 4  # trees with at most this many children per node can walk the probs rows directly
_DIRECT = -1  # walk "stride" meaning: no lookup table, steps read the probs row (_step_direct)


@numba.njit(cache=True, inline="always")
def _walk_stride(stride, height_at_start, n_samples, n_nodes):
    """How problem p walks: _DIRECT (no table) or the table layout ``stride``. Same leaves either way.

    A direct step costs about twice a table step (an extra dependent load, child_start, and three
    dependent float adds per step), while the table build costs a few ns per node: the table pays
    for itself once a problem walks about 3/4 as many steps as the tree has nodes (measured on
    the benchmark tree). Walks of unknown length (height -1) are counted as 8 steps.
    """
    if 0 < stride <= MAX_DIRECT_WIDTH:
        steps = n_samples * (height_at_start if height_at_start >= 0 else 8)
        if 4 * steps < 3 * n_nodes:
            return _DIRECT
    return stride


@numba.njit(cache=True, inline="always")
def _step_direct(child_start, row, n_last, v, u):
    """Child of internal node v taken by uniform u, read straight off the probs row (no table).

    Same child as the lookup table (``_fill_table``) gives, for nodes with <= 4 children: the
    cumulative sums acc_j = p_0 + ... + p_j are accumulated in the same order (missing children
    add 0.0, which leaves a sum unchanged), and for an integer k and u = k 2^-53 (exact),
    k < ceil(2^53 acc) <=> u < acc (scaling by 2^53 is exact). The child is first +
    #{j < 3: acc_j <= u} when u < the row sum (acc_j for missing children equals the row sum, so
    they never count); when u >= the row sum (the rounding guard; rare) it is the last child with
    positive probability, or the last child if the row has none (a row the Python layer rejects).
    Four unconditional loads (indices clamped into the row) and selects instead of branches on the
    children count.
    """
    a = child_start[v]
    nc = child_start[v + 1] - a
    p0 = row[a]
    p1 = row[min(a + 1, n_last)]
    p2 = row[min(a + 2, n_last)]
    p3 = row[min(a + 3, n_last)]
    acc0 = p0
    acc1 = acc0 + p1 * np.float64(nc > 1)  # p * 0.0 = 0.0 (p finite, >= 0): masks without branches
    acc2 = acc1 + p2 * np.float64(nc > 2)
    total = acc2 + p3 * np.float64(nc > 3)
    c = a + np.int64(acc0 <= u) + np.int64(acc1 <= u) + np.int64(acc2 <= u)
    if u < total:
        return c
    c = a + nc - 1
    while c > a and not row[c] > 0.0:
        c -= 1
    return c if row[c] > 0.0 else a + nc - 1



@numba.njit(cache=True, inline="always")
def _walk(child_start, row, table, stride, v, s0, s1, s2, s3):
    """Walk from node v to a leaf, one uniform per step; returns (leaf, new rng state).

    stride == _DIRECT: steps read the probs ``row`` directly (``_step_direct``); otherwise the
    lookup ``table`` built by ``_fill_table`` with that stride.

    The child is first + #{thresholds T <= k} over all but the last child: thresholds are
    non-decreasing within a node, so this counts past the children whose interval lies below
    the uniform, without data-dependent branches (fixed-width records also fix the trip count).
    """
    if stride == _DIRECT:
        n_last = row.shape[0] - 1
        while True:
            if child_start[v] == child_start[v + 1]:
                return v, s0, s1, s2, s3
            x, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
            v = _step_direct(child_start, row, n_last, v, _to_unit(x))
    elif stride > 0:
        while True:
            base = v * stride
            c = table[base]
            if c < 0:  # leaf marker
                return v, s0, s1, s2, s3
            x, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
            k = np.int64(x >> _U64(11))  # the uniform u = k * 2^-53 that stream_uniforms returns
            for j in range(base + 1, base + stride):
                if table[j] <= k:
                    c += 1
            v = c
    else:
        while True:
            c = child_start[v]
            b = child_start[v + 1]
            if c == b:
                return v, s0, s1, s2, s3
            x, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
            k = np.int64(x >> _U64(11))
            for j in range(c, b - 1):
                if table[j] <= k:
                    c += 1
            v = c


@numba.njit(cache=True, inline="always")
def _walk_block(child_start, row, table, stride, v0, depth, n_walks, draws, udraws, nodes, s0, s1, s2, s3):
    """n_walks consecutive rollouts from v0, all exactly ``depth`` steps long (every leaf below v0
    is ``depth`` steps away): leaves into nodes[:n_walks]; returns the new rng state.

    Walk w consumes draws w*depth .. w*depth+depth-1 of the stream, exactly as the one-at-a-time
    ``_walk`` does (the walk lengths are known, so every draw's walk and level are known up front).
    The draws are generated first (stored level-major), then the walks advance level by level:
    the n_walks table lookups of one level are independent, so their memory latencies overlap
    instead of forming one dependent chain per rollout, and there is no leaf test per step.
    stride == _DIRECT: steps read the probs ``row`` directly (uniforms as doubles in
    ``udraws``); otherwise the lookup ``table`` (integer uniforms in ``draws``).
    """
    if stride == _DIRECT:
        for w in range(n_walks):
            for d in range(depth):
                x, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
                udraws[d * n_walks + w] = _to_unit(x)
        for w in range(n_walks):
            nodes[w] = v0
        n_last = row.shape[0] - 1
        for d in range(depth):
            r = d * n_walks
            for w in range(n_walks):
                nodes[w] = _step_direct(child_start, row, n_last, nodes[w], udraws[r + w])
        return s0, s1, s2, s3
    for w in range(n_walks):
        for d in range(depth):
            x, s0, s1, s2, s3 = _xoshiro_next(s0, s1, s2, s3)
            draws[d * n_walks + w] = np.int64(x >> _U64(11))
    for w in range(n_walks):
        nodes[w] = v0
    if stride == 4:  # the common layout (2-4 children), unrolled: 4 independent loads + 3 compares
        for d in range(depth):
            row = d * n_walks
            for w in range(n_walks):
                k = draws[row + w]
                base = nodes[w] * 4
                nodes[w] = (table[base] + np.int64(table[base + 1] <= k) + np.int64(table[base + 2] <= k)
                            + np.int64(table[base + 3] <= k))
    elif stride > 0:
        for d in range(depth):
            row = d * n_walks
            for w in range(n_walks):
                k = draws[row + w]
                base = nodes[w] * stride
                c = table[base]
                for j in range(base + 1, base + stride):
                    if table[j] <= k:
                        c += 1
                nodes[w] = c
    else:
        for d in range(depth):
            row = d * n_walks
            for w in range(n_walks):
                k = draws[row + w]
                v = nodes[w]
                c = child_start[v]
                for j in range(c, child_start[v + 1] - 1):
                    if table[j] <= k:
                        c += 1
                nodes[w] = c
    return s0, s1, s2, s3


_BLOCK_DRAWS = 2048  # draws buffered per block of fixed-length walks (16 KiB: stays in L1)


@numba.njit(cache=True, inline="always")
def _block_size(depth, n_samples):
    """Walks per block for walks of ``depth`` steps: ~_BLOCK_DRAWS draws, at least 1 walk."""
    return max(1, min(n_samples, _BLOCK_DRAWS // max(depth, 1)))


@numba.njit(cache=True, parallel=True)
def _sample_leaves_kernel(child_start, probs, start, states, stride, n_chunks, out):
    """out[p, i] = leaf reached by rollout i of problem p (stream states[p], rollouts in order).

    Problems are split into n_chunks contiguous chunks run in parallel; each chunk reuses one
    lookup table (allocating a fresh one per problem cost as much as a thousand steps). The
    result does not depend on n_chunks: problem p only ever uses its own stream. Problems whose
    start has all its leaves at one depth use the blocked walk (``_walk_block``), others the
    one-at-a-time walk; both consume the same draws, so they give the same leaves.
    """
    n_problems, n_nodes = probs.shape
    height = _uniform_heights(child_start)
    for chunk in numba.prange(n_chunks):
        table = np.empty(n_nodes * max(stride, 1), dtype=np.int64)
        draws = np.empty(_BLOCK_DRAWS, dtype=np.int64)
        udraws = np.empty(_BLOCK_DRAWS, dtype=np.float64)
        nodes = np.empty(_BLOCK_DRAWS, dtype=np.int64)
        for p in range(chunk * n_problems // n_chunks, (chunk + 1) * n_problems // n_chunks):
            _problem_leaves(child_start, probs[p], start[p], states[p], stride, height, table, draws, udraws, nodes, out[p])


@numba.njit(cache=True)
def _problem_leaves(child_start, probs_row, s, state, stride, height, table, draws, udraws, nodes, out_row):
    """out_row[i] = leaf reached by rollout i from node s, using the stream ``state`` (4 words).

    Builds the lookup table unless the direct walk is cheaper for this many steps; walks in
    blocks when every leaf below s is at one depth, one rollout at a time otherwise (both
    consume the same draws, so they give the same leaves)."""
    n_samples = out_row.shape[0]
    walk_stride = _walk_stride(stride, height[s], n_samples, probs_row.shape[0])
    if walk_stride != _DIRECT:
        _fill_table(child_start, probs_row, stride, table)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    depth = height[s]
    if depth >= 0:
        block = _block_size(depth, n_samples)
        for i0 in range(0, n_samples, block):
            nb = min(block, n_samples - i0)
            s0, s1, s2, s3 = _walk_block(child_start, probs_row, table, walk_stride, s, depth, nb, draws, udraws, nodes,
                                         s0, s1, s2, s3)
            for w in range(nb):
                out_row[i0 + w] = nodes[w]
    else:
        for i in range(n_samples):
            leaf, s0, s1, s2, s3 = _walk(child_start, probs_row, table, walk_stride, s, s0, s1, s2, s3)
            out_row[i] = leaf


@numba.njit(cache=True, parallel=True)
def _rollout_counts_kernel(
    child_start, probs, start, states, stride, n_chunks, n_samples, hard_edges, correct, valid, out
):
    """out[p] = (correct, easy_valid, hard_valid, invalid) counts over n_samples rollouts of p.

    hard_edges[v] = number of hard steps on the root -> v path, so a rollout from s to leaf v is
    all-easy exactly when hard_edges[v] == hard_edges[s]. Same draws, walks and chunking as
    _sample_leaves_kernel.
    """
    n_problems, n_nodes = probs.shape
    height = _uniform_heights(child_start)
    for chunk in numba.prange(n_chunks):
        table = np.empty(n_nodes * max(stride, 1), dtype=np.int64)
        draws = np.empty(_BLOCK_DRAWS, dtype=np.int64)
        udraws = np.empty(_BLOCK_DRAWS, dtype=np.float64)
        nodes = np.empty(_BLOCK_DRAWS, dtype=np.int64)
        leaves = np.empty(n_samples, dtype=np.int64)
        for p in range(chunk * n_problems // n_chunks, (chunk + 1) * n_problems // n_chunks):
            s = start[p]
            _problem_leaves(child_start, probs[p], s, states[p], stride, height, table, draws, udraws, nodes, leaves)
            hard_at_start = hard_edges[s]
            n_correct = 0
            n_easy = 0
            n_hard = 0
            n_invalid = 0
            for leaf in leaves:
                if correct[p, leaf]:
                    n_correct += 1
                if valid[p, leaf]:
                    if hard_edges[leaf] == hard_at_start:
                        n_easy += 1
                    else:
                        n_hard += 1
                else:
                    n_invalid += 1
            out[p, 0] = n_correct
            out[p, 1] = n_easy
            out[p, 2] = n_hard
            out[p, 3] = n_invalid


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


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_seed(seed) -> np.uint64:
    return np.uint64(_check_int("seed", seed, 0, 2**64 - 1))


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


def _check_walk_inputs(tree, probs, start) -> tuple[np.ndarray, np.ndarray]:
    """Validated contiguous (probs (P, N) float64, start (P,) int64)."""
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
    probs = np.ascontiguousarray(probs)
    if _probs_ok_kernel(tree.child_start, probs, PROB_TOL):  # fast path: one fused pass
        return probs, start
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
    return probs, start


def stream_states(seed: int, n_streams: int) -> np.ndarray:
    """(n_streams, 4) uint64 initial xoshiro256** states of streams (seed, 0..n_streams-1)."""
    seed = _check_seed(seed)
    n_streams = _check_int("n_streams", n_streams, 0)
    out = np.empty((n_streams, 4), dtype=np.uint64)
    _stream_states_kernel(seed, out)
    return out


def stream_uniforms(seed: int, n_streams: int, n_draws: int) -> np.ndarray:
    """(n_streams, n_draws) the first uniforms of each stream: what rollouts of problem p consume."""
    states = stream_states(seed, n_streams)
    n_draws = _check_int("n_draws", n_draws, 0)
    out = np.empty((n_streams, n_draws))
    _uniforms_kernel(states, out)
    return out


def sample_leaves(
    tree, probs, start, n_samples: int, seed: int, n_threads: int | None = None, *, fixed_width: bool = True
) -> np.ndarray:
    """(P, n_samples) int64 leaf ids reached by rollouts of each problem from ``start[p]``.

    ``probs`` (P, N) are per-problem step probabilities (:func:`markovfork.policy.transition_probs`);
    problem p uses stream (seed, p), so the result is independent of ``n_threads`` (numba
    threads for this call; None keeps the current setting). ``fixed_width=False`` forces the
    per-child table layout (same result; for tests and benchmarks).
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    seed = _check_seed(seed)
    n_threads = _check_n_threads(n_threads)
    with _numba_threads(n_threads):  # validation runs in parallel too
        probs, start = _check_walk_inputs(tree, probs, start)
        states = np.empty((start.shape[0], 4), dtype=np.uint64)
        _stream_states_kernel(seed, states)
        out = np.empty((start.shape[0], n_samples), dtype=np.int64)
        _sample_leaves_kernel(
            tree.child_start, probs, start, states, _record_stride(tree, fixed_width), _n_chunks(len(start)), out
        )
    return out


def _n_chunks(n_problems: int) -> int:
    """Parallel chunks of problems: several per thread, handed out dynamically for load balance
    (results do not depend on it); each chunk builds its own lookup table."""
    return max(1, min(n_problems, 8 * numba.get_num_threads()))


def _record_stride(tree, fixed_width: bool = True) -> int:
    """Table layout for ``_fill_table``: the fixed record width (a power of two), or 0."""
    widest = max(int(tree.n_children.max()), 1)
    if not fixed_width or widest > MAX_FIXED_WIDTH:
        return 0
    return 1 << (widest - 1).bit_length()  # round up to a power of two: records align to cache lines


def _hard_edges(tree) -> np.ndarray:
    """(N,) int64 number of hard (not edge_easy) steps on the path root -> v."""
    hard = np.zeros(tree.n_nodes, dtype=np.int64)
    step_hard = (~tree.edge_easy).astype(np.int64)
    for d in range(1, int(tree.depth.max()) + 1):  # breadth-first levels: parents are done first
        nodes = np.flatnonzero(tree.depth == d)
        hard[nodes] = hard[tree.parent[nodes]] + step_hard[nodes]
    return hard


def sample_rollouts(
    tree, probs, problems, n_samples: int, seed: int, n_threads: int | None = None, *, fixed_width: bool = True
) -> RolloutCounts:
    """Counts of correct / easy-valid / hard-valid / invalid rollouts, ``n_samples`` per problem.

    Same draws as :func:`sample_leaves` with the same arguments (problem p uses stream
    (seed, p)); the leaves are classified on the fly instead of stored.
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    seed = _check_seed(seed)
    n_threads = _check_n_threads(n_threads)
    problems.check_tree(tree)
    with _numba_threads(n_threads):  # validation runs in parallel too
        probs, start = _check_walk_inputs(tree, probs, problems.start)
        states = np.empty((start.shape[0], 4), dtype=np.uint64)
        _stream_states_kernel(seed, states)
        out = np.empty((start.shape[0], 4), dtype=np.int64)
        _rollout_counts_kernel(
            tree.child_start, probs, start, states, _record_stride(tree, fixed_width), _n_chunks(len(start)),
            n_samples, _hard_edges(tree),
            np.ascontiguousarray(problems.correct, dtype=np.bool_),
            np.ascontiguousarray(problems.valid, dtype=np.bool_), out,
        )
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
