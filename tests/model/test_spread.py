"""Spread-first sampling: strata, the exact stratified pass@k, the estimator, both engines."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markovfork.metrics.estimators import pass_at_k
from markovfork.engines.exact import exact_pass_at_k, reach_probability, success_probability
from markovfork.model.problems import Problems
from markovfork.model.spread import (
    Spread, spread_leaves, spread_nodes, spread_nodes_reference, spread_pass_at_k, spread_success,
    stratified_pass_at_k, stratified_pass_at_k_reference, strata,
)
from markovfork.testing import tree_cases
from markovfork.model.tree import DECIPHERABLE, FORK, LEAF, TreeBuilder

SPREADS = st.builds(Spread, m=st.integers(1, 3), at=st.sampled_from(["first", "fork", 0, 1, 2]),
                    min_p=st.sampled_from([0.0, 0.01, 0.5]))


def _brute_pass_at_k(tree, probs, problems, spread, n, k):
    """Enumerate every outcome of the n samples: sample j's rule, its success probability by
    summing the leaves' path probabilities under the sample's own forced steps, then the
    probability over outcomes and k-subsets that a subset holds a success."""
    nodes = spread_nodes_reference(tree, probs, problems.start, spread)
    out = np.empty(len(problems))
    for x in range(len(problems)):
        q = []
        for j in range(n):
            row = probs[x].copy()
            for u in np.flatnonzero(nodes[x]):
                kids = np.arange(tree.child_start[u], tree.child_start[u + 1])
                ranked = kids[np.argsort(-row[kids], kind="stable")][: spread.m]
                ranked = ranked[probs[x, ranked] >= spread.min_p * probs[x, ranked[0]]]
                row[kids] = 0.0
                row[ranked[j % len(ranked)]] = 1.0
            reach = reach_probability(tree, row[None], problems.start[x:x + 1])[0]
            q.append(float((reach * problems.correct[x]).sum()))
        total = 0.0
        for outcome in itertools.product((0, 1), repeat=n):  # 1: success
            weight = math.prod(q[j] if o else 1 - q[j] for j, o in enumerate(outcome))
            fails = n - sum(outcome)
            total += weight * math.comb(fails, k) / math.comb(n, k)
        out[x] = 1.0 - total
    return out


@settings(max_examples=40, deadline=None)
@given(tree_cases(max_nodes=12, max_problems=3), SPREADS, st.integers(1, 5), st.data())
def test_exact_spread_pass_at_k_matches_enumeration_of_outcomes(case, spread, n, data):
    k = data.draw(st.integers(1, n))
    got = spread_pass_at_k(case.tree, case.probs, case.problems, spread, n, [k])[:, 0]
    want = _brute_pass_at_k(case.tree, case.probs, case.problems, spread, n, k)
    np.testing.assert_allclose(got, want, atol=1e-12)
    nodes = spread_nodes(case.tree, case.probs, case.problems.start, spread)
    np.testing.assert_array_equal(nodes, spread_nodes_reference(case.tree, case.probs, case.problems.start, spread))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.floats(0, 1)), min_size=1, max_size=4), st.data())
def test_stratified_formula_dp_equals_brute_force_and_k_equals_n(strata_, data):
    counts = np.array([[c for c, _ in strata_]])
    q = np.array([[p for _, p in strata_]])
    n = int(counts.sum())
    if n == 0:
        counts[0, 0], n = 1, 1
    ks = list(range(1, n + 1))
    got = stratified_pass_at_k(counts, q, ks)
    np.testing.assert_allclose(got, stratified_pass_at_k_reference(counts, q, ks), atol=1e-12)
    assert got[0, -1] == pytest.approx(1 - np.prod((1 - q[0]) ** counts[0]), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.floats(0, 1)), min_size=1, max_size=3))
def test_pooled_estimator_is_unbiased_for_stratified_pass_at_k(strata_):
    """E over the strata's independent binomial counts of 1 - C(n-c, k)/C(n, k), with c the
    pooled count, equals the exact formula (Vandermonde)."""
    counts = [c for c, _ in strata_]
    q = [p for _, p in strata_]
    n = sum(counts)
    pmfs = [[math.comb(c, i) * p**i * (1 - p) ** (c - i) for i in range(c + 1)] for c, p in strata_]
    for k in range(1, n + 1):
        expect = 0.0
        for cs in itertools.product(*(range(c + 1) for c in counts)):
            expect += math.prod(pm[i] for pm, i in zip(pmfs, cs)) * float(pass_at_k(n, sum(cs), k))
        exact = stratified_pass_at_k(np.array([counts]), np.array([q]), [k])[0, 0]
        assert expect == pytest.approx(exact, abs=1e-12)


def _uniform_fork(arms: int, depth_ok: float):
    """A root fork over ``arms`` arms; each arm a binary decipherable step (right with
    ``depth_ok``); one arm correct per problem."""
    tb = TreeBuilder()
    root = tb.add(FORK, valid_branches=1)
    heads = [tb.add(DECIPHERABLE, 1.0 / arms, root) for _ in range(arms)]
    ends = []
    for h in heads:
        ends.append(tb.add(LEAF, depth_ok, h))
        tb.add(LEAF, 1 - depth_ok, h)
    tree, new_id = tb.build()
    return tree, new_id[np.array(ends)]


def test_spread_over_all_arms_of_a_uniform_fork_recovers_the_collapsed_model():
    """A collapsed model puts all mass on one (random) arm: pass@k = (1/arms) (1 - (1-a)^k).
    Spreading over every arm gives each arm n/arms samples: at k = n pass@n = 1 - (1-a)^(n/arms),
    the uncollapsed model's coverage; for k >= arms every subset can cover all arms."""
    arms, a, n = 4, 0.7, 8
    tree, ends = _uniform_fork(arms, a)
    correct = np.zeros((arms, tree.n_nodes), dtype=bool)
    correct[np.arange(arms), ends] = True  # problem x: arm x is right
    problems = Problems(np.zeros(arms, int), correct, correct.copy(), np.zeros((arms, 0)), np.arange(arms))
    collapsed = np.tile(tree.edge_prob, (arms, 1))
    kids = tree.children(0)
    collapsed[:, kids] = np.eye(arms)[(np.arange(arms) + 1) % arms]  # every problem commits to a wrong arm
    collapsed[0, kids] = np.eye(arms)[0]  # ... but problem 0 to its right one
    plain = exact_pass_at_k(success_probability(tree, collapsed, correct, problems.start), [n])[0]
    assert plain == pytest.approx((1 - (1 - a) ** n) / arms)
    # all arms must qualify (min_p = 0); at depth 0 ("first" would skip the one-hot root)
    spread = spread_pass_at_k(tree, collapsed, problems, Spread(arms, 0, 0.0), n, [n, arms]).mean(axis=0)
    assert spread[0] == pytest.approx(1 - (1 - a) ** (n // arms))
    uniform = np.tile(tree.edge_prob, (arms, 1))
    assert spread_pass_at_k(tree, uniform, problems, Spread(arms, "fork", 0.01), n, [n]).mean() == pytest.approx(spread[0])
    assert spread[1] > plain


@settings(max_examples=30, deadline=None)
@given(tree_cases(max_nodes=12, max_problems=3), st.sampled_from(["first", "fork", 1]))
def test_m1_is_the_policy_restricted_to_the_top_child(case, at):
    spread = Spread(1, at)
    s, q = spread_success(case.tree, case.probs, case.problems, spread, 5)
    assert np.all(s.size == 1)
    nodes = spread_nodes(case.tree, case.probs, case.problems.start, spread)
    row = case.probs.copy()
    for x, u in zip(*np.nonzero(nodes)):
        kids = np.arange(case.tree.child_start[u], case.tree.child_start[u + 1])
        top = kids[np.argmax(row[x, kids])]  # first of the ties
        row[x, kids] = 0.0
        row[x, top] = 1.0
    want = success_probability(case.tree, row, case.problems.correct, case.problems.start)
    np.testing.assert_allclose(q, want, atol=1e-12)
    np.testing.assert_allclose(spread_pass_at_k(case.tree, case.probs, case.problems, spread, 5, [1, 5]),
                               1 - (1 - want[:, None]) ** np.array([1, 5]), atol=1e-12)


def test_sampled_spread_agrees_with_exact_and_keeps_sample_order():
    """Monte Carlo pass@k over spread leaves is within 4 standard errors of the exact value, and
    sample j passes the spread node's child of rank j mod m'."""
    arms, n = 3, 12
    tree, ends = _uniform_fork(arms, 0.6)
    rng = np.random.default_rng(0)
    P = 400
    arm = rng.integers(0, arms, P)
    correct = np.zeros((P, tree.n_nodes), dtype=bool)
    correct[np.arange(P), ends[arm]] = True
    problems = Problems(np.zeros(P, int), correct, correct.copy(), np.zeros((P, 0)), np.arange(P))
    probs = np.tile(tree.edge_prob, (P, 1))
    kids = tree.children(0)
    probs[:, kids] = rng.dirichlet(np.ones(arms), P)
    spread = Spread(2, "first", 0.0)
    leaves = spread_leaves(tree, probs, problems.start, spread, n, seed=3)
    first_step = tree.parent[leaves]
    ranked = kids[np.argsort(-probs[:, kids], axis=1, kind="stable")]
    np.testing.assert_array_equal(first_step, ranked[:, np.arange(n) % 2])
    c = correct[np.arange(P)[:, None], leaves].sum(axis=1)
    est = np.atleast_2d(pass_at_k(n, c, [1, 4, 12]))
    exact = spread_pass_at_k(tree, probs, problems, spread, n, [1, 4, 12])
    se = est.std(axis=0) / np.sqrt(P)
    assert np.all(np.abs(est.mean(axis=0) - exact.mean(axis=0)) < 4 * se + 1e-9)


def test_spread_settings_checks():
    assert Spread(2, at=3) == Spread(2, "depth", depth=3)
    assert Spread.parse_at("fork") == {"at": "fork"} and Spread.parse_at("2") == {"at": "depth", "depth": 2}
    for bad in (dict(m=-1), dict(at="root"), dict(min_p=1.5), dict(at=-1)):
        with pytest.raises(ValueError):
            Spread(**bad)
    with pytest.raises(ValueError, match="k must be <= n"):
        stratified_pass_at_k([[2, 1]], [[0.5, 0.5]], [4])
    s = strata(_uniform_fork(2, 0.5)[0], np.tile(_uniform_fork(2, 0.5)[0].edge_prob, (1, 1)), [0], Spread(2), 5)
    assert s.count.tolist() == [3, 2]
