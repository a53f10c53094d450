"""``markovfork simulate`` / ``sweep`` through click's CliRunner: output against the library,
written files, TOML config and overrides, one-line errors that name the bad value."""

import json

import polars as pl
import pytest
from click.testing import CliRunner

from markovfork.cli import main
from markovfork.cli.simulate_cmd import parse_values
from markovfork.reporting.results import RESULT_COLUMNS
from markovfork.sft.simulate import load_config, simulate

# small enough to run in well under a second per configuration
SMALL = ["--train-problems", "100", "--test-problems", "100", "--feature-dim", "100", "--epochs", "3", "--no-progress"]
SMALL_OVERRIDES = {"task.n_train": 100, "task.n_test": 100, "task.feature_dim": 100, "train.epochs": 3}


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_simulate_prints_the_library_summary():
    result = run(["simulate", *SMALL, "--forks", "60", "--seed", "2"])
    assert result.exit_code == 0, result.stderr
    expect = simulate(load_config(None, forks=60, seed=2, **SMALL_OVERRIDES)).summary
    assert result.stdout.splitlines() == expect.lines()
    assert expect.rho == 0.6 and expect.decision_points == 60


def test_simulate_out_writes_table_and_figures(tmp_path):
    prefix = tmp_path / "runs" / "sim"
    result = run(["simulate", *SMALL, "--rho", "0.8", "--out", str(prefix)])
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in prefix.parent.iterdir())
    assert names == ["sim.csv", "sim.parquet", "sim_fork_confidence.png", "sim_pass_at_k.png", "sim_shrinkage_vs_epochs.png"]
    table = pl.read_parquet(f"{prefix}.parquet")
    assert list(table.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert dict(table.schema) | RESULT_COLUMNS == dict(table.schema)  # schema dtypes kept
    csv = pl.read_csv(f"{prefix}.csv", schema=table.schema)
    assert csv.equals(table)
    assert table["epoch"].unique().sort().to_list() == [0, 1, 2, 3]
    assert (table["rho"] == 0.8).all() and (table["engine"] == "analytic").all()
    expect = simulate(load_config(None, rho=0.8, **SMALL_OVERRIDES)).table
    assert table.equals(expect)


def test_simulate_json_parses():
    result = run(["simulate", *SMALL, "--json", "--k", "1,8,4"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["summary"]["k_max"] == 8 and data["summary"]["epochs"] == 3
    assert data["config"]["task"]["n_train"] == 100 and data["config"]["train"]["ks"] == [1, 4, 8]
    assert data["files"] == []


def test_config_file_respected_and_overridden_by_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'rho = 0.5\ndiversity = "problem"\n[task]\nn_train = 100\nn_test = 100\nfeature_dim = 100\n'
        "[train]\nepochs = 2\nlr = 10.0\nks = [1, 2, 4]\n"
    )
    result = run(["simulate", "--config", str(path), "--json"])
    data = json.loads(result.stdout)
    assert data["summary"]["rho"] == 0.5 and data["summary"]["epochs"] == 2 and data["summary"]["k_max"] == 4
    assert data["config"]["diversity"] == "problem" and data["config"]["train"]["lr"] == 10.0
    result = run(["simulate", "--config", str(path), "--json", "--epochs", "3", "--lr", "5", "--diversity", "data"])
    data = json.loads(result.stdout)
    assert data["summary"]["epochs"] == 3 and data["summary"]["rho"] == 0.5
    assert data["config"]["train"]["lr"] == 5.0 and data["config"]["diversity"] == "data"
    path.write_text(path.read_text().replace("rho = 0.5", "forks = 20"))
    data = json.loads(run(["simulate", "--config", str(path), "--json", "--rho", "0.3"]).stdout)
    assert data["summary"]["rho"] == 0.3 and data["config"]["forks"] is None  # --rho replaces the file's forks


def test_samples_default_follows_largest_k():
    data = json.loads(run(["simulate", *SMALL, "--json", "--k", "1,128"]).stdout)
    assert data["config"]["train"]["n_samples"] == 128


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["simulate", "--rho", "1.5"], "1.5"),
        (["simulate", "--epochs", "-1"], "-1"),
        (["simulate", "--diversity", "mixed"], "mixed"),
        (["simulate", "--forks", "10", "--rho", "0.5"], "--forks 10"),
        (["simulate", "--forks", "900"], "900"),
        (["simulate", "--config", "no/such/file.toml"], "no/such/file.toml"),
        (["simulate", "--k", "0,4"], "0,4"),
        (["simulate", "--seed", "-3"], "-3"),
        (["sweep", "--rho", "0:1"], "0:1"),
        (["sweep", "--rho", "0,a"], "0,a"),
        (["sweep", "--rho", "0,1.2"], "1.2"),
        (["sweep", "--rho", "1:0:0.1"], "1:0:0.1"),
        (["sweep", "--epochs", "2,-4"], "-4"),
        (["sweep", "--diversity", "data,mixed"], "mixed"),
        (["sweep", "--seeds", "0,x"], "0,x"),
        (["sweep", "--workers", "0"], "got 0"),
        (["sweep", "--scheduler", "local:0"], "local:0"),
        (["sweep", "--scheduler", "tcp://host"], "tcp://host"),
        (["sweep", "--scheduler", "dask"], "dask"),
        (["posttrain", "--scheduler", "local:x"], "local:x"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, named):
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and named in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bad_toml_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("rho = \n")
    result = CliRunner().invoke(main, ["simulate", "--config", str(path)])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and str(path) in result.stderr


def test_parse_values_lists_and_ranges():
    assert parse_values("0:1:0.1", float, "--rho") == [round(0.1 * i, 12) for i in range(11)]
    assert parse_values("0,0.5,1", float, "--rho") == [0.0, 0.5, 1.0]
    assert parse_values("1:9:4", int, "--seeds") == [1, 5, 9]
    assert parse_values("7", int, "--epochs") == [7]


def test_sweep_tables_do_not_depend_on_workers(tmp_path):
    args = ["sweep", *SMALL, "--rho", "0.2,1", "--seeds", "0:1:1", "--diversity", "data,problem"]
    one = run([*args, "--workers", "1", "--out", str(tmp_path / "one")])
    two = run([*args, "--workers", "2", "--out", str(tmp_path / "two")])
    assert one.exit_code == 0 and two.exit_code == 0, (one.stderr, two.stderr)
    assert one.stdout.splitlines()[:-1] == two.stdout.splitlines()[:-1]  # all but the "wrote ..." line
    a, b = pl.read_parquet(tmp_path / "one.parquet"), pl.read_parquet(tmp_path / "two.parquet")
    assert a.height == 2 * 2 * 2 * 4 * 7 and a.equals(b)
    for name in ("pass_at_k", "shrinkage_vs_rho", "shrinkage_vs_epochs", "fork_confidence"):
        assert (tmp_path / f"one_{name}.png").stat().st_size > 0
    lines = one.stdout.splitlines()
    assert lines[0] == "8 runs, analytic engine, last epoch, k = 64" and len(lines) == 2 + 8 + 1


@pytest.mark.slow
def test_sweep_on_a_local_dask_cluster_writes_the_pool_table(tmp_path):
    """--scheduler local:2 (a LocalCluster, closed at the end) writes the table of --workers 2."""
    pytest.importorskip("distributed")
    args = ["sweep", *SMALL, "--rho", "0.2,1", "--seeds", "0,1"]
    pool = run([*args, "--workers", "2", "--out", str(tmp_path / "pool")])
    dask = run([*args, "--scheduler", "local:2", "--out", str(tmp_path / "dask")])
    assert pool.exit_code == 0 and dask.exit_code == 0, (pool.stderr, dask.stderr)
    assert pool.stdout.splitlines()[:-1] == dask.stdout.splitlines()[:-1] and dask.stderr == ""
    assert pl.read_parquet(tmp_path / "dask.parquet").equals(pl.read_parquet(tmp_path / "pool.parquet"))


def test_sweep_unreachable_scheduler_one_line_exit_2(tmp_path):
    pytest.importorskip("distributed")
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"  # closed: nobody listens there
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["sweep", *SMALL, "--rho", "0,1", "--scheduler", address,
                                       "--out", str(tmp_path / "x")])
    assert time.perf_counter() - start < 10
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot reach the Dask scheduler at " + address), result.stderr
    assert list(tmp_path.iterdir()) == []


