"""SFT simulation: gradients against independent references, the dual form against the primal
policy, and the phenomena the package must reproduce (RESEARCH.md section 5) at the defaults."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from markovfork.exact import exact_pass_at_k, success_probability
from markovfork.policy import problem_logits, transition_probs
from markovfork.sft.data import SFTMix, sample_trajectories, teacher_trajectories, trajectory_steps
from markovfork.sft.evaluate import evaluate_exact, evaluate_sampled
from markovfork.sft.model import SFTParams, fork_children, fused_step_gradient, step_gradient_reference, step_probs
from markovfork.sft.simulate import SimulationConfig, config_grid, load_config, simulate
from markovfork.sft.task import PathStarTask
from markovfork.sft.train import TrainSettings, derive_seeds, train_analytic, train_sampled
from markovfork.tree import DECIPHERABLE

SMALL = PathStarTask(depth=3, feature_dim=40, n_train=30, n_test=20)


def _random_params(ps, rng):
    tree = ps.tree
    fc = fork_children(tree)
    theta = np.zeros(tree.n_nodes)
    theta[fc] = rng.normal(0, 1, fc.size)
    weight = np.zeros((tree.n_nodes, ps.task.feature_dim))
    weight[fc] = rng.normal(0, 0.3, (fc.size, ps.task.feature_dim))
    return SFTParams(theta, weight, float(rng.normal(1, 1)))


def _fused(ps, params, steps):
    """The training kernel's (grad w.r.t. fork-child logits (F, P), dL/ds, loss) for ``params``."""
    tree = ps.tree
    fc = fork_children(tree)
    fc_col = np.full(tree.n_nodes, -1, dtype=np.int64)
    fc_col[fc] = np.arange(fc.size)
    parent_dec = np.zeros(tree.n_nodes, dtype=bool)
    parent_dec[1:] = tree.kind[tree.parent[1:]] == DECIPHERABLE
    visible = ps.train.on_correct_path(tree) & parent_dec
    fork_logit = (ps.train.features @ params.weight[fc].T).T.copy()  # (F, P)
    return fused_step_gradient(
        tree, tree.edge_logit + params.theta, fc_col, visible, fork_logit, params.skill,
        steps.problem, steps.node, steps.target, steps.weight,
    )


def _loss(ps, params, steps):
    probs = step_probs(ps.tree, params, ps.train)
    return -np.sum(steps.weight * np.log(probs[steps.problem, steps.target]))


@given(seed=st.integers(0, 2**16), rho=st.floats(0, 1), diversity=st.sampled_from(["data", "problem", "rationale"]))
@settings(max_examples=20)
def test_step_gradient_matches_reference_and_finite_differences(seed, rho, diversity):
    """The fused training kernel equals the probability-table reference, and both equal central
    finite differences of the loss (skill, and theta of a fork child)."""
    ps = SMALL.build(seed)
    rng = np.random.default_rng(seed)
    params = _random_params(ps, rng)
    steps = trajectory_steps(ps.tree, teacher_trajectories(ps, SFTMix(rho, diversity), seed), ps.train.start)
    fc = fork_children(ps.tree)
    g_fc, g_s, loss = _fused(ps, params, steps)
    probs = step_probs(ps.tree, params, ps.train)
    ref = step_gradient_reference(ps.tree, probs, ps.train.on_correct_path(ps.tree), steps.problem, steps.node, steps.target, steps.weight)
    np.testing.assert_allclose(g_fc, ref.logit[:, fc].T, atol=1e-12)
    assert g_s == pytest.approx(ref.skill, abs=1e-10) and loss == pytest.approx(ref.loss, rel=1e-12)
    eps = 1e-6
    up, down = SFTParams(params.theta, params.weight, params.skill + eps), SFTParams(params.theta, params.weight, params.skill - eps)
    fd_skill = (_loss(ps, up, steps) - _loss(ps, down, steps)) / (2 * eps)
    assert g_s == pytest.approx(fd_skill, rel=1e-5, abs=1e-6)
    c = int(fc[0])
    t_up, t_down = params.theta.copy(), params.theta.copy()
    t_up[c] += eps
    t_down[c] -= eps
    fd_theta = (_loss(ps, SFTParams(t_up, params.weight, params.skill), steps) - _loss(ps, SFTParams(t_down, params.weight, params.skill), steps)) / (2 * eps)
    assert g_fc[0].sum() == pytest.approx(fd_theta, rel=1e-5, abs=1e-6)


