"""SFT training as generators of per-epoch states: the dual form against the primal policy,
the loss against an independent computation, snapshots, and the two engines' common limit."""

import subprocess
import sys

import numpy as np
import pytest

from markovfork.model.policy import transition_probs
from markovfork.sft.config import TrainSettings
from markovfork.sft.data import SFTMix, sample_trajectories, teacher_trajectories, trajectory_steps
from markovfork.sft.evaluate import evaluate_exact
from markovfork.sft.model import step_probs
from markovfork.tasks.path_star import PathStarTask
from markovfork.sft.train import derive_seeds, train_analytic, train_sampled


def test_dual_form_equals_primal_policy():
    """The trainer keeps W = A^T phi implicitly; the materialised W gives the same test step
    probabilities, hence the same pass@k."""
    ps = PathStarTask(feature_dim=60, n_train=80, n_test=50).build(0)
    last = list(train_analytic(ps, SFTMix(0.7), TrainSettings(epochs=6), seed=0))[-1]
    dual = transition_probs(ps.tree, last.test_logits())
    primal = step_probs(ps.tree, last.params(), ps.test)
    np.testing.assert_allclose(dual, primal, atol=1e-12)
    ks = (1, 4, 16)
    np.testing.assert_allclose(evaluate_exact(ps.tree, dual, ps.test, ks).pass_at_k,
                               evaluate_exact(ps.tree, primal, ps.test, ks).pass_at_k, atol=1e-10)


def _mean_loss(ps, params, steps) -> float:
    """L = sum_i w_i (-log pi(y_i | u_i)) / sum_i w_i from the primal policy's probability table."""
    probs = step_probs(ps.tree, params, ps.train)
    return float(-np.sum(steps.weight * np.log(probs[steps.problem, steps.target])) / steps.weight.sum())


@pytest.mark.parametrize("diversity", ["data", "problem"])
def test_analytic_states_every_epoch_with_the_loss_at_their_parameters(diversity):
    ps = PathStarTask(depth=4, feature_dim=30, n_train=40, n_test=20).build(3)
    mix = SFTMix(0.6, diversity)
    states = list(train_analytic(ps, mix, TrainSettings(epochs=5), seed=3))
    assert [s.epoch for s in states] == [0, 1, 2, 3, 4, 5]
    steps = trajectory_steps(ps.tree, teacher_trajectories(ps, mix, derive_seeds(3)["data"]), ps.train.start)
    for s in states:
        assert s.train_loss == pytest.approx(_mean_loss(ps, s.params(), steps), rel=1e-10)
    assert states[-1].train_loss < states[0].train_loss  # gradient descent lowers the loss


def test_sampled_epoch_zero_loss_and_every_epoch():
    ps = PathStarTask(depth=4, feature_dim=30, n_train=40, n_test=20).build(5)
    mix = SFTMix(0.5)
    states = list(train_sampled(ps, mix, TrainSettings(epochs=3, batch_size=8), seed=5))
    assert [s.epoch for s in states] == [0, 1, 2, 3]
    data = sample_trajectories(ps, mix, 1, derive_seeds(5)["data"])
    steps = trajectory_steps(ps.tree, data, ps.train.start)
    assert states[0].train_loss == pytest.approx(_mean_loss(ps, states[0].params(), steps), rel=1e-10)


def test_states_are_snapshots():
    """A state kept while training goes on still describes its own epoch: epoch 0 is the base."""
    ps = PathStarTask(depth=4, feature_dim=20, n_train=30, n_test=10).build(1)
    states = list(train_analytic(ps, SFTMix(1.0), TrainSettings(epochs=3), seed=1))
    base = states[0].params()
    assert not base.theta.any() and not base.weight.any() and base.skill == ps.task.base_skill
    assert states[-1].params().weight.any()
    np.testing.assert_allclose(transition_probs(ps.tree, states[0].test_logits()),
                               step_probs(ps.tree, base, ps.test), atol=1e-12)


def test_full_batch_sampled_training_equals_analytic_flow():
    """With the whole dataset as one batch and one step per epoch, minibatch SGD is exactly the
    analytic update (at rho = 1 the sampled and exact datasets coincide)."""
    ps = PathStarTask(feature_dim=50, n_train=60, n_test=30).build(4)
    st_ = TrainSettings(epochs=4, steps_per_epoch=1, batch_size=60)
    a = list(train_analytic(ps, SFTMix(1.0), st_, 4))[-1].params()
    s = list(train_sampled(ps, SFTMix(1.0), st_, 4))[-1].params()
    np.testing.assert_allclose(s.weight, a.weight, atol=1e-9)
    assert s.skill == pytest.approx(a.skill, abs=1e-9)


