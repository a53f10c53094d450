"""One branching experiment: SFT on each teacher's data, each filtered share, scored per epoch.

``run_branching(config)`` returns a polars table with one row per (teacher, filtered share,
epoch): the training loss per token, the parameters, the exact success within the budget (and
without one), rollout success, length and branches (sampled engine), and the mean length and
branch count of the training data the student saw (after filtering).

Seeds: the dataset of every teacher comes from the stream (seed, "teacher") (the teachers share
their random numbers), the filter's tie-break from (seed, "filter"), the minibatch order from
(seed, "order") and the rollouts at epoch e from (seed, "rollouts", e + 1): every run of a config
sees the same rollout streams at the same epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markovfork.plumbing import checks
from markovfork.branching.data import expected_counts, filter_most_branching, teacher_trajectories
from markovfork.branching.evaluate import evaluate_rollouts, success_unbounded, success_within_budget
from markovfork.branching.task import BranchingTask, Teacher
from markovfork.branching.train import ENGINES, MAX_EPOCHS, MAX_LR, train_sft
from markovfork.plumbing.config_reader import check_fields
from markovfork.plumbing.seeds import child_seed

__all__ = ["BranchingConfig", "run_branching", "TABLE_COLUMNS"]


TABLE_COLUMNS = {
    "engine": "String",
    "seed": "Int64",
    "teacher": "String",  # Teacher.name
    "beta": "Float64",
    "retries": "Int64",  # null: unbounded
    "filtered_share": "Float64",  # share f of most-branching trajectories dropped
    "epoch": "Int64",  # 0: the base policy
    "train_loss": "Float64",  # cross-entropy per token on the (filtered) training data
    "a": "Float64",
    "c": "Float64",
    "success": "Float64",  # exact P(correct answer within the budget)
    "success_unbounded": "Float64",  # exact P(correct answer), no budget
    "success_rollouts": "Float64",  # pass@1 of the rollouts (sampled engine; null: analytic)
    "rollout_mean_length": "Float64",  # tokens per rollout, capped at the budget (sampled engine)
    "rollout_mean_branches": "Float64",  # wrong entries per rollout (sampled engine)
    "data_mean_length": "Float64",  # tokens per training trajectory (expected: analytic)
    "data_mean_branches": "Float64",  # wrong entries per training trajectory (expected: analytic)
    "n_kept": "Int64",  # training trajectories after filtering (null: analytic)
    "budget": "Int64",
}


@dataclass(frozen=True)
class BranchingConfig:
    """Everything that defines one branching experiment."""

    task: BranchingTask = field(default_factory=BranchingTask)
    teachers: tuple[Teacher, ...] = (Teacher(0.0), Teacher(0.4))
    filtered_shares: tuple[float, ...] = (0.0,)  # each share f in [0, 1)
    engine: str = "analytic"  # "analytic" | "sampled"
    epochs: int = 50
    lr: float = 1.0
    steps_per_epoch: int = 8  # analytic engine
    n_train: int = 2000  # sampled engine: trajectories per teacher before filtering
    batch_size: int = 64  # sampled engine
    budget: int = 16  # T: tokens allowed at evaluation (the answer included)
    n_rollouts: int = 10_000  # sampled engine: rollouts per evaluation
    eval_epochs: tuple[int, ...] | None = None  # None: 0, 1, 2, 4, ..., epochs
    freeze_a: bool = False  # indecipherable decisions: the decision logit a is not trained
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.teachers:
            raise ValueError("teachers must be a non-empty list of teachers, got []")
        if not self.filtered_shares:
            raise ValueError("filtered_shares must be a non-empty list of shares, got []")
        for i, f in enumerate(self.filtered_shares):
            checks.real(f"filtered_shares[{i}]", f, 0.0, 1.0, high_open=True)
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        checks.integer("epochs", self.epochs, 0, MAX_EPOCHS)
        checks.real("lr", self.lr, 0.0, MAX_LR, low_open=True)
        checks.integer("steps_per_epoch", self.steps_per_epoch, 1, 1_000)
        checks.integer("n_train", self.n_train, 1, 10_000_000)
        checks.integer("batch_size", self.batch_size, 1)
        checks.integer("budget", self.budget, 1, 1_000_000)
        checks.integer("n_rollouts", self.n_rollouts, 1, 100_000_000)
        if self.eval_epochs is not None and not self.eval_epochs:
            raise ValueError("eval_epochs must be a non-empty list of epochs (leave it out for 0, 1, 2, 4, ..., epochs)")
        for i, e in enumerate(self.eval_epochs or ()):
            checks.integer(f"eval_epochs[{i}]", e, 0, self.epochs)
        checks.integer("seed", self.seed, 0, checks.INT64_MAX)

    @property
    def evaluation_epochs(self) -> tuple[int, ...]:
        if self.eval_epochs is not None:
            return tuple(sorted(set(self.eval_epochs)))
        return tuple(sorted({0, self.epochs} | {2**i for i in range(32) if 2**i <= self.epochs}))


def _data(config: BranchingConfig, teacher: Teacher, share: float):
    """(training data for the engine, mean length, mean branches, kept count or None)."""
    task = config.task
    if config.engine == "analytic":
        counts = expected_counts(task, teacher, share)
        return counts, counts.tokens, counts.wrong, None
    data = filter_most_branching(teacher_trajectories(task, teacher, config.n_train, config.seed), share, config.seed)
    return data, float(data.length.mean()), float(data.branches.mean()), len(data)


def run_branching(config: BranchingConfig = BranchingConfig()) -> "pl.DataFrame":
    """The experiment's table (module docstring; columns in ``TABLE_COLUMNS``)."""
    import polars as pl

    task, rows = config.task, []
    for teacher in config.teachers:
        for share in config.filtered_shares:
            data, mean_len, mean_b, kept = _data(config, teacher, share)
            result = train_sft(task, data, config.engine, epochs=config.epochs, lr=config.lr,
                               steps_per_epoch=config.steps_per_epoch, batch_size=config.batch_size, seed=config.seed,
                               freeze_a=config.freeze_a)
            for e in config.evaluation_epochs:
                params = result.at(e)
                row = dict(
                    engine=config.engine, seed=config.seed, teacher=teacher.name, beta=teacher.beta,
                    retries=teacher.retries, filtered_share=float(share), epoch=e, train_loss=float(result.loss[e]),
                    a=params.a, c=params.c, success=success_within_budget(task, params, config.budget),
                    success_unbounded=success_unbounded(task, params), success_rollouts=None,
                    rollout_mean_length=None, rollout_mean_branches=None, data_mean_length=float(mean_len),
                    data_mean_branches=float(mean_b), n_kept=kept, budget=config.budget,
                )
                if config.engine == "sampled":
                    s = evaluate_rollouts(task, params, config.budget, config.n_rollouts,
                                          child_seed(config.seed, "rollouts", e + 1))
                    row.update(success_rollouts=float(s.pass_at_k[0]), rollout_mean_length=s.mean_length,
                               rollout_mean_branches=s.mean_branches)
                rows.append(row)
    schema = {name: getattr(pl, dtype) for name, dtype in TABLE_COLUMNS.items()}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
