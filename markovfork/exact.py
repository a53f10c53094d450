"""Exact engine: success probabilities by dynamic programming over the tree, no sampling.

With step probabilities pi_x(v) (the probability of the step parent[v] -> v for problem x),

    V_x(leaf) = [leaf is correct for x],    V_x(u) = sum_{v child of u} pi_x(v) V_x(v),

and the per-problem success probability is p_x = V_x(start_x). Exact pass@k is
``mean_x 1 - (1 - p_x)^k``. The forward sweep ``R_x(v) = R_x(parent v) pi_x(v)``,
``R_x(start_x) = 1``, gives the probability of reaching every node (every leaf: a path).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "success_probability",
    "success_probability_reference",
    "reach_probability",
    "exact_pass_at_k",
]


@numba.njit(cache=True)
def _success_kernel(child_start, probs, correct, start, out):
    """out[p] = V_p(start[p]) for the backward recursion in the module docstring."""
    n_nodes = child_start.shape[0] - 1
    value = np.empty(n_nodes)
    for p in range(probs.shape[0]):
        for u in range(n_nodes - 1, -1, -1):
            a, b = child_start[u], child_start[u + 1]
            if a == b:
                value[u] = 1.0 if correct[p, u] else 0.0
            else:
                acc = 0.0
                for v in range(a, b):
                    acc += probs[p, v] * value[v]
                value[u] = acc
        out[p] = value[start[p]]


def success_probability(tree, probs: np.ndarray, correct: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(P,) probability that a rollout from ``start[p]`` under ``probs`` ends at a correct leaf."""
    probs = np.ascontiguousarray(np.atleast_2d(probs), dtype=np.float64)
    correct = np.ascontiguousarray(correct, dtype=np.bool_)
    if probs.shape != correct.shape or probs.shape[1] != tree.n_nodes:
        raise ValueError(f"probs {probs.shape} and correct {correct.shape} must both be (P, {tree.n_nodes})")
    out = np.empty(probs.shape[0])
    _success_kernel(tree.child_start, probs, correct, np.ascontiguousarray(start, dtype=np.int64), out)
    return out


def success_probability_reference(tree, probs, correct, start) -> np.ndarray:
    """NumPy reference: sum over leaves of reach probability times correctness."""
    reach = reach_probability(tree, probs, start)
    return (reach * correct).sum(axis=1)


@numba.njit(cache=True)
def _reach_kernel(parent, probs, start, out):
    """out[p, v] = probability that a rollout from start[p] passes through v."""
    for p in range(probs.shape[0]):
        out[p, :] = 0.0
        s = start[p]
        out[p, s] = 1.0
        for v in range(s + 1, parent.shape[0]):
            out[p, v] = out[p, parent[v]] * probs[p, v]


def reach_probability(tree, probs: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(P, N) probability of passing through each node; at leaves, the probability of that path."""
    probs = np.ascontiguousarray(np.atleast_2d(probs), dtype=np.float64)
    out = np.empty_like(probs)
    _reach_kernel(tree.parent, probs, np.ascontiguousarray(start, dtype=np.int64), out)
    return out


def exact_pass_at_k(success: np.ndarray, k) -> np.ndarray:
    """Exact pass@k averaged over problems, ``mean_x 1 - (1 - p_x)^k``, for each k (shape of k)."""
    success = np.asarray(success, dtype=np.float64)
    k_arr = np.asarray(k)
    if np.any(k_arr < 1):
        raise ValueError(f"k must be >= 1, got {int(np.min(k_arr))}")
    if np.any((success < -1e-12) | (success > 1 + 1e-12)):
        raise ValueError("success probabilities must lie in [0, 1]")
    fail = np.clip(1.0 - success, 0.0, 1.0)
    return 1.0 - np.mean(fail[:, None] ** np.atleast_1d(k_arr)[None, :], axis=0).reshape(k_arr.shape)
