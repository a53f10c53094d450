"""A task distribution: problems, each with its correct leaves and a feature vector phi(x)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.plumbing.seeds import child_rng
from markovfork.model.tree import LEAF, Tree

__all__ = ["Problems", "subtree_any", "subtree_any_reference"]


@dataclass(frozen=True, eq=False)
class Problems:
    """P problems over one tree.

    ``correct[p, v]`` is True when leaf ``v`` is a correct final answer for problem ``p``;
    ``valid[p, v]`` when it is a well-formed answer for the problem's task (correct implies
    valid; for fork trees the two coincide). ``features[p]`` is phi(x), the surface features a
    network can latch onto (shape (P, 0) for a tabular model). The constructor stores read-only
    copies (any array-likes are accepted).
    """

    start: np.ndarray  # (P,) int64: node where the problem's reasoning starts (usually the root)
    correct: np.ndarray  # (P, N) bool: correct leaves
    valid: np.ndarray  # (P, N) bool: valid leaves (superset of correct)
    features: np.ndarray  # (P, d) float64: phi(x)
    ids: np.ndarray  # (P,) int64: stable problem ids (survive subsetting)

    def __post_init__(self) -> None:
        for name, dtype, ndim in (("start", np.int64, 1), ("correct", np.bool_, 2), ("valid", np.bool_, 2),
                                  ("features", np.float64, 2), ("ids", np.int64, 1)):
            arr = checks.array(name, getattr(self, name), dtype, ndim)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        n_problems = self.start.shape[0]
        if self.correct.shape[0] != n_problems:
            raise ValueError(f"correct must have shape (P, n_nodes) with P={n_problems}, got {self.correct.shape}")
        if self.valid.shape != self.correct.shape:
            raise ValueError(f"valid must have the shape of correct {self.correct.shape}, got {self.valid.shape}")
        if self.features.shape[0] != n_problems:
            raise ValueError(f"features must have shape (P, d) with P={n_problems}, got {self.features.shape}")
        if self.ids.shape != (n_problems,):
            raise ValueError(f"ids must have shape ({n_problems},), got {self.ids.shape}")
        if not np.all(np.isfinite(self.features)):
            raise ValueError(f"features must be finite numbers, got {self.features[~np.isfinite(self.features)][0]}")
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
        checks.start_ids(self.start, tree.n_nodes, len(self), "problems.start")

    def subset(self, index) -> "Problems":
        index = np.asarray(index)
        return Problems(self.start[index], self.correct[index], self.valid[index], self.features[index], self.ids[index])

    def split(self, test_fraction: float, seed: int) -> tuple["Problems", "Problems"]:
        """Reproducible train/test split: a seeded permutation, the last ``test_fraction`` is test."""
        test_fraction = checks.real("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
        perm = child_rng(seed).permutation(len(self))  # = np.random.default_rng(seed)
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


def _parent_array(parent) -> np.ndarray:
    """``parent`` checked for the kernels: parent[0] = -1, each other parent a smaller id."""
    parent = np.asarray(parent)
    if parent.dtype != np.int64 or not parent.flags.c_contiguous:
        parent = checks.array("parent", parent, np.int64)
    if parent.ndim != 1 or parent.size == 0:
        raise ValueError(f"parent must be a non-empty 1-D array of node ids, got shape {parent.shape}")
    bad = (parent[1:] < 0) | (parent[1:] >= np.arange(1, parent.size))
    if parent[0] != -1 or bad.any():
        v = 0 if parent[0] != -1 else 1 + int(np.argmax(bad))
        raise ValueError(f"parent[{v}] must be {'-1 (the root)' if v == 0 else f'a node id below {v}'}, got {int(parent[v])}")
    return parent


def subtree_any(parent: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(P, N) bool: whether any node of v's subtree is marked in ``mask`` (P, N); ``parent`` is a
    breadth-first parent array (``tree.parent``)."""
    parent = _parent_array(parent)
    if np.ndim(mask) != 2:
        raise ValueError(f"mask must have shape (P, {parent.size}), got {np.shape(mask)}")
    mask = checks.bool_matrix("mask", mask, (np.shape(mask)[0], parent.size))
    out = np.empty(mask.shape, dtype=np.bool_)
    _subtree_any_kernel(parent, mask, out)
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