def test_dual_form_equals_primal_policy():
    """The trainer keeps W = A^T phi implicitly; the materialised W must give the same test pass@k."""
    ps = PathStarTask(feature_dim=60, n_train=80, n_test=50).build(0)
    settings_ = TrainSettings(epochs=6, eval_epochs=(0, 6), ks=(1, 4, 16))
    result = train_analytic(ps, SFTMix(0.7), settings_, seed=0)
    probs = step_probs(ps.tree, result.params, ps.test)
    ev = evaluate_exact(ps.tree, probs, ps.test, settings_.ks)
    np.testing.assert_allclose(ev.pass_at_k, result.records[-1].evaluation.pass_at_k, atol=1e-10)
    assert ev.fork_confidence_wrong == pytest.approx(result.records[-1].evaluation.fork_confidence_wrong, abs=1e-10)


def test_base_model_pass_at_1_is_the_closed_form():
    """Base: mode prior x (forward 1/arms a^depth, reverse a^(depth+1), rationale a^(r+1+depth))."""
    task = PathStarTask(depth=4, rationale_steps=2, feature_dim=10, n_train=10, n_test=30)
    ps = task.build(1)
    r = train_analytic(ps, SFTMix(1.0), TrainSettings(epochs=0, eval_epochs=(0,), ks=(1,)), 0).records[0]
    a = task.base_step_accuracy
    expected = (0.5 * a**4 + a**5 + a**7) / 3
    assert r.evaluation.pass_at_k[0] == pytest.approx(expected, rel=1e-12)


def test_data_synthesis_prevalence_and_diversity():
    ps = PathStarTask(feature_dim=5, n_train=200, n_test=10).build(0)
    data = teacher_trajectories(ps, SFTMix(0.3, "data"), 1)
    assert data.fork_share() == pytest.approx(0.3)
    assert len(set(data.problem.tolist())) == 200  # one trajectory per problem
    prob = teacher_trajectories(ps, SFTMix(0.3, "problem"), 1)
    assert prob.fork_share() == pytest.approx(0.3)
    assert np.all(np.bincount(prob.problem) == 2)  # both modes for every problem
    rat = teacher_trajectories(ps, SFTMix(0.3, "rationale"), 1)
    assert rat.fork_share() == 0.0 and np.mean(rat.mode == 2) == pytest.approx(0.3)
    # every trajectory ends at a correct leaf, and its steps climb from the start to that leaf
    assert np.all(ps.train.correct[data.problem, data.leaf])
    steps = trajectory_steps(ps.tree, data, ps.train.start)
    assert np.array_equal(ps.tree.parent[steps.target], steps.node)
    sampled = sample_trajectories(ps, SFTMix(0.3, "data"), 2, 5)
    assert abs(sampled.fork_share() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 200)
    with pytest.raises(ValueError, match="rho must be in"):
        SFTMix(1.5)


# --- the phenomena, at the default settings (one analytic run takes well under a second) ---


@pytest.fixture(scope="module")
def main_run():
    return simulate(load_config(forks=200))


def test_pass_at_1_up_pass_at_k_down_and_curves_cross(main_run):
    s = main_run.summary
    assert s.pass1_post > s.pass1_base + 0.3
    assert s.passk_post < s.passk_base - 0.01
    assert 1 < s.k_star < s.k_max


@pytest.fixture(scope="module")
def rho_sweep():
    configs = config_grid(SimulationConfig(), rhos=np.linspace(0, 1, 11))
    return [simulate(c).summary for c in configs]


def test_shrinkage_grows_with_prevalence(rho_sweep):
    rho = [s.rho for s in rho_sweep]
    shrink = [s.shrinkage for s in rho_sweep]
    assert spearmanr(rho, shrink).statistic >= 0.95
    assert abs(rho_sweep[0].shrinkage) <= 0.01
    assert shrink[-1] > 0.1


def test_shrinkage_grows_with_epochs_and_fork_confidence_rises_for_wrong_and_right():
    records = simulate(SimulationConfig(rho=1.0)).records
    shrink = [records[0].evaluation.pass_at_k[-1] - r.evaluation.pass_at_k[-1] for r in records]
    assert np.all(np.diff(shrink) >= -1e-6)  # pass@64 of the base is 1 - 1e-6
    conf_ok = [r.evaluation.fork_confidence_correct for r in records]
    conf_bad = [r.evaluation.fork_confidence_wrong for r in records]
    assert conf_ok[0] == pytest.approx(0.5) and conf_bad[0] == pytest.approx(0.5)
    assert conf_ok[-1] > 0.8 and conf_bad[-1] > 0.8  # non-selective: wrong choices as confident
    assert np.all(np.diff(conf_bad) > -1e-9) and np.all(np.diff(conf_ok) > -1e-9)
    assert abs(records[-1].evaluation.fork_accuracy - 0.5) < 0.05  # the fork itself is not learned


