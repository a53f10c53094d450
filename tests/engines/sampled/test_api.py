"""The sampled engine's public functions against exact references: leaf frequencies vs
reach_probability (chi-square), correct counts vs success_probability and path-type counts vs a
plain reference, both samplers vs plain-Python samplers on random trees, reproducibility and
thread-count invariance, input validation and resource limits."""

import functools
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import markovfork.engines.sampled as sampled_module
from markovfork.engines.exact import reach_probability, success_probability
from markovfork.model.policy import Decoding
from markovfork.model.problems import Problems
from markovfork.engines.sampled import (
    RolloutCounts,
    path_types_reference,
    sample_leaves,
    sample_leaves_reference,
    sample_rollouts,
    stream_uniforms,
)
from markovfork.engines.sampled.drivers import BLOCK
from markovfork.model.tree import LEAF, tree_from_dict
from engines.sampled.cases import (
    METHODS,
    TREES,
    chi_square_pvalue,
    random_probs,
    random_problems,
    random_tree,
    small_tree,
    walk_reference,
)
from strategies import build_case, random_trees  # random small trees with per-problem probabilities

# ----------------------------------------------------------------------------------------------
# Distribution: chi-square against reach_probability, and a check that the test has power
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TREES))
@pytest.mark.parametrize("method", METHODS)
def test_leaf_frequencies_match_exact_path_probabilities(name, method):
    tree = TREES[name]()
    probs = random_probs(tree, 3, seed=1)
    below_root = int(np.flatnonzero((tree.depth == 1) & (tree.n_children > 1))[0])
    start = np.array([0, 0, below_root])  # the third problem starts below the root
    leaves = tree.leaves
    reach = reach_probability(tree, probs, start)[:, leaves]
    sampled = sample_leaves(tree, probs, start, 20_000, seed=12345, method=method)
    for p in range(3):
        counts = np.bincount(np.searchsorted(leaves, sampled[p]), minlength=leaves.size)
        assert np.all(np.isin(sampled[p], leaves))
        assert chi_square_pvalue(counts, reach[p]) > 1e-3
        # power: the same counts against a wrong distribution (another problem's) are rejected
        wrong = reach[(p + 1) % 2] if p != 2 else reach[0]
        assert chi_square_pvalue(counts, wrong) < 1e-6


@pytest.mark.parametrize("name", sorted(TREES))
def test_reference_sampler_matches_exact_path_probabilities(name):
    tree = TREES[name]()
    probs = random_probs(tree, 2, seed=2)
    start = np.zeros(2, dtype=np.int64)
    reach = reach_probability(tree, probs, start)[:, tree.leaves]
    sampled = sample_leaves_reference(tree, probs, start, 20_000, seed=7)
    for p in range(2):
        counts = np.bincount(np.searchsorted(tree.leaves, sampled[p]), minlength=tree.leaves.size)
        assert chi_square_pvalue(counts, reach[p]) > 1e-3


def test_walks_consume_one_uniform_per_step_in_order():
    tree = random_tree(5, depth=6)
    probs = random_probs(tree, 3, seed=3)
    start = np.array([0, 1, 0])
    sampled = sample_leaves(tree, probs, start, 300, seed=9, method="walk")
    uniforms = stream_uniforms(9, 3, 300 * int(tree.depth.max()))
    for p in range(3):
        assert np.array_equal(sampled[p], walk_reference(tree, probs[p], start[p], uniforms[p], 300))


@given(random_trees(), st.integers(0, 2**63), st.integers(1, 40))
def test_both_samplers_equal_plain_python_on_random_trees(case, seed, n):
    """On every small tree shape (zero-probability steps, starts anywhere, leaves as starts):
    walks equal plain-Python walks on the stream's uniforms, and paths equal the inverse CDF of
    reach_probability over the leaves (float cumsum, searchsorted; a uniform past the rounded
    total takes the last leaf of positive reach)."""
    tree, _, probs, problems = build_case(case)
    start, n_problems = problems.start, problems.start.size
    reach = reach_probability(tree, probs, start)[:, tree.leaves]
    paths = sample_leaves(tree, probs, start, n, seed, method="path")
    walks = sample_leaves(tree, probs, start, n, seed, method="walk")
    uniforms = stream_uniforms(seed, n_problems, n * max(1, int(tree.depth.max())))
    for p in range(n_problems):
        i = np.searchsorted(np.cumsum(reach[p]), uniforms[p, :n], side="right")
        expect = tree.leaves[np.minimum(i, np.flatnonzero(reach[p] > 0)[-1])]
        assert np.array_equal(paths[p], expect)
        assert np.array_equal(walks[p], walk_reference(tree, probs[p], start[p], uniforms[p], n))


