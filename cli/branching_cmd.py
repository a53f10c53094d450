"""``markovfork branching``: SFT on convergent and branch-heavy trajectories under a length
budget, and filtering of the most-branching ones (thin over :mod:`markovfork.branching`)."""

from __future__ import annotations

import json

import click

from markovfork.branching.run import BranchingConfig, run_branching
from markovfork.branching.task import BranchingTask, Teacher
from markovfork.branching.train import ENGINES
from markovfork.cli import main
from markovfork.cli.simulate_cmd import _figure_path, _finite, _planned_outputs, list_option
from markovfork.plumbing.config_reader import from_mapping
from markovfork.plumbing.io import figure_writer, read_toml, table_writers, write_outputs

TASK_OPTIONS = ("points", "children", "depth", "n_correct")


def load_branching_config(path=None, *, betas=None, retries=None, task=None, **overrides) -> BranchingConfig:
    """A config from a TOML file (``[task]`` with BranchingTask's fields, ``teachers`` as a list
    of tables ``{beta, retries}``, the other BranchingConfig fields at the top level), then the
    overrides (``None``: not given); ``betas``: one teacher per branching rate (0: convergent)."""
    data = read_toml(path) if path is not None else {}
    task_data = data.get("task", {})
    if task:
        if not isinstance(task_data, dict):
            raise ValueError(f"[task] must be a table, got {task_data!r}")
        data["task"] = {**task_data, **{k: v for k, v in task.items() if v is not None}}
    if betas is not None:
        data["teachers"] = [{"beta": b, **({"retries": retries} if retries is not None else {})} for b in betas]
    data.update({k: v for k, v in overrides.items() if v is not None})
    teachers = data.pop("teachers", None)
    config = from_mapping(BranchingConfig, data)
    if teachers is None:
        return config
    if not isinstance(teachers, list) or not teachers:
        raise ValueError(f"teachers must be a non-empty list of {{beta, retries}} tables, got {teachers!r}")
    built = tuple(from_mapping(Teacher, t, f"teachers[{i}]") for i, t in enumerate(teachers))
    from dataclasses import replace

    return replace(config, teachers=built)


@main.command("branching")
@click.option("--beta", "betas", callback=list_option(float, "--beta"), default=None, metavar="LIST",
              help="Teachers' branching rates (0: convergent).  [default: 0,0.4]")
@click.option("--retries", type=int, default=None, help="Wrong entries per decision point at most.  [default: unbounded]")
@click.option("--filter", "shares", callback=list_option(float, "--filter"), default=None, metavar="LIST",
              help="Shares of the most-branching training trajectories to drop, each in [0, 1).  [default: 0]")
@click.option("--points", type=int, default=None, help="Decision points D.  [default: 8]")
@click.option("--children", type=int, default=None, help="Children b per decision point.  [default: 4]")
@click.option("--depth", type=int, default=None, help="Tokens h of a wrong branch.  [default: 10]")
@click.option("--correct", "n_correct", type=int, default=None, help="Correct children m per point.  [default: 1]")
@click.option("--budget", type=int, default=None, help="Tokens T allowed at evaluation.  [default: 16]")
@click.option("--indecipherable", "freeze_a", flag_value=True, default=None,
              help="The decisions are forks the policy cannot read: its decision logit a is not trained.")
@click.option("--engine", type=click.Choice(ENGINES), default=None,
              help="analytic: expected data, exact success; sampled: N trajectories, minibatch SGD, rollouts.")
@click.option("--epochs", type=int, default=None, help="SFT epochs.  [default: 50]")
@click.option("--lr", type=float, default=None, help="SFT learning rate.  [default: 1]")
@click.option("--train-size", "n_train", type=int, default=None, help="Sampled engine: trajectories per teacher.  [default: 2000]")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed.  [default: 0]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="TOML file (BranchingConfig's fields, [task], [[teachers]]); options given here override it.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, metavar="PREFIX",
              help="Write PREFIX.parquet, PREFIX.csv and PREFIX_curves.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the configuration and the last epoch's rows as JSON.")
def branching_command(betas, retries, shares, points, children, depth, n_correct, budget, freeze_a, engine, epochs, lr, n_train,
                      seed, config_file, out, as_json):
    """SFT on convergent vs branch-heavy trajectories: loss per token and success within a budget.

    Prints, per teacher and filtered share, the last epoch's training loss per token and the
    success within the budget (and without it). Python: markovfork.branching.run_branching.
    """
    prefix = _planned_outputs(out, ("curves",))
    config = load_branching_config(
        config_file, betas=betas, retries=retries,
        task=dict(points=points, children=children, depth=depth, n_correct=n_correct),
        filtered_shares=None if shares is None else tuple(shares), budget=budget, engine=engine, epochs=epochs, lr=lr,
        n_train=n_train, seed=seed, freeze_a=freeze_a,
    )
    table = run_branching(config)
    paths = []
    if prefix is not None:
        from markovfork.reporting.comparison_figures import branching_figure

        writers = {**table_writers(table, prefix), _figure_path(prefix, "curves"): figure_writer(branching_figure(table))}
        paths = [str(p) for p in write_outputs(writers)]
    last = table.filter(table["epoch"] == table["epoch"].max())
    if as_json:
        rows = [{k: _finite(v) for k, v in r.items()} for r in last.iter_rows(named=True)]
        click.echo(json.dumps({"config": _config_json(config), "rows": rows, "files": paths}, indent=2))
        return
    task = config.task
    click.echo(f"D={task.points} points, b={task.children} children ({task.n_correct} correct), wrong branches of "
               f"{task.depth} tokens; budget {config.budget} tokens (convergent answer: {task.convergent_length}); "
               f"{config.engine} engine, {config.epochs} epochs, seed {config.seed}")
    click.echo(f"{'teacher':<36} {'dropped':>7} {'loss/token':>10} {'success':>8} {'no budget':>9} {'data len':>8}")
    for r in last.iter_rows(named=True):
        click.echo(f"{r['teacher']:<36} {r['filtered_share']:>7.0%} {r['train_loss']:>10.4f} {r['success']:>8.4f} "
                   f"{r['success_unbounded']:>9.4f} {r['data_mean_length']:>8.2f}")
    if paths:
        click.echo("wrote " + ", ".join(paths))


def _config_json(config: BranchingConfig) -> dict:
    from dataclasses import asdict

    return {k: _finite(v) if not isinstance(v, (list, tuple, dict)) else v for k, v in asdict(config).items()}
