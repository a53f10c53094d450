"""``markovfork real-fit``: fit the post-training map to a base and a tuned language model's
per-problem counts and predict the tuned pass@k curve and the crossover (thin over
:func:`markovfork.real.experiment.run_real_fit`)."""

from __future__ import annotations

import click

from markovfork.cli import main
from markovfork.cli.options import (
    echo_json, echo_written, json_option, k_option, no_progress_option, out_option, planned_outputs, progress_bar,
    seed_option, write_results,
)


@main.command("real-fit")
@click.option("--base", "base_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Counts table of the base model (CSV/Parquet; long: problem,model,n,c; or wide: problem_idx,n,c_<label>...).")
@click.option("--tuned", "tuned_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Counts table of the tuned model (may be the same file as --base).")
@click.option("--base-label", default=None, help="Model label of the base in --base (needed when it holds several).")
@click.option("--tuned-label", default=None, help="Model label of the tuned model in --tuned.")
@click.option("--subsample", type=click.IntRange(min=1), default=None,
              help="Fit on this many of each problem's samples (drawn without replacement) and predict the full-n curves.")
@seed_option("Seed of the subsample and the bootstrap.", default=0, show_default=True)
@k_option(help="k values to print (and to predict beyond n), e.g. 1,4,16 or 1:8:1.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=20, show_default=True,
              help="Bootstrap resamples of the problems for the intervals (0: none).")
@out_option("Write PREFIX.parquet, PREFIX.csv (one row per k) and PREFIX_pass_at_k.png.")
@json_option("Print the summary as JSON.")
@no_progress_option
def real_fit_cmd(base_path, tuned_path, base_label, tuned_label, subsample, seed, k, n_boot, out, as_json, no_progress):
    """Fit the two-group post-training map (docs/real-models.md) to the per-problem counts of a
    base and a tuned model; print the fitted parameters, the predicted vs measured tuned pass@k
    with bootstrap intervals, the crossover k* and the baselines."""
    from markovfork.real.counts import paired_counts
    from markovfork.real.experiment import METHODS, run_real_fit
    from markovfork.reporting.real_figures import real_fit_figure

    prefix = planned_outputs(out, ("pass_at_k",), inputs=[base_path, tuned_path])
    pairs = paired_counts(base_path, tuned_path, base_label, tuned_label)
    n_min = int(min(pairs.n_base.min(), pairs.n_tuned.min()))
    if subsample is not None and subsample > n_min:
        raise click.BadParameter(f"must be <= the samples per problem ({n_min}), got {subsample}", param_hint="'--subsample'")
    bar = progress_bar(len(METHODS) + n_boot, "real-fit", not no_progress)
    try:
        result = run_real_fit(pairs, subsample=subsample, seed=seed, k=k, n_boot=n_boot, progress=lambda: bar.update(1))
    finally:
        bar.close()
    written = []
    if prefix is not None:
        written = write_results(prefix, result["table"], {"pass_at_k": real_fit_figure(result["table"], result["summary"])})
    if as_json:
        echo_json(result["summary"] | {"files": written})
        return
    for line in result["text"]:
        click.echo(line)
    echo_written(written)
