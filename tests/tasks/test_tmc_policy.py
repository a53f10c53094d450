"""The TMC's chain-edge policy parameters and a task's instance population, against the unrolled
tree's paths, the softmax of the tree engine and brute-force enumeration."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markovfork.tasks import (
    chain_edge_index,
    chain_node_logits,
    chain_row_probs,
    chain_theta_from_transitions,
    chain_tv_distance,
    n_chain_edges,
    tmc_chain,
    tmc_instance_population,
    tmc_problems,
)
from markovfork.model.policy import transition_probs

PAPER_HIGH = {(1, 1): [1], (2, 1): [0]}  # the paper's released run (as in test_tmc.py)

small_chains = st.builds(
    lambda layers, m0, m, data, low, seed: tmc_chain(
        layers, m0, m, data.draw(st.integers(1, m)), low_weight=low, seed=seed
    ),
    st.integers(3, 5), st.integers(2, 3), st.integers(2, 3), st.data(), st.sampled_from([0.0, 0.1, 0.7]),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=25)
@given(tmc=small_chains)
def test_edge_index_from_each_nodes_state_path(tmc):
    tree = tmc.tree
    index = chain_edge_index(tmc)
    sizes = [tmc.layer_size(layer) for layer in range(tmc.layers)]
    seen = set()
    for v in range(tree.n_nodes):
        states = tree.label[tree.path_to(v)[1:]].tolist()  # layers 0..depth-1
        if len(states) < 2:
            assert index[v] == -1
            continue
        layer, s, t = len(states) - 2, states[-2], states[-1]
        assert index[v] == sum(sizes[:layer]) * tmc.m + s * tmc.m + t
        seen.add((layer, s, t))
    # every (layer, s, t) edge of the chain is some tree node's edge, and the numbering is onto
    assert len(seen) == n_chain_edges(tmc) == sum(sizes[:-1]) * tmc.m
    assert sorted(set(index[index >= 0].tolist())) == list(range(n_chain_edges(tmc)))


@settings(max_examples=25)
@given(tmc=small_chains)
def test_true_theta_gives_the_tree_probabilities_through_the_softmax(tmc):
    tree = tmc.tree
    theta = chain_theta_from_transitions(tmc)
    logits = chain_node_logits(tmc, theta)
    assert np.all(logits[tree.depth < 2] == 0.0)
    probs = transition_probs(tree, logits)[0]
    np.testing.assert_allclose(probs[1:], tree.edge_prob[1:], rtol=0, atol=1e-12)  # layer 0: 1/m0
    rows = chain_row_probs(tmc, theta)
    np.testing.assert_allclose(rows, np.concatenate(tmc.transitions), rtol=0, atol=1e-12)
    assert np.all(chain_tv_distance(tmc, theta) < 1e-12)


def test_node_logits_share_one_parameter_per_edge_and_tv_of_uniform():
    tmc = tmc_chain(4, 2, 2, 1, high_edges=PAPER_HIGH)
    theta = np.arange(n_chain_edges(tmc), dtype=float) / 7.0
    logits = chain_node_logits(tmc, theta)
    # nodes 0-0-0 and 1-0-0 (layer 1 -> 2 step from state 0 to 0) share edge offset(1) + 0 = 4
    assert logits[tmc.node([0, 0, 0])] == logits[tmc.node([1, 0, 0])] == theta[4]
    assert logits[tmc.node([1, 1, 0, 1])] == theta[(2 + 2) * 2 + 0 * 2 + 1]  # layer 2, 0 -> 1
    # uniform rows against P: TV = |1/2 - P(r, 0)| per row of two states
    expect = np.abs(0.5 - np.concatenate(tmc.transitions)[:, 0])
    np.testing.assert_allclose(chain_tv_distance(tmc, np.zeros(12)), expect, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "theta, message",
    [
        (np.zeros(11), r"theta must have shape \(12,\) \(one logit per chain edge\), got \(11,\)"),
        (np.r_[np.zeros(11), np.nan], r"theta\[11\] must be a real number or -inf, got nan"),
        (np.r_[np.inf, np.zeros(11)], r"theta\[0\] must be a real number or -inf, got inf"),
        (np.zeros((2, 6)), r"theta must be a 1-D array, got shape \(2, 6\)"),
    ],
)
def test_bad_theta(theta, message):
    with pytest.raises(ValueError, match=message):
        chain_node_logits(tmc_chain(4, 2, 2, 1), theta)


def _brute_force_weights(q):
    """Probability of each correct/incorrect pattern, pattern j = path i correct iff bit i of j."""
    out = np.zeros(2 ** len(q))
    for bits in itertools.product([0, 1], repeat=len(q)):
        j = sum(b << i for i, b in enumerate(bits))
        out[j] = np.prod([qi if b else 1 - qi for qi, b in zip(q, bits)])
    return out


@pytest.mark.parametrize("task", [0, 1])
@pytest.mark.parametrize(
    "chain", [dict(layers=4, m0=2, m=2, c=1, high_edges=PAPER_HIGH), dict(layers=4, m0=3, m=3, c=2, seed=4)]
)
def test_population_weights_and_marginals(chain, task):
    tmc = tmc_chain(**chain)
    tree = tmc.tree
    problems, weights = tmc_instance_population(tmc, task)
    paths = tmc.task_paths(task)
    n_valid = paths.leaf.size
    assert len(problems) == weights.size == 2**n_valid
    problems.check_tree(tree)
    np.testing.assert_allclose(weights, _brute_force_weights(paths.expected_correctness), rtol=1e-12, atol=0)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    # weighted mean of each valid path's correctness is its expected correctness
    np.testing.assert_allclose(weights @ problems.correct[:, paths.leaf], paths.expected_correctness, atol=1e-12)
    # same conventions as tmc_problems
    sampled = tmc_problems(tree, tmc, task, n_instances=2)
    assert np.all(problems.start == sampled.start[0])
    assert np.array_equal(problems.valid, np.broadcast_to(sampled.valid[0], problems.valid.shape))
    assert problems.features.shape == (2**n_valid, 0)
    assert not problems.correct[:, ~sampled.valid[0]].any()
    # every pattern listed once
    patterns = problems.correct[:, paths.leaf] @ (1 << np.arange(n_valid))
    assert np.array_equal(patterns, np.arange(2**n_valid))


def test_population_matches_sampled_instance_frequencies():
    # n = 40000 draws: each frequency has standard deviation sqrt(w (1 - w) / n) <= 0.0025, so a
    # max abs difference of 0.015 over the 16 patterns is a > 6-sigma event for every pattern
    tmc = tmc_chain(4, 2, 2, 1, high_edges=PAPER_HIGH)
    n = 40_000
    for task in (0, 1):
        problems, weights = tmc_instance_population(tmc, task)
        paths = tmc.task_paths(task)
        sampled = tmc_problems(tmc.tree, tmc, task, n_instances=n, seed=11)
        pattern = sampled.correct[:, paths.leaf] @ (1 << np.arange(paths.leaf.size))
        freq = np.bincount(pattern, minlength=weights.size) / n
        assert np.abs(freq - weights).max() < 0.015


def test_population_too_many_valid_paths():
    tmc = tmc_chain(5, 2, 3, 1)  # 3^3 = 27 valid paths per task
    with pytest.raises(ValueError, match=r"task 0 has V = 27 valid paths.*use sampled instances"):
        tmc_instance_population(tmc, 0)
    with pytest.raises(ValueError, match=r"V = 4 valid paths.*max_valid_paths = 3"):
        tmc_instance_population(tmc_chain(4, 2, 2, 1), 1, max_valid_paths=3)
    with pytest.raises(ValueError, match=r"task must be an integer in \[0, 1\], got 2"):
        tmc_instance_population(tmc_chain(4, 2, 2, 1), 2)
    with pytest.raises(ValueError, match="tmc must be a TMC"):
        tmc_instance_population("chain", 0)
