"""Configuration of a simulated fine-tuning run: typed dataclasses, a TOML reader, grids, limits.

Every field is checked on construction (types through :mod:`markovfork.plumbing.config_reader`, ranges
through :mod:`markovfork.plumbing.checks`), from Python and from a TOML file alike. Limits: at most
``MAX_EPOCHS`` epochs (and ``MAX_STEPS_PER_EPOCH``, ``MAX_LR``, ``feature_scale`` <= 100, so
that logits stay finite), and the arrays of one run (estimated by :func:`memory_estimate`) must fit
in the machine's physical memory; both are rejected before anything is computed, with the
number that would have been needed.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from itertools import product
from pathlib import Path

from markovfork.plumbing import checks
from markovfork.plumbing.config_reader import ConfigNote, check_fields, from_mapping
from markovfork.plumbing.io import read_toml
from markovfork.model.policy import Decoding
from markovfork.sft.data import SFTMix
from markovfork.model.spread import Spread
from markovfork.tasks.path_star import PathStarTask

__all__ = [
    "ENGINES",
    "MAX_EPOCHS",
    "MAX_STEPS_PER_EPOCH",
    "MAX_LR",
    "TrainSettings",
    "SimulationConfig",
    "load_config",
    "depth_note",
    "config_dict",
    "config_grid",
    "memory_estimate",
    "memory_limit",
]

ENGINES = ("analytic", "sampled")
MAX_EPOCHS = 1_000_000  # about 6 hours at the defaults (20 ms an epoch); more is a typo, not a run
MAX_STEPS_PER_EPOCH = 1_000  # analytic engine (the default 8 is stable up to lr 20; lr 50 needs 32)
MAX_LR = 1e4  # with |phi|^2 ~ d feature_scale^2 bounded, logits stay finite for any MAX_EPOCHS run


@dataclass(frozen=True)
class TrainSettings:
    """How to fine-tune and when to evaluate."""

    epochs: int = 50  # training epochs
    lr: float = 20.0  # learning rate: parameters move by lr * grad L per epoch (gradient-flow time)
    eval_epochs: tuple[int, ...] | None = None  # epochs at which the test set is scored (None: 0, 1, 2, 4, ..., epochs)
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)  # the k of pass@k
    decoding: Decoding = Decoding()  # sampling controls at evaluation
    spread: Spread = Spread()  # spread-first-decision sampling at evaluation (m = 0: off)
    trajectories_per_problem: int = 1  # sampled engine: dataset trajectories per training problem
    batch_size: int = 64  # sampled engine: trajectories per minibatch
    n_samples: int = 64  # sampled engine: rollouts per test problem
    steps_per_epoch: int = 8  # analytic engine: full-batch steps of size lr / steps_per_epoch per epoch

    def __post_init__(self) -> None:
        check_fields(self)
        checks.integer("epochs", self.epochs, 0, MAX_EPOCHS)
        checks.real("lr", self.lr, 0.0, MAX_LR, low_open=True)
        if self.eval_epochs is not None and not self.eval_epochs:
            raise ValueError("eval_epochs must be a non-empty list of epochs (leave it out for 0, 1, 2, 4, ..., epochs)")
        for e in self.eval_epochs or ():
            checks.integer("eval_epochs", e, 0, self.epochs)
        if not self.ks:
            raise ValueError("ks must be a non-empty list of integers, got []")
        for i, k in enumerate(self.ks):
            checks.integer(f"ks[{i}]", k, 1, checks.INT64_MAX)
        for name in ("trajectories_per_problem", "batch_size"):
            checks.integer(name, getattr(self, name), 1)
        checks.integer("steps_per_epoch", self.steps_per_epoch, 1, MAX_STEPS_PER_EPOCH)
        checks.integer("n_samples (at least the largest k)", self.n_samples, max(self.ks), checks.INT64_MAX)

    @property
    def evaluation_epochs(self) -> tuple[int, ...]:
        """``eval_epochs``, or by default 0, 1, 2, 4, ... (powers of two) and the last epoch."""
        if self.eval_epochs is not None:
            return tuple(sorted(set(self.eval_epochs)))
        grid = {0, self.epochs} | {2**i for i in range(32) if 2**i <= self.epochs}
        return tuple(sorted(grid))


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines one simulated fine-tuning run."""

    task: PathStarTask = field(default_factory=PathStarTask)  # the task tree, base model and problems
    train: TrainSettings = field(default_factory=TrainSettings)  # optimisation and evaluation
    rho: float | None = None  # fork prevalence: share of training trajectories through the decision point (None: 1)
    forks: int | None = None  # decision points in the data: rho = forks / n_train (excludes rho)
    diversity: str = "data"  # "data" | "problem" | "rationale"
    engine: str = "analytic"  # "analytic" | "sampled"
    seed: int = 0  # one seed for the task, the data, the minibatch order and the rollouts

    def __post_init__(self) -> None:
        check_fields(self)
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.forks is not None and self.rho is not None:
            raise ValueError(f"set forks or rho, not both (rho = forks / n_train), got forks = {self.forks} and rho = {self.rho:g}")
        if self.forks is not None and not 0 <= self.forks <= self.task.n_train:
            raise ValueError(f"forks must be in [0, n_train={self.task.n_train}], got {self.forks}")
        checks.integer("seed", self.seed, 0, checks.INT64_MAX)
        self.mix  # validates rho and diversity
        need, limit = memory_estimate(self.task, self.train, self.engine, self.diversity), memory_limit()
        if need > limit:
            raise ValueError(f"this run's arrays do not fit in memory (about {checks.memory_needed(need, limit)}): "
                             f"lower feature_dim, n_train, n_test or n_samples")

    @property
    def prevalence(self) -> float:
        if self.forks is not None:
            return self.forks / self.task.n_train
        return 1.0 if self.rho is None else float(self.rho)

    @property
    def decision_points(self) -> int:
        """Fork-crossing training trajectories (data-level count; problem-level: weighted)."""
        return int(round(self.prevalence * self.task.n_train))

    @property
    def mix(self) -> SFTMix:
        return SFTMix(self.prevalence, self.diversity)


def memory_limit() -> int:
    """Bytes of memory a run's arrays are checked against: :func:`markovfork.plumbing.checks.physical_memory`
    (the machine's, or the cgroup's limit when lower; no limit where the platform does not tell)."""
    memory = checks.physical_memory()
    return 2**63 if memory is None else memory


def memory_estimate(t: PathStarTask, s: TrainSettings, engine: str = "analytic", diversity: str = "data") -> int:
    """Bytes of the largest arrays one run of task ``t`` with settings ``s`` holds, within a small
    factor (measured peaks are below it); the features (16 n d) and the Gram matrices
    (8 n_train n) dominate.

    With n = n_train + n_test problems, d features, N tree nodes, F fork children, T training
    trajectories of at most L steps and S rollouts per test problem (sampled engine):
    16 n d (features and their train/test copies) + 8 n_train n (Gram matrices) + 4 n N (masks)
    + 48 n_test N (logit and probability tables) + 24 F n_train (dual coefficients and snapshots)
    + 48 T L (steps) + 8 N d (the materialised W) + 96 n_test S (rollouts)."""
    n = t.n_train + t.n_test
    nodes = t.n_nodes
    fork_children = 3 + t.arms
    trajectories = t.n_train * s.trajectories_per_problem * (2 if diversity == "problem" else 1)
    longest = 1 + t.rationale_steps + 1 + t.steps_after_fork + 1  # root, rationale, arm choice, arm, leaf
    rollouts = s.n_samples if engine == "sampled" else 0
    return (
        16 * n * t.feature_dim
        + 8 * t.n_train * n
        + 4 * n * nodes
        + 48 * t.n_test * nodes
        + 24 * fork_children * t.n_train
        + 48 * trajectories * longest
        + 8 * nodes * t.feature_dim
        + 96 * t.n_test * rollouts
    )


