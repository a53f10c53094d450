"""Sampled-engine throughput in ns per step, next to its floor and two references.

    OPENBLAS_NUM_THREADS=1 python benchmarks/sampler_throughput.py [--problems 64] [--samples 2000]
        [--repeats 7] [--scale-problems 2000] [--against REV [--rounds 15]]

One step = one edge traversed (a rollout of this tree is 10 steps, whichever sampler draws it).
The tree: depth 10, every internal node has 2, 3 or 4 children (probabilities 0.7 / 0.2 / 0.1),
seed 0: 8664 nodes and 5042 leaves, all at depth 10.
Per-problem step probabilities: softmax of (base logit + N(0, 1) noise) per problem.

Rows (all in this one process, compiled functions warmed up first):
  floor            one bare xoshiro256** uniform in a numba loop (the engine's RNG), 1 thread
  numpy random     numpy Generator.random (PCG64) filling an array, per draw (for reference)
  engine leaves    markovfork.engines.sampled.sample_leaves (method "auto": paths at this workload),
                   1 and 2 numba threads; input checks and all per-problem set-up included
  engine counts    markovfork.engines.sampled.sample_rollouts (leaves classified, not returned)
  engine walk      sample_leaves(method="walk"): one uniform per step, no set-up
  engine uneven    sample_leaves on a tree with leaves at uneven depths (1 thread)
  numpy reference  markovfork.engines.sampled.sample_leaves_reference (vectorised over samples)
  quantecon        MarkovChain(P_sparse).simulate(ts_length=depth+1, init=0, num_reps=n)
                   on the same tree as a sparse transition matrix (leaves absorbing), one
                   chain per problem; only simulate is timed (its lazily cached CDFs warm)
Times are wall-clock medians over --repeats runs (best run beside it). After the table: the
engine (1 and 2 threads) and the floor timed alternately, round by round, with the per-round
ratios (the fair comparison on a shared machine whose speed drifts between seconds); where a
path-sampled problem's time goes (set-up, draws); ns/step against tree size and rollouts per
problem; and 1- vs 2-thread scaling on a larger workload (--scale-problems x --samples),
alternated, next to the scaling of bare draws (the machine's ceiling).

--against REV instead times this engine against the one at git revision REV (its
markovfork/engines/sampled.py or markovfork/engines/sampled/ and markovfork/engines/sampled/streams.py, loaded as temporary
modules), alternated round by round on the engine workloads, after checking that both return
the same leaves and counts; it prints per-round ratios new / old.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from markovfork.model.policy import transition_probs
from markovfork.model.problems import Problems
from markovfork.engines.sampled import sample_leaves, sample_leaves_reference, sample_rollouts
from markovfork.engines.sampled.kernel_tree import kernel_tree
from markovfork.engines.sampled.paths import path_buffers, path_setup
from markovfork.engines.sampled.rows import probs_ok
from markovfork.engines.sampled.streams import stream_states, to_unit, xoshiro_next
from markovfork.model.tree import PROB_TOL
from markovfork.model.tree import LEAF, tree_from_children

DEPTH = 10


def benchmark_tree(depth: int = DEPTH, seed: int = 0, p_stop: float = 0.0):
    """Random tree: 2, 3 or 4 children per internal node, Dirichlet(1) base probs. p_stop = 0:
    complete depth (all leaves at ``depth``); p_stop > 0: each node in the last three levels above
    ``depth`` is a leaf with that probability (leaves at uneven depths: walks of unknown length)."""
    rng = np.random.default_rng(seed)
    children: list[list[int]] = [[]]
    prob = [1.0]
    front = [0]
    for d in range(depth):
        new_front = []
        for u in front:
            if d >= depth - 3 and p_stop > 0 and rng.random() < p_stop:
                continue
            k = int(rng.choice([2, 3, 4], p=[0.7, 0.2, 0.1]))
            for w in rng.dirichlet(np.ones(k)):
                children.append([])
                prob.append(float(w))
                children[u].append(len(children) - 1)
                new_front.append(len(children) - 1)
        front = new_front
    kind = [LEAF if not c else 0 for c in children]
    tree, _ = tree_from_children(children, kind, prob)
    return tree


@numba.njit(cache=True)
def _floor_kernel(state, n):
    """Sum of n uniforms from one xoshiro256** stream: the cost of a bare draw."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    acc = 0.0
    for _ in range(n):
        x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        acc += to_unit(x)
    return acc


