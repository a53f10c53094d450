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

from markovfork.plumbing import checks
from markovfork.model.tree_schema import DECIPHERABLE, FORK, KIND_NAMES, LEAF, path_text, read_node

__all__ = [
    "DECIPHERABLE", "FORK", "LEAF", "KIND_NAMES", "Tree", "TreeBuilder", "tree_from_children", "tree_from_dict",
    "tree_to_json", "tree_from_json", "load_tree",
]


PROB_TOL = 1e-6  # tolerance on each node's outgoing probabilities summing to 1


# dtype of each array field; the constructor stores read-only copies in these dtypes
_FIELD_DTYPES = {
    "child_start": np.int64, "parent": np.int64, "depth": np.int64, "kind": np.int8,
    "edge_prob": np.float64, "edge_easy": np.bool_, "label": np.int64, "valid_branches": np.int64,
}
INDENT_MAX_DEPTH = 100  # deeper trees are written to JSON on one line (indentation grows as depth^2)


@dataclass(frozen=True, eq=False)
class Tree:
    """A rooted reasoning tree in breadth-first flat-array form (see the module docstring).

    The constructor takes any array-likes, stores read-only copies of the dtypes below (the
    caller's arrays stay writeable and unshared) and validates the structure: compiled kernels
    and per-tree caches rely on a tree never changing after it is built.
    """

    child_start: np.ndarray  # (N+1,) int64: children of v are child_start[v] : child_start[v+1]
    parent: np.ndarray  # (N,) int64: parent id, -1 at the root
    depth: np.ndarray  # (N,) int64: steps from the root
    kind: np.ndarray  # (N,) int8: DECIPHERABLE, FORK or LEAF
    edge_prob: np.ndarray  # (N,) float64: base probability of the step parent[v] -> v (1 at root)
    edge_easy: np.ndarray  # (N,) bool: the step parent[v] -> v is easy (high probability)
    label: np.ndarray  # (N,) int64: a constructor's label (TMC: the state's index in its layer)
    valid_branches: np.ndarray  # (N,) int64: at a fork, how many children are valid per problem

    def __post_init__(self) -> None:
        for name, dtype in _FIELD_DTYPES.items():
            arr = checks.array(f"tree.{name}", getattr(self, name), dtype)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
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
        """Nested-dict form accepted by :func:`tree_from_dict` (round-trips exactly).

        Built bottom-up over node ids (children have larger ids), so any depth works."""
        names = [KIND_NAMES[int(k)] for k in self.kind.tolist()]
        prob, easy, label = self.edge_prob.tolist(), self.edge_easy.tolist(), self.label.tolist()
        valid, cs = self.valid_branches.tolist(), self.child_start.tolist()
        nodes: list = [None] * self.n_nodes
        for v in range(self.n_nodes - 1, -1, -1):
            d = {"prob": prob[v], "easy": easy[v]} if v else {}
            d["kind"] = names[v]
            d["label"] = label[v]
            if names[v] == "fork":
                d["valid_branches"] = valid[v]
            if cs[v + 1] > cs[v]:
                d["children"] = nodes[cs[v]:cs[v + 1]]
                nodes[cs[v]:cs[v + 1]] = [None] * (cs[v + 1] - cs[v])
            nodes[v] = d
        return nodes[0]


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


def _node_id(value, m: int, where: str) -> int:
    if not checks.is_integer(value):
        raise ValueError(f"{where} must be node ids, got {value!r}")
    if not 0 <= value < m:
        raise ValueError(f"{where} lists node {int(value)}, but the nodes are 0..{m - 1}")
    return int(value)


