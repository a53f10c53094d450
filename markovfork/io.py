"""Atomic output: every result file is written to a temporary sibling and renamed into place,
so an interrupted run never leaves a half-written table, JSON file or figure behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator


__all__ = ["atomic_path", "write_table", "write_json", "save_figure", "read_json", "read_toml"]


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


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {what} {path}: {exc}") from None


def read_json(path: str | os.PathLike, what: str = "file"):
    """Parse a JSON file; ``ValueError`` naming the file when it is missing or not JSON."""
    path = Path(path)
    try:
        return json.loads(_read_text(path, what))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid JSON: {exc}") from None


def read_toml(path: str | os.PathLike, what: str = "config file") -> dict:
    """Parse a TOML file; ``ValueError`` naming the file when it is missing or not TOML."""
    import tomllib

    path = Path(path)
    try:
        return tomllib.loads(_read_text(path, what))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid TOML: {exc}") from None