def test_auto_walks_for_few_rollouts_and_takes_paths_for_many():
    """auto: paths once n x height(start) >= N / 6 (the set-up pays for itself), walks below."""
    tree = random_tree(5, depth=7)
    probs = random_probs(tree, 3, seed=3)
    start = np.zeros(3, dtype=np.int64)
    height = int(tree.depth.max())
    few = (tree.n_nodes - 1) // (6 * height)  # the most rollouts that still walk
    assert few >= 2
    for n, method in ((1, "walk"), (few, "walk"), (few + 1, "path"), (tree.n_nodes, "path")):
        assert np.array_equal(sample_leaves(tree, probs, start, n, seed=4),
                              sample_leaves(tree, probs, start, n, seed=4, method=method))
    with pytest.raises(ValueError, match="method must be one of 'auto', 'walk', 'path', got 'table'"):
        sample_leaves(tree, probs, start, 10, seed=4, method="table")


@pytest.mark.parametrize("method", METHODS)
def test_wide_nodes(method):
    """A node with 12 children (wider than any fixed layout)."""
    w = np.arange(1, 13, dtype=float)
    tree = tree_from_dict({"children": [{"prob": x / w.sum()} for x in w]})
    probs = tree.edge_prob[None, :]
    sampled = sample_leaves(tree, probs, [0], 30_000, seed=4, method=method)
    counts = np.bincount(sampled[0] - 1, minlength=12)
    assert chi_square_pvalue(counts, w / w.sum()) > 1e-3


# ----------------------------------------------------------------------------------------------
# Rounding guard and zero-probability steps
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_zero_probability_steps_are_never_taken(method):
    tree = random_tree(8, depth=5)
    probs = random_probs(tree, 3, seed=5, scale=2.0, decoding=Decoding(top_k=1))  # greedy: one path
    sampled = sample_leaves(tree, probs, np.zeros(3, dtype=np.int64), 2000, seed=1, method=method)
    reach = reach_probability(tree, probs, np.zeros(3, dtype=np.int64))
    assert np.all(reach[np.arange(3)[:, None], sampled] > 0)
    assert all(len(np.unique(row)) == 1 for row in sampled)


@pytest.mark.parametrize("method", METHODS)
def test_rows_short_of_one_never_take_a_zero_probability_child(method):
    """Rows summing to 1 - 9e-7 (within tolerance) with a trailing zero child."""
    tree = tree_from_dict({"children": [{"prob": 0.25}, {"prob": 0.25}, {"prob": 0.5}, {"prob": 0.0}]})
    short = np.array([[1.0, 0.25, 0.25 - 9e-7, 0.5, 0.0]])
    assert set(np.unique(sample_leaves(tree, short, [0], 5000, seed=0, method=method))) <= {1, 2, 3}


# ----------------------------------------------------------------------------------------------
# Rollout counts
# ----------------------------------------------------------------------------------------------


def test_correct_counts_match_success_probability():
    tree = random_tree(21, depth=6)
    n_problems, n = 40, 4000
    problems = random_problems(tree, n_problems, seed=3)
    probs = random_probs(tree, n_problems, seed=4)
    counts = sample_rollouts(tree, probs, problems, n, seed=2024)
    p = success_probability(tree, probs, problems.correct, problems.start)
    # per problem: within 5 binomial standard deviations (plus one count for p near 0 or 1)
    tol = 5 * np.sqrt(p * (1 - p) / n) + 1.0 / n
    assert np.all(np.abs(counts.correct / n - p) <= tol)
    # pooled over problems: the mean is much tighter
    pooled_sd = np.sqrt(np.sum(p * (1 - p)) / n) / n_problems
    assert abs(counts.correct.mean() / n - p.mean()) <= 5 * pooled_sd + 1e-12


