"""Drivers: sample every problem of a call, by walks or paths, chunks of problems in parallel.

Problem p draws from its own stream (state ``batch.states[p]``), so the result does not depend
on how problems are split into chunks or threads. Walks consume the stream's uniforms in order,
one per step, rollout after rollout; paths give rollout i the stream's i-th uniform.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from markovfork.engines.sampled.paths import path_buffers, path_pick, path_setup
from markovfork.engines.sampled.rows import row_ok
from markovfork.engines.sampled.walk import walk
from markovfork.engines.sampled.streams import xoshiro_next

__all__ = ["AUTO", "WALK", "PATH", "METHODS", "BLOCK", "Batch", "Outcomes", "run_chunks"]

AUTO, WALK, PATH = 0, 1, 2  # kernel codes of the ``method`` argument
BLOCK = 4096  # rollouts counts_chunk draws and classifies at a time
METHODS = {"auto": AUTO, "walk": WALK, "path": PATH}


class Batch(NamedTuple):
    """The per-call inputs and settings every driver takes (one argument: a NamedTuple)."""

    probs: np.ndarray  # (P, N) float64: step probabilities, one row per problem
    start: np.ndarray  # (P,) int64: start node of each problem
    states: np.ndarray  # (P, 4) uint64: initial stream state of each problem
    method: int  # AUTO, WALK or PATH
    tol: float  # tolerance on each node's row summing to 1
    n_samples: int  # rollouts per problem


class Outcomes(NamedTuple):
    """What ``counts_chunk`` classifies leaves by."""

    hard_edges: np.ndarray  # (N,) int64: hard steps on the path root -> v
    correct: np.ndarray  # (P, N) bool
    valid: np.ndarray  # (P, N) bool


@numba.njit(cache=True, inline="always")
def uses_path(method, n_samples, height_at_start, n_nodes):
    """Whether a problem is sampled by paths (O(N) set-up, then O(1) per rollout) rather than by
    walks (O(height) per rollout, no set-up): ``auto`` takes paths once the rollouts could take
    N/6 steps or more (the measured break-even, docs/performance.md)."""
    if method == AUTO:
        return height_at_start > 0 and 6 * n_samples * height_at_start >= n_nodes
    return method == PATH


@numba.njit(cache=True)
def problem_setup(tree, batch, p, tables):
    """Check problem p's row and, when ``uses_path`` picks paths, build its tables; returns
    (whether the row is valid, whether paths are used). An invalid row is not to be sampled."""
    row, s = batch.probs[p], batch.start[p]
    if uses_path(batch.method, batch.n_samples, tree.height[s], row.shape[0]):
        return path_setup(tree, row, s, batch.tol, tables), True
    return row_ok(tree.last_child, row, batch.tol), False


@numba.njit(cache=True, inline="always")
def draw_leaves(tree, batch, p, tables, by_path, s0, s1, s2, s3, out_row):
    """out_row[i] = leaf reached by the next rollouts of problem p, from the stream state
    (s0..s3), by paths (one uniform per rollout) or walks (one per step); returns the new state,
    so that rollouts can be drawn in blocks that continue one stream."""
    if by_path:
        leaves, thresholds, guide, shift = tree.leaves, tables.thresholds, tables.guide, tree.shift
        for i in range(out_row.shape[0]):
            x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            out_row[i] = leaves[path_pick(thresholds, guide, shift, np.int64(x >> np.uint64(11)))]
    else:
        row, s = batch.probs[p], batch.start[p]
        for i in range(out_row.shape[0]):
            leaf, s0, s1, s2, s3 = walk(tree.child_start, row, s, s0, s1, s2, s3)
            out_row[i] = leaf
    return s0, s1, s2, s3


@numba.njit(cache=True)
def leaves_chunk(tree, batch, lo, hi, out, ok):
    """out[p, i] = leaf reached by rollout i of problem p and ok[p] = whether probs[p] is valid
    (invalid rows are not sampled), for problems lo..hi-1, one set of path tables."""
    tables = path_buffers(batch.probs.shape[1], tree.leaves.shape[0], tree.shift)
    for p in range(lo, hi):
        ok[p], by_path = problem_setup(tree, batch, p, tables)
        if ok[p]:
            state = batch.states[p]
            draw_leaves(tree, batch, p, tables, by_path, state[0], state[1], state[2], state[3], out[p])


@numba.njit(cache=True)
def counts_chunk(tree, batch, outcomes, lo, hi, out, ok):
    """out[p] = (correct, easy_valid, hard_valid, invalid) counts over the rollouts of problem p
    (the leaves of ``leaves_chunk``, drawn in blocks of at most BLOCK and classified instead of
    returned: memory does not grow with n_samples) for problems lo..hi-1.

    A rollout from s to leaf v is all-easy exactly when hard_edges[v] == hard_edges[s].
    """
    tables = path_buffers(batch.probs.shape[1], tree.leaves.shape[0], tree.shift)
    n_samples = batch.n_samples
    block = np.empty(min(n_samples, BLOCK), dtype=np.int64)
    hard_edges, correct, valid = outcomes.hard_edges, outcomes.correct, outcomes.valid
    for p in range(lo, hi):
        ok[p], by_path = problem_setup(tree, batch, p, tables)
        if not ok[p]:
            continue
        state = batch.states[p]
        s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
        hard_at_start = hard_edges[batch.start[p]]
        n_correct = 0
        n_easy = 0
        n_valid = 0
        pu = np.uint64(p)
        for first in range(0, n_samples, block.shape[0]):
            drawn = block[:min(block.shape[0], n_samples - first)]
            s0, s1, s2, s3 = draw_leaves(tree, batch, p, tables, by_path, s0, s1, s2, s3, drawn)
            for leaf in drawn:  # counts, not branches: the outcomes are random
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
def leaves_kernel(tree, batch, n_chunks, out, ok):
    """``leaves_chunk`` over n_chunks contiguous chunks of problems run in parallel."""
    n_problems = batch.probs.shape[0]
    for chunk in numba.prange(n_chunks):
        leaves_chunk(tree, batch, chunk * n_problems // n_chunks, (chunk + 1) * n_problems // n_chunks, out, ok)


@numba.njit(cache=True, parallel=True)
def counts_kernel(tree, batch, outcomes, n_chunks, out, ok):
    """``counts_chunk`` over n_chunks contiguous chunks of problems run in parallel."""
    n_problems = batch.probs.shape[0]
    for chunk in numba.prange(n_chunks):
        counts_chunk(tree, batch, outcomes, chunk * n_problems // n_chunks, (chunk + 1) * n_problems // n_chunks,
                     out, ok)


def _check_shapes(tree, batch: Batch, out: np.ndarray, outcomes: Outcomes | None) -> None:
    """The shapes the kernels index by, consistent with each other (the public functions build
    them; this guards the kernels against a caller that does not)."""
    n_problems, n_nodes = batch.probs.shape
    counts = outcomes is not None
    shapes = (tree.child_start.shape, tree.parent.shape, tree.last_child.shape, tree.height.shape,
              batch.start.shape, batch.states.shape, out.shape)
    expected = ((n_nodes + 1,), (n_nodes,), (n_nodes,), (n_nodes,), (n_problems,), (n_problems, 4),
                (n_problems, 4 if counts else batch.n_samples))
    if counts:
        shapes += (outcomes.hard_edges.shape, outcomes.correct.shape, outcomes.valid.shape)
        expected += ((n_nodes,), (n_problems, n_nodes), (n_problems, n_nodes))
    if shapes != expected:
        raise ValueError(f"internal error: kernel arrays of shapes {shapes}, expected {expected}")


def run_chunks(tree, batch: Batch, out: np.ndarray, outcomes: Outcomes | None = None) -> np.ndarray:
    """Sample every problem into ``out`` (leaves, or counts when ``outcomes`` is given); returns
    the per-problem validity flags. One thread: the chunk function over all problems (the
    parallel kernel with one thread is slower); more: the parallel kernel, several chunks per
    thread, handed out dynamically for load balance (results do not depend on it)."""
    _check_shapes(tree, batch, out, outcomes)
    n_problems = batch.probs.shape[0]
    ok = np.ones(n_problems, dtype=np.bool_)
    n_threads = numba.get_num_threads()
    serial = n_threads == 1 or n_problems < 2
    n_chunks = min(n_problems, 8 * n_threads)
    if outcomes is None:
        if serial:
            leaves_chunk(tree, batch, 0, n_problems, out, ok)
        else:
            leaves_kernel(tree, batch, n_chunks, out, ok)
    elif serial:
        counts_chunk(tree, batch, outcomes, 0, n_problems, out, ok)
    else:
        counts_kernel(tree, batch, outcomes, n_chunks, out, ok)
    return ok
