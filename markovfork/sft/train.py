"""SFT dynamics as generators of per-epoch training states: analytic (full-batch gradient descent
on the exact data distribution) and sampled (a finite sampled dataset, minibatch SGD).

Both minimise the mean step cross-entropy L = sum_i w_i (-log pi(y_i | u_i)) / sum_i w_i and
follow the gradient flow dparams/dt = -lr grad L for one unit of time per epoch.
Analytic: ``steps_per_epoch`` full-batch steps ``params -= (lr / steps_per_epoch) grad L``
(a stable discretisation of the flow). Sampled: each minibatch B steps
``params -= lr * grad_B / sum_i w_i`` (the batch's summed gradient over the *dataset's* total
weight), so one epoch of minibatches also moves by about ``lr * grad L`` and the two engines
agree as batches and datasets grow.

Training does not evaluate: each trainer yields a :class:`TrainingState` after every epoch
(epoch 0 is the base model) and the caller (``markovfork.sft.simulate``) scores the ones it wants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from markovfork.plumbing.seeds import seed_sequence
from markovfork.sft.data import SFTMix, Steps, sample_trajectories, teacher_trajectories, trajectory_steps
from markovfork.sft.model import SFTParams, fork_children, fused_step_gradient, skill_groups
from markovfork.sft.config import TrainSettings
from markovfork.tasks.path_star import PathStar
from markovfork.model.tree import DECIPHERABLE

__all__ = ["TrainingState", "TRAINERS", "train_analytic", "train_sampled", "derive_seeds"]


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent streams for the task, the data, the minibatch order and the rollouts: the
    children ``SeedSequence(seed).spawn(4)`` (kept as they are: every published number uses them;
    ``seeds.seed_sequence(seed)`` is that sequence, the seed checked)."""
    names = ("task", "data", "order", "rollouts")
    children = seed_sequence(seed).spawn(len(names))
    return {n: int(c.generate_state(1)[0]) for n, c in zip(names, children)}


class _DualLogits:
    """Per-problem logits of the SFT policy in dual form, for a fixed set of problems.

    W starts at 0 and every gradient step adds ``-scale g^T phi_train``, so W = A^T phi_train for
    a (P_train, F) coefficient matrix A (stored transposed, (F, P_train)), exactly. Then, for problems with features phi,

        z = log edge_prob + theta + s D + scatter_fc((phi phi_train^T) A),

    with D[p, v] = [parent of v decipherable and v on a correct path of p] and s the skill (shared,
    or that of v's mode: ``skill_groups``). The Gram matrix is
    computed once, so a step costs O(P P_train F) instead of O(P d F).
    """

    def __init__(self, tree, problems, train_features: np.ndarray, fc: np.ndarray, skill_offset=None,
                 n_skills: int = 1):
        self.tree, self.fc = tree, fc
        self.skill_group = skill_groups(tree, n_skills)
        self.child_group = self.skill_group[np.maximum(tree.parent, 0)]  # the skill group of each step's parent
        # fixed per-problem offsets of the decipherable-step skill (None: every problem has the shared skill)
        self.skill_offset = None if skill_offset is None else np.asarray(skill_offset, dtype=np.float64)
        self.fc_col = np.full(tree.n_nodes, -1, dtype=np.int64)
        self.fc_col[fc] = np.arange(fc.size)
        parent_visible = np.zeros(tree.n_nodes, dtype=bool)
        parent_visible[1:] = tree.kind[tree.parent[1:]] == DECIPHERABLE
        self.visible = problems.on_correct_path(tree) & parent_visible
        self.gram_t = np.ascontiguousarray(train_features @ problems.features.T)  # (P_train, P)

    def fork_logits(self, coef_t: np.ndarray, rows=None) -> np.ndarray:
        """(F, P) feature part W phi of the fork children's logits ((F, B) for ``rows``)."""
        return coef_t @ (self.gram_t if rows is None else self.gram_t[:, rows])

    def logits(self, theta: np.ndarray, coef_t: np.ndarray, skill) -> np.ndarray:
        """(P, N) logits z of every step of every problem (column 0, the root, is 0)."""
        own = skill if np.ndim(skill) == 0 else np.asarray(skill)[self.child_group]
        own = own if self.skill_offset is None else own + self.skill_offset[:, None]
        z = np.where(self.visible, own, 0.0) + (self.tree.edge_logit + theta)
        z[:, 0] = 0.0
        z[:, self.fc] += self.fork_logits(coef_t).T
        return z

    def gradient(self, state: "_State", steps: Steps, idx=None, rows=None, local=None):
        """(grad w.r.t. fork-child logits (F, B), dL/ds, loss) of the steps ``idx`` (all when None);
        ``rows`` are the problems those steps use and ``local`` their positions within ``rows``."""
        sel = slice(None) if idx is None else idx
        return fused_step_gradient(
            self.tree, self.tree.edge_logit + state.theta, self.fc_col,
            self.visible if rows is None else self.visible[rows],
            self.fork_logits(state.coef_t, rows),
            state.skill,
            steps.problem[sel] if local is None else local,
            steps.node[sel], steps.target[sel], steps.weight[sel],
            None if self.skill_offset is None else (self.skill_offset if rows is None else self.skill_offset[rows]),
            self.skill_group,
        )