def test_path_types_partition_and_match_sampled_leaves():
    tree = random_tree(4, depth=6)
    problems = random_problems(tree, 6, seed=8, start=[0, 0, 1, 2, 0, 3])
    probs = random_probs(tree, 6, seed=9)
    counts = sample_rollouts(tree, probs, problems, 1500, seed=77)
    assert isinstance(counts, RolloutCounts) and counts.n_samples == 1500
    assert np.all(counts.easy_valid + counts.hard_valid + counts.invalid == 1500)
    assert np.all(counts.correct <= counts.easy_valid + counts.hard_valid)
    for arr in (counts.correct, counts.easy_valid, counts.hard_valid, counts.invalid):
        assert arr.dtype == np.int64 and arr.shape == (6,)
    # same seed, same streams: the counts classify exactly the leaves sample_leaves returns
    leaves = sample_leaves(tree, probs, problems.start, 1500, seed=77)
    ref = path_types_reference(tree, problems, leaves)
    for name in ("correct", "easy_valid", "hard_valid", "invalid"):
        assert np.array_equal(getattr(counts, name), getattr(ref, name)), name
    assert counts.hard_valid.sum() > 0 and counts.easy_valid.sum() > 0  # both kinds exercised


def test_easy_share_matches_exact_easy_path_probability():
    tree = small_tree()  # the hard edge is 0 -> 1 -> (middle child); everything else easy
    problems = Problems(np.zeros(1, np.int64), (tree.kind == LEAF)[None, :], (tree.kind == LEAF)[None, :],
                        np.zeros((1, 0)), np.arange(1))
    probs = tree.edge_prob[None, :]
    counts = sample_rollouts(tree, probs, problems, 20_000, seed=5)
    p_hard = 0.5 * 0.5
    assert counts.hard_valid[0] / 20_000 == pytest.approx(p_hard, abs=5 * np.sqrt(p_hard * (1 - p_hard) / 20_000))
    assert counts.invalid[0] == 0


# ----------------------------------------------------------------------------------------------
# Random streams: reproducibility, thread invariance, independence, the published algorithms
# ----------------------------------------------------------------------------------------------


def test_same_seed_same_result_different_seed_different_result():
    tree = random_tree(2)
    probs = random_probs(tree, 5, seed=1)
    start = np.zeros(5, dtype=np.int64)
    a = sample_leaves(tree, probs, start, 500, seed=3)
    assert np.array_equal(a, sample_leaves(tree, probs, start, 500, seed=3))
    assert not np.array_equal(a, sample_leaves(tree, probs, start, 500, seed=4))
    # a problem's stream depends on (seed, p) only: the first problems do not change when more are added
    more = np.vstack([probs, random_probs(tree, 3, seed=2)])
    assert np.array_equal(a, sample_leaves(tree, more, np.zeros(8, dtype=np.int64), 500, seed=3)[:5])
    # and, for a given method, the first samples do not change when more samples are drawn
    for method in METHODS:
        more_samples = sample_leaves(tree, probs, start, 500, seed=3, method=method)
        assert np.array_equal(more_samples[:, :200], sample_leaves(tree, probs, start, 200, seed=3, method=method))


def test_different_problems_get_different_streams():
    tree = random_tree(2)
    probs = np.repeat(random_probs(tree, 1, seed=1), 4, axis=0)  # four identical problems
    leaves = sample_leaves(tree, probs, np.zeros(4, dtype=np.int64), 300, seed=0)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(leaves[i], leaves[j])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
@pytest.mark.parametrize("method", METHODS)
def test_result_independent_of_thread_count(method):
    tree = random_tree(6, depth=6)
    problems = random_problems(tree, 37, seed=1, start=np.arange(37) % 3)  # odd count: uneven chunks
    probs = random_probs(tree, 37, seed=2)
    before = numba.get_num_threads()
    one = sample_leaves(tree, probs, problems.start, 400, seed=11, n_threads=1, method=method)
    two = sample_leaves(tree, probs, problems.start, 400, seed=11, n_threads=2, method=method)
    assert numba.get_num_threads() == before  # restored after the call
    assert np.array_equal(one, two)
    c1 = sample_rollouts(tree, probs, problems, 400, seed=11, n_threads=1, method=method)
    c2 = sample_rollouts(tree, probs, problems, 400, seed=11, n_threads=2, method=method)
    for field in ("correct", "easy_valid", "hard_valid", "invalid"):
        assert np.array_equal(getattr(c1, field), getattr(c2, field)), field
    numba.set_num_threads(1)
    try:
        assert np.array_equal(one, sample_leaves(tree, probs, problems.start, 400, seed=11, method=method))
    finally:
        numba.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", *METHODS])
