"""The exact engine, the policy kernel and the tree data model against independent references.

Random small trees are drawn in an arbitrary (non-breadth-first) input numbering and converted
with ``tree_from_children``; the brute-force references enumerate every path in that input
numbering in plain Python, so they share no code with the compiled kernels.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork.exact import (
    exact_pass_at_k,
    node_entropy,
    node_entropy_reference,
    path_type_mass,
    path_type_mass_reference,
    reach_probability,
    success_probability,
    success_probability_reference,
)
from strategies import MAX_NODES, MAX_PROBLEMS, build_case, random_trees
from markovfork.generators import fork_problems, fork_tree, tmc_chain
from markovfork.policy import Decoding, Policy, problem_logits, transition_probs, transition_probs_reference
from markovfork.problems import Problems, subtree_any, subtree_any_reference
from markovfork.tree import DECIPHERABLE, FORK, LEAF, load_tree, tree_from_children, tree_from_dict

def _paths(children, u):
    """Every path (list of input ids) from u down to a leaf."""
    if not children[u]:
        return [[u]]
    return [[u] + rest for c in children[u] for rest in _paths(children, c)]


@given(random_trees())
def test_dp_success_equals_path_enumeration(case):
    tree, new_id, probs, problems = build_case(case)
    got = success_probability(tree, probs, problems.correct, problems.start)
    ref = success_probability_reference(tree, probs, problems.correct, problems.start)
    reach = reach_probability(tree, probs, problems.start)
    for p, s in enumerate(case["start"]):
        brute = 0.0
        for path in _paths(case["children"], s):
            prob = math.prod(case["probs"][p, v] for v in path[1:])
            assert reach[p, new_id[path[-1]]] == pytest.approx(prob, abs=1e-12)
            if case["correct"][p, path[-1]]:
                brute += prob
        assert got[p] == pytest.approx(brute, abs=1e-12)
        assert ref[p] == pytest.approx(brute, abs=1e-12)


@given(random_trees())
def test_path_type_mass_equals_path_enumeration(case):
    tree, new_id, probs, problems = build_case(case)
    got = path_type_mass(tree, probs, problems)
    ref = path_type_mass_reference(tree, probs, problems)
    for p, s in enumerate(case["start"]):
        brute = np.zeros(3)
        for path in _paths(case["children"], s):
            prob = math.prod(case["probs"][p, v] for v in path[1:])
            leaf = path[-1]
            if not case["valid"][p, leaf]:
                brute[2] += prob
            elif all(case["easy"][v] for v in path[1:]):
                brute[0] += prob
            else:
                brute[1] += prob
        for mass in (got, ref):
            assert [mass.easy_valid[p], mass.hard_valid[p], mass.invalid[p]] == pytest.approx(brute, abs=1e-12)
    total = got.easy_valid + got.hard_valid + got.invalid
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


@given(random_trees())
def test_node_entropy_equals_plain_python(case):
    tree, new_id, probs, _ = build_case(case)
    got = node_entropy(tree, probs)
    np.testing.assert_allclose(node_entropy_reference(tree, probs), got, atol=1e-12)
    for p in range(probs.shape[0]):
        for u, kids in enumerate(case["children"]):
            expect = -sum(case["probs"][p, v] * math.log(case["probs"][p, v]) for v in kids if case["probs"][p, v] > 0)
            assert got[p, new_id[u]] == pytest.approx(expect, abs=1e-12)


def test_node_entropy_uniform_fork_is_log_branching():
    tree = fork_tree(3, 4, 2)
    h = node_entropy(tree, tree.edge_prob)
    np.testing.assert_allclose(h[0, tree.kind != LEAF], math.log(4))
    assert np.all(h[0, tree.leaves] == 0)


def test_path_type_mass_on_tmc_paper_chain():
    """Task 0 of the paper's chain under the base policy: easy-valid = the easy path's 0.413223."""
    tmc = tmc_chain(4, 2, 2, 1, high_edges={(1, 1): [1], (2, 1): [0]})
    from markovfork.generators import tmc_problems

    problems = tmc_problems(tmc.tree, tmc, 0, 2, seed=0)
    probs = np.broadcast_to(tmc.tree.edge_prob, (2, tmc.tree.n_nodes))
    mass = path_type_mass(tmc.tree, probs, problems)
    paths = tmc.task_paths(0)
    assert mass.easy_valid[0] == pytest.approx(0.413223, abs=1e-6)
    assert mass.hard_valid[0] == pytest.approx(paths.prob[1:].sum())
    assert mass.invalid[0] == pytest.approx(1 - paths.prob.sum())


@given(random_trees(), st.data())
def test_subtree_any_equals_reference(case, data):
    tree, _, _, problems = build_case(case)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=tree.n_nodes * len(problems), max_size=tree.n_nodes * len(problems))))
    mask = mask.reshape(len(problems), tree.n_nodes)
    assert np.array_equal(subtree_any(tree.parent, mask), subtree_any_reference(tree.parent, mask))


# Logits on a 0.25 grid (plus -inf) and decoding settings on coarse grids: exact ties then come
# only from equal logits, which both implementations evaluate identically, so the comparison is
# not at the mercy of last-bit rounding at a top-p / min-p threshold.
@given(
    case=random_trees(),
    data=st.data(),
    temperature=st.sampled_from([0.25, 0.5, 0.7, 1.0, 1.5, 3.0]),
    top_k=st.integers(0, 4),
    top_p=st.sampled_from([0.1, 0.3, 0.5, 0.75, 0.9, 0.95, 1.0]),
    min_p=st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0]),
)
def test_transition_probs_kernel_equals_reference(case, data, temperature, top_k, top_p, min_p):
    tree, _, _, _ = build_case(case)
    n_problems = case["probs"].shape[0]
    grid = st.one_of(st.integers(-16, 16).map(lambda i: i / 4), st.just(-np.inf))
    logits = np.array(data.draw(st.lists(grid, min_size=n_problems * tree.n_nodes, max_size=n_problems * tree.n_nodes)))
    logits = logits.reshape(n_problems, tree.n_nodes)
    decoding = Decoding(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    got = transition_probs(tree, logits, decoding)
    ref = transition_probs_reference(tree, logits, decoding)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    internal = np.flatnonzero(tree.n_children > 0)
    row_sums = np.add.reduceat(got[:, 1:], tree.child_start[internal] - 1, axis=1) if internal.size else None
    if internal.size:
        np.testing.assert_allclose(row_sums, 1.0)


def test_base_policy_on_fork_tree_matches_enumeration_of_correct_leaf():
    """Base policy with no skill: success = probability of the problem's one correct path."""
    tree = fork_tree(4, 3, 3, placement="random", easy_prob=0.6, seed=5)
    problems = fork_problems(tree, 20, seed=6)
    policy = Policy.base(tree)
    probs = transition_probs(tree, problem_logits(tree, policy, problems))
    np.testing.assert_allclose(probs, np.broadcast_to(tree.edge_prob, probs.shape), atol=1e-12)
    succ = success_probability(tree, probs, problems.correct, problems.start)
    for p in range(len(problems)):
        (leaf,) = np.flatnonzero(problems.correct[p])
        assert succ[p] == pytest.approx(np.prod(tree.edge_prob[tree.path_to(int(leaf))]))
    k = np.array([1, 4, 16])
    np.testing.assert_allclose(exact_pass_at_k(succ, k), [np.mean(1 - (1 - succ) ** kk) for kk in k])


