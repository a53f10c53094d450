"""The shared tree kernels (markovfork.model.kernels) against independent references."""

import numpy as np

from markovfork.model.kernels import choose_child as step
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


# --- the other kernels against references by enumeration of root-to-leaf paths ---------------

from hypothesis import given, settings, strategies as st  # noqa: E402
from scipy.special import softmax  # noqa: E402

from markovfork.engines.sampled.streams import stream_states  # noqa: E402
from markovfork.engines.sampled.walk import walk  # noqa: E402
from markovfork.model.kernels import backward_value, forward_reach, hard_edge_counts, softmax_children  # noqa: E402
from markovfork.rl.tree_ops import rollout  # noqa: E402
from markovfork.testing import tree_cases  # noqa: E402


def _paths(tree, s):
    """Every path from s down to a leaf, as the list of nodes after s (recursion over children)."""
    kids = tree.children(s).tolist()
    if not kids:
        return [[]]
    return [[c, *rest] for c in kids for rest in _paths(tree, c)]


def _path_prob(probs, path):
    out = 1.0
    for v in path:
        out *= probs[v]
    return out


@given(tree_cases(), st.integers(0, 2**32 - 1))
@settings(max_examples=60)
def test_backward_value_sums_leaf_values_over_paths(case, seed):
    """V(s) = sum over the paths s -> leaf of (product of step probabilities) * leaf value."""
    tree, probs = case.tree, case.probs[0]
    leaf_value = np.random.default_rng(seed).normal(size=tree.n_nodes)
    value = np.empty(tree.n_nodes)
    backward_value(tree.child_start, probs, leaf_value, value)
    for s in range(tree.n_nodes):
        expect = sum(_path_prob(probs, p) * leaf_value[p[-1] if p else s] for p in _paths(tree, s))
        assert np.isclose(value[s], expect, rtol=1e-12, atol=1e-14), (s, value[s], expect)
    correct = case.problems.correct[0]
    backward_value(tree.child_start, probs, correct, value)  # bool leaf values: 0/1
    assert np.all(value[tree.n_children == 0] == correct[tree.n_children == 0])


@given(tree_cases())
@settings(max_examples=60)
def test_forward_reach_is_the_product_along_the_path_from_the_start(case):
    """R(v) = product of the step probabilities from the start down to v (0 off the subtree)."""
    tree, probs = case.tree, case.probs[0]
    reach, inside = np.empty(tree.n_nodes), np.empty(tree.n_nodes, dtype=bool)
    for s in range(tree.n_nodes):
        forward_reach(tree.parent, probs, s, reach, inside)
        expect = np.zeros(tree.n_nodes)
        below = np.zeros(tree.n_nodes, dtype=bool)
        expect[s], below[s] = 1.0, True
        for path in _paths(tree, s):
            for i, v in enumerate(path):
                expect[v], below[v] = _path_prob(probs, path[: i + 1]), True
        assert np.array_equal(inside, below)
        assert np.allclose(reach, expect, rtol=1e-12, atol=0)


@given(
    st.lists(st.one_of(st.floats(-30, 30), st.just(-np.inf)), min_size=1, max_size=8),
    st.sampled_from([1.0, 0.5, 2.0, 0.7]),
)
def test_softmax_children_matches_scipy(z, temperature):
    """out[a:b] = scipy.special.softmax(z[a:b] / T); all -inf: uniform; outside [a, b) untouched."""
    z = np.array([5.0, *z, -1.0])
    out = np.full(z.shape, 7.0)
    softmax_children(z, 1, z.size - 1, temperature, out)
    inner = z[1:-1]
    expect = np.full(inner.size, 1.0 / inner.size) if np.all(inner == -np.inf) else softmax(inner / temperature)
    assert np.allclose(out[1:-1], expect, rtol=1e-12, atol=1e-300)
    assert out[0] == 7.0 and out[-1] == 7.0


@given(tree_cases())
@settings(max_examples=60)
def test_hard_edge_counts_by_climbing_to_the_root(case):
    tree = case.tree
    hard = hard_edge_counts(tree.parent, np.ascontiguousarray(tree.edge_easy, dtype=np.bool_))
    for v in range(tree.n_nodes):
        n, u = 0, v
        while u != 0:
            n += not tree.edge_easy[u]
            u = tree.parent[u]
        assert hard[v] == n


@given(tree_cases(), st.integers(0, 2**32 - 1))
@settings(max_examples=40)
def test_rl_rollout_takes_the_walk_and_returns_its_log_probability(case, seed):
    """The RL rollout steps as the sampled engine's walk (the same stream gives the same leaf)
    and returns the log of the path's probability."""
    tree, probs = case.tree, case.probs[0]
    for s in range(tree.n_nodes):
        state = stream_states(seed, 1)[0].copy()
        leaf, s0, s1, s2, s3 = walk(tree.child_start, probs, s, *state)
        leaf_rl, logp = rollout(tree.child_start, probs, s, state)
        assert leaf_rl == leaf and list(state) == [s0, s1, s2, s3]
        path, v = [], int(leaf)
        while v != s:
            path.append(v)
            v = int(tree.parent[v])
        with np.errstate(divide="ignore"):
            assert np.isclose(logp, np.log(_path_prob(probs, path)), rtol=1e-12) or logp == np.log(_path_prob(probs, path))