def test_start_at_a_leaf_returns_that_leaf(method):
    tree = small_tree()
    probs = tree.edge_prob[None, :]
    leaf = int(tree.leaves[0])
    assert np.all(sample_leaves(tree, probs, [leaf], 10, seed=0, method=method) == leaf)
    single = tree_from_dict({})  # a one-node tree: the root is the only leaf
    assert np.all(sample_leaves(single, np.ones((2, 1)), [0, 0], 5, seed=0, method=method) == 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, r"n_samples must be an integer in \[1, 9223372036854775807\], got 0"),
        ({"n_samples": 2.5}, "n_samples must be an integer"),
        ({"n_samples": True}, "n_samples must be an integer, got True"),
        ({"seed": -1}, r"seed must be an integer in \[0, 18446744073709551615\], got -1"),
        ({"seed": 2**64}, "seed must be an integer in"),
        ({"seed": 1.0}, "seed must be an integer"),
        ({"n_threads": 0}, r"n_threads must be an integer in \[1, \d+\], got 0"),
        ({"n_threads": 10**6}, r"n_threads must be an integer in \[1, \d+\], got 1000000"),
    ],
)
def test_bad_scalars_raise(kwargs, match):
    tree = small_tree()
    args = {"n_samples": 10, "seed": 0, "n_threads": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        sample_leaves(tree, tree.edge_prob[None, :], [0], **args)
    problems = random_problems(tree, 1, seed=0)
    with pytest.raises(ValueError, match=match):
        sample_rollouts(tree, tree.edge_prob[None, :], problems, **args)


@pytest.mark.parametrize("method", ["auto", *METHODS])
def test_bad_arrays_raise(method):
    tree = small_tree()
    good = tree.edge_prob[None, :]
    sample_leaves = functools.partial(sampled_module.sample_leaves, method=method)
    sample_rollouts = functools.partial(sampled_module.sample_rollouts, method=method)
    with pytest.raises(ValueError, match="probs must have shape"):
        sample_leaves(tree, good[:, :-1], [0], 5, 0)
    with pytest.raises(ValueError, match="probs must have shape"):
        sample_leaves(tree, np.vstack([good, good]), [0], 5, 0)
    with pytest.raises(ValueError, match=r"start must be node ids of the tree \(0..9\), got 99"):
        sample_leaves(tree, good, [99], 5, 0)
    with pytest.raises(ValueError, match="start must be a 1-D array"):
        sample_leaves(tree, good, [[0]], 5, 0)
    bad = good.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"probs\[0, 1\] must be a probability in \[0, 1\], got nan"):
        sample_leaves(tree, bad, [0], 5, 0)
    bad = good.copy()
    bad[0, 1], bad[0, 2] = -0.1, 0.9
    with pytest.raises(ValueError, match=r"probs\[0, 1\] must be a probability in \[0, 1\], got -0.1"):
        sample_leaves(tree, bad, [0], 5, 0)
    bad = good.copy()
    bad[0, 1] = 0.6
    with pytest.raises(ValueError, match=r"probs\[0\] must sum to 1 over the children of node 0, got 1.1"):
        sample_leaves(tree, bad, [0], 5, 0)
    problems = random_problems(tree, 2, seed=0)
    with pytest.raises(ValueError, match="probs must have shape"):
        sample_rollouts(tree, good, problems, 5, 0)
    other = random_tree(1)
    with pytest.raises(ValueError, match="problems are over"):
        sample_rollouts(other, np.tile(other.edge_prob, (2, 1)), problems, 5, 0)
    two = np.vstack([good, good])
    two[1, 1] = np.nan  # the second problem: rejected by the counts kernel, named in the error
    with pytest.raises(ValueError, match=r"probs\[1, 1\] must be a probability in \[0, 1\], got nan"):
        sample_rollouts(tree, two, problems, 5, 0)


