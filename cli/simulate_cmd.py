"""``markovfork simulate`` and ``markovfork sweep``: SFT on the path-star task, base vs
fine-tuned pass@k over epochs (thin over :mod:`markovfork.sft.simulate`)."""

from __future__ import annotations

from dataclasses import asdict

import click

from markovfork.cli import main
from markovfork.cli.options import (
    Needs, check_runs, choice_list, needs, without_scheduler, echo_json, echo_written, list_option, planned_outputs, scheduler_option, seed_option,
    workers_option, write_results,
)
from markovfork.cli.task_options import common_options, evaluation_options, evaluation_overrides, load, overrides
from markovfork.sft.data import DIVERSITY
from markovfork.sft.simulate import config_dict, config_grid, simulate, sweep

SIMULATE_FIGURES = ("pass_at_k", "shrinkage_vs_epochs", "fork_confidence")
SWEEP_FIGURES = ("pass_at_k", "shrinkage_vs_rho", "shrinkage_vs_epochs", "fork_confidence")


def _write(prefix, table, figure_names) -> list[str]:
    """Draw the figures asked for, then write them and the table as one output set."""
    from markovfork.reporting.figures import results_figures

    return write_results(prefix, table, results_figures(table, figure_names))


# ----------------------------------------------------------------------------- simulate
@main.command("simulate")
@needs(
    Needs("--samples", "with --engine sampled or --spread M >= 1",
          lambda p: p["engine"] == "sampled" or (p["spread"] or 0) > 0, ["engine", "spread"]),
    *(Needs(o, "with --spread M >= 1", lambda p: (p["spread"] or 0) > 0, ["spread"])
      for o in ("--spread-at", "--spread-min-p")),
)
@click.option("--decision-points", "--forks", "forks", type=click.IntRange(min=0), default=None, metavar="N",
              help="Fork-crossing training trajectories (decision points in the data): rho = N / train problems. "
                   "--forks is the same option (in tree and coverage, --forks counts fork nodes). Excludes --rho.")
@click.option("--rho", type=float, default=None,
              help="Fork prevalence in [0, 1]: share of training trajectories through the decision point.  [default: 1]")
@click.option("--epochs", type=int, default=None, help="SFT epochs.  [default: 50]")
@click.option("--lr", type=float, default=None, help="Learning rate (gradient-flow time per epoch).  [default: 20]")
@click.option("--diversity", type=click.Choice(DIVERSITY), default=None,
              help="data: one mode per problem; problem: every problem in both modes; rationale: the fork "
                   "trajectories carry a rationale.  [default: data]")
@seed_option("Seed of the task, data, minibatches and rollouts.  [default: 0]")
@evaluation_options(temperature_list=False)
@common_options
def simulate_command(forks, rho, epochs, lr, diversity, seed, temperature, top_k, top_p, min_p, spread, spread_at,
                     spread_min_p, engine, n_train, n_test, feature_dim, k, n_samples, config_file, out, as_json,
                     no_progress):
    """Fine-tune on a mix of fork and fork-free trajectories and compare pass@k with the base model.

    Prints base vs post-trained pass@1 and pass@k at the largest k, the crossover k* and the
    shrinkage. Python: markovfork.sft.simulate.simulate.
    """
    if forks is not None and rho is not None:
        raise click.UsageError(f"--forks {forks} (--decision-points) and --rho {rho:g} are mutually exclusive "
                               "(rho = decision points / train problems)")
    prefix = planned_outputs(out, SIMULATE_FIGURES, inputs=[config_file])
    changes = overrides(engine, n_train, n_test, feature_dim, k, forks=forks, rho=rho, diversity=diversity,
                        seed=seed, **{"train.epochs": epochs, "train.lr": lr},
                        **evaluation_overrides(temperature, top_k, top_p, min_p, spread, spread_at, spread_min_p))
    config = load(config_file, changes, k, n_samples)  # --rho or --forks replaces the file's other one
    result = simulate(config, progress=not no_progress)
    paths = _write(prefix, result.table, SIMULATE_FIGURES) if prefix is not None else []
    if as_json:
        config_json = {**config_dict(config), "rho": config.prevalence}  # the rho in effect (forks / n_train when forks is set)
        echo_json({"summary": asdict(result.summary), "config": config_json, "files": paths})
        return
    for line in result.summary.lines():
        click.echo(line)
    echo_written(paths)


# ----------------------------------------------------------------------------- sweep
@main.command("sweep")
@needs(
    Needs("--samples", "with --engine sampled or --spread M >= 1",
          lambda p: p["engine"] == "sampled" or (p["spread"] or 0) > 0, ["engine", "spread"]),
    *(Needs(o, "with --spread M >= 1", lambda p: (p["spread"] or 0) > 0, ["spread"])
      for o in ("--spread-at", "--spread-min-p")),
    without_scheduler(),
)
@click.option("--rho", "rhos", callback=list_option(float, "--rho"), default=None, metavar="LIST",
              help="Prevalences: 0,0.5,1 or the inclusive range 0:1:0.1.  [default: the config's]")
