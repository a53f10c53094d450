"""``markovfork bridge``: eval of a saved checkpoint, and one-line errors for bad input."""

import polars as pl
import pytest
from click.testing import CliRunner

from markovfork.cli import main


def _invoke(args):
    return CliRunner().invoke(main, args)


def test_eval_matches_the_run_table(tiny_run, tmp_path):
    """Evaluating a run's checkpoint with the run's own config (found from the checkpoint path)
    and its base reproduces the run table's rows for that epoch."""
    ckpt = tiny_run / "sft" / "data-rho1" / "epoch-002"
    r = _invoke(["bridge", "eval", str(ckpt), "--base", str(tiny_run / "base" / "epoch-002"), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    got = pl.read_parquet(tmp_path / "eval_results.parquet").sort("k")
    run = pl.read_parquet(tiny_run / "bridge_results.parquet").filter(
        (pl.col("rho") == 1.0) & (pl.col("epoch") == 2) & (pl.col("diversity") == "data")).sort("k")
    for col in ["k", "pass_at_k_base", "pass_at_k_post", "shrinkage", "fork_accuracy", "epoch"]:
        assert got[col].to_list() == pytest.approx(run[col].to_list()), col
    assert "pass_at_k_post" in r.output


def test_eval_with_problems_file_and_sampling_options(tiny_run):
    ckpt = tiny_run / "base" / "epoch-002"
    r = _invoke(["bridge", "eval", str(ckpt), "--problems", str(tiny_run / "data" / "test.jsonl"),
                 "--n-samples", "4", "--top-p", "0.9", "--spread-first", "2"])
    assert r.exit_code == 0, r.output
    assert "│ 4   ┆" in r.output  # the k = 4 row of the printed table


@pytest.mark.parametrize(
    "args, message",
    [
        (["bridge", "eval", "/nonexistent/ckpt"], "no model checkpoint (config.json) in /nonexistent/ckpt"),
        (["bridge", "run", "--device", "tpu", "--out", "{tmp}/x"], "device must be 'auto', 'cpu' or 'cuda[:i]', got 'tpu'"),
        (["bridge", "run", "--config", "{tmp}/bad.toml", "--out", "{tmp}/y"], "unknown key 'dpeth' in [task]"),
        (["bridge", "run", "--config", "{tmp}/missing.toml"], "config file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path):
    (tmp_path / "bad.toml").write_text("[task]\ndpeth = 3\n")
    r = _invoke([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2
    text = r.output.strip()
    assert text.startswith("Error: ") and message in text and len(text.splitlines()) == 1
