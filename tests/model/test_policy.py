"""The policy: the decoding kernel against a vectorised NumPy reference, the base policy on a
fork tree, and bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork.engines.exact import exact_pass_at_k, success_probability
from markovfork.tasks import fork_problems, fork_tree
from markovfork.model.policy import Decoding, Policy, problem_logits, transition_probs, transition_probs_reference
from strategies import build_case, random_trees

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


TREE = fork_tree(3, 2, 1)  # 15 nodes


@pytest.mark.parametrize(
    "logits, message",
    [
        (np.zeros((2, 5)), r"logits must have shape \(P, 15\), got \(2, 5\)"),
        (np.zeros((1, 2, 15)), r"logits must have shape \(P, 15\), got \(1, 2, 15\)"),
        (np.where(np.arange(15) == 4, np.nan, 0.0), r"logits\[0, 4\] must be a real number or -inf, got nan"),
        (np.where(np.arange(15) == 2, np.inf, 0.0), r"logits\[0, 2\] must be a real number or -inf, got inf"),
        (np.zeros((1, 15), bool), "logits must be real numbers, got dtype bool"),
    ],
)
def test_transition_probs_rejects_bad_logits(logits, message):
    with pytest.raises(ValueError, match=message):
        transition_probs(TREE, logits)


def test_minus_inf_logits_are_steps_never_taken():
    logits = np.zeros(15)
    logits[1] = -np.inf
    probs = transition_probs(TREE, logits)
    assert probs[0, 1] == 0.0 and probs[0, 2] == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=0.0), r"temperature must be a finite number in \(0, inf\), got 0.0"),
        (dict(temperature=float("nan")), "temperature must be a finite number"),
        (dict(temperature="1"), "temperature must be a number, got '1'"),
        (dict(top_k=1.5), "top_k must be an integer, got 1.5"),
        (dict(top_k=-1), r"top_k must be an integer in \[0, 9223372036854775807\], got -1"),
        (dict(top_p=0.0), r"top_p must be a finite number in \(0, 1\], got 0.0"),
        (dict(min_p=1.5), r"min_p must be a finite number in \[0, 1\], got 1.5"),
        (dict(min_p=True), "min_p must be a number, got True"),
    ],
)
def test_bad_decoding(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Decoding(**kwargs)


def test_bad_policy():
    with pytest.raises(ValueError, match="feature_dim must be an integer >= 0, got -1"):
        Policy.base(TREE, feature_dim=-1)
    with pytest.raises(ValueError, match=r"skill must be a finite number in \[-inf, inf\], got nan|skill must be a finite number"):
        Policy.base(TREE, skill=float("nan"))
    with pytest.raises(ValueError, match="policy arrays disagree"):
        Policy(np.zeros(15), np.zeros(14), np.zeros((15, 0)))
    with pytest.raises(ValueError, match="policy.fork_weight must be a 2-D array"):
        Policy(np.zeros(15), np.zeros(15), np.zeros(15))


def test_decoding_top_k_beyond_int64_is_rejected():
    with pytest.raises(ValueError, match="top_k must be an integer in \\[0, 9223372036854775807\\], got 9223372036854775808"):
        Decoding(top_k=2**63)
