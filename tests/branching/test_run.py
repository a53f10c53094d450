"""run_branching: one row per (teacher, filtered share, epoch), values equal to the pieces they
come from, both engines; the config's checks."""

import numpy as np
import pytest

from markovfork.branching import (
    BranchingConfig, BranchingTask, Teacher, expected_counts, success_within_budget, train_sft,
)
from markovfork.branching.run import TABLE_COLUMNS, run_branching


def test_analytic_table_rows_and_values():
    task = BranchingTask(points=6, branch_tokens=6)
    config = BranchingConfig(task=task, teachers=(Teacher(0.0), Teacher(0.4)), filtered_shares=(0.0, 0.5),
                             epochs=8, budget=12)
    table = run_branching(config)
    assert table.columns == list(TABLE_COLUMNS)
    assert table.height == 2 * 2 * len(config.evaluation_epochs) and config.evaluation_epochs == (0, 1, 2, 4, 8)
    row = table.filter((table["beta"] == 0.4) & (table["filtered_share"] == 0.5) & (table["epoch"] == 8)).row(0, named=True)
    result = train_sft(task, expected_counts(task, Teacher(0.4), 0.5), epochs=8, lr=1.0)
    assert row["train_loss"] == result.loss[8] and row["a"] == result.params[8, 0]
    assert row["success"] == success_within_budget(task, result.at(8), 12)
    assert row["data_mean_branches"] == pytest.approx(expected_counts(task, Teacher(0.4), 0.5).wrong)
    assert table["success_rollouts"].null_count() == table.height and table["n_kept"].null_count() == table.height
    base = table.filter(table["epoch"] == 0)
    assert base["success"].n_unique() == 1  # every run starts from the same base policy


def test_sampled_table_has_rollouts_and_kept_counts():
    config = BranchingConfig(task=BranchingTask(points=5, branch_tokens=4), filtered_shares=(0.0, 0.25), engine="sampled",
                             epochs=3, n_train=400, n_rollouts=4000, budget=10, eval_epochs=(0, 3), seed=9)
    table = run_branching(config)
    assert table.height == 8
    assert sorted(set(table["n_kept"].to_list())) == [300, 400]
    assert np.all(np.abs(table["success_rollouts"].to_numpy() - table["success"].to_numpy()) < 0.05)
    assert np.all(table["rollout_mean_length"].to_numpy() <= 10)
    assert table.equals(run_branching(config))  # reproducible from the seed


@pytest.mark.parametrize("kwargs, message", [
    (dict(filtered_shares=(0.5, 1.0)), r"filtered_shares\[1\] must be a finite number in \[0, 1\)"),
    (dict(engine="exact"), "engine must be one of"),
    (dict(teachers=()), "teachers must be a non-empty list"),
    (dict(budget=0), "budget must be an integer in"),
    (dict(eval_epochs=(0, 99)), r"eval_epochs\[1\] must be an integer in \[0, 50\]"),
    (dict(epochs=2.5), "epochs must be an integer"),
    (dict(teachers=(0.4,)), r"teachers\[0\] must be a table \(Teacher\)"),
])
def test_config_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BranchingConfig(**kwargs)


def test_old_depth_spellings_still_read_as_branch_tokens(tmp_path):
    """``depth`` names the path-star task's nodes per arm; the wrong branch's length is
    ``branch_tokens``. The old option and key still work (the same meaning), with a note."""
    import json

    from click.testing import CliRunner

    from markovfork.cli import main

    args = ["branching", "--points", "2", "--epochs", "1", "--json"]
    old_toml, new_toml = tmp_path / "old.toml", tmp_path / "new.toml"
    old_toml.write_text("[task]\ndepth = 3\n")
    new_toml.write_text("[task]\nbranch_tokens = 3\n")
    new = CliRunner().invoke(main, [*args, "--branch-tokens", "3"])
    assert new.exit_code == 0 and not new.stderr, new.output
    assert json.loads(new.stdout)["config"]["task"]["branch_tokens"] == 3
    for extra in (["--depth", "3"], ["--config", str(old_toml)], ["--config", str(new_toml)]):
        result = CliRunner().invoke(main, [*args, *extra])
        assert result.exit_code == 0 and result.stdout == new.stdout, (extra, result.output)
        assert ("deprecated" in result.stderr) == (extra[1] != str(new_toml)), result.stderr
    both = tmp_path / "both.toml"
    both.write_text("[task]\ndepth = 3\nbranch_tokens = 3\n")
    result = CliRunner().invoke(main, [*args, "--config", str(both)])
    assert result.exit_code == 2 and "give one" in result.stderr
