"""Hostile values for every numeric or list option of every command (issue 19): whatever the
value (negative, zero, huge, 1e999, nan, inf, empty, text, a repeated list value, 2^64), the
command ends with exit code 0 or 2, never a traceback, at most one stderr line on exit 2
(deprecation notes aside) and no file left behind when it fails. Each command gets small sizes
first, so a value that is valid runs in well under a second (click keeps an option's last value)."""

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from markovfork.cli import main

pytestmark = pytest.mark.slow

SMALL_SFT = ["--train-problems", "12", "--test-problems", "12", "--feature-dim", "4", "--epochs", "1", "--k", "1,2"]
BASE = {  # small, valid settings per command (the fuzzed option comes after them)
    "simulate": SMALL_SFT,
    "sweep": [*SMALL_SFT, "--workers", "1"],
    "posttrain": [*SMALL_SFT, "--iterations", "2", "--evaluations", "2"],
    "mitigations": ["--epochs", "1", "--k", "1,2", "--temperatures", "0.5", "--filter", "0"],
    "tmc": ["--iterations", "2", "--instances", "5", "--methods", "reinforce", "--k", "1,2"],
    "branching": ["--epochs", "1"],
    "coverage": ["--problems", "5", "--samples", "4", "--k", "1,2", "--depth", "3"],
    "tree": ["--depth", "3"],
    "fit": ["nope.csv"],
    "predict": ["--params", "nope.json", "--config", "nope.toml"],
    "bridge eval": ["ckpt"],
}
HOSTILE = ["-1", "0", "1", "100000000000", "1e999", "-1e999", "nan", "inf", "", "abc", "1,1", "0.5,0.5",
           "18446744073709551616", "-9223372036854775809", "1:1000000000:1", "0.1"]


def _numeric_options():
    for path in BASE:
        command = main
        for part in path.split():
            command = command.get_command(None, part)
        for p in command.params:
            if not isinstance(p, click.Option) or p.is_flag or p.hidden:
                continue
            numeric = isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType))
            if numeric or p.metavar in ("LIST", "N", "M", "R", "BETA"):
                yield path, p.opts[0]


OPTIONS = sorted(set(_numeric_options()))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=st.sampled_from(OPTIONS), value=st.sampled_from(HOSTILE))
def test_hostile_values_end_in_0_or_one_error_line(tmp_path_factory, monkeypatch, case, value):
    path, option = case
    base = BASE[path]
    d = tmp_path_factory.mktemp("fuzz")
    monkeypatch.chdir(d)
    result = CliRunner().invoke(main, [*path.split(), *base, option, value, "--no-progress"])
    assert result.exit_code in (0, 2), (path, option, value, result.output, repr(result.exception))
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = [x for x in result.stderr.strip().splitlines() if "is deprecated, use" not in x]
        assert len(lines) == 1 and lines[0].startswith("Error: "), (path, option, value, result.stderr)
        assert list(d.iterdir()) == [], (path, option, value)