def test_training_does_not_import_evaluation():
    code = "import sys, markovfork.sft.train; print('markovfork.sft.evaluate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_mode_memorisation_scales_the_mode_choices_memorised_logits():
    """mode_memorisation r scales the per-problem (W phi) part of the mode choice's logits: after
    one Euler step from W = 0 it is exactly r times that of r = 1, the arm choice's is unchanged,
    and the shared logits too; r = 1 is the default, bit for bit; r = 0 leaves the mode one
    shared choice, the same on every test problem."""
    from markovfork.sft.model import fork_children

    ps = PathStarTask(feature_dim=40, n_train=60, n_test=30).build(1)
    one_step = TrainSettings(epochs=1, steps_per_epoch=1, lr=3.0)
    fc = fork_children(ps.tree)
    mode = ps.tree.parent[fc] == 0
    assert mode.sum() == 3 and (~mode).sum() >= 2  # forward, reverse, rationale; the arms

    def after(r):
        state = list(train_analytic(ps, SFTMix(0.5), one_step, seed=0, mode_memorisation=r))[-1]
        return state, state._test.fork_logits(state.coef_t)

    (s1, w1), (s3, w3) = after(1.0), after(0.3)
    assert np.abs(w1[mode]).max() > 1e-3
    np.testing.assert_allclose(w3[mode], 0.3 * w1[mode], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(w3[~mode], w1[~mode])
    np.testing.assert_array_equal(s3.theta, s1.theta)
    default = list(train_analytic(ps, SFTMix(0.5), TrainSettings(epochs=3), seed=0))[-1]
    same = list(train_analytic(ps, SFTMix(0.5), TrainSettings(epochs=3), seed=0, mode_memorisation=1.0))[-1]
    np.testing.assert_array_equal(default.test_logits(), same.test_logits())
    shared = list(train_analytic(ps, SFTMix(0.5), TrainSettings(epochs=3), seed=0, mode_memorisation=0.0))[-1]
    root = np.arange(ps.tree.child_start[0], ps.tree.child_start[1])
    p_shared = transition_probs(ps.tree, shared.test_logits())[:, root]
    p_default = transition_probs(ps.tree, default.test_logits())[:, root]
    assert np.ptp(p_shared, axis=0).max() < 1e-12 < np.ptp(p_default, axis=0).max()
    with pytest.raises(ValueError, match="mode_memorisation must be a finite number >= 0, got -1.0"):
        list(train_analytic(ps, SFTMix(0.5), one_step, seed=0, mode_memorisation=-1.0))


@pytest.mark.parametrize("rho, trained", [(1.0, 0), (0.0, 1)])
def test_per_mode_skill_moves_only_the_trained_modes_skill(rho, trained):
    """With one skill per mode and SFT data of one mode only (rho 1: forward, rho 0: reverse), that
    mode's skill follows the shared-skill trainer's exactly (the same steps drive it) and the other
    modes' skills stay at the base; the per-problem fork logits are the same too."""
    ps = PathStarTask(feature_dim=40, n_train=40, n_test=20).build(2)
    st_ = TrainSettings(epochs=3, lr=4.0)
    shared = list(train_analytic(ps, SFTMix(rho), st_, seed=0))
    per_mode = list(train_analytic(ps, SFTMix(rho), st_, seed=0, skill_per_mode=True))
    for s, p in zip(shared, per_mode):
        assert p.skill.shape == (3,)
        assert p.skill[trained] == pytest.approx(s.skill, abs=1e-12)
        others = np.delete(p.skill, trained)
        np.testing.assert_array_equal(others, ps.task.base_skill)
        np.testing.assert_allclose(p.coef_t, s.coef_t, atol=1e-12)
    assert abs(per_mode[-1].skill[trained] - ps.task.base_skill) > 0.1


def test_per_mode_skill_learns_each_mode_from_its_share_of_the_steps():
    """At rho 0.5 both walk modes' skills rise, and each by less than a one-mode run (rho 1, rho 0)
    raises it: each learns from its own steps only. The test logits of a per-mode state equal the
    policy built from its parameters."""
    from markovfork.model.policy import problem_logits

    ps = PathStarTask(feature_dim=40, n_train=40, n_test=20).build(3)
    st_ = TrainSettings(epochs=2, lr=4.0)

    def last(rho):
        return list(train_analytic(ps, SFTMix(rho), st_, seed=0, skill_per_mode=True))[-1]

    mixed, forward, reverse = last(0.5), last(1.0), last(0.0)
    base = ps.task.base_skill
    assert base < mixed.skill[0] < forward.skill[0] and base < mixed.skill[1] < reverse.skill[1]
    np.testing.assert_allclose(mixed.test_logits(), problem_logits(ps.tree, mixed.params().to_policy(ps.tree), ps.test),
                               atol=1e-10)
