"""A softmax policy over the tree and the decoding transforms applied to it.

For problem x the logit of the step into child v of node u = parent[v] is

    z_x(v) = theta(v)                                   (shared logit; base: log edge_prob)
           + skill(u) * [v on a correct path of x]      if u is decipherable (the visible step)
           + W(v) . phi(x)                              if u is a fork (memorisable features)

and the step probability is softmax over u's children of the decoded logits (temperature,
then top-k, top-p and min-p filtering on the tempered distribution, then renormalisation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.model.kernels import softmax_children
from markovfork.model.problems import Problems
from markovfork.model.tree import DECIPHERABLE, FORK, LEAF, Tree

__all__ = [
    "Policy",
    "Decoding",
    "problem_logits",
    "transition_probs",
    "transition_probs_reference",
]


@dataclass(frozen=True, eq=False)
class Policy:
    """Parameters of the per-node softmax policy (see the module docstring)."""

    logit: np.ndarray  # (N,) float64: shared logit theta of the step into v (-inf: never taken)
    skill: np.ndarray  # (N,) float64: at a decipherable node u, logit bonus of children on a correct path
    fork_weight: np.ndarray  # (N, d) float64: feature weights W(v) of steps out of forks

    def __post_init__(self) -> None:
        for name, ndim in (("logit", 1), ("skill", 1), ("fork_weight", 2)):
            object.__setattr__(self, name, checks.array(f"policy.{name}", getattr(self, name), np.float64, ndim))
        n = self.logit.shape[0]
        if self.skill.shape != (n,) or self.fork_weight.shape[0] != n:
            raise ValueError(
                f"policy arrays disagree: logit {self.logit.shape}, skill {self.skill.shape}, "
                f"fork_weight {self.fork_weight.shape}"
            )

    @classmethod
    def base(cls, tree: Tree, feature_dim: int = 0, skill: float = 0.0) -> "Policy":
        """The base model: logits ``log edge_prob``, ``skill`` at every decipherable node, W = 0."""
        feature_dim = checks.integer("feature_dim", feature_dim, 0)
        skill = checks.real("skill", skill)
        skill_arr = np.where((tree.kind == DECIPHERABLE) & (tree.n_children > 0), float(skill), 0.0)
        return cls(tree.edge_logit.copy(), skill_arr, np.zeros((tree.n_nodes, feature_dim)))

    def with_(self, **changes) -> "Policy":
        return replace(self, **changes)


@dataclass(frozen=True)
class Decoding:
    """Sampling controls applied to each node's step distribution."""

    temperature: float = 1.0  # logits divided by this (> 0)
    top_k: int = 0  # keep the k most likely children (0: off)
    top_p: float = 1.0  # keep the smallest most-likely set with mass >= top_p (1: off)
    min_p: float = 0.0  # drop children with probability < min_p * max probability (0: off)

    def __post_init__(self) -> None:
        checks.real("temperature", self.temperature, 0.0, low_open=True)
        checks.integer("top_k", self.top_k, 0, 2**63 - 1)  # the kernel takes it as int64
        checks.real("top_p", self.top_p, 0.0, 1.0, low_open=True)
        checks.real("min_p", self.min_p, 0.0, 1.0)


def problem_logits(tree: Tree, policy: Policy, problems: Problems) -> np.ndarray:
    """(P, N) logits z_x(v) of every step for every problem (column 0, the root, is 0)."""
    problems.check_tree(tree)
    if policy.logit.shape[0] != tree.n_nodes:
        raise ValueError(f"policy has {policy.logit.shape[0]} nodes, the tree has {tree.n_nodes}")
    if policy.fork_weight.shape[1] != problems.feature_dim:
        raise ValueError(
            f"policy expects {policy.fork_weight.shape[1]} features, problems have {problems.feature_dim}"
        )
    z = np.broadcast_to(policy.logit, (len(problems), tree.n_nodes)).copy()
    z[:, 0] = 0.0
    parent_kind = np.full(tree.n_nodes, LEAF, dtype=np.int8)
    parent_kind[1:] = tree.kind[tree.parent[1:]]
    visible = np.flatnonzero(parent_kind == DECIPHERABLE)
    if visible.size and np.any(policy.skill):
        on_path = problems.on_correct_path(tree)
        z[:, visible] += policy.skill[tree.parent[visible]] * on_path[:, visible]
    fork_children = np.flatnonzero(parent_kind == FORK)
    if fork_children.size and problems.feature_dim:
        z[:, fork_children] += problems.features @ policy.fork_weight[fork_children].T
    return z


