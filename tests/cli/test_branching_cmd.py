"""``markovfork branching`` through click's CliRunner: the table and figure, JSON rows equal to
the Python API's, the TOML config with its teachers, and one-line errors that write nothing."""

import json

import numpy as np
import polars as pl
from click.testing import CliRunner
from cli_checks import assert_one_error_line, files

from markovfork.branching.run import BranchingConfig, run_branching
from markovfork.branching.task import Teacher
from markovfork.cli import main
from markovfork.reporting.comparison_figures import branching_figure

SMALL = ["--epochs", "4", "--points", "4"]


def run(args):
    return CliRunner().invoke(main, ["branching", *args])


def test_json_rows_are_the_apis_last_epoch(tmp_path):
    result = run([*SMALL, "--beta", "0,0.4", "--filter", "0,0.5", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    from markovfork.branching.task import BranchingTask

    config = BranchingConfig(task=BranchingTask(points=4), teachers=(Teacher(0.0), Teacher(0.4)),
                             filtered_shares=(0.0, 0.5), epochs=4)
    table = run_branching(config).filter(pl.col("epoch") == 4)
    assert [(r["teacher"], r["filtered_share"]) for r in rows] == list(zip(table["teacher"], table["filtered_share"]))
    np.testing.assert_allclose([r["success"] for r in rows], table["success"].to_numpy(), rtol=0, atol=0)


def test_out_writes_table_and_curves_and_the_figure_draws_the_table(tmp_path):
    prefix = tmp_path / "b"
    result = run([*SMALL, "--beta", "0,0.5", "--out", str(prefix)])
    assert result.exit_code == 0, result.stderr
    assert sorted(files(tmp_path)) == ["b.csv", "b.parquet", "b_curves.png"]
    table = pl.read_parquet(prefix.with_suffix(".parquet"))
    loss_ax, ok_ax = branching_figure(table).axes
    convergent = table.filter(pl.col("teacher") == "convergent").sort("epoch")
    line = [ln for ln in ok_ax.get_lines() if ln.get_label() == "convergent"][0]
    np.testing.assert_allclose(line.get_ydata(), convergent["success"].to_numpy())


def test_config_file_teachers_and_overrides(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('epochs = 3\nbudget = 20\n[task]\npoints = 3\n[[teachers]]\nbeta = 0.2\nretries = 2\n')
    result = run(["--config", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["config"]["epochs"] == 3 and out["config"]["task"]["points"] == 3 and out["config"]["budget"] == 20
    assert [r["teacher"] for r in out["rows"]] == ["branching(beta=0.2, retries=2)"]
    result = run(["--config", str(path), "--budget", "12", "--beta", "0", "--json"])
    out = json.loads(result.stdout)
    assert out["config"]["budget"] == 12 and [r["teacher"] for r in out["rows"]] == ["convergent"]


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    prefix = str(tmp_path / "x")
    assert_one_error_line(run([*SMALL, "--filter", "1", "--out", prefix]), "filtered_shares[0]")
    assert_one_error_line(run([*SMALL, "--correct", "4", "--out", prefix]), "n_correct")
    assert_one_error_line(run([*SMALL, "--beta", "-0.1", "--out", prefix]), "beta")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[teachers]]\nbeta = 0.1\nrate = 2\n")
    assert_one_error_line(run(["--config", str(bad), "--out", prefix]), "rate")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_indecipherable_keeps_the_decision_logit():
    result = run([*SMALL, "--beta", "0.4", "--indecipherable", "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["config"]["freeze_a"] is True
    assert out["rows"][0]["a"] == out["config"]["task"]["base_a"]
