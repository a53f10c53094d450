"""The Dask half of :func:`markovfork.plumbing.executors.run_tasks` (needs the extra ``markovfork[dask]``).

``run_on_dask(fn, items, kind, value, progress, batch_size=None, resources=None)`` computes
``[fn(x) for x in items]`` on a Dask cluster and returns the results in item order:

- ``kind="local"``: a ``LocalCluster`` of ``value`` single-threaded worker processes on the
  loopback address, no dashboard, closed when the call ends however it ends;
  ``kind="address"``: the running scheduler at ``value`` (``tcp://HOST:PORT``); one that does not
  answer within :data:`CONNECT_TIMEOUT` seconds is a one-line ``OSError`` naming it.
- Tasks are submitted with ``pure=False`` (identical items are never merged into one call) and
  ``retries=RETRIES``; tasks of a worker that dies are rerun elsewhere by the scheduler.
- Batching: the first ``min(workers, len(items))`` items go out one per task (probes). The first
  probe back gives the warm time ``t`` of one item (a probe faster than ``TARGET_SECONDS / 4``
  runs its item a second time and reports that warm call, so Numba's one-off cache load is not
  counted); the remaining items go out in contiguous batches of :func:`batch_items` items: a task
  runs for about a second (Dask's cost per task is milliseconds), unless the sweep is too small to
  give every worker ``TASKS_PER_WORKER`` such tasks, when the batches shrink so it does (load
  balance beats amortisation there). ``batch_size`` given: every task holds that many items and
  nothing is probed; with ``resources`` (one run per GPU, say) the default is 1.
- Warm-up: every worker imports ``fn``'s module once (``client.run``) before any task; the
  package's Numba kernels are ``cache=True``, so a worker loads the compiled kernels from the
  on-disk cache (shared by the workers of one machine; on a cluster point ``NUMBA_CACHE_DIR`` at a
  shared directory) instead of compiling them (docs/scaling.md has the timings).
- ``resources`` (e.g. ``{"GPU": 1}``): every task asks for them, so a worker runs as many at once
  as it holds (``dask worker --resources GPU=1``); on a cluster where no worker holds them the
  tasks run on any worker (CPU).
- One BLAS thread per worker: Dask's nanny sets ``OMP/MKL/OPENBLAS_NUM_THREADS=1`` in every worker
  it starts (``distributed.nanny.pre-spawn-environ``).
- ``progress(done, total)`` counts items, called in the caller's process as batches finish
  (``distributed.as_completed``). Dask's own log lines are quieted to warnings meanwhile.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import threading
import time
from typing import Callable, Iterator, Sequence

__all__ = ["run_on_dask", "batch_items", "TARGET_SECONDS", "TASKS_PER_WORKER", "CONNECT_TIMEOUT", "RETRIES"]

TARGET_SECONDS = 1.0  # the least run time of one task (batch), when items are short
TASKS_PER_WORKER = 4  # ... and the fewest tasks per worker slot, for load balance
CONNECT_TIMEOUT = 3  # seconds to reach a scheduler given by address
RETRIES = 2  # reruns of a task that raised (a lost worker's tasks are rescheduled regardless)
_LOGGERS = ("distributed", "tornado", "bokeh")


def _import(module: str | None) -> None:
    """Warm-up, run once on every worker: import the task's module (and with it the package)."""
    _worker_setup()
    if module and module != "__main__":
        importlib.import_module(module)


def _worker_setup() -> None:
    """Once per worker process (also one the nanny restarted): tqdm's default lock is a
    multiprocessing semaphore that a killed worker leaves behind ("leaked semaphore" warnings);
    a worker draws no bars, a thread lock does."""
    global _SET_UP
    if not _SET_UP:
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
        _SET_UP = True


_SET_UP = False


def _run_batch(fn: Callable, batch: Sequence) -> list:
    _worker_setup()
    return [fn(item) for item in batch]


def _probe(fn: Callable, item, repeat_below: float) -> tuple:
    """``(fn(item), seconds)``: the time of a warm call (a fast first call is repeated)."""
    _worker_setup()
    start = time.perf_counter()
    result = fn(item)
    seconds = time.perf_counter() - start
    if seconds < repeat_below:
        start = time.perf_counter()
        fn(item)
        seconds = time.perf_counter() - start
    return result, seconds


