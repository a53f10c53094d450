"""Reward-model inference against independent references.

PRM: a brute-force sum over leaves of reach probability (from the exact engine, started at each
node) times score. Best-of-n: enumeration of every n-tuple of draws with ties split among the
tied draws. KL tilt: the normalised product formula by hand, its limits in beta, the telescoping
identity with the soft value (path-level reweighting), and policy improvement. The TMC test
shows the Markovian-view claim that a population ORM favours consistency over accuracy.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork.engines.exact import exact_pass_at_k, path_type_mass, reach_probability, success_probability
from markovfork.tasks import tmc_chain, tmc_problems
from markovfork.model.problems import Problems
from markovfork.rl.reward_models import (
    best_of_n,
    kl_tilt,
    kl_tilt_reference,
    leaf_distribution,
    leaf_success,
    orm_scores,
    prm_scores,
    prm_scores_reference,
    soft_reweight,
    step_advantage,
)
from markovfork.model.tree import DECIPHERABLE, LEAF, tree_from_children
from strategies import build_case, random_trees


def _scores(tree, seed):
    """Leaf scores on a coarse grid (ties likely), NaN-free garbage off the leaves (ignored)."""
    rng = np.random.default_rng(seed)
    return np.where(tree.kind == LEAF, rng.integers(-2, 3, tree.n_nodes) / 2.0, rng.normal(size=tree.n_nodes))


def _small_tree():
    """root -> a, b; a -> leaves 3, 4; b -> leaves 5, 6, 7 (input ids = breadth-first ids)."""
    children = [[1, 2], [3, 4], [5, 6, 7], [], [], [], [], []]
    kind = [DECIPHERABLE] * 3 + [LEAF] * 5
    prob = [1.0, 0.3, 0.7, 0.5, 0.5, 0.2, 0.0, 0.8]
    tree, new_id = tree_from_children(children, kind, prob)
    assert np.array_equal(new_id, np.arange(8))
    return tree


# ----------------------------------------------------------------------------- ORM / PRM

def test_orm_is_the_weighted_share_of_problems_marking_a_leaf_correct():
    tree = _small_tree()
    correct = np.zeros((3, 8), dtype=bool)
    correct[0, [3, 5]] = correct[1, 3] = correct[2, [4, 7]] = True
    pr = Problems(start=[0, 0, 0], correct=correct, valid=correct, features=np.zeros((3, 0)), ids=[0, 1, 2])
    assert orm_scores(pr).tolist() == pytest.approx([0, 0, 0, 2 / 3, 1 / 3, 1 / 3, 0, 1 / 3])
    w = [1.0, 0.0, 3.0]
    assert orm_scores(pr, w).tolist() == pytest.approx([0, 0, 0, 0.25, 0.75, 0.25, 0, 0.75])
    for bad in ([1.0, 2.0], [0.0, 0.0, 0.0], [1.0, -1.0, 1.0], [1.0, np.nan, 1.0]):
        with pytest.raises(ValueError, match="weights"):
            orm_scores(pr, bad)


@given(random_trees(), st.integers(0, 2**32 - 1))
def test_prm_is_the_reach_weighted_leaf_score_from_every_node(case, seed):
    tree, _, probs, _ = build_case(case)
    scores = _scores(tree, seed)
    leaf = tree.kind == LEAF
    for row in probs:
        brute = np.array([(reach_probability(tree, row, [u])[0] * scores * leaf).sum() for u in range(tree.n_nodes)])
        np.testing.assert_allclose(prm_scores(tree, row, scores), brute, atol=1e-12)
        np.testing.assert_allclose(prm_scores_reference(tree, row, scores), brute, atol=1e-12)
    many = prm_scores(tree, probs, scores)  # (P, N) against one score row
    assert many.shape == probs.shape
    np.testing.assert_allclose(many, prm_scores_reference(tree, probs, scores), atol=1e-12)


@given(random_trees(), st.integers(0, 2**32 - 1))
def test_step_advantage_is_value_difference_and_has_base_mean_zero(case, seed):
    tree, _, probs, _ = build_case(case)
    scores = _scores(tree, seed)
    value = prm_scores(tree, probs, scores)
    adv = step_advantage(tree, probs, scores)
    assert np.all(adv[:, 0] == 0)
    for v in range(1, tree.n_nodes):
        np.testing.assert_allclose(adv[:, v], value[:, v] - value[:, tree.parent[v]], atol=1e-12)
    for u in np.flatnonzero(tree.n_children > 0):  # E_{v ~ pi(.|u)} A(u -> v) = 0
        kids = tree.children(u)
        np.testing.assert_allclose((probs[:, kids] * adv[:, kids]).sum(axis=1), 0.0, atol=1e-12)


# ----------------------------------------------------------------------------- KL tilt

def test_kl_tilt_is_the_normalised_product_formula():
    tree = _small_tree()
    adv = np.array([0.0, 0.2, -0.1, 1.0, 0.0, 0.3, 5.0, -0.3])
    beta = 0.5
    q = kl_tilt(tree, tree.edge_prob, adv, beta)
    za, zb = 0.3 * np.exp(0.4), 0.7 * np.exp(-0.2)
    z3, z4 = 0.5 * np.exp(2.0), 0.5
    z5, z7 = 0.2 * np.exp(0.6), 0.8 * np.exp(-0.6)
    expected = [1.0, za / (za + zb), zb / (za + zb), z3 / (z3 + z4), z4 / (z3 + z4), z5 / (z5 + z7), 0.0, z7 / (z5 + z7)]
    np.testing.assert_allclose(q, expected, rtol=1e-12)
    assert q[6] == 0.0  # base probability 0 stays 0, whatever its advantage


def test_kl_tilt_limits_in_beta():
    tree = _small_tree()
    adv = np.array([0.0, 0.2, -0.1, 1.0, 0.0, 0.3, 5.0, -0.3])
    np.testing.assert_allclose(kl_tilt(tree, tree.edge_prob, adv, 1e12), tree.edge_prob, atol=1e-10)
    greedy = kl_tilt(tree, tree.edge_prob, adv, 1e-6)  # argmax advantage among children the base can take
    np.testing.assert_array_equal(greedy, [1, 1, 0, 1, 0, 1, 0, 0])
    tiny = kl_tilt(tree, tree.edge_prob, 100 * adv, 1e-307)  # A / beta overflows to inf: still the argmax, no NaN
    np.testing.assert_array_equal(tiny, greedy)
    np.testing.assert_array_equal(kl_tilt_reference(tree, tree.edge_prob, 100 * adv, 1e-307), greedy)
    np.testing.assert_array_equal(kl_tilt(tree, tree.edge_prob, -100 * adv, 1e-307), [1, 0, 1, 0, 1, 0, 0, 1])


def test_kl_tilt_keeps_a_row_without_base_mass():
    tree = _small_tree()
    base = tree.edge_prob.copy()
    base[[5, 6, 7]] = 0.0  # node 2 has no child the base can take
    q = kl_tilt(tree, base, np.arange(8.0), 1.0)
    np.testing.assert_array_equal(q[[5, 6, 7]], 0.0)
    np.testing.assert_allclose(kl_tilt_reference(tree, base, np.arange(8.0), 1.0), q, rtol=1e-12)


def test_kl_tilt_works_row_wise():
    tree = _small_tree()
    adv = np.stack([np.arange(8.0), -np.arange(8.0)])
    both = kl_tilt(tree, tree.edge_prob, adv, 0.5)  # one base row against two advantage rows
    assert both.shape == (2, 8)
    for row, a in zip(both, adv):
        np.testing.assert_array_equal(row, kl_tilt(tree, tree.edge_prob, a, 0.5))


@given(random_trees(), st.integers(0, 2**32 - 1), st.sampled_from([0.05, 0.5, 1.0, 5.0]))
def test_kl_tilt_kernel_matches_reference_and_improves_the_value(case, seed, beta):
    tree, _, probs, _ = build_case(case)
    scores = _scores(tree, seed)
    adv = step_advantage(tree, probs, scores)
    q = kl_tilt(tree, probs, adv, beta)
    np.testing.assert_allclose(q, kl_tilt_reference(tree, probs, adv, beta), atol=1e-12)
    assert np.all(q[probs == 0] == 0)
    for u in np.flatnonzero(tree.n_children > 0):
        np.testing.assert_allclose(q[:, tree.children(u)].sum(axis=1), 1.0, atol=1e-12)
    # tilting each node towards higher base value raises the expected score from every node
    assert np.all(prm_scores(tree, q, scores) >= prm_scores(tree, probs, scores) - 1e-12)


@given(random_trees(), st.integers(0, 2**32 - 1), st.sampled_from([0.1, 1.0, 3.0]))
def test_kl_tilt_with_the_soft_advantage_is_the_path_level_reweighting(case, seed, beta):
    """With A(u -> v) = W(v) - W(u), W(u) = beta log sum_v pi(v) exp(W(v) / beta) (the soft value),
    the step ratios telescope: the tilted policy's leaf distribution is p(y) exp(r(y)/beta) / Z."""
    tree, _, probs, problems = build_case(case)
    scores = _scores(tree, seed)
    soft = np.where(tree.kind == LEAF, scores, 0.0)[None, :].repeat(len(probs), 0)
    for u in range(tree.n_nodes - 1, -1, -1):
        kids = tree.children(u)
        if kids.size:
            soft[:, u] = beta * np.log((probs[:, kids] * np.exp(soft[:, kids] / beta)).sum(axis=1))
    adv = np.zeros_like(soft)
    adv[:, 1:] = soft[:, 1:] - soft[:, tree.parent[1:]]
    tilted = leaf_distribution(tree, kl_tilt(tree, probs, adv, beta), problems.start)
    reweighted = soft_reweight(leaf_distribution(tree, probs, problems.start), scores, beta)
    np.testing.assert_allclose(tilted, reweighted, atol=1e-10)


