"""The GPU-scale training path, checked on the CPU: gradient accumulation gives the gradient and
the update of one big batch, the loop reads no value back per step, micro-batch sizes from the
memory model, batch sizes from tokens per step, the new keys' one-line errors, and the sampling
throughput kept with each evaluation."""

import json
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from markovfork.cli import main
from markovfork.llm_bridge.config import ModelConfig, PhaseConfig, RunConfig, config_from_dict
from markovfork.llm_bridge.model import build_model
from markovfork.llm_bridge.scale import (
    MEMORY_SHARE,
    bytes_per_token,
    eval_throughput,
    micro_batch_for_memory,
    resolve_batch_sizes,
)
from markovfork.llm_bridge.tasks import TaskSpec, generate_problems, prompt_text, response_text, sft_mix, vocabulary
from markovfork.llm_bridge.tokenizer import build_tokenizer, encode_example
from markovfork.llm_bridge.train import accumulate_step, collate, micro_batches, train_phase
from cli_checks import assert_one_error_line

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n=24):
    # two depths in one vocabulary: sequences of different lengths, so micro-batches pad differently
    tok = build_tokenizer(vocabulary(TaskSpec()))
    enc = []
    for depth in (1, 3):
        mix = sft_mix(generate_problems(TaskSpec(depth=depth), n // 2, seed=depth), 0.5, "data", seed=0)
        enc += [encode_example(tok, e.prompt, e.response) for e in mix]
    return tok, [enc[i] for i in np.random.default_rng(0).permutation(len(enc))]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("micro", [1, 5, 7])
def test_accumulated_gradient_equals_the_big_batch_gradient(arch, micro):
    """Gradient of the step's mean response loss, reference: autograd of one padded batch's mean
    over all its response tokens, computed by hand from the full logits."""
    tok, enc = _data()
    model = build_model(ModelConfig(arch=arch, n_layer=2, n_embd=32, n_head=2, max_len=64), tok, seed=0)
    big = collate(enc, tok.pad_token_id)
    logits = model(input_ids=big.input_ids, attention_mask=big.attention_mask).logits[:, :-1]
    logp = torch.log_softmax(logits.double(), dim=-1).gather(2, big.input_ids[:, 1:, None])[..., 0]
    mask = big.loss_mask[:, 1:]
    ref = -(logp * mask).sum() / mask.sum()
    ref.backward()
    want = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    chunks = [collate(c, tok.pad_token_id) for c in micro_batches(enc, micro)]
    assert len(chunks) == -(-len(enc) // micro)
    loss = accumulate_step(model, chunks, CPU)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, want[k].float(), rtol=1e-4, atol=1e-6)


def test_a_model_without_logits_to_keep_gives_the_same_loss():
    """The loss keeps only the logits from the shortest prompt on; a model class whose forward
    lacks ``logits_to_keep`` computes all of them and must give the same loss."""
    from transformers import GPT2LMHeadModel

    from markovfork.llm_bridge.train import response_loss

    class AllLogits(GPT2LMHeadModel):
        def forward(self, input_ids=None, attention_mask=None):
            return super().forward(input_ids=input_ids, attention_mask=attention_mask)

    tok, enc = _data()
    model = build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, max_len=64), tok, seed=0).eval()
    other = AllLogits(model.config).eval()
    other.load_state_dict(model.state_dict())
    batch = collate(enc, tok.pad_token_id)
    assert batch.first_target > 1
    with torch.no_grad():
        assert response_loss(other, batch)[0].item() == pytest.approx(response_loss(model, batch)[0].item(), rel=1e-6)


