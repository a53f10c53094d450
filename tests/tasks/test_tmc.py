"""The multi-task chain (TMC): the paper's worked numbers, forced edges, seeds, the unrolled
tree's layout, instance frequencies, and bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork.engines.exact import reach_probability, success_probability
from markovfork.tasks import fork_tree, tmc_chain, tmc_problems, tmc_tree
from markovfork.model.tree import LEAF

# The paper's released run (0-based): the unforced rows' high edges.
PAPER_HIGH = {(1, 1): [1], (2, 1): [0]}



def test_tmc_paper_numbers_via_reach_probability():
    tmc = tmc_chain(layers=4, m0=2, m=2, c=1, high_edges=PAPER_HIGH)
    tree = tmc.tree
    problems = tmc_problems(tree, tmc, task=0, n_instances=3, seed=0)
    probs = np.broadcast_to(tree.edge_prob, (3, tree.n_nodes))
    reach = reach_probability(tree, probs, problems.start)
    leaves = [tmc.node(s) for s in ([0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 1, 1, 0])]
    got = np.round(reach[0, leaves], 6)
    assert got.tolist() == [0.413223, 0.075131, 0.004132, 0.075131]
    valid_mass = reach[0, problems.valid[0]].sum()
    assert round(reach[0, leaves[0]] / valid_mass, 6) == 0.727995
    paths = tmc.task_paths(0)
    assert np.array_equal(paths.leaf, leaves)
    assert round(paths.expected_correctness[0], 6) == 0.727995
    assert paths.easy.tolist() == [True, False, False, False]
    # closed form: 1/1.1 for a high edge among one high and one low; 0.5 for the two-high last row
    hi, lo = 1 / 1.1, 0.1 / 1.1
    assert np.allclose(paths.prob, [hi * hi * 0.5, hi * lo * hi, lo * lo * 0.5, lo * hi * hi], rtol=0, atol=1e-15)


def test_tmc_paper_rows():
    tmc = tmc_chain(4, 2, 2, 1, high_edges=PAPER_HIGH)
    hi, lo = 1 / 1.1, 0.1 / 1.1
    np.testing.assert_allclose(tmc.transitions[0], [[hi, lo], [hi, lo]])
    np.testing.assert_allclose(tmc.transitions[1], [[hi, lo], [lo, hi]])
    np.testing.assert_allclose(tmc.transitions[2], [[0.5, 0.5], [hi, lo]])
    # task 1 (index 1): easy path 1 -> 0 -> 0 -> 1
    paths = tmc.task_paths(1)
    assert paths.states[paths.easy].tolist() == [[1, 0, 0, 1]]


def _forced(layers, layer, s):
    f = set()
    if s == 0:
        f.add(0)
        if layer == layers - 2:
            f.add(1)
    if layer == 0 and s == 1:
        f.add(0)
    return f


# bounds keep the unrolled tree small (<= 4 * 4^5 leaves) and the test fast
@given(
    layers=st.integers(3, 6),
    m0=st.integers(2, 4),
    m=st.integers(2, 4),
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
)
def test_tmc_forced_edges_always_present(layers, m0, m, data, seed):
    c = data.draw(st.integers(1, m))
    tmc = tmc_chain(layers, m0, m, c, seed=seed)
    for layer, h in enumerate(tmc.high):
        assert h.shape == (m0 if layer == 0 else m, m)
        for s in range(h.shape[0]):
            forced = _forced(layers, layer, s)
            high = set(np.flatnonzero(h[s]).tolist())
            assert forced <= high
            assert len(high) == max(c, len(forced))
        np.testing.assert_allclose(tmc.transitions[layer].sum(axis=1), 1.0)
    for task, expect in ((0, [0] * layers), (1, [1] + [0] * (layers - 2) + [1])):
        paths = tmc.task_paths(task)
        assert expect in paths.states[paths.easy].tolist()
        assert paths.expected_correctness.sum() == pytest.approx(1.0)
    tree = tmc.tree
    assert tree.n_nodes == 1 + sum(m0 * m**e for e in range(layers))
    assert np.all(tree.kind[tree.depth == layers] == LEAF)


def test_tmc_seeds_reproducible_and_explicit_rows_do_not_move_others():
    a = tmc_chain(5, 3, 4, 2, seed=7)
    b = tmc_chain(5, 3, 4, 2, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a.high, b.high))
    others = [tmc_chain(5, 3, 4, 2, seed=s) for s in range(8, 12)]
    assert any(not all(np.array_equal(x, y) for x, y in zip(a.high, o.high)) for o in others)
    explicit = tmc_chain(5, 3, 4, 2, seed=7, high_edges={(2, 3): [0, 3]})
    assert np.flatnonzero(explicit.high[2][3]).tolist() == [0, 3]
    for layer in range(4):
        for s in range(a.high[layer].shape[0]):
            if (layer, s) != (2, 3):
                assert np.array_equal(a.high[layer][s], explicit.high[layer][s])


def test_tmc_unrolled_tree_layout():
    tmc = tmc_chain(4, 3, 2, 1, seed=3)
    tree = tmc.tree
    assert tree.label[0] == -1 and tree.n_children[0] == 3
    np.testing.assert_allclose(tree.edge_prob[1:4], 1 / 3)
    for states in ([2], [1, 0], [2, 1, 1], [0, 1, 0, 1]):
        v = tmc.node(states)
        path = tree.path_to(v)[1:]  # drop the virtual root
        assert tree.label[path].tolist() == states
        assert tree.depth[v] == len(states)
        if len(states) > 1:
            layer = len(states) - 2
            assert tree.edge_prob[v] == tmc.transitions[layer][states[-2], states[-1]]
            assert tree.edge_easy[v] == tmc.high[layer][states[-2], states[-1]]
    assert tmc_tree(4, 3, 2, 1, seed=3).n_nodes == tree.n_nodes


def test_tmc_problems_valid_and_correct_frequencies():
    tmc = tmc_chain(4, 2, 2, 1, high_edges=PAPER_HIGH)
    tree = tmc.tree
    n = 20_000
    problems = tmc_problems(tree, tmc, task=1, n_instances=n, seed=5)
    start = tmc.node([1])
    assert np.all(problems.start == start)
    in_subtree = np.zeros(tree.n_nodes, bool)
    for v in range(tree.n_nodes):
        in_subtree[v] = start in tree.path_to(v)
    expect_valid = in_subtree & (tree.kind == LEAF) & (tree.label == 1)
    assert np.array_equal(problems.valid[0], expect_valid)
    paths = tmc.task_paths(1)
    counts = problems.correct[:, paths.leaf].sum(axis=0)
    # each valid path is correct independently with its expected correctness: binomial z-scores
    sd = np.sqrt(n * paths.expected_correctness * (1 - paths.expected_correctness))
    assert np.all(np.abs(counts - n * paths.expected_correctness) < 4 * sd + 1e-9)
    # success of the base policy = sum over correct paths of their probability
    probs = np.broadcast_to(tree.edge_prob, (n, tree.n_nodes))
    succ = success_probability(tree, probs, problems.correct, problems.start)
    np.testing.assert_allclose(succ, problems.correct[:, paths.leaf] @ paths.prob)
    again = tmc_problems(tree, tmc, task=1, n_instances=n, seed=5)
    assert np.array_equal(again.correct, problems.correct)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(layers=2, m0=2, m=2, c=1), "layers must be an integer >= 3, got 2"),
        (dict(layers=4, m0=1, m=2, c=1), "m0 must be an integer >= 2, got 1"),
        (dict(layers=4, m0=2, m=2, c=3), "c must be <= m=2, got 3"),
        (dict(layers=4, m0=2, m=2, c=1, low_weight=-1.0), r"low_weight must be a finite number in \[0, inf\), got -1.0"),
        (dict(layers=4, m0=2, m=2, c=1, high_edges={(0, 0): [1]}), r"lacks the forced edge to state 0"),
        (dict(layers=4, m0=2, m=2, c=1, high_edges={(3, 0): [0]}), "layer must be in 0..2, got 3"),
        (dict(layers=4, m0=2, m=2, c=1, high_edges={(1, 1): [2]}), r"must list next states in 0..1, got \[2\]"),
        (dict(layers=4, m0=2, m=2, c=1, high_edges={(1, 1.5): [1]}), r"state must be an integer, got 1.5"),
        (dict(layers=4, m0=2, m=2, c=1, high_edges={(1, 1): [0.5]}), r"next state must be an integer, got 0.5"),
        (dict(layers=4, m0=2, m=2, c=1, high_weight=float("nan")), r"high_weight must be a finite number in \(0, inf\)"),
        (dict(layers=4, m0=2, m=2, c=1, seed=-1), r"seed must be an integer in \[0, 18446744073709551615\], got -1"),
    ],
)
def test_tmc_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tmc_chain(**kwargs)


def test_tmc_problems_bad_input():
    tmc = tmc_chain(4, 2, 2, 1)
    with pytest.raises(ValueError, match=r"task must be an integer in \[0, 1\], got 2"):
        tmc_problems(tmc.tree, tmc, task=2, n_instances=3)
    with pytest.raises(ValueError, match="is not the unrolled chain"):
        tmc_problems(fork_tree(2, 2, 0), tmc, task=0, n_instances=3)
