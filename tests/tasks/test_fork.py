"""Fork trees and their problems: node-kind counts, fork placement against a brute-force
(depth, path) ordering, bit-identical output, linear memory on deep dead-end trees, problem
walks, and bad input."""

import hashlib
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from markovfork.tasks import fork_problems, fork_tree
from markovfork.tasks import fork as fork_module
from markovfork.tasks._common import TREE_TAG
from markovfork.plumbing.seeds import child_rngs
from markovfork.model.tree import DECIPHERABLE, FORK, LEAF

TREE_ARRAYS = ("child_start", "parent", "depth", "kind", "edge_prob", "edge_easy", "label", "valid_branches")


def _digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]

# ---------------------------------------------------------------------------- fork trees


def _internal(tree):
    return np.flatnonzero(tree.kind != LEAF)


@pytest.mark.parametrize("placement", ["top", "bottom", "random"])
def test_full_layout_counts_and_placement(placement):
    depth, b, forks = 4, 3, 7
    tree = fork_tree(depth, b, forks, placement=placement, seed=1)
    assert tree.n_nodes == (b ** (depth + 1) - 1) // (b - 1)
    internal = _internal(tree)
    assert internal.size == (b**depth - 1) // (b - 1)
    assert tree.forks.size == forks
    assert np.sum(tree.kind == DECIPHERABLE) == internal.size - forks
    assert np.all(tree.depth[tree.leaves] == depth)
    if placement == "top":
        assert tree.forks.tolist() == internal[:forks].tolist()
    elif placement == "bottom":
        assert tree.forks.tolist() == internal[-forks:].tolist()
    else:
        again = fork_tree(depth, b, forks, placement="random", seed=1)
        assert np.array_equal(again.forks, tree.forks)
        others = {tuple(fork_tree(depth, b, forks, placement="random", seed=s).forks) for s in range(2, 7)}
        assert len(others) > 1


@pytest.mark.parametrize("placement", ["top", "bottom", "random"])
def test_dead_end_layout(placement):
    depth, b, forks = 6, 3, 4
    tree = fork_tree(depth, b, forks, placement=placement, dead_ends=True, easy_prob=0.7, seed=2)
    assert tree.forks.size == forks
    internal_child = tree.kind != LEAF
    for u in _internal(tree):
        kids = tree.children(u)
        n_internal_kids = int(internal_child[kids].sum())
        if tree.depth[u] == depth - 1:
            assert n_internal_kids == 0
        elif tree.kind[u] == FORK:
            assert n_internal_kids == b
        else:
            assert n_internal_kids == 1
            # the continuing child is the easy step
            assert tree.edge_easy[kids].tolist() == internal_child[kids].tolist()
            assert tree.edge_prob[kids[internal_child[kids]]][0] == pytest.approx(0.7)
    assert tree.depth.max() == depth
    spine = fork_tree(depth, b, 0, dead_ends=True)
    assert spine.n_nodes == b * depth + 1
    if placement == "top":
        assert tree.forks.tolist() == _internal(tree)[:forks].tolist()
    if placement == "bottom":
        assert tree.forks.tolist() == _internal(tree)[-forks:].tolist()


def test_dead_end_all_forks_is_the_full_tree():
    full = fork_tree(3, 2, 7)
    dead = fork_tree(3, 2, 7, dead_ends=True)
    assert dead.n_nodes == full.n_nodes and dead.forks.size == 7


