"""train_rl end to end: input checks, determinism, snapshots, the analytic reward curve against
exact success probabilities, monotone ascent, parameter tying (chain rule), the sampled engine
tracking the analytic one, reject-easy, and the fork logits' dual update against a primal
finite-difference reference."""

import numpy as np
import pytest

from markovfork.engines.exact import success_probability
from markovfork.tasks import fork_problems, fork_tree
from markovfork.model.policy import transition_probs
from markovfork.model.problems import Problems
from markovfork.rl.config import RLConfig
from markovfork.rl.reference import numeric_gradient
from markovfork.rl.train import LogitModel, RLStart, step_logits, tabular_model, train_rl
from markovfork.model.tree import FORK


@pytest.fixture(scope="module")
def small():
    """A 15-node binary tree of depth 3 with a fork at the root, four problems, a tabular model
    started at the tree's base logits, and unequal instance weights."""
    tree = fork_tree(depth=3, branching=2, forks=1, easy_prob=0.7, seed=0)
    problems = fork_problems(tree, 4, seed=1)
    model = tabular_model(tree)
    theta = tree.edge_logit.copy()
    theta[0] = 0.0
    return tree, problems, model, theta, np.array([0.4, 0.3, 0.2, 0.1])


def _expected_reward(model, problems, weights, theta, skill=0.0, fork=None):
    """sum_x w_x p_x: exact success probabilities (markovfork.engines.exact) of the policy's softmax rows."""
    probs = transition_probs(model.tree, step_logits(model, problems, theta, skill, fork))
    return float(weights @ success_probability(model.tree, probs, problems.correct, problems.start))


# ----------------------------------------------------------------------------- input checks

@pytest.mark.parametrize("weights", [[1.0, 1.0], [1.0, -1.0, 1.0, 1.0], [0, 0, 0, 0], [np.nan, 1, 1, 1],
                                     [np.inf, 1, 1, 1], [[1.0, 1.0, 1.0, 1.0]]])
def test_bad_weights_are_one_line_value_errors(small, weights):
    _, problems, model, theta, _ = small
    with pytest.raises(ValueError, match="weights") as err:
        train_rl(model, problems, RLConfig(iterations=2), RLStart(theta), weights=weights)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("snapshots", [[-1], [0, 3], [5, 1]])
def test_snapshots_outside_the_run_are_rejected(small, snapshots):
    _, problems, model, theta, _ = small
    with pytest.raises(ValueError, match=r"snapshots must lie in 0\.\.2"):
        train_rl(model, problems, RLConfig(iterations=2), RLStart(theta), snapshots=snapshots)


def test_non_integer_snapshots_are_rejected(small):
    _, problems, model, theta, _ = small
    with pytest.raises(ValueError, match="snapshots"):
        train_rl(model, problems, RLConfig(iterations=2), RLStart(theta), snapshots=[1.7])


def test_start_of_the_wrong_size_is_rejected(small):
    _, problems, model, theta, _ = small
    with pytest.raises(ValueError, match=r"start\.theta must have 15 entries"):
        train_rl(model, problems, RLConfig(iterations=1), RLStart(theta[:-1]))
    with pytest.raises(ValueError, match=r"start\.fork must be \(4, 0\)"):
        train_rl(model, problems, RLConfig(iterations=1), RLStart(theta, fork=np.zeros((4, 1))))
    with pytest.raises(ValueError):  # NaN logits are refused before any training
        train_rl(model, problems, RLConfig(iterations=1), RLStart(np.full(15, np.nan)))


@pytest.mark.parametrize("field, value", [
    ("method", "sft"), ("engine", "exact"), ("reject_reference", "best"), ("iterations", -1),
    ("iterations", 2.5), ("lr", 0.0), ("lr", np.nan), ("group_size", 0), ("batch_instances", 0),
    ("kl", -0.1), ("kl", np.inf), ("reject_easy", -1), ("clip", 0.0), ("clip", 1.5), ("ppo_epochs", 0),
    ("passk_k", 0), ("unlikeliness", 1.5), ("seed", -1), ("iterations", True),
])
def test_bad_config_values_are_one_line_value_errors_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field) as err:
        RLConfig(**{field: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kw, needed", [(dict(method="ppo", group_size=1), "group_size >= 2"),
                                        (dict(method="passk", passk_k=4, group_size=4), "group_size >= passk_k")])
