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
from markovfork.rl.engines import (
    History, Params, ProblemArrays, TreeArrays, train_analytic_kernel, train_sampled_kernel,
)
from markovfork.plumbing.seeds import child_seed
from markovfork.engines.sampled.kernel_tree import kernel_tree
from markovfork.engines.sampled.streams import stream_states
from markovfork.model.kernels import work_spans
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


def iteration_spans(config: RLConfig, tree: Tree, n_prob: int, chunk_iterations: int | None = None):
    """Spans of the iterations 0..I (the last only evaluates) for one kernel call each: about
    ``markovfork.model.kernels.CALL_BUDGET`` work units (node visits) a call, or
    ``chunk_iterations`` iterations."""
    n = tree.n_nodes
    passes = 1 + (config.ppo_epochs if config.method == "ppo" else 0)
    if config.engine == "analytic":
        per_iteration = passes * n_prob * 10 * n  # softmax, reach, value, gradient: ~10 visits a node
    else:
        depth = int(kernel_tree(tree).height[0]) + 1
        per_iteration = passes * config.batch_instances * (4 * n + (config.group_size + config.reject_easy) * depth)
    if chunk_iterations is not None:
        return work_spans(config.iterations + 1, 1, checks.integer("chunk_iterations", chunk_iterations, 1))
    return work_spans(config.iterations + 1, per_iteration)


def train_rl(
    model: LogitModel,
    problems: Problems,
    config: RLConfig,
    start: RLStart,
    weights=None,
    snapshots=None,
    chunk_iterations: int | None = None,
) -> RLTrace:
    """Run ``config`` on the training instances ``problems`` (sampled in proportion to
    ``weights``, default equal) from ``start``; snapshots at the iterations ``snapshots``
    (default: 0 and the last). The KL penalty and the ``base`` reject reference use the
    starting policy. ``chunk_iterations``: iterations per kernel call (default: by a work
    estimate, :func:`iteration_spans`); the result does not depend on it."""
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
    n_snap = snap_at.size
    settings = config.settings()
    arrays = TreeArrays(tree.child_start, tree.parent, model.base, model.tie, model.fc_col)
    data = ProblemArrays(problems.start, visible, np.ascontiguousarray(problems.correct), weights,
                         np.cumsum(weights), ref_probs, p_base)
    params = Params(theta, skill, fork, coef, gram)
    history = History(snap_at, np.empty((n_snap, model.n_theta)), np.empty(n_snap), np.empty((n_snap, *fork.shape)),
                      np.empty(config.iterations + 1), np.zeros(config.iterations))
    if config.engine == "analytic":
        kernel, extra = train_analytic_kernel, ()
    else:
        kernel, extra = train_sampled_kernel, (stream_states(child_seed(config.seed, "rl-rollouts"), 1)[0].copy(),)
    snap = 0
    # spans of iterations, the interpreter (and its signal handlers) reached between them; the
    # parameters, the stream state and the snapshot index carry over, so the result is the same
    for lo, hi in iteration_spans(config, tree, n_prob, chunk_iterations):
        snap = kernel(settings, arrays, data, params, history, *extra, lo, hi, snap)
    return RLTrace(config, snap_at, history.theta, history.skill, history.coef, history.reward, history.rejected)
