"""Per-problem counts of a bridge run (llm_bridge/run_files.py) against the run's own results table."""

import json

import numpy as np
import polars as pl
import pytest

import markovfork
from markovfork.llm_bridge.run_files import problem_counts, run_name, sft_settings


def test_settings_skip_problem_level_only_where_it_equals_data_level():
    assert sft_settings(["data", "problem"], [0.0, 0.5, 1.0]) == [
        ("data", 0.0), ("data", 0.5), ("data", 1.0), ("problem", 0.5)]
    assert sft_settings(["problem"], [0.0, 1.0]) == [("problem", 0.0), ("problem", 1.0)]
    assert [run_name(d, r) for d, r in sft_settings(["data"], [0.0, 0.25, 1.0])] == [
        "data-rho0", "data-rho0.25", "data-rho1"]


def test_counts_reproduce_every_mean_of_the_results_table(tiny_run):
    counts = problem_counts(tiny_run)
    table = pl.read_parquet(tiny_run / "bridge_results.parquet")
    cfg = json.loads((tiny_run / "config.json").read_text())
    n_test, epochs = cfg["eval"]["n_test"], cfg["eval"]["epochs"]
    settings = table.select("diversity", "rho").unique()
    assert counts.height == settings.height * (len(epochs) + 1) * n_test
    for (diversity, rho, epoch), part in counts.group_by(["diversity", "rho", "epoch"]):
        rows = table.filter((pl.col("diversity") == diversity) & (pl.col("rho") == rho) & (pl.col("epoch") == epoch))
        ks = rows["k"].to_numpy()
        n = int(part["n_samples"][0])
        per_problem = markovfork.pass_at_k(n, part.sort("problem")["correct"].to_numpy(), ks)
        np.testing.assert_allclose(per_problem.mean(axis=0), rows["pass_at_k_post"].to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(part["q_target"].mean(), rows["fork_accuracy"][0], rtol=1e-12)


def test_a_missing_evaluation_is_named(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run / "eval", run / "eval")
    shutil.copy(tiny_run / "config.json", run / "config.json")
    (run / "eval" / "data-rho0.5-epoch002.json").unlink()
    with pytest.raises(ValueError, match="data-rho0.5-epoch002.json"):
        problem_counts(run)
