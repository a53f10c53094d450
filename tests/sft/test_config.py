"""Simulation configs: typed TOML files through ``simulate --config`` (one line, exit 2, the
section, key and value named), the same checks on the constructors, and the resource limits."""

import dataclasses

import pytest
from click.testing import CliRunner

from markovfork.cli import main
from markovfork.model.policy import Decoding
from markovfork.sft.config import (
    MAX_EPOCHS,
    SimulationConfig,
    TrainSettings,
    config_dict,
    config_grid,
    load_config,
    memory_estimate,
    memory_limit,
)
from markovfork.tasks.path_star import PathStarTask

SMALL = ["--train-problems", "40", "--test-problems", "20", "--feature-dim", "10", "--epochs", "2", "--no-progress"]


def _one_line_error(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# (TOML text, words the one-line error must contain: the section, the key and the value)
BAD_FILES = [
    ("[train]\nks = 5\n", ["[train]", "ks", "5"]),
    ("task = 5\n", ["task", "table", "5"]),
    ("[train]\ndecoding = 3\n", ["[train]", "decoding", "3"]),
    ("[task]\nmode_prior = 5\n", ["[task]", "mode_prior", "5"]),
    ("[train]\nepochs = 2.5\n", ["[train]", "epochs", "2.5"]),
    ("[task]\nn_train = 100.5\n", ["[task]", "n_train", "100.5"]),
    ("forks = 10\nrho = 0.5\n", ["forks", "rho", "10", "0.5"]),
    ('rho = "0.5"\n', ["rho", "'0.5'"]),
    ("[train]\nks = [1.5, 2]\n", ["[train]", "ks[0]", "1.5"]),
    ("seed = true\n", ["seed", "True"]),
    ("[train]\nks = []\n", ["[train]", "ks", "[]"]),
    ("[train.decoding]\ntop_k = 1.5\n", ["[train.decoding]", "top_k", "1.5"]),
    ('[train.decoding]\ntemperature = "hot"\n', ["[train.decoding]", "temperature", "'hot'"]),
    ('[task]\nmode_prior = [0.5, "a", 0.5]\n', ["[task]", "mode_prior[1]", "'a'"]),
    ("[task]\nmode_prior = [0.5, 0.5]\n", ["[task]", "mode_prior", "[0.5, 0.5]"]),
    ("[train]\nlr = nan\n", ["[train]", "lr", "nan"]),
    ("[train]\nlrate = 3\n", ["unknown key 'lrate' in [train]"]),
    ("[tsak]\nn_train = 3\n", ["unknown key 'tsak' at the top level"]),
    ('engine = "mc"\n', ["engine", "'mc'"]),
    ("diversity = 1\n", ["diversity", "1"]),
    ("[train]\neval_epochs = 3\n", ["[train]", "eval_epochs", "3"]),
    ("[train]\neval_epochs = []\n", ["[train]", "eval_epochs", "non-empty"]),
    ("[train]\nks = [9223372036854775808]\nn_samples = 9223372036854775808\n", ["[train]", "ks[0]", "9223372036854775808"]),
    ("[task]\nfeature_scale = 1e300\n", ["[task]", "feature_scale", "1e+300"]),
    ("[train]\nlr = 1e300\n", ["[train]", "lr", "1e+300"]),
    ("[train]\nsteps_per_epoch = 100000000000\n", ["[train]", "steps_per_epoch", "100000000000"]),
]


@pytest.mark.parametrize(("text", "named"), BAD_FILES, ids=[t.replace("\n", " ").strip() for t, _ in BAD_FILES])
def test_wrong_typed_config_file_one_line_naming_section_key_value(tmp_path, text, named):
    path = tmp_path / "run.toml"
    path.write_text(text)
    line = _one_line_error(CliRunner().invoke(main, ["simulate", "--config", str(path), "--no-progress"]))
    for word in named:
        assert word in line, line
    for vague in ("not supported between", "ufunc", "dictionary update sequence"):
        assert vague not in line


def test_config_file_ints_where_floats_are_expected(tmp_path):
    """An integer is a number: lr = 20 reads as 20.0, and gives the same run as lr = 20.0."""
    path = tmp_path / "run.toml"
    path.write_text("rho = 1\n[train]\nlr = 20\nepochs = 2\n[task]\nfeature_scale = 1\nn_train = 40\nn_test = 20\n")
    config = load_config(path)
    assert type(config.train.lr) is float and type(config.rho) is float and config.train.lr == 20.0
    assert config == load_config(None, rho=1.0, **{"train.lr": 20.0, "train.epochs": 2, "task.n_train": 40, "task.n_test": 20})


def test_option_rho_or_forks_replaces_the_files_other(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("forks = 20\n[task]\nn_train = 40\n")
    assert load_config(path, rho=0.3).forks is None and load_config(path, rho=0.3).prevalence == 0.3
    path.write_text("rho = 0.2\n[task]\nn_train = 40\n")
    assert load_config(path, forks=10).rho is None and load_config(path, forks=10).prevalence == 0.25


@pytest.mark.parametrize(
    "make",
    [
        lambda: SimulationConfig(seed=True),
        lambda: SimulationConfig(rho="0.5"),
        lambda: SimulationConfig(forks=2.5),
        lambda: SimulationConfig(forks=10, rho=0.5),
        lambda: SimulationConfig(seed=-1),
        lambda: SimulationConfig(seed=2**63),
        lambda: SimulationConfig(diversity=3),
        lambda: SimulationConfig(task={"n_train": 10}),
        lambda: SimulationConfig(train=TrainSettings(ks=(1.5, 2), n_samples=64)),
        lambda: TrainSettings(epochs=2.0),
        lambda: TrainSettings(epochs=True),
        lambda: TrainSettings(lr="20"),
        lambda: TrainSettings(eval_epochs=(0, 1.0)),
        lambda: TrainSettings(decoding=None),
        lambda: PathStarTask(n_train=100.5),
        lambda: PathStarTask(mode_prior=5),
        lambda: PathStarTask(mode_prior=(0.5, 0.5)),
        lambda: PathStarTask(base_step_accuracy="0.8"),
        lambda: PathStarTask(feature_scale=1e300),
        lambda: TrainSettings(lr=1e5),
        lambda: TrainSettings(eval_epochs=()),
        lambda: TrainSettings(ks=(2**63,), n_samples=2**63),
        lambda: TrainSettings(steps_per_epoch=10**30),
    ],
)
def test_constructors_reject_wrong_types(make):
    with pytest.raises(ValueError, match="must be|not both"):
        make()


def test_constructors_store_the_checked_form():
    train = TrainSettings(lr=10, ks=[1, 4], eval_epochs=[0, 2], n_samples=4)
    assert type(train.lr) is float and train.ks == (1, 4) and train.eval_epochs == (0, 2)
    assert PathStarTask(mode_prior=[1, 0, 0]).mode_prior == (1.0, 0.0, 0.0)
    assert dataclasses.replace(SimulationConfig(), rho=1).rho == 1.0


def test_config_dict_rho_is_the_prevalence_in_effect():
    assert config_dict(SimulationConfig(forks=200))["rho"] == 0.4
    assert config_dict(SimulationConfig())["rho"] == 1.0
    assert config_dict(SimulationConfig(rho=0.3))["rho"] == 0.3


def test_grid_configs_are_checked():
    with pytest.raises(ValueError, match="epochs must be an integer in"):
        config_grid(SimulationConfig(), epochs=[MAX_EPOCHS + 1])
    with pytest.raises(ValueError, match="rho must be in"):
        config_grid(SimulationConfig(), rhos=[1.5])


# --- resource limits ---


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--feature-dim", "1000000000"], "bytes"),
        (["--train-problems", "100000000"], "bytes"),
        (["--test-problems", "100000", "--engine", "sampled", "--samples", "1000000"], "bytes"),
        (["--epochs", "99999999999999999999"], "99999999999999999999"),
        (["--epochs", str(MAX_EPOCHS + 1)], str(MAX_EPOCHS + 1)),
    ],
)
def test_runs_too_large_are_rejected_up_front(args, named):
    line = _one_line_error(CliRunner().invoke(main, ["simulate", *args, "--no-progress"]))
    assert named in line


