"""A pretrained local checkpoint with its own subword tokenizer, built here (no downloads): a tiny
random-weight Qwen2 / Llama and a byte-level BPE tokenizer trained on task text, saved with
``save_pretrained`` and loaded back with ``local_files_only``. Checked against references that do
not use the bridge's helpers: the loss mask against the decoded prompt and response, grading of
decoded text, the fork probabilities against plain forward passes over whole texts, and SFT,
sampling and pass@k on the BPE model."""

import math

import numpy as np
import pytest
import torch

import markovfork
from markovfork.llm_bridge.config import ModelConfig, RunConfig, SamplingConfig, SFTConfig
from markovfork.llm_bridge.evaluate import (
    decode_response,
    evaluate_model,
    fork_probabilities,
    fork_tokens,
    sample_responses,
)
from markovfork.llm_bridge.local_checkpoint import build_tiny_checkpoint, load_tokenizer, task_tokenizers
from markovfork.llm_bridge.model import load_checkpoint
from markovfork.llm_bridge.tasks import (
    COT_FORMATS,
    TaskSpec,
    generate_problems,
    grade,
    prompt_text,
    response_text,
    sft_mix,
)
from markovfork.llm_bridge.tokenizer import encode_example, is_word_level
from markovfork.llm_bridge.train import collate, response_loss, train_phase

CPU = torch.device("cpu")
ARITH = TaskSpec(arms=2, depth=2, answer="arith", max_constant=9, max_source_value=9)
PATH = TaskSpec(arms=3, depth=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    """Qwen2-style, BPE with merges, padding with its end token. It loads as transformers'
    ``Qwen2Tokenizer``, which splits as Qwen2.5 does: a node name with its space is one token, a
    number is a space token and one token per digit."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("qwen"), ARITH, arch="qwen2", vocab_size=300)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """Llama-style, byte-level BPE with no merge (every space is a token: node names are two
    tokens), no padding token."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("llama"), PATH, arch="llama", vocab_size=257)


def test_checkpoint_loads_locally_with_its_own_subword_tokenizer(qwen, llama):
    for path, pads_with_eos in ((qwen, True), (llama, False)):
        tok = load_tokenizer(path)
        assert not is_word_level(tok)
        assert tok.pad_token_id == tok.eos_token_id  # Llama's missing padding token is its end token
        model = load_checkpoint(path)
        assert model.get_input_embeddings().num_embeddings == len(tok) + 8
        cfg = RunConfig(task=ARITH, model=ModelConfig(checkpoint=str(path)))
        base_tok, sft_tok = task_tokenizers(cfg)
        assert base_tok is sft_tok and len(base_tok) == len(tok)
    # the text is not one token per word
    tok = load_tokenizer(qwen)
    p = generate_problems(ARITH, 1, seed=0)[0]
    text = prompt_text(p) + " " + response_text(p, "reverse")
    assert len(tok(text)["input_ids"]) != len(text.split())
    with pytest.raises(ValueError, match="no model checkpoint"):
        task_tokenizers(RunConfig(model=ModelConfig(checkpoint=str(qwen / "nope"))))


def test_a_bf16_checkpoint_is_trained_in_fp32(qwen, tmp_path):
    """Pretrained checkpoints ship in bf16; the bridge loads them in fp32 (master weights), with
    the same values."""
    stored = load_checkpoint(qwen).to(torch.bfloat16)
    stored.save_pretrained(tmp_path)
    loaded = load_checkpoint(tmp_path)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    for (name, a), b in zip(stored.named_parameters(), loaded.parameters()):
        assert torch.equal(a.float(), b), name


@pytest.mark.parametrize("which", ["qwen", "llama"])
def test_loss_mask_covers_exactly_the_response_tokens(which, request):
    path = request.getfixturevalue(which)
    tok = load_tokenizer(path)
    spec = ARITH if which == "qwen" else PATH
    for p in generate_problems(spec, 10, seed=1):
        for fmt in COT_FORMATS:
            prompt, response = prompt_text(p), response_text(p, fmt)
            enc = encode_example(tok, prompt, response)
            masked = [t for t, m in zip(enc.input_ids, enc.loss_mask) if m]
            unmasked = [t for t, m in zip(enc.input_ids, enc.loss_mask) if not m]
            assert unmasked == tok(prompt, add_special_tokens=False)["input_ids"] == enc.input_ids[:enc.prompt_len]
            assert masked[-1] == tok.eos_token_id and tok.eos_token_id not in masked[:-1]
            assert tok.decode(unmasked) == prompt
            assert tok.decode(masked[:-1]) == " " + response  # the response in running text, space included
            assert enc.input_ids[:-1] == tok(prompt + " " + response, add_special_tokens=False)["input_ids"]


def test_decoded_text_is_graded(qwen):
    tok = load_tokenizer(qwen)
    for p in generate_problems(ARITH, 10, seed=2):
        for fmt in COT_FORMATS:
            enc = encode_example(tok, prompt_text(p), response_text(p, fmt))
            sampled = enc.input_ids[enc.prompt_len:] + tok("9 9 9", add_special_tokens=False)["input_ids"]
            text = decode_response(tok, sampled)  # stops at the end token
            assert text == response_text(p, fmt) and grade(p, text)
        wrong = response_text(p, "forward").rsplit(" ", 1)[0] + f" {p.target_value + 1}"
        ids = tok(" " + wrong, add_special_tokens=False)["input_ids"]
        assert decode_response(tok, ids) == wrong and not grade(p, wrong)


def test_the_checkpoints_own_generation_settings_do_not_leak_into_sampling(qwen, tmp_path):
    """A checkpoint whose generation_config.json asks for a repetition penalty, min-p, top-k 1
    and no repeated tokens samples exactly as the same weights without it (same seed)."""
    from transformers import GenerationConfig

    tok, plain = load_tokenizer(qwen), load_checkpoint(qwen)
    odd = load_checkpoint(qwen)
    odd.generation_config = GenerationConfig(repetition_penalty=5.0, min_p=0.5, top_k=1, no_repeat_ngram_size=1,
                                             suppress_tokens=[tok.eos_token_id], do_sample=True)
    odd.save_pretrained(tmp_path)
    odd = load_checkpoint(tmp_path)
    assert odd.generation_config.repetition_penalty == 5.0
    prompts = [prompt_text(p) for p in generate_problems(ARITH, 3, seed=6)]
    kwargs = dict(max_new_tokens=12, seed=0, device=CPU)
    want = sample_responses(plain, tok, prompts, 5, SamplingConfig(), **kwargs)
    assert sample_responses(odd, tok, prompts, 5, SamplingConfig(), **kwargs) == want
    assert odd.generation_config.repetition_penalty == 5.0  # restored after sampling


def _sequence_logprob(model, tok, text_ids, start):
    """log P(text_ids[start:] | text_ids[:start]) by one plain forward pass, float64."""
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([text_ids])).logits[0].double(), dim=-1)
    return sum(logp[t - 1, text_ids[t]].item() for t in range(start, len(text_ids)))


