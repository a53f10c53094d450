"""One SFT simulation (base vs fine-tuned pass@k over epochs) and grids of them.

``simulate`` runs one configuration with either engine and returns the tidy results table
(``markovfork.results`` schema) and a compact summary; ``sweep`` runs a grid of configurations
in parallel across processes and concatenates their tables.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from itertools import product
from pathlib import Path

import numpy as np

from markovfork.estimators import crossover_k
from markovfork.io import read_toml
from markovfork.policy import Decoding
from markovfork.results import results_frame
from markovfork.sft.data import SFTMix
from markovfork.sft.task import PathStarTask
from markovfork.sft.train import EpochRecord, TrainSettings, derive_seeds, train_analytic, train_sampled

__all__ = ["ENGINES", "SimulationConfig", "Summary", "SimulationResult", "simulate", "sweep", "config_grid", "load_config"]

ENGINES = ("analytic", "sampled")


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines one simulated fine-tuning run."""

    task: PathStarTask = field(default_factory=PathStarTask)  # the task tree, base model and problems
    train: TrainSettings = field(default_factory=TrainSettings)  # optimisation and evaluation
    rho: float = 1.0  # fork prevalence: share of training trajectories through the decision point
    forks: int | None = None  # decision points in the data; when set, rho = forks / n_train
    diversity: str = "data"  # "data" | "problem" | "rationale"
    engine: str = "analytic"  # "analytic" | "sampled"
    seed: int = 0  # one seed for the task, the data, the minibatch order and the rollouts

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.forks is not None and not 0 <= self.forks <= self.task.n_train:
            raise ValueError(f"forks must be in [0, n_train={self.task.n_train}], got {self.forks}")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        self.mix  # validates rho and diversity

    @property
    def prevalence(self) -> float:
        return self.forks / self.task.n_train if self.forks is not None else float(self.rho)

    @property
    def decision_points(self) -> int:
        """Fork-crossing training trajectories (data-level count; problem-level: weighted)."""
        return int(round(self.prevalence * self.task.n_train))

    @property
    def mix(self) -> SFTMix:
        return SFTMix(self.prevalence, self.diversity)


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
        """The tidy results table (``markovfork.results`` schema); built on first use."""
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
                )
            )
    return results_frame(rows)


def simulate(config: SimulationConfig = SimulationConfig(), progress: bool = False) -> SimulationResult:
    """Fine-tune the base policy on the configured mix and score it on held-out problems."""
    settings = config.train
    if 0 not in settings.evaluation_epochs:
        settings = replace(settings, eval_epochs=(0, *settings.evaluation_epochs))
    ps = config.task.build(derive_seeds(config.seed)["task"])
    trainer = train_analytic if config.engine == "analytic" else train_sampled
    records = trainer(ps, config.mix, settings, config.seed, progress=progress).records
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


def sweep(configs: list[SimulationConfig], workers: int | None = None, progress: bool = False) -> "pl.DataFrame":
    """Run every configuration in ``workers`` processes (default: one per core) and stack the tables.

    Each run is seeded by its own config and runs in a fresh process, so the result does not
    depend on ``workers``."""
    if not configs:
        raise ValueError("a sweep needs at least one configuration")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    from tqdm.auto import tqdm

    bar = tqdm(total=len(configs), desc="sweep", disable=not (progress and sys.stderr.isatty()), file=sys.stderr)
    import polars as pl

    tables: list = [None] * len(configs)
    # Every run happens in a spawned worker with one BLAS thread (spawn, not fork: forking a
    # process whose Numba/BLAS thread pools are running can deadlock). Running even a single
    # worker out of process keeps the numbers independent of the worker count and of the
    # caller's BLAS threading (GEMM results can differ in the last bits between thread counts).
    ctx = multiprocessing.get_context("spawn")
    with bar, _one_blas_thread_for_children(), ProcessPoolExecutor(max_workers=min(workers, len(configs)), mp_context=ctx) as pool:
        futures = {pool.submit(_run_table, c): i for i, c in enumerate(configs)}
        for fut in as_completed(futures):
            tables[futures[fut]] = fut.result()
            bar.update(1)
    return pl.concat(tables, how="vertical")


def config_grid(
    base: SimulationConfig,
    rhos=None,
    epochs=None,
    lrs=None,
    seeds=None,
    diversities=None,
) -> list[SimulationConfig]:
    """The Cartesian product of the given lists, each defaulting to the base config's value."""
    rhos = [base.prevalence] if rhos is None else list(rhos)
    epochs = [base.train.epochs] if epochs is None else list(epochs)
    lrs = [base.train.lr] if lrs is None else list(lrs)
    seeds = [base.seed] if seeds is None else list(seeds)
    diversities = [base.diversity] if diversities is None else list(diversities)
    out = []
    for rho, e, lr, seed, div in product(rhos, epochs, lrs, seeds, diversities):
        train = replace(base.train, epochs=int(e), lr=float(lr), eval_epochs=None if base.train.eval_epochs is None else tuple(x for x in base.train.eval_epochs if x <= e))
        out.append(replace(base, rho=float(rho), forks=None, train=train, seed=int(seed), diversity=div))
    return out


def _build(cls, mapping: dict, where: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in [{where}] (known: {', '.join(sorted(known))})")
    try:
        return cls(**mapping)
    except TypeError as exc:
        raise ValueError(f"bad value in [{where}]: {exc}") from None


def load_config(path: str | Path | None = None, **overrides) -> SimulationConfig:
    """A config from a TOML file (tables ``[task]``, ``[train]``, ``[train.decoding]`` and
    top-level keys rho, forks, diversity, engine, seed), then ``overrides`` applied on top.

    Override keys are top-level fields or ``task.<field>`` / ``train.<field>``; ``None`` values
    are ignored (options the user did not give)."""
    data: dict = {}
    if path is not None:
        data = read_toml(path)
    task = dict(data.pop("task", {}))
    train = dict(data.pop("train", {}))
    decoding = dict(train.pop("decoding", {}))
    for key, value in overrides.items():
        if value is None:
            continue
        if key.startswith("task."):
            task[key[5:]] = value
        elif key.startswith("train."):
            train[key[6:]] = value
        elif key.startswith("decoding."):
            decoding[key[9:]] = value
        else:
            data[key] = value
    for key in ("ks", "eval_epochs"):
        if key in train and train[key] is not None:
            train[key] = tuple(int(x) for x in train[key])
    if "mode_prior" in task:
        task["mode_prior"] = tuple(float(x) for x in task["mode_prior"])
    train["decoding"] = _build(Decoding, decoding, "train.decoding")
    return _build(
        SimulationConfig,
        {**data, "task": _build(PathStarTask, task, "task"), "train": _build(TrainSettings, train, "train")},
        "top level",
    )


def config_dict(config: SimulationConfig) -> dict:
    """A JSON-ready dict of a config (for ``--json`` output and provenance)."""
    return asdict(config)
