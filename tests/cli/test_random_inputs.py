"""Random files given to the two commands that read them (issue 9, "Must show"): random byte
strings and random JSON/TOML documents over the real key names, as ``tree --from-json`` and
``simulate --config``, end with exit code 0 or 2 and never a traceback."""

import dataclasses
import json
import math

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from markovfork.cli import main
from markovfork.model.policy import Decoding
from markovfork.sft.config import PathStarTask, TrainSettings

# small sizes on the command line override the file's, so a valid document runs in milliseconds
SMALL = ["--train-problems", "12", "--test-problems", "12", "--feature-dim", "4", "--epochs", "0", "--k", "1,2",
         "--engine", "analytic", "--no-progress"]

TREE_KEYS = ["children", "prob", "easy", "kind", "label", "valid_branches", "nodes", "childen", "id"]
SECTION_KEYS = {  # each table's own keys, and one unknown key
    "": ["rho", "forks", "diversity", "engine", "seed", "bogus"],
    "task": [f.name for f in dataclasses.fields(PathStarTask)] + ["bogus"],
    "train": [f.name for f in dataclasses.fields(TrainSettings)] + ["bogus"],
    "train.decoding": [f.name for f in dataclasses.fields(Decoding)] + ["bogus"],
    "eval": ["epochs", "ks"],
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=True), st.text(max_size=4),
    st.sampled_from(["fork", "decipherable", "leaf", "data", "problem", "sampled", "analytic"]),
)


def _run(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 2), (args, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return result


def _tree_documents():
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(TREE_KEYS) | st.text(max_size=3),
                                                                    inner, max_size=4),
        max_leaves=16,
    )


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 2**63 else f'"{value}"'
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf else repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string


toml_values = st.one_of(
    st.booleans(), st.integers(-3, 10**20), st.floats(allow_nan=True), st.text(max_size=4),
    st.lists(st.one_of(st.integers(-2, 70), st.floats(-1, 2), st.text(max_size=2)), max_size=4),
)


@st.composite
def toml_documents(draw) -> str:
    def table(section: str) -> list[str]:
        keys = st.sampled_from(SECTION_KEYS[section])
        return [f"{key} = {_toml_value(value)}" for key, value in draw(st.dictionaries(keys, toml_values, max_size=4)).items()]

    lines = table("")
    for section in draw(st.lists(st.sampled_from(sorted(SECTION_KEYS)[1:]), unique=True, max_size=3)):
        lines += [f"[{section}]", *table(section)]
    return "\n".join(lines) + "\n"


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(data=st.binary(max_size=120))
def test_random_bytes(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("bytes")
    (directory / "t.json").write_bytes(data)
    (directory / "c.toml").write_bytes(data)
    _run(["tree", "--from-json", str(directory / "t.json")])
    _run(["simulate", "--config", str(directory / "c.toml"), *SMALL])


@FAST
@given(doc=_tree_documents())
def test_random_json_trees(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("json") / "t.json"
    path.write_text(json.dumps(doc))
    _run(["tree", "--from-json", str(path)])


@settings(FAST, max_examples=150)
@given(text=toml_documents())
def test_random_toml_configs(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "c.toml"
    path.write_text(text)
    _run(["simulate", "--config", str(path), *SMALL])
