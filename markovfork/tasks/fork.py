"""Fork trees: a ``branching``-ary tree of the given ``depth`` in which ``forks`` internal nodes
are FORKs (the branch that leads to a correct answer is hidden) and the rest are DECIPHERABLE
(the correct step is visible), and the problems posed on them.

Base-model step probabilities: at every internal node one child is *easy* and gets
``easy_prob``, the others are *hard* and share ``1 - easy_prob`` equally (``easy_prob=None``:
uniform, and every step counts as easy).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from markovfork.plumbing import checks
from markovfork.tasks._common import MAX_NODES, PROBLEM_TAG, TREE_TAG
from markovfork.model.problems import Problems
from markovfork.plumbing.seeds import child_rngs
from markovfork.model.tree import DECIPHERABLE, FORK, LEAF, Tree, tree_from_children

__all__ = ["PLACEMENTS", "fork_tree", "fork_problems"]

PLACEMENTS = ("top", "random", "bottom")


class _ForkTreeBuilder:
    """Mutable tree used while forks are placed one at a time (see :func:`fork_tree`).

    Memory is linear in the node count: a node stores its depth, its children and its kind.
    Node ids are creation order (the order the random draws are made in).
    """

    def __init__(self, depth: int, branching: int, dead_ends: bool, rng, max_nodes: int):
        self.depth, self.b, self.dead_ends, self.rng, self.max_nodes = depth, branching, dead_ends, rng, max_nodes
        self.node_depth: list[int] = []
        self.kids: list[list[int]] = []
        self.is_fork: list[bool] = []
        self.new_internal: list[int] = []  # internal nodes created since the last drain
        self._add(0)
        self._expand(0)

    def _add(self, depth: int) -> int:
        if len(self.node_depth) >= self.max_nodes:
            raise ValueError(
                f"the tree would exceed max_nodes={self.max_nodes} nodes; lower depth, branching or forks"
                + ("" if self.dead_ends else ", or use dead_ends=True")
            )
        self.node_depth.append(depth)
        self.kids.append([])
        self.is_fork.append(False)
        return len(self.node_depth) - 1

    def _expand(self, u: int) -> None:
        """Give internal node ``u`` (depth < depth) its children, and theirs, depth-first.

        Full layout: every child is internal until the last level. Dead-end layout: one child
        (at a random position) continues, the others are leaves (wrong answers)."""
        stack = [u]
        while stack:
            w = stack.pop()
            d = self.node_depth[w]
            self.new_internal.append(w)
            if d + 1 == self.depth:
                keep = ()
            elif self.dead_ends:
                keep = (int(self.rng.integers(self.b)),)
            else:
                keep = range(self.b)
            for i in range(self.b):
                c = self._add(d + 1)
                self.kids[w].append(c)
                if i in keep:
                    stack.append(c)

    def make_fork(self, u: int) -> None:
        """Turn decipherable node ``u`` into a fork; in the dead-end layout every branch continues."""
        self.is_fork[u] = True
        if self.dead_ends and self.node_depth[u] + 1 < self.depth:
            for c in self.kids[u]:
                if not self.kids[c]:
                    self._expand(c)

    def drain_new(self) -> list[int]:
        out, self.new_internal = self.new_internal, []
        return out

    def internal_breadth_first(self) -> list[int]:
        """Internal nodes in breadth-first order, i.e. by (depth, path of child positions)."""
        order = [0]
        for u in order:
            order.extend(c for c in self.kids[u] if self.kids[c])
        return order


def _place_top(builder: _ForkTreeBuilder, forks: int) -> None:
    """Forks at the first candidates in breadth-first order of the growing tree.

    A fork only adds nodes below itself, which the queue reaches after it, so the queue front
    is always the first decipherable internal node of the current tree."""
    queue = deque([0])
    for _ in range(forks):
        u = queue.popleft()
        builder.make_fork(u)
        queue.extend(c for c in builder.kids[u] if builder.kids[c])
    builder.drain_new()


def _place_bottom(builder: _ForkTreeBuilder, forks: int) -> None:
    """Forks at the last candidate in breadth-first order: the deepest level's path-last one.

    ``levels[d]`` holds the candidates at depth ``d`` in path order. When the fork at ``u``
    (depth ``d``) is placed, no candidate is deeper than ``d``; the new ones are the spines
    under ``u``'s dead-end children, one node per level, created in child order: sorted stably
    by depth they extend each (empty) deeper level in path order."""
    levels: list[list[int]] = [[] for _ in range(builder.depth)]
    for u in builder.internal_breadth_first():
        levels[builder.node_depth[u]].append(u)
    builder.drain_new()
    d = builder.depth - 1
    for _ in range(forks):
        while not levels[d]:
            d -= 1
        builder.make_fork(levels[d].pop())
        new = builder.drain_new()
        if new:
            new.sort(key=builder.node_depth.__getitem__)
            for w in new:
                levels[builder.node_depth[w]].append(w)
            d = builder.depth - 1


def _place_random(builder: _ForkTreeBuilder, forks: int, rng) -> None:
    """Forks at uniformly random candidates (a pool in creation order, swap-removed)."""
    pool = builder.drain_new()
    for _ in range(forks):
        i = int(rng.integers(len(pool)))
        pool[i], pool[-1] = pool[-1], pool[i]
        builder.make_fork(pool.pop())
        pool.extend(builder.drain_new())


def fork_tree(
    depth: int,
    branching: int,
    forks: int,
    placement: str = "top",
    valid_branches: int = 1,
    easy_prob: float | None = None,
    seed: int = 0,
    dead_ends: bool = False,
    max_nodes: int = MAX_NODES,
) -> Tree:
    """A ``branching``-ary tree of ``depth`` steps with ``forks`` FORK nodes; the rest DECIPHERABLE.

    Layouts. *Full* (``dead_ends=False``): every internal node has ``branching`` children and
    all leaves sit at ``depth``. *Dead ends* (``dead_ends=True``): a decipherable node has one
    internal child (the step that continues, at a random position) and ``branching - 1`` leaf
    children (wrong answers given up early); a fork's children all continue. A dead-end tree
    without forks is a single spine of ``depth`` steps with ``branching * depth + 1`` nodes.

    Placement. Forks are placed one at a time at a decipherable internal node of the current
    tree: ``"top"`` the first in breadth-first order, ``"bottom"`` the last, ``"random"`` a
    uniformly random one (seeded). In the full layout this is the first / last / a random set
    of ``forks`` internal nodes; in the dead-end layout a new fork makes its dead-end children
    continue, creating new candidates.

    Step probabilities. At each internal node one child is easy with probability ``easy_prob``
    and the others share ``1 - easy_prob`` (``edge_easy`` marks the easy step). The easy child
    of a dead-end decipherable node is its continuing child (slipping into a dead end is the
    hard, rare step); elsewhere it is a uniformly random child. ``easy_prob=None`` means uniform
    ``1 / branching`` with every step easy. ``label`` is a node's position among its siblings.
    """
    depth = checks.integer("depth", depth, 1)
    branching = checks.integer("branching", branching, 2)
    forks = checks.integer("forks", forks, 0)
    valid_branches = checks.integer("valid_branches", valid_branches, 1)
    max_nodes = checks.integer("max_nodes", max_nodes, 2)
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if valid_branches > branching:
        raise ValueError(f"valid_branches must be <= branching={branching}, got {valid_branches}")
    if easy_prob is not None and not (1.0 / branching <= checks.real("easy_prob", easy_prob) < 1.0):
        raise ValueError(f"easy_prob must be in [1/branching, 1) = [{1.0 / branching:.6g}, 1), got {easy_prob}")
    if not isinstance(dead_ends, (bool, np.bool_)):
        raise ValueError(f"dead_ends must be a boolean, got {dead_ends!r}")
    n_internal_full = (branching**depth - 1) // (branching - 1)
    if forks > n_internal_full:
        raise ValueError(
            f"forks={forks} exceeds the {n_internal_full} internal nodes of a depth-{depth}, "
            f"branching-{branching} tree"
        )
    if not dead_ends and (branching ** (depth + 1) - 1) // (branching - 1) > max_nodes:
        raise ValueError(
            f"a full depth-{depth}, branching-{branching} tree exceeds max_nodes={max_nodes} nodes; "
            "lower depth or branching, or use dead_ends=True"
        )
    rng_shape, rng_place, rng_easy = child_rngs(3, seed, TREE_TAG)
    builder = _ForkTreeBuilder(depth, branching, bool(dead_ends), rng_shape, max_nodes)
    if placement == "top":
        _place_top(builder, forks)
    elif placement == "bottom":
        _place_bottom(builder, forks)
    else:
        _place_random(builder, forks, rng_place)
    return _assemble(builder, valid_branches, easy_prob, rng_easy)


def _assemble(builder: _ForkTreeBuilder, valid_branches: int, easy_prob: float | None, rng_easy) -> Tree:
    """The builder's nodes as a :class:`Tree`: kinds, labels, step probabilities and easy steps."""
    b = builder.b
    n = len(builder.node_depth)
    internal = np.array([u for u, kids in enumerate(builder.kids) if kids], dtype=np.int64)
    kids = np.array([builder.kids[u] for u in internal], dtype=np.int64).reshape(-1, b)  # (I, b)
    is_fork = np.array(builder.is_fork, dtype=bool)[internal]
    kind = np.full(n, LEAF, dtype=np.int8)
    kind[internal] = np.where(is_fork, FORK, DECIPHERABLE)
    label = np.zeros(n, dtype=np.int64)
    label[kids] = np.arange(b)
    valid = np.ones(n, dtype=np.int64)
    valid[internal[is_fork]] = valid_branches
    prob = np.ones(n)
    easy = np.ones(n, dtype=bool)
    if easy_prob is None:
        prob[kids] = 1.0 / b
    else:
        prob[kids] = (1.0 - easy_prob) / (b - 1)
        easy[kids] = False
        n_kids = np.array([len(k) for k in builder.kids], dtype=np.int64)
        continuing = n_kids[kids] > 0  # (I, b)
        # a dead-end decipherable node's easy step is its one continuing child; elsewhere a
        # uniform draw, one per node in creation order
        spine_step = (~is_fork & (continuing.sum(axis=1) == 1)) if builder.dead_ends else np.zeros(len(internal), bool)
        easy_pos = np.where(spine_step, continuing.argmax(axis=1), 0)
        for i in np.flatnonzero(~spine_step).tolist():
            easy_pos[i] = int(rng_easy.integers(b))
        e = kids[np.arange(len(internal)), easy_pos]
        prob[e] = easy_prob
        easy[e] = True
    tree, _ = tree_from_children(builder.kids, kind, prob, easy, label, valid)
    return tree


