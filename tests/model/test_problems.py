"""Problems and the subtree kernel: subtree_any against a plain walk up to the root, read-only
arrays, and the checks that keep the kernel inside its arrays."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork.tasks import fork_problems, fork_tree
from markovfork.model.problems import Problems, subtree_any, subtree_any_reference
from strategies import build_case, random_trees


@given(random_trees(), st.data())
def test_subtree_any_equals_reference(case, data):
    tree, _, _, problems = build_case(case)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=tree.n_nodes * len(problems), max_size=tree.n_nodes * len(problems))))
    mask = mask.reshape(len(problems), tree.n_nodes)
    assert np.array_equal(subtree_any(tree.parent, mask), subtree_any_reference(tree.parent, mask))


# Logits on a 0.25 grid (plus -inf) and decoding settings on coarse grids: exact ties then come
# only from equal logits, which both implementations evaluate identically, so the comparison is
# not at the mercy of last-bit rounding at a top-p / min-p threshold.


TREE = fork_tree(6, 2, 3)  # 127 nodes


@pytest.mark.parametrize(
    "parent, mask, message",
    [
        # a (3, 5) result for a 127-node tree before, written past the mask's rows
        (TREE.parent, np.zeros((3, 5), bool), r"mask must have shape \(3, 127\), got \(3, 5\)"),
        (TREE.parent, np.zeros((3, 300), bool), r"mask must have shape \(3, 127\), got \(3, 300\)"),
        (TREE.parent, np.zeros(127, bool), r"mask must have shape \(P, 127\), got \(127,\)"),
        (TREE.parent, np.full((2, 127), 0.5), "mask must be booleans, got dtype float64"),
        ([-1, 5, 0], np.zeros((1, 3), bool), r"parent\[1\] must be a node id below 1, got 5"),
        ([-1, 0, -1], np.zeros((1, 3), bool), r"parent\[2\] must be a node id below 2, got -1"),
        ([0, 0, 1], np.zeros((1, 3), bool), r"parent\[0\] must be -1 \(the root\), got 0"),
        ([-1.0, 0.0], np.zeros((1, 2), bool), "parent must be integers, got dtype float64"),
    ],
)
def test_subtree_any_checks_shapes_before_the_kernel(parent, mask, message):
    with pytest.raises(ValueError, match=message):
        subtree_any(parent, mask)


def test_problem_arrays_are_read_only_copies():
    correct = np.zeros((2, 7), bool)
    correct[:, 3] = True
    problems = Problems(start=[0, 0], correct=correct, valid=correct, features=[[0.5], [1.5]], ids=[4, 9])
    correct[0, 3] = False  # the caller's array is copied, not frozen
    assert problems.correct[0, 3] and correct.flags.writeable
    for name in ("start", "correct", "valid", "features", "ids"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(problems, name)[0] = getattr(problems, name)[0]
    assert problems.start.dtype == np.int64 and problems.features.dtype == np.float64
    sub = problems.subset([1])
    assert sub.ids.tolist() == [9] and not sub.ids.flags.writeable


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(features=[[np.nan], [1.0]]), "features must be finite numbers, got nan"),
        (dict(start=[0.0, 0.0]), "start must be integers, got dtype float64"),
        (dict(correct=np.ones((2, 7), int) * 2), "correct must be booleans"),
        (dict(ids=[[4, 9]]), r"ids must be a 1-D array, got shape \(1, 2\)"),
        (dict(valid=np.zeros((2, 7), bool)), "problem 0: a correct leaf must be valid"),
    ],
)
def test_bad_problem_arrays(changes, message):
    correct = np.zeros((2, 7), bool)
    correct[:, 3] = True
    args = dict(start=[0, 0], correct=correct, valid=correct, features=[[0.5], [1.5]], ids=[4, 9])
    with pytest.raises(ValueError, match=message):
        Problems(**{**args, **changes})


def test_problems_must_fit_the_tree():
    problems = fork_problems(TREE, 3)
    with pytest.raises(ValueError, match="problems are over 127 nodes, the tree has 7"):
        problems.check_tree(fork_tree(2, 2, 0))
    moved = Problems(np.array([0, 0, 127]), problems.correct, problems.valid, problems.features, problems.ids)
    with pytest.raises(ValueError, match=r"problems.start must be node ids of the tree \(0..126\), got 127"):
        moved.check_tree(TREE)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, .*\], got -1"):
        problems.split(0.5, seed=-1)
    with pytest.raises(ValueError, match=r"test_fraction must be a finite number in \(0, 1\), got 1.0"):
        problems.split(1.0, seed=0)
    train, test = problems.split(0.34, seed=2)
    assert sorted(train.ids.tolist() + test.ids.tolist()) == [0, 1, 2] and len(test) == 1
