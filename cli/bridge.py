"""``markovfork bridge``: train real transformers on the path-star task and measure pass@k.

A thin layer over :mod:`markovfork.llm_bridge.run`; torch is imported only when a command runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from markovfork.cli import main


def _given(obj, **changes):
    """``obj`` with the options the user gave (not None) replaced."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(obj, **changes) if changes else obj


def _load(config: str | None, seed: int | None, device: str | None, threads: int | None, saved: Path | None = None):
    """The run configuration: the run's saved ``config.json`` when given, else the TOML ``config``
    (or the CPU default), with the command-line overrides."""
    from markovfork.llm_bridge.config import RunConfig, config_from_dict, load_config

    cfg: RunConfig = config_from_dict(json.loads(saved.read_text())) if saved is not None else load_config(config)
    return _given(cfg, seed=seed, device=device, threads=threads)


@main.group()
def bridge() -> None:
    """Train small transformers on the path-star task; measure pass@k (needs the `bridge` extra)."""


@bridge.command("run")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="TOML file overriding the CPU default (sections task, model, base, sft, eval).")
@click.option("--device", default=None, help="auto (CUDA if present), cpu, cuda or cuda:N. Overrides the config.")
@click.option("--out", type=click.Path(file_okay=False), default="runs/bridge", show_default=True,
              help="Output directory (checkpoints, data, table, figures).")
@click.option("--seed", type=int, default=None, help="Seed of the whole run. Overrides the config.")
@click.option("--threads", type=int, default=None, help="torch CPU threads. Overrides the config.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out (same configuration).")
def run_cmd(config, device, out, seed, threads, resume) -> None:
    """Data, base pretraining, SFT at each rho, evaluation; writes OUT/bridge_results.{parquet,csv}."""
    from markovfork.llm_bridge.run import run_bridge

    cfg = _load(config, seed, device, threads)
    res = run_bridge(cfg, out, resume=resume)
    click.echo(f"wrote {Path(out) / 'bridge_results.parquet'} and .csv ({res.table.height} rows) "
               f"in {res.summary['timings_s']['total_s']:.0f} s")


@bridge.command("sweep")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="TOML file overriding the CPU default, as for bridge run.")
@click.option("--rho", "rhos", default=None, metavar="LIST",
              help="Fork-format shares, e.g. 0,0.5,1.  [default: the config's rhos]")
@click.option("--seeds", default=None, metavar="LIST", help="Seeds, e.g. 0,1.  [default: the config's seed]")
@click.option("--out", type=click.Path(file_okay=False), default="runs/bridge-sweep", show_default=True,
              help="Output directory: one bridge run folder per (rho, seed) and the gathered table.")
@click.option("--device", default=None, help="auto (CUDA if present), cpu, cuda or cuda:N. Overrides the config.")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads per run. Overrides the config.  [default: cores / workers]")
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep in --out (finished runs are read back).")
@click.option("--scheduler", default=None, metavar="local:N|tcp://HOST:PORT",
              help="Run on Dask: a LocalCluster of N workers or a running scheduler.  [default: local process pool]")
@click.option("--workers", type=int, default=None,
              help="Local pool processes.  [default: all cores; 1 when the device is CUDA]")
@click.option("--gpus-per-task", type=int, default=None,
              help="Dask GPU resource each run asks for where workers advertise GPU (0 = none).  [default: 1]")
def sweep_cmd(config, rhos, seeds, out, device, threads, resume, scheduler, workers, gpus_per_task) -> None:
    """One bridge run per (rho, seed), each in OUT/rho<r>-seed<s>/; writes OUT/bridge_results.{parquet,csv}."""
    from markovfork.llm_bridge.sweep import parse_rhos, parse_seeds, run_sweep

    cfg = _load(config, None, device, threads)
    rho_list = parse_rhos(rhos) if rhos is not None else list(cfg.sft.rhos)
    seed_list = parse_seeds(seeds) if seeds is not None else [cfg.seed]
    table = run_sweep(cfg, rho_list, seed_list, out, resume=resume, scheduler=scheduler, workers=workers,
                      gpus_per_task=gpus_per_task)
    click.echo(f"wrote {Path(out) / 'bridge_results.parquet'} and .csv ({table.height} rows, "
               f"{len(rho_list) * len(seed_list)} runs)")


