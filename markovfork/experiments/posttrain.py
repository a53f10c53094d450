"""RL after SFT on the path-star fork task of ``markovfork simulate``.

The RL policy has the SFT model's parameters (:mod:`markovfork.sft.model`): shared logit offsets
theta on the fork children, the shared decipherable-step skill s, and the fork children's
feature weights W, kept in dual form over the training problems' features (W = W_sft + A^T
Phi_train, so a test problem's fork logits are ``F_test = F_test,sft + Phi_test Phi_train^T A``).
RL starts from the base model or from the SFT model after ``epochs`` epochs, trains on the
training problems (0/1 reward: the leaf is correct) and is scored on the test problems with the
SFT evaluation (:mod:`markovfork.sft.evaluate`): pass@k, fork accuracy, confidence and entropy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from markovfork.plumbing import checks
from markovfork.metrics.estimators import crossover_k
from markovfork.model.policy import transition_probs
from markovfork.rl.config import RLConfig
from markovfork.rl.train import LogitModel, RLStart, step_logits, train_rl
from markovfork.sft.evaluate import evaluate_exact, evaluate_sampled
from markovfork.sft.model import fork_children
from markovfork.sft.simulate import SimulationConfig
from markovfork.sft.train import TRAINERS, derive_seeds

__all__ = [
    "STARTS", "PosttrainConfig", "PosttrainResult", "posttrain", "load_posttrain_config", "posttrain_grid",
    "posttrain_table", "RUN_KEYS", "at_end_of_rl",
]

STARTS = ("base", "sft")


@dataclass(frozen=True)
class PosttrainConfig:
    """RL (``rl``) from the base model or after the SFT run ``simulation`` (``start``), scored at
    ``evaluations`` evenly spaced RL iterations (and the first and last)."""

    rl: RLConfig = field(default_factory=RLConfig)
    start: str = "sft"
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    evaluations: int = 5
    tree: str | None = None  # a JSON tree file: RL from its base policy instead of the path-star task

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {', '.join(STARTS)}, got {self.start!r}")
        if self.tree is not None and self.start != "base":
            raise ValueError(f"a JSON tree ({self.tree}) has no SFT data: RL starts from its base (start = 'base')")
        checks.integer("evaluations", self.evaluations, 1, 10**4)
        ks = list(self.simulation.train.ks)
        if 1 not in ks:
            raise ValueError(f"k must include 1 (posttrain reports pass@1 next to pass@k), got {ks}")
        if self.tree is not None:
            _check_tree(self.tree)
        if self.rl.engine != self.simulation.engine:
            raise ValueError(f"the RL engine ({self.rl.engine}) and the SFT engine ({self.simulation.engine}) must agree")

    def snapshots(self) -> np.ndarray:
        n = self.rl.iterations
        return np.unique(np.round(np.linspace(0, n, self.evaluations + 1)).astype(np.int64))


def _check_tree(path) -> None:
    """A JSON tree that RL can train on: at least one node with two or more children (a choice)."""
    from markovfork.model.tree import load_tree

    tree = load_tree(path)
    children = np.bincount(tree.parent[1:], minlength=tree.n_nodes) if tree.n_nodes > 1 else np.zeros(1)
    if children.max() < 2:
        raise ValueError(f"tree file {path} has {tree.n_nodes} node(s) and no node with two or more children: "
                         f"RL needs a choice to train")


@dataclass(frozen=True)
class PosttrainResult:
    config: PosttrainConfig
    table: "object"  # polars DataFrame: one row per (stage, iteration, k)
    summary: dict
    reward: np.ndarray = field(repr=False)  # RL training reward per iteration


def _sft_state(config: PosttrainConfig, ps, bar):
    """The SFT training state after the configured epochs (epoch 0, the base, for start='base')."""
    sim = config.simulation
    trainer = TRAINERS[sim.engine](ps, sim.mix, sim.train, sim.seed)
    state = next(trainer)
    if config.start == "sft":
        for state in trainer:
            bar.update(1)
    return state


def posttrain(config: PosttrainConfig = PosttrainConfig(), progress: bool = False) -> PosttrainResult:
    """Run SFT (unless ``start='base'``), then RL, and score base, start and every RL snapshot
    (``progress``: a bar on stderr over the SFT epochs and the RL run, on a terminal only)."""
    from markovfork.sft.simulate import _progress

    sft_epochs = config.simulation.train.epochs if config.start == "sft" and config.tree is None else 0
    with _progress(sft_epochs + 1, f"{config.rl.method} after {'SFT' if sft_epochs else 'the base'}", progress) as bar:
        result = _posttrain(config, bar)
        bar.update(1)
    return result


def _posttrain(config: PosttrainConfig, bar) -> PosttrainResult:
    sim = config.simulation
    seeds = derive_seeds(sim.seed)
    if config.tree is not None:
        return _posttrain_tree(config, seeds)
    ps = sim.task.build(seeds["task"])
    tree, train, test = ps.tree, ps.train, ps.test
    base_state = next(TRAINERS[sim.engine](ps, sim.mix, sim.train, sim.seed))
    state = _sft_state(config, ps, bar)
    fc = fork_children(tree)
    tie = np.full(tree.n_nodes, -1, dtype=np.int64)
    tie[fc] = np.arange(fc.size)
    fc_col = tie.copy()
    model = LogitModel(tree, tree.edge_logit.copy(), tie, fc.size, fc_col, fc.size, True)
    gram_train = train.features @ train.features.T
    gram_test_train = test.features @ train.features.T
    fork_train = (state.coef_t @ gram_train).T
    fork_test = (state.coef_t @ gram_test_train.T).T
    start = RLStart(state.theta[fc].copy(), state.skill, fork_train, gram_train)
    trace = train_rl(model, train, config.rl, start, snapshots=config.snapshots())
    base_fork = (base_state.coef_t @ gram_test_train.T).T
    stages = [("base", 0, (base_state.theta[fc], base_state.skill, base_fork)),
              ("start", 0, (state.theta[fc], state.skill, fork_test))]
    for i, it in enumerate(trace.iterations):
        stages.append(("rl", int(it), (trace.theta[i], float(trace.skill[i]), fork_test + gram_test_train @ trace.coef[i])))
    return _result(config, model, test, stages, seeds, trace.reward)


def _posttrain_tree(config: PosttrainConfig, seeds: dict) -> PosttrainResult:
    """RL from the base policy of a JSON tree (one logit per step, starting at log edge_prob) on
    ``fork_problems`` of the tree: n_train training and n_test test problems."""
    from markovfork.tasks import fork_problems
    from markovfork.rl.train import tabular_model
    from markovfork.model.tree import load_tree

    sim = config.simulation
    tree = load_tree(config.tree)
    train = fork_problems(tree, sim.task.n_train, seed=seeds["task"])
    test = fork_problems(tree, sim.task.n_test, seed=seeds["data"])
    model = tabular_model(tree)
    theta = np.where(model.tie >= 0, tree.edge_logit, 0.0)
    trace = train_rl(model, train, config.rl, RLStart(theta), snapshots=config.snapshots())
    stages = [("base", 0, (theta, 0.0, None)), ("start", 0, (theta, 0.0, None))]
    stages += [("rl", int(it), (trace.theta[i], 0.0, None)) for i, it in enumerate(trace.iterations)]
    return _result(config, model, test, stages, seeds, trace.reward)


def _result(config: PosttrainConfig, model, test, stages, seeds, reward) -> PosttrainResult:
    """Score every (stage, iteration, parameters) on the test problems and tabulate."""
    import polars as pl

    sim, tree = config.simulation, model.tree
    settings = sim.train

    sft_epochs = sim.train.epochs if config.start == "sft" and config.tree is None else 0

    def evaluate(stage, it, theta, skill, fork):
        """Exact, or by rollouts seeded as simulate seeds an epoch's: the rollout seed plus the
        epoch (the start: the last SFT epoch; RL snapshot i: that epoch plus i)."""
        probs = transition_probs(tree, step_logits(model, test, theta, skill, fork), settings.decoding)
        if sim.engine == "analytic":
            return evaluate_exact(tree, probs, test, settings.ks, settings.spread, settings.n_samples)
        offset = 0 if stage == "base" else sft_epochs + it
        return evaluate_sampled(tree, probs, test, settings.ks, settings.n_samples, seeds["rollouts"] + offset,
                                settings.spread)

    stages = [(stage, it, evaluate(stage, it, *params)) for stage, it, params in stages]
    rows = []
    for stage, it, ev in stages:
        for j, k in enumerate(ev.k):
            rows.append(dict(
                stage=stage, iteration=it, k=int(k), pass_at_k=float(ev.pass_at_k[j]), fork_accuracy=ev.fork_accuracy,
                fork_confidence_correct=ev.fork_confidence_correct, fork_confidence_wrong=ev.fork_confidence_wrong,
                fork_entropy=ev.fork_entropy, method=config.rl.method, start=config.start, kl=config.rl.kl,
                reject_easy=config.rl.reject_easy, rl_lr=config.rl.lr,
                rho=sim.prevalence if config.tree is None else float("nan"),
                sft_epochs=sft_epochs, engine=sim.engine, seed=sim.seed,
            ))
    base, begin, end = stages[0][2], stages[1][2], stages[-1][2]
    summary = dict(
        method=config.rl.method, start=config.start, rho=sim.prevalence, k_max=int(base.k[-1]),
        pass1_base=float(base.pass_at_k[0]), pass1_start=float(begin.pass_at_k[0]), pass1_rl=float(end.pass_at_k[0]),
        passk_base=float(base.pass_at_k[-1]), passk_start=float(begin.pass_at_k[-1]), passk_rl=float(end.pass_at_k[-1]),
        k_star_rl_vs_base=crossover_k(base.k, base.pass_at_k, end.pass_at_k),
        fork_accuracy_rl=end.fork_accuracy, fork_confidence_rl=_mean(end.fork_confidence_correct, end.fork_confidence_wrong),
    )
    return PosttrainResult(config, pl.DataFrame(rows), summary, reward)


def _mean(a: float, b: float) -> float:
    vals = [x for x in (a, b) if np.isfinite(x)]
    return float(np.mean(vals)) if vals else float("nan")


POSTTRAIN_KEYS = ("start", "evaluations", "tree")


def load_posttrain_config(path=None, *, rl: dict | None = None, start=None, evaluations=None, tree=None,
                          **simulation_overrides) -> PosttrainConfig:
    """A config from a TOML file: the tables of ``markovfork simulate``'s config (the task, the
    SFT mix and settings), an ``[rl]`` table (RLConfig's fields) and top-level ``start`` and
    ``evaluations``; then the overrides (``rl``: RLConfig fields; the rest: simulate's override
    keys). ``None`` values are ignored. The RL engine is the simulation's."""
    from markovfork.plumbing.config_reader import from_mapping
    from markovfork.plumbing.io import read_toml
    from markovfork.sft.config import load_config

    data = read_toml(path) if path is not None else {}
    rl_data = data.pop("rl", {})
    if not isinstance(rl_data, dict):
        raise ValueError(f"[rl] must be a table, got {checks._show(rl_data)}")
    top = {key: data.pop(key) for key in POSTTRAIN_KEYS if key in data}
    simulation = load_config(data=data, **simulation_overrides)
    rl_data = {**rl_data, **{key: v for key, v in (rl or {}).items() if v is not None}}
    if "engine" in rl_data and rl_data["engine"] != simulation.engine:
        raise ValueError(f"[rl] engine {rl_data['engine']!r} differs from the simulation's {simulation.engine!r}; set engine once")
    rl_config = from_mapping(RLConfig, {**rl_data, "engine": simulation.engine}, "rl")
    top.update({key: v for key, v in (("start", start), ("evaluations", evaluations), ("tree", tree)) if v is not None})
    from markovfork.plumbing.config_reader import check_value

    values = {key: check_value(int if key == "evaluations" else str, v, key) for key, v in top.items()}
    return PosttrainConfig(rl=rl_config, simulation=simulation, **values)


def posttrain_grid(base: PosttrainConfig, methods=None, kls=None, seeds=None, rejects=None) -> list[PosttrainConfig]:
    """The product methods x kl x reject_easy x seeds, each defaulting to the base's value."""
    from dataclasses import replace
    from itertools import product

    for name, values in (("methods", methods), ("kl", kls), ("seeds", seeds), ("reject_easy", rejects)):
        values = list(values or ())
        dup = checks.first_repeat(values)
        if dup is not None:
            raise ValueError(f"{name} lists {dup} twice, got {values}: each run would be made twice")
    out = []
    for method, kl, reject, seed in product(methods or [base.rl.method], kls or [base.rl.kl],
                                            rejects or [base.rl.reject_easy], seeds or [base.simulation.seed]):
        rl = replace(base.rl, method=method, kl=kl, reject_easy=reject, seed=seed)
        out.append(replace(base, rl=rl, simulation=replace(base.simulation, seed=seed)))
    return out


def posttrain_table(config: PosttrainConfig):
    """One run's table (a module-level function: sweeps send it to worker processes)."""
    return posttrain(config).table


RUN_KEYS = ("method", "kl", "reject_easy", "seed")  # what tells the runs of a posttrain table apart


def at_end_of_rl(table):
    """The table's base and start rows, and each run's RL rows at its last snapshot only."""
    import polars as pl

    rl = pl.col("stage") == "rl"
    last = pl.col("iteration").filter(rl).max().over(list(RUN_KEYS))
    return table.filter(~rl | (pl.col("iteration") == last))
