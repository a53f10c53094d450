"""The one task definition: a bridge RunConfig mapped to simulator configurations."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from markovfork.llm_bridge.config import RunConfig, config_from_dict
from markovfork.llm_bridge.tasks import TaskSpec, generate_problems, response_text, sft_mix
from markovfork.sft.config import TrainSettings
from markovfork.sft.simulate import simulate
from markovfork.model.spread import Spread
from markovfork.llm_bridge.task_mapping import (
    BASE_MODE_PRIOR, RATIONALE_MODE_PRIOR, distinct_problems, sft_arms, simulation_config, simulation_configs,
)


def test_default_bridge_run_maps_field_by_field():
    run = RunConfig()
    configs = simulation_configs(run)
    assert [(c.prevalence, c.diversity) for c in configs] == [(0.0, "data"), (0.5, "data"), (1.0, "data")]
    for c in configs:
        t, s = c.task, c.train
        assert (t.arms, t.depth, t.rationale_steps) == (2, 4, 5)
        assert (t.n_train, t.n_test) == (2000, 200)
        assert t.mode_prior == BASE_MODE_PRIOR
        assert s.epochs == 12 and s.evaluation_epochs == (0, 1, 3, 6, 12)
        assert s.ks == (1, 2, 4, 8, 16, 32) and s.n_samples == 32
        assert s.decoding == TrainSettings().decoding and not s.spread.active
        assert c.engine == "analytic" and c.seed == 0
        # free fields keep the simulator's defaults
        assert (s.lr, t.feature_dim, t.base_step_accuracy) == (20.0, 500, 0.8)


# response words that are not look-up steps: copies of a name from the
# prompt (forward: s; reverse: t; rationale: t, the ">" that restarts, and s after it)
COPIES = {"forward": 1, "reverse": 1, "rationale": 3}
MODE = {"forward": 0, "reverse": 1, "rationale": 2}


@pytest.mark.parametrize("arms,depth", [(2, 2), (2, 5), (3, 4), (4, 6)])
def test_simulated_paths_take_as_many_steps_as_the_bridge_response_has_look_ups(arms, depth):
    """The mode token plus every look-up of a bridge response is one step of the simulator's
    path to the same mode's answer leaf (path answer format)."""
    run = RunConfig(task=TaskSpec(arms=arms, depth=depth), model=RunConfig().model)
    cfg = simulation_config(run, 1.0, "data")
    ps = replace(cfg.task, n_train=2, n_test=1, feature_dim=0).build(0)
    problem = generate_problems(run.task, 1, seed=3)[0]
    for fmt, mode in MODE.items():
        words = response_text(problem, fmt).split()
        leaf = ps.answer_leaf[mode, problem.target_arm]
        assert len(words) - COPIES[fmt] == ps.tree.depth[leaf], fmt


