"""One tiny bridge run per test session, made through the CLI, shared by ``tests/llm_bridge`` and
``tests/cli/test_bridge_cmd.py`` (this module is on pytest's pythonpath, so both import the same
memo).

Before the run, the same command is tried with ``--device cuda`` on a machine that (as far as
torch can tell) has no CUDA: it must be refused and leave the output directory as it was, and
the corrected command then runs into that same directory.

The model (2 layers, width 32) learns little in 30 steps; the run checks the pipeline's plumbing
and bookkeeping, while tests/llm_bridge/test_train.py and test_evaluate.py check learning,
masking and sampling against references.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from unittest import mock

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


@dataclass(frozen=True)
class TinyRun:
    config: Path  # the TOML file
    out: Path  # the run's output directory
    refused_exit_code: int  # exit code of the --device cuda attempt (CUDA hidden)
    refused_output: str  # its output
    left_after_refusal: list[str]  # what the refused attempt left under out (nothing, or out is absent)


_MEMO: dict[str, TinyRun] = {}


def tiny_run(tmp_path_factory) -> TinyRun:
    """The session's tiny run (made on first use)."""
    if "run" not in _MEMO:
        import torch
        from click.testing import CliRunner

        from markovfork.cli import main

        config = tmp_path_factory.mktemp("cfg") / "tiny.toml"
        config.write_text(TINY_TOML)
        out = tmp_path_factory.mktemp("run") / "out"
        threads = torch.get_num_threads()
        args = ["bridge", "run", "--config", str(config), "--out-dir", str(out)]
        with mock.patch("torch.cuda.is_available", return_value=False):
            refused = CliRunner().invoke(main, [*args, "--device", "cuda"])
        left = sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []
        result = CliRunner().invoke(main, args)
        torch.set_num_threads(threads)
        assert result.exit_code == 0, result.output
        _MEMO["run"] = TinyRun(config, out, refused.exit_code, refused.output, left)
    return _MEMO["run"]