@numba.njit(cache=True)
def _floor_int_kernel(state, n):
    """n draws as 53-bit integers (what a path pick consumes), xor-folded: the generator's own
    dependency chain only (no float add chain, unlike _floor_kernel)."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    acc = np.uint64(0)
    for _ in range(n):
        x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        acc ^= x >> np.uint64(11)
    return acc


@numba.njit(cache=True)
def _path_setups(tree, probs):
    """The engine's per-problem path set-up (validation, reach, thresholds, guide), problem after problem."""
    tables = path_buffers(probs.shape[1], tree.leaves.shape[0], tree.shift)
    ok = True
    for p in range(probs.shape[0]):
        ok &= path_setup(tree, probs[p], 0, PROB_TOL, tables)
    return ok


@numba.njit(cache=True, parallel=True)
def _floor_parallel_kernel(states, n, out):
    """n draws (53-bit integers, xor-folded) from each of states.shape[0] streams, streams in
    parallel: the hardware's own 2-thread scaling for register-only work (the scaling ceiling)."""
    for c in numba.prange(states.shape[0]):
        s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
        acc = np.uint64(0)
        for _ in range(n):
            x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
            acc ^= x >> np.uint64(11)
        out[c] = acc


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median, best) wall seconds of fn() over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def alternate(fns: dict, rounds: int) -> dict:
    """Wall seconds of each fn, run in turn ``rounds`` times (after one warm-up each), so every
    round compares them on the same machine state: on this shared VM the speed drifts by 30% or
    more between seconds, which makes separately timed rows hard to compare."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def ratio_line(times_a: list, times_b: list) -> str:
    """Per-round ratios a / b: median, range, and best / best."""
    ratios = [a / b for a, b in zip(times_a, times_b)]
    return (f"median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}-{max(ratios):.2f}x, "
            f"best/best {min(times_a) / min(times_b):.2f}x")


def sparse_chain(tree, probs_row):
    """CSR transition matrix of the tree walk for one problem: leaves absorbing."""
    from scipy import sparse

    n = tree.n_nodes
    rows = np.concatenate([tree.parent[1:], tree.leaves])
    cols = np.concatenate([np.arange(1, n), tree.leaves])
    vals = np.concatenate([probs_row[1:], np.ones(tree.leaves.size)])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))


def load_engine_at(rev: str):
    """The sampled engine of git revision ``rev`` as a temporary module (markovfork.engines.sampled and
    markovfork.engines.sampled.streams renamed in its sources; everything else comes from this checkout)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout

    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    package, streams = f"_sampled_{sha[:12]}", f"_streams_{sha[:12]}"
    dest = Path(tempfile.gettempdir()) / f"markovfork-engine-{sha[:12]}"
    for name in git("ls-tree", "-r", "--name-only", sha, "markovfork/engines/sampled.py", "markovfork/sampled",
                    "markovfork/engines/sampled/streams.py").split():
        text = git("show", f"{sha}:{name}").replace("markovfork.engines.sampled", package).replace("markovfork.engines.sampled.streams", streams)
        rel = name.removeprefix("markovfork/")
        target = dest / (package + rel.removeprefix("sampled") if rel.startswith("sampled") else streams + ".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:  # keeps Numba's cache of earlier runs
            target.write_text(text)
    sys.path.insert(0, str(dest))
    return importlib.import_module(package), sha


def compare_against(rev: str, rounds: int, tree, probs, start, problems, n: int, rng) -> None:
    """This engine and the one at ``rev`` on the same workloads, alternated round by round (the
    order flips every round); each entry is the best of a few calls. Results must be identical."""
    import markovfork.engines.sampled as new

    old, sha = load_engine_at(rev)
    uneven = benchmark_tree(p_stop=0.3)
    probs_u = transition_probs(uneven, uneven.edge_logit[None, :] + rng.normal(size=(len(start), uneven.n_nodes)))
    small = benchmark_tree(depth=4)
    probs_s = transition_probs(small, small.edge_logit[None, :] + rng.normal(size=(8, small.n_nodes)))
    start8 = np.zeros(8, dtype=np.int64)
    P = len(start)
    big, tiny = 3, 20  # calls per timed entry (best of): large and small workloads
    work = {
        f"leaves {P}x{n} auto, 1 thread": (big, lambda m: m.sample_leaves(tree, probs, start, n, 1, 1)),
        f"leaves {P}x{n} auto, 2 threads": (big, lambda m: m.sample_leaves(tree, probs, start, n, 1, 2)),
        f"rollouts {P}x{n}, 1 thread": (big, lambda m: m.sample_rollouts(tree, probs, problems, n, 1, 1)),
        f"walks {P}x{n}, 1 thread": (big, lambda m: m.sample_leaves(tree, probs, start, n, 1, 1, method="walk")),
        f"leaves {P}x50 (walks), 1 thread": (tiny, lambda m: m.sample_leaves(tree, probs, start, 50, 1, 1)),
        f"uneven tree {P}x{n}, 1 thread": (big, lambda m: m.sample_leaves(uneven, probs_u, start, n, 1, 1)),
        "depth-4 tree 8x200, 1 thread": (tiny, lambda m: m.sample_leaves(small, probs_s, start8, 200, 1, 1)),
    }
    for name, (_, run) in work.items():
        a, b = run(old), run(new)
        fields = ("correct", "easy_valid", "hard_valid", "invalid")
        same = all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields) if hasattr(a, "correct") else \
            np.array_equal(a, b)
        if not same:
            raise SystemExit(f"{name}: results differ from {rev}")
    print(f"results identical to {rev} ({sha[:12]}) on every workload; {rounds} alternated rounds, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, (calls, run) in work.items():
        times = {"old": [], "new": []}
        for r in range(rounds):
            for label in (("old", "new") if r % 2 == 0 else ("new", "old")):
                module = old if label == "old" else new
                best = float("inf")
                for _ in range(calls):
                    t0 = time.perf_counter()
                    run(module)
                    best = min(best, time.perf_counter() - t0)
                times[label].append(best)
        print(f"  {name:<32} old min {min(times['old']) * 1e3:8.3f} ms, new min {min(times['new']) * 1e3:8.3f} ms; "
              f"new / old: {ratio_line(times['new'], times['old'])}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=64, help="problems for the engine rows")
    parser.add_argument("--samples", type=int, default=2000, help="rollouts per problem")
    parser.add_argument("--ref-problems", type=int, default=8, help="problems for the numpy/quantecon rows")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per row (median reported)")
    parser.add_argument("--scale-problems", type=int, default=2000, help="problems for the scaling run (0: skip)")
    parser.add_argument("--against", metavar="REV", help="compare with the engine at this git revision instead")
    parser.add_argument("--rounds", type=int, default=15, help="alternated rounds of --against")
    args = parser.parse_args()

    tree = benchmark_tree()
    rng = np.random.default_rng(1)
    P, n, P_ref = args.problems, args.samples, args.ref_problems
    probs = transition_probs(tree, tree.edge_logit[None, :] + rng.normal(size=(P, tree.n_nodes)))
    start = np.zeros(P, dtype=np.int64)
    problems = Problems(start, np.zeros((P, tree.n_nodes), bool), tree.kind[None, :].repeat(P, 0) == LEAF,
                        np.zeros((P, 0)), np.arange(P))
    if args.against:
        compare_against(args.against, args.rounds, tree, probs, start, problems, n, rng)
        return
    import quantecon as qe  # benchmark-only dependency (the `bench` extra)

    steps = int(P * n * DEPTH)  # every leaf is at depth DEPTH
    ref_steps = int(P_ref * n * DEPTH)

    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
          f"quantecon {qe.__version__}, numba threads available {numba.config.NUMBA_NUM_THREADS}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"tree: depth {DEPTH}, {tree.n_nodes} nodes, {tree.leaves.size} leaves, "
          f"branching 2-4 (mean {tree.n_children[tree.n_children > 0].mean():.2f})")
    print(f"engine: {P} problems x {n} rollouts = {steps:,} steps per run; "
          f"numpy/quantecon: {P_ref} problems x {n} rollouts = {ref_steps:,} steps; {args.repeats} runs each")

    rows = []  # (name, median ns/step, best ns/step)

    n_draws = 10_000_000
    state = stream_states(0, 1)[0].copy()
    med, best = timed(lambda: _floor_kernel(state, n_draws), args.repeats)
    rows.append(("floor: xoshiro256** draw (numba, 1 thread)", med / n_draws * 1e9, best / n_draws * 1e9))
    med, best = timed(lambda: _floor_int_kernel(state, n_draws), args.repeats)
    floor_rows = [("  draw, 53-bit integer xor-folded (no float add)", med / n_draws * 1e9, best / n_draws * 1e9)]
    gen = np.random.default_rng(0)
    buf = np.empty(n_draws)
    med, best = timed(lambda: gen.random(out=buf), args.repeats)
    rows.append(("numpy Generator.random per draw", med / n_draws * 1e9, best / n_draws * 1e9))

    leaves = sample_leaves(tree, probs, start, n, seed=0)
    assert int((tree.depth[leaves] - tree.depth[start][:, None]).sum()) == steps
    engine = {}
    for threads in (1, 2):
        if threads > numba.config.NUMBA_NUM_THREADS:
            continue
        med, best = timed(lambda: sample_leaves(tree, probs, start, n, seed=1, n_threads=threads), args.repeats)
        engine[threads] = med
        rows.append((f"engine sample_leaves, {threads} thread(s)", med / steps * 1e9, best / steps * 1e9))
    med, best = timed(lambda: sample_rollouts(tree, probs, problems, n, seed=1, n_threads=1), args.repeats)
    rows.append(("engine sample_rollouts, 1 thread", med / steps * 1e9, best / steps * 1e9))
    med, best = timed(lambda: sample_leaves(tree, probs, start, n, 1, 1, method="walk"), args.repeats)
    rows.append(('engine method="walk", 1 thread', med / steps * 1e9, best / steps * 1e9))

    uneven = benchmark_tree(p_stop=0.3)
    probs_u = transition_probs(uneven, uneven.edge_logit[None, :] + rng.normal(size=(P, uneven.n_nodes)))
    leaves_u = sample_leaves(uneven, probs_u, start, n, seed=0)
    steps_u = int(uneven.depth[leaves_u].sum())
    med, best = timed(lambda: sample_leaves(uneven, probs_u, start, n, seed=1, n_threads=1), args.repeats)
    rows.append(("engine uneven-depth tree, 1 thread", med / steps_u * 1e9, best / steps_u * 1e9))

    # where a path-sampled problem's time goes: validation + path set-up, then the draws
    kt = kernel_tree(tree)
    assert _path_setups(kt, probs)
    med_setup, _ = timed(lambda: _path_setups(kt, probs), args.repeats)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    med_valid, _ = timed(lambda: probs_ok(kt.last_child, probs, PROB_TOL), args.repeats)
    numba.set_num_threads(previous)

    ref_reps = max(1, min(args.repeats, 3))
    med, best = timed(lambda: sample_leaves_reference(tree, probs[:P_ref], start[:P_ref], n, seed=1), ref_reps)
    rows.append(("numpy reference sampler", med / ref_steps * 1e9, best / ref_steps * 1e9))

    chains = [qe.MarkovChain(sparse_chain(tree, probs[p])) for p in range(P_ref)]

    def run_quantecon():
        for p, mc in enumerate(chains):
            mc.simulate(ts_length=DEPTH + 1, init=0, num_reps=n, random_state=p)

    med, best = timed(run_quantecon, args.repeats)
    qe_ns = med / ref_steps * 1e9
    rows.append(("quantecon MarkovChain.simulate (sparse)", qe_ns, best / ref_steps * 1e9))

    n_small = 50  # few rollouts per problem: n x depth < N / 6, "auto" walks
    med, best = timed(lambda: sample_leaves(tree, probs, start, n_small, seed=1, n_threads=1), args.repeats)
    small_steps = P * n_small * DEPTH
    rows.append((f"engine n={n_small} per problem (walks), 1 thread", med / small_steps * 1e9,
                 best / small_steps * 1e9))
    rows.extend(floor_rows)  # extra floor variants, listed last (row indices above unchanged)
    floor_ns = rows[0][1]
    print()
    print(f"| {'row':<48} | {'ns/step med':>11} | {'ns/step best':>12} | {'x floor':>7} | {'x quantecon':>11} |")
    print(f"|{'-' * 50}|{'-' * 12}:|{'-' * 13}:|{'-' * 8}:|{'-' * 12}:|")
    for name, med_ns, best_ns in rows:
        print(f"| {name:<48} | {med_ns:>11.2f} | {best_ns:>12.2f} | {med_ns / floor_ns:>7.2f} | {med_ns / qe_ns:>11.3f} |")
    print()
    print(f"single-thread engine vs floor (table rows): {rows[2][1] / floor_ns:.2f}x; "
          f"vs quantecon per step: {qe_ns / rows[2][1]:.1f}x faster")
    n_floor = 2_000_000
    paired = {"engine": lambda: sample_leaves(tree, probs, start, n, seed=1, n_threads=1),
              "floor": lambda: _floor_kernel(state, n_floor)}
    if 2 in engine:
        paired["engine2"] = lambda: sample_leaves(tree, probs, start, n, seed=1, n_threads=2)
    alt = alternate(paired, 3 * args.repeats)
    eng = [t / steps * 1e9 for t in alt["engine"]]
    flo = [t / n_floor * 1e9 for t in alt["floor"]]
    print(f"measured alternately, {len(eng)} rounds: engine 1 thread {statistics.median(eng):.2f} ns/step "
          f"(best {min(eng):.2f}), floor {statistics.median(flo):.2f} ns/draw (best {min(flo):.2f})")
    print(f"  engine / floor per step: {ratio_line(eng, flo)} (target <= 2x)")
    if 2 in engine:
        print(f"  2-thread scaling (1-thread time / 2-thread time): {ratio_line(alt['engine'], alt['engine2'])} "
              f"(ideal 2x)")
    per_problem = engine[1] / P * 1e6
    print(f"per problem ({tree.n_nodes} nodes, {tree.leaves.size} leaves, {n} rollouts, 1 thread): "
          f"{per_problem:.1f} us = set-up {med_setup / P * 1e6:.1f} us (validation + reach + thresholds + guide; "
          f"validation alone {med_valid / P * 1e6:.1f} us) + rest {per_problem - med_setup / P * 1e6:.1f} us "
          f"(draws, streams, output, call) = {(engine[1] - med_setup) / (P * n) * 1e9:.2f} ns per rollout")
    print(f"uneven-depth tree: {uneven.n_nodes} nodes, mean walk {steps_u / (P * n):.2f} steps")

    print()
    print("ns/step vs tree size and rollouts per problem (complete trees, 1 thread, method auto):")
    sizes = (4, 6, 8, 10, 12)
    counts = (50, 200, 2000, 20000)
    print(f"| {'depth':>5} | {'nodes':>6} | " + " | ".join(f"{'n=' + str(c):>8}" for c in counts) + " |")
    print(f"|{'-' * 6}:|{'-' * 7}:|" + "|".join(f"{'-' * 9}:" for _ in counts) + "|")
    for depth in sizes:
        t = benchmark_tree(depth=depth)
        pr = transition_probs(t, t.edge_logit[None, :] + rng.normal(size=(8, t.n_nodes)))
        st0 = np.zeros(8, dtype=np.int64)
        cells = []
        for c in counts:
            full, _ = timed(lambda: sample_leaves(t, pr, st0, c, seed=1, n_threads=1), max(3, args.repeats // 2))
            cells.append(f"{full / (8 * c * depth) * 1e9:>8.2f}")
        print(f"| {depth:>5} | {t.n_nodes:>6} | " + " | ".join(cells) + " |")

    if args.scale_problems and numba.config.NUMBA_NUM_THREADS >= 2:
        Ps = args.scale_problems
        probs_s = transition_probs(tree, tree.edge_logit[None, :] + rng.normal(size=(Ps, tree.n_nodes)))
        start_s = np.zeros(Ps, dtype=np.int64)
        print()
        print(f"scaling run: {Ps} problems x {n} rollouts = {Ps * n * DEPTH:,} steps; "
              f"threading layer {numba.threading_layer()}; load average before: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        fl_states, fl_out, fl_n = stream_states(0, 2), np.empty(2, dtype=np.uint64), 20_000_000

        def floor_threads(threads):
            previous = numba.get_num_threads()
            numba.set_num_threads(threads)
            _floor_parallel_kernel(fl_states, fl_n, fl_out)
            numba.set_num_threads(previous)

        alt = alternate({
            "engine1": lambda: sample_leaves(tree, probs_s, start_s, n, seed=1, n_threads=1),
            "engine2": lambda: sample_leaves(tree, probs_s, start_s, n, seed=1, n_threads=2),
            "floor1": lambda: floor_threads(1),
            "floor2": lambda: floor_threads(2),
        }, 5)
        for threads in (1, 2):
            t = statistics.median(alt[f"engine{threads}"])
            print(f"  {threads} thread(s): {t:.3f} s, {t / (Ps * n * DEPTH) * 1e9:.2f} ns/step")
        print(f"  engine scaling: {ratio_line(alt['engine1'], alt['engine2'])} (ideal 2x)")
        print(f"  floor scaling (2 streams x {fl_n:,} bare draws, 1 vs 2 threads): "
              f"{ratio_line(alt['floor1'], alt['floor2'])} (the hardware's ceiling for register-only work here)")
        print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(f"peak memory (maxrss of this process): {maxrss_mb:.0f} MiB; "
          f"engine leaves output {P * n * 8 / 2**20:.1f} MiB, probs {probs.nbytes / 2**20:.1f} MiB")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
