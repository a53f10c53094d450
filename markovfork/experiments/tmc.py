"""The multi-task chain (TMC) experiment of the Markovian view of post-training, end to end.

1. Build the chain ``tmc_chain(layers, m0, m, c, seed)`` (tasks 1 and 2: 0 -> 0 and 1 -> 1).
2. Pretrain the tabular policy (one softmax per (layer, state)) by SGD on paths of the chain
   (:func:`markovfork.rl.pretrain.pretrain_chain`): the *base* model, not the chain itself.
3. Fine-tune on task 1 only with each method, on its instance distribution (every valid path
   correct independently with its expected correctness): the analytic engine takes the exact
   expectation over all 2^V instances, the sampled engine draws a fresh instance per iteration.
4. Score every policy on ``instances`` random instances of each task (the same instances for
   every method): pass@k, the easy / hard / invalid split of its paths, its path entropy.

Rows ``chain`` (the true transitions) and ``base`` (the pretrained policy) come first. Methods:
the RLVR rules of :mod:`markovfork.rl.config` (``reinforce``, ``raft``, ``ppo``, ``grpo``,
``passk``, ``unlikely``), ``reject-easy`` (REINFORCE that skips an instance when one of
``reject_easy`` base samples solves it), ``kl`` (REINFORCE with the KL penalty ``beta``) and
``kl-tilt``, the KL-regularised closed form ``p(t | s) ∝ p_base(t | s) exp(A(s, t) / beta)`` with
the task-1 advantage of each chain edge (the mean over the tree steps that use the edge,
weighted by how often the base reaches them), applied to the shared rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property

import numpy as np

from markovfork.plumbing import checks
from markovfork.tasks import tmc_chain, tmc_problems
from markovfork.tasks.tmc_policy import (
    chain_edge_index, chain_node_logits, chain_theta_from_transitions, n_chain_edges, tmc_instance_population,
)
from markovfork.model.policy import transition_probs
from markovfork.rl.config import RLConfig
from markovfork.rl.evaluate import score_policy
from markovfork.rl.pretrain import pretrain_chain
from markovfork.rl.train import RLStart, tabular_model, train_rl
from markovfork.plumbing.seeds import child_seed

__all__ = ["TMC_METHODS", "TMC_RL", "TMCConfig", "TMCResult", "run_tmc", "kl_tilt_theta"]

TMC_METHODS = ("reinforce", "raft", "ppo", "grpo", "passk", "unlikely", "reject-easy", "kl", "kl-tilt")
DEFAULT_METHODS = ("reinforce", "raft", "ppo", "grpo", "reject-easy", "kl", "kl-tilt")
_RULE = {"reject-easy": "reinforce", "kl": "reinforce"}
TRAIN_INSTANCES = 4096  # sampled training instances when a task has more than 12 valid paths
# The RL settings of every method's run (each declared once, in RLConfig), with the experiment's
# defaults: 1000 iterations at lr 0.1, beta 0.5 (kl, kl-tilt), r = 5 (reject-easy), and no shared
# skill (the chain policy is tabular). ``method`` and ``seed`` are set per method by
# TMCConfig.rl_config; ``kl`` applies to the kl methods only, ``reject_easy`` to reject-easy only.
TMC_RL = RLConfig(method="reinforce", iterations=1000, lr=0.1, kl=0.5, reject_easy=5, train_skill=False)


@dataclass(frozen=True)
class TMCConfig:
    """The experiment's settings; defaults are the paper's (L=4, M0=2, M=2, C=1, K=30, 200
    instances, 1000 fine-tuning iterations) and ours where it states none (lr, G, beta).

    ``rl`` holds the RL settings (:class:`~markovfork.rl.config.RLConfig`, :data:`TMC_RL` by
    default): the engine (also the scoring's), iterations, lr, group_size, kl (beta of ``kl`` and
    ``kl-tilt``), reject_easy, reject_reference, passk_k, and the rest of RLConfig. Its ``method``
    and ``seed`` are not read: each method of ``methods`` is one run, seeded from ``seed``."""

    layers: int = 4
    m0: int = 2
    m: int = 2
    c: int = 1
    k: int = 30  # K: the largest k of pass@k, and the rollouts per instance (sampled engine)
    ks: tuple[int, ...] = ()  # smaller k values also scored, each in [1, K): one table row per k
    instances: int = 200
    methods: tuple[str, ...] = DEFAULT_METHODS
    rl: RLConfig = TMC_RL  # the RL runs' settings (RLConfig is frozen: one shared default is safe)
    pretrain_steps: int = 200
    pretrain_batch: int = 256
    pretrain_lr: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.rl, RLConfig):
            raise ValueError(f"rl must be an RLConfig, got {checks._show(self.rl)}")
        for name, low in (("layers", 3), ("m0", 2), ("m", 2), ("c", 1), ("k", 1), ("instances", 1),
                          ("pretrain_steps", 0), ("pretrain_batch", 1)):
            checks.integer(name, getattr(self, name), low)
        ks = tuple(self.ks)
        for i, kk in enumerate(ks):
            checks.integer(f"ks[{i}]", kk, 1, self.k - 1)
        if len(set(ks)) != len(ks):
            raise ValueError(f"ks must not repeat, got {', '.join(map(str, ks))}")
        object.__setattr__(self, "ks", tuple(sorted(ks)))
        self._check_sizes()
        methods = tuple(self.methods)
        if not methods:
            raise ValueError(f"methods must name at least one of {', '.join(TMC_METHODS)}")
        for m in methods:
            if m not in TMC_METHODS:
                raise ValueError(f"unknown method {m!r}; choose from {', '.join(TMC_METHODS)}")
        if len(set(methods)) != len(methods):
            raise ValueError(f"methods must not repeat, got {', '.join(methods)}")
        object.__setattr__(self, "methods", methods)
        checks.real("kl", self.rl.kl, 0.0, low_open=True)
        checks.real("pretrain_lr", self.pretrain_lr, 0.0, low_open=True)
        for m in methods:  # every setting of every RL run is checked here, before any work
            self.rl_config("reinforce" if m == "kl-tilt" else m)

    def _check_sizes(self) -> None:
        """Refuse, before anything is allocated, a chain whose unrolled tree exceeds
        ``tasks._common.MAX_NODES`` nodes, and evaluation arrays (two tasks' instance masks and step
        probabilities, 9 bytes per instance and node; sampled: the k rollouts of each instance)
        that do not fit in memory (:func:`markovfork.plumbing.checks.fits_in_memory`)."""
        from markovfork.tasks._common import MAX_NODES

        # nodes = 1 + m0 (1 + m + ... + m^(layers-1)); its log10, without building the number
        log10 = math.log10(self.m0) + self.layers * math.log10(self.m) - math.log10(self.m - 1)
        if log10 > math.log10(MAX_NODES) + 1:
            raise ValueError(f"layers {self.layers}, m0 {self.m0} and m {self.m} unroll to a tree of about 10^{log10:.0f} "
                             f"nodes, more than {MAX_NODES:,}: choose smaller ones")
        nodes = 1 + self.m0 * (self.m**self.layers - 1) // (self.m - 1)
        if nodes > MAX_NODES:
            raise ValueError(f"layers {self.layers}, m0 {self.m0} and m {self.m} unroll to a tree of {nodes:,} nodes, "
                             f"more than {MAX_NODES:,}: choose smaller ones")
        checks.fits_in_memory("instances", self.instances, 2 * 9 * self.instances * nodes,
                              f"two tasks' instance masks and step probabilities over {nodes:,} nodes")
        if self.rl.engine == "sampled":
            checks.fits_in_memory("k", self.k, 2 * 8 * self.instances * self.k,
                                  f"the sampled engine's k rollouts of {self.instances} instances")

    def rl_config(self, method: str) -> RLConfig:
        """The RL run of one method: :attr:`rl` with the method's update rule, its kl / reject_easy
        (0 for the other methods) and a seed from the experiment's seed and the method."""
        return replace(
            self.rl, method=_RULE.get(method, method), kl=self.rl.kl if method == "kl" else 0.0,
            reject_easy=self.rl.reject_easy if method == "reject-easy" else 0,
            seed=child_seed(self.seed, "tmc-rl", method),
        )


