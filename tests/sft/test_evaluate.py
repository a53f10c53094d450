"""Evaluation settings of the SFT simulation: decoding and spread-first sampling in both engines,
the TOML keys, the temperature grid and the table's columns."""

import numpy as np
import pytest

from markovfork.engines.exact import exact_pass_at_k, success_probability
from markovfork.model.policy import Decoding, Policy, problem_logits, transition_probs
from markovfork.sft.config import SimulationConfig, TrainSettings, config_grid, load_config
from markovfork.sft.data import SFTMix
from markovfork.sft.evaluate import decision_forks, evaluate_exact, evaluate_sampled
from markovfork.sft.model import step_probs
from markovfork.sft.simulate import simulate
from markovfork.tasks.path_star import PathStarTask
from markovfork.sft.train import derive_seeds, train_analytic
from markovfork.model.spread import Spread, spread_nodes

TASK = PathStarTask(depth=3, feature_dim=60, n_train=60, n_test=300)


@pytest.fixture(scope="module")
def tuned():
    ps = TASK.build(4)
    params = list(train_analytic(ps, SFTMix(1.0), TrainSettings(epochs=20), 4))[-1].params()
    return ps, step_probs(ps.tree, params, ps.test)


@pytest.mark.parametrize("spread", [Spread(2, "fork", 0.0), Spread(2, "first"), Spread(3, 1, 0.0)])
def test_sampled_spread_evaluation_agrees_with_exact_and_fork_metrics_stay(tuned, spread):
    ps, probs = tuned
    ks, n = (1, 4, 16), 16
    plain = evaluate_exact(ps.tree, probs, ps.test, ks)
    exact = evaluate_exact(ps.tree, probs, ps.test, ks, spread, n)
    sampled = evaluate_sampled(ps.tree, probs, ps.test, ks, n, seed=7, spread=spread)
    sampled_plain = evaluate_sampled(ps.tree, probs, ps.test, ks, n, seed=7)
    # per-problem sd of the estimator is at most 1/2: 4 standard errors over 300 problems
    assert np.all(np.abs(sampled.pass_at_k - exact.pass_at_k) < 4 * 0.5 / np.sqrt(len(ps.test)))
    for name in ("fork_accuracy", "fork_confidence_correct", "fork_confidence_wrong", "fork_entropy"):
        assert getattr(exact, name) == getattr(plain, name)  # spread changes pass@k only
        assert getattr(sampled, name) == getattr(sampled_plain, name)


def test_spread_at_the_arm_fork_with_every_arm_lifts_pass_at_n_of_the_collapsed_model(tuned):
    """The fork-passing samples are split evenly over both arms: pass@n is at least that of the
    policy and, for problems that surely go forward, covers both arms."""
    ps, probs = tuned
    n = 16
    exact = evaluate_exact(ps.tree, probs, ps.test, (1, n), Spread(2, "fork", 0.0), n)
    plain = evaluate_exact(ps.tree, probs, ps.test, (1, n))
    assert exact.pass_at_k[1] > plain.pass_at_k[1] + 0.05
    fork = decision_forks(ps.tree)
    nodes = spread_nodes(ps.tree, probs, ps.test.start, Spread(2, "fork"))
    assert set(np.flatnonzero(nodes.any(axis=0))) <= set(fork.tolist())


def test_decoding_reaches_evaluation_in_both_engines():
    cold = Decoding(temperature=0.5)
    cfg = SimulationConfig(task=TASK, train=TrainSettings(epochs=2, decoding=cold, ks=(1, 8), n_samples=8), seed=1)
    for engine in ("analytic", "sampled"):
        run = simulate(SimulationConfig(**{**cfg.__dict__, "engine": engine}))
        base = run.records[0].evaluation
        ps = TASK.build(derive_seeds(1)["task"])
        z = problem_logits(ps.tree, Policy.base(ps.tree, TASK.feature_dim, TASK.base_skill), ps.test)
        p = success_probability(ps.tree, transition_probs(ps.tree, z, cold), ps.test.correct, ps.test.start)
        want = exact_pass_at_k(p, [1, 8])
        tol = 1e-12 if engine == "analytic" else 4 * 0.5 / np.sqrt(len(ps.test))
        np.testing.assert_allclose(base.pass_at_k, want, atol=tol)
        assert (run.table["temperature"] == 0.5).all() and (run.table["spread"] == 0).all()


def test_toml_keys_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train.spread]\nm = 2\nat = "depth"\ndepth = 1\n[train.decoding]\ntemperature = 0.8\n')
    cfg = load_config(path)
    assert cfg.train.spread == Spread(2, 1) and cfg.train.decoding.temperature == 0.8
    cfg = load_config(path, **{"spread.at": "fork", "spread.min_p": 0.1, "decoding.top_k": 1})
    assert cfg.train.spread == Spread(2, "fork", 0.1, depth=1) and cfg.train.decoding.top_k == 1
    path.write_text('[train.spread]\nat = "root"\n')
    with pytest.raises(ValueError, match=r"\[train.spread\] spread at must be"):
        load_config(path)
    assert TrainSettings().spread.active is False


def test_config_grid_temperatures():
    base = SimulationConfig(task=TASK, train=TrainSettings(epochs=2, decoding=Decoding(top_p=0.9)))
    grid = config_grid(base, rhos=[0.5, 1.0], temperatures=[0.5, 2.0])
    assert [(c.prevalence, c.train.decoding.temperature) for c in grid] == [(0.5, 0.5), (0.5, 2.0), (1.0, 0.5), (1.0, 2.0)]
    assert all(c.train.decoding.top_p == 0.9 for c in grid)
    assert [c.train.decoding.temperature for c in config_grid(base)] == [1.0]


def test_spread_pass_at_k_in_a_run_is_the_estimator_target():
    """The sampled engine's spread pass@k over many test problems is close to the analytic one
    on the same (base) policy: epoch 0 of both engines is the same model."""
    train = TrainSettings(epochs=0, ks=(1, 4, 8), n_samples=8, spread=Spread(2, "first"))
    a = simulate(SimulationConfig(task=TASK, train=train, seed=3)).records[0].evaluation
    s = simulate(SimulationConfig(task=TASK, train=train, seed=3, engine="sampled")).records[0].evaluation
    assert np.all(np.abs(a.pass_at_k - s.pass_at_k) < 4 * 0.5 / np.sqrt(TASK.n_test))
    # base: the root's modes tie at 1/3, so the top two (forward, reverse) split the samples
    assert a.pass_at_k[0] == pytest.approx(_forward_reverse(TASK), abs=1e-9)


def _forward_reverse(t: PathStarTask) -> float:
    """Base pass@1 with the samples split over forward and reverse: the mean of their successes."""
    a = t.base_step_accuracy
    return 0.5 * (a**t.depth / t.arms + a ** (t.depth + 1))
