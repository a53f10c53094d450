"""``markovfork branching``: SFT on convergent and branch-heavy trajectories under a length
budget, and filtering of the most-branching ones (thin over :mod:`markovfork.branching`)."""

from __future__ import annotations

import click

from markovfork.branching.run import BranchingConfig, run_branching
from markovfork.branching.task import Teacher
from markovfork.branching.train import ENGINES
from markovfork.cli import main
from markovfork.cli.options import (
    Needs, echo_json, echo_written, json_option, list_option, needs, no_bar_option, out_option, planned_outputs,
    renamed_option, seed_option, write_results,
)
from markovfork.plumbing.config_reader import from_mapping
from markovfork.plumbing.io import read_toml

TASK_OPTIONS = ("points", "children", "branch_tokens", "n_correct")


def load_branching_config(path=None, *, betas=None, retries=None, task=None, **overrides) -> BranchingConfig:
    """A config from a TOML file (``[task]`` with BranchingTask's fields, ``teachers`` as a list
    of tables ``{beta, retries}``, the other BranchingConfig fields at the top level), then the
    overrides (``None``: not given); ``betas``: one teacher per branching rate (0: convergent)."""
    if retries is not None and betas is None:
        raise ValueError(f"--retries {retries} applies to the teachers of --beta: give --beta too")
    data = read_toml(path) if path is not None else {}
    task_data = data.get("task", {})
    if isinstance(task_data, dict) and "depth" in task_data:  # the key's old name (the same meaning)
        if "branch_tokens" in task_data:
            raise ValueError(f"[task] depth is the old name of branch_tokens; give one, got both in {path}")
        click.echo(f"markovfork: [task] depth in {path} is deprecated, use branch_tokens "
                   f"(depth is the path-star task's nodes per arm)", err=True)
        task_data = data["task"] = {("branch_tokens" if k == "depth" else k): v for k, v in task_data.items()}
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
@needs(
    Needs("--retries", "with --beta (it bounds the retries of the --beta teachers)", lambda p: p["betas"] is not None),
    Needs("--train-size", "with --engine sampled", lambda p: p["engine"] == "sampled", ["engine"]),
)
@click.option("--beta", "betas", callback=list_option(float, "--beta"), default=None, metavar="LIST",
              help="Teachers' branching rates (0: convergent).  [default: 0,0.4]")
@click.option("--retries", type=int, default=None, help="Wrong entries per decision point at most.  [default: unbounded]")
@click.option("--filter", "shares", callback=list_option(float, "--filter"), default=None, metavar="LIST",
              help="Shares of the most-branching training trajectories to drop, each in [0, 1).  [default: 0]")
@click.option("--points", type=int, default=None, help="Decision points D.  [default: 8]")
@click.option("--children", type=int, default=None, help="Children b per decision point.  [default: 4]")
@renamed_option("--branch-tokens", "--depth", "branch_tokens", " (depth is the path-star task's nodes per arm)", type=int,
                default=None, help="Tokens h of a wrong branch.  [default: 10]")
@click.option("--correct", "n_correct", type=int, default=None, help="Correct children m per point.  [default: 1]")
@click.option("--budget", type=int, default=None, help="Tokens T allowed at evaluation.  [default: 16]")
@click.option("--indecipherable", "freeze_a", flag_value=True, default=None,
              help="The decisions are forks the policy cannot read: its decision logit a is not trained.")
@click.option("--engine", type=click.Choice(ENGINES), default=None,
              help="analytic: expected data, exact success; sampled: N trajectories, minibatch SGD, rollouts.")
@click.option("--epochs", type=int, default=None, help="SFT epochs.  [default: 50]")
@click.option("--lr", type=float, default=None, help="SFT learning rate.  [default: 1]")
@click.option("--train-size", "n_train", type=int, default=None, help="Sampled engine: trajectories per teacher.  [default: 2000]")
@seed_option("Seed of the task, the data and the minibatches.  [default: 0]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="TOML file (BranchingConfig's fields, [task], [[teachers]]); options given here override it.")
@out_option("Write PREFIX.parquet, PREFIX.csv and PREFIX_curves.png.")
@json_option("Print the configuration and the last epoch's rows as JSON.")
@no_bar_option
def branching_command(betas, retries, shares, points, children, branch_tokens, n_correct, budget, freeze_a, engine, epochs, lr, n_train,
                      seed, config_file, out, as_json, no_progress):
    """SFT on convergent vs branch-heavy trajectories: loss per token and success within a budget.

    Prints, per teacher and filtered share, the last epoch's training loss per token and the
    success within the budget (and without it). Python: markovfork.branching.run_branching.
    """
    prefix = planned_outputs(out, ("curves",), inputs=[config_file])
    config = load_branching_config(
        config_file, betas=betas, retries=retries,
        task=dict(points=points, children=children, branch_tokens=branch_tokens, n_correct=n_correct),
        filtered_shares=None if shares is None else tuple(shares), budget=budget, engine=engine, epochs=epochs, lr=lr,
        n_train=n_train, seed=seed, freeze_a=freeze_a,
    )
    table = run_branching(config)
    paths = []
    if prefix is not None:
        from markovfork.reporting.comparison_figures import branching_figure

        paths = write_results(prefix, table, {"curves": branching_figure(table)})
    last = table.filter(table["epoch"] == table["epoch"].max())
    if as_json:
        from dataclasses import asdict

        echo_json({"config": asdict(config), "rows": last.to_dicts(), "files": paths})
        return
    task = config.task
    click.echo(f"D={task.points} points, b={task.children} children ({task.n_correct} correct), wrong branches of "
               f"{task.branch_tokens} tokens; budget {config.budget} tokens (convergent answer: {task.convergent_length}); "
               f"{config.engine} engine, {config.epochs} epochs, seed {config.seed}")
    click.echo(f"{'teacher':<36} {'dropped':>7} {'loss/token':>10} {'success':>8} {'no budget':>9} {'data len':>8}")
    for r in last.iter_rows(named=True):
        click.echo(f"{r['teacher']:<36} {r['filtered_share']:>7.0%} {r['train_loss']:>10.4f} {r['success']:>8.4f} "
                   f"{r['success_unbounded']:>9.4f} {r['data_mean_length']:>8.2f}")
    echo_written(paths)
