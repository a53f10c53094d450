"""The training loop: the response-only loss against a per-example reference, the learning-rate
schedule, and exact resume (2 epochs straight == 1 epoch + resume 1 epoch, bit for bit)."""

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from markovfork.llm_bridge.config import ModelConfig, PhaseConfig
from markovfork.llm_bridge.model import build_model, load_checkpoint
from markovfork.llm_bridge.tasks import TaskSpec, generate_problems, sft_mix, vocabulary
from markovfork.llm_bridge.tokenizer import build_tokenizer, encode_example
from markovfork.llm_bridge.train import STATE_FILE, collate, epoch_dir, latest_epoch, lr_at, response_loss, train_phase

CPU = torch.device("cpu")
TINY = ModelConfig(n_layer=2, n_embd=32, n_head=2, max_len=64)


@pytest.fixture(scope="module", autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and fast for tiny models
    yield
    torch.set_num_threads(old)


def _data(n=48, arms=2, depth=3, answer="path"):
    spec = TaskSpec(arms=arms, depth=depth, answer=answer)
    tok = build_tokenizer(vocabulary(spec))
    mix = sft_mix(generate_problems(spec, n, seed=0), 0.5, "data", seed=0)
    return tok, [encode_example(tok, e.prompt, e.response) for e in mix]


def test_response_loss_matches_per_example_reference():
    """Padded batch loss == mean over all response tokens of -log p(token | prefix), computed
    one unpadded example at a time with log_softmax."""
    tok, enc3 = _data(n=3, depth=3)
    _, enc1 = _data(n=3, depth=1)  # shorter sequences in the same vocabulary -> real padding
    enc = enc3 + enc1
    assert len({len(e.input_ids) for e in enc}) > 1
    model = build_model(TINY, tok, seed=0).eval()
    batch = collate(enc, tok.pad_token_id)
    with torch.no_grad():
        loss, n = response_loss(model, batch)
        nll, count = 0.0, 0
        for e in enc:
            ids = torch.tensor([e.input_ids])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)  # (T, V)
            for t in range(e.prompt_len, len(e.input_ids)):
                nll -= logp[t - 1, e.input_ids[t]].item()
                count += 1
    assert n == count == sum(sum(e.loss_mask) for e in enc)
    assert loss.item() == pytest.approx(nll / count, rel=1e-5)


def test_a_batch_without_response_tokens_is_refused():
    """A batch whose loss mask covers only prompt tokens must be refused rather than silently
    train on nothing (which tokens carry the loss is checked by the per-example reference above)."""
    tok, enc = _data()
    batch = collate(enc[:2], tok.pad_token_id)
    batch.loss_mask[:] = False
    with pytest.raises(ValueError, match="no response tokens"):
        response_loss(build_model(TINY, tok, seed=0), batch)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = PhaseConfig(epochs=1, steps_per_epoch=100, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    mid = 10 + (99 - 10) / 2
    assert lr_at(int(mid), 100, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (int(mid) - 10) / 89)))


def _batch_fn(enc, bs):
    def fn(epoch, step):
        order = np.random.default_rng(epoch).permutation(len(enc))
        return [enc[i] for i in order[step * bs:(step + 1) * bs]]
    return fn


def test_resume_gives_identical_weights_optimizer_and_rng(tmp_path):
    tok, enc = _data()
    cfg = PhaseConfig(epochs=2, steps_per_epoch=3, batch_size=16, lr=3e-3, warmup_steps=2)
    # a non-trivial torch RNG stream: dropout draws from it every step
    cfg_model = ModelConfig(n_layer=2, n_embd=32, n_head=2, max_len=64, dropout=0.1)
    straight = build_model(cfg_model, tok, seed=0)
    r1 = train_phase(straight, tok, _batch_fn(enc, 16), 3, cfg, tmp_path / "a", seed=0, device=CPU, progress=False)

    part = build_model(cfg_model, tok, seed=0)
    train_phase(part, tok, _batch_fn(enc, 16), 3, cfg, tmp_path / "b", seed=0, device=CPU, stop_after=1, progress=False)
    assert latest_epoch(tmp_path / "b") == 1
    torch.manual_seed(12345)  # the interruption scrambles the process RNG; resume must restore it
    fresh = build_model(cfg_model, tok, seed=99)  # different init: everything must come from the checkpoint
    r2 = train_phase(fresh, tok, _batch_fn(enc, 16), 3, cfg, tmp_path / "b", seed=0, device=CPU, progress=False)
    assert r2.resumed_from == 1

    sa, sb = straight.state_dict(), fresh.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert r1.epoch_losses == r2.epoch_losses
    ta = torch.load(epoch_dir(tmp_path / "a", 2) / STATE_FILE, weights_only=False)
    tb = torch.load(epoch_dir(tmp_path / "b", 2) / STATE_FILE, weights_only=False)
    assert torch.equal(ta["rng_cpu"], tb["rng_cpu"])
    assert ta["scheduler"] == tb["scheduler"]
    for key in ta["optimizer"]["state"]:
        for name, value in ta["optimizer"]["state"][key].items():
            assert torch.equal(value, tb["optimizer"]["state"][key][name])
    # and the weights moved: training did something
    init = build_model(cfg_model, tok, seed=0).state_dict()
    assert not torch.equal(init["transformer.h.0.attn.c_attn.weight"], sa["transformer.h.0.attn.c_attn.weight"])


def test_checkpoints_load_with_standard_tooling_and_refuse_overwrite(tmp_path):
    tok, enc = _data()
    cfg = PhaseConfig(epochs=1, steps_per_epoch=2, batch_size=8, warmup_steps=1)
    model = build_model(TINY, tok, seed=0)
    train_phase(model, tok, _batch_fn(enc, 8), 2, cfg, tmp_path, seed=0, device=CPU, progress=False)
    ckpt = epoch_dir(tmp_path, 1)
    loaded = AutoModelForCausalLM.from_pretrained(ckpt, local_files_only=True)
    loaded_tok = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    ids = torch.tensor([enc[0].input_ids])
    assert loaded_tok.convert_ids_to_tokens(enc[0].input_ids) == tok.convert_ids_to_tokens(enc[0].input_ids)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)
    assert torch.equal(load_checkpoint(ckpt)(input_ids=ids).logits, loaded(input_ids=ids).logits)
    with pytest.raises(ValueError, match="already holds checkpoints up to epoch 1"):
        train_phase(model, tok, _batch_fn(enc, 8), 2, cfg, tmp_path, seed=0, device=CPU, resume=False, progress=False)
    other = PhaseConfig(epochs=1, steps_per_epoch=2, batch_size=8, warmup_steps=1, lr=1e-2)
    with pytest.raises(ValueError, match="different configuration"):
        train_phase(model, tok, _batch_fn(enc, 8), 2, other, tmp_path, seed=0, device=CPU, progress=False)


def test_llama_arch_builds_and_trains(tmp_path):
    tok, enc = _data()
    model = build_model(ModelConfig(arch="llama", n_layer=1, n_embd=32, n_head=2, max_len=64), tok, seed=0)
    cfg = PhaseConfig(epochs=1, steps_per_epoch=4, batch_size=12, lr=1e-2, warmup_steps=1)
    batch = collate(enc[:12], tok.pad_token_id)
    with torch.no_grad():
        before = response_loss(model, batch)[0].item()
    train_phase(model, tok, lambda e, s: enc[:12], 4, cfg, tmp_path, seed=0, device=CPU, progress=False)
    with torch.no_grad():
        after = response_loss(model, batch)[0].item()
    assert after < before