@dataclass
class _State:
    """Trainable state in dual form: W = coef_t phi_train on the fork children ``fc``."""

    theta: np.ndarray  # (N,) shared logit offsets (non-zero on fork children only)
    coef_t: np.ndarray  # (F, P_train) dual coefficients
    skill: float | np.ndarray  # shared, or one per mode ((modes,))
    rate: np.ndarray | None = None  # (F, 1) memorisation rate of each fork child's W phi (None: all 1)

    def step(self, grad_fc: np.ndarray, grad_skill: float, fc: np.ndarray, rows, scale: float) -> None:
        """Gradient step of size ``scale`` (lr / total weight); ``grad_fc`` is (F, B). A fork child
        c whose logit is gamma_c W_c phi moves it at gamma_c^2 times the rate: rate[c] = gamma_c^2
        scales that child's dual step (the shared theta is not scaled)."""
        self.theta[fc] -= scale * grad_fc.sum(axis=1)
        step = grad_fc if self.rate is None else self.rate * grad_fc
        if rows is None:
            self.coef_t -= scale * step
        else:
            self.coef_t[:, rows] -= scale * step  # rows are unique
        self.skill = self.skill - scale * grad_skill  # a new array: snapshots keep theirs


@dataclass(frozen=True, eq=False)
class TrainingState:
    """The policy after ``epoch`` epochs (a snapshot, in dual form) and the mean training loss:
    at these parameters (analytic, and epoch 0 of the sampled engine) or accumulated over the
    epoch's minibatches (sampled)."""

    epoch: int
    train_loss: float
    theta: np.ndarray = field(repr=False)  # (N,) shared logit offsets
    coef_t: np.ndarray = field(repr=False)  # (F, P_train) dual coefficients of W
    skill: float | np.ndarray  # the decipherable-step skill: shared, or one per mode ((modes,))
    _test: _DualLogits = field(repr=False)
    _train_features: np.ndarray = field(repr=False)

    def test_logits(self) -> np.ndarray:
        """(P_test, N) logits of every step of every test problem."""
        return self._test.logits(self.theta, self.coef_t, self.skill)

    def params(self) -> SFTParams:
        """The primal parameters, with W = coef_t phi_train materialised ((N, d))."""
        weight = np.zeros((self.theta.shape[0], self._train_features.shape[1]))
        weight[self._test.fc] = self.coef_t @ self._train_features
        return SFTParams(self.theta.copy(), weight, self.skill)


def mode_rate(tree, fc: np.ndarray, mode_memorisation: float) -> np.ndarray | None:
    """(F, 1) memorisation rate of each fork child: ``mode_memorisation`` for the root's children
    (the mode choice), 1 for the others (the arm choice); None when it is 1 (every rate 1)."""
    if mode_memorisation == 1.0:
        return None
    if not (np.isfinite(mode_memorisation) and mode_memorisation >= 0):
        raise ValueError(f"mode_memorisation must be a finite number >= 0, got {mode_memorisation!r}")
    return np.where(tree.parent[fc] == 0, float(mode_memorisation), 1.0)[:, None]


def _setup(ps: PathStar, skill_offset=None, mode_memorisation: float = 1.0, skill_per_mode: bool = False):
    tree, train = ps.tree, ps.train
    fc = fork_children(tree)
    n_skills = int(tree.n_children[0]) if skill_per_mode else 1  # the modes: the root's children
    skill = np.full(n_skills, float(ps.task.base_skill)) if skill_per_mode else ps.task.base_skill
    state = _State(np.zeros(tree.n_nodes), np.zeros((fc.size, len(train))), skill, mode_rate(tree, fc, mode_memorisation))
    train_off, test_off = (None, None) if skill_offset is None else skill_offset
    test_logits = _DualLogits(tree, ps.test, train.features, fc, test_off, n_skills)

    def snapshot(epoch: int, loss: float) -> TrainingState:
        return TrainingState(epoch, loss, state.theta.copy(), state.coef_t.copy(), state.skill, test_logits, train.features)

    return fc, state, _DualLogits(tree, train, train.features, fc, train_off, n_skills), snapshot


