"""Fork observations: the simulator's target-arm probability against its own exact evaluation, the
measured statistic by hand, and the fit's use of them (no held-out fork row reaches a fit)."""

import numpy as np
import polars as pl
import pytest

from markovfork.fit import CurvePredictor
from markovfork.fit.forks import SE_FLOOR, fork_statistic, measured_forks
from markovfork.fit.heldout import leave_rho_out, train_forks
from markovfork.fit.measured import measured_curves
from markovfork.fit.solve import fit_parameters, load_fit, save_fit
from markovfork.llm_bridge.task_mapping import experiment
from markovfork.model.policy import transition_probs
from markovfork.sft.evaluate import evaluate_exact
from markovfork.sft.train import train_analytic

from tests.fit.test_predict import small_run


def test_target_arm_probability_is_the_exact_fork_accuracy_when_every_problem_reaches_the_fork_alike():
    """With the mode shared (mode_memorisation 0) every test problem reaches the forward fork with
    the same probability, so evaluate_exact's reach-weighted fork accuracy is the plain mean of
    q_x and its confidence sum q^2 / sum q: an independent path (reach and on-path masks)."""
    pred = CurvePredictor(experiment(small_run(rhos=[1.0])), steps_per_epoch=8, seed=2)
    values = {"lr": 8.0, "memorisation": 20.0, "capacity": 0.3}
    ps, cfg, offsets, _ = pred._arm_job(0, values, pred.values(values))
    seen = 0
    for state in train_analytic(ps, cfg.mix, cfg.train, cfg.seed, skill_offset=offsets, mode_memorisation=0.0):
        q = ps.target_arm_probability(state.test_logits())
        probs = transition_probs(ps.tree, state.test_logits(), cfg.train.decoding)
        ev = evaluate_exact(ps.tree, probs, ps.test, [1])
        np.testing.assert_allclose(q.mean(), ev.fork_accuracy, rtol=1e-12)
        np.testing.assert_allclose((q**2).sum() / q.sum(), ev.fork_confidence_correct, rtol=1e-12)
        seen += state.epoch > 0 and q.std() > 0.01  # memorised forks leak onto the test problems
    assert seen >= 2


def test_the_base_is_undecided_and_evaluate_matches_success():
    pred = CurvePredictor(experiment(small_run()), steps_per_epoch=8)
    values = {"lr": 5.0, "memorisation": 10.0, "capacity": 0.5}
    success, target = pred.evaluate(values)
    np.testing.assert_array_equal(success, pred.success(values))
    np.testing.assert_allclose(target[:, 0], 0.5, atol=1e-12)  # two arms, no training yet
    stat = fork_statistic(target)
    np.testing.assert_allclose(stat[:, 0], 0.25, atol=1e-12)
    rho0 = [a for a, (r, _) in enumerate(pred.arms) if r == 0.0][0]
    np.testing.assert_allclose(stat[rho0], 0.25, atol=1e-12)  # no forward example: the fork never moves
    assert stat[[a for a in range(len(pred.arms)) if a != rho0], -1].max() < 0.24


def _counts(rows):
    return pl.DataFrame(rows, schema=["seed", "rho", "diversity", "epoch", "q_target"], orient="row")


def test_measured_forks_by_hand():
    arms, epochs = [(0.0, "data"), (0.5, "data"), (1.0, "data")], np.array([0, 1, 3])
    q = [0.1, 0.5, 0.9, 0.2]
    rows = [(s, 0.5, "data", 1, x) for s, x in zip([0, 0, 1, 1], q)]
    rows += [(0, 0.0, "data", 1, 0.3), (0, 1.0, "data", 0, 0.4), (0, 1.0, "data", 2, 0.4)]  # rho 0; epoch 0; off grid
    rows += [(0, 1.0, "data", 3, 0.0), (1, 1.0, "data", 3, 1.0)]  # every problem certain: the se floor
    obs = measured_forks(_counts(rows), arms, epochs)
    assert len(obs) == 2
    g = np.array(q) * (1 - np.array(q))
    i = int(np.flatnonzero(obs.arm == 1)[0])
    assert obs.epoch[i] == 1 and obs.n_problems[i] == 4
    np.testing.assert_allclose(obs.value[i], g.mean())
    np.testing.assert_allclose(obs.se[i], g.std(ddof=1) / 2)
    j = 1 - i
    assert (obs.arm[j], obs.epoch[j], obs.value[j], obs.se[j]) == (2, 2, 0.0, SE_FLOOR)
    stat = np.zeros((3, 3))
    np.testing.assert_allclose(obs.residuals(stat)[i], -g.mean() / obs.se[i])
    assert measured_forks(_counts(rows).drop("q_target"), arms, epochs) is None
    assert measured_forks(_counts(rows[4:5]), arms, epochs) is None  # rho 0 only
    with pytest.raises(ValueError, match="q_target must be a probability in \\[0, 1\\], got 1.5"):
        measured_forks(_counts([(0, 0.5, "data", 1, 1.5)]), arms, epochs)


@pytest.fixture(scope="module")
def simulated_run():
    """Measured-like curves and forks of a small run, the simulator's own at known values."""
    pred = CurvePredictor(experiment(small_run(rhos=[0.0, 0.5, 1.0])), steps_per_epoch=8, seed=1)
    truth = {"lr": 6.0, "memorisation": 12.0, "capacity": 0.4}
    success, target = pred.evaluate(truth)
    rows, counts = [], []
    for a, (rho, div) in enumerate(pred.arms):
        for e, ep in enumerate(pred.epochs):
            curve = 1 - np.mean((1 - success[a, e][:, None]) ** pred.ks[None, :], axis=0)
            rows += [dict(engine="analytic", rho=rho, diversity=div, seed=0, epoch=int(ep), k=int(k),
                          pass_at_k_post=float(v), n_test=30) for k, v in zip(pred.ks, curve)]
            counts += [(0, rho, div, int(ep), float(x)) for x in target[a, e]]
    return pred, truth, pl.DataFrame(rows), _counts(counts)


def test_a_held_out_rho_gives_the_fit_no_fork_row(simulated_run):
    pred, _, _, counts = simulated_run
    split = leave_rho_out([0.0, 0.5, 1.0], 1.0, 3)
    obs = train_forks(counts, split, pred)
    held = [a for a, (r, _) in enumerate(pred.arms) if r == 1.0]
    assert len(obs) == 2 and not np.isin(obs.arm, held).any()  # rho 0.5 at epochs 1 and 3; rho 0 never
    assert train_forks(None, split, pred) is None


def test_fit_with_forks_finds_the_truth_and_records_them(simulated_run, tmp_path):
    pred, truth, table, counts = simulated_run
    measured = measured_curves(table, pred.arms, pred.epochs, pred.ks)
    forks = measured_forks(counts, pred.arms, pred.epochs)
    start = {"lr": 3.0, "memorisation": 4.0, "capacity": 1.0}
    fit = fit_parameters(pred, measured, tuple(truth), start=start, forks=forks, check_integration=False)
    for name, v in truth.items():
        assert abs(np.log(fit.values[name] / v)) < 0.05, (name, fit.values[name], v)
    assert fit.n_observations == len(measured) + len(forks)
    assert fit.forks["observations"] == len(forks) == 4 and fit.forks["chi2"] < 1e-3  # exact data: no misfit
    back = load_fit(save_fit(fit, tmp_path / "fit.json"))
    assert back.forks == fit.forks
