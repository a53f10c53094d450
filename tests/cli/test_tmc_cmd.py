"""``markovfork tmc`` through click's CliRunner: the table and figures written, the JSON rows, the
text table, seeds, the TOML config and its overrides, and one-line errors that write nothing."""

import json
import math

import polars as pl
import pytest
from click.testing import CliRunner

import markovfork.experiments.tmc as tmc_experiment
from markovfork.cli import main
from markovfork.experiments.tmc import TMCConfig, run_tmc
from cli_checks import assert_one_error_line, files

SMALL = ["--iterations", "50", "--instances", "20", "--no-progress"]
SMALL_CONFIG = dict(iterations=50, instances=20)


def run(args):
    return CliRunner().invoke(main, ["tmc", *args])


def test_out_writes_the_table_and_both_figures(tmp_path):
    prefix = tmp_path / "runs" / "tmc"  # the missing directory is created, as for every command
    result = run([*SMALL, "--methods", "reinforce,kl-tilt", "--seed", "1", "--out", str(prefix)])
    assert result.exit_code == 0, result.stderr
    assert sorted(files(prefix.parent)) == ["tmc.csv", "tmc.parquet", "tmc_pass_at_k.png", "tmc_paths.png"]
    table = pl.read_parquet(f"{prefix}.parquet")
    assert table["method"].to_list() == ["chain", "chain", "base", "base", "reinforce", "reinforce", "kl-tilt", "kl-tilt"]
    assert table["task"].to_list() == [1, 2] * 4 and (table["k"] == 30).all()
    expect = run_tmc(TMCConfig(methods=("reinforce", "kl-tilt"), seed=1, **SMALL_CONFIG)).table
    assert table.equals(expect)
    assert pl.read_csv(f"{prefix}.csv", schema=table.schema).equals(table)
    for png in ("tmc_pass_at_k.png", "tmc_paths.png"):
        assert (prefix.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.stdout.splitlines()[-1] == "wrote " + ", ".join(
        str(prefix.parent / n) for n in ("tmc.parquet", "tmc.csv", "tmc_pass_at_k.png", "tmc_paths.png"))


def test_text_table_shows_each_method_and_the_reinforce_change():
    result = run([*SMALL, "--methods", "reinforce,kl", "--k", "8"])
    assert result.exit_code == 0, result.stderr
    table = run_tmc(TMCConfig(methods=("reinforce", "kl"), k=8, **SMALL_CONFIG)).table
    lines = result.stdout.splitlines()
    assert "pass@8" in lines[2] and "invalid" in lines[2]
    rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in lines[3:7]}
    assert list(rows) == ["chain", "base", "reinforce", "kl"]
    for method, cells in rows.items():
        one = table.filter((pl.col("method") == method) & (pl.col("task") == 1)).row(0, named=True)
        two = table.filter((pl.col("method") == method) & (pl.col("task") == 2)).row(0, named=True)
        expect = [one["pass_at_1"], one["pass_at_k"], two["pass_at_1"], two["pass_at_k"], two["easy_valid"],
                  two["hard_valid"], two["invalid"]]
        assert cells == pytest.approx(expect, abs=6e-4)  # printed with 3-4 decimals
    base, rl = (table.filter((pl.col("method") == m) & (pl.col("task") == 2)).row(0, named=True) for m in ("base", "reinforce"))
    assert lines[7].startswith("task 2, base -> reinforce: pass@8")
    assert f"{base['pass_at_k']:.4f} -> {rl['pass_at_k']:.4f}" in lines[7]
    assert len(lines) == 8
    no_reinforce = run([*SMALL, "--methods", "kl"]).stdout.splitlines()
    assert len(no_reinforce) == 6 and not any("base -> reinforce" in line for line in no_reinforce)


