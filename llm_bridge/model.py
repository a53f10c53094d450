"""Models, devices and checkpoints: a transformers causal LM built from a config, or loaded
from a local directory (never from a hub)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from transformers import PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from markovfork.llm_bridge.config import ModelConfig

__all__ = ["resolve_device", "autocast", "keep_logits", "build_model", "extend_vocabulary", "load_checkpoint",
           "save_checkpoint"]


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU. Any other name must be usable here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {name!r}")
    return dev


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op context on CPU (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@functools.lru_cache(maxsize=None)
def _takes_logits_to_keep(cls: type) -> bool:
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def keep_logits(model: torch.nn.Module, n: int) -> dict:
    """Forward keyword arguments that compute the logits of the last ``n`` positions only
    (``logits_to_keep``), or none for a model class without that argument (all positions: the
    caller takes the last n either way)."""
    return {"logits_to_keep": n} if _takes_logits_to_keep(type(model)) else {}


def build_model(cfg: ModelConfig, tok: PreTrainedTokenizerFast, seed: int) -> torch.nn.Module:
    """A randomly initialised causal LM (initialisation seeded), or ``cfg.checkpoint`` loaded locally."""
    if cfg.checkpoint is not None:
        model = load_checkpoint(cfg.checkpoint)
        if model.get_input_embeddings().num_embeddings < len(tok):
            raise ValueError(
                f"checkpoint {cfg.checkpoint} has {model.get_input_embeddings().num_embeddings} token embeddings, "
                f"the task needs {len(tok)}"
            )
        return model
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                  bos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    if cfg.arch == "gpt2":
        config = GPT2Config(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, n_positions=cfg.max_len,
                            resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
                            activation_function="gelu_pytorch_tanh", **common)  # GPT-2's tanh GELU, fused
        return GPT2LMHeadModel(config)
    config = LlamaConfig(num_hidden_layers=cfg.n_layer, hidden_size=cfg.n_embd, num_attention_heads=cfg.n_head,
                         num_key_value_heads=cfg.n_head, intermediate_size=4 * cfg.n_embd,
                         max_position_embeddings=cfg.max_len, attention_dropout=cfg.dropout,
                         tie_word_embeddings=True, **common)
    return LlamaForCausalLM(config)


@torch.no_grad()
def extend_vocabulary(model: torch.nn.Module, size: int) -> torch.nn.Module:
    """Grow ``model``'s token embeddings (and an untied output layer) to ``size`` rows, in place;
    each new row is the mean of the old rows, so the result is deterministic. A model that
    already has ``size`` rows is returned unchanged; one with more is an error."""
    old = model.get_input_embeddings().num_embeddings
    if old > size:
        raise ValueError(f"the model has {old} token embeddings, more than the tokenizer's {size}")
    if old == size:
        return model
    with torch.random.fork_rng():  # resize initialises the new rows from torch's RNG; ours overwrite them
        model.resize_token_embeddings(size, mean_resizing=False)
    for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
        if layer is not None and layer.weight.shape[0] == size:
            layer.weight[old:] = layer.weight[:old].mean(dim=0)
            bias = getattr(layer, "bias", None)
            if bias is not None:
                bias[old:] = bias[:old].mean()
    return model


@contextlib.contextmanager
def _quiet_hf():
    """Hide transformers' own per-file progress bars (weights load/save) while we call it."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_checkpoint(path: str | os.PathLike) -> torch.nn.Module:
    """Load a causal LM from a local directory written by ``save_pretrained``, in fp32 whatever
    the stored dtype (transformers would keep a bf16 checkpoint in bf16, where AdamW updates of
    lr 1e-5 fall below the weights' resolution; on CUDA the forward runs under bf16 autocast)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model checkpoint (config.json) in {path}")
    with _quiet_hf():
        return AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)


def save_checkpoint(model: torch.nn.Module, tok: PreTrainedTokenizerFast, path: str | os.PathLike) -> Path:
    """``save_pretrained`` the model and its tokenizer into ``path`` (loads with ``from_pretrained``)."""
    path = Path(path)
    with _quiet_hf():
        model.save_pretrained(path)
        tok.save_pretrained(path)
    return path
