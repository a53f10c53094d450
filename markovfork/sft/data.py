"""SFT data synthesis: teacher trajectories over the path-star tree.

A trajectory is a (problem, leaf, weight) triple; in a tree the leaf fixes the whole path. The
*prevalence* ``rho`` is the share of training trajectories that pass through the decision point
(the forward mode's arm fork); the rest use the fork-free reverse formulation of the same
problem. Diversity modes:

* ``data``: each problem is shown in one mode; a seeded subset of ``round(rho * N)`` problems
  goes forward (data-level diversity: balanced overall, one branch per problem);
* ``problem``: every problem is shown in both modes, forward with weight ``rho`` and reverse with
  ``1 - rho`` (problem-level diversity: the mode label carries no per-problem signal);
* ``rationale``: as ``data``, but the fork-crossing trajectories carry a rationale that makes the
  arm choice decipherable (the rationale mode), at the cost of extra steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markovfork.tasks.path_star import PathStar

__all__ = ["DIVERSITY", "SFTMix", "Trajectories", "Steps", "teacher_trajectories", "sample_trajectories", "trajectory_steps"]

DIVERSITY = ("data", "problem", "rationale")
FORWARD, REVERSE, RATIONALE = 0, 1, 2


@dataclass(frozen=True)
class SFTMix:
    """What the fine-tuning data looks like."""

    rho: float  # share of trajectories through the decision point (0: all reverse, 1: all forward)
    diversity: str = "data"  # "data" | "problem" | "rationale" (see the module docstring)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.rho) and 0.0 <= self.rho <= 1.0):
            raise ValueError(f"prevalence rho must be in [0, 1], got {self.rho}")
        if self.diversity not in DIVERSITY:
            raise ValueError(f"diversity must be one of {DIVERSITY}, got {self.diversity!r}")

    @property
    def fork_mode(self) -> int:
        """The mode that the rho share of trajectories uses."""
        return RATIONALE if self.diversity == "rationale" else FORWARD


@dataclass(frozen=True, eq=False)
class Trajectories:
    """Weighted teacher trajectories; ``problem`` indexes the training problems."""

    problem: np.ndarray  # (T,) int64
    leaf: np.ndarray  # (T,) int64: the answer leaf; the path is the leaf's ancestry
    weight: np.ndarray  # (T,) float64
    mode: np.ndarray  # (T,) int64: FORWARD, REVERSE or RATIONALE

    def __len__(self) -> int:
        return int(self.problem.shape[0])

    def fork_share(self) -> float:
        """Weighted share of trajectories in the forward (fork) mode."""
        return float(self.weight[self.mode == FORWARD].sum() / self.weight.sum())


def _fork_subset(n: int, rho: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the round(rho * n) problems (a seeded choice) shown in the fork mode."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: int(round(rho * n))]] = True
    return mask


def teacher_trajectories(ps: PathStar, mix: SFTMix, seed: int) -> Trajectories:
    """The exact training distribution for ``mix`` (no sampling beyond the seeded subset)."""
    n = len(ps.train)
    idx = np.arange(n)
    if mix.diversity == "problem":
        problem = np.concatenate([idx, idx])
        mode = np.concatenate([np.full(n, FORWARD), np.full(n, REVERSE)])
        weight = np.concatenate([np.full(n, mix.rho), np.full(n, 1.0 - mix.rho)])
        keep = weight > 0
        problem, mode, weight = problem[keep], mode[keep], weight[keep]
    else:
        in_fork = _fork_subset(n, mix.rho, np.random.default_rng(seed))
        problem = idx
        mode = np.where(in_fork, mix.fork_mode, REVERSE)
        weight = np.ones(n)
    leaf = ps.answer_leaf[mode, ps.train_arm[problem]]
    return Trajectories(problem.astype(np.int64), leaf.astype(np.int64), weight.astype(np.float64), mode.astype(np.int64))


def sample_trajectories(ps: PathStar, mix: SFTMix, per_problem: int, seed: int) -> Trajectories:
    """A finite dataset: ``per_problem`` copies of each training problem's trajectories.

    Data-level (and rationale): each problem's mode is drawn at random, the fork mode with
    probability ``rho`` (so the fork share is itself sampled). Problem-level: every problem is
    shown in both modes with weights ``rho`` and ``1 - rho``, as in the exact distribution (its
    mode labels carry no randomness to sample).
    """
    if per_problem < 1:
        raise ValueError(f"trajectories per problem must be >= 1, got {per_problem}")
    if mix.diversity == "problem":
        exact = teacher_trajectories(ps, mix, seed)
        rep = lambda a: np.tile(a, per_problem)  # noqa: E731
        return Trajectories(rep(exact.problem), rep(exact.leaf), rep(exact.weight), rep(exact.mode))
    n = len(ps.train)
    rng = np.random.default_rng(seed)
    problem = np.repeat(np.arange(n), per_problem)
    in_fork = np.repeat(rng.random(n) < mix.rho, per_problem)
    mode = np.where(in_fork, mix.fork_mode, REVERSE).astype(np.int64)
    leaf = ps.answer_leaf[mode, ps.train_arm[problem]]
    return Trajectories(problem.astype(np.int64), leaf.astype(np.int64), np.ones(problem.size), mode)


@dataclass(frozen=True, eq=False)
class Steps:
    """Every (node, next node) step of a set of trajectories, grouped by trajectory."""

    problem: np.ndarray  # (S,) int64: training problem
    node: np.ndarray  # (S,) int64: node u where the step is taken
    target: np.ndarray  # (S,) int64: the child taken
    weight: np.ndarray  # (S,) float64: the trajectory's weight
    offsets: np.ndarray  # (T+1,) int64: steps of trajectory t are offsets[t]:offsets[t+1]


def trajectory_steps(tree, trajectories: Trajectories, start: np.ndarray) -> Steps:
    """Expand each trajectory's leaf into its steps from the problem's start node."""
    t_count = len(trajectories)
    lengths = tree.depth[trajectories.leaf] - tree.depth[start[trajectories.problem]]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    total = int(offsets[-1])
    traj = np.repeat(np.arange(t_count), lengths)
    pos_from_end = offsets[traj + 1] - 1 - np.arange(total)  # 0 for the last step
    target = trajectories.leaf[traj].copy()
    for _ in range(int(lengths.max(initial=0))):  # climb pos_from_end levels up from the leaf
        climb = pos_from_end > 0
        target[climb] = tree.parent[target[climb]]
        pos_from_end = pos_from_end - 1
    return Steps(
        problem=trajectories.problem[traj],
        node=tree.parent[target],
        target=target,
        weight=trajectories.weight[traj],
        offsets=offsets,
    )
