"""One seam for running many independent tasks: the local process pool (the default) or a Dask
cluster (``--scheduler``).

``run_tasks(fn, items, scheduler=None, workers=None, progress=None)`` calls ``fn(item)`` for every
item and returns the results in the order of ``items``, whatever executor ran them and in
whatever order they finished. ``fn`` must be a module-level function (it is pickled) and must
take everything that decides its result from its item (seeds come from the configuration, never
from the worker). ``progress(done, total)`` is called in the caller's process as results arrive.

``scheduler``: ``None`` (local spawn-context process pool of ``workers`` processes, see
:mod:`markovfork.plumbing.process_pool`), ``"local:N"`` (start a Dask ``LocalCluster`` of N single-threaded
worker processes on the loopback address) or ``"tcp://HOST:PORT"`` (connect to a running Dask
scheduler). The Dask path is implemented in :mod:`markovfork.plumbing.dask_executor` (needs the optional
extra ``markovfork[dask]``).
"""

from __future__ import annotations

import os
from concurrent.futures import as_completed
from typing import Callable, Sequence

from markovfork.plumbing import checks

__all__ = ["parse_scheduler", "run_tasks", "available_cores"]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity; the machine's count where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def parse_scheduler(text: str | None) -> tuple[str, object]:
    """``("pool", None)``, ``("local", N)`` or ``("address", "tcp://host:port")``; a bad value is a
    one-line ValueError naming it."""
    if text is None:
        return "pool", None
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"scheduler must be local:N or tcp://HOST:PORT, got {text!r}")
    text = text.strip()
    if text.startswith("local:"):
        n = text.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"scheduler local:N needs N >= 1 workers, got {text!r}")
        return "local", int(n)
    if text.startswith(("tcp://", "tls://")):
        host, _, port = text.split("://", 1)[1].rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"scheduler address must be tcp://HOST:PORT, got {text!r}")
        return "address", text
    raise ValueError(f"scheduler must be local:N or tcp://HOST:PORT, got {text!r}")


def run_tasks(fn: Callable, items: Sequence, scheduler: str | None = None, workers: int | None = None,
              progress: Callable[[int, int], None] | None = None, resources: dict | None = None,
              batch_size: int | None = None) -> list:
    """``[fn(item) for item in items]``, computed in parallel (module docstring). ``resources``:
    Dask worker resources each task asks for (e.g. ``{"GPU": 1}``; ignored by the local pool and
    by a cluster where no worker has them). ``batch_size``: items per Dask task (default: sized
    so a task runs about a second, see :mod:`markovfork.plumbing.dask_executor`; the local pool sends one
    item per task)."""
    items = list(items)
    kind, value = parse_scheduler(scheduler)
    if not items:
        return []
    if kind != "pool":
        from markovfork.plumbing.dask_executor import run_on_dask

        if batch_size is not None:
            batch_size = checks.integer("batch_size", batch_size, 1)
        return run_on_dask(fn, items, kind, value, progress, batch_size=batch_size, resources=resources)
    workers = available_cores() if workers is None else checks.integer("workers", workers, 1)
    from markovfork.plumbing.process_pool import process_pool

    results: list = [None] * len(items)
    with process_pool(min(workers, len(items))) as (pool, spawning):
        with spawning:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for done, fut in enumerate(as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if progress is not None:
                progress(done, len(items))
    return results
