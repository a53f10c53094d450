"""``markovfork tree`` and ``markovfork coverage`` through click's CliRunner: output against the
library, written files, and one-line errors with exit code 2 that name the bad value."""

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from markovfork.cli import main
from markovfork.engines.coverage import base_coverage
from markovfork.model.tree_summary import node_table
from markovfork.tasks import fork_problems, fork_tree, tmc_chain, tmc_problems

PAPER = ["--tmc", "--high-edge", "1,1:1", "--high-edge", "2,1:0"]


def run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_tree_text_summary():
    result = run(["tree", "--depth", "5", "--branching", "3", "--forks", "4", "--placement", "bottom"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "tree (fork): 364 nodes, 121 internal (4 forks, 117 decipherable), 243 leaves"
    assert lines[1] == "depth 5 (shortest path 5), max branching 3"


def test_tree_tmc_json_has_paper_number():
    result = run(["tree", *PAPER, "--json"])
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["source"] == "tmc" and info["n_nodes"] == 31 and info["n_leaves"] == 16
    assert info["tasks"][0]["easy_path_expected_correctness"] == [0.727995]
    assert info["tasks"][0]["valid_paths"] == 4


def test_tree_export_then_from_json_and_node_table(tmp_path):
    exported = tmp_path / "t.json"
    args = ["tree", "--depth", "6", "--forks", "3", "--dead-ends", "--easy-prob", "0.8", "--seed", "4"]
    first = run([*args, "--json", "--export", str(exported), "--out", str(tmp_path / "nodes")])
    second = run(["tree", "--from-json", str(exported), "--json"])
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a.pop("source") == "fork" and b.pop("source") == "json" and a == b
    table = pl.read_parquet(tmp_path / "nodes.parquet")
    expect = node_table(fork_tree(6, 2, 3, dead_ends=True, easy_prob=0.8, seed=4))
    assert table.equals(expect)
    assert pl.read_csv(tmp_path / "nodes.csv").height == expect.height
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodes.csv", "nodes.parquet", "t.json"]


def test_coverage_exact_json_equals_library():
    result = run(["coverage", *PAPER, "--problems", "100", "--samples", "0", "--k", "1,5,30", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    tmc = tmc_chain(4, 2, 2, 1, high_edges={(1, 1): [1], (2, 1): [0]}, seed=3)
    report = base_coverage(tmc.tree, tmc_problems(tmc.tree, tmc, 0, 100, seed=3), [1, 5, 30])
    assert data["k"] == [1, 5, 30] and data["exact"] == report.exact.tolist()
    assert "sampled" not in data


def test_coverage_text_and_files(tmp_path):
    prefix = tmp_path / "sub" / "cov"
    result = run(["coverage", "--depth", "4", "--forks", "2", "--problems", "60", "--samples", "32",
                  "--k", "1,2,4,32", "--out", str(prefix)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fork tree, 31 nodes; 60 problems; 32 samples per problem")
    assert len(lines) == 3 + 4
    table = pl.read_parquet(f"{prefix}.parquet")
    tree = fork_tree(4, 2, 2)
    report = base_coverage(tree, fork_problems(tree, 60, seed=0), [1, 2, 4, 32], n_samples=32, seed=0)
    np.testing.assert_array_equal(table["pass_at_k_exact"].to_numpy(), report.exact)
    np.testing.assert_array_equal(table["pass_at_k_sampled"].to_numpy(), report.sampled.mean)
    assert (prefix.parent / "cov.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["cov.csv", "cov.parquet", "cov.png"]


@pytest.mark.parametrize(
    "args, named",
    [
        (["tree", "--depth", "3", "--forks", "100"], "forks=100"),
        (["tree", "--placement", "middle"], "'middle'"),
        (["tree", "--depth", "0"], "got 0"),
        (["tree", "--easy-prob", "1.5"], "got 1.5"),
        (["tree", "--tmc", "--c", "5"], "got 5"),
        (["tree", "--tmc", "--high-edge", "1,1"], "'1,1'"),
        (["tree", "--tmc", "--high-edge", "0,0:1"], "lacks the forced edge to state 0"),
        (["tree", "--high-edge", "1,1:1"], "--high-edge needs --tmc"),
        (["tree", "--from-json", "no-such-tree.json"], "no-such-tree.json"),
        (["tree", "--tmc", "--from-json", "x.json"], "mutually exclusive"),
        (["coverage", "--k", "1,x"], "'1,x'"),
        (["coverage", "--k", "0,2"], "'0,2'"),
        (["coverage", "--k", "1,128", "--samples", "64"], "k=128"),
        (["coverage", "--samples", "-3"], "got -3"),
        (["coverage", "--temperature", "0"], "got 0.0"),
        (["coverage", "--top-p", "1.5"], "got 1.5"),
        (["coverage", "--tmc", "--task", "3"], "got 3"),
        (["coverage", "--problems", "0"], "got 0"),
    ],
)
def test_bad_input_one_line_exit_2(args, named):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and named in lines[0], result.stderr
    assert result.stdout == ""


def test_bad_json_tree_names_the_node(tmp_path):
    spec = {"children": [{"prob": 0.5, "children": [{"prob": 0.3}, {"prob": 0.3}]}, {"prob": 0.5}]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    result = CliRunner().invoke(main, ["coverage", "--from-json", str(path), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: node 1: transition probabilities sum to 0.6, not 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]  # nothing written
