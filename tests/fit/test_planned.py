"""Predicting a planned bridge run from a fit (markovfork.fit.planned): the prediction is the
CurvePredictor at the fitted values, arm by arm; the parameter sd is the delta method; settings
outside the fit are refused by name; bad fit files give one-line errors."""

import json
from dataclasses import replace

import numpy as np
import pytest

from markovfork.fit import CurvePredictor, FitResult, save_fit
from markovfork.fit.parameters import from_unit, to_unit
from markovfork.fit.planned import prediction_table, read_fit
from markovfork.llm_bridge.fit_runs import coverage_problems, predict_run
from markovfork.llm_bridge.config import config_from_dict
from markovfork.reporting.results import RESULT_COLUMNS
from markovfork.llm_bridge.task_mapping import experiment

VALUES = {"lr": 5.0, "base_step_accuracy": 0.75, "memorisation": 2.0, "capacity": 1.0}
SETTINGS = dict(max_train_problems=40, steps_per_epoch=8, seed=0, capacity_ramp=0.1)


def fitted_run(**sft):
    return config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 40, "epochs": 3, "rhos": [0.0, 0.5, 1.0], **sft},
                             "eval": {"n_test": 30, "n_samples": 8, "epochs": [1, 3]}})


def planned_run(**changes):
    d = fitted_run().to_dict()
    d["seed"] = 7
    d["sft"] = d["sft"] | {"rhos": [0.25]}
    d["eval"] = d["eval"] | {"epochs": [1, 2, 3], "n_samples": 4, "n_test": 20}
    for section, fields in changes.items():
        d[section] = d[section] | fields
    return config_from_dict(d)


def hand_made_fit(cov_scale=1e-4, run=None, values=VALUES):
    p = len(values)
    return FitResult(values=dict(values), sigma={n: 0.0 for n in values}, fixed={"forward_prior": 0.5, "mode_memorisation": 1.0},
                     covariance_unit=(np.eye(p) * cov_scale).tolist(), chi2=1.0, n_observations=100, evaluations=1,
                     seconds_per_evaluation=0.1, seconds=0.1, data_fingerprint="0" * 64, engines=("llm",),
                     predictor=dict(SETTINGS), run_config=(run or fitted_run()).to_dict())


def test_prediction_is_the_curve_predictor_at_the_fitted_values():
    fit = hand_made_fit()
    planned = planned_run()
    pred = predict_run(fit, planned)
    direct = CurvePredictor(experiment(planned), fixed={"forward_prior": 0.5}, **SETTINGS).predict(VALUES)
    np.testing.assert_array_equal(pred.pass_at_k, direct)
    assert pred.arms == [(0.25, "data")] and pred.epochs.tolist() == [0, 1, 2, 3] and pred.ks.tolist() == [1, 2, 4]


def test_a_fitted_arm_predicted_alone_equals_its_curves_in_the_fitted_run():
    """Each arm is simulated on its own: predicting rho 0.5 alone gives the rows of rho 0.5 in
    the three-arm fitted run (no mix-up of arms, epochs or k)."""
    fit = hand_made_fit()
    whole = CurvePredictor(experiment(fitted_run()), fixed=fit.fixed, **SETTINGS).predict(VALUES)
    alone = predict_run(fit, config_from_dict(fitted_run(rhos=[0.5]).to_dict()), uncertainty=False)
    np.testing.assert_array_equal(alone.pass_at_k[0], whole[1])


def test_parameter_sd_is_the_delta_method():
    """One fitted parameter with unit-coordinate sd s: the sd of each value is
    |pred(u + h) - pred(u - h)| / (2h) s; with four times the covariance it doubles; with a nan
    covariance (held at a bound) it is zero."""
    values = {"lr": 5.0}
    fixed = {n: v for n, v in VALUES.items() if n != "lr"} | {"forward_prior": 0.5}
    s = 0.01
    fit = replace(hand_made_fit(cov_scale=s**2, values=values), fixed=fixed)
    pred = predict_run(fit, planned_run())
    predictor = CurvePredictor(experiment(planned_run()), fixed=fixed, **SETTINGS)
    u = to_unit(["lr"], values)[0]
    h = 0.002
    slope = (predictor.predict(from_unit(["lr"], [u + h])) - predictor.predict(from_unit(["lr"], [u - h]))) / (2 * h)
    np.testing.assert_allclose(pred.sd, np.abs(slope) * s, rtol=0.02, atol=1e-6)
    assert pred.sd[:, 1:].max() > 1e-3
    wider = predict_run(replace(fit, covariance_unit=[[4 * s**2]]), planned_run())
    np.testing.assert_allclose(wider.sd, 2 * pred.sd, rtol=1e-9, atol=1e-12)
    held = predict_run(replace(fit, covariance_unit=[[float("nan")]]), planned_run())
    assert np.all(held.sd == 0)
    with pytest.raises(ValueError, match=r"covariance must be 1 x 1 .*got shape \(2, 2\)"):
        predict_run(replace(fit, covariance_unit=np.eye(2).tolist()), planned_run())