def test_sampled_leave_one_out_methods_need_a_group(kw, needed):
    with pytest.raises(ValueError, match=needed):
        RLConfig(engine="sampled", **kw)
    RLConfig(engine="analytic", **kw)  # the exact expectation needs no group of rollouts


def test_start_arrays_are_not_modified(small):
    _, problems, model, theta, w = small
    keep = theta.copy()
    train_rl(model, problems, RLConfig(method="reinforce", iterations=5), RLStart(theta), weights=w)
    np.testing.assert_array_equal(theta, keep)


# ----------------------------------------------------------------------------- determinism, snapshots

@pytest.mark.parametrize("engine", ["analytic", "sampled"])
def test_same_seed_same_trace(small, engine):
    _, problems, model, theta, w = small
    cfg = RLConfig(method="grpo", engine=engine, iterations=20, lr=0.5, batch_instances=3, reject_easy=1, seed=7)
    a = train_rl(model, problems, cfg, RLStart(theta), weights=w, snapshots=range(21))
    b = train_rl(model, problems, cfg, RLStart(theta), weights=w, snapshots=range(21))
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.reward, b.reward)
    np.testing.assert_array_equal(a.rejected, b.rejected)


def test_sampled_engine_different_seeds_differ(small):
    _, problems, model, theta, w = small
    runs = [train_rl(model, problems, RLConfig(method="grpo", engine="sampled", iterations=20, lr=0.5, seed=s),
                     RLStart(theta), weights=w) for s in (0, 1)]
    assert not np.array_equal(runs[0].theta[-1], runs[1].theta[-1])


@pytest.mark.parametrize("engine", ["analytic", "sampled"])
def test_snapshots_are_the_parameters_at_those_iterations(small, engine):
    """Snapshot 0 is the start; the snapshot at iteration k is where a k-iteration run ends (same
    seed: the sampled engine draws the same stream); unsorted, repeated requests come back once."""
    _, problems, model, theta, w = small
    cfg = RLConfig(method="reinforce", engine=engine, iterations=12, lr=0.7, group_size=4, seed=3)
    trace = train_rl(model, problems, cfg, RLStart(theta), weights=w, snapshots=[12, 5, 0, 5])
    np.testing.assert_array_equal(trace.iterations, [0, 5, 12])
    np.testing.assert_array_equal(trace.theta[0], theta)
    assert trace.theta.shape == (3, model.n_theta) and trace.reward.shape == (13,) and trace.rejected.shape == (12,)
    short = train_rl(model, problems, RLConfig(**{**cfg.__dict__, "iterations": 5}), RLStart(theta), weights=w)
    np.testing.assert_array_equal(trace.theta[1], short.theta[-1])
    assert not np.array_equal(trace.theta[1], trace.theta[2])
    default = train_rl(model, problems, cfg, RLStart(theta), weights=w)
    np.testing.assert_array_equal(default.iterations, [0, 12])
    none = train_rl(model, problems, RLConfig(**{**cfg.__dict__, "iterations": 0}), RLStart(theta), weights=w)
    np.testing.assert_array_equal(none.theta, [theta])  # default snapshots 0 and 0: one snapshot
    assert none.reward.shape == (1,) and none.rejected.shape == (0,)


# ----------------------------------------------------------------------------- analytic engine

@pytest.mark.parametrize("method, kw", [("reinforce", {}), ("grpo", dict(kl=0.3)), ("ppo", dict(ppo_epochs=2)),
                                        ("unlikely", dict(reject_easy=2))])
def test_analytic_reward_curve_is_the_exact_success_of_the_snapshots(small, method, kw):
    _, problems, model, theta, w = small
    cfg = RLConfig(method=method, iterations=15, lr=0.8, **kw)
    trace = train_rl(model, problems, cfg, RLStart(theta), weights=w, snapshots=range(16))
    expected = [_expected_reward(model, problems, w, th) for th in trace.theta]
    np.testing.assert_allclose(trace.reward, expected, rtol=0, atol=1e-12)
    assert trace.reward[-1] > trace.reward[0] + 0.05


