"""The SFT policy's gradient: the fused training kernel against the probability-table reference
and central finite differences of the loss."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markovfork.sft.data import SFTMix, teacher_trajectories, trajectory_steps
from markovfork.sft.model import SFTParams, fork_children, fused_step_gradient, step_gradient_reference, step_probs
from markovfork.tasks.path_star import PathStarTask
from markovfork.model.tree import DECIPHERABLE

SMALL = PathStarTask(depth=4, feature_dim=40, n_train=30, n_test=20)


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


@given(seed=st.integers(0, 2**16), rho=st.floats(0, 1), diversity=st.sampled_from(["data", "problem", "rationale"]))
@settings(max_examples=15)
def test_per_mode_skill_gradient_matches_reference_and_finite_differences(seed, rho, diversity):
    """With one skill per mode the fused kernel equals the probability-table reference (the policy
    built by ``SFTParams.to_policy``), each mode's dL/ds_m equals a central finite difference of
    the loss in s_m, and with every s_m equal they sum to the shared skill's dL/ds."""
    ps = SMALL.build(seed)
    rng = np.random.default_rng(seed)
    shared = _random_params(ps, rng)
    n_modes = int(ps.tree.child_start[1] - ps.tree.child_start[0])
    skills = rng.normal(1, 1, n_modes)
    params = SFTParams(shared.theta, shared.weight, skills)
    steps = trajectory_steps(ps.tree, teacher_trajectories(ps, SFTMix(rho, diversity), seed), ps.train.start)
    fc = fork_children(ps.tree)
    g_fc, g_s, loss = _fused(ps, params, steps)
    assert g_s.shape == (n_modes,)
    probs = step_probs(ps.tree, params, ps.train)
    ref = step_gradient_reference(ps.tree, probs, ps.train.on_correct_path(ps.tree), steps.problem, steps.node,
                                  steps.target, steps.weight, n_groups=n_modes)
    np.testing.assert_allclose(g_fc, ref.logit[:, fc].T, atol=1e-12)
    np.testing.assert_allclose(g_s, ref.skill, atol=1e-10)
    assert loss == pytest.approx(ref.loss, rel=1e-12)
    eps = 1e-6
    for m in range(n_modes):
        up, down = skills.copy(), skills.copy()
        up[m] += eps
        down[m] -= eps
        fd = (_loss(ps, SFTParams(shared.theta, shared.weight, up), steps)
              - _loss(ps, SFTParams(shared.theta, shared.weight, down), steps)) / (2 * eps)
        assert g_s[m] == pytest.approx(fd, rel=1e-5, abs=1e-6)
    same = SFTParams(shared.theta, shared.weight, np.full(n_modes, shared.skill))
    assert _fused(ps, same, steps)[1].sum() == pytest.approx(_fused(ps, shared, steps)[1], rel=1e-12, abs=1e-12)


def test_skill_groups_follow_the_modes():
    """Every node below the root's child m is in group m; one shared group is all zeros; a group
    count that is neither is refused."""
    from markovfork.sft.model import skill_groups

    tree = SMALL.build(0).tree
    modes = np.arange(tree.child_start[0], tree.child_start[1])
    group = skill_groups(tree, modes.size)
    for v in range(1, tree.n_nodes):
        top = v
        while tree.parent[top] != 0:
            top = tree.parent[top]
        assert group[v] == int(np.flatnonzero(modes == top)[0])
    assert not skill_groups(tree).any()
    with pytest.raises(ValueError, match="one per mode"):
        skill_groups(tree, modes.size + 1)