@click.option("--epochs", "epochs", callback=list_option(int, "--epochs", low=0), default=None, metavar="LIST",
              help="Epoch counts, e.g. 10,50.  [default: 50]")
@click.option("--lr", "lrs", callback=list_option(float, "--lr"), default=None, metavar="LIST",
              help="Learning rates, e.g. 10,20.  [default: 20]")
@click.option("--seeds", "seeds", callback=list_option(int, "--seeds", low=0), default=None, metavar="LIST",
              help="Seeds, e.g. 0,1,2 or 0:9:1.  [default: the config's seed]")
@seed_option("The seed when --seeds is not given.  [default: 0]")
@click.option("--diversity", "diversities", callback=choice_list(DIVERSITY, "--diversity", "diversity"), default=None, metavar="LIST",
              help="Diversity modes: any of data,problem,rationale.  [default: data]")
@workers_option()
@scheduler_option
@evaluation_options(temperature_list=True)
@common_options
def sweep_command(rhos, epochs, lrs, seeds, seed, diversities, workers, scheduler, temperatures, top_k, top_p, min_p, spread,
                  spread_at, spread_min_p, engine, n_train, n_test, feature_dim, k, n_samples, config_file, out,
                  as_json, no_progress):
    """Run the grid rho x epochs x lr x seeds x diversity x temperature in parallel and tabulate shrinkage.

    Prints one row per run (last epoch, largest k). Python: markovfork.sft.simulate.config_grid
    and sweep.
    """
    if seeds is not None and seed is not None:
        raise click.UsageError(f"--seed {seed} and --seeds are mutually exclusive")
    if temperatures is not None and any(not t > 0 for t in temperatures):
        raise click.BadParameter(f"temperatures must be > 0, got {min(temperatures):g}", param_hint="'--temperature'")
    check_runs(rhos, epochs, lrs, seeds, diversities, temperatures)
    prefix = planned_outputs(out, SWEEP_FIGURES, inputs=[config_file])
    evaluation = evaluation_overrides(None, top_k, top_p, min_p, spread, spread_at, spread_min_p)
    base = load(config_file, overrides(engine, n_train, n_test, feature_dim, k, seed=seed, **evaluation), k, n_samples)
    configs = config_grid(base, rhos=rhos, epochs=epochs, lrs=lrs, seeds=seeds, diversities=diversities,
                          temperatures=temperatures)
    from markovfork.reporting.summaries import sweep_summary  # Polars: not on simulate's path

    table = sweep(configs, workers=workers, progress=not no_progress, scheduler=scheduler)
    runs = sweep_summary(table)
    paths = _write(prefix, table, SWEEP_FIGURES) if prefix is not None else []
    if as_json:
        grid = {"rho": sorted({c.prevalence for c in configs}), "epochs": sorted({c.train.epochs for c in configs}),
                "lr": sorted({c.train.lr for c in configs}), "seed": sorted({c.seed for c in configs}),
                "diversity": list(dict.fromkeys(c.diversity for c in configs)),
                "temperature": sorted({c.train.decoding.temperature for c in configs})}
        echo_json({"config": config_dict(base), "grid": grid, "runs": runs.to_dicts(), "files": paths})
        return
    _print_runs(runs, len(configs))
    echo_written(paths)


def _print_runs(runs, n_configs: int) -> None:
    k = int(runs["k"].max())
    extra = [c for c in ("engine", "lr", "epochs", "seed", "temperature") if c in runs.columns and runs[c].n_unique() > 1]
    click.echo(f"{n_configs} runs, {runs['engine'][0]} engine, last epoch, k = {k}")
    head = f"{'rho':>6}  {'diversity':<9}" + "".join(f"  {c:>8}" for c in extra)
    click.echo(head + f"  {'shrinkage':>9}  {'pass@1 base':>11}  {'post':>6}  {f'pass@{k} base':>12}  {'post':>6}")
    for r in runs.iter_rows(named=True):
        cells = "".join(f"  {r[c]:>8g}" if not isinstance(r[c], str) else f"  {r[c]:>8}" for c in extra)
        r = {key: round(v, 4) + 0.0 if isinstance(v, float) else v for key, v in r.items()}  # no "-0.0000"
        click.echo(
            f"{r['rho']:>6.3g}  {r['diversity']:<9}{cells}  {r['shrinkage']:>+9.4f}  {r['pass1_base']:>11.4f}  "
            f"{r['pass1_post']:>6.4f}  {r['pass_at_k_base']:>12.4f}  {r['pass_at_k_post']:>6.4f}"
        )
