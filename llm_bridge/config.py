"""Configuration of a bridge run: typed dataclasses, loadable from a TOML file.

The defaults are the CPU default run (``markovfork bridge run`` with no ``--config``). A TOML
file overrides any field by section, e.g.::

    seed = 1
    [task]
    depth = 4
    [sft]
    rhos = [0.0, 1.0]

Every value is type-checked against the field's annotation by :mod:`markovfork.plumbing.config_reader`
(the same reader as the simulator's), from a TOML file and from the constructors alike; unknown
sections or keys are an error (a typo must not silently fall back to a default), and every error
is one line naming the section, key and value. This module imports no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from markovfork.plumbing import checks
from markovfork.plumbing.config_reader import check_fields, from_mapping
from markovfork.plumbing.io import read_toml
from markovfork.llm_bridge.tasks import TaskSpec, prompt_text, response_text, sample_problem

__all__ = [
    "ModelConfig", "OptimizerConfig", "PhaseConfig", "SFTConfig", "SamplingConfig", "EvalConfig", "RunConfig",
    "positions_needed", "config_from_dict", "load_config",
]


@dataclass
class ModelConfig:
    """The causal LM: built from these fields, or loaded from a local checkpoint."""

    arch: str = "gpt2"  # "gpt2" or "llama" (a transformers config, random init)
    n_layer: int = 4  # transformer blocks
    n_embd: int = 128  # residual width
    n_head: int = 4  # attention heads
    max_len: int = 256  # positions the model supports (prompt + response)
    dropout: float = 0.0  # dropout everywhere (0 keeps training free of RNG draws)
    checkpoint: str | None = None  # local path of a pretrained checkpoint to start the base from

    def __post_init__(self) -> None:
        check_fields(self)
        if self.arch not in ("gpt2", "llama"):
            raise ValueError(f"arch must be 'gpt2' or 'llama', got {self.arch!r}")
        for name in ("n_layer", "n_embd", "n_head", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd must be divisible by n_head, got {self.n_embd} and {self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class OptimizerConfig:
    """The optimisation of a training phase: AdamW, linear warm-up, cosine decay."""

    epochs: int = 6  # epochs (a checkpoint is saved after each)
    batch_size: int = 64  # sequences per optimizer step
    lr: float = 1e-3  # peak learning rate
    warmup_steps: int = 100  # linear warm-up from 0 to lr
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio at the last step
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas
    grad_clip: float = 1.0  # max global gradient norm (0 = no clipping)
    micro_batch_size: int = 0  # sequences per forward/backward (accumulation); 0: CPU whole step, CUDA by memory
    tokens_per_step: int = 0  # > 0: sequences per optimizer step chosen to reach this many tokens (replaces batch_size)

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        checks.integer("micro_batch_size", self.micro_batch_size, 0)
        checks.integer("tokens_per_step", self.tokens_per_step, 0)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0, got {self.grad_clip}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        for i, beta in enumerate(self.betas):
            checks.real(f"betas[{i}]", beta, 0.0, 1.0, high_open=True)


@dataclass
class PhaseConfig(OptimizerConfig):
    """Base pretraining: ``steps_per_epoch`` optimizer steps per epoch on freshly drawn data."""

    steps_per_epoch: int = 250  # optimizer steps per epoch

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")


@dataclass
class SFTConfig(OptimizerConfig):
    """SFT on a fixed set of problems, once per (diversity, rho); an epoch is one pass over them."""

    epochs: int = 12
    lr: float = 5e-4
    warmup_steps: int = 20
    n_problems: int = 2000  # trajectories per SFT set (distinct problems at data-level diversity)
    rhos: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])  # fork-format shares to train
    diversities: list[str] = field(default_factory=lambda: ["data"])  # "data" and/or "problem"
    fork_format: str = "forward"  # format of the fork share: "forward" or "rationale"
    branch_rate: float = 0.0  # chance a forward trajectory first enters a wrong arm and backtracks (backtrack.py)
    filter_share: float = 0.0  # share of the trajectories dropped, the most-branching first
    keep_checkpoints: str = "all"  # "all", or "evaluated": the [eval] epochs' weights and the last epoch's state

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.keep_checkpoints not in ("all", "evaluated"):
            raise ValueError(f"keep_checkpoints must be 'all' or 'evaluated', got {self.keep_checkpoints!r}")
        checks.real("branch_rate", self.branch_rate, 0.0, 1.0)
        checks.real("filter_share", self.filter_share, 0.0, 1.0, high_open=True)
        if self.branch_rate > 0 and self.fork_format != "forward":
            raise ValueError(f"branch_rate > 0 needs fork_format 'forward' (backtracking enters a forward arm), "
                             f"got {self.fork_format!r}")
        if self.n_problems < 1:
            raise ValueError(f"n_problems must be >= 1, got {self.n_problems}")
        if not self.rhos or not self.diversities:
            raise ValueError(f"rhos and diversities must be non-empty lists, got {self.rhos} and {self.diversities}")
        for rho in self.rhos:
            if not 0.0 <= rho <= 1.0:
                raise ValueError(f"rho must be in [0, 1], got {rho}")
        for d in self.diversities:
            if d not in ("data", "problem"):
                raise ValueError(f"diversity must be 'data' or 'problem', got {d!r}")
        if self.fork_format not in ("forward", "rationale"):
            raise ValueError(f"fork_format must be 'forward' or 'rationale', got {self.fork_format!r}")


@dataclass
class SamplingConfig:
    """How completions are sampled at evaluation."""

    temperature: float = 1.0  # logits are divided by this
    top_k: int = 0  # keep the k most likely tokens (0 = off)
    top_p: float = 1.0  # nucleus: keep the smallest set of tokens with this much mass (1 = off)
    min_p: float = 0.0  # drop tokens below min_p * (top probability) (0 = off)
    spread_first: int = 0  # >0: the n samples of a problem are forced evenly over this many top candidates
    spread_position: int = 0  # response position (0 = first token) where spreading applies
    spread_min_p: float = 0.01  # spreading candidates need at least this * (top probability)
    max_new_tokens: int | None = None  # None: the longest correct response + 4

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 <= self.min_p < 1.0:
            raise ValueError(f"min_p must be in [0, 1), got {self.min_p}")
        if self.spread_first < 0:
            raise ValueError(f"spread_first must be >= 0, got {self.spread_first}")
        if self.spread_position < 0:
            raise ValueError(f"spread_position must be >= 0, got {self.spread_position}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass
class EvalConfig:
    """Evaluation: n samples per test problem, pass@k for k = 1, 2, 4, ..., n."""

    n_test: int = 200  # test problems (disjoint from every training problem)
    n_samples: int = 32  # samples per problem (the n of pass@k)
    epochs: list[int] = field(default_factory=lambda: [1, 3, 6, 12])  # SFT epochs to evaluate
    batch_sequences: int = 512  # sequences generated together (prompts x samples; 512 is fastest on a CPU)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.n_test < 1:
            raise ValueError(f"n_test must be >= 1, got {self.n_test}")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        if self.batch_sequences < self.n_samples:
            raise ValueError(f"batch_sequences must be >= n_samples, got {self.batch_sequences} < {self.n_samples}")
        if not self.epochs:
            raise ValueError("epochs (SFT epochs to evaluate) must be a non-empty list, got []")
        for e in self.epochs:
            if e < 1:
                raise ValueError(f"evaluation epochs must be >= 1, got {e}")

    @property
    def ks(self) -> list[int]:
        """Powers of two up to n, and n itself."""
        ks = [1]
        while ks[-1] * 2 <= self.n_samples:
            ks.append(ks[-1] * 2)
        if ks[-1] != self.n_samples:
            ks.append(self.n_samples)
        return ks


@dataclass
class RunConfig:
    """A whole bridge run: data, base pretraining, SFT per (diversity, rho), evaluation."""

    seed: int = 0  # seeds data, initialisation, data order and sampling
    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda", "cuda:1", ...
    threads: int | None = None  # torch CPU threads (None: torch's default)
    task: TaskSpec = field(default_factory=TaskSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    base: PhaseConfig = field(default_factory=PhaseConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        check_fields(self)
        checks.seed(self.seed)
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        bad = [e for e in self.eval.epochs if e > self.sft.epochs]
        if bad:
            raise ValueError(f"[eval] epochs must be <= [sft] epochs = {self.sft.epochs}, got {bad[0]}")
        if self.sft.branch_rate > 0 and self.eval.sampling.max_new_tokens is None:
            raise ValueError("[eval.sampling] max_new_tokens must be set when [sft] branch_rate > 0 (a backtracking "
                             "response is longer than the forward one; give every compared run the same budget)")
        need = positions_needed(self.task, self.eval.sampling, backtrack=self.sft.branch_rate > 0)
        if self.model.checkpoint is None and self.model.max_len < need:
            raise ValueError(
                f"[model] max_len must be >= {need} (the longest prompt plus response or generation of this "
                f"task), got {self.model.max_len}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def positions_needed(task: TaskSpec, sampling: SamplingConfig, backtrack: bool = False) -> int:
    """Positions a model must support for ``task``: a prompt of T tokens followed by either the
    longest correct response and [EOS] (training: T + R + 1) or ``max_new_tokens`` generated
    tokens, of which all but the last are fed back (evaluation: T + max_new - 1; by default
    max_new = R + 4, R over forward, reverse and rationale). ``backtrack``: training responses
    include the longest backtrack response. Every problem of a task has the same word counts."""
    from markovfork.llm_bridge.backtrack import longest_backtrack

    p = sample_problem(task, np.random.default_rng(0))
    prompt = len(prompt_text(p).split())
    longest = max(len(response_text(p, f).split()) for f in ("forward", "reverse", "rationale"))
    max_new = sampling.max_new_tokens or longest + 4
    if backtrack:
        longest = max(longest, longest_backtrack(task))
    return prompt + max(longest + 1, max_new - 1)


def config_from_dict(d: dict) -> RunConfig:
    """A RunConfig from nested dicts (a parsed TOML file or :meth:`RunConfig.to_dict`), every value
    type-checked (:func:`markovfork.plumbing.config_reader.from_mapping`)."""
    return from_mapping(RunConfig, d)


def load_config(path: str | Path | None) -> RunConfig:
    """Read a TOML config (``None``: the CPU default)."""
    if path is None:
        return RunConfig()
    return config_from_dict(read_toml(path))