@dataclass(frozen=True)
class TMCResult:
    config: TMCConfig
    rows: list = field(repr=False)  # one dict per (method, task, k): plain Python values, the columns of ``table``
    theta: dict = field(repr=False)  # method -> chain logits after training
    reward: dict = field(repr=False)  # method -> (iterations + 1,) training reward curve

    @cached_property
    def table(self):
        """The rows as a polars DataFrame (built on first use: ``tmc --json`` does not import Polars)."""
        import polars as pl

        return pl.DataFrame(self.rows)


def kl_tilt_theta(tmc, theta, population, weights, beta: float) -> np.ndarray:
    """Chain logits of ``p(t | s) ∝ p_base(t | s) exp(A(s, t) / beta)``: ``theta + A / beta``, where
    A(s, t) is the reach-weighted mean over the task's tree steps on chain edge (s, t) of
    ``V(v) - V(u)``, V the expected population reward under the base (0 on unreached edges)."""
    from markovfork.engines.exact import reach_probability
    from markovfork.rl.reward_models import orm_scores, step_advantage

    tree = tmc.tree
    probs = transition_probs(tree, chain_node_logits(tmc, theta)[None, :])[0]
    adv = step_advantage(tree, probs, orm_scores(population, weights))
    reach = reach_probability(tree, probs[None, :], population.start[:1])[0]
    edge = chain_edge_index(tmc)
    use = (edge >= 0) & (np.arange(tree.n_nodes) > 0)
    weight = np.where(use, reach[np.maximum(tree.parent, 0)], 0.0)
    n_edges = n_chain_edges(tmc)
    total = np.bincount(edge[use], weights=weight[use], minlength=n_edges)
    summed = np.bincount(edge[use], weights=(weight * adv)[use], minlength=n_edges)
    mean_adv = np.divide(summed, total, out=np.zeros(n_edges), where=total > 0)
    return np.asarray(theta, dtype=np.float64) + mean_adv / beta


