"""SFT dynamics: analytic (full-batch gradient descent on the exact data distribution, exact
evaluation) and sampled (a finite sampled dataset, minibatch SGD, Monte Carlo evaluation).

Both minimise the mean step cross-entropy L = sum_i w_i (-log pi(y_i | u_i)) / sum_i w_i and
follow the gradient flow dparams/dt = -lr grad L for one unit of time per epoch.
Analytic: ``steps_per_epoch`` full-batch steps ``params -= (lr / steps_per_epoch) grad L``
(a stable discretisation of the flow). Sampled: each minibatch B steps
``params -= lr * grad_B / sum_i w_i`` (the batch's summed gradient over the *dataset's* total
weight), so one epoch of minibatches also moves by about ``lr * grad L`` and the two engines
agree as batches and datasets grow.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from markovfork.policy import Decoding
from markovfork.sft.data import SFTMix, Steps, sample_trajectories, teacher_trajectories, trajectory_steps
from markovfork.sft.evaluate import Evaluation, evaluate_exact, evaluate_sampled
from markovfork.policy import transition_probs
from markovfork.sft.model import SFTParams, fork_children, fused_step_gradient
from markovfork.tree import DECIPHERABLE
from markovfork.sft.task import PathStar

__all__ = ["EpochRecord", "TrainResult", "TrainSettings", "train_analytic", "train_sampled", "derive_seeds"]


@dataclass(frozen=True)
class TrainSettings:
    """How to fine-tune and when to evaluate."""

    epochs: int = 50  # training epochs
    lr: float = 20.0  # learning rate: parameters move by lr * grad L per epoch (gradient-flow time)
    eval_epochs: tuple[int, ...] | None = None  # epochs at which the test set is scored (None: 0, 1, 2, 4, ..., epochs)
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)  # the k of pass@k
    decoding: Decoding = Decoding()  # sampling controls at evaluation
    trajectories_per_problem: int = 1  # sampled engine: dataset trajectories per training problem
    batch_size: int = 64  # sampled engine: trajectories per minibatch
    n_samples: int = 64  # sampled engine: rollouts per test problem
    steps_per_epoch: int = 8  # analytic engine: full-batch steps of size lr / steps_per_epoch per epoch

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be > 0, got {self.lr}")
        bad = [e for e in self.evaluation_epochs if not 0 <= e <= self.epochs]
        if bad:
            raise ValueError(f"evaluation epochs must be in [0, {self.epochs}], got {bad[0]}")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"k values must be >= 1, got {self.ks}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.n_samples < max(self.ks):
            raise ValueError(f"n_samples must be >= the largest k ({max(self.ks)}), got {self.n_samples}")

    @property
    def evaluation_epochs(self) -> tuple[int, ...]:
        """``eval_epochs``, or by default 0, 1, 2, 4, ... (powers of two) and the last epoch."""
        if self.eval_epochs is not None:
            return tuple(sorted(set(self.eval_epochs)))
        grid = {0, self.epochs} | {2**i for i in range(32) if 2**i <= self.epochs}
        return tuple(sorted(grid))


@dataclass(frozen=True)
class EpochRecord:
    """Test-set evaluation after ``epoch`` epochs, and the training loss at that point."""

    epoch: int
    evaluation: Evaluation
    train_loss: float


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent streams for the task, the data, the minibatch order and the rollouts."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    names = ("task", "data", "order", "rollouts")
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {n: int(c.generate_state(1)[0]) for n, c in zip(names, children)}


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not (enabled and sys.stderr.isatty()), leave=False, file=sys.stderr)


class _DualLogits:
    """Per-problem logits of the SFT policy in dual form, for a fixed set of problems.

    W starts at 0 and every gradient step adds ``-scale g^T phi_train``, so W = A^T phi_train for
    a (P_train, F) coefficient matrix A (stored transposed, (F, P_train)), exactly. Then, for problems with features phi,

        z = log edge_prob + theta + s D + scatter_fc((phi phi_train^T) A),

    with D[p, v] = [parent of v decipherable and v on a correct path of p]. The Gram matrix is
    computed once, so a step costs O(P P_train F) instead of O(P d F).
    """

    def __init__(self, tree, problems, train_features: np.ndarray, fc: np.ndarray):
        self.tree, self.fc = tree, fc
        self.fc_col = np.full(tree.n_nodes, -1, dtype=np.int64)
        self.fc_col[fc] = np.arange(fc.size)
        parent_visible = np.zeros(tree.n_nodes, dtype=bool)
        parent_visible[1:] = tree.kind[tree.parent[1:]] == DECIPHERABLE
        self.on_path = problems.on_correct_path(tree)
        self.visible = self.on_path & parent_visible
        self.gram_t = np.ascontiguousarray(train_features @ problems.features.T)  # (P_train, P)

    def fork_logits(self, coef_t: np.ndarray, rows=None) -> np.ndarray:
        """(F, P) feature part W phi of the fork children's logits ((F, B) for ``rows``)."""
        return coef_t @ (self.gram_t if rows is None else self.gram_t[:, rows])

    def probs(self, state: "_State", decoding: Decoding = Decoding()) -> np.ndarray:
        """(P, N) step probabilities of every problem under ``state``."""
        z = np.where(self.visible, state.skill, 0.0) + (self.tree.edge_logit + state.theta)
        z[:, 0] = 0.0
        z[:, self.fc] += self.fork_logits(state.coef_t).T
        return transition_probs(self.tree, z, decoding)

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
        )


