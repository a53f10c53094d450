"""Pretrained local checkpoints with their own tokenizers, and a tiny stand-in built locally.

``model.checkpoint = "/local/path"`` starts a run from any local causal LM *and its tokenizer*
(``AutoModelForCausalLM`` / ``AutoTokenizer`` with ``local_files_only=True``; nothing is ever
fetched from a hub). The task text is encoded with that tokenizer: a prompt and its response are
encoded together (``prompt + " " + response``) and split after the prompt's own tokens
(:func:`markovfork.llm_bridge.tokenizer.encode_example`), so training, sampling and the fork
metrics see the same token sequences.

:func:`build_tiny_checkpoint` writes a random-weight Llama- or Qwen2-style model and a byte-level
BPE tokenizer trained (``tokenizers`` trainer) on generated task text, both with
``save_pretrained``: a downloaded model in miniature, for tests and for a dry run of a GPU recipe.
"""

from __future__ import annotations

import os
from pathlib import Path

from markovfork.llm_bridge.tasks import COT_FORMATS, TaskSpec, generate_problems, prompt_text, response_text

__all__ = ["load_tokenizer", "task_tokenizers", "build_bpe_tokenizer", "build_tiny_checkpoint"]

BPE_EOS = "<|endoftext|>"


def load_tokenizer(path: str | os.PathLike):
    """The tokenizer saved in a local checkpoint directory (``local_files_only``). A tokenizer
    without a padding token (Llama's) pads with its end token: padded positions are masked out of
    attention and loss, and sampling stops at the first end token either way."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"[model] checkpoint: no model checkpoint (config.json) in {path}")
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.eos_token_id is None:
        raise ValueError(f"[model] checkpoint: the tokenizer in {path} has no end-of-sequence token")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def task_tokenizers(cfg):
    """(base tokenizer, SFT tokenizer) of a run. From scratch: the word-level tokenizer of the
    task's vocabulary, and for SFT with ``branch_rate > 0`` the same plus the backtrack token.
    With ``cfg.model.checkpoint``: the checkpoint's own tokenizer for both (it encodes any text)."""
    from markovfork.llm_bridge.backtrack import backtrack_vocabulary
    from markovfork.llm_bridge.tasks import vocabulary
    from markovfork.llm_bridge.tokenizer import build_tokenizer, is_word_level

    if cfg.model.checkpoint is not None:
        tok = load_tokenizer(cfg.model.checkpoint)
        if not is_word_level(tok):
            return tok, tok
    tok = build_tokenizer(vocabulary(cfg.task))
    sft_tok = build_tokenizer(backtrack_vocabulary(cfg.task)) if cfg.sft.branch_rate > 0 else tok
    return tok, sft_tok


def _task_corpus(task: TaskSpec, n: int, seed: int) -> list[str]:
    """Prompt + response texts of ``n`` problems in every CoT format (the tokenizer's training text)."""
    return [prompt_text(p) + " " + response_text(p, f)
            for p in generate_problems(task, n, seed=seed) for f in COT_FORMATS]


def build_bpe_tokenizer(task: TaskSpec, vocab_size: int = 300, *, n_problems: int = 200, seed: int = 0,
                        pad: bool = True):
    """A byte-level BPE tokenizer (GPT-2 / Qwen2 style: ``ByteLevel`` pre-tokenizer and decoder)
    trained on generated task text; ``vocab_size`` 257 leaves no merge, so every space is a token
    of its own and a node name ``" e"`` is two tokens. End token ``<|endoftext|>``; ``pad``: it pads
    too (Qwen2's convention), else there is no padding token (Llama's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BPE_EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(_task_corpus(task, n_problems, seed), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=BPE_EOS, pad_token=BPE_EOS if pad else None)


def build_tiny_checkpoint(path: str | os.PathLike, task: TaskSpec, *, arch: str = "qwen2", vocab_size: int = 300,
                          hidden: int = 32, layers: int = 2, heads: int = 2, max_positions: int = 512,
                          seed: int = 0) -> Path:
    """Write a random-weight ``arch`` ("qwen2" or "llama") causal LM and its BPE tokenizer
    (:func:`build_bpe_tokenizer`; Qwen2 pads with its end token, Llama has no padding token) to
    ``path`` with ``save_pretrained``. The embedding table has 8 rows more than the tokenizer, as
    real checkpoints often do (Qwen2.5's 151,936 rows for 151,665 tokens)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if arch not in ("qwen2", "llama"):
        raise ValueError(f"arch must be 'qwen2' or 'llama', got {arch!r}")
    tok = build_bpe_tokenizer(task, vocab_size, seed=seed, pad=arch == "qwen2")
    common = dict(vocab_size=len(tok) + 8, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  num_key_value_heads=max(heads // 2, 1), intermediate_size=2 * hidden,
                  max_position_embeddings=max_positions, tie_word_embeddings=True,
                  eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id,
                  pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(**common)) if arch == "qwen2" else LlamaForCausalLM(LlamaConfig(**common))
    from markovfork.llm_bridge.model import save_checkpoint

    return save_checkpoint(model, tok, path)


def main(argv: list[str] | None = None) -> None:
    """``python -m markovfork.llm_bridge.local_checkpoint DIR [--config TOML] [--arch qwen2|llama]
    [--vocab-size N]``: write a tiny checkpoint for the task of a bridge config (default: the CPU
    default's task), e.g. to dry-run a recipe on a new machine."""
    import argparse

    from markovfork.llm_bridge.config import load_config

    ap = argparse.ArgumentParser(prog="python -m markovfork.llm_bridge.local_checkpoint",
                                 description="Write a tiny random-weight checkpoint and BPE tokenizer for a task.")
    ap.add_argument("out", help="directory to write (save_pretrained)")
    ap.add_argument("--config", default=None, help="bridge TOML whose [task] the tokenizer is trained on")
    ap.add_argument("--arch", default="qwen2", choices=["qwen2", "llama"])
    ap.add_argument("--vocab-size", type=int, default=400)
    args = ap.parse_args(argv)
    path = build_tiny_checkpoint(args.out, load_config(args.config).task, arch=args.arch, vocab_size=args.vocab_size)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
