"""A task distribution: problems, each with its correct leaves and a feature vector phi(x)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from markovfork.tree import LEAF, Tree

__all__ = ["Problems", "subtree_any", "subtree_any_reference"]


@dataclass(frozen=True, eq=False)
class Problems:
    """P problems over one tree.

    ``correct[p, v]`` is True when leaf ``v`` is a correct final answer for problem ``p``;
    ``valid[p, v]`` when it is a well-formed answer for the problem's task (correct implies
    valid; for fork trees the two coincide). ``features[p]`` is phi(x), the surface features a
    network can latch onto (shape (P, 0) for a tabular model).
    """

    start: np.ndarray  # (P,) int64: node where the problem's reasoning starts (usually the root)
    correct: np.ndarray  # (P, N) bool: correct leaves
    valid: np.ndarray  # (P, N) bool: valid leaves (superset of correct)
    features: np.ndarray  # (P, d) float64: phi(x)
    ids: np.ndarray  # (P,) int64: stable problem ids (survive subsetting)

    def __post_init__(self) -> None:
        n_problems = self.start.shape[0]
        if self.correct.ndim != 2 or self.correct.shape[0] != n_problems:
            raise ValueError(f"correct must have shape (P, n_nodes) with P={n_problems}, got {self.correct.shape}")
        if self.valid.shape != self.correct.shape:
            raise ValueError(f"valid must have the shape of correct {self.correct.shape}, got {self.valid.shape}")
        if self.features.ndim != 2 or self.features.shape[0] != n_problems:
            raise ValueError(f"features must have shape (P, d) with P={n_problems}, got {self.features.shape}")
        if self.ids.shape != (n_problems,):
            raise ValueError(f"ids must have shape ({n_problems},), got {self.ids.shape}")
        if np.any(self.correct & ~self.valid):
            raise ValueError(f"problem {int(np.flatnonzero((self.correct & ~self.valid).any(1))[0])}: a correct leaf must be valid")

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])

    def check_tree(self, tree: Tree) -> None:
        """Raise ``ValueError`` unless these problems fit ``tree``."""
        if self.correct.shape[1] != tree.n_nodes:
            raise ValueError(f"problems are over {self.correct.shape[1]} nodes, the tree has {tree.n_nodes}")
        if np.any(self.valid[:, tree.kind != LEAF]):
            raise ValueError("only leaves can be valid or correct answers")
        if np.any((self.start < 0) | (self.start >= tree.n_nodes)):
            raise ValueError(f"start nodes must be node ids of the tree, got {self.start.min()}..{self.start.max()}")

    def subset(self, index) -> "Problems":
        index = np.asarray(index)
        return Problems(self.start[index], self.correct[index], self.valid[index], self.features[index], self.ids[index])

    def split(self, test_fraction: float, seed: int) -> tuple["Problems", "Problems"]:
        """Reproducible train/test split: a seeded permutation, the last ``test_fraction`` is test."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_test = max(1, int(round(test_fraction * len(self))))
        if n_test >= len(self):
            raise ValueError(f"cannot split {len(self)} problems with test_fraction={test_fraction}")
        return self.subset(np.sort(perm[:-n_test])), self.subset(np.sort(perm[-n_test:]))

    def on_correct_path(self, tree: Tree) -> np.ndarray:
        """(P, N) bool: node v has a correct leaf of problem p in its subtree."""
        return subtree_any(tree.parent, self.correct)


@numba.njit(cache=True)
def _subtree_any_kernel(parent, mask, out):
    """out[p, v] = OR of mask[p, u] over u in the subtree of v (nodes numbered breadth-first)."""
    out[:, :] = mask
    for v in range(parent.shape[0] - 1, 0, -1):
        u = parent[v]
        for p in range(out.shape[0]):
            if out[p, v]:
                out[p, u] = True


def subtree_any(parent: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(P, N) bool: whether any node of v's subtree is marked in ``mask`` (P, N)."""
    out = np.empty(mask.shape, dtype=np.bool_)
    _subtree_any_kernel(parent, np.ascontiguousarray(mask, dtype=np.bool_), out)
    return out


def subtree_any_reference(parent: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """NumPy reference for :func:`subtree_any`: propagate each marked node up to the root."""
    out = mask.astype(bool).copy()
    for p, v in zip(*np.nonzero(mask)):
        u = parent[v]
        while u >= 0:
            out[p, u] = True
            u = parent[u]
    return out
