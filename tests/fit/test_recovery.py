"""The fit recovers known parameters, within its reported uncertainty,
from pass@k curves that the simulator itself generated and that were perturbed with binomial
noise (seeded)."""

import numpy as np
import polars as pl
import pytest

from markovfork.fit import CurvePredictor, fit_parameters, load_fit, measured_curves, save_fit
from markovfork.fit.heldout import more_starts
from markovfork.llm_bridge.config import config_from_dict
from markovfork.reporting.results import results_frame
from markovfork.llm_bridge.task_mapping import experiment

TRUTH = {"lr": 4.0, "base_step_accuracy": 0.75, "memorisation": 5.76, "capacity": 0.6}  # feature scale 1.2
M = 200  # test problems behind each measured pass@k


def small_run():
    return config_from_dict({
        "task": {"depth": 3},
        "sft": {"n_problems": 60, "epochs": 10, "rhos": [0.0, 0.5, 1.0]},
        "eval": {"n_test": M, "n_samples": 16, "epochs": [1, 2, 4, 7, 10]},
    })


def noisy_table(predictor, curves, seed, noise=True):
    """A results table (llm engine) whose pass@k is Binomial(M, p) / M around ``curves`` (or
    ``curves`` themselves)."""
    rng = np.random.default_rng(seed)
    rows = []
    for a, (rho, div) in enumerate(predictor.arms):
        for e, epoch in enumerate(predictor.epochs):
            for j, k in enumerate(predictor.ks):
                y = rng.binomial(M, curves[a, e, j]) / M if noise else float(curves[a, e, j])
                rows.append(dict(engine="llm", rho=rho, diversity=div, seed=0, epoch=int(epoch), k=int(k),
                                 pass_at_k_base=float(rng.binomial(M, curves[a, 0, j]) / M), pass_at_k_post=y,
                                 shrinkage=0.0, fork_accuracy=np.nan, fork_confidence_correct=np.nan,
                                 fork_confidence_wrong=np.nan, fork_entropy=np.nan, train_loss=np.nan, n_test=M))
    return results_frame(rows)


@pytest.fixture(scope="module")
def recovered():
    predictor = CurvePredictor(experiment(small_run()), max_train_problems=60, steps_per_epoch=8)
    curves = predictor.predict(TRUTH)
    measured = measured_curves(noisy_table(predictor, curves, seed=1), predictor.arms, predictor.epochs, predictor.ks)
    return predictor, measured, fit_parameters(predictor, measured)


def test_fit_recovers_known_parameters_within_three_sigma(recovered):
    _, measured, fit = recovered
    for name, true in TRUTH.items():
        sigma = fit.sigma[name]
        assert np.isfinite(sigma) and sigma > 0, name
        assert abs(fit.values[name] - true) < 3 * sigma, (name, fit.values[name], true, sigma)
    # the intervals are informative: each well inside its parameter's range
    assert fit.sigma["lr"] < 0.15 * TRUTH["lr"] and fit.sigma["base_step_accuracy"] < 0.03
    assert fit.sigma["memorisation"] < 0.3 * TRUTH["memorisation"] and fit.sigma["capacity"] < 0.5 * TRUTH["capacity"]
    # the weights are the noise's own standard errors: chi-square per degree of freedom near 1
    assert 0.5 < fit.reduced_chi2 < 1.6
    assert fit.n_observations == len(measured) and fit.data_fingerprint == measured.fingerprint


def test_fit_saved_as_json_with_the_fingerprint_of_its_data(recovered, tmp_path):
    _, measured, fit = recovered
    path = save_fit(fit, tmp_path / "fit.json")
    back = load_fit(path)
    assert back.values == fit.values and back.sigma == fit.sigma and back.fixed == fit.fixed
    assert back.data_fingerprint == measured.fingerprint and config_from_dict(back.run_config) == small_run()
    assert back.evaluations == fit.evaluations > len(TRUTH)
    assert back.predictor["steps_per_epoch"] == 8


