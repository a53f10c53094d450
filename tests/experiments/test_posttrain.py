"""RL after SFT on the path-star task: the start of RL is exactly the SFT model that
``simulate`` scores, zero RL iterations change nothing, and the configuration is read and checked."""

import numpy as np
import pytest

from markovfork.rl.config import RLConfig
from markovfork.experiments.posttrain import PosttrainConfig, load_posttrain_config, posttrain, posttrain_grid
from markovfork.sft.config import TrainSettings
from markovfork.sft.simulate import SimulationConfig, simulate
from markovfork.tasks.path_star import PathStarTask

SMALL = SimulationConfig(task=PathStarTask(n_train=60, n_test=60, feature_dim=80), train=TrainSettings(epochs=6), rho=1.0)


def _passk(table, stage, iteration=None):
    import polars as pl

    t = table.filter(pl.col("stage") == stage)
    if iteration is not None:
        t = t.filter(pl.col("iteration") == iteration)
    return t.sort("k")["pass_at_k"].to_numpy()


@pytest.mark.parametrize("engine", ["analytic", "sampled"])
def test_the_start_of_rl_is_the_sft_model_simulate_scores(engine):
    sim = SimulationConfig(task=SMALL.task, train=SMALL.train, rho=1.0, engine=engine)
    config = PosttrainConfig(rl=RLConfig(method="grpo", engine=engine, iterations=0), start="sft", simulation=sim)
    result = posttrain(config)
    records = simulate(sim).records
    np.testing.assert_allclose(_passk(result.table, "start"), records[-1].evaluation.pass_at_k, atol=1e-12)
    np.testing.assert_allclose(_passk(result.table, "base"), records[0].evaluation.pass_at_k, atol=1e-12)
    np.testing.assert_allclose(_passk(result.table, "rl", 0), _passk(result.table, "start"), atol=1e-12)


def test_rl_raises_the_training_reward_and_squeezes_after_fork_sft():
    """After forward-only SFT (rho = 1), GRPO raises the training reward; on the test problems
    pass@1 does not fall and pass@64 does not recover (the memorised fork logits only sharpen)."""
    config = PosttrainConfig(rl=RLConfig(method="grpo", iterations=60, lr=2.0), start="sft", simulation=SMALL)
    result = posttrain(config)
    assert result.reward[-1] > result.reward[0] + 0.005
    s = result.summary
    assert s["passk_start"] < s["passk_base"]  # SFT shrank coverage
    assert s["passk_rl"] <= s["passk_start"] + 1e-9
    assert s["pass1_rl"] >= s["pass1_start"] - 1e-9


def test_rl_from_base_uses_the_base_policy():
    config = PosttrainConfig(rl=RLConfig(iterations=0), start="base", simulation=SMALL)
    table = posttrain(config).table
    np.testing.assert_allclose(_passk(table, "start"), _passk(table, "base"), atol=0)


def test_grid_is_the_product_and_each_run_is_seeded_by_its_seed():
    base = PosttrainConfig(simulation=SMALL)
    grid = posttrain_grid(base, methods=["grpo", "ppo"], kls=[0.0, 0.1], seeds=[3, 4])
    assert len(grid) == 8
    assert {(c.rl.method, c.rl.kl, c.simulation.seed) for c in grid} == {
        (m, b, s) for m in ("grpo", "ppo") for b in (0.0, 0.1) for s in (3, 4)}
    assert all(c.rl.seed == c.simulation.seed for c in grid)


def test_config_file_with_an_rl_table(tmp_path):
    path = tmp_path / "post.toml"
    path.write_text('start = "base"\nrho = 0.5\n[rl]\nmethod = "ppo"\niterations = 7\n[task]\nn_train = 40\n')
    config = load_posttrain_config(path, rl={"iterations": 9})
    assert (config.start, config.rl.method, config.rl.iterations, config.simulation.prevalence) == ("base", "ppo", 9, 0.5)
    assert config.simulation.task.n_train == 40
    path.write_text('[rl]\nmethd = "ppo"\n')
    with pytest.raises(ValueError, match="unknown key 'methd' in \\[rl\\]"):
        load_posttrain_config(path)
    path.write_text('engine = "analytic"\n[rl]\nengine = "sampled"\n')
    with pytest.raises(ValueError, match="differs"):
        load_posttrain_config(path)
    with pytest.raises(ValueError, match="start must be one of"):
        load_posttrain_config(None, start="middle")


def test_json_tree_runs_from_its_base_and_refuses_sft(tmp_path):
    from markovfork.tasks import fork_tree
    from markovfork.model.tree import tree_to_json

    path = tmp_path / "tree.json"
    path.write_text(tree_to_json(fork_tree(depth=3, branching=2, forks=1, seed=0)))
    config = PosttrainConfig(rl=RLConfig(method="reinforce", iterations=30, lr=2.0), start="base",
                             simulation=SMALL, tree=str(path))
    result = posttrain(config)
    assert result.reward[-1] > result.reward[0]
    np.testing.assert_allclose(_passk(result.table, "rl", 0), _passk(result.table, "base"), atol=1e-12)
    with pytest.raises(ValueError, match="no SFT data"):
        PosttrainConfig(start="sft", tree=str(path))
