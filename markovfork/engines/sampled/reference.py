"""NumPy references of the sampled engine (independent of its kernels, for tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from markovfork.plumbing import checks
from markovfork.engines.sampled.api import RolloutCounts
from markovfork.engines.sampled.inputs import checked_inputs

__all__ = ["sample_leaves_reference", "path_types_reference"]


def sample_leaves_reference(tree, probs, start, n_samples: int, seed: int) -> np.ndarray:
    """NumPy reference sampler: (P, n_samples) leaf ids, vectorised over samples.

    Uses ``numpy.random.default_rng(seed)`` (its own draws, not the kernel's streams) and an
    independent guard: per node a padded table of within-node cumulative sums, the child index
    ``#{cumsum <= u}`` clamped to the last child with positive probability.
    """
    n_samples = checks.integer("n_samples", n_samples, 1)
    seed = checks.seed(seed)
    probs, start = checked_inputs(tree, probs, start)
    checks.fits_in_memory("n_samples", n_samples, 8 * start.shape[0] * n_samples,
                           f"the leaves of {start.shape[0]} problems x n_samples rollouts")
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
    """Classify sampled leaves (P, n) into :class:`RolloutCounts` with plain Python walks up the
    tree (test reference)."""
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
