"""Constructors of reasoning trees and of the problems posed on them.

Two families:

* **Fork trees** (:func:`fork_tree`, :func:`fork_problems`): a ``branching``-ary tree of the
  given ``depth`` in which ``forks`` internal nodes are FORKs (the branch that leads to a correct
  answer is hidden) and the rest are DECIPHERABLE (the correct step is visible). Base-model
  step probabilities: at every internal node one child is *easy* and gets ``easy_prob``, the
  others are *hard* and share ``1 - easy_prob`` equally (``easy_prob=None``: uniform, and every
  step counts as easy).
* **The multi-task tree-structured Markov chain (TMC)** of the Markovian view of post-training
  (:func:`tmc_chain`, :func:`tmc_tree`, :func:`tmc_problems`): layers of states, high edges of
  weight ``1/C``, low edges of weight 0.1, forced easy paths for the two tasks, unrolled into a
  tree of state paths.

Indices are 0-based everywhere: layers ``0 .. L-1``, states ``0 .. M-1``, tasks ``0, 1`` (the
paper's tasks 1 and 2).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

import numpy as np

from markovfork.problems import Problems
from markovfork.tree import DECIPHERABLE, FORK, LEAF, Tree, tree_from_children

__all__ = [
    "fork_tree",
    "fork_problems",
    "TMCTask",
    "TMC",
    "TaskPaths",
    "tmc_chain",
    "tmc_tree",
    "tmc_problems",
]

PLACEMENTS = ("top", "random", "bottom")
MAX_NODES = 2_000_000  # default cap on generated tree sizes (the (P, N) problem masks scale with it)
# Seed tags: the tree and the problems draw from unrelated streams even when given the same seed.
_TREE_TAG, _PROBLEM_TAG = 0x7472, 0x7072


# --------------------------------------------------------------------------------------------
# Fork trees
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class _ForkTreeBuilder:
    """Mutable tree used while forks are placed one at a time (see :func:`fork_tree`)."""

    def __init__(self, depth: int, branching: int, dead_ends: bool, rng, max_nodes: int):
        self.depth, self.b, self.dead_ends, self.rng, self.max_nodes = depth, branching, dead_ends, rng, max_nodes
        self.node_depth: list[int] = []
        self.path: list[tuple[int, ...]] = []  # child positions from the root: BFS order = (depth, path)
        self.kids: list[list[int]] = []
        self.is_fork: list[bool] = []
        self.new_internal: list[int] = []  # internal nodes created since the last drain
        self._add(0, ())
        self._expand(0)

    def _add(self, depth: int, path: tuple[int, ...]) -> int:
        if len(self.node_depth) >= self.max_nodes:
            raise ValueError(
                f"the tree would exceed max_nodes={self.max_nodes} nodes; lower depth, branching or forks"
                + ("" if self.dead_ends else ", or use dead_ends=True")
            )
        self.node_depth.append(depth)
        self.path.append(path)
        self.kids.append([])
        self.is_fork.append(False)
        return len(self.node_depth) - 1

    def _expand(self, u: int) -> None:
        """Give internal node ``u`` (depth < depth) its children, recursively.

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
                c = self._add(d + 1, self.path[w] + (i,))
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
    depth = _check_int("depth", depth, 1)
    branching = _check_int("branching", branching, 2)
    forks = _check_int("forks", forks, 0)
    valid_branches = _check_int("valid_branches", valid_branches, 1)
    max_nodes = _check_int("max_nodes", max_nodes, 2)
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if valid_branches > branching:
        raise ValueError(f"valid_branches must be <= branching={branching}, got {valid_branches}")
    if easy_prob is not None and not (1.0 / branching <= easy_prob < 1.0):
        raise ValueError(f"easy_prob must be in [1/branching, 1) = [{1.0 / branching:.6g}, 1), got {easy_prob}")
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
    ss = np.random.SeedSequence([seed, _TREE_TAG])
    rng_shape, rng_place, rng_easy = (np.random.default_rng(s) for s in ss.spawn(3))
    builder = _ForkTreeBuilder(depth, branching, dead_ends, rng_shape, max_nodes)

    # candidates: decipherable internal nodes, ordered per placement rule
    heap: list = []
    pool: list[int] = []

    def push_new() -> None:
        for u in builder.drain_new():
            if placement == "top":
                heapq.heappush(heap, (builder.node_depth[u], builder.path[u], u))
            elif placement == "bottom":
                heapq.heappush(heap, (-builder.node_depth[u], tuple(-i for i in builder.path[u]), u))
            else:
                pool.append(u)

    push_new()
    for _ in range(forks):
        if placement == "random":
            i = int(rng_place.integers(len(pool)))
            pool[i], pool[-1] = pool[-1], pool[i]
            u = pool.pop()
        else:
            u = heapq.heappop(heap)[2]
        builder.make_fork(u)
        push_new()

    n = len(builder.node_depth)
    kind = np.full(n, LEAF, dtype=np.int8)
    prob = np.ones(n)
    easy = np.ones(n, dtype=bool)
    label = np.zeros(n, dtype=np.int64)
    valid = np.ones(n, dtype=np.int64)
    hard_prob = None if easy_prob is None else (1.0 - easy_prob) / (branching - 1)
    for u, kids in enumerate(builder.kids):
        if not kids:
            continue
        kind[u] = FORK if builder.is_fork[u] else DECIPHERABLE
        if builder.is_fork[u]:
            valid[u] = valid_branches
        label[kids] = np.arange(branching)
        if easy_prob is None:
            prob[kids] = 1.0 / branching
            continue
        cont = [c for c in kids if builder.kids[c]]
        if dead_ends and not builder.is_fork[u] and len(cont) == 1:
            e = cont[0]
        else:
            e = kids[int(rng_easy.integers(branching))]
        prob[kids] = hard_prob
        easy[kids] = False
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
    n_problems = _check_int("n_problems", n_problems, 1)
    feature_dim = _check_int("feature_dim", feature_dim, 0)
    if not (np.isfinite(feature_scale) and feature_scale >= 0):
        raise ValueError(f"feature_scale must be finite and >= 0, got {feature_scale}")
    rng_walk, rng_feat = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, _PROBLEM_TAG]).spawn(2))
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
        valid=correct.copy(),
        features=features,
        ids=np.arange(n_problems, dtype=np.int64),
    )