def test_json_holds_the_config_and_the_rows():
    result = run([*SMALL, "--methods", "grpo", "--engine", "sampled", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    config = TMCConfig(methods=("grpo",), engine="sampled", **SMALL_CONFIG)
    assert data["config"] == tmc_experiment.config_dict(config) and data["files"] == []
    table = run_tmc(config).table
    assert len(data["rows"]) == table.height == 6
    for got, want in zip(data["rows"], table.iter_rows(named=True)):
        assert got.keys() == want.keys()
        for key, value in want.items():  # NaN (no training reward: chain, base) is null
            assert got[key] is None if isinstance(value, float) and math.isnan(value) else got[key] == value


def test_same_seed_same_table_and_another_seed_another():
    args = [*SMALL, "--methods", "reinforce,ppo", "--engine", "sampled", "--json"]
    one, two, other = run([*args, "--seed", "5"]), run([*args, "--seed", "5"]), run([*args, "--seed", "6"])
    assert one.exit_code == two.exit_code == other.exit_code == 0
    assert json.loads(one.stdout)["rows"] == json.loads(two.stdout)["rows"]
    assert json.loads(one.stdout)["rows"] != json.loads(other.stdout)["rows"]


def test_config_file_is_read_and_flags_override_it(tmp_path):
    path = tmp_path / "tmc.toml"
    path.write_text('iterations = 50\ninstances = 20\nmethods = ["reinforce", "raft"]\nengine = "sampled"\n'
                    "seed = 3\nlr = 0.2\ngroup_size = 4\nk = 10\n")
    data = json.loads(run(["--config", str(path), "--json", "--no-progress"]).stdout)
    expect = TMCConfig(iterations=50, instances=20, methods=("reinforce", "raft"), engine="sampled", seed=3, lr=0.2,
                       group_size=4, k=10)
    assert data["config"] == tmc_experiment.config_dict(expect)
    assert [r["method"] for r in data["rows"][::2]] == ["chain", "base", "reinforce", "raft"]
    data = json.loads(run(["--config", str(path), "--json", "--no-progress", "--methods", "kl", "--seed", "4",
                           "--engine", "analytic", "--k", "5"]).stdout)
    assert data["config"]["methods"] == ["kl"] and data["config"]["seed"] == 4 and data["config"]["k"] == 5
    assert data["config"]["engine"] == "analytic" and data["config"]["lr"] == 0.2  # the file's, not overridden
    assert {r["k"] for r in data["rows"]} == {5}


@pytest.fixture
def no_computation(monkeypatch):
    """Any run of the experiment fails the test: every check must come first."""

    def computed(*args, **kwargs):
        raise AssertionError("the experiment ran before the input was checked")

    monkeypatch.setattr(tmc_experiment, "run_tmc", computed)


@pytest.mark.parametrize(
    ("args", "toml", "named"),
    [
        (["--methods", "reinforce,nope"], None, ["'--methods'", "unknown method 'nope'"]),
        (["--methods", "kl,kl"], None, ["'--methods'", "repeat"]),
        (["--k", "0"], None, ["k must be an integer >= 1, got 0"]),
        (["--layers", "2"], None, ["layers must be an integer >= 3, got 2"]),
        (["--kl", "0"], None, ["kl", "got 0"]),
        (["--lr", "nan"], None, ["lr", "nan"]),
        (["--engine", "exact"], None, ["'--engine'", "'exact'"]),
        (["--reject-reference", "old"], None, ["'--reject-reference'", "'old'"]),
        (["--seed", "-1"], None, ["'--seed'"]),
        (["--engine", "sampled", "--group-size", "1", "--methods", "ppo"], None, ["ppo needs group_size >= 2"]),
        ([], "kk = 3\n", ["unknown key 'kk'"]),
        ([], "k = 2.5\n", ["k must be an integer, got 2.5"]),
        ([], 'methods = "reinforce"\n', ["methods must be a list of strings"]),
        ([], 'methods = ["reinforce", "sft"]\n', ["unknown method 'sft'"]),
        ([], "layers = [\n", ["is not valid TOML"]),
        (["--out", "afile/run"], None, ["afile/run.parquet", "afile is not a directory"]),
        (["--out", "newdir/"], None, ["--out", "'newdir/'"]),
        (["--out", "ok/run"], None, ["ok/run_paths.png", "it is a directory"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, no_computation, args, toml, named):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "ok" / "run_paths.png").mkdir(parents=True)
    config = []
    if toml is not None:
        (tmp_path / "bad.toml").write_text(toml)
        config = ["--config", "bad.toml"]
    before = files(tmp_path)
    assert_one_error_line(run([*SMALL, *config, *args, "--out", "ok/out"] if "--out" not in args else
                              [*SMALL, *config, *args]), *named)
    assert files(tmp_path) == before and not (tmp_path / "newdir").exists()


def test_missing_config_file_is_one_line(tmp_path, no_computation):
    assert_one_error_line(run(["--config", str(tmp_path / "none.toml")]), "none.toml", "not found")


def test_progress_bar_advances_once_per_method(monkeypatch):
    import markovfork.cli.tmc_cmd as tmc_cmd

    made = []

    class Bar:
        def __init__(self, total, enabled):
            self.total, self.enabled, self.labels, self.steps, self.closed = total, enabled, [], 0, False
            made.append(self)

        def set_postfix_str(self, label, refresh=True):
            self.labels.append(label)

        def update(self, n):
            self.steps += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(tmc_cmd, "_progress", Bar)
    assert run(["--iterations", "10", "--instances", "5", "--methods", "kl,reinforce,kl-tilt"]).exit_code == 0
    assert run(["--iterations", "10", "--instances", "5", "--methods", "kl", "--no-progress"]).exit_code == 0
    (bar, quiet) = made
    assert (bar.total, bar.enabled, bar.steps, bar.labels, bar.closed) == (3, True, 3, ["kl", "reinforce", "kl-tilt"], True)
    assert (quiet.total, quiet.enabled, quiet.steps) == (1, False, 1)


def test_progress_bar_only_on_a_terminal():
    result = run(["--iterations", "10", "--instances", "5", "--methods", "reinforce"])  # stderr is not a TTY here
    assert result.exit_code == 0 and result.stderr == ""


def test_listed_in_the_help():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "tmc" in result.stdout
    result = run(["--help"])
    for flag in ("--layers", "--m0", "--passk-k", "--reject-reference", "--kl BETA", "--reject-easy R", "--methods LIST"):
        assert flag in result.stdout