def test_small_step_reinforce_improves_the_expected_reward_monotonically(small):
    """The population objective J = sum_x w_x p_x is smooth (bounded curvature in the logits);
    gradient ascent with a small step increases it at every iteration."""
    _, problems, model, theta, w = small
    trace = train_rl(model, problems, RLConfig(method="reinforce", iterations=150, lr=0.2), RLStart(theta), weights=w)
    steps = np.diff(trace.reward)
    assert np.all(steps > 0), steps.min()
    assert trace.reward[-1] - trace.reward[0] > 0.1


def test_tied_nodes_keep_equal_logits_and_share_their_gradient(small):
    """Tie node b to node a's parameter: their logits stay equal, and one step moves the shared
    parameter by the sum of the untied model's steps at a and b (chain rule)."""
    tree, problems, untied, theta, w = small
    a, b = 3, 5  # depth-2 nodes in different subtrees of the root fork
    tie = np.arange(tree.n_nodes, dtype=np.int64)
    tie[0], tie[b] = -1, a
    tied = tabular_model(tree, tie, tree.n_nodes)
    start = theta.copy()
    start[b] = start[a]
    cfg = RLConfig(method="reinforce", iterations=30, lr=0.5)
    trace = train_rl(tied, problems, cfg, RLStart(start), weights=w, snapshots=range(31))
    for th in trace.theta:
        z = step_logits(tied, problems, th)
        np.testing.assert_array_equal(z[:, a], z[:, b])
    assert abs(trace.theta[-1, a] - start[a]) > 0.01
    assert trace.theta[-1, b] == start[b]  # the unused parameter b never moves
    one = RLConfig(method="reinforce", iterations=1, lr=0.5)
    step_tied = np.diff(train_rl(tied, problems, one, RLStart(start), weights=w).theta, axis=0)[0]
    step_free = np.diff(train_rl(untied, problems, one, RLStart(start), weights=w).theta, axis=0)[0]
    assert step_tied[a] == pytest.approx(step_free[a] + step_free[b], abs=1e-14)
    others = np.setdiff1d(np.arange(tree.n_nodes), [a, b])
    np.testing.assert_allclose(step_tied[others], step_free[others], atol=1e-15)


def test_sampled_engine_tracks_the_analytic_trajectory(small):
    """REINFORCE, 4000 instances x 4 rollouts per iteration, 10 steps of lr 0.5. A rollout's
    score d log pi / dz has entries in [-1, 1] and its reward is 0/1, so one instance's estimate
    has per-coordinate standard deviation <= 1 and an iteration's mean <= 1/sqrt(4000); after
    T steps the parameters differ from the exact trajectory by at most about lr sqrt(T / 4000)
    = 0.025 per coordinate (one standard deviation; over 10 small steps the curvature barely
    amplifies it). Measured over seeds 0-29: at most 0.007 on the logits and 0.0015 on the
    expected reward. Tolerances: 0.03 on every logit, 0.005 on the expected reward of the
    snapshots, and 0.02 on the engine's rollout-mean reward column (sd sqrt(1/4 / 16000) =
    0.004 per iteration: 5 sd)."""
    _, problems, model, theta, w = small
    common = dict(method="reinforce", iterations=10, lr=0.5, group_size=4)
    snaps = [0, 2, 5, 10]
    exact = train_rl(model, problems, RLConfig(engine="analytic", **common), RLStart(theta), weights=w, snapshots=snaps)
    sampled = train_rl(model, problems, RLConfig(engine="sampled", batch_instances=4000, seed=11, **common),
                       RLStart(theta), weights=w, snapshots=snaps)
    assert np.max(np.abs(sampled.theta - exact.theta)) < 0.03
    reward_sampled = [_expected_reward(model, problems, w, th) for th in sampled.theta]
    np.testing.assert_allclose(reward_sampled, exact.reward[snaps], atol=0.005)
    assert exact.reward[-1] - exact.reward[0] > 0.1  # the trajectory moves much more than the tolerance
    # the sampled engine's own reward column is the mean of its rollouts: close to the exact curve
    np.testing.assert_allclose(sampled.reward[:-1], exact.reward[:-1], atol=0.02)
    assert np.isnan(sampled.reward[-1])


# ----------------------------------------------------------------------------- reject-easy