def substep_fractions(n: int, ratio: float | None) -> np.ndarray:
    """(n,) shares of an epoch's gradient-flow time taken by its n substeps: equal, or (``ratio``
    > 1) growing geometrically by ``ratio`` (small first steps, where the flow moves fastest)."""
    if ratio is None or ratio == 1.0 or n == 1:
        return np.full(n, 1.0 / n)
    w = float(ratio) ** np.arange(n)
    return w / w.sum()


def train_analytic(ps: PathStar, mix: SFTMix, settings: TrainSettings, seed: int, *, lr_factors=None,
                   skill_offset=None, first_epoch_ratio: float | None = None,
                   mode_memorisation: float = 1.0, skill_per_mode: bool = False) -> Iterator[TrainingState]:
    """Full-batch gradient descent on the exact teacher distribution: yields the state at epochs
    0, 1, ..., ``settings.epochs`` (the loss taken at the state's own parameters).

    Options (defaults: the plain flow): ``lr_factors`` (epochs,) multiplies epoch e's gradient-flow
    time ``lr`` by ``lr_factors[e - 1]`` (a learning-rate schedule); ``skill_offset`` = (train, test)
    fixed per-problem offsets of the skill ((P_train,) and (P_test,) arrays); ``first_epoch_ratio``
    spaces the first epoch's substeps geometrically by that ratio (:func:`substep_fractions`);
    ``mode_memorisation`` is the per-problem memorisation rate of the mode choice (the root's
    children) relative to the arm choice's (:func:`mode_rate`; 0: the mode is shared only);
    ``skill_per_mode`` gives each mode its own decipherable-step skill, moved by that mode's steps
    only (``sft.model``; all start at the task's base skill)."""
    steps = trajectory_steps(ps.tree, teacher_trajectories(ps, mix, derive_seeds(seed)["data"]), ps.train.start)
    total_w = float(steps.weight.sum())
    fc, state, train_logits, snapshot = _setup(ps, skill_offset, mode_memorisation, skill_per_mode)
    if lr_factors is not None:
        lr_factors = np.asarray(lr_factors, dtype=np.float64)
        if lr_factors.shape != (settings.epochs,) or not np.all(np.isfinite(lr_factors) & (lr_factors >= 0)):
            raise ValueError(f"lr_factors must be {settings.epochs} finite non-negative numbers, got {lr_factors.tolist()}")
    first = substep_fractions(settings.steps_per_epoch, first_epoch_ratio)
    for epoch in range(settings.epochs + 1):
        lr = settings.lr * (1.0 if lr_factors is None or epoch >= settings.epochs else lr_factors[epoch])
        geometric = epoch == 0 and first_epoch_ratio is not None
        for substep in range(settings.steps_per_epoch if epoch < settings.epochs else 1):
            grad_fc, grad_skill, loss = train_logits.gradient(state, steps)
            if substep == 0:
                yield snapshot(epoch, loss / total_w)
            if epoch < settings.epochs:
                scale = lr * first[substep] / total_w if geometric else lr / settings.steps_per_epoch / total_w
                state.step(grad_fc, grad_skill, fc, None, scale)


def _batches(steps: Steps, order: np.ndarray, batch_size: int):
    """Step indices of each minibatch of trajectories, in ``order``."""
    for b in range(0, order.size, batch_size):
        traj = order[b : b + batch_size]
        yield np.concatenate([np.arange(steps.offsets[t], steps.offsets[t + 1]) for t in traj])


def train_sampled(ps: PathStar, mix: SFTMix, settings: TrainSettings, seed: int) -> Iterator[TrainingState]:
    """Minibatch SGD on a sampled dataset: yields the state at epochs 0, 1, ..., ``settings.epochs``
    (epoch 0: the loss at the base parameters; later: the mean loss over the epoch's minibatches)."""
    seeds = derive_seeds(seed)
    data = sample_trajectories(ps, mix, settings.trajectories_per_problem, seeds["data"])
    steps = trajectory_steps(ps.tree, data, ps.train.start)
    total_w = float(steps.weight.sum())
    fc, state, train_logits, snapshot = _setup(ps)
    order_rng = np.random.default_rng(seeds["order"])
    scale = settings.lr / total_w
    yield snapshot(0, train_logits.gradient(state, steps)[2] / total_w)
    for epoch in range(1, settings.epochs + 1):
        loss = 0.0
        for idx in _batches(steps, order_rng.permutation(len(data)), settings.batch_size):
            rows, local = np.unique(steps.problem[idx], return_inverse=True)
            grad_fc, grad_skill, batch_loss = train_logits.gradient(state, steps, idx, rows, local.astype(np.int64))
            loss += batch_loss
            state.step(grad_fc, grad_skill, fc, rows, scale)
        yield snapshot(epoch, loss / total_w)


TRAINERS = {"analytic": train_analytic, "sampled": train_sampled}
