"""A tiny bridge run shared by the run and CLI tests: made once per session through the CLI.

The model (2 layers, width 32) learns little in 30 steps; these tests check the pipeline's
plumbing and bookkeeping (schema, base rows, resume, reloading), while test_train/test_evaluate
check learning, masking and sampling against references.
"""

import pytest
import torch
from click.testing import CliRunner

from markovfork.cli import main

TINY_TOML = """
seed = 0
threads = 1
[task]
depth = 2
[model]
n_layer = 2
n_embd = 32
n_head = 2
max_len = 64
[base]
epochs = 2
steps_per_epoch = 15
batch_size = 32
lr = 3e-3
warmup_steps = 5
[sft]
epochs = 2
n_problems = 64
batch_size = 32
lr = 3e-3
warmup_steps = 2
rhos = [0.0, 0.5, 1.0]
diversities = ["data", "problem"]
[eval]
n_test = 16
n_samples = 8
epochs = [1, 2]
"""


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config):
    """Output directory of ``markovfork bridge run`` on the tiny config."""
    out = tmp_path_factory.mktemp("run") / "out"
    threads = torch.get_num_threads()
    result = CliRunner().invoke(main, ["bridge", "run", "--config", str(tiny_config), "--out", str(out)])
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return out
