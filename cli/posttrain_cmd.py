"""``markovfork posttrain``: RL (RLVR) on the path-star task of ``simulate``, from the base model
or after SFT; lists of methods, KL coefficients, reject-easy settings or seeds run as a sweep
(thin over :mod:`markovfork.experiments.posttrain`)."""

from __future__ import annotations

import json
import math

import click

from markovfork.cli import main
from markovfork.cli.simulate_cmd import (
    MAX_RUNS, _common_options, _figure_path, _finite, _overrides, _planned_outputs, choice_list, list_option,
    scheduler_option,
)
from markovfork.plumbing.io import figure_writer, table_writers, write_outputs
from markovfork.rl.config import METHODS, REJECT_REFERENCES
from markovfork.experiments.posttrain import (
    RUN_KEYS, STARTS, at_end_of_rl, load_posttrain_config, posttrain, posttrain_grid, posttrain_table,
)
from markovfork.sft.data import DIVERSITY

POSTTRAIN_FIGURES = ("pass_at_k",)


@main.command("posttrain")
@click.option("--method", "methods", callback=choice_list(METHODS, "--method", "method"), default=None, metavar="LIST",
              help=f"RL update rule(s): {', '.join(METHODS)}; a list runs a sweep.  [default: grpo]")
@click.option("--from", "start", type=click.Choice(STARTS), default=None,
              help="Start RL from the base model or after SFT on the --rho mix.  [default: sft]")
@click.option("--tree", "tree", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="RL from the base policy of this JSON tree (docs/model.md) instead of the path-star task.")
@click.option("--iterations", type=int, default=None, help="RL iterations.  [default: 200]")
@click.option("--lr", type=float, default=None, help="RL learning rate (gradient ascent step).  [default: 1]")
@click.option("--group-size", type=int, default=None, help="Rollouts per instance (G).  [default: 8]")
@click.option("--batch-instances", type=int, default=None, help="Sampled engine: instances per iteration.  [default: 1]")
@click.option("--kl", "kls", callback=list_option(float, "--kl"), default=None, metavar="LIST",
              help="KL penalty beta to the starting policy (a list runs a sweep).  [default: 0]")
@click.option("--reject-easy", "rejects", callback=list_option(int, "--reject-easy"), default=None, metavar="LIST",
              help="Skip an instance when one of R fresh samples is correct (0: off; a list runs a sweep).  [default: 0]")
@click.option("--reject-reference", type=click.Choice(REJECT_REFERENCES), default=None,
              help="Policy that draws the reject-easy samples.  [default: base]")
