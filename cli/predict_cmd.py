"""``markovfork predict``: the pass@k curves of a planned bridge run, from fitted parameters
(thin over :mod:`markovfork.fit.planned`)."""

from __future__ import annotations

import click

from markovfork.cli import main
from markovfork.cli.options import (
    echo_json, echo_written, json_option, no_bar_option, out_option, planned_outputs, seed_option, write_results,
)

SUMMARY_EPOCHS = (1, 4, 12)  # epochs printed (those evaluated), besides 0 and the last


def _summary_lines(table, pred) -> list[str]:
    """One line per (arm, epoch) shown: pass@k at each k, with its parameter sd."""
    import polars as pl

    last = int(pred.epochs[-1])
    shown = [int(e) for e in pred.epochs if e == 0 or e == last or e in SUMMARY_EPOCHS]
    ks = [int(k) for k in pred.ks]
    lines = ["predicted pass@k (analytic simulator at the fitted parameters; +- parameter sd)",
             "rho   diversity epoch " + " ".join(f"{'k=' + str(k):>14}" for k in ks)]
    for rho, div in pred.arms:
        for e in shown:
            rows = table.filter((pl.col("rho") == rho) & (pl.col("diversity") == div) & (pl.col("epoch") == e)).sort("k")
            cells = [f"{p:.3f} +- {s:.3f}" for p, s in zip(rows["pass_at_k_post"], rows["pass_at_k_post_sd"])]
            lines.append(f"{rho:<5g} {div:<9} {e:>5} " + " ".join(f"{c:>14}" for c in cells))
    return lines


@main.command("predict")
@click.option("--params", "params", type=click.Path(dir_okay=False), required=True, metavar="FIT.json",
              help="Fitted parameters (written by markovfork fit or markovfork.fit.save_fit).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), required=True, metavar="PLANNED.toml",
              help="Bridge run configuration (TOML, as for bridge run) of the run to predict.")
@seed_option("Seed of the planned run (as bridge run --seed; only labels the table).  [default: the config's]")
@out_option("Write PREFIX.parquet, PREFIX.csv (the predicted results table) and PREFIX_pass_at_k.png.")
@json_option("Print the prediction as JSON.")
@no_bar_option
def predict_command(params, config_file, seed, out, as_json, no_progress):
    """Predict the pass@k curves (per rho, diversity, epoch, k) of a bridge run not yet made.

    Maps the planned run onto the simulator (markovfork.llm_bridge.task_mapping) and evaluates it at the
    fitted parameters; refuses settings outside what the fit covers. Python:
    markovfork.llm_bridge.fit_runs.predict_run.
    """
    from dataclasses import replace

    from markovfork.fit.planned import prediction_figure, prediction_table, read_fit
    from markovfork.llm_bridge.config import load_config
    from markovfork.llm_bridge.fit_runs import predict_run

    prefix = planned_outputs(out, ("pass_at_k",), inputs=[params, config_file])
    fit = read_fit(params)
    planned = load_config(config_file)
    if seed is not None:
        planned = replace(planned, seed=seed)
    pred = predict_run(fit, planned)
    table = prediction_table(pred)
    paths = []
    if prefix is not None:
        paths = write_results(prefix, table, {"pass_at_k": prediction_figure(table)})
    if as_json:
        doc = {"params": str(params), "config": str(config_file), "fit_fingerprint": fit.data_fingerprint,
               "values": fit.all_values(), "rows": table.to_dicts(), "files": paths}
        echo_json(doc)
        return
    for line in _summary_lines(table, pred):
        click.echo(line)
    echo_written(paths)