@pytest.mark.parametrize("rho", [0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("diversity", ["data", "problem"])
def test_distinct_problems_counts_the_bridge_mix(rho, diversity):
    problems = generate_problems(TaskSpec(), 40, seed=1)
    mix = sft_mix(problems, rho, diversity, seed=2)
    assert distinct_problems(40, rho, diversity) == len({e.problem.key() for e in mix})


def test_variations_map():
    run = config_from_dict({
        "seed": 7,
        "task": {"arms": 3, "depth": 3},
        "sft": {"n_problems": 100, "epochs": 5, "rhos": [0.0, 0.3, 1.0], "diversities": ["data", "problem"]},
        "eval": {"n_test": 50, "n_samples": 12, "epochs": [2, 5],
                 "sampling": {"temperature": 0.7, "top_k": 2, "top_p": 0.9, "min_p": 0.05}},
    })
    assert sft_arms(run) == [(0.0, "data"), (0.3, "data"), (1.0, "data"), (0.3, "problem")]
    configs = simulation_configs(run, {"train.lr": 3.0, "task.feature_dim": 80, "engine": "sampled"})
    prob = configs[-1]
    assert (prob.diversity, prob.prevalence, prob.task.n_train) == ("problem", 0.3, 70)  # 100 - min(30, 70)
    for c in configs:
        assert (c.task.arms, c.task.depth, c.task.rationale_steps, c.seed) == (3, 2, 3, 7)
        assert c.train.evaluation_epochs == (0, 2, 5) and c.train.ks == (1, 2, 4, 8, 12) and c.train.n_samples == 12
        d = c.train.decoding
        assert (d.temperature, d.top_k, d.top_p, d.min_p) == (0.7, 2, 0.9, 0.05)
        assert (c.train.lr, c.task.feature_dim, c.engine) == (3.0, 80, "sampled")
    only_problem = config_from_dict({"sft": {"rhos": [0.0, 1.0], "diversities": ["problem"]}})
    assert sft_arms(only_problem) == [(0.0, "problem"), (1.0, "problem")]


def test_spread_first_at_the_first_token_maps_to_a_spread_at_the_root():
    """Position 0 is the mode token: the simulator spreads the same rule over the root's modes."""
    run = config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 30, "epochs": 1, "rhos": [1.0]},
                            "eval": {"n_test": 20, "n_samples": 8, "epochs": [1],
                                     "sampling": {"spread_first": 3, "spread_min_p": 0.05}}})
    (cfg,) = simulation_configs(run, {"task.feature_dim": 20})
    assert cfg.train.spread == Spread(3, 0, 0.05)
    base = simulate(cfg).records[0].evaluation
    # base modes (1/2, 1/2, 0): the rationale mode (probability 0) is no candidate, the samples
    # alternate forward / reverse: pass@1 is the mean of the two modes' success
    a, d, arms = cfg.task.base_step_accuracy, cfg.task.depth, cfg.task.arms
    forward, reverse = a**d / arms, a ** (d + 1)
    assert base.pass_at_k[0] == pytest.approx(0.5 * (forward + reverse), abs=1e-9)
    # at k = n: four samples in each mode (without the spread: 1 - (1 - mean)^8)
    assert base.pass_at_k[-1] == pytest.approx(1 - (1 - forward) ** 4 * (1 - reverse) ** 4, abs=1e-9)


def test_rationale_format_maps_to_the_rationale_mix():
    run = config_from_dict({"sft": {"fork_format": "rationale", "rhos": [0.5]}})
    (cfg,) = simulation_configs(run)
    assert cfg.diversity == "rationale" and cfg.task.mode_prior == RATIONALE_MODE_PRIOR


def test_mapped_configs_run_in_the_simulator():
    run = config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 30, "epochs": 2},
                            "eval": {"n_test": 20, "n_samples": 8, "epochs": [1, 2]}})
    for cfg in simulation_configs(run, {"task.feature_dim": 30}):
        table = simulate(cfg).table
        assert sorted(set(table["epoch"])) == [0, 1, 2] and sorted(set(table["k"])) == [1, 2, 4, 8]
        assert np.all(np.diff(table.filter(table["epoch"] == 2)["pass_at_k_post"].to_numpy()) >= 0)


@pytest.mark.parametrize("change,free,message", [
    ({"task": {"depth": 1}}, None, "depth >= 2"),
    ({"eval": {"sampling": {"spread_first": 4, "spread_position": 2}}}, None, "position 2 is no single depth"),
    ({"sft": {"fork_format": "rationale", "diversities": ["problem"]}}, None, "rationale"),
    ({}, {"train.epochs": 3}, "'train.epochs'"),
    ({}, {"task.feature_dim": -1}, "feature_dim must be"),
])
def test_unrepresentable_settings_are_one_line_errors(change, free, message):
    run = config_from_dict(change)
    with pytest.raises(ValueError, match=message) as info:
        simulation_configs(run, free)
    assert "\n" not in str(info.value)


def test_simulation_config_rejects_an_unknown_diversity():
    with pytest.raises(ValueError, match="diversity must be 'data' or 'problem', got 'rationale'"):
        simulation_config(RunConfig(), 0.5, "rationale")


def test_mapping_imports_no_torch():
    code = "import sys, markovfork.llm_bridge.task_mapping, markovfork.fit; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
