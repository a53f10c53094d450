"""The tree as the sampling kernels read it, built once per tree and cached while it cannot change.

Node ids in the hot loops are unsigned (32-bit parents and leaf ids, uint64 loop indices) so
Numba emits no negative-index wraparound code. Children of successive nodes are successive id
ranges tiling 1..N-1, and every child has a larger id than its parent.
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import numba
import numpy as np

from markovfork.engines.sampled.paths import PAD, guide_shift

__all__ = ["KernelTree", "kernel_tree", "hard_edges"]


class KernelTree(NamedTuple):
    """The tree arrays every sampling kernel takes (one argument: a NamedTuple)."""

    child_start: np.ndarray  # (N+1,) int64: children of v are child_start[v] : child_start[v+1]
    parent: np.ndarray  # (N,) uint32 (root: 2^32 - 1, never read)
    last_child: np.ndarray  # (N,) bool: _last_child_flags
    leaves: np.ndarray  # (L,) uint32: leaf ids in increasing order
    height: np.ndarray  # (N,) int64: _max_heights
    shift: int  # guide_shift(L): the path sampler's guide has 2^(53 - shift) buckets


@numba.njit(cache=True)
def _last_child_flags(child_start):
    """flag[v] = v is the last child of its parent: these flags cut the ids 1..N-1 into the
    per-node rows of children."""
    n_nodes = child_start.shape[0] - 1
    flag = np.zeros(n_nodes, dtype=np.bool_)
    for u in range(n_nodes):
        if child_start[u + 1] > child_start[u]:
            flag[child_start[u + 1] - 1] = True
    return flag


@numba.njit(cache=True)
def _max_heights(parent):
    """height[v] = the most steps from v down to a leaf below it (0 at leaves)."""
    height = np.zeros(parent.shape[0], dtype=np.int64)
    for v in range(parent.shape[0] - 1, 0, -1):  # children have larger ids than their parent
        height[parent[v]] = max(height[parent[v]], height[v] + 1)
    return height


@numba.njit(cache=True)
def _hard_edges_kernel(parent, edge_easy):
    """hard[v] = number of hard (not edge_easy) steps on the path root -> v."""
    hard = np.zeros(parent.shape[0], dtype=np.int64)
    for v in range(1, parent.shape[0]):  # parents have smaller ids
        hard[v] = hard[parent[v]] + np.int64(not edge_easy[v])
    return hard


def _frozen(arr) -> bool:
    """Whether nothing can write to arr's data through NumPy: arr and every array it views are
    read-only (a read-only view of a writeable array is not frozen)."""
    while isinstance(arr, np.ndarray):
        if arr.flags.writeable:
            return False
        arr = arr.base
    return arr is None or isinstance(arr, bytes)


class _Cache:
    """Values derived from a tree's arrays, kept per tree object only while those arrays are the
    same objects and frozen (``_frozen``): a tree whose arrays can be written to is derived
    afresh at every call, so a cached value never goes stale."""

    def __init__(self, build, fields: tuple[str, ...]):
        self._build, self._fields, self._store = build, fields, weakref.WeakKeyDictionary()

    def __call__(self, tree):
        entry = self._store.get(tree)
        if entry is not None:
            sources, value = entry
            for name, source in zip(self._fields, sources):
                if getattr(tree, name) is not source or not _frozen(source):
                    break
            else:
                return value
        sources = [getattr(tree, name) for name in self._fields]
        value = self._build(tree)
        if all(_frozen(a) for a in sources):
            self._store[tree] = (sources, value)
        return value


def _build_kernel_tree(tree) -> KernelTree:
    if tree.n_nodes >= 2**31 - PAD:
        raise ValueError(f"tree must have fewer than 2^31 - {PAD} nodes for the sampled engine, got {tree.n_nodes}")
    leaves = tree.leaves
    return KernelTree(np.ascontiguousarray(tree.child_start, dtype=np.int64), tree.parent.astype(np.uint32),
                      _last_child_flags(tree.child_start), leaves.astype(np.uint32), _max_heights(tree.parent),
                      guide_shift(leaves.size))


_KERNEL_TREES = _Cache(_build_kernel_tree, ("child_start", "parent", "kind"))
_HARD_EDGES = _Cache(lambda tree: _hard_edges_kernel(tree.parent, tree.edge_easy), ("parent", "edge_easy"))


def kernel_tree(tree) -> KernelTree:
    """The kernels' view of ``tree`` (rebuilding it costs about as much as sampling a few problems)."""
    return _KERNEL_TREES(tree)


def hard_edges(tree) -> np.ndarray:
    """(N,) int64 number of hard (not ``edge_easy``) steps on the path root -> v."""
    return _HARD_EDGES(tree)
