"""``markovfork coverage``: exact and sampled pass@k of the base policy on a tree's problems."""

from __future__ import annotations

import json

import click

from markovfork.cli import main
from markovfork.cli.simulate_cmd import _parse_k  # one parser of k lists (also START:STOP:STEP)
from markovfork.cli.tree_cmd import build_tree, split_tree_options, tree_options
from markovfork.engines.coverage import base_coverage, plot_coverage
from markovfork.tasks import fork_problems, tmc_problems
from markovfork.plumbing.io import check_outputs, figure_writer, output_prefix, table_paths, table_writers, write_outputs
from markovfork.model.policy import Decoding

DEFAULT_K = "1,2,4,8,16,32,64"


@main.command("coverage")
@tree_options
@click.option("--problems", "n_problems", type=int, default=200, show_default=True,
              help="Problems drawn on the tree (TMC: instances of --task).")
@click.option("--task", type=int, default=0, show_default=True, help="TMC: which task (0: 0 -> 0, 1: 1 -> 1).")
@click.option("--k", "k", callback=_parse_k, default=DEFAULT_K, show_default=True, help="Comma-separated k values.")
@click.option("--samples", "n_samples", type=int, default=64, show_default=True,
              help="Rollouts per problem for the sampled estimate (0: exact only). Must be >= max k.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="Decoding temperature.")
@click.option("--top-k", "top_k", type=int, default=0, show_default=True, help="Decoding top-k (0: off).")
@click.option("--top-p", "top_p", type=float, default=1.0, show_default=True, help="Decoding top-p (1: off).")
@click.option("--min-p", "min_p", type=float, default=0.0, show_default=True, help="Decoding min-p (0: off).")
@click.option("--skill", type=float, default=0.0, show_default=True,
              help="Base logit bonus of the correct step at decipherable nodes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, metavar="PREFIX",
              help="Write PREFIX.parquet, PREFIX.csv (one row per k) and PREFIX.png (pass@k against k).")
def coverage_command(n_problems, task, k, n_samples, temperature, top_k, top_p, min_p, skill, as_json, out, **kwargs):
    """Exact and sampled pass@k of the base policy for a list of k."""
    tree_opts, _ = split_tree_options(kwargs)
    prefix = output_prefix(out) if out is not None else None
    if prefix is not None:
        check_outputs([*table_paths(prefix), prefix.with_name(prefix.name + ".png")])
    choice = build_tree(tree_opts)
    seed = tree_opts["seed"]
    if choice.tmc is not None:
        problems = tmc_problems(choice.tree, choice.tmc, task, n_problems, seed)
    else:
        problems = fork_problems(choice.tree, n_problems, feature_dim=0, seed=seed)
    decoding = Decoding(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    report = base_coverage(choice.tree, problems, k, n_samples=n_samples, seed=seed, decoding=decoding, skill=skill)
    if prefix is not None:
        fig = plot_coverage(report, title=f"base policy, {choice.source} tree")
        write_outputs({**table_writers(report.table(), prefix), prefix.with_name(prefix.name + ".png"): figure_writer(fig)})
    if as_json:
        click.echo(json.dumps({"source": choice.source, **report.to_json()}, indent=2))
        return
    click.echo(
        f"{choice.source} tree, {choice.tree.n_nodes} nodes; {report.n_problems} problems; "
        f"{report.n_samples} samples per problem; seed {report.seed}"
    )
    ev, hv, inv = report.exact_shares
    click.echo(f"exact path mass: easy-valid {ev:.4f}, hard-valid {hv:.4f}, invalid {inv:.4f}")
    s = report.sampled
    header = f"{'k':>6}  {'exact':>8}" + (f"  {'sampled':>8}  {'95% CI':>17}" if s else "")
    click.echo(header)
    for i, kk in enumerate(report.k):
        row = f"{int(kk):>6}  {report.exact[i]:8.4f}"
        if s:
            row += f"  {s.mean[i]:8.4f}  [{s.ci_low[i]:.4f}, {s.ci_high[i]:.4f}]"
        click.echo(row)
