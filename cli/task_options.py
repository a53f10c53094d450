"""Options of the path-star SFT run, shared by ``simulate``, ``sweep``, ``posttrain`` and
``mitigations``: the task, the evaluation's decoding and the configuration file."""

from __future__ import annotations

import click

from markovfork.cli.options import (
    json_option, k_option, list_option, no_progress_option, out_option, spread_at_option,
)
from markovfork.sft.config import ENGINES, SimulationConfig, load_config

OUT_HELP = "Write PREFIX.parquet, PREFIX.csv (the results table) and PREFIX_*.png figures."


def _apply(func, options):
    for option in reversed(options):
        func = option(func)
    return func


def evaluation_options(temperature_list: bool):
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
        spread_at_option("first"),
        click.option("--spread-min-p", type=float, default=None,
                     help="Spread candidates need probability >= this * (top probability).  [default: 0.01]"),
    ]
    return lambda func: _apply(func, options)


def evaluation_overrides(temperature, top_k, top_p, min_p, spread, spread_at, spread_min_p) -> dict:
    return {
        "decoding.temperature": temperature, "decoding.top_k": top_k, "decoding.top_p": top_p,
        "decoding.min_p": min_p, "spread.m": spread, "spread.min_p": spread_min_p,
        **{f"spread.{key}": value for key, value in (spread_at or {}).items()},
    }


def common_options(func):
    """--engine, the task's sizes, --k, --samples, --config, --out, --json, --no-progress."""
    return _apply(func, [
        click.option("--engine", type=click.Choice(ENGINES), default=None,
                     help="analytic: exact full-batch gradient flow and exact pass@k; sampled: minibatch SGD "
                          "and Monte Carlo rollouts.  [default: analytic]"),
        click.option("--train-problems", "n_train", type=int, default=None, help="Training problems.  [default: 500]"),
        click.option("--test-problems", "n_test", type=int, default=None, help="Held-out test problems.  [default: 500]"),
        click.option("--feature-dim", type=int, default=None, help="Dimension d of the problem features phi(x).  [default: 500]"),
        k_option(),
        click.option("--samples", "n_samples", type=int, default=None,
                     help="Sampled engine: rollouts per test problem (>= largest k).  [default: max(64, largest k)]"),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                     help="TOML file with the configuration (see docs/sft.md); options given here override it."),
        out_option(OUT_HELP),
        json_option("Print the summary and the configuration as JSON."),
        no_progress_option,
    ])


def overrides(engine, n_train, n_test, feature_dim, k, **extra) -> dict:
    return {"engine": engine, "task.n_train": n_train, "task.n_test": n_test, "task.feature_dim": feature_dim,
            "train.ks": k, **extra}


def load(config_file, changes: dict, k, n_samples) -> SimulationConfig:
    """The config from the file and the options; --samples defaults to max(the file's, largest k)."""
    if k is not None and n_samples is None:
        first = load_config(config_file, **{**changes, "train.ks": None})
        n_samples = max(first.train.n_samples, max(k))
    return load_config(config_file, **changes, **{"train.n_samples": n_samples})