def _per_node(name: str, values, m: int, order: list[int], default, dtype) -> np.ndarray:
    """``values[u]`` for every input id ``u`` (a sequence or a dict by id), in breadth-first order."""
    if values is None:
        return np.full(m, default, dtype=dtype)
    if isinstance(values, dict):
        missing = next((u for u in range(m) if u not in values), None)
        if missing is not None:
            raise ValueError(f"{name} has no entry for node {missing}")
        values = [values[u] for u in range(m)]
    if np.ndim(values) != 1 or len(values) != m:
        raise ValueError(f"{name} must have one entry per node ({m}), got shape {np.shape(values)}")
    return checks.array(name, values, dtype)[order]


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
    indexed by input id (``edge_prob[u]`` is the step into ``u``; the root's is ignored).
    Returns the tree and the map ``new_id[input_id]`` from input ids to breadth-first ids.
    Cycles, shared children, unreachable nodes and ids out of range are ``ValueError``s.
    """
    m = len(children)
    if m < 1:
        raise ValueError("a tree needs at least one node")
    seen = bytearray(m)
    seen[0] = 1
    order = [0]
    depth = [0]
    n_children = []
    for i, u in enumerate(order):  # breadth-first; ``order`` grows while we walk it (each id once)
        kids = children[u]
        if isinstance(kids, (str, bytes, dict)) or not hasattr(kids, "__len__"):
            raise ValueError(f"children[{u}] must be a list of node ids, got {kids!r}")
        for c in kids:
            c = _node_id(c, m, f"children[{u}]")
            if seen[c]:
                what = "the root" if c == 0 else f"node {c}"
                raise ValueError(f"children[{u}] lists {what}, already reached: children must form one tree rooted at node 0 (no cycle, no shared child)")
            seen[c] = 1
            order.append(c)
        depth.extend([depth[i] + 1] * len(kids))
        n_children.append(len(kids))
    if len(order) != m:
        raise ValueError(f"node {seen.index(0)} is not reached from node 0: children must form one tree rooted at node 0")
    new_id = np.empty(m, dtype=np.int64)
    new_id[order] = np.arange(m)
    child_start = np.concatenate([[1], 1 + np.cumsum(n_children, dtype=np.int64)])
    parent = np.concatenate([[-1], np.repeat(np.arange(m, dtype=np.int64), n_children)])
    edge_prob_arr = _per_node("edge_prob", edge_prob, m, order, 1.0, np.float64)
    edge_prob_arr[0] = 1.0
    tree = Tree(
        child_start=child_start,
        parent=parent,
        depth=np.array(depth, dtype=np.int64),
        kind=_per_node("kind", kind, m, order, DECIPHERABLE, np.int8),
        edge_prob=edge_prob_arr,
        edge_easy=_per_node("edge_easy", edge_easy, m, order, True, np.bool_),
        label=_per_node("label", label, m, order, 0, np.int64),
        valid_branches=_per_node("valid_branches", valid_branches, m, order, 1, np.int64),
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
        if parent is not None:
            if not checks.is_integer(parent) or not 0 <= parent < u:
                added = f"0..{u - 1}" if u else "none yet"
                raise ValueError(f"parent must be the id of a node added before ({added}), got {parent!r}")
        self.children.append([])
        self.kind.append(kind)
        self.prob.append(prob)
        self.easy.append(easy)
        self.label.append(label)
        self.valid.append(valid_branches)
        if parent is not None:
            self.children[int(parent)].append(u)
        return u

    def build(self) -> tuple[Tree, np.ndarray]:
        """The :class:`Tree` and the map ``new_id[builder_id]`` (node 0 of the builder is the root)."""
        return tree_from_children(self.children, self.kind, self.prob, self.easy, self.label, self.valid)


# ----------------------------------------------------------------------------- JSON form

def tree_from_dict(spec: dict) -> Tree:
    """Build a tree from nested dicts (the form of :meth:`Tree.to_dict`), without recursion.

    Each node is ``{"kind": "decipherable"|"fork"|"leaf", "children": [...], "label": int}``,
    a fork may carry ``"valid_branches": int``; each child additionally carries ``"prob"`` (base
    probability of the step into it) and optionally ``"easy"`` (bool). ``kind`` defaults to
    ``leaf`` for a node without children and ``decipherable`` otherwise; ``prob`` defaults to
    uniform over siblings. Unknown keys and wrong types are ``ValueError``s naming the node's path.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"a tree spec must be an object (dict), got {type(spec).__name__}")
    children: list[list[int]] = []
    parent: list[int] = []
    position: list[int] = []
    columns: list[list] = [[], [], [], [], []]  # kind, prob, easy, label, valid_branches

    def where_of(u: int, extra: int | None = None):
        def where() -> str:
            steps = [] if extra is None else [extra]
            v = u
            while v > 0:
                steps.append(position[v])
                v = parent[v]
            return path_text(steps[::-1])
        return where

    stack = [(spec, -1, 0, 1)]  # (node, parent id, position among siblings, number of siblings)
    while stack:
        node, up, i, n_siblings = stack.pop()
        u = len(children)
        fields = read_node(node, up >= 0, n_siblings, where_of(up, i) if up >= 0 else where_of(0))
        for column, value in zip(columns, fields):
            column.append(value)
        kids = fields[5]
        children.append([])
        parent.append(up)
        position.append(i)
        if up >= 0:
            children[up].append(u)
        stack.extend((kids[j], u, j, len(kids)) for j in range(len(kids) - 1, -1, -1))
    kind, prob, easy, label, valid = columns
    return tree_from_children(children, kind, prob, easy, label, valid)[0]


def tree_to_json(tree: Tree) -> str:
    """JSON text of :meth:`Tree.to_dict`: indented, or on one line for trees deeper than
    ``INDENT_MAX_DEPTH`` (the indentation would grow with depth squared); any depth works."""
    if int(tree.depth.max()) <= INDENT_MAX_DEPTH:  # a tree has at least one node
        import json

        return json.dumps(tree.to_dict(), indent=2) + "\n"
    from markovfork.plumbing import deep_json

    return deep_json.dumps(tree.to_dict()) + "\n"


def tree_from_json(text: str) -> Tree:
    """The tree of a JSON text in the :func:`tree_from_dict` form, any nesting depth."""
    import json

    from markovfork.plumbing import deep_json

    try:
        spec = deep_json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"tree JSON is not valid JSON: {exc}") from None
    return tree_from_dict(spec)


def load_tree(path: str | Path) -> Tree:
    """Read a tree from a JSON file in the :func:`tree_from_dict` format (any nesting depth)."""
    from markovfork.plumbing.io import read_json

    return tree_from_dict(read_json(path, "tree file"))