def test_table_is_in_the_results_schema():
    pred = predict_run(hand_made_fit(), planned_run())
    table = prediction_table(pred)
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert set(table["engine"]) == {"predicted"} and set(table["seed"]) == {7}
    assert table.height == 1 * 4 * 3
    post = table.sort(["epoch", "k"])["pass_at_k_post"].to_numpy().reshape(4, 3)
    np.testing.assert_array_equal(post, pred.pass_at_k[0])
    base = table.filter(table["epoch"] == 0).sort("k")
    np.testing.assert_array_equal(base["pass_at_k_base"], base["pass_at_k_post"])
    assert np.all(table["pass_at_k_post_sd"].to_numpy() == pred.sd[0].ravel())


@pytest.mark.parametrize("changes, named", [
    ({"task": {"depth": 4}}, "[task] depth = 4 (fitted: 3)"),
    ({"sft": {"lr": 2e-4}}, "[sft] lr = 0.0002 (fitted: "),
    ({"sft": {"epochs": 5}}, "[sft] epochs = 5 beyond the fitted 3"),
    ({"sft": {"diversities": ["problem"], "rhos": [0.5]}}, "diversity 'problem' (fitted: ['data'])"),
    ({"eval": {"sampling": {"temperature": 0.7}}}, "[eval.sampling] temperature = 0.7 (fitted: 1.0)"),
    ({"base": {"epochs": 2}}, "[base] epochs = 2"),
])
def test_settings_outside_the_fit_are_refused_by_name(changes, named):
    with pytest.raises(ValueError, match="outside what the fit covers") as err:
        predict_run(hand_made_fit(), planned_run(**changes))
    assert named in str(err.value) and "\n" not in str(err.value)


def test_rho_outside_the_fitted_range_is_refused():
    fit = hand_made_fit(run=fitted_run(rhos=[0.25, 0.75]))
    assert coverage_problems(fit, planned_run(sft={"rhos": [0.5]})) == []
    assert coverage_problems(fit, planned_run(sft={"rhos": [0.9]})) == ["rho 0.9 outside the fitted range [0.25, 0.75]"]