def test_training_with_micro_batches_gives_the_same_weights(tmp_path):
    tok, enc = _data()
    results = []
    for micro in (0, 5):
        model = build_model(ModelConfig(n_layer=2, n_embd=32, n_head=2, max_len=64), tok, seed=0)
        cfg = PhaseConfig(epochs=1, steps_per_epoch=3, batch_size=8, lr=3e-3, warmup_steps=1, micro_batch_size=micro)
        res = train_phase(model, tok, lambda e, s: enc[s * 8:(s + 1) * 8], 3, cfg, tmp_path / str(micro), seed=0,
                          device=CPU, progress=False)
        results.append((model.state_dict(), res))
    (a, ra), (b, rb) = results
    for k in a:  # Adam divides by sqrt(v): rounding in a near-zero gradient moves a weight by up to ~1e-6
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5)  # (an update is lr = 3e-3)
    assert ra.epoch_losses == pytest.approx(rb.epoch_losses, rel=1e-5)
    assert (ra.micro_batch_size, rb.micro_batch_size) == (0, 5) and ra.tokens == rb.tokens


def test_the_training_loop_reads_no_value_back_per_step(tmp_path, monkeypatch):
    """``.item()`` called from the training module: only at logging points (every LOG_EVERY steps
    and the epoch's end) and once for the epoch loss, not per step."""
    from markovfork.llm_bridge import train

    tok, enc = _data()
    calls = []
    item = torch.Tensor.item

    def counting_item(self):
        if sys._getframe(1).f_code.co_filename == train.__file__:
            calls.append(1)
        return item(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    model = build_model(ModelConfig(n_layer=1, n_embd=16, n_head=2, max_len=64), tok, seed=0)
    steps = 2 * train.LOG_EVERY + 3
    cfg = PhaseConfig(epochs=1, steps_per_epoch=steps, batch_size=4, lr=1e-3, warmup_steps=1)
    train_phase(model, tok, lambda e, s: enc[(4 * s) % 20:(4 * s) % 20 + 4], steps, cfg, tmp_path, seed=0,
                device=CPU, progress=False)
    assert len(calls) == 2 + 1 + 1  # bar at steps 25 and 50 and at the end, the epoch loss


def test_pruned_checkpoints_keep_the_asked_epochs_and_still_resume(tmp_path):
    """keep_epochs {1}: epoch 2 is deleted once 3 is saved, epoch 1 keeps its weights but not its
    trainer state; a rerun resumes from epoch 3 and a longer run continues from it."""
    from markovfork.llm_bridge.train import STATE_FILE, epoch_dir, latest_epoch

    tok, enc = _data()
    fn = lambda e, s: enc[s * 8:(s + 1) * 8]  # noqa: E731
    model = build_model(ModelConfig(n_layer=1, n_embd=16, n_head=2, max_len=64), tok, seed=0)
    cfg = PhaseConfig(epochs=3, steps_per_epoch=2, batch_size=8, warmup_steps=1)
    train_phase(model, tok, fn, 2, cfg, tmp_path, seed=0, device=CPU, progress=False, keep_epochs={1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-001", "epoch-003"]
    assert not (epoch_dir(tmp_path, 1) / STATE_FILE).exists() and (epoch_dir(tmp_path, 3) / STATE_FILE).is_file()
    assert (epoch_dir(tmp_path, 1) / "config.json").is_file() and latest_epoch(tmp_path) == 3
    again = train_phase(model, tok, fn, 2, cfg, tmp_path, seed=0, device=CPU, progress=False, keep_epochs={1})
    assert again.resumed_from == 3 and again.tokens == 0


def test_micro_batch_is_the_largest_that_fits_the_memory_model():
    rng = np.random.default_rng(0)
    for _ in range(200):
        vocab, layers, hidden = int(rng.integers(10, 200_000)), int(rng.integers(1, 40)), int(rng.integers(8, 4096))
        n_params, seq = int(rng.integers(10**5, 10**9)), int(rng.integers(8, 2048))
        free = int(rng.integers(16 * n_params, 16 * n_params + 10**12))
        b = micro_batch_for_memory(free, n_params, vocab, layers, hidden, seq)
        per_seq = seq * (10 * vocab + 34 * layers * hidden)
        budget = MEMORY_SHARE * (free - 16 * n_params)
        assert b >= 1 and (b == 1 or b * per_seq <= budget) and (b + 1) * per_seq > budget
    assert bytes_per_token(151_936, 24, 896) == 2_250_496  # Qwen2.5-0.5B, the docstring's number
    assert micro_batch_for_memory(10**6, 10**9, 100, 2, 8, 16) == 1  # nothing left: still one sequence


def test_tokens_per_step_sets_the_sequences_per_step():
    """batch_size = round(tokens_per_step / mean tokens of a task sequence); with the word-level
    tokenizer a sequence's tokens are its words plus the end token, counted here from the text."""
    cfg = config_from_dict({"base": {"tokens_per_step": 3000}, "sft": {"tokens_per_step": 500, "batch_size": 7}})
    tok = build_tokenizer(vocabulary(cfg.task))
    problems = generate_problems(cfg.task, 64, seed=0)
    words = [len(prompt_text(p).split()) + len(response_text(p, f).split()) + 1
             for p in problems for f in ("forward", "reverse")]
    resolved = resolve_batch_sizes(cfg, tok)
    assert resolved.base.batch_size == round(3000 / np.mean(words))
    assert resolved.sft.batch_size == round(500 / np.mean(words))
    assert resolve_batch_sizes(RunConfig(), tok) == RunConfig()


BAD = [
    ("[sft]\nmicro_batch_size = -1\n", ["micro_batch_size", "-1"]),
    ("[base]\nmicro_batch_size = 1.5\n", ["micro_batch_size", "1.5"]),
    ('[sft]\ntokens_per_step = "4096"\n', ["tokens_per_step", "'4096'"]),
    ("[base]\ntokens_per_step = -5\n", ["tokens_per_step", "-5"]),
    ("[model]\ncheckpoint = 3\n", ["[model]", "checkpoint", "3"]),
    ('[sft]\nkeep_checkpoints = "last"\n', ["keep_checkpoints", "'last'"]),
]


@pytest.mark.parametrize(("text", "named"), BAD, ids=[t.replace("\n", " ").strip() for t, _ in BAD])
def test_new_keys_give_one_line_errors_and_write_nothing(tmp_path, text, named):
    path = tmp_path / "run.toml"
    path.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["bridge", "run", "--config", str(path), "--out-dir", str(out)])
    assert_one_error_line(result, *named)
    assert not out.exists()


def test_eval_throughput_from_the_cached_evaluations(tmp_path):
    def ev(p, n, seconds, tokens):
        return {"correct": [0] * p, "n_samples": n, "sampling_seconds": seconds, "generated_tokens": tokens}

    (tmp_path / "base.json").write_text(json.dumps(ev(10, 4, 2.0, 300)))
    (tmp_path / "a.json").write_text(json.dumps(ev(10, 8, 3.0, 700)))
    (tmp_path / "old.json").write_text(json.dumps({"correct": [0] * 5, "n_samples": 2}))  # before throughput was kept
    got = eval_throughput(tmp_path)
    assert got == pytest.approx({"eval_samples_per_s": (40 + 80) / 5.0, "eval_tokens_per_s": 1000 / 5.0})
    assert all(np.isnan(v) for v in eval_throughput(tmp_path / "none").values())


def test_auto_micro_batch_reads_free_memory_and_the_models_shape(monkeypatch):
    """On CUDA the free memory comes from torch.cuda.mem_get_info (faked here), the weights already
    on the device count as free, and V, L, H come from the model's config."""
    from markovfork.llm_bridge.scale import auto_micro_batch

    tok = build_tokenizer(vocabulary(TaskSpec()))
    model = build_model(ModelConfig(arch="llama", n_layer=3, n_embd=64, n_head=4, max_len=64), tok, seed=0)
    n = sum(p.numel() for p in model.parameters())
    free = 40 * n + 10**8
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 2 * free))
    got = auto_micro_batch(model, 50, torch.device("cuda"))
    per_seq = 50 * (10 * len(tok) + 34 * 3 * 64)
    assert got == int(MEMORY_SHARE * (free + 4 * n - 16 * n) // per_seq)
