"""Wall time and peak memory of the whole TMC experiment (``run_tmc`` with the paper's defaults:
L=4, M0=2, M=2, C=1, K=30, 200 instances per task, 1000 iterations, 7 methods), per engine,
against a plain NumPy re-implementation and the target below.

    OPENBLAS_NUM_THREADS=1 python benchmarks/tmc_speed.py [--repeats 5] [--reference-repeats 3]

Rows (all in this one process):
  run_tmc <engine>   ``run_tmc(TMCConfig(rl=replace(TMC_RL, engine=...)))``, warm: one untimed call first (Numba
                     kernels compiled or loaded from the cache); the median (and best) of
                     --repeats calls. Everything counts: the chain, pretraining, every method's
                     fine-tuning and the scoring of all 9 policies on both tasks.
  numpy reference    the paper's one-file-script way, written below in plain NumPy: the sampled
                     fine-tuning loop of REINFORCE (a per-row softmax over the chain's (layer,
                     state) rows; per iteration, in a Python loop: one fresh task-1 instance, G
                     rollouts drawn with numpy's Generator, vectorised over the G rollouts, and the
                     REINFORCE step) and its evaluation (200 instances x 2 tasks, 30 rollouts each:
                     pass@1, pass@30 and the easy / hard / invalid shares, vectorised over all
                     rollouts of a task). The time of one method (median of --reference-repeats)
                     times the number of methods; pretraining, the chain and the chain / base rows
                     are not included (they favour the reference).
With more than one Numba thread, each engine is also timed with one (the sampled scoring's
parallel kernel pays a thread launch per call, slow when another process holds a core).
Peak memory: tracemalloc's peak of one extra call (Python and NumPy allocations; Numba's own
arrays are not traced) and the process's ru_maxrss at the end (resident set, imports included).
Target: the paper's script takes about 73 s on this class of machine; at least 100x
faster is 0.7 s for the whole experiment, warm.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc
from dataclasses import replace

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from markovfork.tasks import tmc_chain  # noqa: E402
from markovfork.tasks.tmc_policy import chain_row_start  # noqa: E402
from markovfork.rl.pretrain import pretrain_chain  # noqa: E402
from markovfork.experiments.tmc import TMC_RL, TMCConfig, run_tmc  # noqa: E402
from markovfork.plumbing.seeds import child_seed  # noqa: E402
from markovfork.plumbing.memory import peak_rss_gib  # noqa: E402

TARGET_S = 0.7  # the paper's ~73 s script, 100x faster
PAPER_SCRIPT_S = 73.0


# ----------------------------------------------------------------------------- the NumPy reference
def softmax_rows(theta):
    e = np.exp(theta - theta.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def rollouts(probs, start, n, rng):
    """(n, L) states of n paths from layer-0 state ``start``; probs[l] is (layer size, m)."""
    states = np.empty((n, len(probs) + 1), dtype=np.int64)
    states[:, 0] = start
    for layer, p in enumerate(probs):
        cum = np.cumsum(p[states[:, layer]], axis=1)
        u = rng.random(n)[:, None]
        states[:, layer + 1] = np.minimum((u >= cum).sum(axis=1), p.shape[1] - 1)  # clamp: cum[-1] may be 1 - eps
    return states


def path_index(states, m):
    """Index of a valid path among its task's valid paths (middle states in base m, lexicographic)."""
    index = np.zeros(states.shape[0], dtype=np.int64)
    for layer in range(1, states.shape[1] - 1):
        index = index * m + states[:, layer]
    return index


def reference_finetune(theta, task, rng, iterations, group_size, lr):
    """REINFORCE, sampled: theta[l] (layer size, m) logits; returns the trained logits."""
    start, end, expected, m = task["start"], task["end"], task["expected"], theta[0].shape[1]
    theta = [t.copy() for t in theta]
    for _ in range(iterations):
        correct = rng.random(expected.size) < expected  # a fresh instance
        probs = [softmax_rows(t) for t in theta]
        states = rollouts(probs, start, group_size, rng)
        reward = ((states[:, -1] == end) & correct[path_index(states, m)]).astype(np.float64)
        for layer, p in enumerate(probs):  # grad log p(path) = onehot(next) - p(row), per step
            s, t = states[:, layer], states[:, layer + 1]
            grad = np.zeros_like(p)
            np.add.at(grad, (s, t), reward)
            np.add.at(grad, s, -reward[:, None] * p[s])
            theta[layer] += lr * grad / group_size
    return theta


def reference_evaluate(theta, task, high, n_instances, k, rng):
    """pass@1, pass@k (n = k rollouts per instance) and the easy / hard / invalid shares."""
    start, end, expected, m = task["start"], task["end"], task["expected"], theta[0].shape[1]
    probs = [softmax_rows(t) for t in theta]
    correct = rng.random((n_instances, expected.size)) < expected[None, :]
    states = rollouts(probs, start, n_instances * k, rng).reshape(n_instances, k, -1)
    valid = states[:, :, -1] == end
    index = path_index(states.reshape(n_instances * k, -1), m).reshape(n_instances, k)
    solved = valid & np.take_along_axis(correct, np.where(valid, index, 0), axis=1)
    easy = np.ones(valid.shape, dtype=bool)
    for layer, h in enumerate(high):
        easy &= h[states[:, :, layer], states[:, :, layer + 1]]
    return dict(pass_at_1=solved.mean(), pass_at_k=solved.any(axis=1).mean(), easy_valid=(valid & easy).mean(),
                hard_valid=(valid & ~easy).mean(), invalid=(~valid).mean())


