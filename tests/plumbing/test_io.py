"""Atomic writes: results appear whole or not at all, with the usual file mode."""

import os
import stat

import polars as pl
import pytest

from markovfork.plumbing.io import atomic_path, write_json, write_table


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


# ----------------------------------------------------------------------------- the output contract
import errno  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402

import markovfork.plumbing.io as mio  # noqa: E402
from markovfork.plumbing.io import check_outputs, json_writer, output_prefix, read_json, read_toml, write_outputs  # noqa: E402


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _old_set(tmp_path):
    write_outputs({tmp_path / "a.json": json_writer({"v": "old"}), tmp_path / "b.json": json_writer([1, 2])})
    return _snapshot(tmp_path)


def test_disk_full_on_the_second_file_changes_nothing(tmp_path):
    old = _old_set(tmp_path)

    def full(tmp):
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_outputs({tmp_path / "a.json": json_writer({"v": "new"}), tmp_path / "b.json": full,
                       tmp_path / "new" / "deep" / "c.json": json_writer(3)})
    assert _snapshot(tmp_path) == old  # no temporary file, a.json not replaced
    assert not (tmp_path / "new").exists()  # directories made for the set are removed again


def test_failed_rename_restores_the_files_already_replaced(tmp_path, monkeypatch):
    old = _old_set(tmp_path)
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(mio.os, "replace", replace)
    with pytest.raises(OSError, match="Input/output"):
        write_outputs({tmp_path / "a.json": json_writer({"v": "new"}), tmp_path / "b.json": json_writer([3])})
    monkeypatch.undo()
    assert _snapshot(tmp_path) == old


def test_signal_during_renames_is_delivered_after_the_whole_set(tmp_path, monkeypatch):
    old = _old_set(tmp_path)

    def interrupt_after_first_rename(event, path):
        if event == "renamed" and path.name == "a.json":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(mio, "_stage", interrupt_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        write_outputs({tmp_path / "a.json": json_writer({"v": "new"}), tmp_path / "b.json": json_writer([3])})
    new = _snapshot(tmp_path)
    assert new != old and set(new) == {"a.json", "b.json"} and b"new" in new["a.json"] and new["b.json"] == b"[\n  3\n]\n"


def test_sigterm_while_writing_removes_the_temporaries(tmp_path, monkeypatch):
    """With SIGTERM's default action (the process dies), writing installs a handler that ends
    the process through SystemExit(143) instead, after removing the temporary files."""
    old = _old_set(tmp_path)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def terminate_after_first_file(event, path):
        if event == "written":
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(mio, "_stage", terminate_after_first_file)
    with pytest.raises(SystemExit) as exc:
        write_outputs({tmp_path / "a.json": json_writer({"v": "new"}), tmp_path / "b.json": json_writer([3])})
    assert exc.value.code == 143 and _snapshot(tmp_path) == old
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize(
    ("make", "target", "reason"),
    [
        (lambda d: (d / "afile").write_text("x"), "afile/sim.csv", "afile is not a directory"),
        (lambda d: (d / "afile").write_text("x"), "afile/deeper/sim.csv", "afile is not a directory"),
        (lambda d: (d / "t.parquet").mkdir(), "t.parquet", "it is a directory"),
    ],
)
def test_locations_checked_before_writing(tmp_path, make, target, reason):
    make(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match=re.escape(f"cannot write {tmp_path / target}: ") + ".*" + re.escape(reason)):
        check_outputs([tmp_path / "fine.csv", tmp_path / target])
    with pytest.raises(ValueError, match=reason):
        write_outputs({tmp_path / "fine.csv": json_writer(1), tmp_path / target: json_writer(2)})
    assert _snapshot(tmp_path) == before


def test_read_only_directory_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who may write anywhere (root)")
        with pytest.raises(ValueError, match="is not writable"):
            check_outputs([ro / "sub" / "x.csv"])
    finally:
        ro.chmod(0o755)


def test_same_file_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="named twice"):
        check_outputs([tmp_path / "x.csv", tmp_path / "." / "x.csv"])


@pytest.mark.parametrize("bad", ["", "  ", "newdir/", "runs/..", "."])
def test_output_prefix_must_name_a_file(bad):
    with pytest.raises(ValueError, match="--out must name a file prefix"):
        output_prefix(bad)


def test_readers_name_the_file_for_every_os_error(tmp_path):
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(ValueError, match="cannot read config file .*d.toml"):
        read_toml(tmp_path / "d.toml")
    (tmp_path / "latin.json").write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(ValueError, match="latin.json: not UTF-8"):
        read_json(tmp_path / "latin.json", "tree file")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="cannot read tree file .*f/t.json"):
        read_json(tmp_path / "f" / "t.json", "tree file")
