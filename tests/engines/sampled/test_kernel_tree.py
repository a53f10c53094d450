"""The kernels' view of a tree (markovfork.engines.sampled.kernel_tree): derived arrays against plain
definitions, and a per-tree cache that never serves values of arrays that have changed."""

import numpy as np
import pytest

from markovfork.engines.exact import path_type_mass
from markovfork.model.problems import Problems
from markovfork.engines.sampled import sample_rollouts
from markovfork.engines.sampled.kernel_tree import _frozen, hard_edges, kernel_tree
from markovfork.model.tree import LEAF
from engines.sampled.cases import random_tree, small_tree


def make_writeable(arr) -> bool:
    """Make arr writeable where NumPy allows it (a caller can always try); False if it refuses."""
    if not arr.flags.writeable:
        try:
            arr.flags.writeable = True
        except ValueError:
            return False
    return True


def test_derived_arrays_match_their_definitions():
    tree = random_tree(7, depth=6)
    kt = kernel_tree(tree)
    assert np.array_equal(kt.leaves, tree.leaves) and kt.leaves.dtype == np.uint32
    assert np.array_equal(kt.parent[1:], tree.parent[1:]) and kt.parent.dtype == np.uint32
    last = np.zeros(tree.n_nodes, bool)
    for v in range(tree.n_nodes):
        if tree.n_children[v]:
            last[tree.child_start[v + 1] - 1] = True
    assert np.array_equal(kt.last_child, last)
    height = [max((int(tree.depth[leaf] - tree.depth[v]) for leaf in tree.leaves
                   if v in tree.path_to(int(leaf))), default=0) for v in range(tree.n_nodes)]
    assert np.array_equal(kt.height, height)
    hard = [int(np.sum(~tree.edge_easy[tree.path_to(v)[1:]])) for v in range(tree.n_nodes)]
    assert np.array_equal(hard_edges(tree), hard)


def test_counts_follow_a_change_of_edge_easy_or_the_write_fails():
    """After ``tree.edge_easy[:] = True`` the sampled hard-valid counts equal the exact hard-valid
    mass (zero), or the write is refused: the cache never serves the old hard edges."""
    tree = small_tree()
    problems = Problems(np.zeros(1, np.int64), (tree.kind == LEAF)[None, :], (tree.kind == LEAF)[None, :],
                        np.zeros((1, 0)), np.arange(1))
    probs = tree.edge_prob[None, :]
    assert sample_rollouts(tree, probs, problems, 2000, seed=5).hard_valid[0] > 0  # caches the hard edges
    if not make_writeable(tree.edge_easy):
        with pytest.raises(ValueError, match="read-only"):
            tree.edge_easy[:] = True
        return
    tree.edge_easy[:] = True
    assert path_type_mass(tree, probs, problems).hard_valid[0] == 0.0
    counts = sample_rollouts(tree, probs, problems, 2000, seed=5)
    assert counts.hard_valid[0] == 0 and counts.easy_valid[0] == 2000


def test_cache_is_used_only_for_frozen_arrays_and_the_same_array_objects():
    tree = random_tree(3)
    child_start, parent, kind = (np.array(a) for a in (tree.child_start, tree.parent, tree.kind))
    for arr in (child_start, parent, kind):
        arr.flags.writeable = False

    class Frozen:  # a tree whose arrays nothing can write to
        n_nodes, leaves = tree.n_nodes, tree.leaves

    frozen = Frozen()
    frozen.child_start, frozen.parent, frozen.kind = child_start, parent, kind
    assert kernel_tree(frozen) is kernel_tree(frozen)  # cached
    writeable = Frozen()
    writeable.child_start, writeable.parent, writeable.kind = np.array(child_start), parent, kind
    assert kernel_tree(writeable) is not kernel_tree(writeable)  # derived afresh each time
    frozen.parent = np.array(parent)  # another array object (even equal): not the cached entry
    assert kernel_tree(frozen) is not kernel_tree(frozen)


def test_frozen_means_no_writeable_array_shares_the_data():
    base = np.arange(5)
    view = base[1:]
    view.flags.writeable = False
    assert not _frozen(base) and not _frozen(view)  # the view's data changes through base
    base.flags.writeable = False
    assert _frozen(view) and _frozen(base)
    assert not _frozen(np.frombuffer(bytearray(8)))  # a mutable buffer
    assert _frozen(np.frombuffer(b"12345678"))