def test_residual_is_zero_at_the_truth_without_noise(recovered):
    """Noise-free data: the truth is an exact zero of the objective (the predictor is
    deterministic and the observations land on its grid)."""
    predictor, _, _ = recovered
    curves = predictor.predict(TRUTH)
    exact = measured_curves(noisy_table(predictor, curves, 1, noise=False), predictor.arms, predictor.epochs, predictor.ks)
    assert len(exact) == 3 * 5 * 5 + 5  # epochs 1..10 of every arm, and the base once
    assert np.max(np.abs(exact.residuals(curves))) == 0.0
    assert np.max(np.abs(exact.residuals(predictor.predict(TRUTH | {"lr": 5.0})))) > 0.5


@pytest.mark.slow
def test_reported_uncertainty_is_calibrated_over_noise_draws():
    """Three runs per data set, pass@k up to k = 64 (many values near 1): over four noise draws
    every fitted parameter lies within 3 reported sigmas of the truth and the z-scores have an
    RMS near 1. With standard errors at the measured values (reweight=False), draw 1 misses lr
    by 3.3 sigmas: values that fluctuated to 1.0 get too small an error and pull the fit. With the
    capacity bound at 8 (issue 20) the default start alone ends draw 0 in a local minimum (capacity
    1.7, chi2 228 against 204.6 near the truth, z = 5.5): the first pass also starts from capacity
    0.4 and 4 (heldout.MORE_STARTS) and keeps the best."""
    import polars as pl

    run = config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 60, "epochs": 10, "rhos": [0.0, 0.5, 1.0]},
                            "eval": {"n_test": M, "n_samples": 64, "epochs": [1, 2, 4, 7, 10]}})
    predictor = CurvePredictor(experiment(run), max_train_problems=60, steps_per_epoch=8)
    curves = predictor.predict(TRUTH)
    z = []
    for draw in range(4):
        runs = [noisy_table(predictor, curves, seed=10 * draw + s).with_columns(seed=pl.lit(s)) for s in range(3)]
        measured = measured_curves(pl.concat(runs), predictor.arms, predictor.epochs, predictor.ks)
        fit = fit_parameters(predictor, measured, more_starts=more_starts(TRUTH))
        z += [(fit.values[n] - TRUTH[n]) / fit.sigma[n] for n in TRUTH]
    z = np.array(z)
    assert np.all(np.abs(z) < 3), z.round(2)
    assert 0.5 < np.sqrt(np.mean(z**2)) < 1.6, z.round(2)


def test_fit_input_errors(recovered):
    predictor, measured, _ = recovered
    with pytest.raises(ValueError, match="at least one parameter"):
        fit_parameters(predictor, measured, free=())
    with pytest.raises(ValueError, match="free parameters must be among"):
        fit_parameters(predictor, measured, free=("lr", "depth"))
    with pytest.raises(ValueError, match=r"base_step_accuracy must be in \[0.3, 0.995\], got 1.5"):
        fit_parameters(predictor, measured, start={"base_step_accuracy": 1.5})
    few = measured_curves(measured.table.head(3), predictor.arms, predictor.epochs, predictor.ks)
    with pytest.raises(ValueError, match="more observations than free parameters, got 3 for 4"):
        fit_parameters(predictor, few)


def test_fixed_parameters_stay_fixed(recovered):
    predictor, measured, _ = recovered
    fit = fit_parameters(predictor, measured, free=("lr", "base_step_accuracy"),
                         start={"lr": 3.0, "base_step_accuracy": 0.7})
    assert set(fit.values) == {"lr", "base_step_accuracy"}
    assert fit.fixed == {n: v for n, v in predictor.fixed.items() if n not in fit.values}


def test_fit_json_is_strict_json_when_an_uncertainty_is_undefined(recovered, tmp_path):
    """A singular Jacobian leaves nan standard errors: written as null, read back as nan."""
    import dataclasses
    import json

    _, _, fit = recovered
    broken = dataclasses.replace(fit, sigma={n: float("nan") for n in fit.sigma},
                                 covariance_unit=[[float("nan")] * len(fit.values)] * len(fit.values))
    path = save_fit(broken, tmp_path / "fit.json")
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    back = load_fit(path)
    assert all(np.isnan(v) for v in back.sigma.values()) and np.isnan(back.covariance_unit[0][0])
    assert back.values == fit.values