def test_requests_beyond_memory_are_rejected_up_front():
    """Huge sizes: leaves that cannot fit in memory (10^9 rollouts of 500 problems:
    4 TB) are refused before anything is allocated, in one line giving the bytes needed."""
    tree = small_tree()
    probs = np.tile(tree.edge_prob, (500, 1))
    with pytest.raises(ValueError, match=r"^n_samples must be small enough for the leaves of 500 problems x "
                                         r"n_samples rollouts to fit in memory \(4,000,000,000,000 bytes = .* GiB "
                                         r"needed, .* GiB here\), got 1000000000$"):
        sample_leaves(tree, probs, np.zeros(500, np.int64), 10**9, seed=0)


@pytest.mark.parametrize("method", METHODS)
def test_counts_drawn_in_blocks_classify_the_same_leaves(method):
    """sample_rollouts draws rollouts in blocks of BLOCK that continue one stream: its counts are
    those of sample_leaves' leaves across block boundaries (n = 2 BLOCK + 3)."""
    tree = random_tree(4, depth=5)
    problems = random_problems(tree, 3, seed=8, start=[0, 1, 0])
    probs = random_probs(tree, 3, seed=9)
    n = 2 * BLOCK + 3
    counts = sample_rollouts(tree, probs, problems, n, seed=77, method=method)
    ref = path_types_reference(tree, problems, sample_leaves(tree, probs, problems.start, n, seed=77, method=method))
    for name in ("correct", "easy_valid", "hard_valid", "invalid"):
        assert np.array_equal(getattr(counts, name), getattr(ref, name)), name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_counts_memory_does_not_grow_with_rollouts():
    """A regression check (``coverage --samples 1000000000`` once failed with a SystemError from
    the counts kernel, which held every rollout's leaf): 10^8 rollouts run under an
    address-space limit 300 MB above the process's size, which the former 800 MB per-thread
    scratch exceeded."""
    code = textwrap.dedent("""
        import resource
        import numpy as np
        from markovfork.model.problems import Problems
        from markovfork.engines.sampled import sample_rollouts
        from markovfork.model.tree import LEAF, tree_from_dict

        tree = tree_from_dict({"children": [{"prob": 0.5, "children": [{"prob": 0.3}, {"prob": 0.7, "easy": False}]},
                                            {"prob": 0.5}]})
        leaf = (tree.kind == LEAF)[None, :]
        problems = Problems(np.zeros(1, np.int64), leaf, leaf, np.zeros((1, 0)), np.arange(1))
        probs = tree.edge_prob[None, :]
        sample_rollouts(tree, probs, problems, 1000, seed=0, n_threads=1)  # load the kernels first
        with open("/proc/self/status") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + 300 * 2**20, resource.RLIM_INFINITY))
        counts = sample_rollouts(tree, probs, problems, 10**8, seed=0, n_threads=1)
        assert counts.easy_valid[0] + counts.hard_valid[0] == 10**8
        assert abs(counts.hard_valid[0] / 10**8 - 0.35) < 1e-3
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_problem_masks_must_be_booleans_of_the_problems_shape():
    """correct / valid reach the counts kernel unconverted only as (P, N) booleans."""
    tree = small_tree()
    problems = random_problems(tree, 2, seed=0)
    bad = np.where(problems.correct, 2, 0)  # not booleans: 2 would have been read as True

    class Twisted:  # a problems object whose arrays are not what Problems guarantees
        start, valid, correct = problems.start, problems.valid, bad

        def check_tree(self, tree):
            pass

    with pytest.raises(ValueError, match="problems.correct must be booleans"):
        sample_rollouts(tree, np.tile(tree.edge_prob, (2, 1)), Twisted(), 5, 0)
    Twisted.correct = problems.correct[:, :-1]
    with pytest.raises(ValueError, match=r"problems.correct must have shape \(2, 10\), got \(2, 9\)"):
        sample_rollouts(tree, np.tile(tree.edge_prob, (2, 1)), Twisted(), 5, 0)
