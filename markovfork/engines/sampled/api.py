"""The sampled engine's Python layer: checked inputs, streams and thread control around the drivers."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.engines.sampled.drivers import Batch, Outcomes, run_chunks
from markovfork.engines.sampled.inputs import check_kernel_flags, kernel_arrays, method_code, thread_count
from markovfork.engines.sampled.kernel_tree import hard_edges, kernel_tree
from markovfork.engines.sampled.streams import stream_states_kernel
from markovfork.model.tree import PROB_TOL

__all__ = ["RolloutCounts", "sample_leaves", "sample_rollouts"]


@dataclass(frozen=True)
class RolloutCounts:
    """Per-problem outcome counts of ``n_samples`` rollouts (easy_valid + hard_valid + invalid = n)."""

    correct: np.ndarray  # (P,) int64: rollouts ending at a correct leaf
    easy_valid: np.ndarray  # (P,) int64: all-easy path (every edge tree.edge_easy) to a valid leaf
    hard_valid: np.ndarray  # (P,) int64: valid leaf, some hard edge on the way
    invalid: np.ndarray  # (P,) int64: leaf not valid
    n_samples: int  # rollouts per problem


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


def _batch(probs, start, n_samples, seed, method) -> Batch:
    """The drivers' per-call inputs: problem p's stream starts at stream_states(seed, p)."""
    states = np.empty((start.shape[0], 4), dtype=np.uint64)
    stream_states_kernel(np.uint64(seed), states)
    return Batch(probs, start, states, method, PROB_TOL, n_samples)


def sample_leaves(tree, probs, start, n_samples: int, seed: int, n_threads: int | None = None, *,
                  method: str = "auto") -> np.ndarray:
    """(P, n_samples) int64 leaf ids reached by rollouts of each problem from ``start[p]``.

    ``probs`` (P, N) are per-problem step probabilities (:func:`markovfork.model.policy.transition_probs`);
    problem p uses stream (seed, p), so the result is independent of ``n_threads`` (numba
    threads for this call; None keeps the current setting). ``method``: ``"walk"`` (one uniform
    per step), ``"path"`` (one uniform per rollout, O(N) set-up per problem) or ``"auto"`` (per
    problem, whichever is cheaper for ``n_samples``; see :mod:`markovfork.engines.sampled`). All three
    draw from the same distribution; a given method and seed always give the same leaves.
    """
    n_samples = checks.integer("n_samples", n_samples, 1, checks.INT64_MAX)
    seed = checks.seed(seed)
    n_threads = thread_count(n_threads)
    code = method_code(method)
    probs, start = kernel_arrays(tree, probs, start)
    checks.fits_in_memory("n_samples", n_samples, 8 * start.shape[0] * n_samples,
                           f"the leaves of {start.shape[0]} problems x n_samples rollouts")
    kt = kernel_tree(tree)
    with _numba_threads(n_threads):
        out = np.empty((start.shape[0], n_samples), dtype=np.int64)
        ok = run_chunks(kt, _batch(probs, start, n_samples, seed, code), out)
    check_kernel_flags(tree, probs, ok)
    return out


def sample_rollouts(tree, probs, problems, n_samples: int, seed: int, n_threads: int | None = None, *,
                    method: str = "auto") -> RolloutCounts:
    """Counts of correct / easy-valid / hard-valid / invalid rollouts, ``n_samples`` per problem.

    Same draws and leaves as :func:`sample_leaves` with the same arguments (problem p uses stream
    (seed, p)); the leaves are classified as they are drawn, in blocks, instead of returned, so
    memory does not grow with ``n_samples``.
    """
    n_samples = checks.integer("n_samples", n_samples, 1, checks.INT64_MAX)
    seed = checks.seed(seed)
    n_threads = thread_count(n_threads)
    code = method_code(method)
    problems.check_tree(tree)
    probs, start = kernel_arrays(tree, probs, problems.start)
    shape = (start.shape[0], tree.n_nodes)
    outcomes = Outcomes(hard_edges(tree), checks.bool_matrix("problems.correct", problems.correct, shape),
                        checks.bool_matrix("problems.valid", problems.valid, shape))
    kt = kernel_tree(tree)
    with _numba_threads(n_threads):
        out = np.empty((start.shape[0], 4), dtype=np.int64)
        ok = run_chunks(kt, _batch(probs, start, n_samples, seed, code), out, outcomes)
    check_kernel_flags(tree, probs, ok)
    return RolloutCounts(
        correct=out[:, 0].copy(), easy_valid=out[:, 1].copy(), hard_valid=out[:, 2].copy(),
        invalid=out[:, 3].copy(), n_samples=n_samples,
    )
