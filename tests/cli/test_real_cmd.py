"""``markovfork real-fit``: one-line errors (exit 2, no traceback) and the outputs of a small run."""

import json
from pathlib import Path

import numpy as np
import polars as pl
from click.testing import CliRunner

from cli_checks import assert_one_error_line
from markovfork.cli import main

MATH500 = str(Path(__file__).resolve().parents[2] / "docs" / "examples" / "real" / "math500_qwen25_7b_base_vs_simplerl.csv")


def _run(args):
    return CliRunner().invoke(main, ["real-fit", *args])


def test_missing_label_wrong_label_and_bad_subsample_are_one_line_errors(tmp_path):
    assert_one_error_line(_run(["--base", MATH500, "--tuned", MATH500]), "--base-label")
    assert_one_error_line(_run(["--base", MATH500, "--tuned", MATH500, "--base-label", "base", "--tuned-label", "zz"]),
                          "'zz' not present")
    assert_one_error_line(_run(["--base", MATH500, "--tuned", MATH500, "--base-label", "base", "--tuned-label",
                                "simplerl", "--subsample", "500"]), "--subsample", "500")
    bad = tmp_path / "bad.csv"
    bad.write_text("problem,model,n,c\n1,a,4,9\n")
    assert_one_error_line(_run(["--base", str(bad), "--tuned", MATH500, "--tuned-label", "simplerl"]), str(bad), "c=9")
    assert_one_error_line(_run(["--base", str(tmp_path / "none.csv"), "--tuned", MATH500]), "not found")
    assert_one_error_line(_run(["--base", MATH500, "--tuned", MATH500, "--base-label", "base", "--tuned-label",
                                "simplerl", "--out", str(tmp_path) + "/"]), "--out")


def test_small_run_writes_table_figure_and_json(tmp_path):
    rows = []
    for i in range(60):
        c = (i * 7) % 9
        rows += [(str(i), "b", 8, c), (str(i), "t", 8, min(8, c + (i % 3)) if c > 1 else 0)]
    path = tmp_path / "counts.csv"
    pl.DataFrame(rows, schema=["problem", "model", "n", "c"], orient="row").write_csv(path)
    out = tmp_path / "runs" / "fit"
    result = _run(["--base", str(path), "--tuned", str(path), "--base-label", "b", "--tuned-label", "t",
                   "--subsample", "4", "--bootstrap", "2", "--k", "1,8,32", "--out", str(out), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["methods"]) == {"markov", "logit", "beta_binomial", "plug_in"}
    assert doc["fitted_on_n"] == 4 and doc["n"] == 8
    table = pl.read_parquet(str(out) + ".parquet")
    assert table["k"].to_list() == list(range(1, 33))
    measured = table["tuned_measured"].to_numpy()
    assert np.isfinite(measured[:8]).all() and np.isnan(measured[8:]).all()  # measured only for k <= n
    assert Path(str(out) + "_pass_at_k.png").stat().st_size > 1000 and Path(str(out) + ".csv").exists()
