"""The RL update rules against brute force: per-problem analytic gradients against numerical
derivatives of each method's surrogate written as an explicit sum over paths; method weights
against enumeration of group outcomes; the sampled estimators against the analytic expectation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markovfork.tasks import fork_problems, fork_tree
from markovfork.rl import objectives as obj
from markovfork.rl.config import METHODS, RLConfig
from markovfork.rl.reference import grpo_weight_reference, numeric_gradient, paths_below, softmax_probs, surrogate
from markovfork.rl.train import RLStart, tabular_model, train_rl
from markovfork.testing import tree_cases


def _call(method, z, tree, correct, start, *, kl=0.0, ref=None, reject=0, p_reject=-1.0, g=4, k=2, lam=0.5):
    ints, floats = RLConfig(method=method, kl=kl, reject_easy=reject, group_size=g, passk_k=k, unlikeliness=lam).packed()
    probs = softmax_probs(tree, z)
    grad = np.zeros(tree.n_nodes)
    buf = np.empty((3, tree.n_nodes))
    ref = probs if ref is None else ref
    p = obj.analytic_gradient(ints, floats, tree.child_start, tree.parent, probs, correct, start, ref, p_reject, buf, grad)
    return p, grad, probs


def _success(tree, probs, correct, start):
    return sum(np.prod(probs[path]) * correct[path[-1] if path else start] for path in paths_below(tree, start))


@pytest.mark.parametrize("g", [2, 3, 5, 8])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9])
def test_grpo_weight_matches_enumeration_of_group_outcomes(g, p):
    assert obj.method_weight(obj.M_GRPO, p, g, 1) == pytest.approx(grpo_weight_reference(p, g), rel=1e-9, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(case=tree_cases(), method=st.sampled_from([m for m in METHODS if m != "ppo"]), data=st.data())
def test_analytic_gradient_is_the_derivative_of_the_surrogate(case, method, data):
    tree, problems = case.tree, case.problems
    if tree.n_nodes < 2:
        return
    x = 0
    start, correct = int(problems.start[x]), problems.correct[x]
    z = np.array(data.draw(st.lists(st.floats(-2, 2), min_size=tree.n_nodes, max_size=tree.n_nodes)))
    z[0] = 0.0
    ref = softmax_probs(tree, np.zeros(tree.n_nodes))
    kl = data.draw(st.sampled_from([0.0, 0.7]))
    p, grad, probs = _call(method, z, tree, correct, start, kl=kl, ref=ref)
    assert p == pytest.approx(_success(tree, probs, correct, start), abs=1e-12)
    # leaf coefficients of the surrogate, held at the current policy
    if method == "unlikely":
        reach = {path[-1] if path else start: np.prod(probs[path]) for path in paths_below(tree, start)}
        coef = np.zeros(tree.n_nodes)
        for y, q in reach.items():
            if correct[y]:
                rarer = sum(q2 for y2, q2 in reach.items() if correct[y2] and q2 < q)
                coef[y] = 1 - 0.5 * rarer
    else:
        weight = {"grpo": obj.method_weight(obj.M_GRPO, p, 4, 2), "passk": 2 * (1 - p),
                  "raft": (1 - (1 - p) ** 4) / p if p > 0 else 4.0}.get(method, 1.0)
        coef = weight * correct.astype(float)
    visit = np.zeros(tree.n_nodes)
    for path in paths_below(tree, start):
        for u in [start, *path[:-1]]:
            visit[u] += np.prod(probs[path])  # R(u) = sum of the probabilities of the paths through u
    f = lambda zz: surrogate(tree, zz, start, correct, coef=coef, kl=kl, ref=ref, visit=visit)  # noqa: E731
    expected = numeric_gradient(f, z)
    np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_reject_easy_scales_the_update_by_the_chance_that_r_samples_all_fail():
    tree = fork_tree(depth=3, branching=2, forks=1, seed=0)
    correct = fork_problems(tree, 1, seed=0).correct[0]
    z = np.linspace(-1, 1, tree.n_nodes)
    z[0] = 0
    _, plain, _ = _call("reinforce", z, tree, correct, 0)
    _, base_ref, _ = _call("reinforce", z, tree, correct, 0, reject=3, p_reject=0.4)
    p, current_ref, _ = _call("reinforce", z, tree, correct, 0, reject=3)
    np.testing.assert_allclose(base_ref, plain * 0.6**3, atol=1e-14)
    np.testing.assert_allclose(current_ref, plain * (1 - p) ** 3, atol=1e-14)


@settings(max_examples=20, deadline=None)
@given(case=tree_cases(), data=st.data())
def test_ppo_gradient_is_the_derivative_of_the_clipped_surrogate(case, data):
    tree, problems = case.tree, case.problems
    if tree.n_nodes < 2:
        return
    start, correct = int(problems.start[0]), problems.correct[0]
    n = tree.n_nodes
    z_old = np.array(data.draw(st.lists(st.floats(-1.5, 1.5), min_size=n, max_size=n)))
    shift = np.array(data.draw(st.lists(st.floats(-0.6, 0.6), min_size=n, max_size=n)))
    z_old[0] = shift[0] = 0
    z = z_old + shift
    old, probs = softmax_probs(tree, z_old), softmax_probs(tree, z)
    from markovfork.engines.exact import reach_probability
    from markovfork.rl.tree_ops import leaf_values

    reach = reach_probability(tree, old[None], np.array([start]))[0]
    value = np.empty(n)
    leaf_values(tree.child_start, old, correct.astype(float), value)
    inside = reach > 0
    inside[start] = True
    inside &= np.array([_below(tree, v, start) for v in range(n)])
    b = value[start]
    grad = np.zeros(n)
    obj.ppo_gradient(tree.child_start, tree.parent, probs, old, reach, value, inside, start, b, 0.2, 1.0, grad)
    f = lambda zz: surrogate(tree, zz, start, correct, ppo=(old, b, 0.2))  # noqa: E731
    # the clipped objective has kinks at rho = 1 +- clip: compare away from them
    rho = probs / old
    if np.any(np.abs(np.abs(rho - 1) - 0.2) < 1e-4):
        return
    np.testing.assert_allclose(grad, numeric_gradient(f, z), atol=1e-6)


def _below(tree, v, start):
    while v != start and v != 0:
        v = tree.parent[v]
    return v == start


@pytest.mark.parametrize("method", METHODS)
def test_sampled_estimates_average_to_the_analytic_gradient(method):
    """One step from the same policy: the sampled engine's gradient over 20,000 instances of
    G = 6 rollouts agrees with the analytic one within 5 standard errors per coordinate
    (standard errors from 10 independent batches); KL and reject-easy on."""
    tree = fork_tree(depth=3, branching=3, forks=1, seed=1)
    problems = fork_problems(tree, 4, seed=2)
    model = tabular_model(tree)
    theta = np.random.default_rng(0).normal(0, 0.8, tree.n_nodes)
    common = dict(method=method, iterations=1, lr=1e-3, group_size=6, passk_k=2, kl=0.3, reject_easy=1, ppo_epochs=1)
    exact = train_rl(model, problems, RLConfig(engine="analytic", **common), RLStart(theta))
    g_exact = (exact.theta[-1] - exact.theta[0]) / 1e-3
    batches = []
    for seed in range(10):
        cfg = RLConfig(engine="sampled", batch_instances=2000, seed=seed, **common)
        run = train_rl(model, problems, cfg, RLStart(theta))
        batches.append((run.theta[-1] - run.theta[0]) / 1e-3)
    batches = np.array(batches)
    mean, se = batches.mean(axis=0), batches.std(axis=0, ddof=1) / np.sqrt(len(batches))
    assert np.all(np.abs(mean - g_exact) <= 5 * se + 2e-3), (method, mean - g_exact, se)
