"""``markovfork tmc``: the multi-task chain (TMC) experiment of the Markovian view of
post-training: pretrain a tabular policy on the chain, fine-tune it on task 1 with each method,
score both tasks (thin over :func:`markovfork.experiments.tmc.run_tmc`)."""

from __future__ import annotations

import click

from markovfork.cli import main
from markovfork.cli.options import (
    Needs, choice_list, echo_json, has, needs, echo_written, json_option, no_progress_option, out_option, planned_outputs, progress_bar,
    k_option, renamed_option, seed_option, write_results,
)
from markovfork.experiments.tmc import DEFAULT_METHODS, TMC_METHODS
from markovfork.rl.config import ENGINES, REJECT_REFERENCES

FIGURES = ("pass_at_k", "paths")  # PREFIX_<name>.png


def _parse_methods(ctx, param, text):
    """``"reinforce,kl"`` (or ``all``) as a list of TMC methods, in the order given."""
    if text is not None and text.strip() == "all":
        return list(TMC_METHODS)
    return choice_list(TMC_METHODS, "--methods", "method", "or all")(ctx, param, text)


_parse_methods.choices = TMC_METHODS


RL_OPTIONS = ("engine", "iterations", "lr", "group_size", "kl", "reject_easy", "reject_reference", "passk_k")


def load_tmc_config(config_file, rl=None, **overrides):
    """A :class:`TMCConfig` from a TOML file whose keys are its field names, with the RL settings
    in a table ``[rl]`` (RLConfig's fields but ``method`` and ``seed``; the defaults are
    ``TMC_RL``'s), then the options given (not None) on top: ``rl`` for the RL ones; every value
    type-checked (:func:`markovfork.plumbing.config_reader.from_mapping`). A file that still gives
    an RL setting at the top level (the layout before ``[rl]``) is read, with a one-line note."""
    from dataclasses import asdict

    from markovfork.experiments.tmc import TMC_RL, TMCConfig
    from markovfork.plumbing.config_reader import from_mapping
    from markovfork.plumbing.io import read_toml
    from markovfork.rl.config import RLConfig

    data = read_toml(config_file) if config_file is not None else {}
    rl_data = data.pop("rl", {})
    if not isinstance(rl_data, dict):
        raise ValueError(f"[rl] must be a table, got {rl_data!r}")
    unread = sorted({"method", "seed"} & set(rl_data))
    if unread:
        raise ValueError(f"[rl] {unread[0]} is not read: the experiment runs each of its methods, seeded from "
                         f"the top-level seed; remove it")
    moved = [key for key in RL_OPTIONS if key in data]
    if moved:
        both = [key for key in moved if key in rl_data]
        if both:
            raise ValueError(f"{both[0]} is given at the top level and in [rl]; give it once, in [rl]")
        click.echo(f"markovfork: {', '.join(moved)} at the top level of {config_file} is deprecated, "
                   f"put the RL settings in an [rl] table", err=True)
        rl_data = {**rl_data, **{key: data.pop(key) for key in moved}}
    rl_data = {**rl_data, **{key: value for key, value in (rl or {}).items() if value is not None}}
    data.update({key: value for key, value in overrides.items() if value is not None})
    data["rl"] = from_mapping(RLConfig, {**asdict(TMC_RL), **rl_data}, "rl")
    return from_mapping(TMCConfig, data)


def summary_lines(config, table_rows) -> list[str]:
    """A compact table: per method, both tasks' pass@1 and pass@K and task 2's path shares, then
    what REINFORCE changed on task 2 against the base (when both rows are present).
    ``table_rows``: the experiment's rows, dicts (``TMCResult.rows``)."""
    k = config.k
    rows = {(r["method"], r["task"]): r for r in table_rows if r["k"] == k}
    methods = list(dict.fromkeys(r["method"] for r in table_rows))
    lines = [
        f"TMC L={config.layers} M0={config.m0} M={config.m} C={config.c}, {config.rl.engine} engine, "
        f"{config.rl.iterations} iterations at lr {config.rl.lr:g}, seed {config.seed}; "
        f"{config.instances} instances per task, K={k}",
        f"{'':<12} {'task 1':^17} {'task 2':^17} {'task 2 path shares':^22}".rstrip(),
        f"{'method':<12} {'pass@1':>8} {f'pass@{k}':>8} {'pass@1':>8} {f'pass@{k}':>8} "
        f"{'easy':>6} {'hard':>6} {'invalid':>8}",
    ]
    for m in methods:
        one, two = rows[(m, 1)], rows[(m, 2)]
        lines.append(
            f"{m:<12} {one['pass_at_1']:>8.4f} {one['pass_at_k']:>8.4f} {two['pass_at_1']:>8.4f} {two['pass_at_k']:>8.4f} "
            f"{two['easy_valid']:>6.3f} {two['hard_valid']:>6.3f} {two['invalid']:>8.3f}"
        )
    if ("base", 2) in rows and ("reinforce", 2) in rows:
        b, r = rows[("base", 2)], rows[("reinforce", 2)]
        lines.append(
            f"task 2, base -> reinforce: pass@{k} {b['pass_at_k']:.4f} -> {r['pass_at_k']:.4f} "
            f"({r['pass_at_k'] - b['pass_at_k']:+.4f}), pass@1 {b['pass_at_1']:.4f} -> {r['pass_at_1']:.4f}, "
            f"hard-valid share {b['hard_valid']:.3f} -> {r['hard_valid']:.3f}, "
            f"path entropy {b['path_entropy']:.3f} -> {r['path_entropy']:.3f} nats"
        )
    return lines