def test_load_fit_refuses_other_files(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a markovfork fit file"):
        load_fit(path)


def test_covariance_leaves_out_parameters_held_by_a_bound():
    from markovfork.fit.solve import _covariance

    rng = np.random.default_rng(0)
    jac = rng.normal(size=(30, 3))
    cov, at_bound = _covariance(jac, np.array([0.4, 1.0, 0.7]), 2.0)
    assert at_bound.tolist() == [False, True, False]
    assert np.all(np.isnan(cov[1])) and np.all(np.isnan(cov[:, 1]))
    inner = jac[:, [0, 2]]
    np.testing.assert_allclose(cov[np.ix_([0, 2], [0, 2])], 2.0 * np.linalg.inv(inner.T @ inner), rtol=1e-12)
    full, none = _covariance(jac, np.array([0.4, 0.5, 0.7]), 1.0)
    assert not none.any() and np.allclose(full, np.linalg.inv(jac.T @ jac))


# --- per-problem base skill and the bridge's schedule (issue 20) ---------------------------------

SPREAD = {"a": 3.0, "b": 5.0, "w": 0.05}  # base success per problem: 0 w.p. 0.05, else Beta(3, 5)
# the regime of the bridge sweep's fit: strong interference (small capacity), the mode shared more than memorised
HET_TRUTH = {"lr": 40.0, "memorisation": 12.0, "capacity": 0.3, "mode_memorisation": 0.1}
HET = dict(max_train_problems=60, steps_per_epoch=8, lr_schedule=True, first_epoch_ratio=1.3, feature_spectrum="exponential",
           skill_per_mode=True)  # the settings of the bridge fit's predictor (heldout.bridge_predictor)


def five_rho_run():
    """small_run at five rhos: the interior data-level arms are what tell the mode's memorisation."""
    run = small_run().to_dict()
    run["sft"]["rhos"] = [0.0, 0.25, 0.5, 0.75, 1.0]
    return config_from_dict(run)


@pytest.fixture(scope="module")
def recovered_spread():
    """Curves and base counts made by a predictor with a known base spread and the bridge's
    schedule; the spread is re-estimated from the counts (two 'seeds' of 200 problems, n = 32) and
    lr, memorisation, capacity and mode_memorisation are fitted with it, from the starts
    `markovfork fit` uses."""
    from markovfork.fit.heldout import more_starts
    from markovfork.fit.solve import default_free
    from markovfork.fit.heterogeneity import base_spread_from_counts

    truth = CurvePredictor(experiment(five_rho_run()), base_spread=SPREAD, **HET)
    success = truth.success(HET_TRUTH)
    rng = np.random.default_rng(7)
    base = success[0, 0]
    counts = np.concatenate([rng.binomial(32, base) for _ in range(2)])
    spread = base_spread_from_counts(counts, 32)
    predictor = CurvePredictor(experiment(five_rho_run()), base_spread=spread, **HET)
    curves = truth.predict(HET_TRUTH)
    measured = measured_curves(noisy_table(truth, curves, seed=3), predictor.arms, predictor.epochs, predictor.ks)
    free = default_free(predictor)  # lr, memorisation, capacity, mode_memorisation
    return truth, predictor, spread, counts, measured, fit_parameters(predictor, measured, free, more_starts=more_starts(free))


def test_base_spread_is_recovered_from_counts(recovered_spread):
    from markovfork.fit.counts import histogram_distance, measured_histogram, predicted_histogram
    from markovfork.fit.predict import pass_at_k_table

    truth, predictor, spread, counts, _, _ = recovered_spread
    s_true, s_fit = truth.success(HET_TRUTH)[0, 0], predictor.success(HET_TRUTH)[0, 0]
    assert np.std(s_true) > 0.1  # the problems differ
    np.testing.assert_allclose(pass_at_k_table(s_fit, predictor.ks), pass_at_k_table(s_true, truth.ks), atol=0.02)
    d = histogram_distance(measured_histogram(counts, 32), predicted_histogram(s_fit, 32))
    assert d["tv"] < 0.12 and d["w1"] < 0.02, d
    assert abs(spread["w"] - SPREAD["w"]) < 0.04
    # without the spread, one skill for every problem: the histogram is far off
    one = CurvePredictor(experiment(small_run()), **HET).success(HET_TRUTH | {"base_step_accuracy": 0.75})[0, 0]
    assert np.std(one) < 1e-9
    assert histogram_distance(measured_histogram(counts, 32), predicted_histogram(one, 32))["tv"] > 0.3


def test_fit_recovers_parameters_with_a_base_spread(recovered_spread):
    _, predictor, _, _, measured, fit = recovered_spread
    assert set(fit.values) == set(HET_TRUTH)  # base_step_accuracy: set by the spread, not fitted
    assert not fit.at_bound
    for name, true in HET_TRUTH.items():
        sigma = fit.sigma[name]
        assert np.isfinite(sigma) and sigma > 0, name
        assert abs(fit.values[name] - true) < 3 * sigma + 0.1 * true, (name, fit.values[name], true, sigma)
    # informative: the data pin them. With a skill per mode, which takes part of memorisation's and
    # capacity's effect on these small arms, their sigmas were 4.9 of 12 and 0.21 of 0.3 (the values
    # 11.8 and 0.34); with one shared skill 2.2 and 0.074 (the values 8.9 and 0.15)
    for name, share in (("lr", 0.4), ("memorisation", 0.5), ("capacity", 0.75)):
        assert fit.sigma[name] < share * HET_TRUTH[name], (name, fit.sigma[name])
    assert 0.5 < fit.reduced_chi2 < 2.0


def test_the_bridge_schedule_scales_each_epoch():
    """The per-epoch multipliers are the mean of llm_bridge.train.lr_at over each epoch's steps."""
    from markovfork.fit.heterogeneity import bridge_lr_factors, lr_multiplier

    run = config_from_dict({})  # the default SFT: 32 steps an epoch, 20 of warm-up, 12 epochs
    factors = bridge_lr_factors(run.to_dict())
    per_epoch = -(-run.sft.n_problems // run.sft.batch_size)
    total = run.sft.epochs * per_epoch
    assert factors.shape == (run.sft.epochs,)
    steps = [lr_multiplier(s, total, run.sft.warmup_steps, run.sft.min_lr_ratio) for s in range(total)]
    assert factors[0] == pytest.approx(np.mean(steps[:per_epoch]), rel=1e-12)
    assert steps[-1] == pytest.approx(run.sft.min_lr_ratio) and max(steps) == pytest.approx(1.0, abs=0.02)
    try:
        from markovfork.llm_bridge.train import lr_at
    except ImportError:  # torch absent
        return
    assert steps == pytest.approx([lr_at(s, total, run.sft) for s in range(total)], rel=1e-12)


def test_mode_memorisation_is_fitted_only_where_the_rows_mix_modes(recovered_spread):
    """Rows of rho 0 and 1 alone (every training problem asks for the same mode) do not tell the
    mode's memorisation: it is held at its default; any data-level arm with 0 < rho < 1 frees it."""
    from markovfork.fit.solve import default_free

    truth, predictor, *_ = recovered_spread
    table = noisy_table(truth, truth.predict(HET_TRUTH), seed=5)
    edges = measured_curves(table.filter(pl.col("rho").is_in([0.0, 1.0])), predictor.arms, predictor.epochs, predictor.ks)
    mixed = measured_curves(table.filter(pl.col("rho").is_in([0.0, 0.5])), predictor.arms, predictor.epochs, predictor.ks)
    assert default_free(predictor, edges) == ("lr", "memorisation", "capacity")
    assert default_free(predictor, mixed) == ("lr", "memorisation", "capacity", "mode_memorisation")
    assert default_free(predictor) == ("lr", "memorisation", "capacity", "mode_memorisation")