def reference_setup(config: TMCConfig):
    """The chain, the pretrained base (library code: not timed) as per-layer logit tables, the tasks."""
    tmc = tmc_chain(config.layers, config.m0, config.m, config.c, seed=config.seed)
    base = pretrain_chain(tmc, config.pretrain_steps, config.pretrain_batch, config.pretrain_lr,
                          seed=child_seed(config.seed, "tmc-pretrain"))
    rows = chain_row_start(tmc)
    theta = [base[rows[l] * tmc.m:(rows[l] + tmc.layer_size(l)) * tmc.m].reshape(tmc.layer_size(l), tmc.m)
             for l in range(tmc.layers - 1)]
    tasks = [dict(start=t.start, end=t.end, expected=tmc.task_paths(i).expected_correctness)
             for i, t in enumerate(tmc.tasks)]
    return theta, tasks, [np.asarray(h) for h in tmc.high]


def reference_method(config: TMCConfig, theta, tasks, high, seed: int = 0):
    """One method of the reference: fine-tune on task 1, evaluate on both tasks."""
    rng = np.random.default_rng(seed)
    trained = reference_finetune(theta, tasks[0], rng, config.rl.iterations, config.rl.group_size, config.rl.lr)
    return [reference_evaluate(trained, task, high, config.instances, config.k, rng) for task in tasks]


# ----------------------------------------------------------------------------- timing
def timed(fn, repeats: int) -> list[float]:
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    return walls


def traced_peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed run_tmc calls per engine")
    ap.add_argument("--reference-repeats", type=int, default=3, help="timed NumPy reference methods")
    opts = ap.parse_args()

    import numba

    print(f"machine: {platform.machine()}  {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}, numba {numba.__version__}")
    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    threads = numba.get_num_threads()
    print(f"numba threads: {threads} (rows marked '1 thr' run with numba.set_num_threads(1))")
    rows, results = [], {}
    for engine, n_threads in [(e, t) for e in ("analytic", "sampled") for t in dict.fromkeys((threads, 1))]:
        config = TMCConfig(rl=replace(TMC_RL, engine=engine))
        numba.set_num_threads(n_threads)
        try:
            t0 = time.perf_counter()
            results[engine] = run_tmc(config)  # warm-up: compile or load the Numba cache
            first = time.perf_counter() - t0
            walls = timed(lambda: run_tmc(config), opts.repeats)
            peak = traced_peak_mib(lambda: run_tmc(config))
        finally:
            numba.set_num_threads(threads)
        name = f"run_tmc {engine}" + (" 1 thr" if n_threads == 1 and threads > 1 else "")
        rows.append(dict(name=name, walls=walls, first=first, peak=peak))
    config = TMCConfig()
    n_methods = len(config.methods)
    theta, tasks, high = reference_setup(config)
    reference = reference_method(config, theta, tasks, high)  # warm-up (and the values shown below)
    per_method = timed(lambda: reference_method(config, theta, tasks, high), opts.reference_repeats)
    ref_peak = traced_peak_mib(lambda: reference_method(config, theta, tasks, high))
    ref_total = statistics.median(per_method) * n_methods
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print()
    print(f"| {'run':<22} | {'median s':>8} | {'best s':>6} | {'first call s':>12} | {'reference / this':>16} | "
          f"{'target s':>8} | {'met':>3} | {'traced peak MiB':>15} |")
    print(f"|{'-' * 24}|{'-' * 9}:|{'-' * 7}:|{'-' * 13}:|{'-' * 17}:|{'-' * 9}:|{'-' * 4}:|{'-' * 16}:|")
    for r in rows:
        median = statistics.median(r["walls"])
        print(f"| {r['name']:<22} | {median:>8.3f} | {min(r['walls']):>6.3f} | {r['first']:>12.3f} | "
              f"{ref_total / median:>16.1f} | {TARGET_S:>8.1f} | {'yes' if median <= TARGET_S else 'no':>3} | "
              f"{r['peak']:>15.1f} |")
    print(f"| {'numpy reference':<22} | {ref_total:>8.3f} | {min(per_method) * n_methods:>6.3f} | {'':>12} | "
          f"{1.0:>16.1f} | {'':>8} | {'':>3} | {ref_peak:>15.1f} |")
    print()
    print(f"numpy reference: {statistics.median(per_method):.3f} s per method (REINFORCE, {config.rl.iterations} "
          f"iterations x G={config.rl.group_size}, then {config.instances} instances x 2 tasks x {config.k} rollouts) "
          f"x {n_methods} methods = {ref_total:.2f} s; per-method walls " + ", ".join(f"{w:.3f}" for w in per_method))
    for r in rows:
        median = statistics.median(r["walls"])
        print(f"{r['name']}: walls " + ", ".join(f"{w:.3f}" for w in r["walls"]) +
              f"; {PAPER_SCRIPT_S / median:.0f}x faster than the paper's ~{PAPER_SCRIPT_S:.0f} s script "
              f"(target >= 100x: {'met' if median <= TARGET_S else 'not met'})")
    print(f"process peak resident set (ru_maxrss): {peak_rss_gib() * 1024:.0f} MiB")
    print()
    print("same experiment, REINFORCE rows (task: pass@1, pass@30, easy / hard / invalid):")
    for name, values in [("numpy reference", reference)] + [
        (f"run_tmc {e}", [results[e].table.filter((results[e].table["method"] == "reinforce")
                                                   & (results[e].table["task"] == t)).row(0, named=True) for t in (1, 2)])
        for e in ("analytic", "sampled")
    ]:
        print(f"  {name:<22} " + "   ".join(
            f"task {t}: {v['pass_at_1']:.3f}, {v['pass_at_k']:.3f}, {v['easy_valid']:.3f} / {v['hard_valid']:.3f} / "
            f"{v['invalid']:.3f}" for t, v in zip((1, 2), values)))


if __name__ == "__main__":
    main()
