"""The exact engine against independent references, and its input checks.

Random small trees are drawn in an arbitrary (non-breadth-first) input numbering and converted
with ``tree_from_children``; the brute-force references enumerate every path in that input
numbering in plain Python, so they share no code with the compiled kernels. Every function that
hands arrays to a kernel rejects wrong shapes, dtypes, NaN and out-of-range values first.
"""

import math

import numpy as np
import pytest
from hypothesis import given

from markovfork.engines.exact import (
    exact_pass_at_k,
    node_entropy,
    node_entropy_reference,
    path_type_mass,
    path_type_mass_reference,
    reach_probability,
    success_probability,
    success_probability_reference,
)
from markovfork.tasks import fork_problems, fork_tree, tmc_chain, tmc_problems
from markovfork.model.policy import Policy, problem_logits, transition_probs
from markovfork.model.tree import LEAF
from strategies import build_case, random_trees


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
    problems = tmc_problems(tmc.tree, tmc, 0, 2, seed=0)
    probs = np.broadcast_to(tmc.tree.edge_prob, (2, tmc.tree.n_nodes))
    mass = path_type_mass(tmc.tree, probs, problems)
    paths = tmc.task_paths(0)
    assert mass.easy_valid[0] == pytest.approx(0.413223, abs=1e-6)
    assert mass.hard_valid[0] == pytest.approx(paths.prob[1:].sum())
    assert mass.invalid[0] == pytest.approx(1 - paths.prob.sum())


# A 127-node tree and 3 problems: reach_probability once returned a (3, 5) "result" for (3, 5)
# probabilities (reading past the array, a segfault 1 run in 3), and NaN or negative step
# probabilities went through the exact engine while the sampler rejected them.
TREE = fork_tree(6, 2, 3)
PROBLEMS = fork_problems(TREE, 3)
PROBS = transition_probs(TREE, problem_logits(TREE, Policy.base(TREE), PROBLEMS))
START = PROBLEMS.start
CORRECT = PROBLEMS.correct


def _with(value, row=0, col=5):
    probs = PROBS.copy()
    probs[row, col] = value
    return probs


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: reach_probability(TREE, np.full((3, 5), 0.5), START), r"probs must have shape \(P, 127\), got \(3, 5\)"),
        (lambda: reach_probability(TREE, np.full((3, 200), 0.5), START), r"probs must have shape \(P, 127\), got \(3, 200\)"),
        (lambda: reach_probability(TREE, PROBS[None], START), r"probs must have shape \(P, 127\), got \(1, 3, 127\)"),
        (lambda: reach_probability(TREE, _with(np.nan), START), r"probs\[0, 5\] must be a probability in \[0, 1\], got nan"),
        (lambda: reach_probability(TREE, _with(-0.25, 2, 9), START), r"probs\[2, 9\] must be a probability in \[0, 1\], got -0.25"),
        (lambda: reach_probability(TREE, PROBS > 0, START), "probs must be real numbers, got dtype bool"),
        (lambda: reach_probability(TREE, PROBS, START[:1]), r"start must have one node id per row \(3\), got 1"),
        (lambda: reach_probability(TREE, PROBS, [0, -1, 0]), r"start must be node ids of the tree \(0..126\), got -1"),
        (lambda: reach_probability(TREE, PROBS, [0, 0, 127]), r"start must be node ids of the tree \(0..126\), got 127"),
        (lambda: reach_probability(TREE, PROBS, [0.0, 0.0, 0.0]), "start must be a 1-D array of node ids"),
        (lambda: success_probability(TREE, _with(np.inf), CORRECT, START), r"probs\[0, 5\] must be a probability in \[0, 1\], got inf"),
        (lambda: success_probability(TREE, _with(1.5), CORRECT, START), r"probs\[0, 5\] must be a probability in \[0, 1\], got 1.5"),
        (lambda: success_probability(TREE, PROBS, CORRECT[:, :5], START), r"correct must have shape \(3, 127\), got \(3, 5\)"),
        (lambda: success_probability(TREE, PROBS, CORRECT[:2], START), r"correct must have shape \(3, 127\), got \(2, 127\)"),
        (lambda: success_probability(TREE, PROBS, CORRECT * 2, START), "correct must be booleans"),
        (lambda: success_probability(TREE, PROBS, CORRECT, START[:2]), r"start must have one node id per row \(3\), got 2"),
        (lambda: node_entropy(TREE, np.ones((2, 5))), r"probs must have shape \(P, 127\), got \(2, 5\)"),
        (lambda: node_entropy(TREE, _with(np.nan)), r"probs\[0, 5\] must be a probability"),
        (lambda: path_type_mass(TREE, PROBS[:2], PROBLEMS), r"probs must have shape \(3, 127\), got \(2, 127\)"),
        (lambda: path_type_mass(TREE, _with(-1.0), PROBLEMS), r"probs\[0, 5\] must be a probability"),
        (lambda: path_type_mass(fork_tree(2, 2, 0), PROBS, PROBLEMS), "problems are over 127 nodes, the tree has 7"),
        (lambda: exact_pass_at_k([0.5, np.nan], [1, 2]), "success probabilities must lie in \\[0, 1\\], got nan"),
        (lambda: exact_pass_at_k([0.5, 1.5], [1]), "success probabilities must lie in \\[0, 1\\], got 1.5"),
        (lambda: exact_pass_at_k([[0.5]], [1]), r"success must be a 1-D array, got shape \(1, 1\)"),
        (lambda: exact_pass_at_k([], [1]), "success must hold at least one"),
        (lambda: exact_pass_at_k([0.5], []), "k must be an integer or a non-empty 1-D list of integers, got \\[\\]"),
        (lambda: exact_pass_at_k([0.5], [0, 2]), "k must be an integer >= 1, got 0"),
        (lambda: exact_pass_at_k([0.5], [1.5]), "k must be an integer, got 1.5"),
    ],
)
def test_bad_arrays_are_rejected_before_any_kernel_runs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_valid_inputs_in_other_dtypes_and_layouts_give_the_same_result():
    expect = reach_probability(TREE, PROBS, START)
    fortran = np.asfortranarray(PROBS)
    assert np.array_equal(reach_probability(TREE, fortran, START.astype(np.int32)), expect)
    assert np.array_equal(reach_probability(TREE, PROBS[0], [0]), expect[:1])  # one row, one start
    assert np.array_equal(reach_probability(TREE, PROBS, list(START)), expect)
    assert exact_pass_at_k([0.5, 0.25], 2).shape == ()
    assert exact_pass_at_k([0.5, 0.25], [1, 2]) == pytest.approx([1 - (0.5 + 0.75) / 2, 1 - (0.25 + 0.5625) / 2])
