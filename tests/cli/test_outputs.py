"""The CLI's output contract and small promises, in process:
output locations are checked before anything is computed, every OSError is one ``Error:`` line
naming the path (exit 2), a failed write leaves the previous outputs as they were, and a few
inputs that used to be taken silently or with a traceback are refused in one line."""

import errno

import polars as pl
import pytest
from click.testing import CliRunner

import markovfork.cli.coverage as coverage_cmd
import markovfork.cli.simulate_cmd as simulate_cmd
import markovfork.cli.tree_cmd as tree_cmd
from markovfork.cli import main
from cli_checks import assert_one_error_line, files

SMALL = ["--train-problems", "60", "--test-problems", "60", "--feature-dim", "50", "--epochs", "1", "--no-progress"]


def invoke(args):
    return CliRunner().invoke(main, args)


@pytest.fixture
def no_computation(monkeypatch):
    """Any computation fails the test: the checks must come first."""

    def computed(*args, **kwargs):
        raise AssertionError("computed before the output locations were checked")

    for module, name in [(simulate_cmd, "simulate"), (simulate_cmd, "sweep"), (tree_cmd, "build_tree"),
                         (coverage_cmd, "build_tree")]:
        monkeypatch.setattr(module, name, computed)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["simulate", "--out", "afile/sim"], ["afile/sim.parquet", "afile is not a directory"]),
        (["sweep", "--out", "afile/deep/sw"], ["afile/deep/sw.parquet", "afile is not a directory"]),
        (["tree", "--out", "t"], ["t.parquet", "it is a directory"]),
        (["tree", "--out", "ok/t", "--export", "afile/x.json"], ["afile/x.json", "afile is not a directory"]),
        (["coverage", "--out", "ok/c"], ["ok/c_pass_at_k.png", "it is a directory"]),
        (["simulate", "--out", ""], ["--out", "''"]),
        (["sweep", "--out", "newdir/"], ["--out", "'newdir/'"]),
        (["tree", "--export", "ok/"], ["--export", "'ok/'"]),
        (["simulate", "--out", "ok/sim", "--k", "1"], ["ok/sim_pass_at_k.png", "it is a directory"]),
    ],
)
def test_bad_output_location_refused_before_computing(tmp_path, monkeypatch, no_computation, args, named):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "t.parquet").mkdir()
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "c_pass_at_k.png").mkdir()
    (tmp_path / "ok" / "sim_pass_at_k.png").mkdir()
    before = files(tmp_path)
    assert_one_error_line(invoke(args), *named)
    assert files(tmp_path) == before and not (tmp_path / "newdir").exists()


def test_disk_full_while_writing_keeps_the_previous_outputs(tmp_path, monkeypatch):
    prefix = str(tmp_path / "runs" / "sim")
    first = invoke(["simulate", *SMALL, "--rho", "0.5", "--out", prefix])
    assert first.exit_code == 0, first.output
    before = files(tmp_path)
    assert len(before) == 5

    def full(self, path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"a,b\n1,")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pl.DataFrame, "write_csv", full)
    result = invoke(["simulate", *SMALL, "--rho", "1", "--out", prefix])
    assert_one_error_line(result, f"Error: cannot write {prefix}.csv: No space left on device")
    assert files(tmp_path) == before  # no temporary file, the old table and figures untouched


def test_unreadable_config_is_one_line(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    assert_one_error_line(invoke(["simulate", "--config", str(tmp_path / "dir.toml")]), "dir.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00rho")
    assert_one_error_line(invoke(["simulate", "--config", str(tmp_path / "bin.toml")]), "bin.toml", "UTF-8")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["tree", "--seed", "-1"], "'--seed'"),
        (["coverage", "--seed", "-2"], "'--seed'"),
        (["simulate", "--seed", "-3"], "'--seed'"),
        (["sweep", "--seed", "-4"], "'--seed'"),
        (["sweep", "--seeds", "-5,1"], "'--seeds'"),
        (["sweep", "--rho", "0:1:1e-9"], "1000000000 values, more than the maximum 10000"),
        (["sweep", "--seeds", "0:100000000:1"], "100000001 values"),
        (["sweep", "--rho", "0:inf:0.5"], "finite"),
        (["sweep", "--rho", "0,nan"], "finite"),
        (["sweep", "--k", "1:99999999:1"], "99999999 values"),
        (["sweep", "--rho", "0:1:0.01", "--seeds", "0:199:1"], "20200 runs, more than the maximum 10000"),
        (["simulate", "--decision-points", "10", "--rho", "0.5"], "mutually exclusive"),
    ],
)
def test_small_promises_one_line(no_computation, args, named):
    assert_one_error_line(invoke(args), named)


def test_one_high_edge_per_row():
    assert_one_error_line(invoke(["tree", "--tmc", "--high-edge", "1,1:1", "--high-edge", "1,1:0"]), "row 1,1 is given twice")
    assert invoke(["tree", "--tmc", "--high-edge", "1,1:1", "--high-edge", "2,1:0"]).exit_code == 0


def test_no_arguments_prints_the_help_not_an_error():
    result = invoke([])
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith("Usage: ") and "Commands:" in result.stdout


def test_decision_points_is_simulate_forks():
    by_alias = invoke(["simulate", *SMALL, "--decision-points", "12", "--json"])
    by_forks = invoke(["simulate", *SMALL, "--forks", "12", "--json"])
    assert by_alias.exit_code == 0 and by_alias.stdout == by_forks.stdout
    assert '"decision_points": 12' in by_alias.stdout and '"rho": 0.2' in by_alias.stdout