def test_sweep_json_rows():
    result = run(["sweep", *SMALL, "--rho", "0,1", "--epochs", "1,3", "--workers", "1", "--json"])
    data = json.loads(result.stdout)
    assert data["grid"]["rho"] == [0.0, 1.0] and data["grid"]["epochs"] == [1, 3]
    assert [(r["rho"], r["epochs"]) for r in data["runs"]] == [(0.0, 1), (0.0, 3), (1.0, 1), (1.0, 3)]
    assert all(r["k"] == 64 for r in data["runs"])


def test_evaluation_options_reach_the_config():
    args = ["--temperature", "0.7", "--top-k", "2", "--top-p", "0.9", "--min-p", "0.05", "--spread", "2",
            "--spread-at", "fork", "--spread-min-p", "0"]
    result = run(["simulate", *SMALL, *args, "--json"])
    assert result.exit_code == 0, result.stderr
    train = json.loads(result.stdout)["config"]["train"]
    assert train["decoding"] == {"temperature": 0.7, "top_k": 2, "top_p": 0.9, "min_p": 0.05}
    assert train["spread"] == {"m": 2, "at": "fork", "min_p": 0.0, "depth": 0}
    result = run(["simulate", *SMALL, "--spread", "3", "--spread-at", "2", "--json"])
    assert json.loads(result.stdout)["config"]["train"]["spread"] == {"m": 3, "at": "depth", "min_p": 0.01, "depth": 2}
    expect = simulate(load_config(None, **SMALL_OVERRIDES, **{"spread.m": 3, "spread.at": "depth", "spread.depth": 2}))
    assert json.loads(result.stdout)["summary"]["passk_post"] == pytest.approx(expect.summary.passk_post, abs=0)


def test_sweep_temperature_is_a_grid_dimension(tmp_path):
    result = run(["sweep", *SMALL, "--rho", "1", "--temperature", "0.5,2", "--spread", "2", "--workers", "1",
                  "--out", str(tmp_path / "t"), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["grid"]["temperature"] == [0.5, 2.0] and data["config"]["train"]["spread"]["m"] == 2
    assert [r["temperature"] for r in data["runs"]] == [0.5, 2.0]
    table = pl.read_parquet(tmp_path / "t.parquet")
    assert sorted(table["temperature"].unique().to_list()) == [0.5, 2.0] and (table["spread"] == 2).all()
    cold, hot = data["runs"]
    assert cold["pass1_base"] > hot["pass1_base"]  # a colder base is greedier at the decipherable steps


@pytest.mark.parametrize(
    "args, named",
    [
        (["simulate", "--temperature", "0"], "temperature"),
        (["simulate", "--top-p", "1.5"], "top_p"),
        (["simulate", "--spread", "-1"], "spread m"),
        (["simulate", "--spread-at", "root"], "root"),
        (["simulate", "--spread-min-p", "2"], "spread min_p"),
        (["sweep", "--temperature", "1,0"], "temperatures must be > 0"),
    ],
)
def test_bad_evaluation_options_one_line(tmp_path, args, named):
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and named in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []
