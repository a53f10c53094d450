"""Batch sizes at scale: sequences per optimizer step from a target of tokens per step, and
micro-batches (gradient accumulation) sized from free device memory.

Memory model of one micro-batch of b sequences of T tokens under bf16 autocast, per token:

    bytes/token = 10 V  +  34 L H

``10 V``: the logits of a vocabulary of V tokens, bf16 out of the head (2 bytes), their fp32 copy
for the cross-entropy (4) and its gradient (4); only response positions onward are computed
(``logits_to_keep``), but T counts every position, so this overestimates. ``34 L H``: the
activations a transformer block of width H keeps for its backward pass, in bf16 with fused
(SDPA) attention, over L blocks (Korthikanti et al. 2022, eq. 2 without the attention-score
term). The weights, their gradients and AdamW's two moments (4 + 4 + 8 bytes per parameter, fp32)
are set aside first. The micro-batch is the largest b with b T (bytes/token) <= ``MEMORY_SHARE`` x
what is left. For Qwen2.5-0.5B (V = 151,936, L = 24, H = 896: 2.25 MB/token, 7.9 GB of training
state) at T = 256 tokens that is 147 sequences on an H200 (139 GiB free), 81 on 80 GiB, 18 on 24 GiB.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MEMORY_SHARE", "bytes_per_token", "micro_batch_for_memory", "auto_micro_batch",
           "tokens_per_sequence", "sequences_per_step", "resolve_batch_sizes", "eval_throughput", "throughput_line"]

MEMORY_SHARE = 0.6  # share of the free memory the activations may fill (the rest: allocator slack, fragmentation)


def bytes_per_token(vocab: int, layers: int, hidden: int) -> int:
    """Activation bytes per token of a training micro-batch: ``10 V + 34 L H`` (module docstring)."""
    return 10 * vocab + 34 * layers * hidden


def micro_batch_for_memory(free_bytes: int, n_params: int, vocab: int, layers: int, hidden: int,
                           seq_tokens: int) -> int:
    """Sequences per forward/backward pass that fit ``free_bytes`` (module docstring), at least 1:
    ``floor(MEMORY_SHARE (free - 16 n_params) / (seq_tokens bytes_per_token))``."""
    left = MEMORY_SHARE * (free_bytes - 16 * n_params)
    return max(int(left // (seq_tokens * bytes_per_token(vocab, layers, hidden))), 1)


def auto_micro_batch(model, seq_tokens: int, device) -> int:
    """:func:`micro_batch_for_memory` for ``model`` on a CUDA ``device``, from ``torch.cuda.mem_get_info``
    (the weights are already on the device: their bytes are counted as free again)."""
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    n_params = sum(p.numel() for p in model.parameters())
    on_device = sum(p.numel() * p.element_size() for p in model.parameters())
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer")
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd")
    return micro_batch_for_memory(free + on_device, n_params, model.get_input_embeddings().num_embeddings, layers,
                                  hidden, seq_tokens)


def tokens_per_sequence(cfg, tok, n: int = 64) -> float:
    """Mean tokens (prompt + response + end token) of a task sequence under ``tok``: ``n`` problems
    drawn with a fixed seed, each in the forward and the reverse format (the SFT mix's formats)."""
    from markovfork.llm_bridge.tasks import generate_problems, prompt_text, response_text
    from markovfork.llm_bridge.tokenizer import encode_example

    problems = generate_problems(cfg.task, n, seed=0)
    return float(np.mean([len(encode_example(tok, prompt_text(p), response_text(p, f)).input_ids)
                          for p in problems for f in ("forward", "reverse")]))


def sequences_per_step(phase, seq_tokens: float) -> int:
    """Sequences per optimizer step: ``batch_size``, or with ``tokens_per_step`` > 0,
    ``max(1, round(tokens_per_step / seq_tokens))``."""
    if phase.tokens_per_step == 0:
        return phase.batch_size
    return max(int(round(phase.tokens_per_step / seq_tokens)), 1)


def resolve_batch_sizes(cfg, tok):
    """``cfg`` with each phase's ``batch_size`` set from its ``tokens_per_step`` (when > 0) under
    ``tok`` (:func:`sequences_per_step`); unchanged otherwise (the word-level default is never
    touched)."""
    import dataclasses

    if cfg.base.tokens_per_step == 0 and cfg.sft.tokens_per_step == 0:
        return cfg
    seq = tokens_per_sequence(cfg, tok)
    base = dataclasses.replace(cfg.base, batch_size=sequences_per_step(cfg.base, seq))
    sft = dataclasses.replace(cfg.sft, batch_size=sequences_per_step(cfg.sft, seq))
    return dataclasses.replace(cfg, base=base, sft=sft)


def eval_throughput(eval_dir) -> dict:
    """Sampling throughput of the evaluations cached in ``eval_dir`` (a run's ``eval/*.json``) that
    recorded it: ``eval_samples_per_s`` = sum of P n / sum of seconds, ``eval_tokens_per_s`` =
    sum of sampled tokens / sum of seconds (nan when none did)."""
    import json
    from pathlib import Path

    samples = tokens = 0
    seconds = 0.0
    for path in sorted(Path(eval_dir).glob("*.json")):
        ev = json.loads(path.read_text())
        if math.isfinite(ev.get("sampling_seconds", float("nan"))):
            samples += len(ev["correct"]) * int(ev["n_samples"])
            tokens += int(ev.get("generated_tokens", 0))
            seconds += float(ev["sampling_seconds"])
    if seconds <= 0:
        return {"eval_samples_per_s": float("nan"), "eval_tokens_per_s": float("nan")}
    return {"eval_samples_per_s": samples / seconds, "eval_tokens_per_s": tokens / seconds}


def throughput_line(throughput: dict) -> str:
    """The throughput entries of a run's summary on one line: ``base_tokens_per_s 12,345, ...``."""
    return ", ".join(f"{k} {v:,.0f}" if math.isfinite(v) else f"{k} nan" for k, v in throughput.items())