def test_easy_prob_rows():
    tree = fork_tree(3, 4, 2, easy_prob=0.55, seed=4)
    for u in _internal(tree):
        kids = tree.children(u)
        assert tree.edge_easy[kids].sum() == 1
        np.testing.assert_allclose(np.sort(tree.edge_prob[kids]), [0.15, 0.15, 0.15, 0.55])
    uniform = fork_tree(3, 4, 2)
    assert np.all(uniform.edge_easy) and np.allclose(uniform.edge_prob[1:], 0.25)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(depth=3, branching=2, forks=8), "forks=8 exceeds the 7 internal nodes"),
        (dict(depth=0, branching=2, forks=0), "depth must be an integer >= 1, got 0"),
        (dict(depth=3, branching=1, forks=0), "branching must be an integer >= 2, got 1"),
        (dict(depth=3, branching=2, forks=-1), "forks must be an integer >= 0, got -1"),
        (dict(depth=3, branching=2, forks=1, placement="middle"), "placement must be one of .* got 'middle'"),
        (dict(depth=3, branching=2, forks=1, valid_branches=3), "valid_branches must be <= branching=2, got 3"),
        (dict(depth=3, branching=4, forks=1, easy_prob=0.2), r"easy_prob must be in \[1/branching, 1\)"),
        (dict(depth=3, branching=2, forks=1, easy_prob=1.0), "got 1.0"),
        (dict(depth=30, branching=2, forks=0), "exceeds max_nodes=2000000"),
        (dict(depth=8, branching=2, forks=100, dead_ends=True, max_nodes=300), "exceed max_nodes=300"),
        (dict(depth=3, branching=2, forks=1, seed=-3), r"seed must be an integer in \[0, .*\], got -3"),
        (dict(depth=3, branching=2, forks=1, seed=True), "seed must be an integer, got True"),
        (dict(depth=3.0, branching=2, forks=1), "depth must be an integer, got 3.0"),
        (dict(depth=3, branching=2, forks=1, easy_prob="0.6"), "easy_prob must be a number, got '0.6'"),
        (dict(depth=3, branching=2, forks=1, dead_ends="no"), "dead_ends must be a boolean, got 'no'"),
    ],
)
def test_fork_tree_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fork_tree(**kwargs)


# Outputs of the generators before the split into a package and the linear-memory dead-end
# builder (hashes of the arrays' bytes): the rewrite changed no tree and no problem set.
PINNED = [
    (dict(depth=6, branching=3, forks=9, placement="random", valid_branches=2, easy_prob=0.6, seed=11, dead_ends=True),
     "11047b0b4b3a9e4f", "5c6d6752d039306c"),
    (dict(depth=9, branching=2, forks=40, placement="bottom", easy_prob=0.8, seed=3, dead_ends=True),
     "60146562f4cbb774", "44adbf7ee07a4582"),
    (dict(depth=9, branching=3, forks=25, placement="top", easy_prob=0.5, seed=4, dead_ends=True),
     "683a075ecf647111", "13bc86388732347a"),
    (dict(depth=5, branching=4, forks=30, placement="random", easy_prob=0.4, seed=2), "c940d9fcd0dce48a", "be29a57b5d18aa8f"),
]


@pytest.mark.parametrize("kwargs, tree_hash, problems_hash", PINNED)
def test_outputs_bit_identical_to_the_pinned_ones(kwargs, tree_hash, problems_hash):
    tree = fork_tree(**kwargs)
    problems = fork_problems(tree, 20, feature_dim=3, seed=kwargs["seed"], feature_scale=0.5)
    assert _digest(*(getattr(tree, name) for name in TREE_ARRAYS)) == tree_hash
    assert _digest(problems.correct, problems.features) == problems_hash


def _brute_force_fork_tree(depth, branching, forks, placement, seed, dead_ends, easy_prob):
    """The placement rule by brute force: every fork goes to the decipherable internal node with
    the smallest ("top") or largest ("bottom") key (depth, child positions from the root), keys
    recomputed from scratch over the whole current tree before each fork."""
    rng_shape, _, rng_easy = child_rngs(3, seed, TREE_TAG)
    builder = fork_module._ForkTreeBuilder(depth, branching, dead_ends, rng_shape, 10**6)

    def key(u, parent):
        positions = []
        while u:
            positions.append(builder.kids[parent[u]].index(u))
            u = parent[u]
        return len(positions), tuple(reversed(positions))

    for _ in range(forks):
        parent = {c: w for w, kids in enumerate(builder.kids) for c in kids}
        candidates = [u for u, kids in enumerate(builder.kids) if kids and not builder.is_fork[u]]
        pick = min if placement == "top" else max
        builder.make_fork(pick(candidates, key=lambda u: key(u, parent)))
    return fork_module._assemble(builder, 1, easy_prob, rng_easy)


