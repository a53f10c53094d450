"""A bridge sweep: one bridge run per (rho, seed), each in its own folder, gathered into one table.

Layout of ``out``::

    base-seed<s>/                  the base of seed s, trained once and shared by that seed's runs
                                   (a ``run_bridge(base_only=True)`` folder; only when there are
                                   several rhos; its config.json is the sweep's at seed s, [sft]
                                   rhos [0], unused)
    rho<r>-seed<s>/                one ``bridge run`` folder (config.json with ``rhos = [r]``,
                                   ``seed = s``); ``base`` links to ``../base-seed<s>/base`` and
                                   ``eval/base.json`` is a copy of the shared base's evaluation
    bridge_results.{parquet,csv}   the runs' tables concatenated in (seed, rho) order

Every random stream of a bridge run derives from its seed and the SFT run's name (diversity and
rho), never from the list of rhos, so a sweep's rows for (rho, seed) are the rows that
``bridge run --seed s`` with that rho among its rhos writes, whichever executor ran them. The base
depends on the seed, the task, the model, ``[base]`` and the test set, none of which a sweep
varies per rho: training it once per seed saves (rhos - 1) base trainings per seed, at the price
of one barrier (all bases before any SFT).

Tasks go through :func:`markovfork.plumbing.executors.run_tasks`: the local process pool (the device is
the configuration's, CUDA when present under ``auto``; one worker by default on CUDA) or Dask,
where each run asks for ``{"GPU": gpus_per_task}`` worker resources when the scheduler's workers
advertise ``GPU`` (:func:`gpu_request`), and runs on any worker otherwise.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from markovfork.plumbing import checks
from markovfork.plumbing.executors import available_cores, parse_scheduler, run_tasks
from markovfork.plumbing.io import check_outputs, read_json, read_table, table_paths, table_writers, write_outputs
from markovfork.llm_bridge.config import RunConfig, config_from_dict
from markovfork.llm_bridge.run_files import eval_file, rho_label

MAX_RUNS = 1000  # bridge runs in one sweep (rhos x seeds) at most: a larger grid is split by hand

__all__ = ["MAX_RUNS", "SweepTask", "task_name", "sweep_tasks", "run_task", "gpu_request",
           "run_sweep"]

TABLE = "bridge_results"


@dataclass(frozen=True)
class SweepTask:
    """One task: a bridge run (or a shared base) in folder ``out``."""

    cfg: RunConfig
    out: Path
    base: Path | None = None  # folder of the shared base (None: the run trains its own)
    threads: int | None = None  # torch threads when the config sets none
    base_only: bool = False


def task_name(rho: float, seed: int) -> str:
    """Folder of the (rho, seed) run: ``rho0.5-seed1``."""
    return f"rho{rho_label(rho)}-seed{seed}"


def sweep_tasks(cfg: RunConfig, rhos: list[float], seeds: list[int], out: str | Path,
                threads: int | None = None) -> tuple[list[SweepTask], list[SweepTask]]:
    """(shared bases, runs): one run per (seed, rho), seed-major; a shared base per seed when
    there are several rhos. Building the configurations checks them all."""
    out = Path(out)
    bases, runs = [], []
    for s in seeds:
        seeded = dataclasses.replace(cfg, seed=s)
        base = None
        if len(rhos) > 1:
            base = out / f"base-seed{s}"
            bases.append(SweepTask(dataclasses.replace(seeded, sft=dataclasses.replace(cfg.sft, rhos=[0.0])), base,
                                   threads=threads, base_only=True))
        for r in rhos:
            runs.append(SweepTask(dataclasses.replace(seeded, sft=dataclasses.replace(cfg.sft, rhos=[float(r)])),
                                  out / task_name(r, s), base=base, threads=threads))
    return bases, runs


def _saved_config(task: SweepTask) -> RunConfig | None:
    saved = task.out / "config.json"
    return config_from_dict(read_json(saved, "saved config")) if saved.is_file() else None


def _finished(task: SweepTask) -> bool:
    """A run whose table exists was finished with its config.json (the table is written last)."""
    return (task.out / f"{TABLE}.parquet").is_file() and _saved_config(task) == task.cfg


def _base_ready(task: SweepTask) -> bool:
    """A shared base whose evaluation exists is trained (the evaluation is written after it)."""
    return eval_file(task.out).is_file() and _saved_config(task) == task.cfg


def run_task(task: SweepTask) -> pl.DataFrame:
    """Run one task (resuming whatever its folder holds) and return its table; a finished run's
    table is read back without loading any model."""
    if not task.base_only and _finished(task):
        return read_table(task.out / f"{TABLE}.parquet")
    import torch

    from markovfork.llm_bridge.run import run_bridge

    if task.cfg.threads is None and task.threads is not None:
        torch.set_num_threads(task.threads)
    if task.base is not None:
        task.out.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(task.out / "base"):
            os.symlink(os.path.relpath(task.base / "base", task.out), task.out / "base")
        shared, own = eval_file(task.base), eval_file(task.out)
        if not own.is_file():
            own.parent.mkdir(exist_ok=True)
            shutil.copyfile(shared, own)
    name = task.out.name

    def log(msg: str) -> None:
        print(f"[{name}] {msg}", file=sys.stderr, flush=True)

    return run_bridge(task.cfg, task.out, resume=True, progress=False, log=log, base_only=task.base_only).table


def gpu_request(scheduler: str | None, gpus_per_task: int | None = None) -> dict | None:
    """The Dask worker resources each run asks for: ``{"GPU": gpus_per_task}`` (default 1) on a
    Dask scheduler, None on the local pool (its device is the configuration's) or with 0.
    :func:`markovfork.plumbing.dask_executor.run_on_dask` asks for it only when some worker advertises
    it (``dask worker --resources GPU=1``), and then sends one run per GPU; otherwise the runs
    go to any worker (CPU)."""
    kind, _ = parse_scheduler(scheduler)
    n = 1 if gpus_per_task is None else checks.integer("--gpus-per-task", gpus_per_task, 0)
    return None if kind == "pool" or n == 0 else {"GPU": n}


def run_sweep(cfg: RunConfig, rhos: list[float], seeds: list[int], out: str | Path, *, resume: bool = False,
              scheduler: str | None = None, workers: int | None = None, gpus_per_task: int | None = None,
              log=None) -> pl.DataFrame:
    """One bridge run per (rho, seed) under ``out`` (module docstring), then the gathered table
    ``out/bridge_results.{parquet,csv}``, written at the end as one output set."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(out)
    kind, n_dask = parse_scheduler(scheduler)
    if workers is not None:
        workers = checks.integer("--workers", workers, 1)
    if not rhos or not seeds:
        raise ValueError(f"a sweep needs at least one rho and one seed, got rhos {rhos} and seeds {seeds}")
    for name, values in (("rhos", rhos), ("seeds", seeds)):
        if checks.first_repeat(values) is not None:
            raise ValueError(f"the sweep's {name} must not repeat a value, got {list(values)}")
    if len(rhos) * len(seeds) > MAX_RUNS:
        raise ValueError(f"the sweep grid has {len(rhos) * len(seeds)} runs ({len(rhos)} rhos x {len(seeds)} seeds), "
                         f"more than the maximum {MAX_RUNS}: split it into several sweeps")
    # everything that can reject the sweep runs before the first file is written
    if out.exists() and any(out.iterdir()) and not resume:
        raise ValueError(f"output directory {out} is not empty; pass --resume to continue it or choose another")
    check_outputs(table_paths(out / TABLE))
    if kind == "pool":
        from markovfork.llm_bridge.model import resolve_device

        device = resolve_device(cfg.device)  # the local machine runs the tasks: refuse a missing device now
        cores = available_cores()
        if workers is None:
            workers = 1 if device.type == "cuda" else cores
        threads = max(1, cores // workers) if device.type == "cpu" else None
    else:
        threads = max(1, available_cores() // n_dask) if kind == "local" else None
    resources = gpu_request(scheduler, gpus_per_task)
    bases, runs = sweep_tasks(cfg, rhos, seeds, out, threads)
    for t in bases + runs:
        if _saved_config(t) not in (None, t.cfg):
            raise ValueError(f"{t.out / 'config.json'} differs from this sweep's configuration; cannot resume {out}")
    where = "local pool" if kind == "pool" else scheduler
    ask = f"each run asks for {resources} where workers advertise it" if resources else "the config's device"
    log(f"bridge sweep: {len(runs)} runs ({len(rhos)} rhos x {len(seeds)} seeds), {len(bases)} shared bases, "
        f"{where}; {ask}")

    def progress(what: str):
        return lambda done, total: log(f"bridge sweep: {what} {done}/{total} done")

    finished = [_finished(t) for t in runs]  # read back here, not sent to a worker
    todo = [t for t, f in zip(runs, finished) if not f]
    shared = {t.base for t in todo}
    # one training per Dask task: never batched with another, never probed twice
    each = dict(scheduler=scheduler, workers=workers, resources=resources, batch_size=1 if kind != "pool" else None)
    run_tasks(run_task, [b for b in bases if b.out in shared and not _base_ready(b)], progress=progress("bases"),
              **each)
    fresh = iter(run_tasks(run_task, todo, progress=progress("runs"), **each))
    table = pl.concat([run_task(t) if f else next(fresh) for t, f in zip(runs, finished)])
    out.mkdir(parents=True, exist_ok=True)  # the runs made it unless every one was read back
    written = write_outputs(table_writers(table, out / TABLE))
    log(f"bridge sweep: wrote {', '.join(map(str, written))} ({table.height} rows)")
    return table
