"""``markovfork fit``: fit the simulator's free parameters to measured pass@k curves and predict
held-out settings (thin over :mod:`markovfork.fit` and :mod:`markovfork.fit.heldout`)."""

from __future__ import annotations

from pathlib import Path

import click

from markovfork.cli import main
from markovfork.cli.options import (
    Needs, echo_json, echo_written, needs, figure_path, json_option, list_option, no_progress_option, out_option, progress_bar,
    seed_option,
)

FIGURES = ("curves", "residuals")  # PREFIX_<name>.png, as _figures returns them


def _figures(rows, arms, epochs, ks):
    """Measured points and predicted curves per arm (pass@k over epochs, one colour per k), and
    the residuals (predicted - measured) over epochs, training and held-out cells apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(arms)
    cols = min(4, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(3.2 * cols, 2.6 * ((n + cols - 1) // cols)),
                             squeeze=False, sharey=True)
    colours = plt.cm.viridis([i / max(1, len(ks) - 1) for i in range(len(ks))])
    for a, (rho, div) in enumerate(arms):
        ax = axes.flat[a]
        part = rows.filter((rows["rho"] == rho) & (rows["diversity"] == div))
        for ki, k in enumerate(ks):
            sub = part.filter(part["k"] == int(k)).sort("epoch")
            ax.plot(sub["epoch"], sub["predicted"], color=colours[ki], lw=1.2, label=f"k={k}")
            held = sub["role"] == "held_out"
            ax.scatter(sub["epoch"].filter(~held), sub["measured"].filter(~held), color=colours[ki], s=10)
            ax.scatter(sub["epoch"].filter(held), sub["measured"].filter(held), facecolors="none",
                       edgecolors=colours[ki], s=14)
        ax.set_title(f"rho {rho:g}, {div}", fontsize=9)
        ax.set_xlabel("SFT epoch")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].set_ylabel("pass@k")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle("measured (dots; hollow: held out) and predicted (lines)", fontsize=10)
    fig.tight_layout()

    res, ax = plt.subplots(figsize=(6, 3.5))
    for role, marker in (("train", "."), ("held_out", "x")):
        sub = rows.filter((rows["role"] == role) & rows["measured"].is_not_nan())
        if sub.height:
            ax.scatter(sub["epoch"], sub["predicted"] - sub["measured"], marker=marker, s=12, label=role)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("SFT epoch")
    ax.set_ylabel("predicted - measured pass@k")
    ax.legend(fontsize=8)
    res.tight_layout()
    return {"curves": fig, "residuals": res}


@main.command("fit")
@needs(Needs("--no-fork-baseline", "with something held out (--predict-rho or --train-until-epoch)",
             lambda p: not p["skip_no_fork"] or bool(p["predict_rho"]) or p["train_until_epoch"] is not None),
       Needs("--with-no-fork-baseline", "with something held out (--predict-rho or --train-until-epoch)",
             lambda p: p["skip_no_fork"] or bool(p["predict_rho"]) or p["train_until_epoch"] is not None),
       Needs("--no-fork-observations", "with --counts (the fork observations come from their q_target column)",
             lambda p: p["fork_observations"] or bool(p["counts_paths"])))
@click.argument("runs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="Bridge TOML the runs were made with (SFT set size, sampling); the task, arms, epochs and "
                   "evaluation size come from the table. Default: the CPU default.")
@click.option("--counts", "counts_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Per-problem success counts (markovfork bridge counts): sets each problem's base skill, adds the "
                   "beta-binomial baseline at large k and the count-histogram distance, and (with a q_target column) "
                   "the fork observations the fit takes. Repeatable.")
@click.option("--fork-observations/--no-fork-observations", default=True, show_default=True,
              help="Fit the counts' fork observations (docs/fit.md, \"Fork observations\") beside pass@k.")
@click.option("--skill", type=click.Choice(["per-mode", "shared"]), default="per-mode", show_default=True,
              help="The simulator's decipherable-step skill: one per mode (forward and reverse walks learnt from "
                   "their own SFT steps) or one shared by both (docs/fit.md, \"Fourth round\").")
@click.option("--train-rho", callback=list_option(float, "--train-rho"), metavar="LIST",
              help="Rhos to fit on (default: every rho not predicted).")
@click.option("--predict-rho", callback=list_option(float, "--predict-rho"), metavar="LIST",
              help="Rhos to hold out and predict (default: none; with --train-until-epoch: all).")
@click.option("--train-until-epoch", type=int, default=None,
              help="Fit epochs up to this one only and predict the later ones.")
@click.option("--no-fork-baseline/--with-no-fork-baseline", "skip_no_fork", default=False,
              help="Skip the second fit (the simulator with its fork mechanism off) on held-out runs.")
@out_option("Write PREFIX.parquet/.csv (measured vs predicted), PREFIX_curves.png, PREFIX_residuals.png.")
@click.option("--save-params", type=click.Path(dir_okay=False), default=None, metavar="FIT.json",
              help="Save the fitted parameters (markovfork predict --params reads it).")
@seed_option("Seed of the simulated task and the subsampling.", default=0, show_default=True)
@json_option("Print the fit and the held-out errors as JSON.")
@no_progress_option
def fit_cmd(runs, config, counts_paths, fork_observations, skill, train_rho, predict_rho, train_until_epoch, skip_no_fork, out,
            save_params, seed, as_json, no_progress) -> None:
    """Fit the simulator to measured results tables RUNS (CSV or Parquet, results schema) and
    predict held-out rhos or epochs, next to baselines."""
    from markovfork.plumbing import checks
    from markovfork.fit.measured_run import fit_and_predict
    from markovfork.fit.schema import read_results
    from markovfork.llm_bridge.fit_runs import experiment_from_table
    from markovfork.plumbing.io import check_not_inputs, check_outputs, figure_writer, json_writer, output_prefix, \
        table_paths, table_writers, write_outputs

    checks.seed(seed, "--seed")
    paths = []
    if out is not None:
        prefix = output_prefix(out)
        paths = [*table_paths(prefix), *(figure_path(prefix, name) for name in FIGURES)]
    if save_params is not None:
        paths.append(Path(save_params))
    check_outputs(paths)  # before computing
    check_not_inputs(paths, [*runs, *counts_paths, *([config] if config else [])])
    table = read_results(runs)
    counts = read_results_counts(counts_paths) if counts_paths else None
    bar = progress_bar(2 if predict_rho or train_until_epoch is not None else 1, "fit", not no_progress)
    try:
        result = fit_and_predict(table, experiment_from_table(table, config), counts=counts, train_rhos=train_rho, predict_rhos=predict_rho,
                                 train_until=train_until_epoch, no_fork=not skip_no_fork, seed=seed,
                                 progress=lambda: bar.update(1), fork_observations=fork_observations,
                                 skill_per_mode=skill == "per-mode")
    finally:
        bar.close()
    writers = {}
    if out is not None:
        figs = _figures(result["rows"], result["arms"], result["epochs"], result["ks"])
        writers |= table_writers(result["rows"], prefix)
        writers |= {figure_path(prefix, name): figure_writer(figs[name]) for name in FIGURES}
    if save_params is not None:
        writers[Path(save_params)] = json_writer(result["fit_json"])
    written = [str(p) for p in write_outputs(writers)] if writers else []
    summary = result["summary"] | {"files": written}
    if summary.get("warnings"):  # one line, whatever the output format
        click.echo("warning: the fit is not trustworthy as it stands: " + "; ".join(summary["warnings"]), err=True)
    if as_json:
        echo_json(summary)
        return
    for line in result["text"]:
        click.echo(line)
    echo_written(written)


def read_results_counts(paths):
    import polars as pl

    from markovfork.fit.schema import read_table

    frames = []
    for path in paths:
        df = read_table(path)
        missing = [c for c in ("seed", "diversity", "rho", "epoch", "n_samples", "correct") if c not in df.columns]
        if missing:
            raise ValueError(f"{path} lacks the counts columns {missing}")
        frames.append(df)
    return pl.concat(frames, how="diagonal_relaxed")