def test_read_fit_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_fit(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="is not JSON"):
        read_fit(bad)
    good = save_fit(hand_made_fit(), tmp_path / "fit.json")
    doc = json.loads(good.read_text())
    del doc["predictor"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a valid markovfork fit: missing or malformed 'predictor'"):
        read_fit(bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a markovfork fit file"):
        read_fit(bad)
    fit = read_fit(good)
    np.testing.assert_array_equal(predict_run(fit, planned_run()).pass_at_k,
                                  predict_run(hand_made_fit(), planned_run()).pass_at_k)


def test_a_format_1_fit_reads_in_the_new_coordinates_and_predicts_as_committed(tmp_path):
    """The prediction committed before its run (docs/examples/prediction, fit format 1: memorisation
    then meant m = lr scale^2) reads as M = m capacity with mode_memorisation 1 held fixed, and
    predicts the committed pass@k table again."""
    import polars as pl
    from pathlib import Path

    from markovfork.llm_bridge.config import load_config

    here = Path(__file__).resolve().parents[2] / "docs" / "examples" / "prediction"
    old = json.loads((here / "fit.json").read_text())
    assert old["format"] == "markovfork-fit/1"
    fit = read_fit(here / "fit.json")
    m, c = (old["parameters"][n]["value"] for n in ("memorisation", "capacity"))
    assert fit.values["memorisation"] == pytest.approx(m * c) and fit.values["capacity"] == c
    assert fit.fixed["mode_memorisation"] == 1.0
    pred = predict_run(fit, load_config(here / "planned.toml"))
    committed = pl.read_parquet(here / "predicted.parquet").sort("epoch", "k")
    got = pred.pass_at_k[0].reshape(-1)
    # 4e-6 apart already before the reparametrisation: the kernels that made the file were older
    np.testing.assert_allclose(got, committed["pass_at_k_post"].to_numpy(), rtol=0, atol=1e-5)
    # the parameter sd too: the covariance carried into the new unit coordinates (capacity held at
    # its old bound stays held)
    np.testing.assert_allclose(pred.sd[0].reshape(-1), committed["pass_at_k_post_sd"].to_numpy(), rtol=0.02, atol=1e-4)
    assert committed["pass_at_k_post_sd"].max() > 0.01
    bad = json.loads((here / "fit.json").read_text())
    del bad["parameters"]["capacity"]["low"]
    (tmp_path / "old.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="a format-1 fit file needs numeric value, low and high"):
        read_fit(tmp_path / "old.json")


def test_fit_warnings_name_a_stiff_fit():
    """A fit whose curves move by more than INTEGRATION_TOLERANCE with 4x the substeps is named;
    the check itself is the predictor's integration_error (zero against itself at equal steps)."""
    from markovfork.fit.solve import INTEGRATION_TOLERANCE, fit_warnings

    fit = hand_made_fit()
    assert fit_warnings(replace(fit, integration_error=0.001)) == []
    (line,) = fit_warnings(replace(fit, integration_error=0.02))
    assert "move by 0.02 with 4x the integration substeps" in line and f"{INTEGRATION_TOLERANCE:g}" in line
    pred = CurvePredictor(experiment(fitted_run()), fixed=fit.fixed, **SETTINGS)
    assert pred.integration_error(VALUES, factor=1) == 0.0
    assert 0.0 < pred.integration_error(VALUES) < INTEGRATION_TOLERANCE


def test_fit_warnings_name_a_loosely_constrained_parameter():
    """A fitted value whose standard error is above LOOSE_SHARE of it is named with its sd; one just
    below is not."""
    from markovfork.fit.solve import LOOSE_SHARE, fit_warnings

    fit = replace(hand_made_fit(), integration_error=0.0)
    name = next(iter(fit.values))
    value = fit.values[name]
    assert fit_warnings(replace(fit, sigma=fit.sigma | {name: 0.99 * LOOSE_SHARE * value})) == []
    (line,) = fit_warnings(replace(fit, sigma=fit.sigma | {name: 1.01 * LOOSE_SHARE * value}))
    assert "barely constrain" in line and f"{name} = {value:.4g} +- " in line


def test_a_stiff_prediction_is_integrated_until_it_converges():
    """At a large lr the coarse flow overshoots: ``converged_success`` returns the success of the
    first finer predictor (4x, 16x the substeps) whose next 4x refinement moves the pass@k table by
    at most the tolerance, and the coarse predictor's own where that is already within it (or where
    the caller's measured error says so)."""
    from markovfork.fit.predict import INTEGRATION_TOLERANCE

    p = CurvePredictor(experiment(fitted_run()), fixed={"mode_memorisation": 0.01}, **(SETTINGS | {"steps_per_epoch": 4}))
    stiff = VALUES | {"lr": 600.0}
    assert p.integration_error(stiff) > 0.1 and p.finer(4).integration_error(stiff) > 0.1
    assert p.finer(16).integration_error(stiff) <= INTEGRATION_TOLERANCE
    success, multiple = p.converged_success(stiff)
    assert multiple == 16
    np.testing.assert_array_equal(success, p.finer(16).success(stiff))
    q = CurvePredictor(experiment(fitted_run()), fixed={"mode_memorisation": 0.01}, **SETTINGS)  # 8 substeps
    assert q.integration_error(VALUES) <= INTEGRATION_TOLERANCE
    coarse, one = q.converged_success(VALUES)
    assert one == 1
    np.testing.assert_array_equal(coarse, q.success(VALUES))
    assert p.converged_success(stiff, error=0.0)[1] == 1