def batch_items(seconds: float, remaining: int, workers: int) -> int:
    """Items per task, ``clip(ceil(TARGET_SECONDS / seconds), 1, ceil(remaining / (TASKS_PER_WORKER *
    workers)))``: a task runs about ``TARGET_SECONDS``, unless that would leave a worker fewer than
    ``TASKS_PER_WORKER`` tasks (a slow or lost worker's share is then small enough to rebalance)."""
    per_task = math.ceil(TARGET_SECONDS / max(seconds, 1e-6))
    return max(1, min(per_task, math.ceil(remaining / (TASKS_PER_WORKER * workers))))


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in _LOGGERS}
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def dask_client(kind: str, value) -> Iterator["distributed.Client"]:
    """A connected ``Client`` (and for ``"local"`` its ``LocalCluster``), closed on exit."""
    try:
        import distributed
    except ImportError:
        raise ValueError("the Dask scheduler needs the optional extra: pip install 'markovfork[dask]'") from None
    with contextlib.ExitStack() as stack:
        if kind == "local":
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=value, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, silence_logs=logging.WARNING,
                # no dashboard; the scheduler's small HTTP server (health checks) on a free loopback port
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}))
            client = stack.enter_context(distributed.Client(cluster, set_as_default=False))
        elif kind == "address":
            try:
                client = distributed.Client(value, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError):
                raise OSError(f"cannot reach the Dask scheduler at {value} (no answer within {CONNECT_TIMEOUT} s)") from None
            stack.enter_context(client)
        else:
            raise ValueError(f"unknown Dask scheduler kind {kind!r}")
        yield client


def run_on_dask(fn: Callable, items: Sequence, kind: str, value, progress: Callable[[int, int], None] | None = None,
                batch_size: int | None = None, resources: dict | None = None) -> list:
    """``[fn(item) for item in items]`` on a Dask cluster, in item order (module docstring)."""
    items = list(items)
    if not items:
        return []
    with _quiet_logs(), dask_client(kind, value) as client:
        return _run(client, fn, items, progress, batch_size, resources, local=kind == "local")


def _workers(client, resources: dict | None) -> tuple[int, dict | None]:
    """Task slots (threads of the workers that hold ``resources``) and the resources to ask for:
    none when no worker holds them (the tasks then run on any worker)."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    if resources:
        holders = [w for w in workers if all(w.get("resources", {}).get(r, 0) >= n for r, n in resources.items())]
        if holders:
            return int(sum(min(w["resources"][r] // n for r, n in resources.items()) for w in holders)), resources
        resources = None
    return max(1, sum(w.get("nthreads", 1) for w in workers)), resources


def _run(client, fn, items: list, progress, batch_size: int | None, resources: dict | None, local: bool) -> list:
    from distributed import as_completed

    total = len(items)
    client.run(_import, getattr(fn, "__module__", None))
    workers, resources = _workers(client, resources)
    if resources and batch_size is None:
        batch_size = 1  # one run per resource slot (e.g. one training per GPU)
    results: list = [None] * total
    spans, submitted = {}, []  # future key -> (start, stop, probe?); every future sent

    def submit(start: int, stop: int, probe: bool):
        if probe:
            fut = client.submit(_probe, fn, items[start], TARGET_SECONDS / 4, pure=False, retries=RETRIES, resources=resources)
        else:
            fut = client.submit(_run_batch, fn, items[start:stop], pure=False, retries=RETRIES, resources=resources)
        spans[fut.key] = (start, stop, probe)
        submitted.append(fut)
        return fut

    def batches(start: int, size: int) -> list:
        return [submit(i, min(i + size, total), False) for i in range(start, total, size)]

    if batch_size is not None:
        queue, unsent = as_completed(batches(0, batch_size), loop=client.loop), total
    else:
        unsent = min(workers, total)
        queue = as_completed([submit(i, i + 1, True) for i in range(unsent)], loop=client.loop)
    done = 0
    try:
        for fut in queue:
            start, stop, probe = spans.pop(fut.key)
            value = fut.result()
            if probe:
                value, seconds = value
                value = [value]
                if unsent < total:  # the first probe back sizes the batches of the rest
                    queue.update(batches(unsent, batch_items(seconds, total - unsent, workers)))
                    unsent = total
            results[start:stop] = value
            done += stop - start
            if progress is not None:
                progress(done, total)
    except BaseException:  # an error in a task, Ctrl-C, SIGTERM: stop the rest quietly
        for name in _LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        if not local:  # a LocalCluster is closed whole; a running scheduler is told to drop our tasks
            client.cancel(submitted)
        raise
    return results