@numba.njit(cache=True)
def _decode_row(z, temperature, top_k, top_p, min_p, out):
    """Decoded softmax of one node's child logits ``z`` into ``out`` (same length)."""
    m = z.shape[0]
    softmax_children(z, 0, m, temperature, out)
    if z.max() == -np.inf:  # no child can be taken: spread uniformly, nothing to filter
        return
    if top_k == 0 and top_p >= 1.0 and min_p <= 0.0:
        return
    order = np.argsort(-out, kind="mergesort")  # stable: ties keep child order
    keep = np.zeros(m, dtype=np.bool_)
    cum = 0.0
    pmax = out[order[0]]
    for rank in range(m):
        i = order[rank]
        if top_k > 0 and rank >= top_k:
            break
        if rank > 0 and cum >= top_p:  # the most likely child is always kept
            break
        if out[i] < min_p * pmax:
            break
        keep[i] = True
        cum += out[i]
    total = 0.0
    for i in range(m):
        if not keep[i]:
            out[i] = 0.0
        total += out[i]
    for i in range(m):
        out[i] /= total


@numba.njit(cache=True, nogil=True)  # the fit's predictor runs arms on threads
def _transition_probs_kernel(child_start, logits, temperature, top_k, top_p, min_p, out):
    """out[p, v] = decoded softmax probability of the step into v for problem p; out[:, 0] = 1."""
    n_nodes = child_start.shape[0] - 1
    for p in range(logits.shape[0]):
        out[p, 0] = 1.0
        for u in range(n_nodes):
            a, b = child_start[u], child_start[u + 1]
            if b > a:
                _decode_row(logits[p, a:b], temperature, top_k, top_p, min_p, out[p, a:b])


def transition_probs(tree: Tree, logits: np.ndarray, decoding: Decoding = Decoding()) -> np.ndarray:
    """(P, N) step probabilities from (P, N) logits, per node, after the decoding transforms.

    Logits are real numbers or -inf (a step never taken); NaN and +inf are rejected."""
    logits = checks.logit_rows(logits, tree.n_nodes)
    out = np.empty_like(logits)
    _transition_probs_kernel(
        tree.child_start, logits, float(decoding.temperature), int(decoding.top_k),
        float(decoding.top_p), float(decoding.min_p), out,
    )
    return out


def transition_probs_reference(tree: Tree, logits: np.ndarray, decoding: Decoding = Decoding()) -> np.ndarray:
    """NumPy reference for :func:`transition_probs`, vectorised over problems, a loop over nodes."""
    logits = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    out = np.ones_like(logits)
    for u in np.flatnonzero(tree.n_children > 0):
        a, b = tree.child_start[u], tree.child_start[u + 1]
        z = logits[:, a:b] / decoding.temperature
        zmax = z.max(axis=1, keepdims=True)
        dead = ~np.isfinite(zmax[:, 0])
        e = np.exp(z - np.where(np.isfinite(zmax), zmax, 0.0))
        denom = e.sum(axis=1, keepdims=True)
        q = e / np.where(denom > 0, denom, 1.0)
        q[dead] = 1.0 / (b - a)  # every logit -inf: spread uniformly, no filtering (as the kernel)
        order = np.argsort(-q, axis=1, kind="stable")
        sorted_q = np.take_along_axis(q, order, axis=1)
        # mass strictly ahead of each rank: an exclusive running sum, added in rank order
        before = np.concatenate([np.zeros((q.shape[0], 1)), np.cumsum(sorted_q, axis=1)[:, :-1]], axis=1)
        rank = np.arange(b - a)[None, :]
        keep_sorted = (before < decoding.top_p) | (rank == 0)
        if decoding.top_k:
            keep_sorted &= rank < decoding.top_k
        keep_sorted &= sorted_q >= decoding.min_p * sorted_q[:, :1]
        keep_sorted = np.cumprod(keep_sorted, axis=1).astype(bool)  # filters cut a prefix of the ranking
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        if decoding.top_k or decoding.top_p < 1.0 or decoding.min_p > 0.0:
            q = np.where(keep, q, 0.0)
            q = q / q.sum(axis=1, keepdims=True)
            q[dead] = 1.0 / (b - a)
        out[:, a:b] = q
    return out