# --------------------------------------------------------------------------------------------
# The multi-task tree-structured Markov chain (TMC)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TMCTask:
    """A TMC task: paths from layer-0 state ``start`` to last-layer state ``end`` are valid."""

    start: int
    end: int


@dataclass(frozen=True)
class TaskPaths:
    """The valid paths of one TMC task, in lexicographic order of their states."""

    states: np.ndarray  # (n_paths, L) int64: the state of each layer
    leaf: np.ndarray  # (n_paths,) int64: leaf node of the path in the unrolled tree
    prob: np.ndarray  # (n_paths,) float64: probability of the path given its start state
    expected_correctness: np.ndarray  # (n_paths,) prob / sum(prob over the task's valid paths)
    easy: np.ndarray  # (n_paths,) bool: every edge of the path is high


@dataclass(frozen=True, eq=False)
class TMC:
    """A layered chain: ``layers`` layers, ``m0`` states in layer 0, ``m`` in each later one.

    ``high[l][s, t]`` marks the high edge from layer-``l`` state ``s`` to layer-``l+1`` state
    ``t``. The row's step probabilities are its weights normalised,
    ``P_l(s, t) = w(s, t) / sum_t' w(s, t')`` with ``w = high_weight`` on high edges and
    ``low_weight`` elsewhere.
    """

    layers: int
    m0: int
    m: int
    c: int
    high_weight: float
    low_weight: float
    high: tuple  # (layers-1) bool arrays, high[l] of shape (layer_size(l), m)
    tasks: tuple = (TMCTask(0, 0), TMCTask(1, 1))

    def layer_size(self, layer: int) -> int:
        return self.m0 if layer == 0 else self.m

    @cached_property
    def transitions(self) -> tuple:
        """(layers-1) row-stochastic arrays: ``transitions[l][s, t]`` = P(layer l+1 = t | layer l = s)."""
        out = []
        for h in self.high:
            w = np.where(h, self.high_weight, self.low_weight)
            out.append(w / w.sum(axis=1, keepdims=True))
        return tuple(out)

    def level_start(self, layer: int) -> int:
        """Node id of the first layer-``layer`` node of the unrolled tree (node 0 is the virtual root)."""
        return 1 + sum(self.m0 * self.m**e for e in range(layer))

    def node(self, states: Iterable[int]) -> int:
        """Node id of the unrolled tree reached by the state path ``states`` (layers 0..j)."""
        states = [int(s) for s in states]
        if not 1 <= len(states) <= self.layers:
            raise ValueError(f"a state path has 1 to {self.layers} states, got {len(states)}")
        index = 0
        for layer, s in enumerate(states):
            if not 0 <= s < self.layer_size(layer):
                raise ValueError(f"layer {layer} has states 0..{self.layer_size(layer) - 1}, got {s}")
            index = index * self.m + s if layer else s
        return self.level_start(len(states) - 1) + index

    @cached_property
    def tree(self) -> Tree:
        """The chain unrolled into a tree of state paths.

        Node 0 is a virtual root whose ``m0`` children (probability ``1/m0`` each) are the
        layer-0 states; it is not a policy decision (problems start at a layer-0 node). A node
        at depth ``l+1`` is a path of states through layers ``0..l``; its children are the ``m``
        next states with probabilities ``transitions[l][s]``. ``label`` is the state's index in
        its layer (-1 at the root), ``edge_easy`` marks high edges; internal nodes are
        DECIPHERABLE, last-layer nodes are leaves.
        """
        n_level = [self.m0 * self.m**e for e in range(self.layers)]
        n = 1 + sum(n_level)
        if n > MAX_NODES:
            raise ValueError(f"the unrolled chain has {n} nodes, more than {MAX_NODES}; lower layers or m")
        parent = [np.array([-1])]
        depth = [np.array([0])]
        state = [np.array([-1])]
        prob = [np.array([1.0])]
        easy = [np.array([True])]
        parent.append(np.zeros(self.m0, dtype=np.int64))
        depth.append(np.ones(self.m0, dtype=np.int64))
        state.append(np.arange(self.m0))
        prob.append(np.full(self.m0, 1.0 / self.m0))
        easy.append(np.ones(self.m0, dtype=bool))
        for layer in range(1, self.layers):
            n_prev = n_level[layer - 1]
            prev_ids = self.level_start(layer - 1) + np.arange(n_prev)
            prev_state = state[-1]
            parent.append(np.repeat(prev_ids, self.m))
            depth.append(np.full(n_prev * self.m, layer + 1))
            nxt = np.tile(np.arange(self.m), n_prev)
            src = np.repeat(prev_state, self.m)
            prob.append(self.transitions[layer - 1][src, nxt])
            easy.append(self.high[layer - 1][src, nxt])
            state.append(nxt)
        n_children = np.zeros(n, dtype=np.int64)
        n_children[0] = self.m0
        n_children[1 : n - n_level[-1]] = self.m
        kind = np.where(n_children > 0, DECIPHERABLE, LEAF).astype(np.int8)
        return Tree(
            child_start=np.concatenate([[1], 1 + np.cumsum(n_children)]).astype(np.int64),
            parent=np.concatenate(parent).astype(np.int64),
            depth=np.concatenate(depth).astype(np.int64),
            kind=kind,
            edge_prob=np.concatenate(prob).astype(np.float64),
            edge_easy=np.concatenate(easy).astype(bool),
            label=np.concatenate(state).astype(np.int64),
            valid_branches=np.ones(n, dtype=np.int64),
        )

    def task_paths(self, task: int) -> TaskPaths:
        """Every valid path of ``tasks[task]``, its probability, expected correctness and easiness.

        ``prob`` is the product of the transitions along the path (given its start state); the
        expected correctness of a valid path is ``prob / sum(prob of the task's valid paths)``.
        """
        t = self._task(task)
        inner = [self.m] * (self.layers - 2)
        mids = np.array(np.meshgrid(*[np.arange(k) for k in inner], indexing="ij")).reshape(len(inner), -1).T
        mids = mids.astype(np.int64) if inner else np.zeros((1, 0), dtype=np.int64)
        n_paths = mids.shape[0]
        states = np.column_stack(
            [np.full(n_paths, t.start), mids, np.full(n_paths, t.end)]
        ).astype(np.int64)
        prob = np.ones(n_paths)
        easy = np.ones(n_paths, dtype=bool)
        for layer in range(self.layers - 1):
            prob *= self.transitions[layer][states[:, layer], states[:, layer + 1]]
            easy &= self.high[layer][states[:, layer], states[:, layer + 1]]
        leaf = np.array([self.node(s) for s in states], dtype=np.int64)
        total = prob.sum()
        expected = prob / total if total > 0 else np.zeros(n_paths)
        return TaskPaths(states, leaf, prob, expected, easy)

    def _task(self, task: int) -> TMCTask:
        if isinstance(task, bool) or int(task) != task or not 0 <= task < len(self.tasks):
            raise ValueError(f"task must be an index in 0..{len(self.tasks) - 1}, got {task!r}")
        return self.tasks[int(task)]