def _training_instances(tmc, config: TMCConfig):
    try:
        return tmc_instance_population(tmc, 0)
    except ValueError:  # too many valid paths to enumerate: a large sample, equal weights
        problems = tmc_problems(tmc.tree, tmc, 0, TRAIN_INSTANCES, seed=child_seed(config.seed, "tmc-train"))
        return problems, np.full(TRAIN_INSTANCES, 1.0 / TRAIN_INSTANCES)


def _final_reward(curve) -> float:
    """Training reward at the end: the expected reward after the last step (analytic), or the
    mean sampled reward over the last 50 iterations (sampled; NaN entries are all-rejected)."""
    if curve is None:
        return float("nan")
    tail = curve[-51:-1] if np.isnan(curve[-1]) else curve[-1:]
    tail = tail[~np.isnan(tail)]
    return float(tail.mean()) if tail.size else float("nan")


def run_tmc(config: TMCConfig = TMCConfig(), progress=None) -> TMCResult:
    """Run the experiment (module docstring); ``progress(label)`` is called after each row."""
    tmc = tmc_chain(config.layers, config.m0, config.m, config.c, seed=config.seed)
    tree = tmc.tree
    base = pretrain_chain(tmc, config.pretrain_steps, config.pretrain_batch, config.pretrain_lr,
                          seed=child_seed(config.seed, "tmc-pretrain"))
    population, weights = _training_instances(tmc, config)
    model = tabular_model(tree, chain_edge_index(tmc), n_chain_edges(tmc))
    tests = [tmc_problems(tree, tmc, t, config.instances, seed=child_seed(config.seed, "tmc-eval", t + 1)) for t in (0, 1)]
    thetas = {"chain": chain_theta_from_transitions(tmc), "base": base}
    rewards = {}
    for method in config.methods:
        if method == "kl-tilt":
            thetas[method] = kl_tilt_theta(tmc, base, population, weights, config.rl.kl)
        else:
            trace = train_rl(model, population, config.rl_config(method), RLStart(base), weights=weights)
            thetas[method], rewards[method] = trace.theta[-1], trace.reward
        if progress is not None:
            progress(method)
    row_ks = [*config.ks, config.k]
    ks = np.unique(np.array([1, *row_ks], dtype=np.int64))
    rows = []
    for method, theta in thetas.items():
        z = chain_node_logits(tmc, theta)
        for task, problems in enumerate(tests):
            probs = transition_probs(tree, np.broadcast_to(z, (len(problems), tree.n_nodes)))
            score = score_policy(tree, probs, problems, ks, config.rl.engine, n_samples=config.k,
                                 seed=child_seed(config.seed, "tmc-score", task + 1))
            rows += [dict(
                method=method, task=task + 1, k=kk, pass_at_1=float(score.pass_at_k[0]),
                pass_at_k=float(score.pass_at_k[np.searchsorted(ks, kk)]), easy_valid=score.easy_valid,
                hard_valid=score.hard_valid, invalid=score.invalid, path_entropy=score.path_entropy,
                final_reward=_final_reward(rewards.get(method)),
                engine=config.rl.engine, iterations=config.rl.iterations, lr=config.rl.lr, seed=config.seed,
            ) for kk in row_ks]
    return TMCResult(config, rows, thetas, rewards)


def config_dict(config: TMCConfig) -> dict:
    """The settings as plain data (for ``--json`` and the saved tables); the RL settings are the
    table ``rl`` (RLConfig's fields, without ``method`` and ``seed``, set per method)."""
    d = asdict(config)
    d["rl"] = {key: value for key, value in d["rl"].items() if key not in ("method", "seed")}
    d["methods"] = list(config.methods)
    d["ks"] = list(config.ks)
    return d

