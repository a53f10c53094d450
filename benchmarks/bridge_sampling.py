"""Sampling throughput of the bridge's evaluation: ``model.generate`` on a shared prompt cache (what
``llm_bridge.evaluate.sample_responses`` does) against the hand-written KV-cache loop it replaced
(kept here, on the current cache API) and against plain ``generate`` with ``num_return_sequences``
(which prefills every sample's copy of the prompt).

All three sample n = 32 completions of the same test prompts of the CPU default run (GPT-2, 4
layers, width 128; random weights unless --checkpoint, so every sample runs to max_new_tokens),
512 sequences per batch, the same sampling settings. The methods alternate (loop, generate,
plain, loop, ...) so drifting machine load hits all; samples/s is reported by wall time and by
process CPU time (steadier on a shared machine), as medians with min and max.

    python3 benchmarks/bridge_sampling.py --problems 128 --repeats 9 --threads 1
    python3 benchmarks/bridge_sampling.py --problems 128 --repeats 9 --threads 1 --max-new-tokens 9
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from transformers import DynamicCache, GenerationConfig

from markovfork.llm_bridge.config import RunConfig
from markovfork.llm_bridge.evaluate import encode_by_length, process_logits, response_words, sample_responses
from markovfork.llm_bridge.model import build_model, load_checkpoint
from markovfork.llm_bridge.run import test_problems
from markovfork.llm_bridge.tasks import prompt_text, response_text, vocabulary
from markovfork.llm_bridge.tokenizer import build_tokenizer


@torch.no_grad()
def hand_loop(model, tok, prompts, n, sampling, max_new_tokens, seed, batch_sequences=512):
    """The replaced loop: prefill once, copy the cache to the n samples, one cached step per token,
    the bridge's sampling transforms, multinomial draws from a seeded generator."""
    encoded, by_len = encode_by_length(tok, prompts)
    id_to_word = tok.convert_ids_to_tokens(list(range(len(tok))))
    eos, pad = tok.eos_token_id, tok.pad_token_id
    out = [[] for _ in prompts]
    per_batch = max(batch_sequences // n, 1)
    batch_no = 0
    for length in sorted(by_len):
        members = by_len[length]
        for start in range(0, len(members), per_batch):
            chunk = members[start:start + per_batch]
            gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, batch_no]).generate_state(1)[0]))
            batch_no += 1
            ids = torch.tensor([encoded[i] for i in chunk])
            cache = DynamicCache(config=model.config)
            step = model(input_ids=ids, attention_mask=torch.ones_like(ids), cache=cache, use_cache=True)
            cache.batch_repeat_interleave(n)
            logits = step.logits[:, -1].repeat_interleave(n, dim=0)
            N, T = logits.shape[0], ids.shape[1]
            mask = torch.ones((N, T + max_new_tokens), dtype=torch.long)
            finished = torch.zeros(N, dtype=torch.bool)
            new_tokens = []
            for t in range(max_new_tokens):
                nxt = torch.multinomial(process_logits(logits, sampling), 1, generator=gen).squeeze(1)
                nxt = torch.where(finished, tok.pad_token_id, nxt)
                new_tokens.append(nxt)
                finished |= nxt == tok.eos_token_id
                if bool(finished.all()) or t == max_new_tokens - 1:
                    break
                logits = model(input_ids=nxt[:, None], attention_mask=mask[:, :T + t + 1], cache=cache,
                               use_cache=True).logits[:, -1]
            for row, seq in enumerate(torch.stack(new_tokens, dim=1).tolist()):
                out[chunk[row // n]].append(response_words(seq, eos, pad, id_to_word))
    return out


@torch.no_grad()
def plain_generate(model, tok, prompts, n, sampling, max_new_tokens, seed, batch_sequences=512):
    """``generate`` with ``num_return_sequences = n``: each sample's copy of the prompt is prefilled."""
    config = GenerationConfig(do_sample=True, max_new_tokens=max_new_tokens, temperature=1.0, top_k=0, top_p=1.0,
                              num_return_sequences=n, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    per_batch = max(batch_sequences // n, 1)
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(encoded), per_batch):  # the default task's prompts all have one length
        ids = torch.tensor(encoded[start:start + per_batch])
        out.append(model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=64, help="test prompts (the CPU default evaluates 200)")
    ap.add_argument("--repeats", type=int, default=5, help="alternating measurements of each method")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--checkpoint", default=None, help="a trained checkpoint instead of random weights")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="tokens per sample (default: the longest correct response + 4, as the bridge)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = RunConfig()
    tok = build_tokenizer(vocabulary(cfg.task))
    model = (load_checkpoint(args.checkpoint) if args.checkpoint else build_model(cfg.model, tok, seed=0)).eval()
    problems = test_problems(cfg)[: args.problems]
    prompts = [prompt_text(p) for p in problems]
    n, sampling = cfg.eval.n_samples, cfg.eval.sampling
    max_new = args.max_new_tokens or 4 + max(len(response_text(p, f).split()) for p in problems
                                             for f in ("forward", "reverse", "rationale"))
    methods = {
        "hand-written loop (DynamicCache)": lambda: hand_loop(model, tok, prompts, n, sampling, max_new, 0),
        "generate on a shared prompt cache": lambda: sample_responses(model, tok, prompts, n, sampling,
                                                                      max_new_tokens=max_new, seed=0,
                                                                      device=torch.device("cpu")),
        "generate, num_return_sequences": lambda: plain_generate(model, tok, prompts, n, sampling, max_new, 0),
    }
    wall = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, run in methods.items():
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            wall[name].append(len(prompts) * n / (time.perf_counter() - t0))
            cpu[name].append(len(prompts) * n / (time.process_time() - c0))
    print(f"{len(prompts)} prompts x {n} samples, max_new_tokens {max_new}, {args.threads} threads, "
          f"{'checkpoint ' + args.checkpoint if args.checkpoint else 'random weights'}; {args.repeats} alternating repeats")
    print(f"{'method':<36}{'wall samples/s (median, min-max)':>34}{'CPU samples/s (median, min-max)':>34}")
    for name in methods:
        w, c = wall[name], cpu[name]
        print(f"{name:<36}{statistics.median(w):>14,.0f} ({min(w):,.0f}-{max(w):,.0f}){'':>4}"
              f"{statistics.median(c):>14,.0f} ({min(c):,.0f}-{max(c):,.0f})")
    ref = statistics.median(cpu["hand-written loop (DynamicCache)"])
    for name in list(methods)[1:]:
        print(f"{name} / hand-written loop (CPU medians): {statistics.median(cpu[name]) / ref:.3f}")


if __name__ == "__main__":
    main()
