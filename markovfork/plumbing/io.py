"""The output contract, in one place: every output of a command is computed first, written to a
temporary sibling, and the whole set is renamed into place together, with SIGINT and SIGTERM
deferred while the renames run. On any failure or signal every temporary file is removed and
the previous outputs stay as they were; the locations are checked before anything is computed.

``check_outputs`` (before computing) and ``write_outputs`` (after) are the two halves; the other
writers are one-file uses of ``write_outputs``. Readers turn every ``OSError`` and parse error
into a one-line ``ValueError`` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

__all__ = [
    "output_prefix", "table_paths", "check_outputs", "check_not_inputs", "write_outputs", "table_writers", "figure_writer",
    "json_writer", "atomic_path", "write_table", "write_json", "save_figure", "read_json", "read_toml", "read_table",
    "first_line",
]

Writer = Callable[[Path], None]  # writes one output to the (temporary) path it is given


# ----------------------------------------------------------------------------- locations
def output_prefix(prefix: str | os.PathLike, option: str = "--out") -> Path:
    """``prefix`` as a path prefix (``PREFIX.parquet``, ``PREFIX_x.png``); ``ValueError`` when it is
    empty or ends in a separator (it would name a directory, not a file prefix)."""
    text = os.fspath(prefix)
    if not text.strip():
        raise ValueError(f"{option} must name a file prefix such as runs/sim, got {text!r}")
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise ValueError(f"{option} must name a file prefix such as {text.rstrip('/' + os.sep) or 'runs'}/sim, "
                         f"not a directory, got {text!r}")
    return Path(text)


def table_paths(prefix: str | os.PathLike) -> tuple[Path, Path]:
    """``(<prefix>.parquet, <prefix>.csv)``."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".parquet"), prefix.with_name(prefix.name + ".csv")


def _location_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file (None when it can, as far as can be told before writing)."""
    if path.is_dir():
        return "it is a directory"
    parent = path.parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"directory {parent} is not writable"
    return None


def check_outputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Check, before any computation, that every path can be created as a file (its nearest
    existing ancestor is a writable directory and the path itself is not a directory) and that no
    path is given twice; ``ValueError`` naming the first path that cannot and why."""
    paths = [Path(p) for p in paths]
    seen: set[Path] = set()
    for path in paths:
        key = Path(os.path.abspath(path))
        if key in seen:
            raise ValueError(f"cannot write {path}: the same file is named twice among the outputs")
        seen.add(key)
        problem = _location_problem(path)
        if problem:
            raise ValueError(f"cannot write {path}: {problem}")
    return paths


# ----------------------------------------------------------------------------- signals
def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """While writing: SIGTERM raises ``SystemExit(143)`` (so the temporary files are removed)
    when it would otherwise kill the process outright."""
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM received inside the block are delivered when it ends."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []
    saved = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)


def _stage(event: str, path: Path) -> None:
    """Called after each temporary file is written (``"written"``) and after each rename
    (``"renamed"``); does nothing (tests replace it to interrupt the write phase at a known point)."""


# ----------------------------------------------------------------------------- writing
class _Staging:
    """Temporary siblings of a set of targets, committed together or discarded."""

    def __init__(self) -> None:
        self.temps: dict[Path, Path] = {}
        self.created: list[Path] = []  # directories made for the outputs (removed on failure if empty)

    def temp_for(self, target: Path) -> Path:
        missing = []
        parent = target.parent
        while not os.path.lexists(parent):
            missing.append(parent)
            parent = parent.parent
        target.parent.mkdir(parents=True, exist_ok=True)
        self.created += reversed(missing)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        self.temps[target] = Path(tmp)
        return Path(tmp)

    def commit(self) -> None:
        """Rename every temporary file onto its target, signals deferred. If a rename fails, the
        targets already replaced get their previous content back (kept as hard links meanwhile)."""
        umask = os.umask(0)
        os.umask(umask)
        backups: dict[Path, Path] = {}
        done: list[Path] = []
        with _signals_deferred():
            try:
                for target, tmp in self.temps.items():
                    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual mode
                    if os.path.isfile(target):
                        with contextlib.suppress(OSError):  # no hard links here: no rollback for this one
                            os.link(target, tmp.with_name(tmp.name + ".old"))
                            backups[target] = tmp.with_name(tmp.name + ".old")
                    os.replace(tmp, target)
                    done.append(target)
                    _stage("renamed", target)
            except BaseException:
                for target in reversed(done):
                    with contextlib.suppress(OSError):
                        if target in backups:
                            os.replace(backups.pop(target), target)
                        else:
                            os.unlink(target)
                raise
            finally:
                for backup in backups.values():
                    with contextlib.suppress(OSError):
                        os.unlink(backup)

    def discard(self) -> None:
        for tmp in self.temps.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def discard_directories(self) -> None:
        for directory in reversed(self.created):
            with contextlib.suppress(OSError):
                directory.rmdir()