def test_problem_level_diversity_and_rationale_shrink_less_than_data_level():
    shrink = {d: simulate(SimulationConfig(rho=0.6, diversity=d)).summary.shrinkage for d in ("data", "problem", "rationale")}
    assert shrink["problem"] < shrink["data"] - 0.02
    assert shrink["rationale"] < shrink["data"] - 0.02


def test_sampled_evaluation_converges_to_exact():
    """On a fixed fine-tuned policy, the unbiased estimator over n rollouts approaches the exact
    pass@k; the error stays within 4 standard errors (sd of the per-problem estimate / sqrt(P))."""
    ps = PathStarTask(feature_dim=100, n_train=100, n_test=200).build(2)
    params = train_analytic(ps, SFTMix(1.0), TrainSettings(epochs=20, eval_epochs=(0,), ks=(1,)), 2).params
    probs = step_probs(ps.tree, params, ps.test)
    ks = (1, 8, 32)
    exact = evaluate_exact(ps.tree, probs, ps.test, ks)
    p = success_probability(ps.tree, probs, ps.test.correct, ps.test.start)
    errors = []
    for n in (32, 128, 512):
        ev = evaluate_sampled(ps.tree, probs, ps.test, ks, n, seed=n)
        se_k1 = np.sqrt(np.mean(p * (1 - p) / n) / len(p))
        assert abs(ev.pass_at_k[0] - exact.pass_at_k[0]) < 4 * se_k1 + 1e-12
        errors.append(np.max(np.abs(ev.pass_at_k - exact.pass_at_k)))
        assert ev.fork_accuracy == pytest.approx(exact.fork_accuracy, abs=0.05)
    assert errors[-1] < 0.02


def test_sampled_training_agrees_with_analytic():
    """Same task, same seeds; at rho = 1 both engines train on the same trajectories.

    Tolerance 0.06 on pass@k: minibatch SGD (one visit per example per epoch) and the analytic
    gradient flow differ by discretisation (measured about 0.02-0.03 at the defaults), plus the
    Monte Carlo error of 64 rollouts over 500 problems (standard error about 0.01)."""
    ps_cfg = dict(rho=1.0, train=TrainSettings(epochs=50))
    a = simulate(SimulationConfig(engine="analytic", **ps_cfg)).summary
    s = simulate(SimulationConfig(engine="sampled", **ps_cfg)).summary
    assert s.pass1_post == pytest.approx(a.pass1_post, abs=0.06)
    assert s.passk_post == pytest.approx(a.passk_post, abs=0.06)
    assert s.shrinkage > 0.1 and a.shrinkage > 0.1


def test_full_batch_sampled_training_equals_analytic_flow():
    """With the whole dataset as one batch and one step per epoch, minibatch SGD is exactly the
    analytic update (at rho = 1 the sampled and exact datasets coincide)."""
    ps = PathStarTask(feature_dim=50, n_train=60, n_test=30).build(4)
    st_ = TrainSettings(epochs=4, steps_per_epoch=1, batch_size=60, eval_epochs=(0, 4), ks=(1, 4), n_samples=4)
    a = train_analytic(ps, SFTMix(1.0), st_, 4).params
    s = train_sampled(ps, SFTMix(1.0), st_, 4).params
    np.testing.assert_allclose(s.weight, a.weight, atol=1e-9)
    assert s.skill == pytest.approx(a.skill, abs=1e-9)


def test_seeds_reproduce_and_differ():
    c = SimulationConfig(rho=0.5, train=TrainSettings(epochs=5), task=SMALL)
    assert simulate(c).table.equals(simulate(c).table)
    other = simulate(SimulationConfig(rho=0.5, train=TrainSettings(epochs=5), task=SMALL, seed=1)).table
    assert not simulate(c).table.equals(other)


def test_table_schema_and_bad_config():
    from markovfork.results import RESULT_COLUMNS

    table = simulate(SimulationConfig(task=SMALL, train=TrainSettings(epochs=2))).table
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert table["epoch"].unique().sort().to_list() == [0, 1, 2]
    with pytest.raises(ValueError, match="forks must be in"):
        SimulationConfig(forks=10_000)
    with pytest.raises(ValueError, match="engine must be one of"):
        SimulationConfig(engine="mc")
    with pytest.raises(ValueError, match="unknown key 'lrate'"):
        load_config(**{"train.lrate": 3})
