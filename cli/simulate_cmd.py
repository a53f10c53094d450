"""``markovfork simulate`` and ``markovfork sweep``: SFT on the path-star task, base vs
fine-tuned pass@k over epochs (thin over :mod:`markovfork.sft.simulate`)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import click

from markovfork.cli import main
from markovfork.plumbing.io import check_outputs, figure_writer, output_prefix, table_paths, table_writers, write_outputs
from markovfork.sft.data import DIVERSITY
from markovfork.sft.simulate import ENGINES, SimulationConfig, config_dict, config_grid, load_config, simulate, sweep
from markovfork.model.spread import Spread


# ----------------------------------------------------------------------------- list parsing
MAX_LIST_VALUES = 10_000  # values in one --rho/--epochs/--lr/--seeds/--k list
MAX_RUNS = 10_000  # runs in one sweep (the product of the list lengths)


def parse_values(text: str, kind: type, option: str) -> list:
    """``"a,b,c"`` or the inclusive range ``"start:stop:step"`` (``"0:1:0.1"`` is 11 values); at
    most ``MAX_LIST_VALUES`` values, all finite."""
    example = "0,0.5,1 or 0:1:0.1" if kind is float else "1,2,3 or 0:4:1"

    def bad(why: str) -> click.BadParameter:
        return click.BadParameter(f"{why}, got {text!r}", param_hint=f"'{option}'")

    try:
        if ":" in text:
            start, stop, step = (kind(x) for x in text.split(":"))
            if not all(math.isfinite(x) for x in (start, stop, step)):
                raise bad("range bounds and step must be finite")
            if not step > 0 or stop < start:
                raise ValueError
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            if n > MAX_LIST_VALUES:
                raise bad(f"the range has {n} values, more than the maximum {MAX_LIST_VALUES}")
            values = [start + i * step for i in range(n)]
            if kind is float:  # 0.1 * 3 is 0.30000000000000004: keep what the user typed
                values = [round(v, 12) for v in values]
        else:
            values = [kind(x) for x in text.split(",")]
            if len(values) > MAX_LIST_VALUES:
                raise bad(f"the list has {len(values)} values, more than the maximum {MAX_LIST_VALUES}")
            if not all(math.isfinite(v) for v in values):
                raise bad("values must be finite")
    except (ValueError, OverflowError):
        raise bad(f"expected a comma-separated list or START:STOP:STEP (STEP > 0, STOP >= START) such as {example}") from None
    return values


def list_option(kind: type, option: str):
    def callback(ctx, param, text):
        return None if text is None else parse_values(text, kind, option)

    return callback


def _parse_k(ctx, param, text):
    if text is None:
        return None
    k = parse_values(text, int, "--k")
    if any(x < 1 for x in k):
        raise click.BadParameter(f"every k must be >= 1, got {text!r}", param_hint="'--k'")
    return sorted(set(k))


def choice_list(choices, option: str, what: str):
    """A click callback: ``"a,b"`` as the list of its values, each one of ``choices``."""
    def callback(ctx, param, text):
        if text is None:
            return None
        values = [x.strip() for x in text.split(",")]
        bad = [x for x in values if x not in choices]
        if bad:
            raise click.BadParameter(f"unknown {what} {bad[0]!r} (choose from {', '.join(choices)})", param_hint=f"'{option}'")
        return values

    return callback


_parse_diversity = choice_list(DIVERSITY, "--diversity", "diversity")


def _parse_spread_at(ctx, param, text):
    if text is None:
        return None
    try:
        return Spread.parse_at(text)
    except ValueError:
        raise click.BadParameter(f"expected first, fork or a depth >= 0, got {text!r}", param_hint="'--spread-at'") from None


def _evaluation_options(temperature_list: bool):
    """--temperature (a list on sweep), --top-k, --top-p, --min-p, --spread, --spread-at, --spread-min-p."""
    temperature = (
        click.option("--temperature", "temperatures", callback=list_option(float, "--temperature"), default=None,
                     metavar="LIST", help="Evaluation temperatures, a sweep dimension, e.g. 0.5,1,2.  [default: 1]")
        if temperature_list else
        click.option("--temperature", type=float, default=None, help="Evaluation sampling temperature (> 0).  [default: 1]")
    )
    options = [
        temperature,
        click.option("--top-k", type=int, default=None, help="Evaluation: keep the k most likely steps (0: off).  [default: 0]"),
        click.option("--top-p", type=float, default=None, help="Evaluation: nucleus mass in (0, 1] (1: off).  [default: 1]"),
        click.option("--min-p", type=float, default=None,
                     help="Evaluation: drop steps below min-p * (top probability) (0: off).  [default: 0]"),
        click.option("--spread", type=int, default=None, metavar="M",
                     help="Spread-first sampling: the n samples of a problem are split over the top M children of "
                          "the spread node (0: off; docs/model.md).  [default: 0]"),
        click.option("--spread-at", callback=_parse_spread_at, default=None, metavar="first|fork|DEPTH",
                     help="Spread node: the first node with a choice, the first decision fork, or the node DEPTH "
                          "steps below the start.  [default: first]"),
        click.option("--spread-min-p", type=float, default=None,
                     help="Spread candidates need probability >= this * (top probability).  [default: 0.01]"),
    ]

    def wrap(func):
        for option in reversed(options):
            func = option(func)
        return func

    return wrap


def _evaluation_overrides(temperature, top_k, top_p, min_p, spread, spread_at, spread_min_p) -> dict:
    return {
        "decoding.temperature": temperature, "decoding.top_k": top_k, "decoding.top_p": top_p,
        "decoding.min_p": min_p, "spread.m": spread, "spread.min_p": spread_min_p,
        **{f"spread.{key}": value for key, value in (spread_at or {}).items()},
    }


def _parse_scheduler(ctx, param, text):
    from markovfork.plumbing.executors import parse_scheduler

    try:
        parse_scheduler(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--scheduler'") from None
    return text


scheduler_option = click.option(
    "--scheduler", callback=_parse_scheduler, default=None, metavar="local:N|tcp://HOST:PORT",
    help="Run on Dask: local:N starts a LocalCluster of N workers, tcp://HOST:PORT uses a running "
         "scheduler (needs markovfork[dask]; docs/scaling.md).  [default: the local process pool]")


# ----------------------------------------------------------------------------- shared options
def _common_options(func):
    options = [
        click.option("--engine", type=click.Choice(ENGINES), default=None,
                     help="analytic: exact full-batch gradient flow and exact pass@k; sampled: minibatch SGD "
                          "and Monte Carlo rollouts.  [default: analytic]"),
        click.option("--train-problems", "n_train", type=int, default=None, help="Training problems.  [default: 500]"),
        click.option("--test-problems", "n_test", type=int, default=None, help="Held-out test problems.  [default: 500]"),
        click.option("--feature-dim", type=int, default=None, help="Dimension d of the problem features phi(x).  [default: 500]"),
        click.option("--k", "k", callback=_parse_k, default=None, metavar="LIST",
                     help="k values of pass@k, e.g. 1,4,16,64.  [default: 1,2,4,...,64]"),
        click.option("--samples", "n_samples", type=int, default=None,
                     help="Sampled engine: rollouts per test problem (>= largest k).  [default: max(64, largest k)]"),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                     help="TOML file with the configuration (see docs/sft.md); options given here override it."),
        click.option("--out", "out", type=click.Path(dir_okay=False), default=None, metavar="PREFIX",
                     help="Write PREFIX.parquet, PREFIX.csv (the results table) and PREFIX_*.png figures."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary and the configuration as JSON."),
        click.option("--no-progress", is_flag=True, help="No progress bar (it is shown only on a terminal anyway)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _overrides(engine, n_train, n_test, feature_dim, k, **extra) -> dict:
    return {
        "engine": engine,
        "task.n_train": n_train,
        "task.n_test": n_test,
        "task.feature_dim": feature_dim,
        "train.ks": k,
        **extra,
    }


def _load(config_file, overrides: dict, k, n_samples) -> SimulationConfig:
    """The config from the file and the options; --samples defaults to max(the file's, largest k)."""
    if k is not None and n_samples is None:
        first = load_config(config_file, **{**overrides, "train.ks": None})
        n_samples = max(first.train.n_samples, max(k))
    return load_config(config_file, **overrides, **{"train.n_samples": n_samples})


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _summary_dict(summary) -> dict:
    return {key: _finite(v) for key, v in asdict(summary).items()}


def _figure_path(prefix, name: str):
    return prefix.with_name(f"{prefix.name}_{name}.png")


def _planned_outputs(out, figure_names) -> "pathlib.Path | None":
    """The --out prefix, checked with every file it will write, before anything is computed."""
    if out is None:
        return None
    prefix = output_prefix(out)
    check_outputs([*table_paths(prefix), *(_figure_path(prefix, name) for name in figure_names)])
    return prefix


def _write(prefix, table, figure_names) -> list[str]:
    """Draw the figures, then write them and the table as one output set."""
    from markovfork.reporting.figures import results_figures

    figures = results_figures(table, figure_names)
    writers = {**table_writers(table, prefix), **{_figure_path(prefix, n): figure_writer(f) for n, f in figures.items()}}
    return [str(p) for p in write_outputs(writers)]


SIMULATE_FIGURES = ("pass_at_k", "shrinkage_vs_epochs", "fork_confidence")
SWEEP_FIGURES = ("pass_at_k", "shrinkage_vs_rho", "shrinkage_vs_epochs", "fork_confidence")


# ----------------------------------------------------------------------------- simulate
@main.command("simulate")
@click.option("--decision-points", "--forks", "forks", type=click.IntRange(min=0), default=None, metavar="N",
              help="Fork-crossing training trajectories (decision points in the data): rho = N / train problems. "
                   "--forks is the same option (in tree and coverage, --forks counts fork nodes). Excludes --rho.")
@click.option("--rho", type=float, default=None,
              help="Fork prevalence in [0, 1]: share of training trajectories through the decision point.  [default: 1]")
@click.option("--epochs", type=int, default=None, help="SFT epochs.  [default: 50]")
@click.option("--lr", type=float, default=None, help="Learning rate (gradient-flow time per epoch).  [default: 20]")
@click.option("--diversity", type=click.Choice(DIVERSITY), default=None,
              help="data: one mode per problem; problem: every problem in both modes; rationale: the fork "
                   "trajectories carry a rationale.  [default: data]")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the task, data, minibatches and rollouts.  [default: 0]")
@_evaluation_options(temperature_list=False)
@_common_options
def simulate_command(forks, rho, epochs, lr, diversity, seed, temperature, top_k, top_p, min_p, spread, spread_at,
                     spread_min_p, engine, n_train, n_test, feature_dim, k, n_samples, config_file, out, as_json,
                     no_progress):
    """Fine-tune on a mix of fork and fork-free trajectories and compare pass@k with the base model.

    Prints base vs post-trained pass@1 and pass@k at the largest k, the crossover k* and the
    shrinkage. Python: markovfork.sft.simulate.simulate.
    """
    if forks is not None and rho is not None:
        raise click.UsageError(f"--forks {forks} (--decision-points) and --rho {rho:g} are mutually exclusive "
                               "(rho = decision points / train problems)")
    prefix = _planned_outputs(out, SIMULATE_FIGURES)
    overrides = _overrides(engine, n_train, n_test, feature_dim, k, forks=forks, rho=rho, diversity=diversity,
                           seed=seed, **{"train.epochs": epochs, "train.lr": lr},
                           **_evaluation_overrides(temperature, top_k, top_p, min_p, spread, spread_at, spread_min_p))
    config = _load(config_file, overrides, k, n_samples)  # --rho or --forks replaces the file's other one
    result = simulate(config, progress=not no_progress)
    paths = _write(prefix, result.table, SIMULATE_FIGURES) if prefix is not None else []
    if as_json:
        config_json = {**config_dict(config), "rho": config.prevalence}  # the rho in effect (forks / n_train when forks is set)
        click.echo(json.dumps({"summary": _summary_dict(result.summary), "config": config_json, "files": paths}, indent=2))
        return
    for line in result.summary.lines():
        click.echo(line)
    if paths:
        click.echo("wrote " + ", ".join(paths))


# ----------------------------------------------------------------------------- sweep
def sweep_summary(table):
    """One row per run: the last epoch at the largest k (a polars DataFrame in and out)."""
    import polars as pl

    keys = ["engine", "rho", "diversity", "lr", "epochs", "seed"] + (["temperature"] if "temperature" in table.columns else [])
    last = table.filter(
        (pl.col("k") == pl.col("k").max()) & (pl.col("epoch") == pl.col("epoch").max().over(keys))
    )
    first = table.filter(pl.col("k") == pl.col("k").min()).filter(pl.col("epoch") == pl.col("epoch").max().over(keys))
    return (
        last.select(*keys, "k", "decision_points", "pass_at_k_base", "pass_at_k_post", "shrinkage",
                    "fork_confidence_correct", "fork_confidence_wrong")
        .join(first.select(*keys, pl.col("pass_at_k_base").alias("pass1_base"), pl.col("pass_at_k_post").alias("pass1_post")),
              on=keys, how="left", maintain_order="left")
    )


@main.command("sweep")
@click.option("--rho", "rhos", callback=list_option(float, "--rho"), default=None, metavar="LIST",
              help="Prevalences: 0,0.5,1 or the inclusive range 0:1:0.1.  [default: the config's]")
@click.option("--epochs", "epochs", callback=list_option(int, "--epochs"), default=None, metavar="LIST",
              help="Epoch counts, e.g. 10,50.  [default: 50]")
@click.option("--lr", "lrs", callback=list_option(float, "--lr"), default=None, metavar="LIST",
              help="Learning rates, e.g. 10,20.  [default: 20]")
@click.option("--seeds", "seeds", callback=list_option(int, "--seeds"), default=None, metavar="LIST",
              help="Seeds, e.g. 0,1,2 or 0:9:1.  [default: the config's seed]")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="The seed when --seeds is not given.  [default: 0]")
