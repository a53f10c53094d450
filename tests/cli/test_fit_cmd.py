"""``markovfork fit``: held-out prediction of a small simulated table (CSV and Parquet), outputs
complete and checked before computing, and one-line errors for tables it cannot fit."""

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from markovfork.cli import main
from markovfork.fit import load_fit
from markovfork.fit.heldout import BRIDGE_MODE_MEMORISATION, bridge_predictor
from markovfork.llm_bridge.config import config_from_dict
from markovfork.reporting.results import results_frame
from markovfork.llm_bridge.task_mapping import experiment

CONFIG = """
[task]
depth = 3
[sft]
n_problems = 60
"""
TRUTH = {"lr": 4.0, "base_step_accuracy": 0.75, "memorisation": 5.0, "capacity": 0.6}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fit")
    run = config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 60, "epochs": 4, "rhos": [0.0, 0.5, 1.0]},
                            "eval": {"n_test": 100, "n_samples": 16, "epochs": [1, 2, 4]}})
    predictor = bridge_predictor(experiment(run))  # the predictor markovfork fit uses (bridge schedule)
    curves = predictor.predict(TRUTH)
    rows = []
    for a, (rho, div) in enumerate(predictor.arms):
        for e, epoch in enumerate(predictor.epochs):
            for j, k in enumerate(predictor.ks):
                rows.append(dict(engine="llm", rho=rho, diversity=div, seed=0, epoch=int(epoch), k=int(k),
                                 pass_at_k_base=float(curves[a, 0, j]), pass_at_k_post=float(curves[a, e, j]),
                                 shrinkage=0.0, fork_accuracy=np.nan, fork_confidence_correct=np.nan,
                                 fork_confidence_wrong=np.nan, fork_entropy=np.nan, train_loss=np.nan,
                                 n_test=100, n_samples=16, arms=2, depth=3, fork_format="forward", answer="path"))
    table = results_frame(rows)
    table.write_parquet(d / "runs.parquet")
    table.write_csv(d / "runs.csv")
    (d / "cfg.toml").write_text(CONFIG)
    return d, table


def _invoke(args):
    return CliRunner().invoke(main, ["fit", *map(str, args)])


