"""Sampled engine against exact references: leaf frequencies vs reach_probability (chi-square),
correct counts vs success_probability, the RNG against the published xoshiro256** / splitmix64
algorithms, reproducibility and thread-count invariance, and input validation."""

import functools

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import markovfork.sampled as sampled_module
from markovfork.exact import reach_probability, success_probability
from markovfork.policy import Decoding, transition_probs
from markovfork.problems import Problems
from markovfork.sampled import (
    RolloutCounts,
    path_types_reference,
    sample_leaves,
    sample_leaves_reference,
    sample_rollouts,
    stream_states,
    stream_uniforms,
)
from markovfork.tree import FORK, LEAF, tree_from_children, tree_from_dict
from strategies import build_case, random_trees  # random small trees with per-problem probabilities

MASK64 = 2**64 - 1


# ----------------------------------------------------------------------------------------------
# Fixtures: a hand-written tree with uneven depth and branching, and a random wider tree
# ----------------------------------------------------------------------------------------------


def small_tree():
    """Leaves at depths 1..3, branching 1..3, one hard edge, a zero-probability-friendly shape."""
    return tree_from_dict(
        {
            "kind": "fork",
            "children": [
                {"prob": 0.5, "children": [{"prob": 0.2}, {"prob": 0.5, "easy": False}, {"prob": 0.3}]},
                {"prob": 0.3, "children": [{"prob": 1.0, "children": [{"prob": 0.6}, {"prob": 0.4}]}]},
                {"prob": 0.2},
            ],
        }
    )


def random_tree(seed, depth=5, max_children=4, p_leaf=0.15):
    """A random tree; nodes below the root stop early with probability p_leaf."""
    rng = np.random.default_rng(seed)
    children, kind, prob, easy = [[]], [0], [1.0], [True]
    front = [0]
    for d in range(depth):
        new_front = []
        for u in front:
            if d > 0 and rng.random() < p_leaf:
                continue
            k = int(rng.integers(1, max_children + 1))
            w = rng.dirichlet(np.ones(k))
            for j in range(k):
                children.append([])
                kind.append(0)
                prob.append(float(w[j]))
                easy.append(bool(w[j] > 0.3))
                children[u].append(len(children) - 1)
                new_front.append(len(children) - 1)
        front = new_front
    kind = [LEAF if not c else (FORK if i == 0 else 0) for i, c in enumerate(children)]
    tree, _ = tree_from_children(children, kind, prob, easy)
    return tree


def random_probs(tree, n_problems, seed, scale=1.0, decoding=Decoding()):
    rng = np.random.default_rng(seed)
    logits = tree.edge_logit[None, :] + scale * rng.normal(size=(n_problems, tree.n_nodes))
    return transition_probs(tree, logits, decoding)


def random_problems(tree, n_problems, seed, start=None):
    rng = np.random.default_rng(seed)
    leaf = tree.kind == LEAF
    valid = leaf[None, :] & (rng.random((n_problems, tree.n_nodes)) < 0.7)
    correct = valid & (rng.random((n_problems, tree.n_nodes)) < 0.5)
    start = np.zeros(n_problems, dtype=np.int64) if start is None else np.asarray(start, dtype=np.int64)
    return Problems(start, correct, valid, np.zeros((n_problems, 0)), np.arange(n_problems))


def chi_square_pvalue(counts, expected_probs, min_expected=5.0):
    """Goodness of fit, pooling the cells with expected count < min_expected into one cell."""
    n = counts.sum()
    expected = expected_probs * n
    big = expected >= min_expected
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] < min_expected:  # pooled cell still small: fold it into the smallest big cell
        i = np.argmin(exp[:-1])
        obs[i] += obs[-1]
        exp[i] += exp[-1]
        obs, exp = obs[:-1], exp[:-1]
    exp = exp * (obs.sum() / exp.sum())  # rescale away rounding in the exact probabilities
    return stats.chisquare(obs, exp).pvalue


TREES = {"small": small_tree, "random5": lambda: random_tree(3), "random6": lambda: random_tree(13, depth=6)}


# ----------------------------------------------------------------------------------------------
# Distribution: chi-square against reach_probability, and a check that the test has power
# ----------------------------------------------------------------------------------------------


METHODS = ["walk", "path"]


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


def _walk_reference(tree, probs_row, start, uniforms, n_samples):
    """Plain-Python walks consuming ``uniforms`` one per step, rollouts in order (inverse CDF)."""
    leaves, i = [], 0
    for _ in range(n_samples):
        v = start
        while tree.n_children[v]:
            kids = np.arange(tree.child_start[v], tree.child_start[v + 1])
            v = int(kids[np.searchsorted(np.cumsum(probs_row[kids]), uniforms[i], side="right")])
            i += 1
        leaves.append(v)
    return np.array(leaves)


