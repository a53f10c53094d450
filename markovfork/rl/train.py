"""RL post-training of a tree policy: the Python layer over :mod:`markovfork.rl.engines`.

A :class:`LogitModel` says how the policy's step logits are built from the trainable
parameters (``z_x(v) = base(v) + theta[tie(v)] + s [visible_x(v)] + F_x[fc(v)]``, see
:mod:`markovfork.rl.tree_ops`); :func:`train_rl` runs one method on a set of training instances
and returns the parameters at the requested iterations (:class:`RLTrace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from markovfork.plumbing import checks
from markovfork.model.problems import Problems
from markovfork.rl.config import RLConfig
from markovfork.rl.engines import train_analytic_kernel, train_sampled_kernel
from markovfork.plumbing.seeds import child_seed
from markovfork.engines.sampled.streams import stream_states
from markovfork.model.tree import DECIPHERABLE, Tree

__all__ = ["LogitModel", "RLStart", "RLTrace", "train_rl", "step_logits", "tabular_model"]


@dataclass(frozen=True, eq=False)
class LogitModel:
    """Fixed structure of the RL policy's logits on ``tree``."""

    tree: Tree
    base: np.ndarray  # (N,) fixed logit part
    tie: np.ndarray  # (N,) int64: trainable logit theta[tie[v]] (-1: none)
    n_theta: int
    fc_col: np.ndarray  # (N,) int64: column of v's fork logit (-1: not a fork child)
    n_fork: int
    uses_skill: bool  # add the shared skill s at the visible step of decipherable nodes

    def visible(self, problems: Problems) -> np.ndarray:
        """(P, N) bool: v is on a correct path of x and its parent is decipherable (skill steps)."""
        if not self.uses_skill:
            return np.zeros((len(problems), self.tree.n_nodes), dtype=bool)
        parent_visible = np.zeros(self.tree.n_nodes, dtype=bool)
        parent_visible[1:] = self.tree.kind[self.tree.parent[1:]] == DECIPHERABLE
        return problems.on_correct_path(self.tree) & parent_visible


def tabular_model(tree: Tree, tie: np.ndarray | None = None, n_theta: int | None = None) -> LogitModel:
    """A tabular policy: ``z(v) = theta[tie(v)]`` (default: one logit per node, ``tie = v``;
    the root's step is not a decision)."""
    n = tree.n_nodes
    if tie is None:
        tie = np.arange(n, dtype=np.int64)
        tie[0] = -1
    tie = checks.array("tie", tie, np.int64)
    n_theta = int(tie.max()) + 1 if n_theta is None else checks.integer("n_theta", n_theta, 0)
    if tie.shape != (n,) or tie.min() < -1 or tie.max() >= n_theta:
        raise ValueError(f"tie must hold {n} indices in -1..{n_theta - 1}")
    return LogitModel(tree, np.zeros(n), tie, n_theta, np.full(n, -1, dtype=np.int64), 0, False)


@dataclass(frozen=True, eq=False)
class RLStart:
    """Where RL starts: tied logits, skill, and the training problems' fork logits with the Gram
    matrix of their features (``fork`` (P, F), ``gram`` (P, P); empty for a tabular model)."""

    theta: np.ndarray
    skill: float = 0.0
    fork: np.ndarray | None = None
    gram: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class RLTrace:
    """Parameters at ``iterations`` and the per-iteration training signals."""

    config: RLConfig
    iterations: np.ndarray  # (S,) iterations of the snapshots
    theta: np.ndarray  # (S, T)
    skill: np.ndarray  # (S,)
    coef: np.ndarray  # (S, P, F) dual coefficients added to W since the start
    reward: np.ndarray = field(repr=False)  # (I+1,) expected (analytic) or sampled mean reward
    rejected: np.ndarray = field(repr=False)  # (I,) share of the update removed by reject-easy


def step_logits(model: LogitModel, problems: Problems, theta, skill: float = 0.0, fork=None) -> np.ndarray:
    """(P, N) step logits of ``problems`` for the given parameters (fork logits (P, F))."""
    z = np.broadcast_to(model.base, (len(problems), model.tree.n_nodes)).copy()
    tied = model.tie >= 0
    z[:, tied] += np.asarray(theta)[model.tie[tied]]
    if model.uses_skill and skill:
        z += skill * model.visible(problems)
    if model.n_fork:
        cols = np.flatnonzero(model.fc_col >= 0)
        z[:, cols] += np.asarray(fork)[:, model.fc_col[cols]]
    z[:, 0] = 0.0
    return z