def test_kl_tilt_with_the_expected_advantage_is_path_reweighting_only_one_step_deep():
    leaves = tree_from_children([[1, 2, 3], [], [], []], [DECIPHERABLE] + [LEAF] * 3, [1.0, 0.2, 0.3, 0.5])[0]
    r = np.array([0.0, 1.0, 0.0, 0.5])
    one_step = kl_tilt(leaves, leaves.edge_prob, step_advantage(leaves, leaves.edge_prob, r), 1.0)
    np.testing.assert_allclose(one_step, soft_reweight(leaf_distribution(leaves, leaves.edge_prob, [0])[0], r, 1.0)
                               + np.eye(4)[0], rtol=1e-12)
    tree = _small_tree()  # two steps deep: the expected value is not the soft value, the two differ
    r = np.array([0, 0, 0, 1.0, 0, 0, 0, 0.5])
    tilted = leaf_distribution(tree, kl_tilt(tree, tree.edge_prob, step_advantage(tree, tree.edge_prob, r), 1.0), [0])
    path = soft_reweight(leaf_distribution(tree, tree.edge_prob, [0]), r, 1.0)
    assert np.abs(tilted - path).max() > 1e-3


# ----------------------------------------------------------------------------- leaf distributions

def test_soft_reweight_hand_formula_and_limits():
    p = np.array([0.0, 0.5, 0.2, 0.3, 0.0])
    r = np.array([9.0, 1.0, 2.0, 0.0, 3.0])
    w = p * np.exp(r / 0.7)
    np.testing.assert_allclose(soft_reweight(p, r, 0.7), w / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(soft_reweight(p, r, 1e12), p, atol=1e-10)
    np.testing.assert_array_equal(soft_reweight(p, 1000 * r, 1e-3), [0, 0, 1, 0, 0])  # no overflow
    np.testing.assert_array_equal(soft_reweight(p, r, 1e-308), [0, 0, 1, 0, 0])  # r / tau overflows: still no NaN
    rows = np.stack([p, p[::-1]])
    np.testing.assert_allclose(soft_reweight(rows, r, 0.7)[1], soft_reweight(p[::-1], r, 0.7), rtol=1e-12)


def _best_of_n_enumerated(p, s, n):
    """Every n-tuple of draws; the tuple's mass is split evenly among its draws of the top score."""
    out = np.zeros_like(p)
    support = np.flatnonzero(p > 0)
    for draws in itertools.product(support, repeat=n):
        mass = np.prod(p[list(draws)])
        top = max(s[d] for d in draws)
        tied = [d for d in draws if s[d] == top]
        for d in tied:
            out[d] += mass / len(tied)
    return out


@pytest.mark.parametrize("n", [1, 2, 3])
def test_best_of_n_matches_enumeration_with_ties(n):
    p = np.array([0.1, 0.0, 0.25, 0.15, 0.3, 0.2])
    s = np.array([1.0, 5.0, 2.0, 2.0, 0.0, 1.0])  # two tied pairs, and a top score with no mass
    np.testing.assert_allclose(best_of_n(p, s, n), _best_of_n_enumerated(p, s, n), atol=1e-14)
    q = np.array([0.4, 0.1, 0.0, 0.2, 0.0, 0.3])
    stacked = best_of_n(np.stack([[p, q], [q, p]]), s, n)  # any leading shape, row by row
    assert stacked.shape == (2, 2, 6)
    np.testing.assert_allclose(stacked[0, 1], _best_of_n_enumerated(q, s, n), atol=1e-14)
    np.testing.assert_allclose(stacked[1, 1], stacked[0, 0], atol=0)


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2)), min_size=1, max_size=5), st.integers(1, 3))
def test_best_of_n_matches_enumeration_on_random_leaves(leaves, n):
    w = np.array([a for a, _ in leaves], dtype=float)
    if w.sum() == 0:
        w[0] = 1.0
    p, s = w / w.sum(), np.array([b for _, b in leaves], dtype=float)
    np.testing.assert_allclose(best_of_n(p, s, n), _best_of_n_enumerated(p, s, n), atol=1e-14)


