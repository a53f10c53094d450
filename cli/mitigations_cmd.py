"""``markovfork mitigations``: every mitigation of coverage shrinkage priced side by side (thin
over :mod:`markovfork.experiments.mitigations`)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import click

from markovfork.branching.task import Teacher
from markovfork.cli import main
from markovfork.cli.simulate_cmd import _figure_path, _finite, _load, _overrides, _planned_outputs, _parse_k, list_option
from markovfork.plumbing.io import figure_writer, table_writers, write_outputs
from markovfork.experiments.mitigations import DEFAULT_RHO, MitigationsConfig, run_mitigations
from markovfork.sft.simulate import ENGINES
from markovfork.model.spread import AT_KINDS


@main.command("mitigations")
@click.option("--rho", type=float, default=None, help="Fork prevalence of the SFT run.  [default: 0.5]")
@click.option("--epochs", type=int, default=None, help="SFT epochs.  [default: 50]")
@click.option("--engine", type=click.Choice(ENGINES), default=None, help="analytic or sampled.  [default: analytic]")
@click.option("--temperatures", callback=list_option(float, "--temperatures"), default=None, metavar="LIST",
              help="Evaluation temperatures.  [default: 0.5,0.8,1.5,2]")
@click.option("--min-p", "min_ps", callback=list_option(float, "--min-p"), default=None, metavar="LIST",
              help="min-p values.  [default: 0.1]")
@click.option("--spread", "spreads", callback=list_option(int, "--spread"), default=None, metavar="LIST",
              help="Spread-first: the samples split over the top M children.  [default: 2]")
@click.option("--spread-at", type=click.Choice(AT_KINDS), default=None, help="Where to spread.  [default: fork]")
@click.option("--spread-min-p", type=float, default=None,
              help="A child qualifies for spreading with p >= this * top p.  [default: 0]")
@click.option("--beta", type=float, default=None, help="Branching rate of the branch-heavy teacher.  [default: 0.4]")
@click.option("--filter", "shares", callback=list_option(float, "--filter"), default=None, metavar="LIST",
              help="Shares of the most-branching trajectories to drop.  [default: 0,0.5]")
@click.option("--budget", type=int, default=None, help="Token budget of the branching task.  [default: 16]")
@click.option("--k", "k", callback=_parse_k, default=None, metavar="LIST", help="k values.  [default: 1,2,4,...,64]")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed.  [default: 0]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="TOML file of the SFT run (as for simulate); options given here override it.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, metavar="PREFIX",
              help="Write PREFIX.parquet, PREFIX.csv and PREFIX_pass_at_k.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar (it is shown only on a terminal anyway).")
def mitigations_command(rho, epochs, engine, temperatures, min_ps, spreads, spread_at, spread_min_p, beta, shares, budget,
                        k, seed, config_file, out, as_json, no_progress):
    """Price every mitigation against one fork-heavy SFT run: decoding (temperature, min-p,
    spread-first), data (problem-level diversity, rationale) and filtering branch-heavy data.

    Prints pass@1 and pass@k at the largest k per mitigation. Python:
    markovfork.experiments.mitigations.run_mitigations.
    """
    prefix = _planned_outputs(out, ("pass_at_k",))
    simulation = _load(config_file, _overrides(engine, None, None, None, k, rho=DEFAULT_RHO if rho is None and config_file is None
                                                   else rho, seed=seed, **{"train.epochs": epochs}), k, None)
    base = MitigationsConfig(simulation=simulation)
    branching = base.branching
    if beta is not None:
        branching = replace(branching, teachers=(Teacher(0.0), Teacher(beta)))
    changes = dict(temperatures=temperatures, min_ps=min_ps, spreads=spreads, spread_at=spread_at,
                   spread_min_p=spread_min_p)
    branching = replace(branching, **{key: v for key, v in (("filtered_shares", shares), ("budget", budget),
                                                          ("seed", seed)) if v is not None})
    config = replace(base, branching=branching,
                     **{key: tuple(v) if isinstance(v, list) else v for key, v in changes.items() if v is not None})
    table = run_mitigations(config, progress=not no_progress)
    paths = []
    if prefix is not None:
        from markovfork.reporting.comparison_figures import mitigations_figure

        writers = {**table_writers(table, prefix), _figure_path(prefix, "pass_at_k"): figure_writer(mitigations_figure(table))}
        paths = [str(p) for p in write_outputs(writers)]
    k_max = int(table["k"].max())
    if as_json:
        rows = [{key: _finite(v) for key, v in r.items()} for r in table.iter_rows(named=True)]
        click.echo(json.dumps({"config": {"rho": simulation.prevalence, "epochs": simulation.train.epochs,
                                          "engine": simulation.engine, "seed": simulation.seed,
                                          "branching": asdict(config.branching)},
                               "rows": rows, "files": paths}, indent=2, default=str))
        return
    click.echo(f"SFT at rho = {simulation.prevalence:g}, {simulation.train.epochs} epochs, {simulation.engine} engine, "
               f"seed {simulation.seed}; branching task: budget {config.branching.budget} tokens")
    click.echo(f"{'group':<10} {'mitigation':<56} {'pass@1':>7} {f'pass@{k_max}':>8}")
    for (group, name), part in table.group_by(["group", "mitigation"], maintain_order=True):
        part = part.sort("k")
        click.echo(f"{group:<10} {name:<56} {part['pass_at_k'][0]:>7.3f} {part['pass_at_k'][-1]:>8.3f}")
    if paths:
        click.echo("wrote " + ", ".join(paths))
