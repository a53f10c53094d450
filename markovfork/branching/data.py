"""Teacher trajectories, the most-branching filter and the token counts SFT needs.

A trajectory of a teacher with B wrong entries, the k-th going g_k ~ Uniform{1..h} tokens in, has

    D correct decision tokens, B wrong decision tokens, B backtrack tokens,
    sum_k (g_k - 1) + 1 forced tokens (branch interiors and the answer),
    length L = D + 1 + sum_k (g_k + 1).

The token-averaged SFT loss depends on a dataset only through the totals of these counts
(:mod:`markovfork.branching.train`); :func:`expected_counts` gives their expectations under a
teacher, after dropping the share f of most-branching trajectories (the exact population filter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markovfork.plumbing import checks
from markovfork.branching.task import BranchingTask, Teacher, branch_count_pmf
from markovfork.plumbing.seeds import child_rng

__all__ = ["Trajectories", "Counts", "teacher_trajectories", "filter_most_branching", "expected_counts"]

MAX_TRAJECTORIES = 10_000_000


@dataclass(frozen=True, eq=False)
class Trajectories:
    """A dataset: per trajectory its branch count (wrong entries) and its length in tokens."""

    points: int  # D of the task (every trajectory has D correct decision tokens)
    branches: np.ndarray  # (N,) int64
    length: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return int(self.branches.shape[0])

    def counts(self) -> "Counts":
        """Per-trajectory token counts (arrays of shape (N,))."""
        b = self.branches.astype(np.float64)
        return Counts(np.full(b.shape, float(self.points)), b, b, self.length.astype(np.float64))

    def subset(self, idx) -> "Trajectories":
        return Trajectories(self.points, self.branches[idx], self.length[idx])


@dataclass(frozen=True, eq=False)
class Counts:
    """Token counts of the loss: correct decisions, wrong decisions, backtracks, all tokens
    (scalars: expectations per trajectory; arrays: one entry per trajectory)."""

    correct: np.ndarray | float
    wrong: np.ndarray | float
    backtrack: np.ndarray | float
    tokens: np.ndarray | float


def teacher_trajectories(task: BranchingTask, teacher: Teacher, n: int, seed: int) -> Trajectories:
    """``n`` trajectories of ``teacher`` on ``task``, from the stream ``(seed, "teacher")``:
    W_i = min(G - 1, r) with G ~ Geometric(1 - beta) on {1, 2, ...}, then the depths g of all
    entries, in trajectory order."""
    n = checks.integer("n", n, 1, MAX_TRAJECTORIES)
    rng = child_rng(seed, "teacher")
    if teacher.beta == 0.0:
        w = np.zeros((n, task.points), dtype=np.int64)
    elif teacher.beta == 1.0:  # retries is finite here (Teacher checks it)
        w = np.full((n, task.points), teacher.retries, dtype=np.int64)
    else:
        w = rng.geometric(1.0 - teacher.beta, size=(n, task.points)) - 1
        if teacher.retries is not None:
            w = np.minimum(w, teacher.retries)
    branches = w.sum(axis=1)
    depths = rng.integers(1, task.depth + 1, size=int(branches.sum()))
    excursion = np.zeros(n, dtype=np.int64)  # sum over the trajectory's entries of g + 1
    owner = np.repeat(np.arange(n), branches)
    np.add.at(excursion, owner, depths + 1)
    return Trajectories(task.points, branches.astype(np.int64), task.convergent_length + excursion)


def filter_most_branching(data: Trajectories, share: float, seed: int = 0) -> Trajectories:
    """``data`` without its floor(share N) most-branching trajectories (ties broken by a random
    permutation from the stream ``(seed, "filter")``); the kept ones stay in their order."""
    share = checks.real("share", share, 0.0, 1.0, high_open=True)
    n = len(data)
    drop = int(np.floor(share * n))
    if drop == 0:
        return data
    tie = child_rng(seed, "filter").permutation(n)
    order = np.lexsort((tie, -data.branches))  # most branches first, ties in random order
    keep = np.sort(order[drop:])
    return data.subset(keep)


def kept_branch_pmf(task: BranchingTask, teacher: Teacher, share: float) -> np.ndarray:
    """Weights (summing to 1 - share) of each branch count among the trajectories kept when the
    share ``share`` with the most branches is dropped (the threshold count kept in part)."""
    pmf = branch_count_pmf(task, teacher)
    room = np.clip((1.0 - share) - (np.cumsum(pmf) - pmf), 0.0, None)  # mass left before count k
    return np.minimum(pmf, room)


def expected_counts(task: BranchingTask, teacher: Teacher, share: float = 0.0) -> Counts:
    """Expected token counts per kept trajectory (the ratio of expectations is the large-N limit
    of the dataset's token-averaged loss). With E[B] over the kept distribution,
    E[L] = D + 1 + E[B] ((h + 1) / 2 + 1)."""
    share = checks.real("share", share, 0.0, 1.0, high_open=True)
    if share == 0.0:
        mean_b = task.points * teacher.mean_entries()
    else:
        w = kept_branch_pmf(task, teacher, share)
        mean_b = float(np.dot(np.arange(w.size), w) / w.sum())
    return Counts(float(task.points), mean_b, mean_b, task.convergent_length + mean_b * task.mean_excursion)
