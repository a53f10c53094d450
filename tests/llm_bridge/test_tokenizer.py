"""The word-level tokenizer: one id per task word, a loss mask that covers exactly the
response, and a save/load round trip through the standard ``AutoTokenizer`` loader."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from markovfork.llm_bridge.tasks import COT_FORMATS, TaskSpec, prompt_text, response_text, sample_problem, vocabulary
from markovfork.llm_bridge.tokenizer import EOS, build_tokenizer, encode_example


@pytest.mark.parametrize("answer", ["path", "arith"])
def test_one_token_per_word_and_mask_covers_only_the_response(answer):
    spec = TaskSpec(answer=answer, depth=4)
    tok = build_tokenizer(vocabulary(spec))
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = sample_problem(spec, rng)
        for fmt in COT_FORMATS:
            prompt, response = prompt_text(p), response_text(p, fmt)
            enc = encode_example(tok, prompt, response)
            words = tok.convert_ids_to_tokens(enc.input_ids)
            assert words == prompt.split() + response.split() + [EOS]
            masked = [w for w, m in zip(words, enc.loss_mask) if m]
            unmasked = [w for w, m in zip(words, enc.loss_mask) if not m]
            assert masked == response.split() + [EOS]
            assert unmasked == prompt.split()
            assert enc.prompt_len == len(prompt.split())


def test_save_and_load_with_auto_tokenizer(tmp_path):
    spec = TaskSpec(answer="arith")
    tok = build_tokenizer(vocabulary(spec))
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    p = sample_problem(spec, np.random.default_rng(1))
    text = prompt_text(p) + " " + response_text(p, "reverse")
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert (loaded.pad_token_id, loaded.eos_token_id) == (0, 1)
    assert len(loaded) == len(vocabulary(spec)) + 3


def test_unknown_words_are_a_value_error():
    tok = build_tokenizer(vocabulary(TaskSpec()))
    with pytest.raises(ValueError, match="word '42' is not in the tokenizer's vocabulary"):
        encode_example(tok, "a b , | a b ?", "> a 42")
    with pytest.raises(ValueError, match="words must be distinct, got 'a' twice"):
        build_tokenizer(["a", "b", "a"])