@click.option("--diversity", "diversities", callback=_parse_diversity, default=None, metavar="LIST",
              help="Diversity modes: any of data,problem,rationale.  [default: data]")
@click.option("--workers", type=int, default=None, help="Worker processes.  [default: all cores]")
@scheduler_option
@_evaluation_options(temperature_list=True)
@_common_options
def sweep_command(rhos, epochs, lrs, seeds, seed, diversities, workers, scheduler, temperatures, top_k, top_p, min_p, spread,
                  spread_at, spread_min_p, engine, n_train, n_test, feature_dim, k, n_samples, config_file, out,
                  as_json, no_progress):
    """Run the grid rho x epochs x lr x seeds x diversity x temperature in parallel and tabulate shrinkage.

    Prints one row per run (last epoch, largest k). Python: markovfork.sft.simulate.config_grid
    and sweep.
    """
    if seeds is not None and seed is not None:
        raise click.UsageError(f"--seed {seed} and --seeds are mutually exclusive")
    if seeds is not None and any(s < 0 for s in seeds):
        raise click.BadParameter(f"seeds must be >= 0, got {min(seeds)}", param_hint="'--seeds'")
    if epochs is not None and any(e < 0 for e in epochs):
        raise click.BadParameter(f"epochs must be >= 0, got {min(epochs)}", param_hint="'--epochs'")
    if workers is not None and workers < 1:
        raise click.BadParameter(f"workers must be >= 1, got {workers}", param_hint="'--workers'")
    if temperatures is not None and any(not t > 0 for t in temperatures):
        raise click.BadParameter(f"temperatures must be > 0, got {min(temperatures):g}", param_hint="'--temperature'")
    n_runs = math.prod(len(x) for x in (rhos, epochs, lrs, seeds, diversities, temperatures) if x is not None)
    if n_runs > MAX_RUNS:
        raise click.UsageError(f"the grid has {n_runs} runs, more than the maximum {MAX_RUNS} (split the sweep)")
    prefix = _planned_outputs(out, SWEEP_FIGURES)
    evaluation = _evaluation_overrides(None, top_k, top_p, min_p, spread, spread_at, spread_min_p)
    base = _load(config_file, _overrides(engine, n_train, n_test, feature_dim, k, seed=seed, **evaluation), k, n_samples)
    configs = config_grid(base, rhos=rhos, epochs=epochs, lrs=lrs, seeds=seeds, diversities=diversities,
                          temperatures=temperatures)
    table = sweep(configs, workers=workers, progress=not no_progress, scheduler=scheduler)
    runs = sweep_summary(table)
    paths = _write(prefix, table, SWEEP_FIGURES) if prefix is not None else []
    if as_json:
        grid = {"rho": sorted({c.prevalence for c in configs}), "epochs": sorted({c.train.epochs for c in configs}),
                "lr": sorted({c.train.lr for c in configs}), "seed": sorted({c.seed for c in configs}),
                "diversity": list(dict.fromkeys(c.diversity for c in configs)),
                "temperature": sorted({c.train.decoding.temperature for c in configs})}
        rows = [{key: _finite(v) for key, v in row.items()} for row in runs.iter_rows(named=True)]
        click.echo(json.dumps({"config": config_dict(base), "grid": grid, "runs": rows, "files": paths}, indent=2))
        return
    _print_runs(runs, len(configs))
    if paths:
        click.echo("wrote " + ", ".join(paths))


