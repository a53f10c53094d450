"""The counts-table reader: long and wide formats, and one-line errors naming file and value."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from markovfork.real.counts import paired_counts, read_counts

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "real"
MATH500 = EXAMPLES / "math500_qwen25_7b_base_vs_simplerl.csv"


def test_wide_math500_file_reads_as_two_models_with_the_source_sums():
    df = read_counts(MATH500)
    assert sorted(df["model"].unique()) == ["base", "simplerl"]
    pairs = paired_counts(MATH500, MATH500, "base", "simplerl")
    assert pairs.c_base.sum() == 39291 and pairs.c_tuned.sum() == 49877 and len(pairs.problems) == 500
    assert int(np.sum((pairs.c_base > 0) & (pairs.c_tuned == 0))) == 19


def test_long_csv_and_parquet_agree(tmp_path):
    df = pl.DataFrame({"problem": ["a", "b", "a", "b"], "model": ["m0", "m0", "m1", "m1"], "n": [4, 4, 4, 4],
                       "c": [1, 0, 4, 2], "extra": [0, 0, 0, 0]})
    df.write_csv(tmp_path / "t.csv")
    df.write_parquet(tmp_path / "t.parquet")
    a, b = read_counts(tmp_path / "t.csv"), read_counts(tmp_path / "t.parquet")
    assert a.equals(b) and a.columns == ["problem", "model", "n", "c"]
    pairs = paired_counts(tmp_path / "t.csv", tmp_path / "t.parquet", "m0", "m1")
    assert pairs.c_base.tolist() == [1, 0] and pairs.c_tuned.tolist() == [4, 2]


@pytest.mark.parametrize("text,needle", [
    ("problem,model,n\n1,a,4\n", "missing column c"),
    ("model,n,c\na,4,1\n", "missing column problem"),
    ("problem,model,n,c\n1,a,4,5\n", "c must be <= n, got c=5"),
    ("problem,model,n,c\n1,a,4,-1\n", "c must be >= 0, got c=-1"),
    ("problem,model,n,c\n1,a,4,1.5\n", "whole numbers, got 1.5"),
    ("problem,model,n,c\n1,a,4,x\n", "whole numbers, got 'x'"),
    ("problem,model,n,c\n1,a,4,1\n1,a,4,2\n", "duplicate row for problem '1' and model 'a'"),
    ("problem,model,n,c\n", "empty"),
])
def test_bad_tables_give_one_line_errors_naming_the_file(tmp_path, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        read_counts(path)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_labels_and_problem_sets_are_checked(tmp_path):
    base = tmp_path / "base.csv"
    base.write_text("problem,model,n,c\n1,a,4,1\n2,a,4,2\n")
    tuned = tmp_path / "tuned.csv"
    tuned.write_text("problem,model,n,c\n1,b,4,1\n3,b,4,2\n")
    with pytest.raises(ValueError, match="model 'z' not present"):
        paired_counts(base, tuned, "z", None)
    with pytest.raises(ValueError, match="problem sets differ: 1 problems only in .*base.csv"):
        paired_counts(base, tuned)
    with pytest.raises(ValueError, match="choose one with --base-label"):
        paired_counts(MATH500, MATH500)
    with pytest.raises(ValueError, match="not found"):
        read_counts(tmp_path / "nope.csv")
