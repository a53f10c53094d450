"""``markovfork posttrain``: RL (RLVR) on the path-star task of ``simulate``, from the base model
or after SFT; lists of methods, KL coefficients, reject-easy settings or seeds run as a sweep
(thin over :mod:`markovfork.experiments.posttrain`)."""

from __future__ import annotations

import click

from markovfork.cli import main
from markovfork.cli.options import (
    Needs, check_runs, choice_list, has, needs, without_scheduler, echo_json, echo_written, list_option, planned_outputs, scheduler_option, seed_option,
    workers_option, write_results,
)
from markovfork.cli.task_options import common_options, overrides
from markovfork.rl.config import METHODS, REJECT_REFERENCES
from markovfork.reporting.summaries import posttrain_summary
from markovfork.experiments.posttrain import STARTS, load_posttrain_config, posttrain, posttrain_grid, posttrain_table
from markovfork.sft.data import DIVERSITY

POSTTRAIN_FIGURES = ("pass_at_k",)


@main.command("posttrain")
@needs(
    *(Needs(o, "with --method ppo", lambda p: has(p["methods"], ["ppo"], ["grpo"]), ["methods"])
      for o in ("--clip", "--ppo-epochs")),
    Needs("--passk-k", "with --method passk", lambda p: has(p["methods"], ["passk"], ["grpo"]), ["methods"]),
    Needs("--unlikeliness", "with --method unlikely", lambda p: has(p["methods"], ["unlikely"], ["grpo"]), ["methods"]),
    Needs("--reject-reference", "with --reject-easy R > 0", lambda p: any(r > 0 for r in p["rejects"] or [0]),
          ["rejects"]),
    Needs("--batch-instances", "with --engine sampled", lambda p: p["engine"] == "sampled", ["engine"]),
    Needs("--samples", "with --engine sampled", lambda p: p["engine"] == "sampled", ["engine"]),
    *(Needs(o, "with --from sft (SFT before RL; not with --from base or --tree)",
            lambda p: p["start"] != "base" and p["tree"] is None, ["start", "tree"])
      for o in ("--epochs", "--sft-lr")),
    without_scheduler(),
)
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
@click.option("--kl", "kls", callback=list_option(float, "--kl", low=0), default=None, metavar="LIST",
              help="KL penalty beta to the starting policy (a list runs a sweep).  [default: 0]")
@click.option("--reject-easy", "rejects", callback=list_option(int, "--reject-easy", low=0), default=None, metavar="LIST",
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
@click.option("--seeds", "seeds", callback=list_option(int, "--seeds", low=0), default=None, metavar="LIST",
              help="Seeds (a list runs a sweep; each run is seeded by its own seed).")
@seed_option("The seed when --seeds is not given.  [default: 0]")
@workers_option("Sweep worker processes.  [default: all cores]")
@scheduler_option
@common_options
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
    check_runs(methods, kls, rejects, seeds)
    prefix = planned_outputs(out, POSTTRAIN_FIGURES, inputs=[config_file, tree])
    rl = dict(iterations=iterations, lr=lr, group_size=group_size, batch_instances=batch_instances,
              reject_reference=reject_reference, clip=clip, ppo_epochs=ppo_epochs, passk_k=passk_k,
              unlikeliness=unlikeliness)
    changes = overrides(engine, n_train, n_test, feature_dim, k, rho=rho, diversity=diversity, seed=seed,
                        **{"train.epochs": epochs, "train.lr": sft_lr})
    if k is not None and n_samples is None:
        n_samples = max(64, max(k))
    if tree is not None and start is None:
        start = "base"
    base = load_posttrain_config(config_file, rl=rl, start=start, evaluations=evaluations, tree=tree,
                                 **changes, **{"train.n_samples": n_samples})
    configs = posttrain_grid(base, methods, kls, seeds, rejects)
    if len(configs) == 1 and scheduler is None:  # one run: in this process, with its own progress bar
        table = posttrain(configs[0], progress=not no_progress).table
    else:
        from markovfork.sft.simulate import sweep

        table = sweep(configs, workers=workers, progress=not no_progress, run=posttrain_table,
                      scheduler=scheduler)
    runs = posttrain_summary(table)
    paths = _write(prefix, table) if prefix is not None else []
    if as_json:
        echo_json({"runs": runs.to_dicts(), "files": paths})
        return
    _print(runs)
    echo_written(paths)


def _write(prefix, table) -> list[str]:
    """The table and the pass@k figure, written as one output set."""
    from markovfork.reporting.comparison_figures import posttrain_pass_at_k_figure

    return write_results(prefix, table, {"pass_at_k": posttrain_pass_at_k_figure(table)})


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
