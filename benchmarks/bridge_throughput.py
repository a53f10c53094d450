"""Training throughput of the llm_bridge loop vs a minimal plain PyTorch loop, same model, same batches.

Both train the CPU-default GPT-2 (4 layers, width 128, 4 heads) from the same initial weights on
the same pre-built batches of base-pretraining data (undirected derivations, 64 sequences per
step). Tokens/s counts real (non-padding) tokens per second of optimizer-step time; the bridge
loop also reports its wall time including its end-of-epoch checkpoint. The two loops alternate
(plain, bridge, plain, bridge, ...) so drifting machine load hits both; the medians are printed
side by side with their ratio and the process's peak resident memory.

    python3 benchmarks/bridge_throughput.py --steps 60 --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
from markovfork.plumbing.memory import peak_rss_gib
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from markovfork.llm_bridge.config import PhaseConfig, RunConfig
from markovfork.llm_bridge.model import build_model
from markovfork.llm_bridge.run import base_batch_fn, test_problems
from markovfork.llm_bridge.tasks import vocabulary
from markovfork.llm_bridge.tokenizer import build_tokenizer
from markovfork.llm_bridge.train import collate, train_phase


def plain_loop(model, batches, lr: float) -> float:
    """The minimal loop: forward, masked cross-entropy on response tokens, backward, AdamW step."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    tokens, seconds = 0, 0.0
    for b in batches:
        t0 = time.perf_counter()
        logits = model(input_ids=b.input_ids, attention_mask=b.attention_mask).logits[:, :-1]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b.input_ids[:, 1:].reshape(-1), reduction="none")
        mask = b.loss_mask[:, 1:].reshape(-1)
        loss = (ce * mask).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - t0
        tokens += int(b.attention_mask.sum())
    return tokens / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="alternating measurements of each loop")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = RunConfig()
    tok = build_tokenizer(vocabulary(cfg.task))
    fn = base_batch_fn(cfg, tok, test_problems(cfg))
    examples = [fn(0, s) for s in range(args.steps)]
    batches = [collate(e, tok.pad_token_id) for e in examples]
    init = build_model(cfg.model, tok, seed=0).state_dict()
    phase = PhaseConfig(epochs=1, steps_per_epoch=args.steps, batch_size=cfg.base.batch_size, lr=cfg.base.lr,
                        warmup_steps=10)

    plain, bridge, bridge_wall = [], [], []
    for _ in range(args.repeats):
        model = build_model(cfg.model, tok, seed=0)
        model.load_state_dict(init)
        model.train()
        plain.append(plain_loop(model, batches, cfg.base.lr))
        model = build_model(cfg.model, tok, seed=0)
        model.load_state_dict(init)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = train_phase(model, tok, lambda e, s: examples[s], args.steps, phase, d, seed=0,
                              device=torch.device("cpu"), progress=False)
            bridge_wall.append(res.tokens / (time.perf_counter() - t0))
        bridge.append(res.tokens_per_s)
    peak = peak_rss_gib()
    n_params = sum(p.numel() for p in model.parameters())
    tok_per_step = sum(int(b.attention_mask.sum()) for b in batches) / len(batches)
    print(f"model: GPT-2 {cfg.model.n_layer} layers, width {cfg.model.n_embd}, {n_params:,} parameters; "
          f"{args.steps} steps x {cfg.base.batch_size} sequences ({tok_per_step:.0f} tokens/step); "
          f"{args.threads} threads; {args.repeats} alternating repeats")
    print(f"{'loop':<34}{'tokens/s (median)':>18}{'min':>10}{'max':>10}")
    print(f"{'plain PyTorch (AdamW, no extras)':<34}{statistics.median(plain):>18,.0f}{min(plain):>10,.0f}{max(plain):>10,.0f}")
    print(f"{'llm_bridge train_phase (steps)':<34}{statistics.median(bridge):>18,.0f}{min(bridge):>10,.0f}{max(bridge):>10,.0f}")
    print(f"{'llm_bridge incl. batching+ckpt':<34}{statistics.median(bridge_wall):>18,.0f}{min(bridge_wall):>10,.0f}{max(bridge_wall):>10,.0f}")
    print(f"ratio bridge/plain (steps): {statistics.median(bridge) / statistics.median(plain):.3f}")
    print(f"peak resident memory of the process: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