def _forced_edges(layers: int, layer: int, state: int) -> tuple[int, ...]:
    """Forced high edges of row (layer, state): the two tasks' easy paths 0->0->...->0 and
    1->0->...->0->1."""
    forced = []
    if state == 0:
        forced.append(0)
        if layer == layers - 2:
            forced.append(1)
    if layer == 0 and state == 1:
        forced.append(0)
    return tuple(forced)


def tmc_chain(
    layers: int,
    m0: int,
    m: int,
    c: int,
    high_weight: float | None = None,
    low_weight: float = 0.1,
    high_edges: Mapping | None = None,
    seed: int = 0,
) -> TMC:
    """The TMC of the Markovian view of post-training, with two tasks (0: 0 -> 0, 1: 1 -> 1).

    Each row (layer ``l`` < ``layers-1``, state ``s``) draws ``c`` distinct high next states
    uniformly from its own stream of ``seed`` (``default_rng([seed, l, s])``, so rows are
    independent of each other and of ``high_edges``). Forced edges keep one easy path per task:
    from state 0 of every layer to state 0; from layer-0 state 1 to state 0; on the last
    transition from state 0 also to state 1. A forced edge missing from the drawn set displaces
    a random unforced member (a row with no unforced member left grows instead, so the last
    row of state 0 ends with two high edges when ``c = 1``).

    ``high_edges`` maps ``(layer, state)`` to that row's complete high set and replaces the draw
    for those rows; it must contain the row's forced edges. Weights: ``high_weight`` (default
    ``1/c``) on high edges, ``low_weight`` on the others, each row normalised.
    """
    layers = _check_int("layers", layers, 3)
    m0 = _check_int("m0", m0, 2)
    m = _check_int("m", m, 2)
    c = _check_int("c", c, 1)
    if c > m:
        raise ValueError(f"c must be <= m={m}, got {c}")
    high_weight = 1.0 / c if high_weight is None else float(high_weight)
    if not (np.isfinite(high_weight) and high_weight > 0):
        raise ValueError(f"high_weight must be finite and > 0, got {high_weight}")
    if not (np.isfinite(low_weight) and low_weight >= 0):
        raise ValueError(f"low_weight must be finite and >= 0, got {low_weight}")
    explicit = {}
    for key, targets in (high_edges or {}).items():
        try:
            layer, s = (int(x) for x in key)
        except (TypeError, ValueError):
            raise ValueError(f"high_edges keys must be (layer, state) pairs, got {key!r}") from None
        if not 0 <= layer < layers - 1:
            raise ValueError(f"high_edges key {key!r}: layer must be in 0..{layers - 2}, got {layer}")
        size = m0 if layer == 0 else m
        if not 0 <= s < size:
            raise ValueError(f"high_edges key {key!r}: layer {layer} has states 0..{size - 1}, got {s}")
        t = sorted({int(x) for x in targets})
        if not t or t[0] < 0 or t[-1] >= m:
            raise ValueError(f"high_edges[{key!r}] must list next states in 0..{m - 1}, got {list(targets)!r}")
        missing = [f for f in _forced_edges(layers, layer, s) if f not in t]
        if missing:
            raise ValueError(f"high_edges[{key!r}] = {t} lacks the forced edge to state {missing[0]}")
        explicit[(layer, s)] = t
    high = []
    for layer in range(layers - 1):
        h = np.zeros((m0 if layer == 0 else m, m), dtype=bool)
        for s in range(h.shape[0]):
            if (layer, s) in explicit:
                h[s, explicit[(layer, s)]] = True
                continue
            rng = np.random.default_rng([int(seed), layer, s])
            chosen = [int(x) for x in rng.choice(m, size=c, replace=False)]
            forced = _forced_edges(layers, layer, s)
            for f in forced:
                if f in chosen:
                    continue
                unforced = [x for x in chosen if x not in forced]
                if unforced:
                    chosen[chosen.index(unforced[int(rng.integers(len(unforced)))])] = f
                else:
                    chosen.append(f)
            h[s, chosen] = True
        high.append(h)
    return TMC(layers, m0, m, c, high_weight, float(low_weight), tuple(high))


