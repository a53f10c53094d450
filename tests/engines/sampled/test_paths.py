"""The path sampler (markovfork.engines.sampled.paths): inverse CDF over the leaves against NumPy, the
guide table against searchsorted, the rounding guard, and buffers checked before any write."""

import numpy as np
import pytest

from markovfork.engines.exact import reach_probability
from markovfork.model.policy import Decoding
from markovfork.engines.sampled import sample_leaves, stream_uniforms
from markovfork.engines.sampled.kernel_tree import kernel_tree
from markovfork.engines.sampled.paths import PathTables, guide_shift, path_buffers, path_pick, path_setup
from markovfork.model.tree import tree_from_dict
from engines.sampled.cases import random_probs, random_tree


def four_leaves():
    return tree_from_dict({"children": [{"prob": 0.25}, {"prob": 0.25}, {"prob": 0.5}, {"prob": 0.0}]})


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


@pytest.mark.parametrize("top_k", [0, 1, 2])
def test_guide_counts_the_thresholds_below_each_bucket(top_k):
    """guide[j] = #{i: thresholds[i] <= j 2^shift} exactly, from any start (zero-width runs:
    leaves off the start's subtree, top-k zeros), including after the rounding guard."""
    tree = random_tree(11, depth=6)
    probs = random_probs(tree, 4, seed=5, decoding=Decoding(top_k=top_k) if top_k else Decoding())
    kt = kernel_tree(tree)
    n_leaves = kt.leaves.size
    for shift in (kt.shift, kt.shift - 2, 50):  # the default bucket count, 4x more, 8 buckets
        tables = path_buffers(tree.n_nodes, n_leaves, shift)
        m = tables.guide.size - 2
        for p, s in enumerate([0, 1, 2, int(tree.leaves[0])]):
            assert path_setup(kt._replace(shift=shift), probs[p], s, 1e-6, tables)
            bounds = np.arange(m, dtype=np.int64) << shift
            expect = np.searchsorted(tables.thresholds[:n_leaves], bounds, side="right")
            assert np.array_equal(tables.guide[:m], expect), (shift, s)


def test_path_guard_takes_last_positive_leaf():
    """A uniform beyond the rounded total of the leaf widths (a row summing to 1 - 9e-7, within
    tolerance) takes the last leaf of positive width, never the zero-width leaf after it."""
    tree = four_leaves()
    short = np.array([1.0, 0.25, 0.25 - 9e-7, 0.5, 0.0])
    kt = kernel_tree(tree)
    leaves = kt.leaves
    tables = path_buffers(tree.n_nodes, leaves.size, kt.shift)
    assert path_setup(kt, short, 0, 1e-6, tables)
    ks = [int(0.1 * 2**53), int(0.3 * 2**53), int((1 - 5e-7) * 2**53), 2**53 - 1]  # the last two: past the total
    assert [int(leaves[path_pick(tables.thresholds, tables.guide, kt.shift, k)]) for k in ks] == [1, 2, 3, 3]
    # a guide fine enough (2^21 buckets) that the shortfall spans buckets: those buckets must
    # start the search at the last positive leaf, not past it
    fine = path_buffers(tree.n_nodes, leaves.size, 32)
    assert path_setup(kt._replace(shift=32), short, 0, 1e-6, fine)
    m = fine.guide.size - 2
    expect = np.searchsorted(fine.thresholds[:leaves.size], np.arange(m, dtype=np.int64) << 32, side="right")
    assert np.array_equal(fine.guide[:m], expect)
    assert int(leaves[path_pick(fine.thresholds, fine.guide, 32, 2**53 - 1)]) == 3
    bad = np.array([1.0, 0.25, np.nan, 0.5, 0.0])  # rejected before any table is built
    assert not path_setup(kt, bad, 0, 1e-6, tables)


def test_path_guard_with_a_threshold_past_two_to_53():
    """A row summing to 1 + 5e-7 (within tolerance) whose last positive leaf is tiny: a threshold
    before the guard exceeds 2^53, beyond every bucket, and is never a search start."""
    tree = tree_from_dict({"children": [{"prob": 0.5}, {"prob": 0.5 - 1e-8}, {"prob": 1e-8}]})
    over = np.array([1.0, 0.5, 0.5 + 5e-7, 1e-8])
    kt = kernel_tree(tree)
    tables = path_buffers(tree.n_nodes, kt.leaves.size, kt.shift)
    assert path_setup(kt, over, 0, 1e-6, tables)
    thresholds, guide = tables.thresholds, tables.guide
    assert thresholds[1] > 2**53
    m = guide.size - 2
    assert list(guide[:m]) == [int(np.sum(thresholds[:2] <= (j << kt.shift))) for j in range(m)]
    picks = [int(kt.leaves[path_pick(thresholds, guide, kt.shift, k)]) for k in (0, 2**52 - 1, 2**52, 2**53 - 1)]
    assert picks == [1, 1, 2, 2]


def test_path_setup_rejects_buffers_of_another_tree_before_writing():
    """Tables sized for a smaller tree, or a guide of another bucket count, are rejected before
    anything is written (formerly: mass written out of bounds)."""
    tree = four_leaves()
    kt = kernel_tree(tree)
    row = tree.edge_prob
    small = path_buffers(tree.n_nodes - 1, kt.leaves.size - 1, kt.shift)
    wrong_guide = path_buffers(tree.n_nodes, kt.leaves.size, kt.shift - 1)
    for tables in (small, PathTables(small.mass, *wrong_guide[1:]), PathTables(wrong_guide.mass, small.thresholds,
                                                                                 wrong_guide.guide), wrong_guide):
        before = [a.copy() for a in tables]
        with pytest.raises(ValueError, match="path_setup: tables or row do not match the tree"):
            path_setup(kt, row, 0, 1e-6, tables)
        for a, b in zip(tables, before):
            assert np.array_equal(a, b, equal_nan=True)
    good = path_buffers(tree.n_nodes, kt.leaves.size, kt.shift)
    with pytest.raises(ValueError, match="path_setup: tables or row do not match the tree"):
        path_setup(kt, row[:-1], 0, 1e-6, good)  # a row of the wrong length
    with pytest.raises(ValueError, match="path_setup: start is not a node of the tree"):
        path_setup(kt, row, tree.n_nodes, 1e-6, good)
    assert path_setup(kt, row, 0, 1e-6, good)


@pytest.mark.parametrize("n_leaves, buckets", [(1, 4), (2, 4), (3, 8), (512, 1024), (513, 1024), (4096, 1024),
                                               (4097, 2048), (8192, 2048), (8193, 4096)])
def test_guide_bucket_count(n_leaves, buckets):
    """2L to 4L buckets up to 512 leaves, 1024 up to 4096, L/4 to L/2 above."""
    assert 2 ** (53 - guide_shift(n_leaves)) == buckets
