"""Hostile inputs (issue 19): every case is refused with exit code 2, exactly one ``Error:`` line
on stderr naming the problem, no traceback, and no output file created or changed. The cases
are those of the issue's hostile campaign, one row each, small enough to fail fast."""

import errno
import json
import shutil

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from cli_checks import assert_one_error_line, files
from markovfork.cli import main
from markovfork.fit.solve import FitResult, fit_document
from markovfork.llm_bridge.config import config_from_dict

RUN = {"task": {"depth": 3}, "sft": {"n_problems": 60, "epochs": 4, "rhos": [0.0, 0.5, 1.0]},
       "eval": {"n_test": 100, "n_samples": 16, "epochs": [1, 2, 4]}}
PLANNED = "[task]\ndepth = 3\n[sft]\nn_problems = 60\nepochs = 4\nrhos = {rhos}\n" \
          "[eval]\nn_test = 100\nn_samples = 16\nepochs = [1, 2, 4]\n"
VALUES = {"lr": 4.0, "base_step_accuracy": 0.75, "memorisation": 5.0, "capacity": 0.6}
TINY = ["--iterations", "2", "--evaluations", "2", "--epochs", "2", "--train-problems", "20", "--test-problems", "20",
        "--feature-dim", "10", "--no-progress"]


def _table() -> pl.DataFrame:
    rows = []
    for rho in (0.0, 0.5, 1.0):
        for epoch in (0, 1, 2, 4):
            for k in (1, 2, 4, 8, 16):
                p = 1 - (1 - 0.3 - 0.1 * epoch * (1 - rho)) ** k if epoch else 1 - 0.7**k
                rows.append(dict(engine="llm", rho=rho, diversity="data", seed=0, epoch=epoch, k=k,
                                 pass_at_k_post=min(p, 1.0), arms=2, depth=3, n_samples=16, n_test=100))
    return pl.DataFrame(rows)


def _fit_doc(fitted) -> dict:
    run = config_from_dict(RUN)
    fit = FitResult(values=dict(VALUES), sigma={n: 0.01 for n in VALUES}, fixed={"forward_prior": 0.5, "mode_memorisation": 1.0},
                    covariance_unit=np.diag([1e-4] * 4).tolist(), chi2=40.0, n_observations=50, evaluations=10,
                    seconds_per_evaluation=0.01, seconds=0.1, data_fingerprint="x", engines=("llm",),
                    predictor={"max_train_problems": 400, "steps_per_epoch": 16, "seed": 0, "capacity_ramp": 0.1},
                    run_config=run.to_dict(), fitted=fitted)
    return fit_document(fit)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    t = _table()
    t.write_csv(d / "runs.csv")
    t.write_parquet(d / "runs.parquet")
    shutil.copy(d / "runs.csv", d / "copy.csv")
    pl.concat([t, t.with_columns(pl.col("pass_at_k_post") * 0.5)]).write_csv(d / "dup.csv")
    t.head(0).write_csv(d / "header.csv")
    (d / "empty.csv").write_bytes(b"")
    (d / "zero.parquet").write_bytes(b"")
    shutil.copy(d / "runs.csv", d / "mislabel.parquet")
    lines = (d / "runs.csv").read_text().splitlines()
    lines[3] += ",1,2"
    (d / "ragged.csv").write_text("\n".join(lines) + "\n")
    t.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("depth")).alias("depth")) \
        .write_csv(d / "nulldepth.csv")
    t.with_columns(pl.col("rho").cast(pl.String)).write_parquet(d / "textrho.parquet")
    t.with_columns(pl.col("pass_at_k_post").cast(pl.String)).write_parquet(d / "textpass.parquet")
    (d / "cfg.toml").write_text("[task]\ndepth = 3\n[sft]\nn_problems = 60\n")
    everything = {"rhos": [0.0, 0.5, 1.0], "diversities": ["data"], "epochs": [0, 1, 2, 4], "ks": [1, 2, 4, 8, 16]}
    doc = _fit_doc(everything)
    (d / "fit.json").write_text(json.dumps(doc))
    (d / "fit.csv").write_text(json.dumps(doc))  # a fit file under a table's name
    (d / "fit05.json").write_text(json.dumps(_fit_doc(everything | {"rhos": [0.0, 0.5]})))
    (d / "fit_e1.json").write_text(json.dumps(_fit_doc(everything | {"epochs": [0, 1]})))
    for name, change in (("text", lambda x: x["parameters"]["lr"].update(value="abc")),
                         ("null", lambda x: x["parameters"]["lr"].update(value=None)),
                         ("unknown", lambda x: x.update(bogus=1)),
                         ("nolr", lambda x: x["parameters"].pop("lr"))):
        bad = json.loads(json.dumps(doc))
        change(bad)
        (d / f"fit_{name}.json").write_text(json.dumps(bad))
    for name, rhos in (("planned_05", "[0.5]"), ("planned_075", "[0.75]"), ("planned_dup", "[0.5, 0.5]")):
        (d / f"{name}.toml").write_text(PLANNED.format(rhos=rhos))
    (d / "onenode.json").write_text('{"kind": "leaf", "children": [], "label": 1}')
    (d / "cfg.parquet").write_text("rho = 0.5\n")  # a TOML file under a table's name
    (d / "t.csv").write_text('{"kind": "leaf", "children": [], "label": 1}')  # a tree under a table's name
    (d / "eval_results.csv").write_text("[eval]\nn_test = 10\n")
    (d / "tiny_bridge.toml").write_text("[sft]\nepochs = 1\nn_problems = 20\n[eval]\nn_test = 10\nn_samples = 4\n"
                                        "epochs = [1]\n")
    return d