def _print_runs(runs, n_configs: int) -> None:
    k = int(runs["k"].max())
    extra = [c for c in ("engine", "lr", "epochs", "seed", "temperature") if c in runs.columns and runs[c].n_unique() > 1]
    click.echo(f"{n_configs} runs, {runs['engine'][0]} engine, last epoch, k = {k}")
    head = f"{'rho':>6}  {'diversity':<9}" + "".join(f"  {c:>8}" for c in extra)
    click.echo(head + f"  {'shrinkage':>9}  {'pass@1 base':>11}  {'post':>6}  {f'pass@{k} base':>12}  {'post':>6}")
    for r in runs.iter_rows(named=True):
        cells = "".join(f"  {r[c]:>8g}" if not isinstance(r[c], str) else f"  {r[c]:>8}" for c in extra)
        r = {key: round(v, 4) + 0.0 if isinstance(v, float) else v for key, v in r.items()}  # no "-0.0000"
        click.echo(
            f"{r['rho']:>6.3g}  {r['diversity']:<9}{cells}  {r['shrinkage']:>+9.4f}  {r['pass1_base']:>11.4f}  "
            f"{r['pass1_post']:>6.4f}  {r['pass_at_k_base']:>12.4f}  {r['pass_at_k_post']:>6.4f}"
        )
