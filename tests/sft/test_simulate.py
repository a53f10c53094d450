"""The SFT simulation: the phenomena the package must reproduce (RESEARCH.md section 5) at the
defaults, sampled evaluation against exact, the two engines against each other, the table."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from markovfork.engines.exact import success_probability
from markovfork.sft.config import TrainSettings
from markovfork.sft.data import SFTMix
from markovfork.sft.evaluate import evaluate_exact, evaluate_sampled
from markovfork.sft.model import step_probs
from markovfork.sft.simulate import SimulationConfig, config_grid, load_config, simulate
from markovfork.tasks.path_star import PathStarTask
from markovfork.sft.train import train_analytic

SMALL = PathStarTask(depth=3, feature_dim=40, n_train=30, n_test=20)


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
    params = list(train_analytic(ps, SFTMix(1.0), TrainSettings(epochs=20), 2))[-1].params()
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


def test_seeds_reproduce_and_differ():
    c = SimulationConfig(rho=0.5, train=TrainSettings(epochs=5), task=SMALL)
    assert simulate(c).table.equals(simulate(c).table)
    other = simulate(SimulationConfig(rho=0.5, train=TrainSettings(epochs=5), task=SMALL, seed=1)).table
    assert not simulate(c).table.equals(other)


def test_table_schema_and_bad_config():
    from markovfork.reporting.results import RESULT_COLUMNS

    table = simulate(SimulationConfig(task=SMALL, train=TrainSettings(epochs=2))).table
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert table["epoch"].unique().sort().to_list() == [0, 1, 2]
    with pytest.raises(ValueError, match="forks must be in"):
        SimulationConfig(forks=10_000)
    with pytest.raises(ValueError, match="engine must be one of"):
        SimulationConfig(engine="mc")
    with pytest.raises(ValueError, match="unknown key 'lrate'"):
        load_config(**{"train.lrate": 3})
