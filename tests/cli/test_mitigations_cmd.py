"""``markovfork mitigations`` through click's CliRunner: ``--spread-at`` takes a depth as in
``simulate`` (first | fork | DEPTH), and the rows are the library's."""

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from markovfork.cli import main
from markovfork.experiments.mitigations import MitigationsConfig, run_mitigations
from markovfork.sft.config import load_config
from cli_checks import assert_one_error_line

SMALL = ["--epochs", "2", "--temperatures", "1", "--min-p", "0.1", "--spread", "2", "--filter", "0", "--k", "1,4",
         "--no-progress", "--json"]


def run(args):
    return CliRunner().invoke(main, ["mitigations", *args])


def _spread_rows(rows):
    return {r["mitigation"]: r["pass_at_k"] for r in rows if r["mitigation"].startswith("spread-first")}


@pytest.mark.parametrize("at", ["first", "fork", "1", "3"])
def test_spread_at_depth_reaches_the_library(at):
    result = run([*SMALL, "--spread-at", at])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    base = MitigationsConfig(simulation=load_config(None, rho=0.5, **{"train.epochs": 2, "train.ks": [1, 4]}))
    config = replace(base, temperatures=(1.0,), min_ps=(0.1,), spreads=(2,), spread_at=at,
                     branching=replace(base.branching, filtered_shares=(0.0,)))
    expected = run_mitigations(config, progress=False).to_dicts()
    assert rows == expected
    assert list(_spread_rows(rows)) == [f"spread-first 2 at {at}"]


def test_spread_at_depth_changes_the_spread_node():
    """Spreading at the start (depth 0) and five steps below it are different mitigations: their
    pass@k differ."""
    shallow = _spread_rows(json.loads(run([*SMALL, "--spread-at", "0"]).stdout)["rows"])
    deep = _spread_rows(json.loads(run([*SMALL, "--spread-at", "5"]).stdout)["rows"])
    assert list(shallow.values()) != list(deep.values())


@pytest.mark.parametrize("at", ["middle", "-1", "1.5"])
def test_bad_spread_at_is_one_line(at):
    assert_one_error_line(run([*SMALL, "--spread-at", at]), "'--spread-at'", repr(at))
