"""SFT of the two-parameter policy: the token-averaged cross-entropy and its gradient, and two
engines (analytic: full-batch gradient descent on expected counts; sampled: minibatch SGD).

With Z = m e^a + (b - m), P = m e^a / Z and sigma the logistic function, the token losses are

    correct decision   -log(e^a / Z) = log Z - a      d/da = P - 1
    wrong decision     -log(1 / Z)   = log Z          d/da = P
    backtrack          -log sigma(c) = log(1 + e^-c)  d/dc = sigma(c) - 1
    forced token       0

so the loss of a dataset with totals (n_ok, n_bad, n_bt, n_tok) is

    L(a, c) = [n_ok (log Z - a) + n_bad log Z + n_bt log(1 + e^-c)] / n_tok,
    dL/da = [n_ok (P - 1) + n_bad P] / n_tok,   dL/dc = n_bt (sigma(c) - 1) / n_tok.

Analytic: the totals are the teacher's expected counts (``expected_counts``), and each epoch takes
``steps_per_epoch`` steps ``theta -= (lr / steps_per_epoch) grad L``. Sampled: each minibatch B
steps ``theta -= lr grad_B / n_tok`` (its summed loss gradient over the dataset's total tokens),
so an epoch moves by about ``lr grad L`` as in :mod:`markovfork.sft.train`. The loss reported for
epoch e > 0 is the loss at the epoch's end (analytic) or accumulated over its minibatches
(sampled); epoch 0 is the base policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markovfork.plumbing import checks
from markovfork.branching.data import Counts, Trajectories
from markovfork.branching.task import BranchingTask, Params
from markovfork.plumbing.seeds import child_rng

__all__ = ["ENGINES", "TrainResult", "loss_and_gradient", "train_sft"]

ENGINES = ("analytic", "sampled")
MAX_EPOCHS = 100_000
MAX_LR = 1e4


def _log_z(task: BranchingTask, a: float) -> tuple[float, float]:
    """(log Z, P) for Z = m e^a + (b - m), stable for any a."""
    m, w = task.n_correct, task.children - task.n_correct
    x, y = np.log(m) + a, np.log(w)
    log_z = float(np.logaddexp(x, y))
    return log_z, float(np.exp(x - log_z))


def loss_and_gradient(task: BranchingTask, params: Params, counts: Counts) -> tuple[float, np.ndarray]:
    """(L, [dL/da, dL/dc]) of the summed counts (module docstring), normalised by total tokens."""
    n_ok, n_bad, n_bt, n_tok = (float(np.sum(x)) for x in (counts.correct, counts.wrong, counts.backtrack, counts.tokens))
    log_z, p = _log_z(task, params.a)
    softplus = float(np.logaddexp(0.0, -params.c))  # -log sigma(c)
    sig = float(np.exp(-np.logaddexp(0.0, -params.c)))
    loss = (n_ok * (log_z - params.a) + n_bad * log_z + n_bt * softplus) / n_tok
    grad = np.array([n_ok * (p - 1.0) + n_bad * p, n_bt * (sig - 1.0)]) / n_tok
    return loss, grad


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Per epoch 0..E: the training loss per token and the parameters (a, c)."""

    epoch: np.ndarray  # (E + 1,)
    loss: np.ndarray  # (E + 1,)
    params: np.ndarray  # (E + 1, 2): columns a, c

    def at(self, epoch: int) -> Params:
        return Params(float(self.params[epoch, 0]), float(self.params[epoch, 1]))


def _settings(epochs, lr, steps_per_epoch, batch_size):
    return (
        checks.integer("epochs", epochs, 0, MAX_EPOCHS),
        checks.real("lr", lr, 0.0, MAX_LR, low_open=True),
        checks.integer("steps_per_epoch", steps_per_epoch, 1, 1_000),
        checks.integer("batch_size", batch_size, 1),
    )


def train_sft(task: BranchingTask, data: Counts | Trajectories, engine: str = "analytic", *, epochs: int = 50,
              lr: float = 1.0, steps_per_epoch: int = 8, batch_size: int = 64, seed: int = 0,
              start: Params | None = None, freeze_a: bool = False) -> TrainResult:
    """Fine-tune from ``start`` (default: the task's base policy). ``engine="analytic"`` takes
    expected counts (:func:`~markovfork.branching.data.expected_counts`), ``"sampled"`` a dataset
    (:class:`~markovfork.branching.data.Trajectories`; minibatch order from ``(seed, "order")``).
    ``freeze_a``: the decision logit a stays at its start (an *indecipherable* decision: the
    policy cannot see which child is correct, so no data moves it); only c is trained."""
    mask = np.array([0.0 if freeze_a else 1.0, 1.0])
    epochs, lr, steps_per_epoch, batch_size = _settings(epochs, lr, steps_per_epoch, batch_size)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    want = Counts if engine == "analytic" else Trajectories
    if not isinstance(data, want):
        raise ValueError(f"engine {engine!r} trains on {want.__name__}, got {type(data).__name__}")
    if engine == "sampled" and len(data) == 0:
        raise ValueError("data must hold at least one trajectory, got 0")
    theta = (start or task.base).array()
    losses, thetas = np.empty(epochs + 1), np.empty((epochs + 1, 2))
    thetas[0] = theta
    if engine == "analytic":
        for e in range(epochs + 1):
            for s in range(steps_per_epoch if e < epochs else 1):
                loss, grad = loss_and_gradient(task, Params(*theta), data)
                if s == 0:
                    losses[e], thetas[e] = loss, theta
                if e < epochs:
                    theta = theta - (lr / steps_per_epoch) * grad * mask
        return TrainResult(np.arange(epochs + 1), losses, thetas)
    counts = data.counts()
    total = float(counts.tokens.sum())
    losses[0] = loss_and_gradient(task, Params(*theta), counts)[0]
    rng = child_rng(seed, "order")
    for e in range(1, epochs + 1):
        order, acc = rng.permutation(len(data)), 0.0
        for b in range(0, order.size, batch_size):
            idx = order[b : b + batch_size]
            batch = Counts(counts.correct[idx], counts.wrong[idx], counts.backtrack[idx], counts.tokens[idx])
            loss, grad = loss_and_gradient(task, Params(*theta), batch)
            share = float(counts.tokens[idx].sum()) / total  # per-token mean over the batch -> dataset scale
            acc += loss * share
            theta = theta - lr * share * grad * mask
        losses[e], thetas[e] = acc, theta
    return TrainResult(np.arange(epochs + 1), losses, thetas)
