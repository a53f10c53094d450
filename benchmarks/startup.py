"""Whole-process start-up time of short commands: ``markovfork --help``, ``tmc --json``,
``tmc --out`` and ``simulate --forks 200 --epochs 50``.

Runs each command as a fresh process (``python -m markovfork.cli ...``), alternating between
the checkouts given (e.g. the current tree and older commits'), and prints the median and
the spread of the wall times and the median CPU time (user + system) per checkout and command,
with the load average. Alternating runs share the machine's load, so their ratio is fair even on
a busy machine.

    python benchmarks/startup.py --runs 15                      # this checkout only
    python benchmarks/startup.py --runs 15 --before /tmp/be858aa  # and an older checkout
    python benchmarks/startup.py --checkout be858aa=/tmp/be858aa --checkout start=/tmp/start-base

Every checkout runs with this interpreter, its own source first on ``PYTHONPATH`` (it must be a
full source tree: ``markovfork/``, ``cli/``, ``llm_bridge/`` side by side, as in the
repository; the ``markovfork.cli`` package is mapped onto ``cli/`` by a small shim).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "--help": ["--help"],
    "tmc --json": ["tmc", "--json"],
    "tmc --out": ["tmc", "--out", "{tmp}/out/tmc"],
    "simulate": ["simulate", "--forks", "200", "--epochs", "50", "--json"],
}

# Runs ``markovfork.cli`` from a source tree whose ``cli/`` and ``llm_bridge/`` sit beside
# ``markovfork/`` (the editable install maps them; a bare checkout needs the same mapping).
SHIM = """
import importlib.util, sys
root = sys.argv.pop(1)
sys.argv[0] = "markovfork"  # as the installed script: cli/__init__.py then sets up as a command
import markovfork
for name in ("cli", "llm_bridge"):
    spec = importlib.util.spec_from_file_location(
        f"markovfork.{name}", f"{root}/{name}/__init__.py", submodule_search_locations=[f"{root}/{name}"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"markovfork.{name}"] = module
    spec.loader.exec_module(module)
sys.modules["markovfork.cli"].main()
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(root: Path, args: list[str], tmp: str) -> tuple[float, float]:
    """(wall s, CPU s: user + system) of one whole process."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    argv = [sys.executable, "-c", SHIM, str(root), *(a.format(tmp=tmp) for a in args)]
    cpu, start = _cpu(), time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{root}: {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return elapsed, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per checkout and command (default 11)")
    parser.add_argument("--before", type=Path, default=None, help="an older source checkout to compare with")
    parser.add_argument("--checkout", action="append", default=[], metavar="LABEL=PATH",
                        help="another source checkout to compare with (repeatable)")
    parser.add_argument("--commands", default=",".join(COMMANDS), help=f"any of {', '.join(COMMANDS)}")
    args = parser.parse_args()
    roots = {}
    if args.before is not None:
        roots["before"] = args.before.resolve()
    for item in args.checkout:
        label, _, path = item.partition("=")
        roots[label] = Path(path).resolve()
    roots["after"] = Path(__file__).resolve().parents[1]
    names = [c.strip() for c in args.commands.split(",")]
    times = {(label, c): [] for label in roots for c in names}
    tmp = tempfile.mkdtemp(prefix="startup-")
    try:
        for label, root in roots.items():  # warm-up: Numba's cache, the OS's file cache
            for c in names:
                one_run(root, COMMANDS[c], tmp)
        load_before = os.getloadavg()
        for _ in range(args.runs):
            for c in names:
                for label, root in roots.items():
                    shutil.rmtree(Path(tmp, "out"), ignore_errors=True)
                    Path(tmp, "out").mkdir()
                    times[(label, c)].append(one_run(root, COMMANDS[c], tmp))
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.runs} alternated runs per checkout and command; load average (1, 5, 15 min) "
          f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after; "
          f"{os.cpu_count()} cores")
    print(f"{'command':<12} {'checkout':<8} {'wall median s':>13} {'min s':>7} {'max s':>7} {'CPU median s':>12} "
          f"{'min s':>7}")
    for c in names:
        for label in roots:
            wall = [w for w, _ in times[(label, c)]]
            cpu = [u for _, u in times[(label, c)]]
            print(f"{c:<12} {label:<8} {statistics.median(wall):>13.3f} {min(wall):>7.3f} {max(wall):>7.3f} "
                  f"{statistics.median(cpu):>12.3f} {min(cpu):>7.3f}")
        for label in roots:
            if label != "after":
                ratios = [statistics.median([x[i] for x in times[("after", c)]]) /
                          statistics.median([x[i] for x in times[(label, c)]]) for i in (0, 1)]
                print(f"{c:<12} after / {label} median: wall {ratios[0]:.2f}, CPU {ratios[1]:.2f}")


if __name__ == "__main__":
    main()
