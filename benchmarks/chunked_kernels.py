"""Cost of running compiled work in interruptible spans (issue 19.2), old and new path alternated.

    OPENBLAS_NUM_THREADS=1 python benchmarks/chunked_kernels.py [--rounds 7]

Workloads, each run as one kernel call over all the work (the path before spans: ``budget`` /
``chunk_iterations`` large enough for one call) and in the default spans of about
``markovfork.model.kernels.CALL_BUDGET`` work units, alternately, round by round:

  counts walk   sample_rollouts' driver, walks, 16 problems x 100000 rollouts on the
                sampler benchmark's 8664-node depth-10 tree (1 numba thread)
  leaves path   the leaves driver, paths, 16 problems x 100000 rollouts (1 thread)
  RL analytic   train_rl, GRPO, analytic engine, 3000 iterations, fork tree depth 6 (127 nodes)
  RL sampled    train_rl, GRPO, sampled engine, 20000 iterations, same tree

Prints per workload the median time of each path, the median of the per-round ratios
spans / one call, the number of calls, the mean time of one call, and the process's peak
resident memory. Both paths are checked to give identical results first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_throughput import benchmark_tree  # noqa: E402

from markovfork.engines.sampled import api, drivers  # noqa: E402
from markovfork.engines.sampled.inputs import kernel_arrays  # noqa: E402
from markovfork.engines.sampled.kernel_tree import hard_edges, kernel_tree  # noqa: E402
from markovfork.model.policy import transition_probs  # noqa: E402
from markovfork.rl.config import RLConfig  # noqa: E402
from markovfork.rl.train import RLStart, iteration_spans, tabular_model, train_rl  # noqa: E402
from markovfork.tasks import fork_problems, fork_tree  # noqa: E402
from markovfork.plumbing.memory import peak_rss_gib  # noqa: E402

HUGE = 1 << 62


def sampler_workload(method: int, counts: bool, n_problems=16, n_samples=100_000):
    tree = benchmark_tree()
    rng = np.random.default_rng(0)
    probs = transition_probs(tree, np.log(np.maximum(tree.edge_prob, 1e-300)) + rng.normal(size=(n_problems, tree.n_nodes)))
    start = np.zeros(n_problems, dtype=np.int64)
    kt = kernel_tree(tree)
    p, s = kernel_arrays(tree, probs, start)
    batch = api._batch(p, s, n_samples, 1, method)
    if counts:
        correct = np.zeros((n_problems, tree.n_nodes), dtype=bool)
        correct[:, tree.n_children == 0] = rng.random((n_problems, int((tree.n_children == 0).sum()))) < 0.3
        outcomes = drivers.Outcomes(hard_edges(tree), correct, correct.copy())
        shape = (n_problems, 4)
    else:
        outcomes, shape = None, (n_problems, n_samples)

    def run(budget):
        out = np.empty(shape, dtype=np.int64)
        drivers.run_chunks(kt, batch, out, outcomes, budget=budget)
        return out

    calls = len(list(drivers.spans(kt, batch, numba.get_num_threads())))
    return run, calls


def rl_workload(engine: str, iterations: int):
    tree = fork_tree(depth=6, branching=2, forks=3, easy_prob=0.7, seed=0)
    problems = fork_problems(tree, 8, seed=1)
    model = tabular_model(tree)
    theta = tree.edge_logit.copy()
    theta[0] = 0.0
    config = RLConfig(method="grpo", engine=engine, iterations=iterations, lr=0.5, group_size=8, batch_instances=4)

    def run(chunk):
        return train_rl(model, problems, config, RLStart(theta), chunk_iterations=chunk).theta

    calls = len(list(iteration_spans(config, tree, len(problems))))
    return run, calls, iterations + 1


def alternate(name, old, new, rounds, calls, per_call):
    assert np.array_equal(old(), new()), f"{name}: spans changed the result"
    t_old, t_new, ratios = [], [], []
    for r in range(rounds):  # the order swapped every round: no bias for running second
        first, second = (old, new) if r % 2 == 0 else (new, old)
        a = time.perf_counter(); first(); b = time.perf_counter(); second(); c = time.perf_counter()
        d_old, d_new = (b - a, c - b) if r % 2 == 0 else (c - b, b - a)
        t_old.append(d_old)
        t_new.append(d_new)
        ratios.append(d_new / d_old)
    med_new = statistics.median(t_new)
    print(f"{name:13s} {statistics.median(t_old):9.3f} {med_new:9.3f} {statistics.median(ratios):7.3f} "
          f"{min(ratios):6.3f}-{max(ratios):5.3f} {calls:6d} {med_new / calls * per_call:10.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    numba.set_num_threads(1)
    print(f"{'workload':13s} {'one call':>9s} {'spans':>9s} {'ratio':>7s} {'range':>12s} {'calls':>6s} {'s / call':>10s}")
    for name, method, counts in (("counts walk", drivers.WALK, True), ("leaves path", drivers.PATH, False)):
        run, calls = sampler_workload(method, counts)
        alternate(name, lambda: run(HUGE), lambda: run(None), args.rounds, calls, 1)
    for name, engine, iterations in (("RL analytic", "analytic", 3000), ("RL sampled", "sampled", 20000)):
        run, calls, n = rl_workload(engine, iterations)
        alternate(name, lambda: run(n), lambda: run(None), args.rounds, calls, 1)
    print(f"peak resident memory of the process: {peak_rss_gib() * 1024:.0f} MiB")


if __name__ == "__main__":
    main()