@dataclass
class _State:
    """Trainable state in dual form: W = coef_t phi_train on the fork children ``fc``."""

    theta: np.ndarray  # (N,) shared logit offsets (non-zero on fork children only)
    coef_t: np.ndarray  # (F, P_train) dual coefficients
    skill: float

    def step(self, grad_fc: np.ndarray, grad_skill: float, fc: np.ndarray, rows, scale: float) -> None:
        """Gradient step of size ``scale`` (lr / total weight); ``grad_fc`` is (F, B)."""
        self.theta[fc] -= scale * grad_fc.sum(axis=1)
        if rows is None:
            self.coef_t -= scale * grad_fc
        else:
            self.coef_t[:, rows] -= scale * grad_fc  # rows are unique
        self.skill -= scale * grad_skill

    def to_params(self, tree, train_features: np.ndarray, fc: np.ndarray) -> SFTParams:
        weight = np.zeros((tree.n_nodes, train_features.shape[1]))
        weight[fc] = self.coef_t @ train_features
        return SFTParams(self.theta.copy(), weight, self.skill)


@dataclass(frozen=True)
class TrainResult:
    """Per-epoch evaluations and the fine-tuned parameters."""

    records: list[EpochRecord]
    params: SFTParams


def _setup(ps: PathStar):
    tree, train, test = ps.tree, ps.train, ps.test
    fc = fork_children(tree)
    state = _State(np.zeros(tree.n_nodes), np.zeros((fc.size, len(train))), ps.task.base_skill)
    return fc, state, _DualLogits(tree, train, train.features, fc), _DualLogits(tree, test, train.features, fc)


def train_analytic(ps: PathStar, mix: SFTMix, settings: TrainSettings, seed: int, progress: bool = False) -> TrainResult:
    """Full-batch gradient descent on the exact teacher distribution; exact test evaluation."""
    seeds = derive_seeds(seed)
    tree, train, test = ps.tree, ps.train, ps.test
    steps = trajectory_steps(tree, teacher_trajectories(ps, mix, seeds["data"]), train.start)
    total_w = float(steps.weight.sum())
    fc, state, train_logits, test_logits = _setup(ps)
    records = []
    evals = set(settings.evaluation_epochs)
    scale = settings.lr / settings.steps_per_epoch / total_w
    with _progress(settings.epochs, f"analytic SFT rho={mix.rho:g}", progress) as bar:
        for epoch in range(settings.epochs + 1):
            for substep in range(settings.steps_per_epoch if epoch < settings.epochs else 1):
                grad_fc, grad_skill, loss = train_logits.gradient(state, steps)
                if substep == 0 and epoch in evals:
                    ev = evaluate_exact(tree, test_logits.probs(state, settings.decoding), test, settings.ks)
                    records.append(EpochRecord(epoch, ev, loss / total_w))
                if epoch < settings.epochs:
                    state.step(grad_fc, grad_skill, fc, None, scale)
            bar.update(1)
    return TrainResult(records, state.to_params(tree, train.features, fc))


def _batches(steps: Steps, order: np.ndarray, batch_size: int):
    """Step indices of each minibatch of trajectories, in ``order``."""
    for b in range(0, order.size, batch_size):
        traj = order[b : b + batch_size]
        yield np.concatenate([np.arange(steps.offsets[t], steps.offsets[t + 1]) for t in traj])


def train_sampled(ps: PathStar, mix: SFTMix, settings: TrainSettings, seed: int, progress: bool = False) -> TrainResult:
    """Minibatch SGD on a sampled dataset; evaluation by ``n_samples`` rollouts per test problem."""
    seeds = derive_seeds(seed)
    tree, train, test = ps.tree, ps.train, ps.test
    data = sample_trajectories(ps, mix, settings.trajectories_per_problem, seeds["data"])
    steps = trajectory_steps(tree, data, train.start)
    total_w = float(steps.weight.sum())
    fc, state, train_logits, test_logits = _setup(ps)
    order_rng = np.random.default_rng(seeds["order"])
    evals = set(settings.evaluation_epochs)
    records = []
    scale = settings.lr / total_w

    def evaluate(epoch: int, loss: float) -> None:
        test_probs = test_logits.probs(state, settings.decoding)
        ev = evaluate_sampled(tree, test_probs, test, settings.ks, settings.n_samples, seeds["rollouts"] + epoch)
        records.append(EpochRecord(epoch, ev, loss))

    if 0 in evals:
        evaluate(0, train_logits.gradient(state, steps)[2] / total_w)
    with _progress(settings.epochs, f"sampled SFT rho={mix.rho:g}", progress) as bar:
        for epoch in range(1, settings.epochs + 1):
            loss = 0.0
            for idx in _batches(steps, order_rng.permutation(len(data)), settings.batch_size):
                rows, local = np.unique(steps.problem[idx], return_inverse=True)
                grad_fc, grad_skill, batch_loss = train_logits.gradient(state, steps, idx, rows, local.astype(np.int64))
                loss += batch_loss
                state.step(grad_fc, grad_skill, fc, rows, scale)
            if epoch in evals:
                evaluate(epoch, loss / total_w)
            bar.update(1)
    return TrainResult(records, state.to_params(tree, train.features, fc))
