"""Exact engine: success probabilities by dynamic programming over the tree, no sampling.

With step probabilities pi_x(v) (the probability of the step parent[v] -> v for problem x),

    V_x(leaf) = [leaf is correct for x],    V_x(u) = sum_{v child of u} pi_x(v) V_x(v),

and the per-problem success probability is p_x = V_x(start_x). Exact pass@k is
``mean_x 1 - (1 - p_x)^k``. The forward sweep ``R_x(v) = R_x(parent v) pi_x(v)``,
``R_x(start_x) = 1``, gives the probability of reaching every node (every leaf: a path).
From it, :func:`path_type_mass` splits each problem's unit of probability mass over leaves into
easy-valid (every edge easy), hard-valid and invalid paths, and :func:`node_entropy` gives the
entropy ``H_x(u) = -sum_v pi_x(v) log pi_x(v)`` of each node's step distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.model.kernels import backward_value, forward_reach, hard_edge_counts

__all__ = [
    "success_probability",
    "success_probability_reference",
    "reach_probability",
    "exact_pass_at_k",
    "PathTypeMass",
    "path_type_mass",
    "path_type_mass_reference",
    "node_entropy",
    "node_entropy_reference",
]

@numba.njit(cache=True, nogil=True)  # the fit's predictor runs arms on threads
def _success_kernel(child_start, probs, correct, start, out):
    """out[p] = V_p(start[p]) for the backward recursion in the module docstring."""
    value = np.empty(child_start.shape[0] - 1)
    for p in range(probs.shape[0]):
        backward_value(child_start, probs[p], correct[p], value)
        out[p] = value[start[p]]


def success_probability(tree, probs: np.ndarray, correct: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(P,) probability that a rollout from ``start[p]`` under ``probs`` ends at a correct leaf."""
    probs = checks.probability_rows(probs, tree.n_nodes)
    correct = checks.bool_matrix("correct", correct, probs.shape)
    start = checks.start_ids(start, tree.n_nodes, probs.shape[0])
    out = np.empty(probs.shape[0])
    _success_kernel(tree.child_start, probs, correct, start, out)
    return out


def success_probability_reference(tree, probs, correct, start) -> np.ndarray:
    """NumPy reference: sum over leaves of reach probability times correctness."""
    reach = reach_probability(tree, probs, start)
    return (reach * correct).sum(axis=1)


@numba.njit(cache=True)
def _reach_kernel(parent, probs, start, out):
    """out[p, v] = probability that a rollout from start[p] passes through v."""
    inside = np.empty(parent.shape[0], dtype=np.bool_)
    for p in range(probs.shape[0]):
        forward_reach(parent, probs[p], start[p], out[p], inside)


