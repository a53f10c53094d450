"""The walk sampler (markovfork.engines.sampled.walk): the rounding guard of a single step."""

import numpy as np

from markovfork.engines.sampled.walk import step
from markovfork.model.tree import tree_from_dict


def test_walk_guard_takes_last_positive_child():
    """A uniform at or beyond the rounded row sum (here a row summing to 0.5, which validation
    would reject) takes the last child with positive probability, never the zero one after it."""
    tree = tree_from_dict({"children": [{"prob": 0.25}, {"prob": 0.25}, {"prob": 0.5}, {"prob": 0.0}]})
    half = np.array([1.0, 0.25, 0.25, 0.0, 0.0])
    assert [step(tree.child_start, half, 0, u) for u in (0.1, 0.3, 0.5, 0.75, 1 - 2**-53)] == [1, 2, 2, 2, 2]


def test_step_is_the_inverse_cdf_over_the_children():
    """Below the row sum, the child taken is the first whose cumulative probability exceeds u
    (NumPy searchsorted on the cumulative sums, side='right')."""
    w = np.array([0.1, 0.0, 0.35, 0.05, 0.5])
    tree = tree_from_dict({"children": [{"prob": float(x)} for x in w]})
    row = np.concatenate([[1.0], w])
    u = np.random.default_rng(0).random(2000) * np.cumsum(w)[-1] * (1 - 1e-12)
    expect = 1 + np.searchsorted(np.cumsum(w), u, side="right")
    assert np.array_equal([step(tree.child_start, row, 0, x) for x in u], expect)
