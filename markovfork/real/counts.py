"""The per-problem counts table of real language models: one reader, one-line errors.

Long format (CSV with optional ``#`` comment lines, or Parquet), one row per (problem, model):

    problem   problem id (also accepted: ``problem_idx``, ``problem_id``), any type, read as text
    model     model or checkpoint label (text)
    n         samples drawn for the problem (integer >= 1)
    c         correct samples among them (integer, 0 <= c <= n)

Other columns (e.g. ``benchmark``) are ignored. Wide format, converted on reading: no ``model``
column, and one ``c_<label>`` column per model beside ``problem``/``problem_idx`` and ``n`` (the
MATH500 file: ``problem_idx,n,c_base,c_simplerl`` holds the models ``base`` and ``simplerl``).

Every problem is a :class:`ValueError` of one line naming the file and the bad value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from markovfork.plumbing.io import read_table

__all__ = ["read_counts", "PairedCounts", "paired_counts", "model_counts"]

PROBLEM_COLUMNS = ("problem", "problem_idx", "problem_id")


def _integer_column(df, name: str, path: Path) -> np.ndarray:
    """Column ``name`` as int64; ValueError naming the file, the row and the value when a value is
    missing, not a number or not a whole number."""
    import polars as pl

    col = df[name]
    if col.null_count():
        row = int(np.flatnonzero(col.is_null().to_numpy())[0])
        raise ValueError(f"{path}: column {name} has an empty value at data row {row + 1}")
    if col.dtype.is_integer():
        return col.cast(pl.Int64).to_numpy()
    values = col.cast(pl.Float64, strict=False)
    bad = values.is_null() | ~values.is_finite() | (values != values.round(0))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: column {name} must hold whole numbers, got {col[row]!r} at data row {row + 1}")
    return values.cast(pl.Int64).to_numpy()


def read_counts(path: str | os.PathLike):
    """The counts table at ``path`` (long or wide, module docstring) as a polars DataFrame with
    columns problem (str), model (str), n (int64), c (int64), checked."""
    import polars as pl

    path = Path(path)
    df = read_table(path, "counts table", comment_prefix="#")
    if df.height == 0:
        raise ValueError(f"{path}: the counts table is empty (no data rows)")
    problem_col = next((name for name in PROBLEM_COLUMNS if name in df.columns), None)
    if problem_col is None:
        raise ValueError(f"{path}: missing column problem (or problem_idx/problem_id); columns are {df.columns}")
    if "model" not in df.columns and "c" not in df.columns:
        wide = [name for name in df.columns if name.startswith("c_") and len(name) > 2]
        if not wide:
            raise ValueError(f"{path}: missing columns model and c (long format) or c_<label> (wide format); "
                             f"columns are {df.columns}")
        if "n" not in df.columns:
            raise ValueError(f"{path}: missing column n; columns are {df.columns}")
        df = pl.concat([df.select(pl.col(problem_col), pl.col("n"), pl.col(name).alias("c"))
                        .with_columns(pl.lit(name[2:]).alias("model")) for name in wide], how="vertical_relaxed")
    for name in ("model", "n", "c"):
        if name not in df.columns:
            raise ValueError(f"{path}: missing column {name}; columns are {df.columns}")
    if df[problem_col].null_count() or df["model"].null_count():
        raise ValueError(f"{path}: empty problem id or model label")
    n = _integer_column(df, "n", path)
    c = _integer_column(df, "c", path)
    if np.any(n < 1):
        i = int(np.argmax(n < 1))
        raise ValueError(f"{path}: n must be >= 1, got n={int(n[i])} at data row {i + 1}")
    if np.any(c < 0):
        i = int(np.argmax(c < 0))
        raise ValueError(f"{path}: c must be >= 0, got c={int(c[i])} at data row {i + 1}")
    if np.any(c > n):
        i = int(np.argmax(c > n))
        raise ValueError(f"{path}: c must be <= n, got c={int(c[i])} with n={int(n[i])} at data row {i + 1}")
    out = pl.DataFrame({
        "problem": df[problem_col].cast(pl.Utf8), "model": df["model"].cast(pl.Utf8),
        "n": pl.Series(n, dtype=pl.Int64), "c": pl.Series(c, dtype=pl.Int64),
    })
    dup = out.select("problem", "model").is_duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{path}: duplicate row for problem {out['problem'][i]!r} and model {out['model'][i]!r}")
    return out


def _select(df, path: Path, label: str | None, option: str):
    """Rows of one model (the only one when ``label`` is None)."""
    models = df["model"].unique(maintain_order=True).to_list()
    if label is None:
        if len(models) != 1:
            raise ValueError(f"{path} holds {len(models)} models ({', '.join(models[:8])}): choose one with {option}")
        label = models[0]
    if label not in models:
        raise ValueError(f"{path}: model {label!r} not present (models: {', '.join(models[:8])})")
    return df.filter(df["model"] == label), label


@dataclass(frozen=True, eq=False)
class PairedCounts:
    """Counts of a base and a tuned model on the same problems (row i = problem ``problems[i]``)."""

    problems: np.ndarray  # (P,) problem ids (str)
    n_base: np.ndarray  # (P,) int64
    c_base: np.ndarray
    n_tuned: np.ndarray
    c_tuned: np.ndarray
    base_label: str
    tuned_label: str


def model_counts(path, label: str | None = None, option: str = "--label"):
    """(problem ids, n, c, label) of one model of the table at ``path``."""
    df, label = _select(read_counts(path), Path(path), label, option)
    df = df.sort("problem")
    return df["problem"].to_numpy(), df["n"].to_numpy(), df["c"].to_numpy(), label


def paired_counts(base_path, tuned_path, base_label: str | None = None, tuned_label: str | None = None) -> PairedCounts:
    """Read both tables (they may be one file) and pair the two models' counts by problem;
    ``ValueError`` when a label is absent or the two problem sets differ."""
    base_path, tuned_path = Path(base_path), Path(tuned_path)
    base_df = read_counts(base_path)
    tuned_df = base_df if tuned_path == base_path else read_counts(tuned_path)
    base, base_label = _select(base_df, base_path, base_label, "--base-label")
    tuned, tuned_label = _select(tuned_df, tuned_path, tuned_label, "--tuned-label")
    if base_path == tuned_path and base_label == tuned_label:
        raise ValueError(f"{base_path}: base and tuned are the same model {base_label!r} (give --base-label and --tuned-label)")
    only_base = set(base["problem"].to_list()) - set(tuned["problem"].to_list())
    only_tuned = set(tuned["problem"].to_list()) - set(base["problem"].to_list())
    if only_base or only_tuned:
        side, which = (f"{base_path} ({base_label})", sorted(only_base)) if only_base else \
            (f"{tuned_path} ({tuned_label})", sorted(only_tuned))
        raise ValueError(f"base and tuned problem sets differ: {len(which)} problems only in {side}, "
                         f"e.g. {which[0]!r}")
    joined = base.join(tuned, on="problem", suffix="_t").sort("problem")
    return PairedCounts(joined["problem"].to_numpy(), joined["n"].to_numpy(), joined["c"].to_numpy(),
                        joined["n_t"].to_numpy(), joined["c_t"].to_numpy(), base_label, tuned_label)
