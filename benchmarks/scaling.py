"""Wall time of a sweep on the local process pool vs a Dask LocalCluster, and Dask's cost per task.

    python benchmarks/scaling.py [--repeats 3] [--workers 1,2]

Rows (in this process, through the Python API; medians over the repeats, best beside them):
  pool W          ``sweep(configs, workers=W)``: spawns W processes, runs, stops them
  dask local:W    ``sweep(configs, scheduler="local:W")``: starts a LocalCluster of W workers,
                  runs, closes it (what ``markovfork sweep --scheduler local:W`` does)
  dask running W  the same on an already running LocalCluster (``scheduler="tcp://..."``): no
                  start-up, the cost of a cluster that outlives the sweep
The sweep: 11 prevalences (rho 0:1:0.1) x 3 seeds x 20 epochs, the default analytic task
(``markovfork sweep --rho 0:1:0.1 --seeds 0,1,2 --epochs 20``). Every executor's table is
checked equal to the first one.

Dask's cost per task: a no-op task's round trip (submit, run, result; one at a time) and the
throughput of 500 no-op tasks submitted together, on a running 2-worker cluster. Warm-up: the first
and the second ``simulate`` call in a fresh worker process, with the package's on-disk Numba
cache (``cache=True``) and with ``NUMBA_CACHE_DIR`` pointing at a new, empty directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from markovfork.sft.simulate import config_grid, load_config, simulate, sweep


def configs():
    return config_grid(load_config(None, **{"train.epochs": 20}), rhos=[round(0.1 * i, 12) for i in range(11)],
                       seeds=[0, 1, 2])


def _noop(x):
    return x


def _first_and_second_call() -> tuple[float, float]:
    config = load_config(None, **{"train.epochs": 20})
    times = []
    for _ in range(2):
        start = time.perf_counter()
        simulate(config)
        times.append(time.perf_counter() - start)
    return tuple(times)


def _cluster(workers: int, env: dict | None = None):
    import logging

    import distributed

    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:  # the nanny passes its environment on to the worker it spawns
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address=None, silence_logs=logging.WARNING,
                                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def report(name: str, times: list[float], n_tasks: int) -> float:
    med = statistics.median(times)
    print(f"{name:<16} {med:8.2f} s  (best {min(times):.2f}, {len(times)} runs)  {1e3 * med / n_tasks:7.1f} ms/run",
          flush=True)
    return med


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    import distributed

    grid = configs()
    n = len(grid)
    print(f"{n} runs (11 rho x 3 seeds, 20 epochs), {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"distributed {distributed.__version__}")
    sweep(grid[:2], workers=1)  # untimed: fills the Numba cache
    reference, medians = None, {}
    for w in (int(x) for x in args.workers.split(",")):
        runs = {"pool": lambda: sweep(grid, workers=w), "dask local": lambda: sweep(grid, scheduler=f"local:{w}")}
        with _cluster(w) as cluster:
            runs["dask running"] = lambda: sweep(grid, scheduler=cluster.scheduler_address)
            for name, fn in runs.items():
                times = []
                for _ in range(args.repeats):
                    seconds, table = timed(fn)
                    times.append(seconds)
                    reference = table if reference is None else reference
                    assert table.equals(reference), f"{name} {w}: the table differs"
                medians[name, w] = report(f"{name} {w}", times, n)
    for w in sorted({w for _, w in medians}):
        for name in ("dask local", "dask running"):
            extra = medians[name, w] - medians["pool", w]
            print(f"{name} {w} - pool {w}: {extra:+.2f} s, {1e3 * extra / n:+.1f} ms per run")

    with _cluster(2) as cluster, distributed.Client(cluster, set_as_default=False) as client:
        client.submit(_noop, 0, pure=False).result()
        trips = []
        for i in range(200):
            start = time.perf_counter()
            client.submit(_noop, i, pure=False).result()
            trips.append(time.perf_counter() - start)
        seconds, _ = timed(lambda: client.gather(client.map(_noop, range(500), pure=False)))
        print(f"no-op task round trip: median {1e3 * statistics.median(trips):.2f} ms (200 one at a time); "
              f"500 together: {1e3 * seconds / 500:.2f} ms per task")
        warm = list(client.run(_first_and_second_call).values())
    with tempfile.TemporaryDirectory(prefix="numba-empty-") as empty:
        with _cluster(2, {"NUMBA_CACHE_DIR": empty}) as cluster, distributed.Client(cluster, set_as_default=False) as c:
            cold = list(c.run(_first_and_second_call).values())
    for name, pairs in (("on-disk cache", warm), ("empty cache", cold)):
        print(f"fresh worker, {name}: first simulate {statistics.median(p[0] for p in pairs):.2f} s, "
              f"second {statistics.median(p[1] for p in pairs):.3f} s (median of {len(pairs)} workers)")


if __name__ == "__main__":
    main()