FIT = ["fit", "--config", "cfg.toml"]
CASES = [
    # (id, arguments, fragments of the one error line)
    ("fit-overlap", [*FIT, "runs.csv", "--train-rho", "0.5", "--predict-rho", "0.5", "--no-fork-baseline"],
     ["0.5", "held out"]),
    ("fit-conflicting-rows", [*FIT, "dup.csv"], ["dup.csv", "conflicting"]),
    ("fit-same-table-twice", [*FIT, "runs.csv", "runs.csv"], ["runs.csv", "given twice"]),
    ("fit-table-and-its-copy", [*FIT, "runs.csv", "copy.csv"], ["copy.csv", "repeats rows of"]),
    ("fit-text-rho", [*FIT, "textrho.parquet"], ["column rho", "numbers"]),
    ("fit-text-pass", [*FIT, "textpass.parquet"], ["column pass_at_k_post", "numbers"]),
    ("fit-out-overwrites-input", [*FIT, "runs.parquet", "--out", "runs"], ["runs.parquet", "input"]),
    ("fit-save-params-overwrites-input", [*FIT, "runs.parquet", "--save-params", "runs.parquet"],
     ["runs.parquet", "input"]),
    ("fit-repeated-rho", [*FIT, "runs.csv", "--predict-rho", "0.5,0.5"], ["0.5"]),
    ("fit-empty", [*FIT, "empty.csv"], ["empty.csv", "empty"]),
    ("fit-header-only", [*FIT, "header.csv"], ["header.csv", "no rows"]),
    ("fit-zero-byte-parquet", [*FIT, "zero.parquet"], ["zero.parquet", "empty"]),
    ("fit-mislabelled", [*FIT, "mislabel.parquet"], ["mislabel.parquet", "as Parquet"]),
    ("fit-ragged", [*FIT, "ragged.csv"], ["ragged.csv", "as CSV"]),
    ("fit-null-depth", [*FIT, "nulldepth.csv"], ["column depth", "null"]),
    ("predict-rho-not-fitted", ["predict", "--params", "fit05.json", "--config", "planned_075.toml"],
     ["rho 0.75", "fitted"]),
    ("predict-epoch-not-fitted", ["predict", "--params", "fit_e1.json", "--config", "planned_05.toml"],
     ["epoch", "fitted"]),
    ("predict-repeated-rhos", ["predict", "--params", "fit.json", "--config", "planned_dup.toml"],
     ["rhos", "0.5"]),
    ("predict-text-parameter", ["predict", "--params", "fit_text.json", "--config", "planned_05.toml"],
     ["fit_text.json", "lr"]),
    ("predict-null-parameter", ["predict", "--params", "fit_null.json", "--config", "planned_05.toml"],
     ["fit_null.json", "lr"]),
    ("predict-unknown-key", ["predict", "--params", "fit_unknown.json", "--config", "planned_05.toml"],
     ["fit_unknown.json", "bogus"]),
    ("predict-missing-lr", ["predict", "--params", "fit_nolr.json", "--config", "planned_05.toml"],
     ["fit_nolr.json", "lr"]),
    ("predict-params-is-parquet", ["predict", "--params", "runs.parquet", "--config", "planned_05.toml"],
     ["runs.parquet", "not"]),
    ("predict-out-overwrites-input", ["predict", "--params", "fit.csv", "--config", "planned_05.toml",
                                      "--out", "fit"], ["fit.csv", "input"]),
    ("posttrain-repeated-kl", ["posttrain", "--kl", "0.1,0.1", *TINY], ["kl", "0.1"]),
    ("posttrain-k-without-1", ["posttrain", "--k", "4,8", *TINY], ["k", "1"]),
    ("posttrain-one-node-tree", ["posttrain", "--tree", "onenode.json", "--iterations", "2", "--no-progress"],
     ["onenode.json"]),
    ("coverage-huge-k", ["coverage", "--k", "99999999999999999999"], ["k", "99999999999999999999"]),
    ("tmc-huge-layers", ["tmc", "--layers", "1000000000", "--no-progress"], ["layers", "1000000000"]),
    ("tmc-huge-m0", ["tmc", "--m0", "1000000000", "--no-progress"], ["m0", "1000000000"]),
    ("tmc-huge-sampled-k", ["tmc", "--engine", "sampled", "--k", "1000000000", "--no-progress"],
     ["k", "1000000000"]),
    ("tmc-huge-instances", ["tmc", "--instances", "1000000000", "--no-progress"], ["instances", "1000000000"]),
    ("branching-retries-without-beta", ["branching", "--retries", "-5"], ["--retries", "--beta"]),
    # outputs that would replace an input, every command that reads a file
    *((f"{cmd}-out-overwrites-config", [cmd, "--config", "cfg.parquet", "--out", "cfg", "--no-progress"],
       ["cfg.parquet", "input"]) for cmd in ("simulate", "sweep", "posttrain", "mitigations", "branching", "tmc")),
    ("posttrain-out-overwrites-tree", ["posttrain", "--tree", "t.csv", "--out", "t"], ["t.csv", "input"]),
    ("tree-out-overwrites-json", ["tree", "--from-json", "t.csv", "--out", "t"], ["t.csv", "input"]),
    ("tree-export-overwrites-json", ["tree", "--from-json", "onenode.json", "--export", "onenode.json"],
     ["onenode.json", "input"]),
    ("coverage-out-overwrites-json", ["coverage", "--from-json", "t.csv", "--out", "t"], ["t.csv", "input"]),
    ("bridge-eval-out-dir-overwrites-config", ["bridge", "eval", "ckpt", "--config", "eval_results.csv",
                                               "--out-dir", "."], ["eval_results.csv", "input"]),
    # sizes: refused at once, naming the option or the size
    ("tree-huge-levels", ["tree", "--levels", "100000000000"], ["100000000000"]),
    ("coverage-huge-levels", ["coverage", "--levels", "100000000000"], ["100000000000"]),
    ("tree-huge-tmc-layers", ["tree", "--tmc", "--layers", "100000000000"], ["layers 100000000000"]),
    ("coverage-huge-problems", ["coverage", "--problems", "100000000000"], ["--problems", "GiB"]),
    ("bridge-sweep-grid", ["bridge", "sweep", "--config", "tiny_bridge.toml", "--out-dir", "sweep",
                           "--rho", ",".join(str(i / 100) for i in range(10)),
                           "--seeds", ",".join(str(s) for s in range(2000))], ["grid", "20000"]),
]