def write_outputs(writers: Mapping[str | os.PathLike, Writer]) -> list[Path]:
    """Write a set of outputs under the contract: each ``writer(tmp)`` writes one target's
    content to a temporary sibling; when all have succeeded the set is renamed into place together.
    On any exception or signal nothing changes on disk. Returns the targets, in order."""
    targets = check_outputs(writers)
    with _staged() as staging:
        for target, write in zip(targets, writers.values()):
            try:
                write(staging.temp_for(target))
            except Exception as exc:  # name the output, not its temporary file
                error = _write_error(exc, target)
                if error is exc:
                    raise
                raise error from exc
            _stage("written", target)
    return targets


def _write_error(exc: Exception, target: Path) -> Exception:
    """``exc`` raised while writing ``target`` as ``OSError("cannot write TARGET: reason")`` when it
    is an OS error: an ``OSError``, or a library's error that wraps one (polars reports a full disk
    as ``ComputeError("... (os error 28)")``); any other exception as it is."""
    import re

    if isinstance(exc, OSError):
        code, reason = exc.errno, exc.strerror or str(exc)
    else:
        found = re.search(r"\(os error (\d+)\)", str(exc))
        if found is None:
            return exc
        code = int(found.group(1))
        reason = os.strerror(code)
    return OSError(code, f"cannot write {target}: {reason}")


def check_not_inputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike]) -> None:
    """``ValueError`` when an output would replace one of the command's inputs (paths compared
    resolved: links, ``..`` and the working directory followed)."""
    given = {os.path.realpath(p): p for p in inputs}
    for out in outputs:
        hit = given.get(os.path.realpath(out))
        if hit is not None:
            raise ValueError(f"cannot write {out}: it is the input {hit} (choose another output name)")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = check_outputs([path])[0]
    with _staged() as staging:
        yield staging.temp_for(target)


@contextlib.contextmanager
def _staged() -> Iterator["_Staging"]:
    """A :class:`_Staging` whose temporaries are renamed into place when the block succeeds;
    on any exception or signal the temporaries (and directories made for them) are removed."""
    staging = _Staging()
    ok = False
    with _terminate_raises():
        try:
            yield staging
            staging.commit()
            ok = True
        finally:
            staging.discard()
            if not ok:
                staging.discard_directories()


def table_writers(df: "pl.DataFrame", prefix: str | os.PathLike) -> dict[Path, Writer]:
    """Writers of ``<prefix>.parquet`` and ``<prefix>.csv``."""
    parquet, csv = table_paths(prefix)
    return {parquet: lambda tmp: df.write_parquet(tmp), csv: lambda tmp: df.write_csv(tmp)}


def json_safe(obj):
    """``obj`` with every non-finite float (nan, inf) as None, in dicts, lists and tuples at any
    depth: strict JSON has neither (the one NaN-to-null of the package)."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def json_writer(obj) -> Writer:
    """Writer of ``obj`` as indented JSON."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    return lambda tmp: Path(tmp).write_text(text)


def figure_writer(fig, dpi: int = 120) -> Writer:
    """Writer of a matplotlib figure as PNG."""
    return lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")


def write_table(df: "pl.DataFrame", prefix: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``df`` as ``<prefix>.parquet`` and ``<prefix>.csv`` (both or neither); return both paths."""
    parquet, csv = write_outputs(table_writers(df, prefix))
    return parquet, csv


def write_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_outputs({path: json_writer(obj)})[0]


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG, atomically, and release it."""
    try:
        return write_outputs({path: figure_writer(fig, dpi)})[0]
    finally:
        _release(fig)


def _release(fig) -> None:
    """Close a figure pyplot knows (figures of :mod:`markovfork.reporting.figures` never touch pyplot)."""
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


# ----------------------------------------------------------------------------- reading
def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"cannot read {what} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def read_json(path: str | os.PathLike, what: str = "file"):
    """Parse a JSON file (any nesting depth); ``ValueError`` naming the file when it is missing or not JSON."""
    from markovfork.plumbing import deep_json

    path = Path(path)
    try:
        return deep_json.loads(_read_text(path, what))
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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty): the
    reason part of a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_table(path: str | os.PathLike, what: str = "results table", comment_prefix: str | None = None) -> "pl.DataFrame":
    """A table from a Parquet file (suffix ``.parquet``) or a CSV file (any other; every row read
    to infer the column types; lines starting with ``comment_prefix`` skipped); a one-line
    ``ValueError`` naming the file when it is missing, a directory, empty, or not a table of that
    format."""
    import polars as pl

    path = Path(path)
    kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV"
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise ValueError(f"{what} {path} not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{what} {path} is empty (0 bytes)")
    try:
        if kind == "Parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema_length=None, comment_prefix=comment_prefix)
    except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read {what} {path} as {kind}: {first_line(exc)}") from None
