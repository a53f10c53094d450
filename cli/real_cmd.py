"""``markovfork real-fit``: fit the post-training map to a base and a tuned language model's
per-problem counts and predict the tuned pass@k curve and the crossover (thin over
:func:`markovfork.real.experiment.run_real_fit`)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from markovfork.cli import main
from markovfork.cli.simulate_cmd import _parse_k


def _progress(total: int, disable: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="real-fit", disable=disable or not sys.stderr.isatty(), leave=False, file=sys.stderr)


def _figure(table, summary):
    """Base and tuned measured pass@k, the Markov map's prediction with its band, and the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    k = table["k"].to_numpy()
    ax.plot(k, table["base_measured"], color="k", lw=1.6, label=f"{summary['base_label']} measured")
    ax.plot(k, table["tuned_measured"], color="tab:red", lw=1.6, label=f"{summary['tuned_label']} measured")
    styles = {"markov": ("tab:blue", "-"), "logit": ("tab:green", "--"), "beta_binomial": ("tab:orange", ":"),
              "plug_in": ("tab:gray", "-.")}
    for name in summary["methods"]:
        colour, ls = styles[name]
        ax.plot(k, table[f"{name}_tuned"], color=colour, ls=ls, lw=1.2, label=f"{name} predicted")
        if name == "markov" and summary["n_boot"]:
            ax.fill_between(k, table["markov_tuned_lo"], table["markov_tuned_hi"], color=colour, alpha=0.2, lw=0)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    fitted = f"fitted on {summary['fitted_on_n']} samples/problem" if summary["subsample"] else "fitted on all samples"
    ax.set_title(f"{summary['tuned_label']} vs {summary['base_label']}: {fitted}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _nan_to_null(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_null(v) for v in obj]
    return obj


@main.command("real-fit")
@click.option("--base", "base_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Counts table of the base model (CSV/Parquet; long: problem,model,n,c; or wide: problem_idx,n,c_<label>...).")
@click.option("--tuned", "tuned_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Counts table of the tuned model (may be the same file as --base).")
@click.option("--base-label", default=None, help="Model label of the base in --base (needed when it holds several).")
@click.option("--tuned-label", default=None, help="Model label of the tuned model in --tuned.")
@click.option("--subsample", type=click.IntRange(min=1), default=None,
              help="Fit on this many of each problem's samples (drawn without replacement) and predict the full-n curves.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the subsample and the bootstrap.")
@click.option("--k", "k", callback=_parse_k, metavar="LIST", help="k values to print (and to predict beyond n).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=20, show_default=True,
              help="Bootstrap resamples of the problems for the intervals (0: none).")
@click.option("--out", default=None, metavar="PREFIX", help="Write PREFIX.parquet, PREFIX.csv and PREFIX.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar (it is shown only on a terminal anyway).")
def real_fit_cmd(base_path, tuned_path, base_label, tuned_label, subsample, seed, k, n_boot, out, as_json, no_progress):
    """Fit the two-group post-training map (docs/real-models.md) to the per-problem counts of a
    base and a tuned model; print the fitted parameters, the predicted vs measured tuned pass@k
    with bootstrap intervals, the crossover k* and the baselines."""
    from markovfork.plumbing.io import check_outputs, figure_writer, output_prefix, table_paths, table_writers, write_outputs
    from markovfork.real.counts import paired_counts
    from markovfork.real.experiment import METHODS, run_real_fit

    prefix = output_prefix(out) if out is not None else None
    figure_path = None if prefix is None else prefix.with_name(prefix.name + ".png")
    if prefix is not None:
        check_outputs([*table_paths(prefix), figure_path])
    pairs = paired_counts(base_path, tuned_path, base_label, tuned_label)
    n_min = int(min(pairs.n_base.min(), pairs.n_tuned.min()))
    if subsample is not None and subsample > n_min:
        raise click.BadParameter(f"must be <= the samples per problem ({n_min}), got {subsample}", param_hint="'--subsample'")
    bar = _progress(len(METHODS) + n_boot, no_progress)
    try:
        result = run_real_fit(pairs, subsample=subsample, seed=seed, k=k, n_boot=n_boot, progress=lambda: bar.update(1))
    finally:
        bar.close()
    written = []
    if prefix is not None:
        writers = {**table_writers(result["table"], prefix), figure_path: figure_writer(_figure(result["table"], result["summary"]))}
        written = [str(p) for p in write_outputs(writers)]
    if as_json:
        click.echo(json.dumps(_nan_to_null(result["summary"] | {"files": written}), indent=2, allow_nan=False))
        return
    for line in result["text"]:
        click.echo(line)
    if written:
        click.echo("wrote " + ", ".join(written))
