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
from markovfork.sft.model import SFTParams, fork_children, step_gradient, step_probs
from markovfork.sft.task import PathStar

__all__ = ["EpochRecord", "TrainSettings", "train_analytic", "train_sampled", "derive_seeds"]


@dataclass(frozen=True)
class TrainSettings:
    """How to fine-tune and when to evaluate."""

    epochs: int = 50  # training epochs
    lr: float = 20.0  # learning rate (per full-batch step)
    eval_epochs: tuple[int, ...] | None = None  # epochs at which the test set is scored (None: 0, 1, 2, 4, ..., epochs)
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)  # the k of pass@k
    decoding: Decoding = Decoding()  # sampling controls at evaluation
    trajectories_per_problem: int = 1  # sampled engine: dataset trajectories per training problem
    batch_size: int = 64  # sampled engine: trajectories per minibatch
    n_samples: int = 64  # sampled engine: rollouts per test problem
    steps_per_epoch: int = 10  # analytic engine: full-batch steps of size lr / steps_per_epoch per epoch

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


def _apply_update(params: SFTParams, grad, features: np.ndarray, fc: np.ndarray, scale: float) -> SFTParams:
    """params - scale * gradient (scale = lr / total weight)."""
    theta = params.theta.copy()
    weight = params.weight.copy()
    g_fc = grad.logit[:, fc]  # (P, F)
    theta[fc] -= scale * g_fc.sum(axis=0)
    if weight.shape[1]:
        weight[fc] -= scale * (g_fc.T @ features)  # (F, d)
    return SFTParams(theta, weight, params.skill - scale * grad.skill)


def train_analytic(ps: PathStar, mix: SFTMix, settings: TrainSettings, seed: int, progress: bool = False) -> list[EpochRecord]:
    """Full-batch gradient descent on the exact teacher distribution; exact test evaluation."""
    seeds = derive_seeds(seed)
    tree, train, test = ps.tree, ps.train, ps.test
    steps = trajectory_steps(tree, teacher_trajectories(ps, mix, seeds["data"]), train.start)
    total_w = float(steps.weight.sum())
    on_path = train.on_correct_path(tree)
    fc = fork_children(tree)
    params = SFTParams.initial(tree, train.feature_dim, ps.task.base_skill)
    records = []
    evals = set(settings.evaluation_epochs)
    scale = settings.lr / settings.steps_per_epoch / total_w
    with _progress(settings.epochs, f"analytic SFT rho={mix.rho:g}", progress) as bar:
        for epoch in range(settings.epochs + 1):
            for substep in range(settings.steps_per_epoch if epoch < settings.epochs else 1):
                probs = step_probs(tree, params, train)
                grad = step_gradient(tree, probs, on_path, steps.problem, steps.node, steps.target, steps.weight)
                if substep == 0 and epoch in evals:
                    test_probs = step_probs(tree, params, test, settings.decoding)
                    ev = evaluate_exact(tree, test_probs, test, settings.ks)
                    records.append(EpochRecord(epoch, ev, grad.loss / total_w))
                if epoch < settings.epochs:
                    params = _apply_update(params, grad, train.features, fc, scale)
            bar.update(1)
    return records


def _batches(steps: Steps, order: np.ndarray, batch_size: int):
    """Step indices of each minibatch of trajectories, in ``order``."""
    for b in range(0, order.size, batch_size):
        traj = order[b : b + batch_size]
        yield np.concatenate([np.arange(steps.offsets[t], steps.offsets[t + 1]) for t in traj])


def train_sampled(ps: PathStar, mix: SFTMix, settings: TrainSettings, seed: int, progress: bool = False) -> list[EpochRecord]:
    """Minibatch SGD on a sampled dataset; evaluation by ``n_samples`` rollouts per test problem."""
    seeds = derive_seeds(seed)
    tree, train, test = ps.tree, ps.train, ps.test
    data = sample_trajectories(ps, mix, settings.trajectories_per_problem, seeds["data"])
    steps = trajectory_steps(tree, data, train.start)
    total_w = float(steps.weight.sum())
    fc = fork_children(tree)
    params = SFTParams.initial(tree, train.feature_dim, ps.task.base_skill)
    order_rng = np.random.default_rng(seeds["order"])
    evals = set(settings.evaluation_epochs)
    records = []

    def evaluate(epoch: int, loss: float) -> None:
        test_probs = step_probs(tree, params, test, settings.decoding)
        ev = evaluate_sampled(tree, test_probs, test, settings.ks, settings.n_samples, seeds["rollouts"] + epoch)
        records.append(EpochRecord(epoch, ev, loss))

    if 0 in evals:
        probs = step_probs(tree, params, train)
        loss0 = step_gradient(tree, probs, train.on_correct_path(tree), steps.problem, steps.node, steps.target, steps.weight).loss
        evaluate(0, loss0 / total_w)
    with _progress(settings.epochs, f"sampled SFT rho={mix.rho:g}", progress) as bar:
        for epoch in range(1, settings.epochs + 1):
            loss = 0.0
            for idx in _batches(steps, order_rng.permutation(len(data)), settings.batch_size):
                local, inverse = np.unique(steps.problem[idx], return_inverse=True)
                sub = train.subset(local)
                probs = step_probs(tree, params, sub)
                grad = step_gradient(
                    tree, probs, sub.on_correct_path(tree), inverse.astype(np.int64), steps.node[idx], steps.target[idx], steps.weight[idx]
                )
                loss += grad.loss
                params = _apply_update(params, grad, sub.features, fc, settings.lr / total_w)
            if epoch in evals:
                evaluate(epoch, loss / total_w)
            bar.update(1)
    return records
