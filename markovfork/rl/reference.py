"""NumPy references for the RL kernels, by brute force: enumerate every path below a problem's
start, write each method's surrogate objective as an explicit sum over paths, and differentiate
it numerically (central differences). Slow; for tests on small trees."""

from __future__ import annotations

import itertools

import numpy as np

from markovfork.rl.config import GRPO_EPS

__all__ = ["softmax_probs", "paths_below", "grpo_weight_reference", "surrogate", "numeric_gradient"]


def softmax_probs(tree, z: np.ndarray) -> np.ndarray:
    """(N,) step probabilities: softmax of ``z`` over each node's children (probs[0] = 1)."""
    out = np.ones_like(z)
    for u in np.flatnonzero(tree.n_children > 0):
        a, b = tree.child_start[u], tree.child_start[u + 1]
        e = np.exp(z[a:b] - z[a:b].max())
        out[a:b] = e / e.sum()
    return out


def paths_below(tree, start: int) -> list[list[int]]:
    """Every path from ``start`` to a leaf, as the list of nodes after ``start``."""
    out = []

    def walk(u, path):
        kids = range(tree.child_start[u], tree.child_start[u + 1])
        if not kids:
            out.append(path)
        for v in kids:
            walk(v, path + [v])

    walk(start, [])
    return out


def grpo_weight_reference(p: float, g: int) -> float:
    """E[sum_i A_i d log pi(y_i)] / (d p) for GRPO with binary rewards, by enumerating all 2^G
    reward vectors: (1/G) sum_i E[A_i | r_i = 1] P(r_i=1)/p ... written out as
    sum over outcomes of P(outcome) * A_1 * (r_1/p - (1 - r_1)/(1 - p)) (score of sample 1)."""
    total = 0.0
    for rewards in itertools.product([0, 1], repeat=g):
        r = np.array(rewards, dtype=float)
        prob = np.prod(np.where(r > 0, p, 1 - p))
        mean = r.mean()
        a1 = (r[0] - mean) / (np.sqrt(mean * (1 - mean)) + GRPO_EPS)
        score = r[0] / p - (1 - r[0]) / (1 - p)  # d log P(r_1) / dp
        total += prob * a1 * score
    return total


def surrogate(tree, z, start, correct, *, coef=None, kl=0.0, ref=None, visit=None, ppo=None):
    """Surrogate objective of one problem as a function of the logits z (other inputs fixed):
    ``sum_y pi_z(y) coef(y)`` over the paths y from ``start`` (``coef`` (N,) at leaves),
    minus ``kl * sum_u visit(u) KL(pi_z(.|u) || ref(.|u))``, plus, if ``ppo = (old, b, clip)``,
    the per-step clipped surrogate ``sum_y pi_old(y) sum_(u->v in y) min(rho A, clip(rho) A)``
    with A = r(y) - b."""
    probs = softmax_probs(tree, z)
    total = 0.0
    for path in paths_below(tree, start):
        if coef is not None:
            total += np.prod(probs[path]) * coef[path[-1] if path else start]
        if ppo is not None and path:
            old, b, clip = ppo
            a = float(correct[path[-1]]) - b
            for v in path:
                rho = probs[v] / old[v]
                total += np.prod(old[path]) * min(rho * a, np.clip(rho, 1 - clip, 1 + clip) * a)
    if kl:
        for u in np.flatnonzero(tree.n_children > 0):
            a, b = tree.child_start[u], tree.child_start[u + 1]
            q, r = probs[a:b], ref[a:b]
            total -= kl * visit[u] * float(np.sum(q * np.log(q / r)))
    return total


def numeric_gradient(f, z: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of ``f`` at ``z`` (entry 0, the root, left at 0)."""
    g = np.zeros_like(z)
    for v in range(1, z.size):
        zp, zm = z.copy(), z.copy()
        zp[v] += h
        zm[v] -= h
        g[v] = (f(zp) - f(zm)) / (2 * h)
    return g

