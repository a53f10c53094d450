"""The branching task, the two-parameter policy and the teachers (see the package docstring).

Decision probabilities of the policy with parameters (a, c), with m = ``n_correct`` correct and
b - m wrong children at each decision point:

    Z = m e^a + (b - m),   pi(one correct child) = e^a / Z,   pi(one wrong child) = 1 / Z,
    P = m e^a / Z (some correct child),   q = sigma(c) (backtrack at a contradiction).

A teacher with branching rate beta and ``retries`` r enters W_i wrong branches at decision point
i, W_i = min(G, r) with G geometric, P(G = k) = beta^k (1 - beta); the per-trajectory branch count
is B = W_0 + ... + W_{D-1} (pmf: a D-fold convolution, far tails below 1e-17 cut).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markovfork.plumbing import checks
from markovfork.plumbing.config_reader import check_fields

__all__ = ["BranchingTask", "Params", "Teacher", "decision_probs", "branch_count_pmf"]

MAX_POINTS = 1_000
MAX_CHILDREN = 1_000
MAX_DEPTH = 10_000
MAX_BETA = 0.95  # unbounded retries: mean W = beta / (1 - beta) <= 19
PMF_TAIL = 1e-17  # unbounded retries: the per-point pmf is cut where the tail mass is below this


@dataclass(frozen=True)
class BranchingTask:
    """D decision points with b children each (``n_correct`` of them correct), wrong branches of
    h tokens; the base policy's logits (a0, c0)."""

    points: int = 8  # D
    children: int = 4  # b
    depth: int = 10  # h: tokens of a wrong branch (its entry token included)
    n_correct: int = 1  # m: correct children per decision point (1 <= m < b)
    base_a: float = 1.0  # a0: logit of each correct child (wrong children: 0)
    base_c: float = 0.0  # c0: backtrack logit at a contradiction (continue: 0)

    def __post_init__(self) -> None:
        check_fields(self)
        checks.integer("points", self.points, 1, MAX_POINTS)
        checks.integer("children", self.children, 2, MAX_CHILDREN)
        checks.integer("depth", self.depth, 1, MAX_DEPTH)
        checks.integer(f"n_correct (children = {self.children})", self.n_correct, 1, self.children - 1)
        checks.real("base_a", self.base_a, -50.0, 50.0)
        checks.real("base_c", self.base_c, -50.0, 50.0)

    @property
    def base(self) -> "Params":
        return Params(self.base_a, self.base_c)

    @property
    def convergent_length(self) -> int:
        """Tokens of a trajectory without branches: D decisions and the answer."""
        return self.points + 1

    @property
    def mean_excursion(self) -> float:
        """Expected tokens of one wrong entry that ends in a backtrack: E[g] + 1 = (h + 1) / 2 + 1."""
        return (self.depth + 1) / 2 + 1


@dataclass(frozen=True)
class Params:
    """The trainable policy: correct-child logit a and backtrack logit c."""

    a: float
    c: float

    def __post_init__(self) -> None:
        checks.real("a", self.a)
        checks.real("c", self.c)

    def array(self) -> np.ndarray:
        return np.array([self.a, self.c])


def decision_probs(task: BranchingTask, params: Params) -> tuple[float, float]:
    """(P, q): the probability of some correct child at a decision point and of backtracking at a
    contradiction, computed without overflow."""
    m, wrong = task.n_correct, task.children - task.n_correct
    # P = m e^a / (m e^a + b - m) = 1 / (1 + ((b - m) / m) e^{-a})
    p = 1.0 / (1.0 + (wrong / m) * np.exp(-params.a)) if params.a > -700 else 0.0
    q = 1.0 / (1.0 + np.exp(-params.c)) if params.c > -700 else 0.0
    return float(p), float(q)


@dataclass(frozen=True)
class Teacher:
    """A correct teacher with branching rate ``beta`` and at most ``retries`` wrong entries per
    decision point (None: unbounded, a geometric number); beta = 0 is the convergent teacher."""

    beta: float = 0.0
    retries: int | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.retries is None:
            checks.real("beta", self.beta, 0.0, MAX_BETA)
        else:
            checks.integer("retries", self.retries, 1, MAX_DEPTH)
            checks.real("beta", self.beta, 0.0, 1.0)

    @property
    def name(self) -> str:
        if self.beta == 0.0:
            return "convergent"
        return f"branching(beta={self.beta:g}, retries={'inf' if self.retries is None else self.retries})"

    def entries_pmf(self) -> np.ndarray:
        """pmf of W, the wrong entries at one decision point (index = count)."""
        beta = self.beta
        if beta == 0.0:
            return np.ones(1)
        if self.retries is None:
            top = int(np.ceil(np.log(PMF_TAIL) / np.log(beta)))
            return (1 - beta) * beta ** np.arange(top + 1)
        r = self.retries
        pmf = (1 - beta) * beta ** np.arange(r + 1)
        pmf[r] = beta**r
        return pmf

    def mean_entries(self) -> float:
        """E[W]: beta / (1 - beta) unbounded, beta + ... + beta^r with r retries."""
        if self.retries is None:
            return self.beta / (1 - self.beta)
        return float(sum(self.beta**k for k in range(1, self.retries + 1)))


def branch_count_pmf(task: BranchingTask, teacher: Teacher) -> np.ndarray:
    """pmf of the per-trajectory branch count B = W_0 + ... + W_{D-1} (D-fold convolution, by
    repeated squaring)."""
    one, out, n = teacher.entries_pmf(), np.ones(1), task.points
    while n:
        if n & 1:
            out = _trim(np.convolve(out, one))
        n >>= 1
        if n:
            one = _trim(np.convolve(one, one))
    return out


def _trim(pmf: np.ndarray) -> np.ndarray:
    """``pmf`` without the far tail whose total mass is below PMF_TAIL (keeps convolutions short)."""
    tail = np.cumsum(pmf[::-1])[::-1]  # tail[k] = P(X >= k)
    keep = int(np.searchsorted(-tail, -PMF_TAIL))  # first k with tail[k] < PMF_TAIL
    return pmf[: max(keep, 1)]
