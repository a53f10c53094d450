"""Trainable parameters of the SFT policy and the exact cross-entropy gradient.

Parameters: the shared logits ``theta`` of steps out of forks, the feature weights ``W`` of those
steps, and one decipherable-step skill ``s`` shared by every decipherable node (the logits of
decipherable steps are otherwise frozen at the base model's). For a step u -> y of problem x with
weight w, the loss is ``-w log pi_x(y | u)`` and, with g(c) = pi_x(c | u) - [c = y],

    dL/dtheta(c) = w g(c),   dL/dW(c) = w g(c) phi(x)   (u a fork),
    dL/ds = w sum_c g(c) [c on a correct path of x]      (u decipherable).

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

__all__ = ["SFTParams", "StepGradient", "fork_children", "step_probs", "fused_step_gradient", "step_gradient_reference"]


@dataclass(frozen=True, eq=False)
class SFTParams:
    """The trainable state; ``to_policy`` turns it into a :class:`~markovfork.model.policy.Policy`."""

    theta: np.ndarray  # (N,) offsets added to the base logits of steps out of forks
    weight: np.ndarray  # (N, d) feature weights W of steps out of forks
    skill: float  # shared decipherable-step skill s

    def to_policy(self, tree: Tree) -> Policy:
        base = Policy.base(tree, self.weight.shape[1], self.skill)
        return base.with_(logit=base.logit + self.theta, fork_weight=self.weight)


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
    skill: float  # dL/ds
    loss: float  # sum of -w log pi(y)


@numba.njit(cache=True, nogil=True)  # the fit's predictor runs arms on threads
def _fused_step_kernel(
    child_start, kind, base_logit, fc_col, visible, fork_logit, skill, skill_offset, problem, node, target, weight,
    grad_fc, scalars
):
    """Softmax and gradient at each step's node straight from the logit parts, without forming
    the (P, N) probability table. z(c) = base_logit[c] + skill [visible[p, c]] + fork_logit[p, fc_col[c]]
    (the last term for fork children only; fork_logit is stored (F, P)); a problem's skill is
    ``skill + skill_offset[p]`` (its fixed per-problem offset). Accumulates w g(c) into
    grad_fc[fc_col[c], p];
    scalars[0] += loss, scalars[1] += dL/ds."""
    z = np.empty(64)
    q = np.empty(64)
    for i in range(problem.shape[0]):
        # unsigned problem, node and child ids: Numba emits no negative-index wraparound code
        p, u, y, w = np.uint64(problem[i]), np.uint64(node[i]), np.uint64(target[i]), weight[i]
        a, b = np.uint64(child_start[u]), np.uint64(child_start[u + U1])
        m = b - a
        skill_p = skill + skill_offset[p]
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
        scalars[0] -= w * (np.log(q[y - a]) if q[y - a] > 0 else np.log(1e-300))  # guard: pruned step
        visible_node = kind[u] == 0  # DECIPHERABLE
        s_grad = 0.0
        for c in range(a, b):
            g = q[c - a] - (1.0 if c == y else 0.0)
            if fc_col[c] >= 0:
                grad_fc[fc_col[c], p] += w * g
            if visible_node and visible[p, c]:
                s_grad += g
        scalars[1] += w * s_grad


def fused_step_gradient(tree: Tree, base_logit, fc_col, visible, fork_logit, skill, problem, node, target, weight,
                        skill_offset=None):
    """Gradient of the summed step loss w.r.t. the fork-child logits (F, P) and the skill, and the
    loss, computed per step from the logit parts (see :func:`_fused_step_kernel`). ``skill_offset``:
    (P,) fixed per-problem offsets of the skill (None: none); dL/ds is that of the shared skill.

    Equals :func:`step_gradient_reference` on the full probability table, restricted to the fork
    children (tested). Problem, node and target ids must be in range (not checked: the kernel
    reads them as unsigned indices)."""
    grad_fc = np.zeros_like(fork_logit)
    scalars = np.zeros(2)
    offset = np.zeros(visible.shape[0]) if skill_offset is None else np.ascontiguousarray(skill_offset, dtype=np.float64)
    _fused_step_kernel(
        tree.child_start, tree.kind, base_logit, fc_col, visible, fork_logit, float(skill), offset,
        problem, node, target, weight, grad_fc, scalars,
    )
    return grad_fc, float(scalars[1]), float(scalars[0])


def step_gradient_reference(tree: Tree, probs, on_path, problem, node, target, weight) -> StepGradient:
    """Gradient from a full (P, N) probability table, one step at a time (NumPy): the reference
    for :func:`fused_step_gradient`."""
    grad = np.zeros_like(probs)
    skill = loss = 0.0
    for p, u, y, w in zip(problem, node, target, weight):
        kids = np.arange(tree.child_start[u], tree.child_start[u + 1])
        g = probs[p, kids] - (kids == y)
        grad[p, kids] += w * g
        loss -= w * np.log(max(probs[p, y], 1e-300))
        if tree.kind[u] == DECIPHERABLE:
            skill += w * float(np.sum(g * on_path[p, kids]))
    return StepGradient(grad, skill, loss)