@pytest.mark.parametrize("which", ["qwen", "llama"])
def test_fork_probabilities_match_plain_forward_passes_over_whole_texts(which, request):
    """q[a] against the probability of the text ``prompt + " " + (forward response up to arm a's
    first node)``, one plain forward pass per arm, renormalised over the arms: the shared tokens'
    factors cancel, so this is the arm's (first) token probability at the fork whether the name is
    one token (Qwen fixture) or a space token and a letter (Llama fixture, no merges)."""
    path = request.getfixturevalue(which)
    spec = ARITH if which == "qwen" else PATH
    tok, model = load_tokenizer(path), load_checkpoint(path).eval()
    problems = generate_problems(spec, 5, seed=3)
    q, mass = fork_probabilities(model, tok, problems, device=CPU)
    cut = 3 if spec.answer == "path" else 6  # "> s a1" or "> s = v0 , a1"
    for p, qi in zip(problems, q):
        prompt = prompt_text(p)
        n_prompt = len(tok(prompt)["input_ids"])
        logps = []
        for a in range(spec.arms):
            words = response_text(p.__class__(**{**p.__dict__, "target_arm": a}), "forward").split()[:cut]
            assert words[-1] == p.arms[a][0]
            logps.append(_sequence_logprob(model, tok, tok(prompt + " " + " ".join(words))["input_ids"], n_prompt))
        ref = np.exp(np.array(logps) - max(logps))
        np.testing.assert_allclose(qi, ref / ref.sum(), rtol=1e-5)
        prefix, arm_ids = fork_tokens(tok, p)
        names = [tok.decode([t]) for t in arm_ids]
        if which == "llama":  # multi-token names: the space is shared, the letter is the fork token
            assert tok.decode(prefix[-1:]) == " " and names == [a[0] for a in p.arms]
        else:
            assert names == [" " + a[0] for a in p.arms]
    assert np.all((mass > 0) & (mass <= 1))


def test_sft_sampling_and_pass_at_k_on_the_bpe_model(qwen, tmp_path):
    """A few SFT steps on the BPE model lower the response loss; sampling decodes text that is
    graded; pass@k equals markovfork's estimator on the counts, and the fork metrics are in range."""
    tok, model = load_tokenizer(qwen), load_checkpoint(qwen)
    pool = generate_problems(ARITH, 40, seed=4)
    examples = sft_mix(pool, 0.5, "data", seed=0)
    enc = [encode_example(tok, e.prompt, e.response) for e in examples]
    batch = collate(enc, tok.pad_token_id)
    with torch.no_grad():
        before = response_loss(model, batch)[0].item()
    cfg = SFTConfig(epochs=1, batch_size=10, lr=1e-2, warmup_steps=1, micro_batch_size=4)
    res = train_phase(model, tok, lambda e, s: enc[s * 10:(s + 1) * 10], 4, cfg, tmp_path, seed=0, device=CPU,
                      progress=False)
    with torch.no_grad():
        after = response_loss(model, batch)[0].item()
    assert after < before and res.tokens == sum(len(e.input_ids) for e in enc) and res.sequences == 40
    test = generate_problems(ARITH, 4, seed=5, exclude={p.key() for p in pool})
    ev = evaluate_model(model, tok, test, 6, SamplingConfig(top_p=0.95), seed=0, device=CPU, keep_responses=True)
    regraded = [sum(grade(p, r) for r in rs) for p, rs in zip(test, ev.responses)]
    assert ev.correct.tolist() == regraded
    assert all(len(rs) == 6 for rs in ev.responses) and ev.generated_tokens >= 4 * 6
    ks = [1, 2, 6]
    np.testing.assert_allclose(ev.pass_at_k(ks), markovfork.pass_at_k(6, ev.correct, ks).mean(axis=0))
    assert 0 <= ev.fork_accuracy <= 1 and math.isfinite(ev.fork_entropy) and ev.sampling_seconds > 0