@pytest.mark.parametrize(("args", "named"), [pytest.param(a, n, id=i) for i, a, n in CASES])
def test_refused_in_one_line_and_nothing_written(data, args, named, monkeypatch):
    monkeypatch.chdir(data)
    before = files(data)
    result = CliRunner().invoke(main, args)
    assert_one_error_line(result, *named)
    assert files(data) == before


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _polars_no_space(*args, **kwargs):  # what polars raises on a full disk
    raise pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device (os error 28)")


@pytest.mark.parametrize("raiser", [_no_space, _polars_no_space], ids=["oserror", "polars"])
@pytest.mark.parametrize("args", [
    pytest.param([*FIT, "runs.csv", "--out", "res/x"], id="fit"),
    pytest.param(["predict", "--params", "fit.json", "--config", "planned_05.toml", "--out", "res/x"], id="predict"),
    pytest.param(["tmc", "--iterations", "2", "--instances", "5", "--methods", "reinforce", "--out", "res/x",
                  "--no-progress"], id="tmc"),
    pytest.param(["posttrain", *TINY, "--out", "res/x"], id="posttrain"),
    pytest.param(["branching", "--epochs", "1", "--out", "res/x"], id="branching"),
    pytest.param(["simulate", "--epochs", "1", "--train-problems", "20", "--test-problems", "20", "--feature-dim", "10",
                  "--out", "res/x", "--no-progress"], id="simulate"),
])
def test_a_full_disk_is_one_line_naming_the_file(data, args, raiser, monkeypatch):
    if args[0] == "fit":
        pytest.importorskip("scipy")
    monkeypatch.chdir(data)
    monkeypatch.setattr(pl.DataFrame, "write_parquet", raiser)
    before = files(data)
    result = CliRunner().invoke(main, args)
    assert_one_error_line(result, "cannot write res/x.parquet: No space left on device")
    assert files(data) == before and not (data / "res").exists()
