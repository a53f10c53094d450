"""A word-level tokenizer for the task language, as a ``PreTrainedTokenizerFast``, and the
encoding of (prompt, response) pairs under it or under any other tokenizer.

Every word of the task (a letter, a symbol, an integer) is one token; words are separated by
whitespace. The tokenizer is saved next to the model so a checkpoint directory loads with
``AutoTokenizer.from_pretrained`` / ``AutoModelForCausalLM.from_pretrained``. A pretrained
checkpoint's own (subword) tokenizer is used as it is (``local_checkpoint.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

__all__ = ["PAD", "EOS", "UNK", "build_tokenizer", "is_word_level", "EncodedExample", "encode_example"]

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


def is_word_level(tok) -> bool:
    """Whether ``tok`` is a word-level tokenizer (one token per whitespace-separated word); a
    tokenizer without a ``tokenizers`` backend (sentencepiece-only) is not."""
    return isinstance(getattr(getattr(tok, "backend_tokenizer", None), "model", None), models.WordLevel)


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one example, and which of them the loss is taken on."""

    input_ids: list[int]  # prompt ids + response ids + [EOS]
    loss_mask: list[bool]  # True exactly on the response ids and the final [EOS]
    prompt_len: int  # number of prompt tokens


def encode_example(tok: PreTrainedTokenizerFast, prompt: str, response: str) -> EncodedExample:
    """Encode ``prompt`` then ``response`` + EOS; the loss mask covers only the response part.

    Word-level: the prompt's ids then the response's ids. Any other tokenizer: the ids of the text
    ``prompt + " " + response`` (so a subword tokenizer sees the space before the response, as in
    running text), split after the prompt's own ids; a tokenizer that merges the prompt's last
    token with the response (the split would not be at a token boundary) is an error."""
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    if is_word_level(tok):
        r_ids = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    else:
        full = tok(prompt + " " + response, add_special_tokens=False)["input_ids"]
        if full[:len(p_ids)] != p_ids:
            raise ValueError(f"the tokenizer merges the prompt's end with the response, at {prompt[-10:]!r}")
        r_ids = full[len(p_ids):] + [tok.eos_token_id]
    unk = tok.unk_token_id  # some loaders name the end token as the unknown one: that is no unknown word
    if unk is not None and unk not in (tok.eos_token_id, tok.pad_token_id) and (unk in p_ids or unk in r_ids):
        bad = next((w for w in (prompt + " " + response).split() if w not in tok.get_vocab()), "?")
        raise ValueError(f"word {bad!r} is not in the tokenizer's vocabulary")
    return EncodedExample(p_ids + r_ids, [False] * len(p_ids) + [True] * len(r_ids), len(p_ids))
