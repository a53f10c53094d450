"""The results table ``markovfork fit`` reads, as a contract (``docs/results-schema.md``): the
columns it needs, their kinds, and the checks that make a table fit-able. Every failure is a
one-line ``ValueError`` naming the file (or the table) and the offending value.

A table holds one row per (engine, rho, diversity, seed, epoch, k): two rows with the same key,
equal or not, are refused (within one file and across files: the same table given twice would
halve every standard error).
"""

from __future__ import annotations

import os

from markovfork.plumbing.io import first_line, read_table  # the one results-table reader (re-exported)

__all__ = ["REQUIRED_COLUMNS", "FIT_COLUMNS", "ROW_KEY", "read_table", "check_kinds", "check_table", "read_results"]

# column -> kind ("int": an integer dtype; "float": any numeric dtype; "str": text)
FIT_COLUMNS: dict[str, str] = {
    "engine": "str", "rho": "float", "diversity": "str", "seed": "int", "epoch": "int", "k": "int",
    "pass_at_k_post": "float", "arms": "int", "depth": "int", "n_samples": "int", "n_test": "int",
}
REQUIRED_COLUMNS = ("engine", "rho", "diversity", "seed", "epoch", "k", "pass_at_k_post")  # measured curves
OPTIONAL_COLUMNS: dict[str, str] = {"fork_format": "str", "answer": "str"}  # default: the config's
ROW_KEY = ("engine", "rho", "diversity", "seed", "epoch", "k")  # one row per key
assert set(REQUIRED_COLUMNS) <= set(FIT_COLUMNS)


def _kind_ok(dtype, kind: str) -> bool:
    if kind == "str":
        return dtype.is_(__import__("polars").String)
    if kind == "int":
        return dtype.is_integer()
    return dtype.is_numeric()


def _row_text(row: dict) -> str:
    return ", ".join(f"{k} {row[k]!r}" if isinstance(row[k], str) else f"{k} {row[k]:g}" for k in ROW_KEY)


def check_kinds(table, columns, where: str = "the results table") -> None:
    """Each of ``columns`` of ``table`` holds values of its kind (:data:`FIT_COLUMNS`), and a
    required one no null: never a silent cast of text to numbers."""
    import polars as pl

    for col in columns:
        kind = (FIT_COLUMNS | OPTIONAL_COLUMNS)[col]
        dtype = table.schema[col]
        if dtype == pl.Null:
            if col in FIT_COLUMNS and table.height:
                raise ValueError(f"column {col} of {where} is empty (null in every row)")
            continue
        if not _kind_ok(dtype, kind):
            want = {"str": "text", "int": "integers", "float": "numbers"}[kind]
            raise ValueError(f"column {col} of {where} must hold {want}, got {dtype} "
                             f"(e.g. {table[col].drop_nulls().head(1).to_list()})")
        if col in FIT_COLUMNS and table[col].null_count():
            row = int(table[col].is_null().arg_max())
            raise ValueError(f"column {col} of {where} is null in row {row + 1}")


def check_table(table, where: str = "the results table"):
    """``table`` checked against the contract (module docstring); returns it unchanged."""
    import polars as pl

    missing = [c for c in FIT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{where} lacks the results columns {missing} (see docs/results-schema.md)")
    if table.height == 0:
        raise ValueError(f"{where} has no rows")
    check_kinds(table, [c for c in (*FIT_COLUMNS, *OPTIONAL_COLUMNS) if c in table.columns], where)
    for col, low, high in (("rho", 0.0, 1.0), ("epoch", 0, None), ("k", 1, None), ("seed", 0, None),
                           ("n_samples", 1, None), ("n_test", 1, None), ("arms", 2, None), ("depth", 2, None)):
        values = table[col].cast(pl.Float64)
        bad = values.is_nan() | (values < low) | (values > high if high is not None else False)
        if bad.any():
            i = int(bad.arg_max())
            bound = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
            raise ValueError(f"column {col} of {where} must be {bound}, got {table[col][i]} in row {i + 1}")
    above = table["k"] > table["n_samples"]
    if above.any():
        i = int(above.arg_max())
        raise ValueError(f"{where}: k {table['k'][i]} exceeds n_samples {table['n_samples'][i]} in row {i + 1} "
                         f"(pass@k needs k <= n samples)")
    _check_unique(table, where)
    return table


def _check_unique(table, where: str, sources: list[str] | None = None) -> None:
    """One row per :data:`ROW_KEY` (with ``sources``: ``table`` has a ``_source`` column, an index
    into them, and a key found in two files names both)."""
    import polars as pl

    dup = table.filter(pl.struct(*ROW_KEY).is_duplicated())
    if dup.height == 0:
        return
    first = dup.row(0, named=True)
    same = dup.filter(pl.all_horizontal(pl.col(k) == first[k] for k in ROW_KEY))
    values = sorted(set(same["pass_at_k_post"].to_list()))
    what = "conflicting" if len(values) > 1 else "repeated"
    if sources is not None and same["_source"].n_unique() > 1:
        files = [sources[i] for i in sorted(set(same["_source"].to_list()))]
        raise ValueError(f"{files[1]} repeats rows of {files[0]} ({what}: {_row_text(first)}, pass_at_k_post "
                         f"{', '.join(f'{v:g}' for v in values)}): give each run once")
    raise ValueError(f"{where} has {same.height} {what} rows for {_row_text(first)} (pass_at_k_post "
                     f"{', '.join(f'{v:g}' for v in values)}): one row per (engine, rho, diversity, seed, epoch, k)")


def read_results(paths) -> "pl.DataFrame":
    """The rows of one or more results tables (Parquet or CSV, by suffix), each checked against
    the contract, as one table; the same file twice, or a row of one file repeated in another, is
    refused."""
    import polars as pl

    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("give at least one results table")
    seen: dict[str, str] = {}
    frames = []
    for i, path in enumerate(paths):
        key = os.path.realpath(path)
        if key in seen:
            also = "" if seen[key] == path else f" (as {seen[key]} too)"
            raise ValueError(f"results table {path} is given twice{also}: give each run once")
        seen[key] = path
        df = check_table(read_table(path), str(path))
        frames.append(df.with_columns(pl.lit(i, dtype=pl.Int64).alias("_source")))
    try:
        table = pl.concat(frames, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"the results tables {paths} do not share column types: {first_line(exc)}") from None
    _check_unique(table, "the results tables", paths)
    return table.drop("_source")