def tmc_tree(
    layers: int,
    m0: int,
    m: int,
    c: int,
    high_weight: float | None = None,
    low_weight: float = 0.1,
    high_edges: Mapping | None = None,
    seed: int = 0,
) -> Tree:
    """The unrolled tree of :func:`tmc_chain` (same arguments); ``tmc_chain(...).tree``."""
    return tmc_chain(layers, m0, m, c, high_weight, low_weight, high_edges, seed).tree


def tmc_problems(tree: Tree, tmc: TMC, task: int, n_instances: int, seed: int = 0) -> Problems:
    """Random instances of ``tmc.tasks[task]`` on the unrolled ``tree``.

    Every instance starts at the task's layer-0 state node; its valid leaves are the task's
    valid paths (right start and end state); each valid path is correct independently with its
    expected correctness (``TaskPaths.expected_correctness``). Instances with no correct path
    are kept, not redrawn: that is the paper's instance distribution, and such an instance has
    success probability 0 under every policy, so it lowers every pass@k equally and leaves
    base-vs-post differences unchanged. Features are empty (tabular model, shape (P, 0)).
    """
    n_instances = _check_int("n_instances", n_instances, 1)
    if tree.n_nodes != tmc.tree.n_nodes or not np.array_equal(tree.label, tmc.tree.label):
        raise ValueError(f"the tree ({tree.n_nodes} nodes) is not the unrolled chain ({tmc.tree.n_nodes} nodes)")
    paths = tmc.task_paths(task)
    rng = np.random.default_rng([seed, _PROBLEM_TAG])
    hit = rng.random((n_instances, paths.leaf.size)) < paths.expected_correctness[None, :]
    correct = np.zeros((n_instances, tree.n_nodes), dtype=bool)
    correct[:, paths.leaf] = hit
    valid = np.zeros_like(correct)
    valid[:, paths.leaf] = True
    start = np.full(n_instances, tmc.node([tmc.tasks[int(task)].start]), dtype=np.int64)
    return Problems(
        start=start,
        correct=correct,
        valid=valid,
        features=np.zeros((n_instances, 0)),
        ids=np.arange(n_instances, dtype=np.int64),
    )
