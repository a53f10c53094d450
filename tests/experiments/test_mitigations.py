"""The mitigations table: every row is the run it names (simulate, the branching experiment),
recomputed independently; and ``markovfork mitigations`` on the command line."""

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from cli_checks import assert_one_error_line

from markovfork.branching.run import BranchingConfig, run_branching
from markovfork.branching.task import BranchingTask, Teacher
from markovfork.cli import main
from markovfork.reporting.comparison_figures import mitigations_figure
from markovfork.experiments.mitigations import MitigationsConfig, run_mitigations
from markovfork.model.policy import Decoding
from markovfork.sft.config import TrainSettings
from markovfork.sft.simulate import SimulationConfig, simulate
from markovfork.tasks.path_star import PathStarTask
from markovfork.model.spread import Spread

TASK = PathStarTask(n_train=60, n_test=60, feature_dim=80)
SIM = SimulationConfig(task=TASK, train=TrainSettings(epochs=6, ks=(1, 4, 16), n_samples=16), rho=0.5)
BRANCHING = BranchingConfig(task=BranchingTask(points=4), teachers=(Teacher(0.0), Teacher(0.4)),
                            filtered_shares=(0.0, 0.5), epochs=5, budget=10)


@pytest.fixture(scope="module")
def table():
    return run_mitigations(MitigationsConfig(simulation=SIM, temperatures=(0.5, 2.0), branching=BRANCHING))


def _curve(table, name):
    return table.filter(pl.col("mitigation") == name).sort("k")["pass_at_k"].to_numpy()


def test_reference_and_decoding_rows_are_simulate_runs(table):
    records = simulate(SIM).records
    np.testing.assert_allclose(_curve(table, "base model"), records[0].evaluation.pass_at_k, atol=1e-12)
    np.testing.assert_allclose(_curve(table, "SFT rho=0.5"), records[-1].evaluation.pass_at_k, atol=1e-12)
    from dataclasses import replace

    hot = simulate(replace(SIM, train=replace(SIM.train, decoding=Decoding(temperature=2.0)))).records[-1]
    np.testing.assert_allclose(_curve(table, "temperature 2"), hot.evaluation.pass_at_k, atol=1e-12)
    spread = simulate(replace(SIM, train=replace(SIM.train, spread=Spread(2, "fork", 0.0)))).records[-1]
    np.testing.assert_allclose(_curve(table, "spread-first 2 at fork"), spread.evaluation.pass_at_k, atol=1e-12)


def test_data_rows_are_the_same_run_with_another_mix(table):
    from dataclasses import replace

    for diversity, name in (("problem", "problem-level data"), ("rationale", "rationale synthesis")):
        run = simulate(replace(SIM, diversity=diversity)).records[-1]
        np.testing.assert_allclose(_curve(table, name), run.evaluation.pass_at_k, atol=1e-12)


def test_filtering_rows_are_the_branching_runs_success(table):
    last = run_branching(BRANCHING).filter(pl.col("epoch") == 5)
    heavy = last.filter((pl.col("beta") == 0.4) & (pl.col("filtered_share") == 0.5))["success"][0]
    ks = np.array([1, 4, 16])
    np.testing.assert_allclose(_curve(table, "branch-heavy (beta 0.4), 50% most-branching dropped"),
                               1 - (1 - heavy) ** ks, atol=1e-12)
    names = set(table.filter(pl.col("group") == "filtering")["mitigation"])
    assert names == {"convergent data", "branch-heavy (beta 0.4)", "branch-heavy (beta 0.4), 50% most-branching dropped"}


def test_the_figure_draws_every_mitigation(table):
    axes = mitigations_figure(table).axes
    assert len(axes) == 3
    drawn = {line.get_label(): line.get_ydata() for ax in axes for line in ax.get_lines()}
    for name in set(table["mitigation"]):
        np.testing.assert_allclose(drawn[name], _curve(table, name))


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="temperatures"):
        MitigationsConfig(temperatures=(0.0,))
    with pytest.raises(ValueError, match="'data'"):
        MitigationsConfig(diversities=("data",))
    # found by an exhaustive run of tests/cli/test_fuzz_options.py's cases: --epochs 0 was an UnboundLocalError
    sim = MitigationsConfig().simulation
    with pytest.raises(ValueError, match=r"the mitigations need at least one SFT epoch \(epochs >= 1\), got 0"):
        MitigationsConfig(simulation=replace(sim, train=replace(sim.train, epochs=0)))


def test_command_prints_json_and_refuses_bad_input(tmp_path):
    args = ["mitigations", "--epochs", "3", "--k", "1,4", "--temperatures", "1.5", "--no-progress"]
    runner = CliRunner()
    config = tmp_path / "sft.toml"
    config.write_text("[task]\nn_train = 40\nn_test = 40\nfeature_dim = 50\n")
    result = runner.invoke(main, [*args, "--config", str(config), "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert {r["mitigation"] for r in rows} >= {"base model", "temperature 1.5", "rationale synthesis"}
    bad = runner.invoke(main, [*args, "--temperatures", "0", "--out", str(tmp_path / "x")])
    assert_one_error_line(bad, "temperatures[0]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft.toml"]
