"""One vocabulary: every command's options (bridge subcommands included), walked through click
and ``--help``, mean one thing wherever they appear."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from markovfork.cli import main


def _commands(group=main, path=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = dict(_commands())
IDS = [" ".join(p) for p in COMMANDS]


def _option(command, name):
    return next((p for p in command.params if isinstance(p, click.Option) and name in p.opts and not p.hidden), None)


def _process(command, param, text):
    """The option's value for ``text`` (type conversion and callback), as click computes it."""
    return param.process_value(click.Context(command), text)


def _message(command, param, text) -> str:
    with pytest.raises(click.BadParameter) as err:
        _process(command, param, text)
    return err.value.format_message()


def test_the_walk_finds_every_command():
    assert {"simulate", "sweep", "posttrain", "mitigations", "tmc", "tree", "coverage", "branching", "fit",
            "predict", "real-fit", "bridge run", "bridge sweep", "bridge eval", "bridge counts"} == set(IDS)


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_every_command_has_json_and_no_progress(path):
    command = COMMANDS[path]
    for name in ("--json", "--no-progress"):
        option = _option(command, name)
        assert option is not None and option.is_flag, (path, name)


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_out_is_a_prefix_and_out_dir_a_folder(path):
    command = COMMANDS[path]
    help_text = CliRunner().invoke(main, [*path, "--help"]).output
    out, out_dir = _option(command, "--out"), _option(command, "--out-dir")
    assert out is not None or out_dir is not None, path
    if out is not None:
        assert out.metavar == "PREFIX" and "--out PREFIX" in help_text and "PREFIX." in out.help, path
    if out_dir is not None:
        assert out_dir.metavar == "DIR" and "--out-dir DIR" in help_text, path
        alias = next(p for p in command.params if "--out" in p.opts)
        assert alias.hidden  # the old spelling still parses
    assert out is None or out_dir is None, path


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_every_list_option_takes_ranges_and_refuses_repeats(path):
    command = COMMANDS[path]
    lists = [p for p in command.params if isinstance(p, click.Option) and p.metavar == "LIST"]
    for param in lists:
        choices = getattr(param.callback, "choices", None)
        if choices is None:  # integers, or shares in [0, 1]
            sample, value = ("1,2:8:2", "4") if getattr(param.callback, "kind", int) is int else ("0,0.25:1:0.25", "0.5")
            assert len(_process(command, param, sample)) == 5, (path, param.opts)
            repeated = f"{sample},{value}"
        else:
            repeated, value = f"{choices[0]},{choices[0]}", choices[0]
        message = _message(command, param, repeated)
        assert f"'{param.opts[0]}'" in message and f"{value} is given twice" in message, message


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_k_is_a_list_everywhere(path):
    k = _option(COMMANDS[path], "--k")
    if k is not None:
        assert k.metavar == "LIST" and _process(COMMANDS[path], k, "1,2:8:2") == [1, 2, 4, 6, 8]
        assert "every k must be >= 1" in _message(COMMANDS[path], k, "0,1")


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_seed_errors_have_one_format(path):
    seed = _option(COMMANDS[path], "--seed")
    if seed is not None:
        assert _process(COMMANDS[path], seed, "7") == 7
        for bad in ("-1", "x", str(2**64)):
            assert _message(COMMANDS[path], seed, bad) == (
                f"Invalid value for '--seed': expected an integer in [0, 2^64 - 1], got {bad!r}")


@pytest.mark.parametrize("path", COMMANDS, ids=IDS)
def test_problems_is_a_count_and_kl_a_list(path):
    command = COMMANDS[path]
    problems, kl = _option(command, "--problems"), _option(command, "--kl")
    if problems is not None:
        assert problems.type is click.INT, path
    if kl is not None:
        assert kl.metavar == "LIST" and _process(command, kl, "0,0.1") == [0.0, 0.1], path


