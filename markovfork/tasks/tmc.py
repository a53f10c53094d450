"""The multi-task tree-structured Markov chain (TMC) of the Markovian view of post-training.

Layers of states ``0 .. L-1`` (``m0`` states in layer 0, ``m`` in each later one); each row
(layer ``l``, state ``s``) has ``c`` high edges of weight ``1/c`` and low edges of weight 0.1,
normalised into step probabilities ``P_l(s, t) = w(s, t) / sum_t' w(s, t')``. Forced high edges
keep one easy path per task (tasks ``0, 1``: the paper's tasks 1 and 2). The chain is unrolled
into a tree of state paths on which the exact and sampled engines run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

import numpy as np

from markovfork.plumbing import checks
from markovfork.tasks._common import MAX_NODES, PROBLEM_TAG
from markovfork.model.problems import Problems
from markovfork.plumbing.seeds import child_rng
from markovfork.model.tree import DECIPHERABLE, LEAF, Tree

__all__ = ["TMCTask", "TMC", "TaskPaths", "tmc_chain", "tmc_tree", "tmc_problems"]


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
        states = [checks.integer("state", s) for s in states]
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
        index = states[:, 0].copy()  # node()'s index, for every path at once
        for layer in range(1, self.layers):
            index = index * self.m + states[:, layer]
        leaf = self.level_start(self.layers - 1) + index
        total = prob.sum()
        expected = prob / total if total > 0 else np.zeros(n_paths)
        return TaskPaths(states, leaf, prob, expected, easy)

    def _task(self, task: int) -> TMCTask:
        return self.tasks[checks.integer("task", task, 0, len(self.tasks) - 1)]


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


def _explicit_rows(high_edges: Mapping | None, layers: int, m0: int, m: int) -> dict:
    """``high_edges`` checked: {(layer, state): sorted next states}, each row with its forced edges."""
    explicit = {}
    for key, targets in (high_edges or {}).items():
        if not isinstance(key, tuple) or len(key) != 2:
            raise ValueError(f"high_edges keys must be (layer, state) pairs, got {key!r}")
        layer = checks.integer(f"high_edges key {key!r}: layer", key[0])
        s = checks.integer(f"high_edges key {key!r}: state", key[1])
        if not 0 <= layer < layers - 1:
            raise ValueError(f"high_edges key {key!r}: layer must be in 0..{layers - 2}, got {layer}")
        size = m0 if layer == 0 else m
        if not 0 <= s < size:
            raise ValueError(f"high_edges key {key!r}: layer {layer} has states 0..{size - 1}, got {s}")
        if isinstance(targets, (str, bytes)) or not hasattr(targets, "__iter__"):
            raise ValueError(f"high_edges[{key!r}] must list next states in 0..{m - 1}, got {targets!r}")
        t = sorted({checks.integer(f"high_edges[{key!r}] next state", x) for x in targets})
        if not t or t[0] < 0 or t[-1] >= m:
            raise ValueError(f"high_edges[{key!r}] must list next states in 0..{m - 1}, got {list(targets)!r}")
        missing = [f for f in _forced_edges(layers, layer, s) if f not in t]
        if missing:
            raise ValueError(f"high_edges[{key!r}] = {t} lacks the forced edge to state {missing[0]}")
        explicit[(layer, s)] = t
    return explicit


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
    uniformly from its own stream ``child_rng(seed, l, s)`` (rows are independent of each other
    and of ``high_edges``). Forced edges keep one easy path per task: from state 0 of every
    layer to state 0; from layer-0 state 1 to state 0; on the last transition from state 0 also
    to state 1. A forced edge missing from the drawn set displaces a random unforced member (a
    row with no unforced member left grows instead, so the last row of state 0 ends with two
    high edges when ``c = 1``).

    ``high_edges`` maps ``(layer, state)`` to that row's complete high set and replaces the draw
    for those rows; it must contain the row's forced edges. Weights: ``high_weight`` (default
    ``1/c``) on high edges, ``low_weight`` on the others, each row normalised.
    """
    layers = checks.integer("layers", layers, 3)
    m0 = checks.integer("m0", m0, 2)
    m = checks.integer("m", m, 2)
    c = checks.integer("c", c, 1)
    if c > m:
        raise ValueError(f"c must be <= m={m}, got {c}")
    high_weight = 1.0 / c if high_weight is None else checks.real("high_weight", high_weight, 0.0, low_open=True)
    low_weight = checks.real("low_weight", low_weight, 0.0)
    seed = checks.seed(seed)
    explicit = _explicit_rows(high_edges, layers, m0, m)
    high = []
    for layer in range(layers - 1):
        h = np.zeros((m0 if layer == 0 else m, m), dtype=bool)
        for s in range(h.shape[0]):
            if (layer, s) in explicit:
                h[s, explicit[(layer, s)]] = True
                continue
            rng = child_rng(seed, layer, s)
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
    return TMC(layers, m0, m, c, high_weight, low_weight, tuple(high))


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
    n_instances = checks.integer("n_instances", n_instances, 1)
    if tree.n_nodes != tmc.tree.n_nodes or not np.array_equal(tree.label, tmc.tree.label):
        raise ValueError(f"the tree ({tree.n_nodes} nodes) is not the unrolled chain ({tmc.tree.n_nodes} nodes)")
    paths = tmc.task_paths(task)
    rng = child_rng(seed, PROBLEM_TAG)
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
