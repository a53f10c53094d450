"""Success within a length budget: exactly (a dynamic program) and by rollouts (Numba kernel).

With P = P(correct child) and q = sigma(c) (:func:`~markovfork.branching.task.decision_probs`),
let f[i, t] be the probability of standing at decision point i after t tokens. From (i, t):

    f[i + 1, t + 1]      += P f[i, t]                     (a correct child: one token)
    f[i, t + g + 1]      += (1 - P) q / h f[i, t]         (g = 1..h: a wrong entry, g - 1 forced
                                                           tokens to the contradiction, a backtrack)

and (1 - P)(1 - q) f[i, t] ends in a wrong answer. The answer takes one more token after point
D - 1, so success within T tokens is sum_{t <= T - 1} f[D, t]. Without a budget it is
(P / (P + (1 - P)(1 - q)))^D.

Rollouts: rollout r draws from xoshiro256** stream (seed, r) (:mod:`markovfork.engines.sampled.streams`), per
decision token one uniform u (correct iff u < P), then for a wrong entry g = 1 + floor(u' h) and,
when the contradiction is reached within T tokens, a uniform u'' (backtrack iff u'' < q).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.branching.task import BranchingTask, Params, decision_probs
from markovfork.metrics.estimators import pass_at_k
from markovfork.engines.sampled.streams import stream_states, stream_uniforms, to_unit, xoshiro_next

__all__ = ["success_within_budget", "success_unbounded", "RolloutArrays", "RolloutSummary", "rollouts", "rollouts_reference",
           "evaluate_rollouts"]

MAX_BUDGET = 1_000_000
MAX_ROLLOUTS = 100_000_000


def _budget(budget) -> int:
    return checks.integer("budget", budget, 1, MAX_BUDGET)


def success_within_budget(task: BranchingTask, params: Params, budget: int) -> float:
    """Exact probability of a correct answer within ``budget`` tokens (module docstring)."""
    budget = _budget(budget)
    p, q = decision_probs(task, params)
    d, h = task.points, task.depth
    f = np.zeros((d + 1, budget + 1))
    f[0, 0] = 1.0
    back = (1.0 - p) * q / h
    for t in range(budget):
        col = f[:d, t]
        if t + 1 <= budget:
            f[1:, t + 1] += p * col
        hi = min(t + h + 1, budget)  # the furthest reachable t + g + 1 within the table
        if t + 2 <= hi:
            f[:d, t + 2 : hi + 1] += back * col[:, None]
    return float(f[d, :budget].sum())


def success_unbounded(task: BranchingTask, params: Params) -> float:
    """Success probability without a budget: (P / (P + (1 - P)(1 - q)))^D."""
    p, q = decision_probs(task, params)
    return float((p / (p + (1.0 - p) * (1.0 - q))) ** task.points)


@numba.njit(cache=True)
def _rollout_kernel(p, q, points, depth, budget, states, success, length, branches):
    """One rollout per stream state; writes success, tokens emitted (capped at the budget) and
    wrong entries. Draw order as in the module docstring."""
    for r in range(states.shape[0]):
        s0, s1, s2, s3 = states[r, 0], states[r, 1], states[r, 2], states[r, 3]
        i = 0
        t = 0
        nb = 0
        ok = False
        while True:
            if i == points:
                t += 1  # the answer
                ok = t <= budget
                break
            if t >= budget:
                break
            x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            t += 1
            if to_unit(x) < p:
                i += 1
                continue
            nb += 1
            x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            g = 1 + np.int64(to_unit(x) * depth)
            t += g - 1
            if t >= budget:
                break
            x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            if to_unit(x) < q:
                t += 1  # backtrack
                continue
            t += depth - g + 1  # the rest of the branch and the wrong answer
            break
        success[r] = ok
        length[r] = min(t, budget)
        branches[r] = nb


@dataclass(frozen=True, eq=False)
class RolloutArrays:
    success: np.ndarray  # (n,) bool
    length: np.ndarray  # (n,) int64: tokens emitted, capped at the budget
    branches: np.ndarray  # (n,) int64: wrong entries


def rollouts(task: BranchingTask, params: Params, budget: int, n: int, seed: int) -> RolloutArrays:
    """``n`` rollouts of the policy under ``budget`` (Numba kernel)."""
    budget = _budget(budget)
    n = checks.integer("n", n, 1, MAX_ROLLOUTS)
    p, q = decision_probs(task, params)
    out = RolloutArrays(np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))
    _rollout_kernel(p, q, task.points, task.depth, budget, stream_states(seed, n), out.success, out.length, out.branches)
    return out


def rollouts_reference(task: BranchingTask, params: Params, budget: int, n: int, seed: int) -> RolloutArrays:
    """The same rollouts in plain Python on the same uniforms (at most 3 per token)."""
    p, q = decision_probs(task, params)
    u = stream_uniforms(seed, n, 3 * budget)
    out = RolloutArrays(np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))
    for r in range(n):
        draws = iter(u[r])
        i = t = nb = 0
        ok = False
        while i < task.points and t < budget:
            t += 1
            if next(draws) < p:
                i += 1
                continue
            nb += 1
            g = 1 + int(next(draws) * task.depth)
            t += g - 1
            if t >= budget:
                break
            if next(draws) < q:
                t += 1
                continue
            t += task.depth - g + 1
            break
        else:
            if i == task.points:
                t += 1
                ok = t <= budget
        out.success[r], out.length[r], out.branches[r] = ok, min(t, budget), nb
    return out


@dataclass(frozen=True)
class RolloutSummary:
    """Rollouts of one policy: successes, pass@k by the unbiased estimator, mean length and branches."""

    n: int
    successes: int
    k: np.ndarray
    pass_at_k: np.ndarray
    mean_length: float
    mean_branches: float


def evaluate_rollouts(task: BranchingTask, params: Params, budget: int, n: int, seed: int, ks=(1,)) -> RolloutSummary:
    """Summary of ``n`` rollouts; pass@k from :func:`markovfork.metrics.estimators.pass_at_k`."""
    ks = checks.k_values(list(ks) if isinstance(ks, tuple) else ks, n=n)
    r = rollouts(task, params, budget, n, seed)
    c = int(r.success.sum())
    return RolloutSummary(n, c, ks, np.atleast_1d(pass_at_k(n, c, ks)), float(r.length.mean()), float(r.branches.mean()))
