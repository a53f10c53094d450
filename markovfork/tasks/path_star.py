"""The path-star task as a reasoning tree with three reasoning modes at the root.

Each problem asks for the end of one arm of a path-star graph. The root is a *mode choice*
(a fork whose branches are all valid):

* ``forward``: pick an arm at the source (a FORK with one valid arm, hidden from the
  left-to-right context), then walk ``depth`` decipherable steps along it;
* ``reverse``: substitute back from the target (``depth + 1`` decipherable steps, no fork);
* ``rationale``: ``rationale_steps`` extra decipherable steps that name the arm, then the arm
  choice as a *decipherable* step, then ``depth`` steps.

Every decipherable node's first child is the correct step; its other children are dead-end
leaves (wrong answers), so the tree stays linear in ``depth``. A problem's correct leaves are the
ends of its arm in the forward and rationale subtrees and the end of the reverse chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from markovfork.plumbing import checks
from markovfork.plumbing.config_reader import check_fields
from markovfork.model.problems import Problems
from markovfork.model.tree import DECIPHERABLE, FORK, LEAF, Tree, TreeBuilder

__all__ = ["PathStarTask", "PathStar"]


@dataclass(frozen=True)
class PathStarTask:
    """Configuration of the path-star task and its base model."""

    arms: int = 2  # branches at the source (the fork of the forward mode)
    depth: int = 5  # decipherable steps along an arm after the fork
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
        checks.integer("arms", self.arms, 2)
        checks.integer("depth", self.depth, 1)
        checks.integer("branching", self.branching, 2)
        checks.integer("rationale_steps", self.rationale_steps, 0)
        for i, p in enumerate(self.mode_prior):
            checks.real(f"mode_prior[{i}]", p, 0.0)
        if abs(sum(self.mode_prior) - 1) > 1e-6:
            raise ValueError(f"mode_prior must be 3 non-negative numbers summing to 1, got {list(self.mode_prior)}")
        checks.real("base_step_accuracy", self.base_step_accuracy, 0.0, 1.0, low_open=True, high_open=True)
        checks.integer("feature_dim", self.feature_dim, 0)
        checks.real("feature_scale", self.feature_scale, 0.0, 100.0)  # Gram entries d scale^2 stay finite
        checks.integer("n_train", self.n_train, 1)
        checks.integer("n_test", self.n_test, 1)

    @property
    def n_nodes(self) -> int:
        """Nodes of the task tree: the root, three mode heads, and per mode the chains below
        (each decipherable step adds ``branching`` children)."""
        b = self.branching
        arm = 1 + self.depth * b  # an arm choice node and its chain
        return 1 + 3 + self.arms * arm + (self.depth + 1) * b + self.rationale_steps * b + self.arms * arm

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
    # forward: fork over arms, then `depth` steps along each arm
    for a in range(task.arms):
        answer[0, a] = chain(tb.add(DECIPHERABLE, 1.0 / task.arms, heads[0], label=a), task.depth, True)
    # reverse: depth + 1 decipherable steps, the arm step included
    answer[1, :] = chain(heads[1], task.depth + 1, True)
    # rationale: rationale_steps steps, a decipherable arm choice, then `depth` steps
    choice = chain(heads[2], task.rationale_steps, False)
    for a in range(task.arms):
        answer[2, a] = chain(tb.add(DECIPHERABLE, 1.0 / task.arms, choice, label=a), task.depth, True)
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
