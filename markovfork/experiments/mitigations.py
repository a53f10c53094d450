"""Every mitigation of coverage shrinkage side by side, each priced against the same runs.

* **decoding** (the fork-heavy SFT model trained once, then evaluated under each rule): the
  temperatures, min-p values and spread-first-decision sampling (:mod:`markovfork.model.spread`) of
  the config, next to the base model and the SFT model at temperature 1;
* **data** (the same SFT run with another mix): problem-level diversity (every problem shown with
  every arm) and rationale synthesis (a step that names the arm);
* **filtering** (the branch-heavy task of :mod:`markovfork.branching`, a task of its own): SFT on
  branch-heavy data as it is and with its most-branching trajectories dropped, next to
  convergent data; pass@k there is ``1 - (1 - s)^k`` with s the exact success within the budget
  (every problem of that task is alike).

``run_mitigations(config)`` returns one table with a row per (group, mitigation, k).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from markovfork.plumbing import checks
from markovfork.branching.run import BranchingConfig, run_branching
from markovfork.branching.task import Teacher
from markovfork.plumbing.config_reader import check_fields
from markovfork.model.policy import Decoding
from markovfork.sft.data import DIVERSITY
from markovfork.sft.simulate import SimulationConfig, _evaluate, _progress, simulate
from markovfork.sft.train import TRAINERS, derive_seeds
from markovfork.model.spread import AT_KINDS, Spread

__all__ = ["MitigationsConfig", "run_mitigations", "GROUPS", "DEFAULT_RHO"]

GROUPS = ("decoding", "data", "filtering")
DEFAULT_RHO = 0.5  # the SFT run's fork prevalence when none is given (MitigationsConfig's docstring)


def _branching_default() -> BranchingConfig:
    return BranchingConfig(teachers=(Teacher(0.0), Teacher(0.4)), filtered_shares=(0.0, 0.5))


@dataclass(frozen=True)
class MitigationsConfig:
    """The fork-heavy SFT run (``simulation``) and the mitigations to price. Default rho = 0.5:
    half the training problems go through the fork, so the data mitigations have something to
    rebalance (at rho = 1 problem-level diversity is data-level diversity: every problem forward)."""

    simulation: SimulationConfig = field(default_factory=lambda: SimulationConfig(rho=DEFAULT_RHO))
    temperatures: tuple[float, ...] = (0.5, 0.8, 1.5, 2.0)
    min_ps: tuple[float, ...] = (0.1,)
    spreads: tuple[int, ...] = (2,)  # spread the samples over the top m children
    spread_at: str = "fork"  # "first", "fork" or a depth below the start, e.g. "2"
    spread_min_p: float = 0.0  # 0: the top m children whatever their probability (the forks paper)
    diversities: tuple[str, ...] = ("problem", "rationale")
    branching: BranchingConfig = field(default_factory=_branching_default)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.simulation.train.epochs < 1:  # the mitigations act on what SFT did: with no epoch there is nothing
            raise ValueError(f"the mitigations need at least one SFT epoch (epochs >= 1), got {self.simulation.train.epochs}")
        for i, t in enumerate(self.temperatures):
            checks.real(f"temperatures[{i}]", t, 0.0, low_open=True)
        for i, p in enumerate(self.min_ps):
            checks.real(f"min_ps[{i}]", p, 0.0, 1.0)
        for i, m in enumerate(self.spreads):
            checks.integer(f"spreads[{i}]", m, 1)
        checks.real("spread_min_p", self.spread_min_p, 0.0, 1.0)
        if self.spread_at not in AT_KINDS and not self.spread_at.isdigit():
            raise ValueError(f"spread_at must be first, fork or a depth >= 0 such as '2', got {self.spread_at!r}")
        for d in self.diversities:
            if d not in DIVERSITY or d == "data":
                raise ValueError(f"diversities lists data mitigations from {', '.join(x for x in DIVERSITY if x != 'data')}, got {d!r}")


def _rows(group: str, mitigation: str, ks, values) -> list[dict]:
    return [dict(group=group, mitigation=mitigation, k=int(k), pass_at_k=float(v)) for k, v in zip(ks, values)]


def run_mitigations(config: MitigationsConfig = MitigationsConfig(), progress: bool = False) -> "pl.DataFrame":
    """The comparison table (module docstring): group, mitigation, k, pass_at_k, and the setting."""
    import polars as pl

    sim = config.simulation
    n_steps = 1 + len(config.diversities) + 1
    rows: list[dict] = []
    with _progress(n_steps, "mitigations", progress) as bar:
        seeds = derive_seeds(sim.seed)
        ps = sim.task.build(seeds["task"])
        states = TRAINERS[sim.engine](ps, sim.mix, sim.train, sim.seed)
        base = next(states)
        for last in states:
            pass
        ks = sim.train.ks
        plain = replace(sim.train, decoding=Decoding(), spread=Spread())

        def score(state, **changes):
            return _evaluate(replace(sim, train=replace(plain, **changes)), ps, state, seeds["rollouts"]).pass_at_k

        rows += _rows("decoding", "base model", ks, score(base))
        rows += _rows("decoding", f"SFT rho={sim.prevalence:g}", ks, score(last))
        for t in config.temperatures:
            rows += _rows("decoding", f"temperature {t:g}", ks, score(last, decoding=Decoding(temperature=t)))
        for p in config.min_ps:
            rows += _rows("decoding", f"min-p {p:g}", ks, score(last, decoding=Decoding(min_p=p)))
        for m in config.spreads:
            rows += _rows("decoding", f"spread-first {m} at {config.spread_at}", ks,
                          score(last, spread=Spread(m, int(at) if (at := config.spread_at).isdigit() else at, config.spread_min_p)))
        bar.update(1)
        for d in config.diversities:
            run = simulate(replace(sim, diversity=d, train=plain))
            rows += _rows("data", f"{d}-level data" if d == "problem" else f"{d} synthesis", ks,
                          run.records[-1].evaluation.pass_at_k)
            bar.update(1)
        table = run_branching(config.branching)
        last_epoch = table.filter(pl.col("epoch") == table["epoch"].max())
        for r in last_epoch.iter_rows(named=True):
            if r["beta"] == 0.0 and r["filtered_share"] > 0:
                continue  # convergent data has no branches to drop
            name = "convergent data" if r["beta"] == 0.0 else f"branch-heavy (beta {r['beta']:g})"
            name += f", {r['filtered_share']:.0%} most-branching dropped" if r["filtered_share"] else ""
            s = min(max(float(r["success"]), 0.0), 1.0)
            rows += _rows("filtering", name, ks, 1.0 - (1.0 - s) ** np.asarray(ks, dtype=float))
        bar.update(1)
    out = pl.DataFrame(rows)
    return out.with_columns(
        pl.lit(sim.engine).alias("engine"), pl.lit(sim.prevalence).alias("rho"), pl.lit(sim.train.epochs).alias("epochs"),
        pl.lit(sim.seed).alias("seed"), pl.lit(config.branching.budget).alias("budget"),
    )
