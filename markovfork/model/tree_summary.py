"""Summaries of a tree: counts for people (``markovfork tree``) and a per-node table."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from markovfork.engines.sampled.kernel_tree import hard_edges
from markovfork.model.tree import DECIPHERABLE, FORK, KIND_NAMES, LEAF, Tree

__all__ = ["TreeSummary", "summarize_tree", "node_table"]


@dataclass(frozen=True)
class TreeSummary:
    """Counts describing a tree. Every root-to-leaf path ends at its own leaf, so paths = leaves."""

    n_nodes: int  # all nodes
    n_internal: int  # nodes with children (forks + decipherable)
    n_forks: int  # FORK nodes
    n_decipherable: int  # DECIPHERABLE nodes
    n_leaves: int  # LEAF nodes = root-to-leaf paths
    depth: int  # longest root-to-leaf path (steps)
    min_leaf_depth: int  # shortest root-to-leaf path (steps)
    max_branching: int  # most children of any node
    n_easy_paths: int  # root-to-leaf paths whose every edge is easy
    max_forks_on_path: int  # most forks passed by one root-to-leaf path

    def to_json(self) -> dict:
        return asdict(self)


def summarize_tree(tree: Tree) -> TreeSummary:
    """Node counts, depth, path counts and forks per path of ``tree``."""
    hard = hard_edges(tree)  # hard edges on the root -> v path
    forks_above = np.zeros(tree.n_nodes, dtype=np.int64)  # forks strictly above v
    is_fork = tree.kind == FORK
    for v in range(1, tree.n_nodes):  # breadth-first: parents first
        u = tree.parent[v]
        forks_above[v] = forks_above[u] + is_fork[u]
    leaves = tree.leaves
    return TreeSummary(
        n_nodes=tree.n_nodes,
        n_internal=int(np.sum(tree.kind != LEAF)),
        n_forks=int(np.sum(is_fork)),
        n_decipherable=int(np.sum(tree.kind == DECIPHERABLE)),
        n_leaves=int(leaves.size),
        depth=int(tree.depth.max()),
        min_leaf_depth=int(tree.depth[leaves].min()),
        max_branching=int(tree.n_children.max()),
        n_easy_paths=int(np.sum(hard[leaves] == 0)),
        max_forks_on_path=int(forks_above[leaves].max()),
    )


def node_table(tree: Tree) -> pl.DataFrame:
    """One row per node (breadth-first id): parent, depth, kind, label, edge probability and easiness."""
    return pl.DataFrame(
        {
            "node": np.arange(tree.n_nodes, dtype=np.int64),
            "parent": tree.parent,
            "depth": tree.depth,
            "kind": [KIND_NAMES[int(k)] for k in tree.kind],
            "n_children": tree.n_children,
            "label": tree.label,
            "edge_prob": tree.edge_prob,
            "edge_easy": tree.edge_easy,
            "valid_branches": tree.valid_branches,
        }
    )