@bridge.command("eval")
@click.argument("checkpoint", type=click.Path())
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="TOML config (task, eval). Default: the config.json of the run holding CHECKPOINT, if any.")
@click.option("--problems", type=click.Path(dir_okay=False), default=None,
              help="JSONL of test problems (e.g. OUT/data/test.jsonl). Default: the run's test set from the seed.")
@click.option("--base", type=click.Path(), default=None, help="Base checkpoint: adds pass_at_k_base and shrinkage.")
@click.option("--n-samples", type=int, default=None, help="Samples per problem (the n of pass@k).")
@click.option("--n-test", type=int, default=None, help="Test problems (when no --problems).")
@click.option("--temperature", type=float, default=None, help="Divide the logits by this (> 0).")
@click.option("--top-k", type=int, default=None, help="Keep the k most likely tokens (0 = off).")
@click.option("--top-p", type=float, default=None, help="Keep the smallest most-likely set with this mass (1 = off).")
@click.option("--min-p", type=float, default=None, help="Drop tokens below min-p x the top probability (0 = off).")
@click.option("--spread-first", type=int, default=None, help="Spread the first decision over this many candidates.")
@click.option("--spread-position", type=int, default=None, help="Response position of that decision (0 = first).")
@click.option("--max-new-tokens", type=int, default=None,
              help="Length budget: tokens sampled per response, [EOS] included (default: the config's).")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=None, help="Seed of the test set and the samples. Overrides the config.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Write OUT/eval_results.{parquet,csv}.")
def eval_cmd(checkpoint, config, problems, base, n_samples, n_test, temperature, top_k, top_p, min_p, spread_first,
             spread_position, max_new_tokens, device, seed, out) -> None:
    """Evaluate a local CHECKPOINT (a save_pretrained directory) and print pass@k."""
    from markovfork.llm_bridge.run import evaluate_checkpoint, find_run_config
    from markovfork.llm_bridge.tasks import Problem, read_jsonl

    if not Path(checkpoint, "config.json").is_file():
        raise ValueError(f"no model checkpoint (config.json) in {checkpoint}")
    cfg = _load(config, seed, device, None, saved=find_run_config(checkpoint) if config is None else None)
    sampling = _given(cfg.eval.sampling, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                      spread_first=spread_first, spread_position=spread_position, max_new_tokens=max_new_tokens)
    cfg = dataclasses.replace(cfg, eval=_given(cfg.eval, sampling=sampling, n_samples=n_samples, n_test=n_test))
    probs = None
    if problems is not None:
        records = list(read_jsonl(problems))
        probs = [r if isinstance(r, Problem) else r.problem for r in records]
    table = evaluate_checkpoint(checkpoint, cfg, problems=probs, base=base, out=out)
    cols = ["k", "pass_at_k_base", "pass_at_k_post", "shrinkage", "fork_accuracy"]
    click.echo(table.select(cols))


@bridge.command("counts")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", required=True, metavar="PREFIX",
              help="Write PREFIX.parquet and PREFIX.csv: one row per (seed, diversity, rho, epoch, test problem).")
def counts_cmd(run_dirs, out) -> None:
    """Per-problem success counts of finished bridge runs (RUN_DIRS), as one table."""
    import polars as pl

    from markovfork.plumbing.io import check_outputs, output_prefix, table_paths, table_writers, write_outputs
    from markovfork.llm_bridge.run_files import problem_counts

    prefix = output_prefix(out)
    check_outputs(table_paths(prefix))  # before reading anything
    table = pl.concat([problem_counts(d) for d in run_dirs])
    written = write_outputs(table_writers(table, prefix))
    click.echo(f"{table.height} rows from {len(run_dirs)} run(s); wrote {', '.join(map(str, written))}")
