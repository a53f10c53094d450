"""Ctrl-C and SIGTERM while a compiled kernel runs (issue 19.2): the long compiled work of
``posttrain`` (RL iterations), ``coverage`` (rollouts) and ``tmc --engine sampled`` runs in
spans with the interpreter reached in between, so the command exits within 2 s with 130 / 143,
its earlier output at ``--out`` untouched, no process of its group left.

The command is signalled once it has used 3 s of CPU time (well past start-up: the first, small
run of the same command fills Numba's cache and writes the older output)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")]

# (the small run that writes the older output, the long run's extra arguments: minutes of work)
COMMANDS = {
    "posttrain": (["posttrain", "--iterations", "5"], ["--iterations", "10000000"]),
    "coverage": (["coverage", "--samples", "1000"], ["--samples", "50000000"]),  # 1e10 rollouts: the most allowed
    "tmc": (["tmc", "--engine", "sampled", "--iterations", "5", "--no-progress"], ["--iterations", "10000000"]),
}


def _cpu_seconds(pid: int) -> float:
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _restore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a suite run as a background job ignores SIGINT


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_signal_mid_kernel_stops_the_command(tmp_path, name, signum):
    first, longer = COMMANDS[name]
    cli = [sys.executable, "-m", "markovfork.cli"]
    prefix = str(tmp_path / "out")
    done = subprocess.run([*cli, *first, "--out", prefix], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    older = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert older
    with subprocess.Popen([*cli, *first, *longer, "--out", prefix], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_restore_sigint) as proc:
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and _cpu_seconds(proc.pid) < 3.0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, proc.stderr.read().decode()
            sent = time.monotonic()
            proc.send_signal(signum)
            rc = proc.wait(timeout=30)
            took = time.monotonic() - sent
            stopped = time.monotonic() + 2
            while _group_alive(proc.pid) and time.monotonic() < stopped:
                time.sleep(0.05)
            left = _group_alive(proc.pid)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        err = proc.stderr.read().decode()
    assert rc == 128 + signum and "Traceback" not in err, (rc, err)
    assert took < 2.0, f"{name} took {took:.2f} s to stop after {signal.Signals(signum).name}"
    assert not left, "a process of the command's group is still alive"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == older  # the older output, whole