def _shared_leaf_problems(tree):
    """Three problems that all accept leaf 7 (plus one other leaf each): one tabular policy can
    solve every problem."""
    correct = np.zeros((3, tree.n_nodes), dtype=bool)
    correct[:, 7] = True
    correct[[0, 1, 2], [10, 12, 14]] = True
    return Problems(np.zeros(3, np.int64), correct, correct, np.zeros((3, 0)), np.arange(3))


def test_reject_easy_with_the_current_policy_stops_updating_once_everything_is_solved(small):
    tree, _, model, theta, _ = small
    problems = _shared_leaf_problems(tree)
    w = np.full(3, 1 / 3)
    cfg = RLConfig(method="reinforce", iterations=400, lr=5.0, reject_easy=2, reject_reference="current")
    trace = train_rl(model, problems, cfg, RLStart(theta), weights=w, snapshots=range(401))
    for it in (0, 10, 399):  # the removed share: sum_x w_x (1 - (1 - p_x)^r), p_x of the current policy
        probs = transition_probs(tree, step_logits(model, problems, trace.theta[it]))
        p = success_probability(tree, probs, problems.correct, problems.start)
        assert trace.rejected[it] == pytest.approx(w @ (1 - (1 - p) ** 2), abs=1e-12)
    assert trace.rejected[0] < 0.5 and trace.rejected[-1] > 0.99
    steps = np.abs(np.diff(trace.theta, axis=0)).max(axis=1)
    assert steps[-1] < 5e-3 * steps.max()  # the update is damped by (1 - p_x)^r -> 0
    # sampled: once every reject sample solves the problem, no instance is kept and nothing moves
    cfg_s = RLConfig(method="reinforce", engine="sampled", iterations=400, lr=5.0, batch_instances=32,
                     group_size=4, reject_easy=2, reject_reference="current", seed=1)
    run = train_rl(model, problems, cfg_s, RLStart(theta), weights=w, snapshots=range(401))
    assert run.rejected[:3].mean() < 0.7 and run.rejected[-100:].mean() > 0.95
    frozen = np.flatnonzero(run.rejected == 1.0)
    assert frozen.size > 200
    np.testing.assert_array_equal(np.isnan(run.reward[:-1]), run.rejected == 1.0)
    np.testing.assert_array_equal(run.theta[frozen], run.theta[frozen + 1])


def test_reject_easy_with_the_base_reference_removes_a_fixed_share(small):
    _, problems, model, theta, w = small
    trace = train_rl(model, problems, RLConfig(method="reinforce", iterations=20, lr=1.0, reject_easy=3),
                     RLStart(theta), weights=w)
    probs = transition_probs(model.tree, step_logits(model, problems, theta))
    p_base = success_probability(model.tree, probs, problems.correct, problems.start)
    np.testing.assert_allclose(trace.rejected, w @ (1 - (1 - p_base) ** 3), atol=1e-12)


# ----------------------------------------------------------------------------- fork logits (dual form)

def _fork_setup():
    """A depth-3 binary tree whose first three internal nodes are forks: its six fork children
    each get a feature-weight column; features phi (P, 3), Gram matrix phi phi^T, random start
    fork logits; the shared skill is on (decipherable nodes at depth 2)."""
    tree = fork_tree(depth=3, branching=2, forks=3, easy_prob=0.6, seed=2)
    problems = fork_problems(tree, 5, feature_dim=3, seed=3)
    fork_child = np.zeros(tree.n_nodes, dtype=bool)
    fork_child[1:] = tree.kind[tree.parent[1:]] == FORK
    fc_col = np.full(tree.n_nodes, -1, dtype=np.int64)
    fc_col[fork_child] = np.arange(fork_child.sum())
    tie = np.arange(tree.n_nodes, dtype=np.int64)
    tie[0] = -1
    base = tree.edge_logit.copy()
    base[0] = 0.0
    model = LogitModel(tree, base, tie, tree.n_nodes, fc_col, int(fork_child.sum()), True)
    rng = np.random.default_rng(4)
    phi = problems.features
    fork0 = phi @ rng.normal(0, 0.5, (3, model.n_fork))
    start = RLStart(rng.normal(0, 0.3, tree.n_nodes), 0.2, fork0, phi @ phi.T)
    return model, problems, phi, start, np.array([0.3, 0.25, 0.2, 0.15, 0.1])