@click.option("--clip", type=float, default=None, help="PPO ratio clipping epsilon.  [default: 0.2]")
@click.option("--ppo-epochs", type=int, default=None, help="PPO gradient steps per batch.  [default: 4]")
@click.option("--passk-k", type=int, default=None, help="k of the pass@k objective (method passk).  [default: 4]")
@click.option("--unlikeliness", type=float, default=None, help="Penalty lambda of method unlikely.  [default: 0.5]")
@click.option("--evaluations", type=int, default=None, help="RL snapshots scored on the test set.  [default: 5]")
@click.option("--rho", type=float, default=None, help="SFT fork prevalence (share of forward trajectories).  [default: 1]")
@click.option("--epochs", type=int, default=None, help="SFT epochs before RL (--from sft).  [default: 50]")
@click.option("--sft-lr", type=float, default=None, help="SFT learning rate.  [default: 20]")
@click.option("--diversity", type=click.Choice(DIVERSITY), default=None, help="SFT mix: data, problem or rationale.")
@click.option("--seeds", "seeds", callback=list_option(int, "--seeds"), default=None, metavar="LIST",
              help="Seeds (a list runs a sweep; each run is seeded by its own seed).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="The seed when --seeds is not given.  [default: 0]")
@click.option("--workers", type=int, default=None, help="Sweep worker processes.  [default: all cores]")
@scheduler_option
@_common_options
def posttrain_command(methods, start, tree, iterations, lr, group_size, batch_instances, kls, rejects, reject_reference, clip,
                     ppo_epochs, passk_k, unlikeliness, evaluations, rho, epochs, sft_lr, diversity, seeds, seed, workers,
                     scheduler, engine, n_train, n_test, feature_dim, k, n_samples, config_file, out, as_json, no_progress):
    """RL post-training on the fork task: pass@k of base, start (SFT) and RL model.

    Prints pass@1 and pass@k at the largest k for the base, the start of RL and its end. With
    lists (--method a,b --kl 0,0.1 --reject-easy 0,5 --seeds 0,1) runs every combination in
    parallel. Python: markovfork.experiments.posttrain.
    """
    if seeds is not None and seed is not None:
        raise click.UsageError(f"--seed {seed} and --seeds are mutually exclusive")
    methods = None if methods is None else list(dict.fromkeys(methods))
    for name, values, low in (("--seeds", seeds, 0), ("--reject-easy", rejects, 0), ("--kl", kls, 0)):
        if values is not None and min(values) < low:
            raise click.BadParameter(f"values must be >= {low}, got {min(values)}", param_hint=f"'{name}'")
    if workers is not None and workers < 1:
        raise click.BadParameter(f"workers must be >= 1, got {workers}", param_hint="'--workers'")
    n_runs = math.prod(len(x) for x in (methods, kls, rejects, seeds) if x is not None)
    if n_runs > MAX_RUNS:
        raise click.UsageError(f"the grid has {n_runs} runs, more than the maximum {MAX_RUNS} (split the sweep)")
    prefix = _planned_outputs(out, POSTTRAIN_FIGURES)
    rl = dict(iterations=iterations, lr=lr, group_size=group_size, batch_instances=batch_instances,
              reject_reference=reject_reference, clip=clip, ppo_epochs=ppo_epochs, passk_k=passk_k,
              unlikeliness=unlikeliness)
    overrides = _overrides(engine, n_train, n_test, feature_dim, k, rho=rho, diversity=diversity, seed=seed,
                           **{"train.epochs": epochs, "train.lr": sft_lr})
    if k is not None and n_samples is None:
        n_samples = max(64, max(k))
    if tree is not None and start is None:
        start = "base"
    base = load_posttrain_config(config_file, rl=rl, start=start, evaluations=evaluations, tree=tree,
                                 **overrides, **{"train.n_samples": n_samples})
    configs = posttrain_grid(base, methods, kls, seeds, rejects)
    if len(configs) == 1 and scheduler is None:  # one run: in this process, with its own progress bar
        table = posttrain(configs[0], progress=not no_progress).table
    else:
        from markovfork.sft.simulate import sweep

        table = sweep(configs, workers=workers, progress=not no_progress, run=posttrain_table,
                      scheduler=scheduler)
    runs = _summaries(table)
    paths = _write(prefix, table) if prefix is not None else []
    if as_json:
        rows = [{key: _finite(v) for key, v in row.items()} for row in runs.iter_rows(named=True)]
        click.echo(json.dumps({"runs": rows, "files": paths}, indent=2))
        return
    _print(runs)
    if paths:
        click.echo("wrote " + ", ".join(paths))


def _write(prefix, table) -> list[str]:
    """The table and the pass@k figure, written as one output set."""
    from markovfork.reporting.comparison_figures import posttrain_pass_at_k_figure

    writers = {**table_writers(table, prefix),
               _figure_path(prefix, "pass_at_k"): figure_writer(posttrain_pass_at_k_figure(table))}
    return [str(p) for p in write_outputs(writers)]


def _summaries(table):
    """One row per run: pass@1 and pass@k_max of base, start and the last RL snapshot."""
    import polars as pl

    keys = list(RUN_KEYS)
    k_max = table["k"].max()
    t = at_end_of_rl(table)
    out = None
    for stage in ("base", "start", "rl"):
        s = t.filter(pl.col("stage") == stage)
        one = s.filter(pl.col("k") == 1).select(*keys, pl.col("pass_at_k").alias(f"pass1_{stage}"))
        big = s.filter(pl.col("k") == k_max).select(*keys, pl.col("pass_at_k").alias(f"passk_{stage}"))
        both = one.join(big, on=keys)
        out = both if out is None else out.join(both, on=keys)
    return out.with_columns(pl.lit(int(k_max)).alias("k")).sort(keys)


def _print(runs) -> None:
    k = int(runs["k"][0])
    click.echo(f"{runs.height} run(s); pass@1 and pass@{k}: base -> start of RL -> end of RL")
    click.echo(f"{'method':<18} {'kl':>6} {'rej':>4} {'seed':>4}  {'pass@1':^22}  {f'pass@{k}':^22}")
    for r in runs.iter_rows(named=True):
        click.echo(
            f"{r['method']:<18} {r['kl']:>6g} {r['reject_easy']:>4} {r['seed']:>4}  "
            f"{r['pass1_base']:.3f} -> {r['pass1_start']:.3f} -> {r['pass1_rl']:.3f}  "
            f"{r['passk_base']:.3f} -> {r['passk_start']:.3f} -> {r['passk_rl']:.3f}"
        )
