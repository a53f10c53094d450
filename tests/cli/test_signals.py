"""Signals to a running ``markovfork`` (subprocesses, signalled by pid; issue 9 items 1, 4 and 9):

- a sweep interrupted (SIGINT or SIGTERM) at known points of its write phase leaves either the
  whole previous output set or the whole new one, and no temporary file;
- after SIGTERM (or SIGKILL) to a sweep's main process no child process of it is alive within 5 s;
- Ctrl-C or SIGTERM during start-up ends the command with 130 / 143 and no traceback.

The write phase is paused deterministically by replacing ``markovfork.plumbing.io._stage`` (called after
each temporary file is written and after each rename) in the child process.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from markovfork.cli import main

SWEEP = ["sweep", "--train-problems", "60", "--test-problems", "60", "--feature-dim", "50", "--epochs", "2",
         "--rho", "0.5,1", "--k", "1:64:1", "--workers", "1", "--no-progress"]
OUTPUTS = ["sw.csv", "sw.parquet", "sw_fork_confidence.png", "sw_pass_at_k.png", "sw_shrinkage_vs_epochs.png",
           "sw_shrinkage_vs_rho.png"]

# Runs the CLI with the write phase paused at the STOP_AT-th event ("written:N" or "renamed:N"):
# it creates MARKER, then waits until MARKER.sent exists (the test has sent its signal).
DRIVER = r"""
import os, sys, time
import markovfork.plumbing.io as io
stop_at, marker = sys.argv[1], sys.argv[2]
seen = {}
def pause(event, path):
    seen[event] = seen.get(event, 0) + 1
    if f"{event}:{seen[event]}" == stop_at:
        open(marker, "w").close()
        for _ in range(1200):
            if os.path.exists(marker + ".sent"):
                break
            time.sleep(0.05)
io._stage = pause
sys.argv = ["markovfork", *sys.argv[3:]]
from markovfork.cli import main
main()
"""


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def old_and_new(tmp_path_factory):
    """The output sets of the same sweep with seed 0 (the previous outputs) and seed 1 (the new)."""
    sets = []
    for seed in (0, 1):
        directory = tmp_path_factory.mktemp(f"seed{seed}")
        result = CliRunner().invoke(main, [*SWEEP, "--seed", str(seed), "--out", str(directory / "sw")])
        assert result.exit_code == 0, result.output
        sets.append(snapshot(directory))
        assert sorted(sets[-1]) == OUTPUTS
    assert all(sets[0][name] != sets[1][name] for name in OUTPUTS)
    return sets


@pytest.mark.parametrize(
    ("stop_at", "signum", "survivor"),
    [
        ("written:1", signal.SIGINT, "old"),  # the Parquet table written to its temporary file
        ("written:4", signal.SIGTERM, "old"),  # both tables and two figures written
        ("renamed:1", signal.SIGINT, "new"),  # the Parquet table renamed into place (the case)
        ("renamed:4", signal.SIGTERM, "new"),  # four of six files renamed
    ],
)
def test_interrupted_write_phase_leaves_one_whole_output_set(tmp_path, old_and_new, stop_at, signum, survivor):
    old, new = old_and_new
    for name, data in old.items():
        (tmp_path / name).write_bytes(data)
    marker = tmp_path.parent / f"{tmp_path.name}.marker"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, stop_at, str(marker), *SWEEP, "--seed", "1",
                             "--out", str(tmp_path / "sw")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: marker.exists() or proc.poll() is not None, 120, f"the write phase to reach {stop_at}")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        Path(f"{marker}.sent").touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err.decode()
    assert b"Traceback" not in err, err.decode()
    after = snapshot(tmp_path)
    assert sorted(after) == OUTPUTS  # no temporary file left
    assert after == (old if survivor == "old" else new)


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_signal_to_sweep_leaves_no_child_process(tmp_path, signum):
    """SIGTERM: the sweep kills its workers and exits 143. SIGKILL (no clean-up possible): the
    workers notice their parent is gone and exit, and the resource tracker follows."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "markovfork.cli", "sweep", "--rho", "0:1:0.05", "--epochs", "300", "--train-problems",
         "1000", "--workers", "2", "--no-progress", "--out", str(tmp_path / "sw")],  # a minute of work
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        # two workers and the multiprocessing resource tracker
        wait_for(lambda: len(_children(proc.pid)) >= 3 or proc.poll() is not None, 120, "the sweep's workers")
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)  # the workers are running tasks
        family = _children(proc.pid)
        family += [grandchild for child in family for grandchild in _children(child)]
        proc.send_signal(signum)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in family if _alive(pid)]
        for pid in left:  # do not leave them behind (they hold the pipes open)
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert left == [], f"still alive 5 s after {signal.Signals(signum).name}: {left}"
    if signum == signal.SIGTERM:
        assert proc.returncode == 143 and b"Traceback" not in err and b"Warning" not in err, err.decode()
    assert list(tmp_path.iterdir()) == []  # nothing written


def _loaded(pid: int, library: str) -> bool:
    try:
        return library in (Path("/proc") / str(pid) / "maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_start_up_is_quiet(signum):
    """Signalled while the command's modules are being imported (NumPy's extension is mapped)."""
    exe = shutil.which("markovfork", path=os.path.dirname(sys.executable))
    command = [exe] if exe else [sys.executable, "-m", "markovfork.cli"]
    proc = subprocess.Popen([*command, "simulate", "--epochs", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _loaded(proc.pid, "_multiarray_umath") or proc.poll() is not None, 60, "NumPy to load")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum and b"Traceback" not in err, (proc.returncode, err.decode())