def test_best_of_n_large_n_and_a_tiny_level():
    """F(<=s)^n - F(<s)^n = m sum_{j<n} F(<=s)^j F(<s)^(n-1-j): the sum has no cancellation."""
    p = np.array([1e-13, 0.5 - 1e-13, 0.5])
    s = np.array([1.0, 0.0, 2.0])
    n = 50
    f_lt, f_le = p[1], p[1] + p[0]
    tiny = p[0] * sum(f_le**j * f_lt ** (n - 1 - j) for j in range(n))
    got = best_of_n(p, s, n)
    assert got[0] == pytest.approx(tiny, rel=1e-9)
    assert got[2] == pytest.approx(1 - 0.5**n, rel=1e-12)
    assert got.sum() == pytest.approx(1.0, abs=1e-12)


@given(random_trees())
def test_leaf_success_of_the_leaf_distribution_is_the_exact_success(case):
    tree, _, probs, problems = build_case(case)
    dist = leaf_distribution(tree, probs, problems.start)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(leaf_success(dist, problems),
                               success_probability(tree, probs, problems.correct, problems.start), atol=1e-12)


def test_input_checks():
    tree = _small_tree()
    reach = reach_probability(tree, tree.edge_prob, [0])  # mass on inner nodes too: not a leaf distribution
    with pytest.raises(ValueError, match="sum to 1"):
        best_of_n(reach, np.zeros(8), 2)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        best_of_n(np.eye(8)[3], np.zeros(8), 0)
    with pytest.raises(ValueError, match="tau"):
        soft_reweight(np.eye(8)[3], np.zeros(8), 0.0)
    with pytest.raises(ValueError, match="beta"):
        kl_tilt(tree, tree.edge_prob, np.zeros(8), -1.0)
    with pytest.raises(ValueError, match="advantage must be finite"):
        kl_tilt(tree, tree.edge_prob, np.full(8, np.nan), 1.0)
    with pytest.raises(ValueError, match="leaf_scores must have shape"):
        prm_scores(tree, tree.edge_prob, np.zeros(7))
    with pytest.raises(ValueError, match="same number of rows"):
        prm_scores(tree, np.stack([tree.edge_prob] * 2), np.zeros((3, 8)))
    with pytest.raises(ValueError, match=r"probs\[0, 0\] must be a probability"):
        prm_scores(tree, tree.edge_prob * 2, np.zeros(8))


