"""``markovfork predict``: the printed, tabulated and JSON prediction is the CurvePredictor at the
fitted values; outputs are checked before anything is computed; one-line errors, exit 2."""

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from markovfork.cli import main
from markovfork.fit import CurvePredictor, FitResult, save_fit
from markovfork.llm_bridge.config import config_from_dict, load_config
from markovfork.llm_bridge.task_mapping import experiment

VALUES = {"lr": 5.0, "base_step_accuracy": 0.75, "memorisation": 2.0, "capacity": 1.0}
SETTINGS = dict(max_train_problems=40, steps_per_epoch=8, seed=0, capacity_ramp=0.1)
PLANNED = """seed = 3
[task]
depth = 3
[sft]
n_problems = 40
epochs = 3
rhos = [0.25, 0.75]
[eval]
n_test = 20
n_samples = 4
epochs = [1, 2, 3]
"""


@pytest.fixture
def files(tmp_path):
    run = config_from_dict({"task": {"depth": 3}, "sft": {"n_problems": 40, "epochs": 3, "rhos": [0.0, 0.5, 1.0]},
                            "eval": {"n_test": 30, "n_samples": 8, "epochs": [1, 3]}})
    fit = FitResult(values=dict(VALUES), sigma={n: 0.01 for n in VALUES}, fixed={"forward_prior": 0.5, "mode_memorisation": 1.0},
                    covariance_unit=(np.eye(4) * 1e-4).tolist(), chi2=1.0, n_observations=100, evaluations=1,
                    seconds_per_evaluation=0.1, seconds=0.1, data_fingerprint="0" * 64, engines=("llm",),
                    predictor=dict(SETTINGS), run_config=run.to_dict())
    params = save_fit(fit, tmp_path / "fit.json")
    planned = tmp_path / "planned.toml"
    planned.write_text(PLANNED)
    return params, planned


def _invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _direct(planned):
    return CurvePredictor(experiment(load_config(planned)), fixed={"forward_prior": 0.5}, **SETTINGS).predict(VALUES)


def test_outputs_equal_the_predictor_evaluated_directly(files, tmp_path):
    params, planned = files
    prefix = tmp_path / "out" / "pred"
    r = _invoke(["predict", "--params", params, "--config", planned, "--out", prefix])
    assert r.exit_code == 0, r.output
    direct = _direct(planned)  # (arms, epochs, ks)
    for suffix in (".parquet", ".csv"):
        table = (pl.read_parquet if suffix == ".parquet" else pl.read_csv)(f"{prefix}{suffix}")
        assert set(table["engine"]) == {"predicted"} and set(table["seed"]) == {3}
        for a, rho in enumerate((0.25, 0.75)):
            got = table.filter(pl.col("rho") == rho).sort(["epoch", "k"])["pass_at_k_post"].to_numpy().reshape(4, 3)
            np.testing.assert_allclose(got, direct[a], rtol=0, atol=1e-15)
    assert (tmp_path / "out" / "pred_pass_at_k.png").stat().st_size > 1000
    # the printed lines: one per arm and shown epoch, pass@k at every k
    line = next(x for x in r.output.splitlines() if x.startswith("0.75") and x.split()[2] == "3")
    assert [float(c) for c in line.split()[3::3]] == pytest.approx(direct[1, 3], abs=5e-4)


def test_json_is_strict_and_equals_the_predictor(files):
    params, planned = files
    r = _invoke(["predict", "--params", params, "--config", planned, "--json", "--seed", "9"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    rows = pl.DataFrame(doc["rows"])
    assert set(rows["seed"]) == {9} and doc["values"] == VALUES | {"forward_prior": 0.5, "mode_memorisation": 1.0} and doc["files"] == []
    got = rows.filter(pl.col("rho") == 0.25).sort(["epoch", "k"])["pass_at_k_post"].to_numpy().reshape(4, 3)
    np.testing.assert_array_equal(got, _direct(planned)[0])


def test_one_line_errors(files, tmp_path):
    params, planned = files
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[sft]\nrhos = [0.5]\nbogus = 1\n")
    outside = tmp_path / "outside.toml"
    outside.write_text(PLANNED.replace("depth = 3", "depth = 4").replace("n_problems = 40", "n_problems = 80"))
    not_json = tmp_path / "fit.txt"
    not_json.write_text("hello")
    (tmp_path / "adir.csv").mkdir()
    cases = [
        (["--params", tmp_path / "none.json", "--config", planned], "fit file"),
        (["--params", not_json, "--config", planned], "is not JSON"),
        (["--params", params, "--config", bad_config], "unknown key 'bogus' in [sft]"),
        (["--params", params, "--config", tmp_path / "none.toml"], "none.toml"),
        (["--params", params, "--config", outside], "[task] depth = 4 (fitted: 3); [sft] n_problems = 80 (fitted: 40)"),
        (["--params", params, "--config", planned, "--out", tmp_path / "adir"], "adir.csv: it is a directory"),
    ]
    for args, message in cases:
        r = _invoke(["predict", *args])
        assert r.exit_code == 2, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], (args, r.output)
    assert not (tmp_path / "adir.parquet").exists()  # outputs checked before anything was written