def load_config(path: str | Path | None = None, *, data: dict | None = None, **overrides) -> SimulationConfig:
    """A config from a TOML file (tables ``[task]``, ``[train]``, ``[train.decoding]``,
    ``[train.spread]`` and top-level keys rho, forks, diversity, engine, seed), then ``overrides``
    applied on top.

    Override keys are top-level fields or ``task.<field>`` / ``train.<field>`` /
    ``decoding.<field>`` / ``spread.<field>``; ``None`` values are ignored (options the user did not give). An
    override of ``rho`` or ``forks`` replaces the file's other one. Every value is type-checked
    (:mod:`markovfork.plumbing.config_reader`); errors name the section, key and value. ``data``: the
    file's tables already read (instead of ``path``).

    A file (or ``data``) that sets ``[task] depth`` gets a :class:`ConfigNote` warning naming the
    meaning, nodes per arm (:func:`depth_note`): older simulator configs counted the steps after
    the fork there, one less, and the same key must not change a task silently."""
    if path is not None and data is not None:
        raise ValueError("give a config path or its data, not both")
    data = dict(data) if data is not None else read_toml(path) if path is not None else {}
    note = depth_note(data, path)  # the file's own value, before the overrides
    given = {key: value for key, value in overrides.items() if value is not None}
    if given.keys() & {"rho", "forks"}:
        data = {key: value for key, value in data.items() if key not in ("rho", "forks")}
    for key, value in given.items():
        _set(data, "train." + key if key.startswith(("decoding.", "spread.")) else key, value)
    config = from_mapping(SimulationConfig, data)
    if note:  # only for a config that was read: an error stays one line
        warnings.warn(note, ConfigNote, stacklevel=2)
    return config


def depth_note(data: dict, path=None) -> str | None:
    """The note for a configuration that sets a valid ``[task] depth`` (``None`` when it does not:
    an invalid value is the reader's one-line error, alone): the
    value is nodes per arm (the bridge's meaning); until the one-meaning change the simulator
    counted the steps after the fork, one less, so an old file's ``depth = 5`` is now a shorter
    task (write 6 for the old one)."""
    task = data.get("task")
    if not isinstance(task, dict) or "depth" not in task:
        return None
    depth = task["depth"]
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
        return None  # refused by the reader: its one-line error says why
    where = f" in {path}" if path is not None else ""
    return (f"[task] depth = {depth}{where} means {depth} nodes per arm ({depth - 1} steps after the fork); "
            f"write depth = {depth + 1} for a file written when depth counted the steps after the fork (docs/sft.md)")


def _set(data: dict, dotted: str, value) -> None:
    """data[a][b][c] = value for ``dotted = "a.b.c"`` (tables copied, created when missing)."""
    *sections, name = dotted.split(".")
    table = data
    for section in sections:
        sub = table.get(section, {})
        if not isinstance(sub, dict):
            return  # the file's value is not a table: the reader reports it
        table[section] = dict(sub)
        table = table[section]
    table[name] = value


def config_dict(config: SimulationConfig) -> dict:
    """A JSON-ready dict of a config (for ``--json`` output and provenance); ``rho`` is the
    prevalence in effect (forks / n_train when forks is set)."""
    return {**asdict(config), "rho": config.prevalence}


def config_grid(
    base: SimulationConfig,
    rhos=None,
    epochs=None,
    lrs=None,
    seeds=None,
    diversities=None,
    temperatures=None,
) -> list[SimulationConfig]:
    """The Cartesian product of the given lists, each defaulting to the base config's value
    (``temperatures``: the evaluation's ``decoding.temperature``)."""
    rhos = [base.prevalence] if rhos is None else list(rhos)
    epochs = [base.train.epochs] if epochs is None else list(epochs)
    lrs = [base.train.lr] if lrs is None else list(lrs)
    seeds = [base.seed] if seeds is None else list(seeds)
    diversities = [base.diversity] if diversities is None else list(diversities)
    temperatures = [base.train.decoding.temperature] if temperatures is None else list(temperatures)
    out = []
    for rho, e, lr, seed, div, temp in product(rhos, epochs, lrs, seeds, diversities, temperatures):
        eval_epochs = None if base.train.eval_epochs is None else tuple(x for x in base.train.eval_epochs if x <= e)
        decoding = replace(base.train.decoding, temperature=temp)
        train = replace(base.train, epochs=e, lr=lr, eval_epochs=eval_epochs, decoding=decoding)
        out.append(replace(base, rho=rho, forks=None, train=train, seed=seed, diversity=div))
    return out
