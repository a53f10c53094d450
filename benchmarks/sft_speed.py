"""Wall time and peak memory of the SFT simulation command line, against the targets in TARGETS
and MEMORY_TARGET_MIB.

    python benchmarks/sft_speed.py [--repeats 5] [--cold-repeats 3] [--sweep-repeats 3]

Rows (each a fresh ``python -m markovfork.cli ...`` subprocess, so interpreter start-up and imports count):
  simulate warm   ``markovfork simulate --forks 200 --epochs 50`` (analytic), Numba cache populated
  simulate cold   the same with NUMBA_CACHE_DIR set to a new empty directory (every kernel compiles)
  sweep warm      ``markovfork sweep --rho 0:1:0.1 --epochs 50`` (11 analytic runs, all cores)
Times: medians over the repeats (best beside them), after one untimed warm-up run that fills the
cache. CPU s: median user + system
time of the process and its workers (less sensitive than wall time to other jobs on the machine;
a sweep's CPU time is spread over its workers). Peak memory: ru_maxrss from ``os.wait4`` on the command's process, which on Linux is the
largest resident set of that process and of every descendant it waited for (a sweep's workers
included); it is a per-process peak, not the sum of concurrently running workers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIMULATE = ["simulate", "--forks", "200", "--epochs", "50", "--no-progress"]
SWEEP = ["sweep", "--rho", "0:1:0.1", "--epochs", "50", "--no-progress"]
TARGETS = {"simulate warm": 2.0, "simulate cold": 30.0, "sweep warm": 10.0}  # seconds
MEMORY_TARGET_MIB = 1024.0


def run_cli(args: list[str], env_extra: dict | None = None) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MiB, stdout) of ``python -m markovfork.cli ARGS`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.update(env_extra or {})
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "markovfork.cli", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        out.seek(0)
        stdout = out.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"markovfork {' '.join(args)} failed ({proc.returncode}): {stderr}")
    cpu = usage.ru_utime + usage.ru_stime  # the process and its waited-for workers
    return wall, cpu, usage.ru_maxrss / 1024.0, stdout  # ru_maxrss is in KiB on Linux


def measure(name: str, args: list[str], repeats: int, cold: bool = False) -> dict:
    walls, cpus, peaks = [], [], []
    for _ in range(repeats):
        if cold:
            with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache:
                wall, cpu, peak, stdout = run_cli(args, {"NUMBA_CACHE_DIR": cache})
        else:
            wall, cpu, peak, stdout = run_cli(args)
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
    return dict(name=name, median=statistics.median(walls), best=min(walls), walls=walls, cpu=statistics.median(cpus), peak=max(peaks), stdout=stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed warm simulate runs")
    parser.add_argument("--cold-repeats", type=int, default=3, help="timed cold-cache simulate runs")
    parser.add_argument("--sweep-repeats", type=int, default=3, help="timed sweep runs")
    opts = parser.parse_args()

    import numba
    import numpy

    print(f"machine: {platform.machine()}  {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {numpy.__version__}, numba {numba.__version__}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset: the CLI sets 1)')}")
    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    run_cli(SIMULATE)  # warm-up: fills the Numba cache (the command's own default cache directory)
    rows = [
        measure("simulate warm", SIMULATE, opts.repeats),
        measure("simulate cold", SIMULATE, opts.cold_repeats, cold=True),
        measure("sweep warm", SWEEP, opts.sweep_repeats),
    ]
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print()
    print(f"| {'run':<14} | {'runs':>4} | {'median s':>8} | {'best s':>6} | {'target s':>8} | {'median/target':>13} | {'CPU s':>5} | {'peak MiB':>8} |")
    print(f"|{'-' * 16}|{'-' * 5}:|{'-' * 9}:|{'-' * 7}:|{'-' * 9}:|{'-' * 14}:|{'-' * 6}:|{'-' * 9}:|")
    for r in rows:
        target = TARGETS[r["name"]]
        print(f"| {r['name']:<14} | {len(r['walls']):>4} | {r['median']:>8.2f} | {r['best']:>6.2f} | {target:>8.0f} | "
              f"{r['median'] / target:>13.2f} | {r['cpu']:>5.2f} | {r['peak']:>8.0f} |")
    peak = max(r["peak"] for r in rows)
    print()
    print(f"peak memory (largest process): {peak:.0f} MiB, target {MEMORY_TARGET_MIB:.0f} MiB, ratio {peak / MEMORY_TARGET_MIB:.2f}")
    for r in rows:
        print(f"{r['name']} walls: " + ", ".join(f"{w:.2f}" for w in r["walls"]))
    print()
    print("simulate summary:")
    print(rows[0]["stdout"].rstrip())


if __name__ == "__main__":
    main()