# ---------------------------------------------------------------------------- tree data model


def _spec(a_probs=(0.5, 0.5), root_probs=(0.5, 0.5)):
    return {
        "kind": "fork",
        "children": [
            {"prob": root_probs[0], "children": [{"prob": a_probs[0]}, {"prob": a_probs[1]}]},
            {"prob": root_probs[1]},
        ],
    }


@pytest.mark.parametrize(
    "spec, message",
    [
        (_spec(a_probs=(0.3, 0.3)), "node 1: transition probabilities sum to 0.6, not 1"),
        (_spec(a_probs=(1.1, -0.1)), r"node 1: transition probability to child 4 is negative \(-0.1\)"),
        (_spec(a_probs=(float("nan"), 0.5)), r"node 1: transition probability to child 3 is not finite \(nan\)"),
        (_spec(root_probs=(0.5, float("inf"))), r"node 0: transition probability to child 2 is not finite \(inf\)"),
        ({**_spec(), "valid_branches": 3}, r"node 0: valid_branches must be in \[1, 2\], got 3"),
        ({"children": [{"prob": "high"}]}, "root.children\\[0\\]: prob must be a number, got 'high'"),
        ({"kind": "knot", "children": [{}]}, "root: unknown kind 'knot'"),
        ({"kind": "leaf", "children": [{}]}, "node 0: a node is a leaf exactly when it has no children"),
    ],
)
def test_tree_validation_names_the_node(spec, message):
    with pytest.raises(ValueError, match=message):
        tree_from_dict(spec)


def test_load_tree_errors(tmp_path):
    with pytest.raises(ValueError, match="tree file not found"):
        load_tree(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_tree(bad)


def _assert_same_tree(a, b):
    for name in ("child_start", "parent", "depth", "kind", "edge_prob", "edge_easy", "label", "valid_branches"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


@pytest.mark.parametrize(
    "tree",
    [
        fork_tree(4, 3, 5, placement="random", valid_branches=2, easy_prob=0.55, seed=3),
        fork_tree(7, 2, 4, placement="bottom", dead_ends=True, easy_prob=0.9, seed=1),
        tmc_chain(4, 3, 3, 2, seed=11).tree,
    ],
    ids=["full", "dead_ends", "tmc"],
)
def test_json_round_trip_is_exact(tree, tmp_path):
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree.to_dict()))
    _assert_same_tree(tree, load_tree(path))
    _assert_same_tree(tree, tree_from_dict(json.loads(json.dumps(tree.to_dict()))))


@given(random_trees())
def test_json_round_trip_random_trees(case):
    tree, *_ = build_case(case)
    _assert_same_tree(tree, tree_from_dict(json.loads(json.dumps(tree.to_dict()))))


def test_shape_errors():
    tree = fork_tree(2, 2, 0)
    problems = fork_problems(tree, 2)
    with pytest.raises(ValueError, match=r"probs must have shape \(P, 7\), got \(2, 5\)"):
        node_entropy(tree, np.ones((2, 5)))
    with pytest.raises(ValueError, match="probs has 3 rows, there are 2 problems"):
        path_type_mass(tree, np.ones((3, 7)), problems)
    # the kernels index with start ids as unsigned integers: out-of-range ids are rejected first
    probs = transition_probs(tree, problem_logits(tree, Policy.base(tree), problems))
    for bad in ([-1, 0], [0, 7]):
        with pytest.raises(ValueError, match=r"start nodes must be node ids of the tree \(0..6\)"):
            reach_probability(tree, probs, bad)
        with pytest.raises(ValueError, match=r"start nodes must be node ids of the tree \(0..6\)"):
            success_probability(tree, probs, problems.correct, bad)
