"""Worker processes that end when the work ends, however it ends.

:func:`process_pool` is a spawn-context ``ProcessPoolExecutor`` with three guarantees:
- on any exception or signal in the caller (``KeyboardInterrupt``, ``SystemExit`` from a SIGTERM
  handler, an error in a task) the workers are killed and reaped before the exception goes on;
- a worker ignores SIGINT (Ctrl-C reaches the terminal's whole process group; the caller decides),
  and SIGINT/SIGTERM stay blocked from its start until it is ready, so it never prints a
  ``KeyboardInterrupt`` traceback from its start-up;
- a worker whose parent has died (even by SIGKILL) exits within half a second.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Iterator

__all__ = ["process_pool"]

_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)  # blocked by the parent while it spawned us
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()
    # tqdm's default lock is a multiprocessing semaphore; a killed worker never unregisters it and
    # the resource tracker then warns about a "leaked semaphore". A worker draws no bars: a thread lock.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())


@contextlib.contextmanager
def _children_start_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread while it starts processes: they inherit the mask
    (``_init_worker`` lifts it); signals that arrive meanwhile are delivered at the end, not lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    kill = getattr(pool, "kill_workers", None)  # public from Python 3.14
    processes = list((getattr(pool, "_processes", None) or {}).values())
    if kill is not None:
        kill()
    else:
        for p in processes:
            with contextlib.suppress(OSError, ValueError):
                p.kill()
    for p in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            p.join(timeout=5)
    # the executor's manager thread sees the dead workers, marks the pool broken and closes its
    # queues (their semaphores too: no "leaked semaphore" warning from the resource tracker)
    pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[tuple[ProcessPoolExecutor, contextlib.AbstractContextManager]]:
    """``(pool, spawning)``: submit tasks inside ``with spawning:`` (workers start as tasks are
    submitted). Spawn, not fork: forking a process whose Numba/BLAS thread pools run can deadlock."""
    ctx = multiprocessing.get_context("spawn")
    with _children_start_blocked():  # the resource tracker starts here too
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(os.getpid(),))
    try:
        yield pool, _children_start_blocked()
    except BaseException:
        _kill_workers(pool)
        raise
    pool.shutdown(wait=True)
