"""CurvePredictor against the simulator itself, and the smoothness the fit relies on."""

from dataclasses import replace

import numpy as np
import pytest

from markovfork.fit.predict import CAPACITY_HIGH_BEFORE
from markovfork.fit import PARAMETERS, CurvePredictor
from markovfork.fit.parameters import from_unit, to_unit
from markovfork.llm_bridge.config import config_from_dict
from markovfork.sft.simulate import simulate
from markovfork.llm_bridge.task_mapping import experiment


def small_run(**sft):
    return config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 40, "epochs": 3, "rhos": [0.0, 0.5, 1.0], **sft},
                             "eval": {"n_test": 30, "n_samples": 8, "epochs": [1, 3]}})


def test_hard_cut_at_full_width_equals_simulate():
    """capacity_ramp 0 and c n_train = D (c = 2): the predictor's features are the simulator's own, so its
    curves are simulate()'s pass@k (analytic engine), arm by arm and epoch by epoch."""
    run = small_run(diversities=["data", "problem"])
    pred = CurvePredictor(experiment(run), capacity_ramp=0.0, steps_per_epoch=8, seed=3)
    wide = CAPACITY_HIGH_BEFORE  # the columns drawn as the simulator draws them (those beyond: another stream)
    # feature scale 0.7: memorisation M = lr scale^2 capacity
    values = {"lr": 6.0, "base_step_accuracy": 0.7, "forward_prior": 0.6, "memorisation": 6.0 * 0.7**2 * wide, "capacity": wide}
    table = pred.predict(values)
    assert len(pred.arms) == 4
    pred_full = table
    for a in range(len(pred.arms)):
        cfg = pred.config(a, values)
        n = cfg.task.n_train
        full = replace(cfg, task=replace(cfg.task, feature_dim=int(wide * n)))
        result = simulate(full)
        for e, rec in enumerate(result.records):
            assert rec.epoch == pred.epochs[e]
            np.testing.assert_allclose(pred_full[a, e], rec.evaluation.pass_at_k, rtol=0, atol=1e-12)
    assert np.all(table[:, 0] == table[0, 0])  # data-level arms share the base model


def test_fewer_problems_keeps_the_ratios():
    pred = CurvePredictor(experiment(small_run(n_problems=1000)), max_train_problems=100)
    assert [pred.config(a).task.n_train for a in range(3)] == [100, 100, 100]
    pred = CurvePredictor(experiment(small_run(n_problems=1000, diversities=["problem"], rhos=[0.3])), max_train_problems=100)
    assert pred.config(0).task.n_train == 70  # (1000 - 300) / 10


@pytest.mark.parametrize("name", ["capacity", "memorisation", "lr", "base_step_accuracy"])
def test_curves_move_smoothly_with_each_parameter(name):
    """Second differences along each parameter are small next to first differences: the
    finite-difference Jacobian of the fit sees a slope, not the draw of one feature column."""
    pred = CurvePredictor(experiment(small_run()), steps_per_epoch=8)
    base = {"lr": 5.0, "base_step_accuracy": 0.75, "memorisation": 2.0, "capacity": 1.0}
    h = 0.02 * base[name]
    f = [pred.predict(base | {name: base[name] + i * h}) for i in (-1, 0, 1)]
    first = np.abs(f[2] - f[0]).max()
    second = np.abs(f[2] - 2 * f[1] + f[0]).max()
    assert first > 1e-4 and second < 0.2 * first


def test_memorisation_parameters_lower_large_k_at_rho_one():
    """A higher memorisation rate, or less capacity (more of each memorised fork leaks onto other
    problems), lowers pass@k at the largest k after training on fork data only (the simulator's
    shrinkage mechanism)."""
    pred = CurvePredictor(experiment(small_run()), steps_per_epoch=8)
    base = {"lr": 8.0, "capacity": 0.5, "memorisation": 0.4}
    low = pred.predict(base)[2, -1, -1]
    assert pred.predict(base | {"capacity": 0.1})[2, -1, -1] < low
    assert pred.predict(base | {"memorisation": 3.25})[2, -1, -1] < low


def test_out_of_bounds_and_unknown_parameters_are_errors():
    pred = CurvePredictor(experiment(small_run()))
    with pytest.raises(ValueError, match=r"lr must be in \[0.3, 1000\], got 3000.0"):
        pred.predict({"lr": 3000.0})
    with pytest.raises(ValueError, match="free parameters must be among"):
        pred.predict({"learning_rate": 1.0})
    with pytest.raises(ValueError, match="fixed parameters must be among"):
        CurvePredictor(experiment(small_run()), fixed={"d": 3})
    with pytest.raises(ValueError, match="capacity_ramp must be in"):
        CurvePredictor(experiment(small_run()), capacity_ramp=-1)