def reach_probability(tree, probs: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(P, N) probability of passing through each node; at leaves, the probability of that path."""
    probs = checks.probability_rows(probs, tree.n_nodes)
    start = checks.start_ids(start, tree.n_nodes, probs.shape[0])
    out = np.empty_like(probs)
    _reach_kernel(tree.parent, probs, start, out)
    return out


def exact_pass_at_k(success: np.ndarray, k) -> np.ndarray:
    """Exact pass@k averaged over problems, ``mean_x 1 - (1 - p_x)^k``, for each k (shape of k:
    a scalar or a 1-D list)."""
    k_arr = checks.k_values(k)
    success = checks.array("success", success, np.float64)
    bad = ~((success >= -1e-12) & (success <= 1 + 1e-12))  # NaN fails both
    if bad.any():
        raise ValueError(f"success probabilities must lie in [0, 1], got {success[bad][0]}")
    if success.size == 0:
        raise ValueError("success must hold at least one problem's probability, got an empty array")
    fail = np.clip(1.0 - success, 0.0, 1.0)
    return 1.0 - np.mean(fail[:, None] ** k_arr[None, :], axis=0).reshape(np.shape(k))


@dataclass(frozen=True)
class PathTypeMass:
    """Per-problem split of the rollout distribution over leaves (each row sums to 1)."""

    easy_valid: np.ndarray  # (P,) mass of paths from the start whose every edge is easy, ending at a valid leaf
    hard_valid: np.ndarray  # (P,) mass of paths with at least one hard edge, ending at a valid leaf
    invalid: np.ndarray  # (P,) mass of paths ending at a leaf that is not valid


@numba.njit(cache=True)
def _path_type_kernel(parent, leaf, hard, probs, valid, start, out):
    """out[p] = (easy-valid, hard-valid, invalid) mass: the reach R of every leaf below the start
    s, easy when no hard edge lies between s and it (``hard[leaf] == hard[s]``)."""
    n_nodes = parent.shape[0]
    reach = np.empty(n_nodes)
    inside = np.empty(n_nodes, dtype=np.bool_)
    for p in range(probs.shape[0]):
        out[p, 0] = 0.0
        out[p, 1] = 0.0
        out[p, 2] = 0.0
        s = np.uint64(start[p])  # unsigned node ids: no negative-index wraparound code
        forward_reach(parent, probs[p], s, reach, inside)
        for v in range(s, np.uint64(n_nodes)):  # from s itself: a rollout that starts at a leaf ends there
            if leaf[v] and reach[v] > 0.0:
                if not valid[p, v]:
                    out[p, 2] += reach[v]
                elif hard[v] == hard[s]:
                    out[p, 0] += reach[v]
                else:
                    out[p, 1] += reach[v]


def path_type_mass(tree, probs: np.ndarray, problems) -> PathTypeMass:
    """Share of each problem's rollout mass on easy-valid, hard-valid and invalid leaves.

    A path runs from the problem's start node to a leaf; it is *easy* when every edge on it is
    easy (``tree.edge_easy``). Shares: ``sum over leaves l of R_x(l) * [l in class]``.
    """
    problems.check_tree(tree)
    probs = checks.probability_rows(probs, tree.n_nodes, len(problems))
    out = np.empty((probs.shape[0], 3))
    _path_type_kernel(
        tree.parent,
        np.ascontiguousarray(tree.n_children == 0),
        hard_edge_counts(tree.parent, np.ascontiguousarray(tree.edge_easy, dtype=np.bool_)),
        probs,
        np.ascontiguousarray(problems.valid, dtype=np.bool_),
        np.ascontiguousarray(problems.start, dtype=np.int64),
        out,
    )
    return PathTypeMass(out[:, 0].copy(), out[:, 1].copy(), out[:, 2].copy())


def path_type_mass_reference(tree, probs, problems) -> PathTypeMass:
    """Reference by enumeration: for every leaf, climb its parent links to the problem's start
    (skipping problems whose start is not on the way), multiplying step probabilities and
    noting whether any edge passed is hard."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    out = np.zeros((probs.shape[0], 3))
    valid = problems.valid.astype(bool)
    for leaf in np.flatnonzero(tree.n_children == 0):
        for p, s in enumerate(problems.start):
            v, mass, easy = int(leaf), 1.0, True
            while v != s and v != 0:
                mass *= probs[p, v]
                easy = easy and bool(tree.edge_easy[v])
                v = int(tree.parent[v])
            if v != s:
                continue  # the start is not above this leaf
            out[p, 2 if not valid[p, leaf] else (0 if easy else 1)] += mass
    return PathTypeMass(out[:, 0], out[:, 1], out[:, 2])


@numba.njit(cache=True)
def _entropy_kernel(child_start, probs, out):
    """out[p, u] = -sum_{v child of u} probs[p, v] log probs[p, v] (0 log 0 = 0; 0 at leaves)."""
    n_nodes = child_start.shape[0] - 1
    for p in range(probs.shape[0]):
        for u in range(n_nodes):
            acc = 0.0
            # unsigned child ids: no negative-index wraparound code
            for v in range(np.uint64(child_start[u]), np.uint64(child_start[u + 1])):
                q = probs[p, v]
                if q > 0.0:
                    acc -= q * np.log(q)
            out[p, u] = acc


def node_entropy(tree, probs: np.ndarray) -> np.ndarray:
    """(P, N) entropy in nats of each node's step distribution, ``-sum_v pi(v) log pi(v)``; 0 at leaves."""
    probs = checks.probability_rows(probs, tree.n_nodes)
    out = np.empty_like(probs)
    _entropy_kernel(tree.child_start, probs, out)
    return out


def node_entropy_reference(tree, probs) -> np.ndarray:
    """NumPy reference for :func:`node_entropy` via ``scipy.special.entr`` summed per parent."""
    from scipy.special import entr

    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    out = np.zeros_like(probs)
    np.add.at(out.T, tree.parent[1:], entr(probs[:, 1:]).T)
    return out
