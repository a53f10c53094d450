"""Trainable parameters of the SFT policy and the exact cross-entropy gradient.

Parameters: the shared logits ``theta`` of steps out of forks, the feature weights ``W`` of those
steps, and the decipherable-step skill ``s``: one value shared by every decipherable node, or one
per mode (``s_m`` at the decipherable nodes below the root's child m: forward and reverse walks are
different skills, each learnt from its own steps). The logits of decipherable steps are otherwise
frozen at the base model's. For a step u -> y of problem x with
weight w, the loss is ``-w log pi_x(y | u)`` and, with g(c) = pi_x(c | u) - [c = y],

    dL/dtheta(c) = w g(c),   dL/dW(c) = w g(c) phi(x)   (u a fork),
    dL/ds_m(u) = w sum_c g(c) [c on a correct path of x]      (u decipherable, m(u) its skill group).

Losses and gradients are normalised by the total step weight of the whole dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from markovfork.model.indices import U0, U1
from markovfork.model.kernels import softmax_children
from markovfork.model.policy import Decoding, Policy, problem_logits, transition_probs
from markovfork.model.problems import Problems
from markovfork.model.tree import DECIPHERABLE, FORK, Tree

__all__ = ["SFTParams", "StepGradient", "fork_children", "skill_groups", "step_probs", "fused_step_gradient",
           "step_gradient_reference"]


@dataclass(frozen=True, eq=False)
class SFTParams:
    """The trainable state; ``to_policy`` turns it into a :class:`~markovfork.model.policy.Policy`."""

    theta: np.ndarray  # (N,) offsets added to the base logits of steps out of forks
    weight: np.ndarray  # (N, d) feature weights W of steps out of forks
    skill: float | np.ndarray  # decipherable-step skill: shared (a float) or one per mode ((modes,) array)

    def to_policy(self, tree: Tree) -> Policy:
        if np.ndim(self.skill) == 0:
            base = Policy.base(tree, self.weight.shape[1], float(self.skill))
        else:  # the base with skill 1 marks the nodes that carry one: scaled by each node's mode skill
            skills = np.asarray(self.skill, dtype=np.float64)
            base = Policy.base(tree, self.weight.shape[1], 1.0)
            base = base.with_(skill=base.skill * skills[skill_groups(tree, skills.size)])
        return base.with_(logit=base.logit + self.theta, fork_weight=self.weight)


def skill_groups(tree: Tree, n_groups: int = 1) -> np.ndarray:
    """(N,) int64 skill group of each node: 0 everywhere for one shared skill (``n_groups`` 1), or
    the index of the mode (the root's child, in order) whose subtree holds the node (``n_groups`` =
    the number of modes; the root itself: 0)."""
    group = np.zeros(tree.n_nodes, dtype=np.int64)
    if n_groups == 1:
        return group
    modes = tree.children(0)
    if n_groups != modes.size:
        raise ValueError(f"skill groups must be 1 (shared) or one per mode ({modes.size}), got {n_groups}")
    group[modes] = np.arange(modes.size)
    for v in range(1, tree.n_nodes):  # parents come before their children
        if tree.parent[v] != 0:
            group[v] = group[tree.parent[v]]
    return group


def fork_children(tree: Tree) -> np.ndarray:
    """Ids of the children of fork nodes: the steps whose theta and W are trained."""
    is_fork_child = np.zeros(tree.n_nodes, dtype=bool)
    is_fork_child[1:] = tree.kind[tree.parent[1:]] == FORK
    return np.flatnonzero(is_fork_child)


def step_probs(tree: Tree, params: SFTParams, problems: Problems, decoding: Decoding = Decoding()) -> np.ndarray:
    """(P, N) step probabilities of the policy ``params`` for ``problems``."""
    return transition_probs(tree, problem_logits(tree, params.to_policy(tree), problems), decoding)


@dataclass(frozen=True)
class StepGradient:
    """Gradient of the summed weighted step loss (not yet normalised), from the reference."""

    logit: np.ndarray  # (P, N): sum over a problem's steps of w g(c), per child c
    skill: float | np.ndarray  # dL/ds: shared (a float) or per skill group ((groups,))
    loss: float  # sum of -w log pi(y)


@numba.njit(cache=True, nogil=True)  # the fit's predictor runs arms on threads
def _fused_step_kernel(
    child_start, kind, base_logit, fc_col, visible, fork_logit, skills, group, skill_offset, problem, node, target,
    weight, grad_fc, out
):
    """Softmax and gradient at each step's node straight from the logit parts, without forming
    the (P, N) probability table. z(c) = base_logit[c] + s [visible[p, c]] + fork_logit[p, fc_col[c]]
    (the last term for fork children only; fork_logit is stored (F, P)); at node u the skill of
    problem p is s = ``skills[group[u]] + skill_offset[p]`` (its fixed per-problem offset).
    Accumulates w g(c) into grad_fc[fc_col[c], p], the loss into out[0] and dL/ds of skill group g
    into out[1 + g]."""
    z = np.empty(64)
    q = np.empty(64)
    for i in range(problem.shape[0]):
        # unsigned problem, node and child ids: Numba emits no negative-index wraparound code
        p, u, y, w = np.uint64(problem[i]), np.uint64(node[i]), np.uint64(target[i]), weight[i]
        a, b = np.uint64(child_start[u]), np.uint64(child_start[u + U1])
        m = b - a
        skill_p = skills[group[u]] + skill_offset[p]
        if m > np.uint64(z.shape[0]):
            z = np.empty(m)
            q = np.empty(m)
        for c in range(a, b):
            v = base_logit[c]
            if visible[p, c]:
                v += skill_p
            if fc_col[c] >= 0:
                v += fork_logit[fc_col[c], p]
            z[c - a] = v
        softmax_children(z, U0, m, 1.0, q)
        out[0] -= w * (np.log(q[y - a]) if q[y - a] > 0 else np.log(1e-300))  # guard: pruned step
        visible_node = kind[u] == 0  # DECIPHERABLE
        s_grad = 0.0
        for c in range(a, b):
            g = q[c - a] - (1.0 if c == y else 0.0)
            if fc_col[c] >= 0:
                grad_fc[fc_col[c], p] += w * g
            if visible_node and visible[p, c]:
                s_grad += g
        out[1 + group[u]] += w * s_grad


def fused_step_gradient(tree: Tree, base_logit, fc_col, visible, fork_logit, skill, problem, node, target, weight,
                        skill_offset=None, skill_group=None):
    """Gradient of the summed step loss w.r.t. the fork-child logits (F, P) and the skill, and the
    loss, computed per step from the logit parts (see :func:`_fused_step_kernel`). ``skill``: the
    shared skill (a float; dL/ds a float) or one per mode ((modes,); dL/ds (modes,),
    :func:`skill_groups`; ``skill_group``: those groups, if already computed); ``skill_offset``: (P,)
    fixed per-problem offsets of the skill (None: none).

    Equals :func:`step_gradient_reference` on the full probability table, restricted to the fork
    children (tested). Problem, node and target ids must be in range (not checked: the kernel
    reads them as unsigned indices)."""
    grad_fc = np.zeros_like(fork_logit)
    skills = np.atleast_1d(np.asarray(skill, dtype=np.float64))
    out = np.zeros(1 + skills.size)  # the loss, then dL/ds per skill group
    offset = np.zeros(visible.shape[0]) if skill_offset is None else np.ascontiguousarray(skill_offset, dtype=np.float64)
    _fused_step_kernel(
        tree.child_start, tree.kind, base_logit, fc_col, visible, fork_logit, skills,
        skill_groups(tree, skills.size) if skill_group is None else skill_group,
        offset, problem, node, target, weight, grad_fc, out,
    )
    return grad_fc, (float(out[1]) if np.ndim(skill) == 0 else out[1:]), float(out[0])


def step_gradient_reference(tree: Tree, probs, on_path, problem, node, target, weight, n_groups: int = 1) -> StepGradient:
    """Gradient from a full (P, N) probability table, one step at a time (NumPy): the reference
    for :func:`fused_step_gradient` (``n_groups``: 1 shared skill, or one per mode)."""
    grad = np.zeros_like(probs)
    group = skill_groups(tree, n_groups)
    skill, loss = np.zeros(n_groups), 0.0
    for p, u, y, w in zip(problem, node, target, weight):
        kids = np.arange(tree.child_start[u], tree.child_start[u + 1])
        g = probs[p, kids] - (kids == y)
        grad[p, kids] += w * g
        loss -= w * np.log(max(probs[p, y], 1e-300))
        if tree.kind[u] == DECIPHERABLE:
            skill[group[u]] += w * float(np.sum(g * on_path[p, kids]))
    return StepGradient(grad, float(skill[0]) if n_groups == 1 else skill, loss)