def test_one_step_of_the_fork_logits_is_the_finite_difference_gradient():
    """coef after one step = lr dJ/dF, with dJ/dF[x, f] by central differences of the exact
    J = sum_x w_x p_x in each fork logit; theta and the skill move by lr times theirs."""
    model, problems, _, start, w = _fork_setup()
    lr = 0.1
    trace = train_rl(model, problems, RLConfig(method="reinforce", iterations=1, lr=lr), start, weights=w)
    fork0 = start.fork

    def j_of_fork(flat):
        return _expected_reward(model, problems, w, start.theta, start.skill, flat.reshape(fork0.shape))

    flat = np.concatenate([[0.0], fork0.ravel()])  # numeric_gradient skips entry 0
    d_fork = numeric_gradient(lambda v: j_of_fork(v[1:]), flat)[1:].reshape(fork0.shape)
    np.testing.assert_allclose(trace.coef[1] / lr, d_fork, atol=1e-7)
    assert np.abs(d_fork).max() > 1e-2  # a real signal, far above the tolerance
    d_theta = numeric_gradient(lambda th: _expected_reward(model, problems, w, th, start.skill, fork0), start.theta)
    np.testing.assert_allclose((trace.theta[1] - trace.theta[0]) / lr, d_theta, atol=1e-7)
    h = 1e-6
    d_skill = (_expected_reward(model, problems, w, start.theta, start.skill + h, fork0)
               - _expected_reward(model, problems, w, start.theta, start.skill - h, fork0)) / (2 * h)
    assert (trace.skill[1] - trace.skill[0]) / lr == pytest.approx(d_skill, abs=1e-7)


def test_dual_fork_update_equals_primal_feature_weight_ascent():
    """Four steps of the engine against a NumPy primal run: parameters (theta, s, W) with fork
    logits F = F_0 + phi W^T, each step params += lr * (central-difference gradient of J). The
    engine's fork logits F_0 + K coef (K = phi phi^T) equal phi W^T + F_0 at every snapshot."""
    model, problems, phi, start, w = _fork_setup()
    lr, steps = 0.5, 4
    trace = train_rl(model, problems, RLConfig(method="reinforce", iterations=steps, lr=lr), start, weights=w,
                     snapshots=range(steps + 1))
    n_t, n_f, d = model.n_theta, model.n_fork, phi.shape[1]

    def unpack(v):
        return v[1:1 + n_t], v[1 + n_t], v[2 + n_t:].reshape(n_f, d)

    def objective(v):
        theta, skill, weight = unpack(v)
        return _expected_reward(model, problems, w, theta, skill, start.fork + phi @ weight.T)

    v = np.concatenate([[0.0], start.theta, [start.skill], np.zeros(n_f * d)])  # entry 0: unused
    for it in range(steps + 1):
        theta, skill, weight = unpack(v)
        np.testing.assert_allclose(trace.theta[it], theta, atol=1e-7)
        assert trace.skill[it] == pytest.approx(skill, abs=1e-7)
        np.testing.assert_allclose(start.fork + start.gram @ trace.coef[it], start.fork + phi @ weight.T, atol=1e-7)
        if it < steps:
            v = v + lr * numeric_gradient(objective, v)
    assert np.abs(trace.coef[-1]).max() > 0.05
    assert trace.reward[-1] > trace.reward[0]


def test_fixed_skill_and_minibatch_dual_rows():
    """train_skill=False keeps s; a sampled step with one instance moves only that instance's
    dual coefficients (SGD on W adds lr * dJ_x/dF_x phi_x only for the drawn x)."""
    model, problems, _, start, w = _fork_setup()
    trace = train_rl(model, problems, RLConfig(method="reinforce", iterations=5, lr=0.5, train_skill=False),
                     start, weights=w)
    assert np.all(trace.skill == start.skill)
    for seed in range(5):
        run = train_rl(model, problems, RLConfig(method="reinforce", engine="sampled", iterations=1, lr=0.5,
                                                 batch_instances=1, group_size=8, seed=seed), start, weights=w)
        assert np.count_nonzero(np.abs(run.coef[-1]).sum(axis=1)) <= 1
