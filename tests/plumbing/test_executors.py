"""The executor seam (markovfork.plumbing.executors) and its Dask half (markovfork.plumbing.dask_executor): a real
``LocalCluster`` (a scheduler and 2 worker processes on the loopback address) gives the local
pool's sweep table exactly; identical items are separate calls; a worker killed mid-sweep costs
nothing but time; no process outlives a call."""

import math
import os
import signal

import polars as pl
import pytest

from markovfork.plumbing.dask_executor import TARGET_SECONDS, TASKS_PER_WORKER, batch_items
from markovfork.plumbing.executors import parse_scheduler, run_tasks
from markovfork.sft.simulate import _run_table, config_grid, load_config, sweep

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

SMALL = {"task.n_train": 100, "task.n_test": 100, "task.feature_dim": 100, "train.epochs": 3}


def _children() -> set:
    """This process's live child processes (the spawn pool's resource tracker lives on by design)."""
    alive = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                alive.add(p.pid)
        except psutil.Error:  # ended meanwhile
            pass
    return alive


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and 2 single-threaded worker processes on 127.0.0.1, and a client to watch them."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as c, \
            distributed.Client(c, set_as_default=False) as client:
        yield c.scheduler_address, client


@pytest.mark.parametrize(
    ("text", "expect"),
    [(None, ("pool", None)), ("local:3", ("local", 3)), (" tcp://10.0.0.1:8786 ", ("address", "tcp://10.0.0.1:8786")),
     ("tls://host:1", ("address", "tls://host:1"))],
)
def test_parse_scheduler(text, expect):
    assert parse_scheduler(text) == expect


@pytest.mark.parametrize("text", ["local:0", "local:x", "local:", "tcp://host", "tcp://:80", "host:8786", "", "  "])
def test_parse_scheduler_rejects_with_one_line(text):
    with pytest.raises(ValueError, match="scheduler") as info:
        parse_scheduler(text)
    assert "\n" not in str(info.value) and repr(text.strip()) in str(info.value) or not text.strip()


def test_batch_items_target_a_second_and_feed_every_worker():
    assert batch_items(0.01, 1000, 2) == math.ceil(TARGET_SECONDS / 0.01)  # 10 ms items: ~1 s tasks
    assert batch_items(0.01, 30, 2) == math.ceil(30 / (TASKS_PER_WORKER * 2))  # small sweep: 4 tasks a worker
    assert batch_items(5.0, 1000, 2) == 1 and batch_items(0.0, 1, 4) == 1


@pytest.mark.slow
def test_dask_sweep_table_equals_the_local_pool_exactly(cluster):
    address, _ = cluster
    configs = config_grid(load_config(None, **SMALL), rhos=[0.0, 0.5, 1.0], seeds=[0, 1])
    pool = sweep(configs, workers=2)
    assert pool.height == 6 * 4 * 7
    assert sweep(configs, scheduler=address).equals(pool)
    # one item per task, and a different batching: the same table
    one = pl.concat(run_tasks(_run_table, configs, scheduler=address, batch_size=1))
    four = pl.concat(run_tasks(_run_table, configs, scheduler=address, batch_size=4))
    assert one.equals(pool) and four.equals(pool)


@pytest.mark.slow
def test_local_cluster_sweep_equals_the_pool_and_leaves_no_process():
    configs = config_grid(load_config(None, **SMALL), rhos=[0.2, 0.8])
    pool = sweep(configs, workers=1)
    before = _children()
    seen = []
    table = sweep(configs, scheduler="local:2", progress=False)
    assert table.equals(pool)
    assert run_tasks(abs, range(-7, 0), scheduler="local:2", progress=lambda d, t: seen.append((d, t))) == [7, 6, 5, 4, 3, 2, 1]
    assert seen[-1] == (7, 7) and [d for d, _ in seen] == sorted({d for d, _ in seen})
    assert _children() <= before  # the LocalClusters' scheduler threads and worker processes are gone


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, None])
def test_identical_items_are_not_merged(cluster, batch_size):
    """``pure=False``: six identical calls of os.urandom(16) are six calls (merged, they would
    return one value six times), in single-item tasks and in (identical) batches alike."""
    address, _ = cluster
    out = run_tasks(os.urandom, [16] * 6, scheduler=address, batch_size=batch_size)
    assert len(out) == 6 and len(set(out)) == 6


@pytest.mark.slow
def test_resources_no_worker_holds_run_anywhere(cluster):
    """A GPU=1 request on a cluster without GPUs runs the tasks on its CPU workers (no hang)."""
    address, _ = cluster
    assert run_tasks(abs, [-3, -2, -1], scheduler=address, resources={"GPU": 1}) == [3, 2, 1]


@pytest.mark.slow
def test_results_in_item_order_with_streamed_progress(cluster):
    address, _ = cluster
    seen = []
    items = list(range(-40, 0))
    out = run_tasks(abs, items, scheduler=address, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert out == [abs(i) for i in items]
    assert len(seen) == 14 and seen[-1] == (40, 40) and all(a[0] < b[0] for a, b in zip(seen, seen[1:]))


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_changes_nothing(cluster):
    """SIGKILL one worker (by its pid) when the first run comes back, while it still runs a task:
    the scheduler reruns its tasks elsewhere and the table equals the undisturbed one."""
    address, client = cluster
    # about 0.2 s a run (the default task at 100 epochs): the first result comes back while both
    # workers still run one
    configs = config_grid(load_config(None, **{"train.epochs": 100}), rhos=[0.0, 0.25, 0.5, 0.75, 1.0], seeds=[0, 1])
    undisturbed = pl.concat(run_tasks(_run_table, configs, scheduler=address, batch_size=1))
    killed = []

    def kill_one(done, total):
        if killed:
            return
        busy = [w for w, keys in client.processing().items() if keys]
        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append((pid, done, total))

    table = pl.concat(run_tasks(_run_table, configs, scheduler=address, batch_size=1, progress=kill_one))
    pid, done, total = killed[0]
    assert done < total - 1  # the kill landed mid-sweep, with a task of the killed worker in flight
    assert table.equals(undisturbed)
    client.wait_for_workers(2, timeout=30)  # the nanny restarted the worker: a new process
    assert pid not in client.run(os.getpid).values()


def test_unreachable_scheduler_is_one_line_oserror_quickly():
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(OSError, match=f"tcp://127.0.0.1:{port}") as info:
        run_tasks(abs, [1, 2], scheduler=f"tcp://127.0.0.1:{port}")
    assert time.perf_counter() - start < 10 and "\n" not in str(info.value)