def _write(prefix, table) -> list[str]:
    """Draw both figures, then write them and the table as one output set."""
    from markovfork.reporting.comparison_figures import tmc_pass_at_k_figure, tmc_paths_figure

    return write_results(prefix, table, {"pass_at_k": tmc_pass_at_k_figure(table), "paths": tmc_paths_figure(table)})


@main.command("tmc")
@needs(
    Needs("--passk-k", "with --methods including passk", lambda p: has(p["methods"], ["passk"], DEFAULT_METHODS),
          ["methods"]),
    *(Needs(o, "with --methods including reject-easy", lambda p: has(p["methods"], ["reject-easy"], DEFAULT_METHODS),
            ["methods"]) for o in ("--reject-easy", "--reject-reference")),
    *(Needs(o, "with --methods including kl or kl-tilt", lambda p: has(p["methods"], ["kl", "kl-tilt"], DEFAULT_METHODS),
            ["methods"]) for o in ("--kl-beta", "--kl")),
)
@click.option("--layers", type=int, default=None, help="Layers L of the chain (>= 3).  [default: 4]")
@click.option("--m0", type=int, default=None, help="States in layer 0 (>= 2).  [default: 2]")
@click.option("--m", type=int, default=None, help="States in every later layer (>= 2).  [default: 2]")
@click.option("--c", type=int, default=None, help="High edges per row (>= 1).  [default: 1]")
@k_option(help="k values of pass@k, e.g. 1,4,30 or 1,2:8:2; the largest is K (also the rollouts per instance, "
                "sampled). The summary shows pass@1 and pass@K, the table one row per k.  [default: 30]")
@click.option("--instances", type=int, default=None, help="Evaluation instances per task.  [default: 200]")
@click.option("--iterations", type=int, default=None, help="Fine-tuning iterations per method.  [default: 1000]")
@click.option("--methods", callback=_parse_methods, default=None, metavar="LIST",
              help=f"Comma-separated methods from {', '.join(TMC_METHODS)}, or all.  "
                   "[default: reinforce,raft,ppo,grpo,reject-easy,kl,kl-tilt]")
@click.option("--engine", type=click.Choice(ENGINES), default=None,
              help="analytic: exact expected gradients and exact scores; sampled: a fresh instance and G "
                   "rollouts per iteration, scores from K rollouts per instance.  [default: analytic]")
@click.option("--lr", type=float, default=None, help="Fine-tuning learning rate.  [default: 0.1]")
@click.option("--group-size", type=int, default=None, help="Rollouts G per instance and iteration.  [default: 8]")
@renamed_option("--kl-beta", "--kl", "kl", " (--kl is a list of KL coefficients in posttrain)", type=float,
                default=None, metavar="BETA", help="beta of the kl method's penalty and of kl-tilt (> 0).  [default: 0.5]")
@click.option("--reject-easy", type=int, default=None, metavar="R",
              help="reject-easy: skip an instance one of R reference samples solves.  [default: 5]")
@click.option("--reject-reference", type=click.Choice(REJECT_REFERENCES), default=None,
              help="Policy drawing the reject-easy samples.  [default: base]")
@click.option("--passk-k", type=int, default=None, help="k of the passk method's objective.  [default: 4]")
@seed_option("Seed of the chain, pretraining, training and evaluation.  [default: 0]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="TOML file whose keys are TMCConfig's fields (layers, m0, ..., seed; the RL settings in [rl]); options given here "
                   "override it.")
@out_option("Write PREFIX.parquet, PREFIX.csv (the table), PREFIX_pass_at_k.png and PREFIX_paths.png.")
@json_option("Print the configuration and the rows as JSON.")
@no_progress_option
def tmc_command(layers, m0, m, c, k, instances, iterations, methods, engine, lr, group_size, kl, reject_easy,
                reject_reference, passk_k, seed, config_file, out, as_json, no_progress):
    """Fine-tune a pretrained chain policy on task 1 with each method; score pass@1, pass@K and
    the easy / hard / invalid path shares on both tasks.

    Rows chain (the true chain) and base (the pretrained policy) come first. Python:
    markovfork.experiments.tmc.run_tmc.
    """
    from markovfork.experiments.tmc import config_dict, run_tmc

    prefix = planned_outputs(out, FIGURES, inputs=[config_file])
    config = load_tmc_config(
        config_file, layers=layers, m0=m0, m=m, c=c, k=None if k is None else k[-1],
        ks=None if k is None else k[:-1], instances=instances, methods=methods, seed=seed,
        rl=dict(engine=engine, iterations=iterations, lr=lr, group_size=group_size, kl=kl, reject_easy=reject_easy,
                reject_reference=reject_reference, passk_k=passk_k),
    )
    bar = progress_bar(len(config.methods), "tmc", not no_progress)

    def advance(method: str) -> None:
        bar.set_postfix_str(method, refresh=False)
        bar.update(1)

    try:
        result = run_tmc(config, progress=advance)
    finally:
        bar.close()
    paths = _write(prefix, result.table) if prefix is not None else []
    if as_json:
        echo_json({"config": config_dict(config), "rows": result.rows, "files": paths})
        return
    for line in summary_lines(config, result.rows):
        click.echo(line)
    echo_written(paths)
