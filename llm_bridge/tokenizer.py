"""A word-level tokenizer for the task language, as a ``PreTrainedTokenizerFast``.

Every word of the task (a letter, a symbol, an integer) is one token; words are separated by
whitespace. The tokenizer is saved next to the model so a checkpoint directory loads with
``AutoTokenizer.from_pretrained`` / ``AutoModelForCausalLM.from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

__all__ = ["PAD", "EOS", "UNK", "build_tokenizer", "EncodedExample", "encode_example"]

PAD, EOS, UNK = "[PAD]", "[EOS]", "[UNK]"


def build_tokenizer(words: Sequence[str]) -> PreTrainedTokenizerFast:
    """A tokenizer with ids ``[PAD]=0, [EOS]=1, [UNK]=2`` followed by ``words`` in order."""
    if len(set(words)) != len(words):
        dup = next(w for w in words if list(words).count(w) > 1)
        raise ValueError(f"words must be distinct, got {dup!r} twice")
    for w in words:
        if not w or any(ch.isspace() for ch in w):
            raise ValueError(f"words must be non-empty and contain no whitespace, got {w!r}")
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *words])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="right"
    )


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one example, and which of them the loss is taken on."""

    input_ids: list[int]  # prompt ids + response ids + [EOS]
    loss_mask: list[bool]  # True exactly on the response ids and the final [EOS]
    prompt_len: int  # number of prompt tokens


def encode_example(tok: PreTrainedTokenizerFast, prompt: str, response: str) -> EncodedExample:
    """Encode ``prompt`` then ``response`` + EOS; the loss mask covers only the response part."""
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    r_ids = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    if tok.unk_token_id in p_ids or tok.unk_token_id in r_ids:
        bad = next(w for w in (prompt + " " + response).split() if w not in tok.get_vocab())
        raise ValueError(f"word {bad!r} is not in the tokenizer's vocabulary")
    return EncodedExample(p_ids + r_ids, [False] * len(p_ids) + [True] * len(r_ids), len(p_ids))
