"""``markovfork posttrain`` through click's CliRunner: one run and a grid, the JSON summary,
outputs all-or-nothing with the pass@k figure, and one-line errors that write nothing."""

import json

import numpy as np
import polars as pl
from click.testing import CliRunner
from cli_checks import assert_one_error_line

from markovfork.cli import main
from markovfork.reporting.comparison_figures import posttrain_pass_at_k_figure

SMALL = ["--train-problems", "40", "--test-problems", "40", "--feature-dim", "60", "--epochs", "4",
         "--iterations", "20", "--k", "1,4,16", "--no-progress"]


def run(args):
    return CliRunner().invoke(main, ["posttrain", *args])


def test_one_run_prints_base_start_and_rl(tmp_path):
    result = run([*SMALL, "--method", "reinforce", "--lr", "2"])
    assert result.exit_code == 0, result.stderr
    assert "1 run(s); pass@1 and pass@16" in result.stdout
    assert result.stdout.splitlines()[2].split()[0] == "reinforce"


def test_grid_json_has_one_row_per_combination_and_matches_the_table(tmp_path):
    prefix = tmp_path / "out" / "rl"
    result = run([*SMALL, "--method", "grpo,ppo", "--kl", "0,0.5", "--workers", "1", "--json", "--out", str(prefix)])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert sorted((r["method"], r["kl"]) for r in out["runs"]) == [("grpo", 0), ("grpo", 0.5), ("ppo", 0), ("ppo", 0.5)]
    table = pl.read_parquet(prefix.with_suffix(".parquet"))
    assert set(table["stage"]) == {"base", "start", "rl"}
    for r in out["runs"]:
        last = table.filter((pl.col("method") == r["method"]) & (pl.col("kl") == r["kl"]) & (pl.col("stage") == "rl"))
        last = last.filter(pl.col("iteration") == last["iteration"].max())
        assert last.filter(pl.col("k") == 16)["pass_at_k"][0] == r["passk_rl"]
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["rl.csv", "rl.parquet", "rl_pass_at_k.png"]


def test_the_figure_draws_the_tables_curves(tmp_path):
    prefix = tmp_path / "rl"
    assert run([*SMALL, "--method", "grpo,reinforce", "--workers", "1", "--out", str(prefix)]).exit_code == 0
    table = pl.read_parquet(prefix.with_suffix(".parquet"))
    ax = posttrain_pass_at_k_figure(table).axes[0]
    lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
    base = table.filter(pl.col("stage") == "base").filter(pl.col("method") == "grpo").sort("k")["pass_at_k"]
    np.testing.assert_allclose(lines["base"], base.to_numpy())
    rl = table.filter((pl.col("stage") == "rl") & (pl.col("method") == "reinforce"))
    rl = rl.filter(pl.col("iteration") == rl["iteration"].max()).sort("k")["pass_at_k"]
    np.testing.assert_allclose(lines["RL method=reinforce"], rl.to_numpy())
    assert "SFT (start of RL)" in lines


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    prefix = tmp_path / "x"
    assert_one_error_line(run([*SMALL, "--method", "dpo", "--out", str(prefix)]), "unknown method 'dpo'")
    assert_one_error_line(run([*SMALL, "--kl", "-1", "--out", str(prefix)]), "--kl")
    assert_one_error_line(run([*SMALL, "--lr", "0", "--out", str(prefix)]), "lr")
    assert_one_error_line(run([*SMALL, "--method", "passk", "--engine", "sampled", "--group-size", "3",
                               "--passk-k", "4", "--out", str(prefix)]), "group_size")
    assert_one_error_line(run([*SMALL, "--tree", str(tmp_path / "none.json"), "--out", str(prefix)]), "none.json")
    assert list(tmp_path.iterdir()) == []