@pytest.mark.parametrize("path", [p for p in COMMANDS if _option(COMMANDS[p], "--spread-at")], ids=" ".join)
def test_spread_at_takes_a_depth_everywhere(path):
    command = COMMANDS[path]
    at = _option(command, "--spread-at")
    assert _process(command, at, "2") == {"at": "depth", "depth": 2}
    assert _process(command, at, "fork") == {"at": "fork"}
    assert "expected first, fork or a depth >= 0" in _message(command, at, "middle")


def test_spread_at_reaches_mitigations_and_simulate():
    assert {("simulate",), ("sweep",), ("mitigations",)} <= {p for p in COMMANDS if _option(COMMANDS[p], "--spread-at")}


def test_old_spellings_still_work_with_a_note():
    """``bridge eval --out DIR`` and ``--problems FILE`` (now --out-dir, --problems-file) still parse,
    each with a one-line deprecation note on stderr before the command's own result."""
    result = CliRunner().invoke(main, ["bridge", "eval", "/nonexistent/ckpt", "--out", "d", "--problems", "p.jsonl"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 3, lines
    assert "--out is deprecated, use --out-dir" in lines[0] or "--out is deprecated, use --out-dir" in lines[1]
    assert any("--problems is deprecated, use --problems-file" in line for line in lines[:2])
    assert lines[2] == "Error: no model checkpoint (config.json) in /nonexistent/ckpt"


def test_tmc_kl_alias_is_kl_beta():
    small = ["tmc", "--methods", "kl", "--iterations", "20", "--instances", "10", "--json"]
    new = CliRunner().invoke(main, [*small, "--kl-beta", "0.3"])
    old = CliRunner().invoke(main, [*small, "--kl", "0.3"])
    assert new.exit_code == old.exit_code == 0
    assert new.stdout == old.stdout and '"kl": 0.3' in new.stdout
    assert old.stderr.strip() == "markovfork: --kl is deprecated, use --kl-beta (--kl is a list of KL coefficients in posttrain)"
    both = CliRunner().invoke(main, [*small, "--kl-beta", "0.3", "--kl", "0.2"])
    assert both.exit_code == 2 and "--kl and --kl-beta are the same option" in both.stderr


def test_help_lists_every_command_with_its_own_first_sentence():
    """``markovfork --help`` lists the commands from ``COMMAND_HELP`` (importing none of them): each
    entry must shorten exactly as the command's own docstring does, at every width."""
    from markovfork.cli.commands import COMMAND_HELP, COMMAND_MODULES

    assert set(COMMAND_HELP) == set(COMMAND_MODULES)
    ctx = click.Context(main)
    for name in COMMAND_MODULES:
        command = main.get_command(ctx, name)
        for limit in (30, 45, 60, 80, 200):
            listed = click.Command(name, help=COMMAND_HELP[name]).get_short_help_str(limit)
            assert listed == command.get_short_help_str(limit), (name, limit)
    listing = CliRunner().invoke(main, ["--help"]).output
    assert all(f"\n  {name} " in listing for name in COMMAND_MODULES), listing


def test_top_level_help_imports_no_command(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from markovfork.cli import main; "
            "CliRunner().invoke(main, ['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith(('numpy', 'numba', 'polars', 'markovfork.cli.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['markovfork.cli.commands']"


def test_json_output_is_strict_with_non_finite_numbers_as_null(capsys):
    """The one NaN-to-null (``plumbing.io.json_safe``): nan and inf at any depth, in dicts, lists and
    tuples, print as null; other values unchanged."""
    import json
    import math

    from markovfork.cli.options import echo_json

    echo_json({"a": math.nan, "b": [1.5, (math.inf, -math.inf)], "c": {"d": [{"e": math.nan}], "f": "nan"}, "g": 0})
    assert json.loads(capsys.readouterr().out) == {"a": None, "b": [1.5, [None, None]],
                                                   "c": {"d": [{"e": None}], "f": "nan"}, "g": 0}
