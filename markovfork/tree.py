"""The reasoning tree as flat arrays that compiled kernels can walk.

Nodes are numbered breadth-first from the root (node 0), so

* the children of node ``v`` are the contiguous ids ``child_start[v] .. child_start[v+1] - 1``;
* every child has a larger id than its parent (a reverse sweep over ids is a bottom-up pass).

Edge ``parent[v] -> v`` is identified by its child ``v``: ``edge_prob[v]`` is the base-model
probability of that step, ``edge_easy[v]`` marks a high-probability ("easy") step.

Node kinds: ``DECIPHERABLE`` (the correct next step is visible to the policy), ``FORK`` (which
branch leads to a correct answer depends on hidden information) and ``LEAF`` (a final answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DECIPHERABLE", "FORK", "LEAF", "KIND_NAMES", "Tree", "TreeBuilder", "tree_from_children", "tree_from_dict", "load_tree"]

DECIPHERABLE, FORK, LEAF = 0, 1, 2
KIND_NAMES = {DECIPHERABLE: "decipherable", FORK: "fork", LEAF: "leaf"}
_KIND_CODES = {name: code for code, name in KIND_NAMES.items()}

PROB_TOL = 1e-6  # tolerance on each node's outgoing probabilities summing to 1


@dataclass(frozen=True, eq=False)
class Tree:
    """A rooted reasoning tree in breadth-first flat-array form (see the module docstring)."""

    child_start: np.ndarray  # (N+1,) int64: children of v are child_start[v] : child_start[v+1]
    parent: np.ndarray  # (N,) int64: parent id, -1 at the root
    depth: np.ndarray  # (N,) int64: steps from the root
    kind: np.ndarray  # (N,) int8: DECIPHERABLE, FORK or LEAF
    edge_prob: np.ndarray  # (N,) float64: base probability of the step parent[v] -> v (1 at root)
    edge_easy: np.ndarray  # (N,) bool: the step parent[v] -> v is easy (high probability)
    label: np.ndarray  # (N,) int64: a constructor's label (TMC: the state's index in its layer)
    valid_branches: np.ndarray  # (N,) int64: at a fork, how many children are valid per problem

    def __post_init__(self) -> None:
        validate_tree(self)

    @property
    def n_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def n_children(self) -> np.ndarray:
        """(N,) number of children of each node."""
        return np.diff(self.child_start)

    @property
    def edge_logit(self) -> np.ndarray:
        """(N,) base-policy logits ``log edge_prob`` (-inf for probability-0 steps)."""
        with np.errstate(divide="ignore"):
            return np.log(self.edge_prob)

    @property
    def leaves(self) -> np.ndarray:
        return np.flatnonzero(self.kind == LEAF)

    @property
    def forks(self) -> np.ndarray:
        return np.flatnonzero(self.kind == FORK)

    def children(self, v: int) -> np.ndarray:
        return np.arange(self.child_start[v], self.child_start[v + 1])

    def path_to(self, v: int) -> np.ndarray:
        """Node ids from the root down to ``v``."""
        path = [v]
        while self.parent[path[-1]] >= 0:
            path.append(int(self.parent[path[-1]]))
        return np.array(path[::-1], dtype=np.int64)

    def to_dict(self) -> dict:
        """Nested-dict form accepted by :func:`tree_from_dict` (round-trips exactly)."""

        def node(v: int) -> dict:
            d = {"kind": KIND_NAMES[int(self.kind[v])], "label": int(self.label[v])}
            if self.kind[v] == FORK:
                d["valid_branches"] = int(self.valid_branches[v])
            kids = self.children(v)
            if len(kids):
                d["children"] = [
                    {"prob": float(self.edge_prob[c]), "easy": bool(self.edge_easy[c]), **node(int(c))} for c in kids
                ]
            return d

        return node(0)


def validate_tree(tree: Tree) -> None:
    """Check shapes, breadth-first layout and the probability rows; ``ValueError`` naming the node."""
    n = tree.parent.shape[0]
    if n < 1:
        raise ValueError("a tree needs at least one node")
    for name in ("depth", "kind", "edge_prob", "edge_easy", "label", "valid_branches"):
        if getattr(tree, name).shape != (n,):
            raise ValueError(f"tree.{name} must have shape ({n},), got {getattr(tree, name).shape}")
    cs = tree.child_start
    if cs.shape != (n + 1,) or cs[0] != 1 or cs[-1] != n or np.any(np.diff(cs) < 0):
        raise ValueError("tree.child_start must be non-decreasing offsets from 1 to n_nodes")
    if tree.parent[0] != -1:
        raise ValueError("node 0 must be the root (parent -1)")
    n_children = np.diff(cs)
    expected_parent = np.repeat(np.arange(n), n_children)
    if not np.array_equal(tree.parent[1:], expected_parent):
        raise ValueError("tree.parent disagrees with tree.child_start (nodes must be numbered breadth-first)")
    if not np.array_equal(tree.depth[1:], tree.depth[tree.parent[1:]] + 1) or tree.depth[0] != 0:
        raise ValueError("tree.depth must be the number of steps from the root")
    leaf = tree.kind == LEAF
    if np.any(leaf != (n_children == 0)):
        v = int(np.flatnonzero(leaf != (n_children == 0))[0])
        raise ValueError(f"node {v}: a node is a leaf exactly when it has no children")
    if np.any((tree.kind < 0) | (tree.kind > 2)):
        raise ValueError(f"unknown node kind {int(tree.kind[(tree.kind < 0) | (tree.kind > 2)][0])}")
    p = tree.edge_prob
    if not np.all(np.isfinite(p)):
        v = int(np.flatnonzero(~np.isfinite(p))[0])
        raise ValueError(f"node {int(tree.parent[v])}: transition probability to child {v} is not finite ({p[v]})")
    if np.any(p < 0):
        v = int(np.flatnonzero(p < 0)[0])
        raise ValueError(f"node {int(tree.parent[v])}: transition probability to child {v} is negative ({p[v]})")
    row_sums = np.add.reduceat(p[1:], cs[:-1][~leaf] - 1) if n > 1 else np.zeros(0)
    bad = np.flatnonzero(np.abs(row_sums - 1.0) > PROB_TOL)
    if bad.size:
        v = int(np.flatnonzero(~leaf)[bad[0]])
        raise ValueError(f"node {v}: transition probabilities sum to {row_sums[bad[0]]:.9g}, not 1")
    forks = tree.kind == FORK
    vb = tree.valid_branches
    if np.any(forks & ((vb < 1) | (vb > n_children))):
        v = int(np.flatnonzero(forks & ((vb < 1) | (vb > n_children)))[0])
        raise ValueError(f"node {v}: valid_branches must be in [1, {int(n_children[v])}], got {int(vb[v])}")


def tree_from_children(
    children: list[list[int]],
    kind: list[int],
    edge_prob: dict[int, float] | list[float],
    edge_easy=None,
    label=None,
    valid_branches=None,
) -> tuple[Tree, np.ndarray]:
    """Build a :class:`Tree` from any node numbering (root = node 0 of the input).

    ``children[u]`` lists the input ids of ``u``'s children in order; per-node attributes are
    indexed by input id (``edge_prob[u]`` is the step into ``u``). Returns the tree and the map
    ``new_id[input_id]`` from input ids to breadth-first ids.
    """
    m = len(children)
    order = [0]
    for u in order:  # breadth-first traversal; ``order`` grows while we walk it
        order.extend(children[u])
    if sorted(order) != list(range(m)):
        raise ValueError("children must describe one tree rooted at node 0 (every node reached exactly once)")
    new_id = np.empty(m, dtype=np.int64)
    new_id[order] = np.arange(m)
    old = np.array(order, dtype=np.int64)

    def per_node(values, default, dtype):
        if values is None:
            return np.full(m, default, dtype=dtype)[old]
        return np.asarray([values[u] for u in range(m)], dtype=dtype)[old]

    n_children = np.array([len(children[u]) for u in order], dtype=np.int64)
    child_start = np.concatenate([[1], 1 + np.cumsum(n_children)]).astype(np.int64)
    parent = np.full(m, -1, dtype=np.int64)
    for u in range(m):
        for c in children[u]:
            parent[new_id[c]] = new_id[u]
    depth = np.zeros(m, dtype=np.int64)
    for v in range(1, m):
        depth[v] = depth[parent[v]] + 1
    edge_prob_arr = per_node(edge_prob, 1.0, np.float64)
    edge_prob_arr[0] = 1.0
    tree = Tree(
        child_start=child_start,
        parent=parent,
        depth=depth,
        kind=per_node(kind, 0, np.int8),
        edge_prob=edge_prob_arr,
        edge_easy=per_node(edge_easy, True, bool),
        label=per_node(label, 0, np.int64),
        valid_branches=per_node(valid_branches, 1, np.int64),
    )
    return tree, new_id


class TreeBuilder:
    """Grow a tree node by node in any order; :meth:`build` numbers it breadth-first."""

    def __init__(self) -> None:
        self.children: list[list[int]] = []
        self.kind: list[int] = []
        self.prob: list[float] = []
        self.easy: list[bool] = []
        self.label: list[int] = []
        self.valid: list[int] = []

    def add(self, kind: int, prob: float = 1.0, parent: int | None = None, *, easy: bool = True,
            label: int = 0, valid_branches: int = 1) -> int:
        """A new node (a child of ``parent`` when given, reached with probability ``prob``); its id."""
        u = len(self.children)
        self.children.append([])
        self.kind.append(kind)
        self.prob.append(prob)
        self.easy.append(easy)
        self.label.append(label)
        self.valid.append(valid_branches)
        if parent is not None:
            self.children[parent].append(u)
        return u

    def build(self) -> tuple[Tree, np.ndarray]:
        """The :class:`Tree` and the map ``new_id[builder_id]`` (node 0 of the builder is the root)."""
        return tree_from_children(self.children, self.kind, self.prob, self.easy, self.label, self.valid)


def tree_from_dict(spec: dict) -> Tree:
    """Build a tree from nested dicts.

    Each node is ``{"kind": "decipherable"|"fork"|"leaf", "children": [...], "label": int,
    "valid_branches": int}``; each child additionally carries ``"prob"`` (base probability of
    the step into it) and optionally ``"easy"`` (bool). ``kind`` defaults to ``leaf`` for a node
    without children and ``decipherable`` otherwise; ``prob`` defaults to uniform over siblings.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"a tree spec must be a dict, got {type(spec).__name__}")
    builder = TreeBuilder()

    def add(node: dict, p: float, e: bool, where: str, parent: int | None) -> None:
        if not isinstance(node, dict):
            raise ValueError(f"{where}: each node must be a dict, got {node!r}")
        kids = node.get("children", [])
        if not isinstance(kids, list):
            raise ValueError(f"{where}: 'children' must be a list, got {kids!r}")
        k = node.get("kind", "decipherable" if kids else "leaf")
        if k not in _KIND_CODES:
            raise ValueError(f"{where}: unknown kind {k!r} (expected one of {sorted(_KIND_CODES)})")
        u = builder.add(_KIND_CODES[k], p, parent, easy=e, label=int(node.get("label", 0)),
                        valid_branches=int(node.get("valid_branches", 1)))
        for i, child in enumerate(kids):
            if not isinstance(child, dict):
                raise ValueError(f"{where}.children[{i}]: each node must be a dict, got {child!r}")
            cp = child.get("prob", 1.0 / len(kids))
            try:
                cp = float(cp)
            except (TypeError, ValueError):
                raise ValueError(f"{where}.children[{i}]: prob must be a number, got {cp!r}") from None
            add(child, cp, bool(child.get("easy", True)), f"{where}.children[{i}]", u)

    add(spec, 1.0, True, "root", None)
    return builder.build()[0]


def load_tree(path: str | Path) -> Tree:
    """Read a tree from a JSON file in the :func:`tree_from_dict` format."""
    from markovfork.io import read_json

    return tree_from_dict(read_json(path, "tree file"))
