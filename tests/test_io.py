"""Atomic writes: results appear whole or not at all, with the usual file mode."""

import os
import stat

import polars as pl
import pytest

from markovfork.io import atomic_path, write_json, write_table


def test_write_table_round_trips_and_uses_umask_mode(tmp_path):
    df = pl.DataFrame({"k": [1, 2], "pass_at_k": [0.25, 0.5]})
    parquet, csv = write_table(df, tmp_path / "out")
    assert pl.read_parquet(parquet).equals(df) and pl.read_csv(csv).equals(df)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(parquet).st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.parquet"]


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "result.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    write_json({"a": 1}, target)
    assert target.read_text().strip().startswith("{") and len(list(tmp_path.iterdir())) == 1