def test_unit_coordinates_round_trip():
    names = list(PARAMETERS)
    values = {n: p.low + 0.3 * (p.high - p.low) for n, p in PARAMETERS.items()}
    unit = to_unit(names, values)
    assert all(0 <= u <= 1 for u in unit)
    assert from_unit(names, unit) == pytest.approx(values, rel=1e-12)
    assert to_unit(names, {n: p.low for n, p in PARAMETERS.items()}) == [0.0] * len(names)


def test_the_corner_of_the_bounds_is_integrated_accurately():
    """The largest learning rate, feature scale and capacity with the highest base accuracy: the
    fit's predictor (bridge schedule, geometric first-epoch steps) with 16 steps per epoch is within
    0.01 of 256 steps."""
    corner = {n: p.high for n, p in PARAMETERS.items()}
    fit_like = dict(lr_schedule=True, first_epoch_ratio=1.3)
    table = CurvePredictor(experiment(small_run()), **fit_like).predict(corner)
    fine = CurvePredictor(experiment(small_run()), steps_per_epoch=256, **fit_like).predict(corner)
    assert np.all(np.isfinite(table)) and np.all(np.diff(table, axis=2) >= -1e-12)
    assert np.abs(table - fine).max() < 0.01


def test_exponential_spectrum_has_the_capacity_as_effective_dimension_and_moves_smoothly():
    """feature_spectrum="exponential": column j weighted by exp(-(j + 1/2) / (c n_train)), so the
    summed weight (the effective dimension) is c n_train, and the curves move smoothly with c
    (second differences small next to first ones), down to small capacities."""
    pred = CurvePredictor(experiment(small_run()), steps_per_epoch=8, feature_spectrum="exponential")
    cfg = pred.config(0)
    n = cfg.task.n_train
    for c in (0.05, 0.5, 2.0):
        v = pred.values({"capacity": c, "lr": 5.0, "memorisation": 2.0})
        ones = np.ones((1, pred._arms[0]["train_features"].shape[1]))
        w = pred._features(ones, cfg, v)[0] ** 2 / (v["memorisation"] / (v["lr"] * c))
        assert abs(w.sum() - c * n) < 0.02 * c * n + 0.05, (c, w.sum(), c * n)  # cut at 8.8 n_train columns
        assert np.all(np.diff(w) < 0)  # decaying
    base = {"lr": 5.0, "base_step_accuracy": 0.75, "memorisation": 2.0}
    for c in (0.1, 1.0):
        h = 0.02 * c
        f = [pred.predict(base | {"capacity": c + i * h}) for i in (-1, 0, 1)]
        first, second = np.abs(f[2] - f[0]).max(), np.abs(f[2] - 2 * f[1] + f[0]).max()
        assert first > 1e-4 and second < 0.2 * first, (c, first, second)
    assert pred.settings()["feature_spectrum"] == "exponential"
    with pytest.raises(ValueError, match="feature_spectrum must be one of"):
        CurvePredictor(experiment(small_run()), feature_spectrum="flat")


def test_threads_give_the_same_curves():
    """Arms on threads (the kernels release the GIL) give bit-identical curves to one thread."""
    run = small_run(diversities=["data", "problem"])
    values = {"lr": 6.0, "memorisation": 3.0, "capacity": 0.5, "mode_memorisation": 0.1}
    one = CurvePredictor(experiment(run), steps_per_epoch=4, feature_spectrum="exponential").predict(values)
    three = CurvePredictor(experiment(run), steps_per_epoch=4, feature_spectrum="exponential", threads=3).predict(values)
    np.testing.assert_array_equal(one, three)
    with pytest.raises(ValueError, match="threads must be an integer >= 1, got 0"):
        CurvePredictor(experiment(run), threads=0)


def test_the_strong_memorisation_corner_gives_finite_curves():
    """lr low, memorisation high, capacity low: a feature scale of ~800, beyond the simulator's
    limit of 100 (config() caps the scale it reports), still gives finite probabilities."""
    pred = CurvePredictor(experiment(small_run()), steps_per_epoch=4, feature_spectrum="exponential")
    low_high = {"lr": 0.3, "memorisation": 2000.0, "capacity": 0.01, "mode_memorisation": 10.0}
    table = pred.predict(low_high)
    assert np.all(np.isfinite(table)) and np.all((table >= 0) & (table <= 1))
    assert pred.config(0, low_high).task.feature_scale == 100.0