def fork_problems(
    tree: Tree, n_problems: int, feature_dim: int = 0, seed: int = 0, feature_scale: float = 1.0
) -> Problems:
    """Problems on a fork tree: for each, one seeded walk from the root decides its correct leaves.

    At a fork ``u`` the walk continues into ``valid_branches[u]`` children drawn uniformly
    without replacement (the hidden information decides which); at a decipherable node into one
    child drawn uniformly among its internal children, or among all children when all are
    leaves (so in a dead-end tree the continuing child is always the correct one). The leaves
    reached are the problem's correct (and valid) answers.

    Features: ``phi(x) ~ N(0, feature_scale^2 I_d)``, i.e. each coordinate has standard
    deviation ``feature_scale`` and ``|phi|^2 ~ d feature_scale^2``; pass
    ``feature_scale = 1/sqrt(d)`` for features of norm about 1. Correct leaves and features are
    drawn from independent streams of ``seed``: the same seed gives the same correct leaves for
    every ``feature_dim``.
    """
    n_problems = checks.integer("n_problems", n_problems, 1)
    feature_dim = checks.integer("feature_dim", feature_dim, 0)
    feature_scale = checks.real("feature_scale", feature_scale, 0.0)
    rng_walk, rng_feat = child_rngs(2, seed, PROBLEM_TAG)
    n = tree.n_nodes
    n_children = tree.n_children
    is_internal = n_children > 0
    on = np.zeros((n_problems, n), dtype=bool)
    on[:, 0] = True
    for u in np.flatnonzero(is_internal):  # breadth-first: parents are decided before children
        rows = np.flatnonzero(on[:, u])
        if rows.size == 0:
            continue
        kids = tree.children(u)
        if tree.kind[u] == FORK:
            keys = rng_walk.random((rows.size, kids.size))
            chosen = kids[np.argsort(keys, axis=1)[:, : int(tree.valid_branches[u])]]
            on[rows[:, None], chosen] = True
        else:
            cand = kids[is_internal[kids]]
            if cand.size == 0:
                cand = kids
            on[rows, cand[rng_walk.integers(cand.size, size=rows.size)]] = True
    correct = on & ~is_internal[None, :]
    features = rng_feat.normal(0.0, feature_scale, size=(n_problems, feature_dim))
    return Problems(
        start=np.zeros(n_problems, dtype=np.int64),
        correct=correct,
        valid=correct,  # Problems stores its own copies
        features=features,
        ids=np.arange(n_problems, dtype=np.int64),
    )