def test_memory_message_gives_the_bytes_needed():
    need = memory_estimate(PathStarTask(feature_dim=10**9), TrainSettings())
    assert need > memory_limit()
    with pytest.raises(ValueError, match=f"about {need:,} bytes"):
        SimulationConfig(task=PathStarTask(feature_dim=10**9))


def test_memory_estimate_bounds_the_features_and_gram_matrices():
    """The estimate is at least the arrays that are certainly allocated: the features (n x d)
    and the training Gram matrices (n_train x n), 8 bytes each, and grows linearly in d."""
    task = PathStarTask(feature_dim=300, n_train=200, n_test=100)
    need = memory_estimate(task, TrainSettings())
    assert need >= 8 * 300 * 300 + 8 * 200 * 300
    bigger = memory_estimate(dataclasses.replace(task, feature_dim=600), TrainSettings())
    assert bigger - need == memory_estimate(dataclasses.replace(task, feature_dim=900), TrainSettings()) - bigger
    assert memory_estimate(task, TrainSettings(), "sampled") > need  # rollouts


def test_decoding_from_toml_is_a_decoding(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[train.decoding]\ntemperature = 2\ntop_k = 1\n")
    decoding = load_config(path).train.decoding
    assert decoding == Decoding(temperature=2.0, top_k=1) and type(decoding.temperature) is float


def _documents(keys):
    """TOML-like documents over the config's own key names (and one unknown), any value types."""
    from hypothesis import strategies as st

    leaf = st.one_of(st.integers(-3, 10**20), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3),
                     st.lists(st.one_of(st.integers(-2, 70), st.floats(-1, 2), st.text(max_size=2)), max_size=4))
    return st.recursive(leaf, lambda inner: st.dictionaries(st.sampled_from(keys), inner, max_size=4), max_leaves=12)


SIM_KEYS = sorted({"task", "train", "decoding", "rho", "forks", "diversity", "engine", "seed", "bogus",
                   *(f.name for f in dataclasses.fields(PathStarTask)), *(f.name for f in dataclasses.fields(TrainSettings)),
                   *(f.name for f in dataclasses.fields(Decoding))})


def test_any_document_gives_a_config_or_one_line_value_error():
    """Random documents over the real key names: a config or a one-line ValueError, nothing else."""
    from hypothesis import given, settings

    from markovfork.plumbing.config_reader import from_mapping

    @given(_documents(SIM_KEYS))
    @settings(max_examples=300, deadline=None)
    def check(doc):
        try:
            from_mapping(SimulationConfig, doc)
        except ValueError as exc:
            assert "\n" not in str(exc)

    check()
