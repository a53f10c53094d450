"""SFT data synthesis: prevalence, diversity modes, and trajectories expanded into steps."""

import numpy as np
import pytest

from markovfork.sft.data import SFTMix, sample_trajectories, teacher_trajectories, trajectory_steps
from markovfork.tasks.path_star import PathStarTask


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
