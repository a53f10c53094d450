"""The path-star task as a reasoning tree with three reasoning modes at the root.

Each problem asks for the end of one arm of a path-star graph whose arms have ``depth`` nodes
(**depth = nodes per arm**, as in the LLM bridge's ``[task] depth`` and the ``depth`` column of a
results table; the steps of the tree follow from it). The root is a *mode choice* (a fork whose
branches are all valid):

* ``forward``: pick an arm at the source (a FORK with one valid arm, hidden from the
  left-to-right context: the arm's first node), then walk the arm's other ``depth - 1`` nodes,
  one decipherable step each (:attr:`PathStarTask.steps_after_fork`);
* ``reverse``: substitute back from the target (``depth`` decipherable steps, no fork);
* ``rationale``: ``rationale_steps`` extra decipherable steps that name the arm, then the arm
  choice as a *decipherable* step, then ``depth - 1`` steps.

Every decipherable node's first child is the correct step; its other children are dead-end
leaves (wrong answers), so the tree stays linear in ``depth``. A problem's correct leaves are the
ends of its arm in the forward and rationale subtrees and the end of the reverse chain.

This module is the one definition of the task that the simulator, the fit and the LLM bridge
(``llm_bridge/tasks.py``, its text rendering) share: :data:`MODES` (the order of ``mode_prior``
and of the tree's mode heads), :data:`DIVERSITIES`, the arm count, the SFT mix counts
(:func:`fork_count`, :func:`distinct_problems`) and ``depth`` (nodes per arm, one meaning
everywhere; ``docs/architecture.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from markovfork.plumbing import checks
from markovfork.plumbing.config_reader import check_fields
from markovfork.model.problems import Problems
from markovfork.model.tree import DECIPHERABLE, FORK, LEAF, Tree, TreeBuilder

__all__ = ["PathStarTask", "PathStar", "MODES", "DIVERSITIES", "MAX_FEATURE_SCALE", "check_depth", "check_arms",
           "fork_count", "distinct_problems"]

MODES = ("forward", "reverse", "rationale")  # reasoning modes, in the order of mode_prior and the tree's heads
DIVERSITIES = ("data", "problem")  # SFT mix: one mode per problem, or both modes of the same problems
MAX_FEATURE_SCALE = 100.0  # phi's scale: Gram entries d scale^2 stay finite


def check_depth(depth: int) -> int:
    """The nodes per arm of the path-star graph, an integer >= 2 (the arm choice and at least
    one look-up after it: a one-node arm leaves the tree no step after the fork)."""
    return checks.integer("depth (nodes per arm)", depth, 2)


def check_arms(arms: int) -> int:
    """The arm count (branches of the fork at the source), an integer >= 2."""
    arms = checks.integer("arms", arms)
    if arms < 2:
        raise ValueError(f"arms must be >= 2, got {arms}")
    return arms


def fork_count(n: int, rho: float) -> int:
    """Trajectories (data level: problems) of an SFT set of ``n`` in the fork mode: F = round(rho n)."""
    return int(round(rho * n))


def distinct_problems(n: int, rho: float, diversity: str) -> int:
    """Distinct problems of an SFT set of ``n`` trajectories: n at data-level diversity, and
    n - min(F, n - F) at problem level (B = min(F, n - F) problems shown in both modes)."""
    if diversity not in DIVERSITIES:
        raise ValueError(f"diversity must be 'data' or 'problem', got {diversity!r}")
    if diversity == "data":
        return n
    f = fork_count(n, rho)
    return n - min(f, n - f)


@dataclass(frozen=True)
class PathStarTask:
    """Configuration of the path-star task and its base model."""

    arms: int = 2  # branches at the source (the fork of the forward mode)
    depth: int = 6  # nodes per arm (as the bridge's [task] depth): the arm choice, then depth - 1 steps
    branching: int = 2  # children of each decipherable step: 1 correct + (branching-1) dead ends
    rationale_steps: int = 2  # extra steps of the rationale mode before the (decipherable) arm choice
    mode_prior: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)  # base P(forward, reverse, rationale)
    base_step_accuracy: float = 0.8  # base probability of the correct step at a binary decipherable node
    feature_dim: int = 500  # d, dimension of the per-problem features phi(x)
    feature_scale: float = 1.0  # phi(x) ~ N(0, feature_scale^2 I_d), centred on the training mean
    n_train: int = 500  # training problems
    n_test: int = 500  # held-out test problems

    def __post_init__(self) -> None:
        check_fields(self)
        check_arms(self.arms)
        check_depth(self.depth)
        checks.integer("branching", self.branching, 2)
        checks.integer("rationale_steps", self.rationale_steps, 0)
        for i, p in enumerate(self.mode_prior):
            checks.real(f"mode_prior[{i}]", p, 0.0)
        if abs(sum(self.mode_prior) - 1) > 1e-6:
            raise ValueError(f"mode_prior must be 3 non-negative numbers summing to 1, got {list(self.mode_prior)}")
        checks.real("base_step_accuracy", self.base_step_accuracy, 0.0, 1.0, low_open=True, high_open=True)
        checks.integer("feature_dim", self.feature_dim, 0)
        checks.real("feature_scale", self.feature_scale, 0.0, MAX_FEATURE_SCALE)
        checks.integer("n_train", self.n_train, 1)
        checks.integer("n_test", self.n_test, 1)

    @property
    def steps_after_fork(self) -> int:
        """Decipherable steps along an arm after the arm choice: ``depth - 1`` (the arm's other
        nodes; a reverse chain takes ``depth`` steps, the arm choice included)."""
        return self.depth - 1

    @property
    def n_nodes(self) -> int:
        """Nodes of the task tree: the root, three mode heads, and per mode the chains below
        (each decipherable step adds ``branching`` children)."""
        b = self.branching
        arm = 1 + self.steps_after_fork * b  # an arm choice node and its chain
        return 1 + 3 + self.arms * arm + self.depth * b + self.rationale_steps * b + self.arms * arm

    @property
    def base_skill(self) -> float:
        """Skill logit s with e^s / (e^s + 1) = base_step_accuracy at a binary decipherable node."""
        a = self.base_step_accuracy
        return float(np.log(a / (1.0 - a)))

    def build(self, seed: int) -> "PathStar":
        """The tree, and train/test problems drawn from ``seed`` (arms and features)."""
        return _build(self, seed)


@dataclass(frozen=True, eq=False)
class PathStar:
    """A built path-star task: the tree, node roles, and the train and test problems."""

    task: PathStarTask
    tree: Tree
    answer_leaf: np.ndarray  # (3, arms) correct leaf of each mode for each arm (reverse: same for all arms)
    train: Problems
    test: Problems
    train_arm: np.ndarray = field(repr=False)  # (n_train,) the hidden correct arm of each training problem

    @property
    def forward_fork(self) -> int:
        """The forward mode's head: the fork over the arms, the one FORK among the root's children."""
        kids = self.tree.children(0)
        return int(kids[self.tree.kind[kids] == FORK][0])

    def target_arm_probability(self, logits: np.ndarray) -> np.ndarray:
        """(P,) each test problem's probability of its correct arm at the forward fork, the softmax of
        ``logits`` (P, N) over the arms (the model's, before decoding; the bridge's ``q_target``)."""
        if logits.shape != (len(self.test), self.tree.n_nodes):
            raise ValueError(f"logits must be (test problems, nodes) = {(len(self.test), self.tree.n_nodes)}, "
                             f"got {logits.shape}")
        arms, correct = self._forward_arms
        z = logits[:, arms] - logits[:, arms].max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p * correct).sum(axis=1) / p.sum(axis=1)

    @cached_property
    def _forward_arms(self) -> tuple[np.ndarray, np.ndarray]:
        """The forward fork's children and, per test problem, which of them is the correct arm."""
        arms = self.tree.children(self.forward_fork)
        return arms, self.test.on_correct_path(self.tree)[:, arms]