def _softmax_probs(model: LogitModel, problems: Problems, theta, skill, fork) -> np.ndarray:
    from markovfork.model.policy import transition_probs

    return transition_probs(model.tree, step_logits(model, problems, theta, skill, fork))


def train_rl(
    model: LogitModel,
    problems: Problems,
    config: RLConfig,
    start: RLStart,
    weights=None,
    snapshots=None,
) -> RLTrace:
    """Run ``config`` on the training instances ``problems`` (sampled in proportion to
    ``weights``, default equal) from ``start``; snapshots at the iterations ``snapshots``
    (default: 0 and the last). The KL penalty and the ``base`` reject reference use the
    starting policy."""
    tree = model.tree
    problems.check_tree(tree)
    n_prob = len(problems)
    if weights is None:
        weights = np.full(n_prob, 1.0 / n_prob)
    weights = checks.array("weights", weights, np.float64)
    if weights.shape != (n_prob,) or not np.all(np.isfinite(weights)) or weights.min() < 0 or weights.sum() <= 0:
        raise ValueError(f"weights must be {n_prob} non-negative finite numbers with a positive sum")
    weights = weights / weights.sum()
    snaps = [0, config.iterations] if snapshots is None else snapshots
    snap_at = np.unique(np.array([checks.integer("snapshots", s) for s in snaps], dtype=np.int64))
    if snap_at.size and (snap_at[0] < 0 or snap_at[-1] > config.iterations):
        raise ValueError(f"snapshots must lie in 0..{config.iterations}, got {snap_at.tolist()}")
    theta = np.array(checks.array("start.theta", start.theta, np.float64), dtype=np.float64)
    if theta.shape != (model.n_theta,):
        raise ValueError(f"start.theta must have {model.n_theta} entries, got {theta.shape}")
    if np.any(np.isnan(theta) | (theta == np.inf)):
        bad = theta[np.isnan(theta) | (theta == np.inf)][0]
        raise ValueError(f"start.theta must be real numbers or -inf (a step never taken), got {bad}")
    checks.real("start.skill", start.skill)
    fork = np.zeros((n_prob, model.n_fork)) if start.fork is None else np.array(start.fork, dtype=np.float64)
    gram = np.zeros((0, 0)) if start.gram is None else np.ascontiguousarray(start.gram, dtype=np.float64)
    if fork.shape != (n_prob, model.n_fork) or (model.n_fork and gram.shape != (n_prob, n_prob)):
        raise ValueError(f"start.fork must be ({n_prob}, {model.n_fork}) and start.gram ({n_prob}, {n_prob})")
    # the kernels read the Gram matrix only to move fork logits: without fork columns it is never read
    skill = np.array([float(start.skill)])
    coef = np.zeros_like(fork)
    visible = np.ascontiguousarray(model.visible(problems))
    ref_probs = _softmax_probs(model, problems, theta, float(start.skill), fork)
    from markovfork.engines.exact import success_probability

    p_base = success_probability(tree, ref_probs, problems.correct, problems.start)
    ints, floats = config.packed()
    n_snap = snap_at.size
    theta_hist = np.empty((n_snap, model.n_theta))
    skill_hist = np.empty(n_snap)
    coef_hist = np.empty((n_snap, *fork.shape))
    reward = np.empty(config.iterations + 1)
    rejected = np.zeros(config.iterations)
    correct = np.ascontiguousarray(problems.correct)
    common = (ints, floats, tree.child_start, tree.parent, model.base, model.tie, visible, model.fc_col, gram,
              correct, problems.start)
    if config.engine == "analytic":
        train_analytic_kernel(*common, weights, ref_probs, p_base, theta, skill, fork, coef,
                              snap_at, theta_hist, skill_hist, coef_hist, reward, rejected)
    else:
        state = stream_states(child_seed(config.seed, "rl-rollouts"), 1)[0].copy()
        train_sampled_kernel(*common, np.cumsum(weights), ref_probs, state, theta, skill, fork, coef,
                             snap_at, theta_hist, skill_hist, coef_hist, reward, rejected)
    return RLTrace(config, snap_at, theta_hist, skill_hist, coef_hist, reward, rejected)
