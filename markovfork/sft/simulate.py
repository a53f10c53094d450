"""One SFT simulation (base vs fine-tuned pass@k over epochs) and grids of them.

``simulate`` runs one configuration with either engine and returns the tidy results table
(``markovfork.reporting.results`` schema) and a compact summary; ``sweep`` runs a grid of configurations
in parallel across processes and concatenates their tables.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

from markovfork.metrics.estimators import crossover_k
from markovfork.model.policy import transition_probs
from markovfork.reporting.results import results_frame
from markovfork.sft.config import ENGINES, SimulationConfig, config_dict, config_grid, load_config
from markovfork.sft.evaluate import Evaluation, evaluate_exact, evaluate_sampled
from markovfork.tasks.path_star import PathStar
from markovfork.sft.train import TRAINERS, TrainingState, derive_seeds

__all__ = [
    "ENGINES", "SimulationConfig", "EpochRecord", "Summary", "SimulationResult", "simulate", "sweep",
    "config_grid", "config_dict", "load_config",
]


@dataclass(frozen=True)
class EpochRecord:
    """Test-set evaluation after ``epoch`` epochs, and the training loss at that point."""

    epoch: int
    evaluation: Evaluation
    train_loss: float


@dataclass(frozen=True)
class Summary:
    """Base vs post-trained model at the last epoch."""

    rho: float
    decision_points: int
    epochs: int
    k_max: int
    pass1_base: float
    pass1_post: float
    passk_base: float  # pass@k_max
    passk_post: float
    shrinkage: float  # passk_base - passk_post
    k_star: float  # crossover of the two pass@k curves (nan: none on the grid)
    fork_confidence_correct: float
    fork_confidence_wrong: float
    fork_accuracy: float

    def lines(self) -> list[str]:
        k = self.k_max
        return [
            f"rho = {self.rho:g} ({self.decision_points} decision points in the data), {self.epochs} epochs",
            f"pass@1      base {self.pass1_base:.3f}  ->  post {self.pass1_post:.3f}",
            f"pass@{k:<6} base {self.passk_base:.3f}  ->  post {self.passk_post:.3f}",
            f"shrinkage at k={k}: {self.shrinkage:+.3f}   crossover k* = {self.k_star:.3g}",
            f"fork accuracy {self.fork_accuracy:.3f}; fork confidence right {self.fork_confidence_correct:.3f}, "
            f"wrong {self.fork_confidence_wrong:.3f}",
        ]


@dataclass(frozen=True)
class SimulationResult:
    config: SimulationConfig
    records: list[EpochRecord]
    summary: Summary

    @property
    def table(self) -> "pl.DataFrame":
        """The tidy results table (``markovfork.reporting.results`` schema); built on first use."""
        cached = self.__dict__.get("_table")
        if cached is None:
            cached = _records_table(self.config, self.records)
            object.__setattr__(self, "_table", cached)
        return cached


def _records_table(config: SimulationConfig, records: list[EpochRecord]) -> "pl.DataFrame":
    base = records[0].evaluation
    rows = []
    for rec in records:
        ev = rec.evaluation
        for j, k in enumerate(ev.k):
            rows.append(
                dict(
                    engine=config.engine,
                    rho=config.prevalence,
                    diversity=config.diversity,
                    seed=config.seed,
                    epoch=rec.epoch,
                    k=int(k),
                    pass_at_k_base=float(base.pass_at_k[j]),
                    pass_at_k_post=float(ev.pass_at_k[j]),
                    shrinkage=float(base.pass_at_k[j] - ev.pass_at_k[j]),
                    fork_accuracy=ev.fork_accuracy,
                    fork_confidence_correct=ev.fork_confidence_correct,
                    fork_confidence_wrong=ev.fork_confidence_wrong,
                    fork_entropy=ev.fork_entropy,
                    train_loss=rec.train_loss if rec.epoch > 0 else float("nan"),
                    decision_points=config.decision_points,
                    lr=config.train.lr,
                    epochs=config.train.epochs,  # the run's total epochs (tells runs of an epochs sweep apart)
                    n_train=config.task.n_train,
                    feature_dim=config.task.feature_dim,
                    temperature=config.train.decoding.temperature,  # evaluation decoding (a sweep dimension)
                    spread=config.train.spread.m,  # spread-first sampling over this many children (0: off)
                )
            )
    return results_frame(rows)


def _evaluate(config: SimulationConfig, ps: PathStar, state: TrainingState, rollout_seed: int) -> Evaluation:
    """Score a training state on the test problems, decoded by ``train.decoding``: exactly
    (analytic engine) or by ``n_samples`` rollouts per problem seeded by ``rollout_seed + epoch``
    (sampled engine); with ``train.spread`` active, pass@k of ``n_samples`` spread samples."""
    settings = config.train
    probs = transition_probs(ps.tree, state.test_logits(), settings.decoding)
    if config.engine == "analytic":
        return evaluate_exact(ps.tree, probs, ps.test, settings.ks, settings.spread, settings.n_samples)
    return evaluate_sampled(ps.tree, probs, ps.test, settings.ks, settings.n_samples, rollout_seed + state.epoch,
                            settings.spread)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not (enabled and sys.stderr.isatty()), leave=False, file=sys.stderr)


def simulate(config: SimulationConfig = SimulationConfig(), progress: bool = False) -> SimulationResult:
    """Fine-tune the base policy on the configured mix and score it on held-out problems at the
    evaluation epochs (epoch 0, the base model, always)."""
    seeds = derive_seeds(config.seed)
    evaluate_at = {0, *config.train.evaluation_epochs}
    ps = config.task.build(seeds["task"])
    records = []
    desc = f"{config.engine} SFT rho={config.prevalence:g}"
    with _progress(config.train.epochs, desc, progress) as bar:
        for state in TRAINERS[config.engine](ps, config.mix, config.train, config.seed):
            if state.epoch in evaluate_at:
                records.append(EpochRecord(state.epoch, _evaluate(config, ps, state, seeds["rollouts"]), state.train_loss))
            bar.update(1 if state.epoch else 0)
    base, last = records[0].evaluation, records[-1].evaluation
    summary = Summary(
        rho=config.prevalence,
        decision_points=config.decision_points,
        epochs=records[-1].epoch,
        k_max=int(base.k[-1]),
        pass1_base=float(base.pass_at_k[0]),
        pass1_post=float(last.pass_at_k[0]),
        passk_base=float(base.pass_at_k[-1]),
        passk_post=float(last.pass_at_k[-1]),
        shrinkage=float(base.pass_at_k[-1] - last.pass_at_k[-1]),
        k_star=crossover_k(base.k, base.pass_at_k, last.pass_at_k),
        fork_confidence_correct=last.fork_confidence_correct,
        fork_confidence_wrong=last.fork_confidence_wrong,
        fork_accuracy=last.fork_accuracy,
    )
    return SimulationResult(config, records, summary)


@contextlib.contextmanager
def _one_blas_thread_for_children():
    """Spawned workers inherit this environment and read it when they import NumPy: one BLAS
    thread each (the matrices are small and the workers fill the cores). Restored afterwards."""
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: "1" for n in names})
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _run_table(config: SimulationConfig) -> "pl.DataFrame":
    return simulate(config).table


def sweep(configs: list, workers: int | None = None, progress: bool = False, run=_run_table,
          scheduler: str | None = None) -> "pl.DataFrame":
    """Run every configuration in ``workers`` processes (default: one per core) and stack the tables
    (``run(config)`` gives a run's table: by default :func:`simulate`'s; a module-level function).
    ``scheduler``: ``None`` (the local process pool), ``"local:N"`` (a Dask ``LocalCluster``) or
    ``"tcp://HOST:PORT"`` (a running Dask scheduler); see :func:`markovfork.plumbing.executors.run_tasks`.

    Each run is seeded by its own config and runs in a worker process with one BLAS thread, so
    the table does not depend on the executor, on ``workers`` or on the order runs finish."""
    if not configs:
        raise ValueError("a sweep needs at least one configuration")
    if workers is None:
        from markovfork.plumbing.executors import available_cores

        workers = available_cores()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    from tqdm.auto import tqdm

    bar = tqdm(total=len(configs), desc="sweep", disable=not (progress and sys.stderr.isatty()), file=sys.stderr)
    import polars as pl

    from markovfork.plumbing.executors import run_tasks

    # Every run happens in a spawned worker with one BLAS thread (Dask's nanny sets the same
    # variables in its workers). Running even a single worker out of process keeps the numbers
    # independent of the worker count and of the caller's BLAS threading (GEMM results can
    # differ in the last bits between thread counts). The workers end with the sweep, however it
    # ends (an error, Ctrl-C, SIGTERM): see markovfork.plumbing.process_pool and markovfork.plumbing.dask_executor.
    with bar, _one_blas_thread_for_children():
        tables = run_tasks(run, configs, scheduler=scheduler, workers=workers,
                           progress=lambda done, total: bar.update(done - bar.n))
    return pl.concat(tables, how="vertical")