def _build(task: PathStarTask, seed: int) -> PathStar:
    tb = TreeBuilder()
    step_prob = 1.0 / task.branching

    def chain(head: int, steps: int, last_is_answer: bool) -> int:
        """``steps`` decipherable steps from ``head``: each has one continuing child (the correct
        step, first) and ``branching - 1`` dead-end leaves. Returns the last continuing node
        (a leaf, the answer, when ``last_is_answer``)."""
        u = head
        for i in range(steps):
            answer = last_is_answer and i == steps - 1
            nxt = tb.add(LEAF if answer else DECIPHERABLE, step_prob, u)
            for _ in range(task.branching - 1):
                tb.add(LEAF, step_prob, u, easy=False)
            u = nxt
        return u

    root = tb.add(FORK, valid_branches=3)
    heads = [tb.add(FORK if m == 0 else DECIPHERABLE, task.mode_prior[m], root, label=m) for m in range(3)]
    answer = np.zeros((3, task.arms), dtype=np.int64)
    steps = task.steps_after_fork  # an arm's nodes after its first (the arm choice)
    # forward: fork over arms, then depth - 1 steps along each arm
    for a in range(task.arms):
        answer[0, a] = chain(tb.add(DECIPHERABLE, 1.0 / task.arms, heads[0], label=a), steps, True)
    # reverse: depth decipherable steps, the arm step included
    answer[1, :] = chain(heads[1], task.depth, True)
    # rationale: rationale_steps steps, a decipherable arm choice, then depth - 1 steps
    choice = chain(heads[2], task.rationale_steps, False)
    for a in range(task.arms):
        answer[2, a] = chain(tb.add(DECIPHERABLE, 1.0 / task.arms, choice, label=a), steps, True)
    tree, new_id = tb.build()

    rng = np.random.default_rng(seed)
    n = task.n_train + task.n_test
    arm_of = rng.integers(0, task.arms, size=n)
    features = rng.normal(0.0, task.feature_scale, size=(n, task.feature_dim))
    # Centre every problem's features on the training mean: what all training problems share is
    # then carried by the shared logits theta alone, and W can only fit what is specific to a
    # problem (see docs/sft.md).
    features -= features[: task.n_train].mean(axis=0, keepdims=True)
    answer_new = new_id[answer]
    correct = np.zeros((n, tree.n_nodes), dtype=bool)
    rows = np.arange(n)
    for m in range(3):
        correct[rows, answer_new[m, arm_of]] = True
    problems = Problems(np.zeros(n, dtype=np.int64), correct, correct.copy(), features, np.arange(n, dtype=np.int64))
    train_idx, test_idx = np.arange(task.n_train), np.arange(task.n_train, n)
    return PathStar(
        task=task,
        tree=tree,
        answer_leaf=answer_new,
        train=problems.subset(train_idx),
        test=problems.subset(test_idx),
        train_arm=arm_of[train_idx],
    )
