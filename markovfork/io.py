"""Atomic output: every result file is written to a temporary sibling and renamed into place,
so an interrupted run never leaves a half-written table, JSON file or figure behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


__all__ = ["atomic_path", "write_table", "write_json", "save_figure"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file 0600; give the result the usual mode (0666 less the umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_table(df: "pl.DataFrame", prefix: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``df`` as ``<prefix>.parquet`` and ``<prefix>.csv`` (each atomically); return both paths."""
    prefix = Path(prefix)
    parquet, csv = prefix.with_name(prefix.name + ".parquet"), prefix.with_name(prefix.name + ".csv")
    with atomic_path(parquet) as tmp:
        df.write_parquet(tmp)
    with atomic_path(csv) as tmp:
        df.write_csv(tmp)
    return parquet, csv


def write_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    return path


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    plt.close(fig)
    return path
