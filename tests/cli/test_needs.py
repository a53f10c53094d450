"""Options that only apply with another (issue 19): one mechanism (``markovfork.cli.options.needs``)
refuses each of them, given without what it needs, with exit code 2 and the one line
``Error: --OPTION applies only ...``, before anything runs. The table below lists every rule of
every command; ``test_every_rule_is_in_the_table`` keeps it complete."""

import pytest
from click.testing import CliRunner

from markovfork.cli import main

# (command path, the arguments that break the rule, the option named)
CASES = [
    ("posttrain", ["--clip", "0.3"], "--clip"),
    ("posttrain", ["--method", "grpo,reinforce", "--ppo-epochs", "2"], "--ppo-epochs"),
    ("posttrain", ["--passk-k", "3"], "--passk-k"),
    ("posttrain", ["--unlikeliness", "0.1"], "--unlikeliness"),
    ("posttrain", ["--reject-reference", "current"], "--reject-reference"),
    ("posttrain", ["--reject-easy", "0", "--reject-reference", "current"], "--reject-reference"),
    ("posttrain", ["--batch-instances", "2"], "--batch-instances"),
    ("posttrain", ["--engine", "analytic", "--samples", "64"], "--samples"),
    ("posttrain", ["--from", "base", "--epochs", "3"], "--epochs"),
    ("posttrain", ["--from", "base", "--sft-lr", "3"], "--sft-lr"),
    ("posttrain", ["--workers", "2", "--scheduler", "local:1"], "--workers"),
    ("simulate", ["--samples", "64"], "--samples"),
    ("simulate", ["--spread-at", "fork"], "--spread-at"),
    ("simulate", ["--spread", "0", "--spread-min-p", "0.1"], "--spread-min-p"),
    ("sweep", ["--samples", "64"], "--samples"),
    ("sweep", ["--spread-at", "fork"], "--spread-at"),
    ("sweep", ["--spread-min-p", "0.1"], "--spread-min-p"),
    ("sweep", ["--workers", "2", "--scheduler", "local:1"], "--workers"),
    ("tmc", ["--passk-k", "3"], "--passk-k"),
    ("tmc", ["--methods", "reinforce", "--reject-easy", "3"], "--reject-easy"),
    ("tmc", ["--methods", "reinforce", "--reject-reference", "current"], "--reject-reference"),
    ("tmc", ["--methods", "reinforce", "--kl-beta", "0.3"], "--kl-beta"),
    ("tmc", ["--methods", "reinforce", "--kl", "0.3"], "--kl"),
    ("branching", ["--retries", "2"], "--retries"),
    ("branching", ["--train-size", "20"], "--train-size"),
    ("fit", ["runs.csv", "--no-fork-baseline"], "--no-fork-baseline"),
    ("fit", ["runs.csv", "--with-no-fork-baseline"], "--with-no-fork-baseline"),
    ("fit", ["runs.csv", "--no-fork-observations"], "--no-fork-observations"),
    ("bridge sweep", ["--gpus-per-task", "1"], "--gpus-per-task"),
    ("bridge sweep", ["--workers", "2", "--scheduler", "local:1"], "--workers"),
    ("bridge eval", ["ckpt", "--problems-file", "p.jsonl", "--n-test", "3"], "--n-test"),
    ("bridge eval", ["ckpt", "--spread-position", "1"], "--spread-position"),
    ("coverage", ["--task", "1"], "--task"),
    ("tree", ["--from-json", "t.json", "--seed", "3"], "--seed"),
    *((cmd, ["--tmc", opt, value], opt) for cmd in ("tree", "coverage") for opt, value in (
        ("--levels", "3"), ("--branching", "3"), ("--forks", "2"), ("--placement", "random"),
        ("--valid-branches", "2"), ("--easy-prob", "0.6"), )),
    ("tree", ["--tmc", "--full"], "--dead-ends/--full"),
    ("coverage", ["--tmc", "--dead-ends"], "--dead-ends/--full"),
    *((cmd, [opt, value], opt) for cmd in ("tree", "coverage") for opt, value in (
        ("--layers", "5"), ("--m0", "3"), ("--m", "3"), ("--c", "2"), ("--high-weight", "2"),
        ("--low-weight", "0.2"), ("--high-edge", "1,1:1"))),
]


def _args(args):
    return [a for a in args if a is not None]


@pytest.mark.parametrize(("path", "args", "option"), CASES, ids=[f"{p}{' '.join(_args(a))}" for p, a, _ in CASES])
def test_option_without_what_it_needs_is_refused(tmp_path, monkeypatch, path, args, option):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*path.split(), *_args(args), "--no-progress"])
    lines = [x for x in result.stderr.strip().splitlines() if "is deprecated, use" not in x]  # --kl's note
    assert result.exit_code == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {option} applies only") and "drop" in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def _commands():
    import click

    for name in main.list_commands(None):
        command = main.get_command(None, name)
        if isinstance(command, click.Group):
            for sub in command.list_commands(None):
                yield f"{name} {sub}", command.get_command(None, sub)
        else:
            yield name, command


def test_every_rule_is_in_the_table():
    rules = {(path, rule.option) for path, command in _commands() for rule in getattr(command.callback, "needs", ())}
    assert rules == {(path, option) for path, _, option in CASES}


def test_rules_name_real_options():
    for path, command in _commands():
        for rule in getattr(command.callback, "needs", ()):
            rule.param(command)  # raises LookupError for an option the command lacks


@pytest.mark.parametrize("args", [
    ["posttrain", "--method", "ppo", "--clip", "0.3", "--iterations", "-1"],
    ["tmc", "--methods", "passk", "--passk-k", "3", "--iterations", "-1"],
    ["simulate", "--spread", "2", "--spread-min-p", "0.1", "--epochs", "-1"],
    ["branching", "--beta", "0.2", "--retries", "1", "--epochs", "-1"],
], ids=lambda a: a[0])
def test_given_with_what_it_needs_passes_the_rule(args):
    result = CliRunner().invoke(main, [*args, "--no-progress"])
    assert result.exit_code == 2 and "applies only" not in result.stderr, result.stderr  # stops at the bad size instead


def test_a_config_file_may_supply_what_the_rule_reads(tmp_path):
    (tmp_path / "ppo.toml").write_text('[rl]\nmethod = "ppo"\niterations = -1\n')
    result = CliRunner().invoke(main, ["posttrain", "--config", str(tmp_path / "ppo.toml"), "--clip", "0.3"])
    assert result.exit_code == 2 and "applies only" not in result.stderr, result.stderr