# ----------------------------------------------------------------------------- the TMC claim

def test_population_orm_best_of_n_favours_the_easy_path_on_the_tmc():
    """Markovian view: a population ORM rewards the path most often correct, so best-of-n with it
    concentrates every instance on the easy path (consistency), which cannot help an instance
    whose only correct paths are hard (accuracy). Numbers are in the module's report."""
    tmc = tmc_chain(4, 2, 2, 1, seed=0)
    tree, paths = tmc.tree, tmc.task_paths(0)
    problems = tmc_problems(tree, tmc, 0, 2000, seed=0)
    base = np.broadcast_to(tree.edge_prob, (len(problems), tree.n_nodes))
    orm = orm_scores(problems)
    easy = paths.leaf[paths.easy]
    assert easy.size == 1 and np.argmax(orm) == easy[0]  # the easy path is the most often correct
    dist = leaf_distribution(tree, base, problems.start)[0]
    base_mass = path_type_mass(tree, base, problems)
    assert dist[easy].sum() == pytest.approx(base_mass.easy_valid[0], abs=1e-12)
    shares = [best_of_n(dist, orm, n)[easy].sum() for n in (1, 2, 4, 8, 16, 64)]
    assert shares[0] == pytest.approx(base_mass.easy_valid[0]) and np.all(np.diff(shares) > 0) and shares[-1] > 1 - 1e-9
    hard = paths.leaf[~paths.easy]
    assert best_of_n(dist, orm, 16)[hard].sum() < 0.01 * dist[hard].sum()  # hard-valid paths forgotten
    # with n large every instance gets the easy path: pass@k is the share whose easy path is correct,
    # below the base's pass@30, which still reaches the instances correct only on hard paths
    only_hard = problems.correct[:, hard].any(axis=1) & ~problems.correct[:, easy[0]]
    assert only_hard.sum() >= 1
    bon = leaf_success(best_of_n(dist, orm, 64), problems)
    np.testing.assert_allclose(exact_pass_at_k(bon, [1, 30]), problems.correct[:, easy[0]].mean(), atol=1e-9)
    base_success = success_probability(tree, base, problems.correct, problems.start)
    assert exact_pass_at_k(bon, 30) < exact_pass_at_k(base_success, 30)
    # the KL tilt towards the ORM's process reward moves the same way, more as beta falls
    adv = step_advantage(tree, tree.edge_prob, orm)
    tilted = [leaf_distribution(tree, kl_tilt(tree, tree.edge_prob, adv, beta), problems.start[:1])[0][easy].sum()
              for beta in (1.0, 0.1, 0.01)]
    assert tilted[0] > shares[0] and np.all(np.diff(tilted) > 0) and tilted[-1] > 1 - 1e-9