def test_walks_consume_one_uniform_per_step_in_order():
    tree = random_tree(5, depth=6)
    probs = random_probs(tree, 3, seed=3)
    start = np.array([0, 1, 0])
    sampled = sample_leaves(tree, probs, start, 300, seed=9, method="walk")
    uniforms = stream_uniforms(9, 3, 300 * int(tree.depth.max()))
    for p in range(3):
        assert np.array_equal(sampled[p], _walk_reference(tree, probs[p], start[p], uniforms[p], 300))


def test_path_rollout_i_takes_the_leaf_holding_uniform_i():
    """Path sampling is the inverse CDF of the leaf distribution over leaves in id order, with
    the stream's i-th uniform for rollout i (an independent NumPy reference: reach_probability,
    float cumsum, searchsorted)."""
    tree = random_tree(5, depth=6)
    probs = random_probs(tree, 3, seed=3, decoding=Decoding(top_k=2))  # zero-probability steps too
    start = np.array([0, 1, 0])
    sampled = sample_leaves(tree, probs, start, 3000, seed=9, method="path")
    reach = reach_probability(tree, probs, start)[:, tree.leaves]
    uniforms = stream_uniforms(9, 3, 3000)
    for p in range(3):
        expect = tree.leaves[np.searchsorted(np.cumsum(reach[p]), uniforms[p], side="right")]
        assert np.array_equal(sampled[p], expect)


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
        assert np.array_equal(walks[p], _walk_reference(tree, probs[p], start[p], uniforms[p], n))


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


def test_walk_guard_takes_last_positive_child():
    """A uniform at or beyond the rounded row sum (here a row summing to 0.5, which validation
    would reject) takes the last child with positive probability, never the zero one after it."""
    from markovfork.sampled import _step

    tree = tree_from_dict({"children": [{"prob": 0.25}, {"prob": 0.25}, {"prob": 0.5}, {"prob": 0.0}]})
    half = np.array([1.0, 0.25, 0.25, 0.0, 0.0])
    assert [_step(tree.child_start, half, 0, u) for u in (0.1, 0.3, 0.5, 0.75, 1 - 2**-53)] == [1, 2, 2, 2, 2]


@pytest.mark.parametrize("top_k", [0, 1, 2])
def test_guide_counts_the_thresholds_below_each_bucket(top_k):
    """guide[j] = #{i: thresholds[i] <= j 2^shift} exactly, from any start (zero-width runs:
    leaves off the start's subtree, top-k zeros), including after the rounding guard."""
    from markovfork.sampled import _kernel_tree, _path_buffers, _path_setup

    tree = random_tree(11, depth=6)
    probs = random_probs(tree, 4, seed=5, decoding=Decoding(top_k=top_k) if top_k else Decoding())
    _, parent, last_child, leaves, _, shift = _kernel_tree(tree)
    for shift_used in (shift, shift - 2, 50):  # the default bucket count, 4x more, 8 buckets
        mass, thresholds, guide = _path_buffers(tree.n_nodes, leaves.size, shift_used)
        m = guide.size - 2
        for p, s in enumerate([0, 1, 2, int(tree.leaves[0])]):
            assert _path_setup(parent, last_child, leaves, probs[p], s, 1e-6, mass, thresholds, guide, shift_used)
            bounds = np.arange(m, dtype=np.int64) << shift_used
            expect = np.searchsorted(thresholds[:leaves.size], bounds, side="right")
            assert np.array_equal(guide[:m], expect), (shift_used, s)


def test_path_guard_takes_last_positive_leaf():
    """A uniform beyond the rounded total of the leaf widths (a row summing to 1 - 9e-7, within
    tolerance) takes the last leaf of positive width, never the zero-width leaf after it."""
    from markovfork.sampled import _kernel_tree, _path_buffers, _path_pick, _path_setup

    tree = tree_from_dict({"children": [{"prob": 0.25}, {"prob": 0.25}, {"prob": 0.5}, {"prob": 0.0}]})
    short = np.array([1.0, 0.25, 0.25 - 9e-7, 0.5, 0.0])
    _, parent, last_child, leaves, _, shift = _kernel_tree(tree)
    mass, thresholds, guide = _path_buffers(tree.n_nodes, leaves.size, shift)
    assert _path_setup(parent, last_child, leaves, short, 0, 1e-6, mass, thresholds, guide, shift)
    ks = [int(0.1 * 2**53), int(0.3 * 2**53), int((1 - 5e-7) * 2**53), 2**53 - 1]  # the last two: past the total
    assert [int(leaves[_path_pick(thresholds, guide, shift, k)]) for k in ks] == [1, 2, 3, 3]
    # a guide fine enough (2^21 buckets) that the shortfall spans buckets: those buckets must
    # start the search at the last positive leaf, not past it
    mass, thresholds, guide = _path_buffers(tree.n_nodes, leaves.size, 32)
    assert _path_setup(parent, last_child, leaves, short, 0, 1e-6, mass, thresholds, guide, 32)
    m = guide.size - 2
    expect = np.searchsorted(thresholds[:leaves.size], np.arange(m, dtype=np.int64) << 32, side="right")
    assert np.array_equal(guide[:m], expect)
    assert int(leaves[_path_pick(thresholds, guide, 32, 2**53 - 1)]) == 3
    # a row summing to 1 + 5e-7 (within tolerance) whose last positive leaf is tiny: a threshold
    # before the guard exceeds 2^53, beyond every bucket
    tree3 = tree_from_dict({"children": [{"prob": 0.5}, {"prob": 0.5 - 1e-8}, {"prob": 1e-8}]})
    over = np.array([1.0, 0.5, 0.5 + 5e-7, 1e-8])
    _, parent3, last3, leaves3, _, shift3 = _kernel_tree(tree3)
    mass, thresholds, guide = _path_buffers(tree3.n_nodes, leaves3.size, shift3)
    assert _path_setup(parent3, last3, leaves3, over, 0, 1e-6, mass, thresholds, guide, shift3)
    assert thresholds[1] > 2**53
    m = guide.size - 2
    expect = [int(np.sum(thresholds[:2] <= (j << shift3))) for j in range(m)]
    assert list(guide[:m]) == expect
    assert [int(leaves3[_path_pick(thresholds, guide, shift3, k)]) for k in (0, 2**52 - 1, 2**52, 2**53 - 1)] == [1, 1, 2, 2]
    bad = np.array([1.0, 0.25, np.nan, 0.5, 0.0])  # rejected before any table is built
    assert not _path_setup(parent, last_child, leaves, bad, 0, 1e-6, mass, thresholds, guide, shift)


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