def test_fit_predicts_a_held_out_rho_and_writes_every_output(files):
    d, _ = files
    out = d / "res"
    r = _invoke([d / "runs.csv", "--config", d / "cfg.toml", "--predict-rho", "0.5", "--out", out,
                 "--save-params", d / "fit.json", "--json", "--no-fork-baseline"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    held = doc["held_out"]
    assert held["held_rhos"] == [0.5] and held["train_rhos"] == [0.0, 1.0]
    assert held["errors"]["simulator"]["rmse"] < 0.02 and "interpolation" in held["errors"]
    assert held["errors"]["simulator"]["cells"] == 3 * 5  # epochs 1, 2, 4 x ks 1 .. 16
    rows = pl.read_parquet(f"{out}.parquet")
    assert rows.equals(pl.read_csv(f"{out}.csv"), null_equal=True) or rows.height == pl.read_csv(f"{out}.csv").height
    assert set(rows["role"]) == {"train", "held_out"}
    h = rows.filter(pl.col("role") == "held_out")
    assert h.height == 15 and set(h["rho"]) == {0.5}
    d_err = (h["predicted"] - h["measured"]).to_numpy()
    assert np.sqrt(np.mean(d_err**2)) == pytest.approx(held["errors"]["simulator"]["rmse"])
    for name in ("curves", "residuals"):
        assert (d / f"res_{name}.png").stat().st_size > 1000
    fit = load_fit(d / "fit.json")
    assert fit.values == pytest.approx({n: v["value"] for n, v in doc["parameters"].items()})
    # rho 0 and 1 do not tell the mode's memorisation: held at the bridge's shared-mode value, recorded
    assert "mode_memorisation" not in fit.values and fit.fixed["mode_memorisation"] == BRIDGE_MODE_MEMORISATION
    assert fit.predictor["skill_per_mode"] is True  # the default: a skill per mode, saved with the fit


def test_shared_skill_is_a_choice_saved_with_the_fit(files):
    """--skill shared fits the one-skill simulator (its saved settings say so, and markovfork predict
    rebuilds the same predictor), with a different result from the per-mode default."""
    d, _ = files
    docs = {}
    for skill in ("shared", "per-mode"):
        r = _invoke([d / "runs.parquet", "--config", d / "cfg.toml", "--skill", skill, "--json",
                     "--save-params", d / f"fit_{skill}.json", "--no-progress"])
        assert r.exit_code == 0, r.output
        docs[skill] = json.loads(r.output[r.output.index("{"):])  # after any warning line
    assert "skill_per_mode" not in load_fit(d / "fit_shared.json").predictor
    assert load_fit(d / "fit_per-mode.json").predictor["skill_per_mode"] is True
    assert docs["shared"]["parameters"]["lr"]["value"] != docs["per-mode"]["parameters"]["lr"]["value"]
    r = _invoke([d / "runs.parquet", "--skill", "both"])
    assert r.exit_code == 2 and "--skill" in r.output


def test_unwritable_outputs_are_refused_before_computing(files, monkeypatch):
    """--out under a file (not a directory) and --save-params on a directory: refused before
    the table is even read (a table that would fail to read shows the order)."""
    import markovfork.fit.schema as schema

    d, _ = files
    (d / "plain").write_text("x")
    monkeypatch.setattr(schema, "read_results", lambda paths: pytest.fail("read before the outputs were checked"))
    r = _invoke([d / "runs.parquet", "--config", d / "cfg.toml", "--out", d / "plain" / "res"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "is not a directory" in r.output, r.output
    r = _invoke([d / "runs.parquet", "--config", d / "cfg.toml", "--save-params", d])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "is a directory" in r.output, r.output


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop("pass_at_k_post"), "lacks the results columns ['pass_at_k_post']"),
    (lambda t: t.with_columns(pl.when(pl.col("rho") == 1.0).then(4).otherwise(pl.col("depth")).alias("depth")),
     "mix task settings: depth"),
    (lambda t: t.filter(pl.col("epoch") <= 1), "too few settings to fit"),
])
def test_tables_it_cannot_fit_give_one_line_errors(files, change, message):
    d, table = files
    path = d / "bad.parquet"
    change(table).write_parquet(path)
    args = [path, "--config", d / "cfg.toml"]
    if "too few" in message:
        args += ["--train-rho", "0"]
    r = _invoke(args)
    assert r.exit_code == 2 and r.output.count("\n") == 1 and message in r.output, r.output


def test_unknown_rho_is_a_one_line_error(files):
    d, _ = files
    r = _invoke([d / "runs.parquet", "--config", d / "cfg.toml", "--predict-rho", "0.3"])
    assert r.exit_code == 2 and r.output.strip() == "Error: --predict-rho 0.3 is not a measured rho (the table has [0.0, 0.5, 1.0])"


def test_counts_give_the_fitted_simulators_histogram_distance(files):
    """Counts drawn from the simulated success probabilities sit close to the predicted histograms
    (TV within sampling noise); counts of a model that never succeeds are far from them."""
    d, _ = files
    run = config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 60, "epochs": 4, "rhos": [0.0, 0.5, 1.0]},
                            "eval": {"n_test": 100, "n_samples": 16, "epochs": [1, 2, 4]}})
    predictor = bridge_predictor(experiment(run))  # the predictor markovfork fit uses (bridge schedule)
    success = predictor.success(TRUTH)
    rng = np.random.default_rng(5)
    rows = [dict(seed=0, diversity=div, rho=rho, epoch=int(ep), problem=i, n_samples=16, correct=int(c))
            for a, (rho, div) in enumerate(predictor.arms) for e, ep in enumerate(predictor.epochs) if ep > 0
            for i, c in enumerate(rng.binomial(16, success[a, e]))]
    pl.DataFrame(rows).write_parquet(d / "counts.parquet")
    pl.DataFrame(rows).with_columns(pl.lit(0).alias("correct")).write_parquet(d / "zeros.parquet")
    near = json.loads(_invoke([d / "runs.parquet", "--config", d / "cfg.toml", "--counts", d / "counts.parquet",
                               "--json"]).output)["counts"]
    far = json.loads(_invoke([d / "runs.parquet", "--config", d / "cfg.toml", "--counts", d / "zeros.parquet",
                              "--json"]).output)["counts"]
    assert near["settings"] == far["settings"] == 3 * 3
    # far w1: the mean success rate of the fitted model (lower with the bridge schedule in the truth: 0.38)
    assert near["tv"] < 0.3 and far["tv"] > 0.6 and far["w1"] > 0.3


def test_counts_with_fork_probabilities_add_fork_observations_of_the_fitted_rows_only(files):
    """q_target in the counts: the fit takes one fork observation per fitted (rho > 0, epoch >= 1)
    setting, none of a held-out rho, and the simulator's own values fit them to their noise."""
    d, _ = files
    run = config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 60, "epochs": 4, "rhos": [0.0, 0.5, 1.0]},
                            "eval": {"n_test": 100, "n_samples": 16, "epochs": [1, 2, 4]}})
    predictor = bridge_predictor(experiment(run))
    success, target = predictor.evaluate(TRUTH)
    rows = [dict(seed=0, diversity=div, rho=rho, epoch=int(ep), problem=i, n_samples=16, correct=int(round(16 * s)),
                 target_arm=0, q_target=float(q))
            for a, (rho, div) in enumerate(predictor.arms) for e, ep in enumerate(predictor.epochs) if ep > 0
            for i, (s, q) in enumerate(zip(success[a, e], target[a, e]))]
    pl.DataFrame(rows).write_parquet(d / "forks.parquet")
    args = [d / "runs.parquet", "--config", d / "cfg.toml", "--counts", d / "forks.parquet", "--json"]
    whole = json.loads(_invoke(args).output)
    held = json.loads(_invoke([*args, "--predict-rho", "1", "--no-fork-baseline"]).output)
    assert whole["forks"]["observations"] == 2 * 3 and held["forks"]["observations"] == 3
    assert whole["forks"]["chi2"] < 6.0
    plain = json.loads(_invoke([*args, "--no-fork-observations"]).output)
    assert whole["n_observations"] == plain["n_observations"] + 6 and plain["forks"] == {}
    r = _invoke([d / "runs.parquet", "--no-fork-observations"])
    assert r.exit_code == 2 and "--no-fork-observations applies only with --counts" in r.output