@given(
    depth=st.integers(1, 7),
    branching=st.integers(2, 3),
    placement=st.sampled_from(["top", "bottom"]),
    dead_ends=st.booleans(),
    easy_prob=st.sampled_from([None, 0.75]),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
def test_placement_equals_brute_force_ordering(depth, branching, placement, dead_ends, easy_prob, seed, data):
    forks = data.draw(st.integers(0, min(40, (branching**depth - 1) // (branching - 1))))
    got = fork_tree(depth, branching, forks, placement=placement, easy_prob=easy_prob, seed=seed, dead_ends=dead_ends)
    ref = _brute_force_fork_tree(depth, branching, forks, placement, seed, dead_ends, easy_prob)
    for name in TREE_ARRAYS:
        assert np.array_equal(getattr(got, name), getattr(ref, name)), name


def test_deep_dead_end_tree_memory_is_linear():
    """A node no longer stores its path: a 4000-step spine used 130 MB (quadratic), now ~2 MB."""
    tracemalloc.start()
    try:
        tree = fork_tree(4000, 2, 3, placement="bottom", dead_ends=True, easy_prob=0.9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the spine (2 * 4000 + 1 nodes); the fork at depth 3998 turns its dead end into a step (+2)
    assert tree.n_nodes == 2 * 4000 + 1 + 2 and tree.depth[tree.forks].tolist() == [3998, 3999, 3999]
    assert peak < 16e6


def test_depth_20000_dead_ends_in_seconds():
    """`markovfork tree --depth 20000 --dead-ends` took 35 s and 6.4 GB."""
    start = time.perf_counter()
    spine = fork_tree(20000, 2, 0, dead_ends=True)
    forked = fork_tree(20000, 2, 1, dead_ends=True)
    assert time.perf_counter() - start < 20
    assert spine.n_nodes == 40001 and spine.depth.max() == 20000
    assert forked.n_nodes == 2 * 2 * 19999 + 3 and forked.forks.tolist() == [0]


# ---------------------------------------------------------------------------- fork problems


def test_fork_problems_single_correct_leaf_on_dead_end_spine():
    tree = fork_tree(6, 3, 1, placement="top", dead_ends=True, seed=0)  # root fork, 3 spines
    problems = fork_problems(tree, 3000, feature_dim=0, seed=1)
    assert np.all(problems.correct.sum(axis=1) == 1)
    assert np.array_equal(problems.correct, problems.valid)
    leaf = problems.correct.argmax(axis=1)
    # the correct leaf ends a spine: every step below the root fork is the continuing child
    for v in np.unique(leaf):
        path = tree.path_to(int(v))
        assert tree.depth[v] == 6
        assert all(tree.kind[u] != LEAF for u in path[:-1])
    # the root fork's branch is uniform over its 3 children (chi-square at a fixed seed)
    branch = np.array([tree.path_to(int(v))[1] for v in leaf])
    counts = np.bincount(branch - 1, minlength=3)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_fork_problems_valid_branches_and_features():
    tree = fork_tree(3, 3, 1, placement="top", valid_branches=2, seed=0)  # root fork, full layout
    problems = fork_problems(tree, 500, feature_dim=16, seed=3, feature_scale=0.5)
    assert np.all(problems.correct.sum(axis=1) == 2)
    branches = np.array([sorted({int(tree.path_to(int(v))[1]) for v in np.flatnonzero(row)}) for row in problems.correct])
    assert np.all(branches[:, 0] != branches[:, 1])
    assert problems.features.shape == (500, 16)
    assert problems.features.std() == pytest.approx(0.5, rel=0.05)
    same_walks = fork_problems(tree, 500, feature_dim=0, seed=3)
    assert np.array_equal(same_walks.correct, problems.correct)
    again = fork_problems(tree, 500, feature_dim=16, seed=3, feature_scale=0.5)
    assert np.array_equal(again.features, problems.features)


def test_fork_problems_decipherable_uniform_among_internal_children():
    tree = fork_tree(2, 4, 0, seed=0)  # root decipherable with 4 internal children
    problems = fork_problems(tree, 4000, seed=2)
    first = np.array([tree.path_to(int(v))[1] for v in problems.correct.argmax(axis=1)])
    assert stats.chisquare(np.bincount(first - 1, minlength=4)).pvalue > 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_problems=0), "n_problems must be an integer >= 1, got 0"),
        (dict(n_problems=3, feature_dim=-2), "feature_dim must be an integer >= 0, got -2"),
        (dict(n_problems=3, feature_scale=float("nan")), r"feature_scale must be a finite number in \[0, inf\), got nan"),
        (dict(n_problems=3, seed=-1), r"seed must be an integer in \[0, 18446744073709551615\], got -1"),
        (dict(n_problems=2.0), "n_problems must be an integer, got 2.0"),
    ],
)
def test_fork_problems_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fork_problems(fork_tree(2, 2, 1), **kwargs)