def _splitmix_mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _xoshiro256ss(state, n):
    """Plain-Python xoshiro256** (Blackman & Vigna reference C code)."""
    s = list(state)
    rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & MASK64  # noqa: E731
    out = []
    for _ in range(n):
        out.append((rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64)
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


def test_streams_follow_the_documented_construction():
    seed = 987654321
    states = stream_states(seed, 3)
    for p in range(3):
        x = _splitmix_mix((_splitmix_mix(seed) + p) & MASK64)
        expect = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            expect.append(_splitmix_mix(x))
        assert [int(v) for v in states[p]] == expect
        draws = _xoshiro256ss(expect, 5)
        assert np.array_equal(stream_uniforms(seed, 3, 5)[p], np.array([d >> 11 for d in draws]) * 2.0**-53)
    assert _xoshiro256ss([1, 2, 3, 4], 2) == [11520, 0]  # published first outputs for state 1,2,3,4


def test_uniforms_are_crudely_uniform_and_streams_uncorrelated():
    u = stream_uniforms(42, 8, 50_000)
    assert np.all((u >= 0) & (u < 1))
    for row in u:
        assert stats.kstest(row, "uniform").pvalue > 1e-3
    corr = np.corrcoef(u)[np.triu_indices(8, 1)]
    assert np.max(np.abs(corr)) < 5 / np.sqrt(50_000)
    # consecutive draws within a stream are uncorrelated too
    assert abs(np.corrcoef(u[0, :-1], u[0, 1:])[0, 1]) < 5 / np.sqrt(50_000)


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
        ({"n_samples": 0}, "n_samples must be >= 1, got 0"),
        ({"n_samples": 2.5}, "n_samples must be an integer"),
        ({"n_samples": True}, "n_samples must be an integer"),
        ({"seed": -1}, "seed must be in"),
        ({"seed": 2**64}, "seed must be in"),
        ({"seed": 1.0}, "seed must be an integer"),
        ({"n_threads": 0}, "n_threads must be in"),
        ({"n_threads": 10**6}, "n_threads must be in"),
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
    with pytest.raises(ValueError, match="start node 99"):
        sample_leaves(tree, good, [99], 5, 0)
    with pytest.raises(ValueError, match="start must be a 1-D array"):
        sample_leaves(tree, good, [[0]], 5, 0)
    bad = good.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"probs\[0, 1\] is not finite"):
        sample_leaves(tree, bad, [0], 5, 0)
    bad = good.copy()
    bad[0, 1], bad[0, 2] = -0.1, 0.9
    with pytest.raises(ValueError, match="negative"):
        sample_leaves(tree, bad, [0], 5, 0)
    bad = good.copy()
    bad[0, 1] = 0.6
    with pytest.raises(ValueError, match="out of node 0 sum to 1.1"):
        sample_leaves(tree, bad, [0], 5, 0)
    problems = random_problems(tree, 2, seed=0)
    with pytest.raises(ValueError, match="probs must have shape"):
        sample_rollouts(tree, good, problems, 5, 0)
    other = random_tree(1)
    with pytest.raises(ValueError, match="problems are over"):
        sample_rollouts(other, np.tile(other.edge_prob, (2, 1)), problems, 5, 0)
    two = np.vstack([good, good])
    two[1, 1] = np.nan  # the second problem: rejected by the counts kernel, named in the error
    with pytest.raises(ValueError, match=r"probs\[1, 1\] is not finite"):
        sample_rollouts(tree, two, problems, 5, 0)
