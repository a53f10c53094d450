"""The training loop (no HF Trainer): response-only loss, AdamW with warm-up and cosine decay,
a checkpoint per epoch, and exact resume.

One optimizer step takes the step's batch in micro-batches of ``micro_batch_size`` sequences
(gradient accumulation): micro-batch j contributes ``sum of its response-token cross-entropies /
N`` with N the response tokens of the whole step, so the accumulated gradient is the gradient of
the step's mean loss, the same as one big batch. Nothing in a step reads a value back from the
device (no ``.item()``, token counts come from the host-side batch): the step losses are summed
on the device and read once per epoch and every ``LOG_EVERY`` steps for the progress bar.

Resume is exact because nothing in a step depends on hidden state that is not checkpointed: the
batch of (epoch, step) is a pure function of the seed (see ``run.py``), and each epoch directory
holds the weights (``save_pretrained``), the optimizer and scheduler state and the torch RNG
state. Training 2 epochs straight and 1 epoch + resume 1 gives bitwise-identical weights.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Collection, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import PreTrainedTokenizerFast

from markovfork.llm_bridge.config import OptimizerConfig
from markovfork.llm_bridge.model import autocast, keep_logits, load_checkpoint, save_checkpoint
from markovfork.llm_bridge.tokenizer import EncodedExample

__all__ = ["Batch", "collate", "response_loss", "response_loss_sum", "accumulate_step", "micro_batches", "lr_at",
           "PhaseResult", "make_optimizer", "train_phase", "epoch_dir", "latest_epoch", "prune_epochs"]

BatchFn = Callable[[int, int], Sequence[EncodedExample]]  # (epoch from 0, step in epoch) -> examples
STATE_FILE = "trainer_state.pt"
LOG_EVERY = 25  # steps between the progress bar's reads of the running loss


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T) token ids, right-padded
    attention_mask: torch.Tensor  # (B, T) 1 on real tokens
    loss_mask: torch.Tensor  # (B, T) 1 on response tokens (the targets the loss is taken on)
    first_target: int = 1  # no loss before this position (the shortest prompt): logits are kept from one before

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.input_ids.to(device, non_blocking=True), self.attention_mask.to(device, non_blocking=True),
                     self.loss_mask.to(device, non_blocking=True), self.first_target)


def collate(examples: Sequence[EncodedExample], pad_id: int) -> Batch:
    """Right-pad a list of encoded examples into tensors."""
    T = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    attn = torch.zeros((len(examples), T), dtype=torch.long)
    lmask = torch.zeros((len(examples), T), dtype=torch.bool)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        attn[i, :n] = 1
        lmask[i, :n] = torch.tensor(e.loss_mask)
    return Batch(ids, attn, lmask, max(min(e.prompt_len for e in examples), 1))


def response_loss_sum(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Sum of the cross-entropies on the response tokens of ``batch`` (a 0-d tensor, fp32).

    Position t predicts token t+1, so the target mask is ``loss_mask[:, 1:]``. Only the logits
    from position ``first_target - 1`` on are computed (``logits_to_keep``): no prompt token is a
    target, and a large vocabulary's logits are most of a step's memory."""
    T, start = batch.input_ids.shape[1], batch.first_target
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   **keep_logits(model, T - start + 1)).logits[:, start - 1 - T:]  # (B, T - start + 1, V)
    logits = logits[:, :-1].float()  # (B, T - start, V): positions start-1 .. T-2
    targets = batch.input_ids[:, start:]  # (B, T - start)
    mask = batch.loss_mask[:, start:]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return (ce.view_as(targets) * mask).sum()


def response_loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over response tokens only, and how many there were."""
    n = int(batch.loss_mask[:, 1:].sum())
    if n == 0:
        raise ValueError("batch has no response tokens to train on")
    return response_loss_sum(model, batch) / n, n


def micro_batches(examples: Sequence[EncodedExample], size: int) -> list[Sequence[EncodedExample]]:
    """``examples`` in consecutive chunks of ``size`` (0: one chunk)."""
    size = size or len(examples)
    return [examples[i:i + size] for i in range(0, len(examples), size)]


def accumulate_step(model: torch.nn.Module, chunks: Sequence[Batch], device: torch.device) -> torch.Tensor:
    """Forward and backward over the micro-batches (collated, on the host) of one optimizer step,
    gradients accumulated: micro-batch j adds the gradient of ``S_j / N`` (``S_j`` its summed
    response cross-entropy, N the step's response tokens, counted on the host), so the result is
    the gradient of the step's mean loss. Returns that mean loss, a detached device tensor that
    this function does not read."""
    n = sum(int(c.loss_mask[:, 1:].sum()) for c in chunks)
    if n == 0:
        raise ValueError("batch has no response tokens to train on")
    total = torch.zeros((), device=device)
    for chunk in chunks:
        with autocast(device):
            loss = response_loss_sum(model, chunk.to(device)) / n
        loss.backward()
        total += loss.detach()
    return total


def lr_at(step: int, total: int, cfg: OptimizerConfig) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` (0-based): linear warm-up, then cosine
    from 1 down to ``min_lr_ratio`` at the last step."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(total - cfg.warmup_steps - 1, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def epoch_dir(out_dir: str | os.PathLike, epoch: int) -> Path:
    """Checkpoint directory of ``epoch`` (1-based) inside ``out_dir``."""
    return Path(out_dir) / f"epoch-{epoch:03d}"


def latest_epoch(out_dir: str | os.PathLike) -> int:
    """The last epoch with a complete checkpoint in ``out_dir`` (0 if none)."""
    out_dir = Path(out_dir)
    done = [int(p.name.split("-")[1]) for p in out_dir.glob("epoch-[0-9][0-9][0-9]") if (p / STATE_FILE).is_file()]
    return max(done, default=0)


@dataclass
class PhaseResult:
    """What a training phase did."""

    epoch_losses: list[float] = field(default_factory=list)  # mean response loss per epoch (all epochs)
    tokens: int = 0  # tokens (prompt + response, no padding) processed in this call
    sequences: int = 0  # sequences trained on in this call
    seconds: float = 0.0  # wall time of the optimizer steps in this call (CUDA: of the epochs, batching included)
    resumed_from: int = 0  # epoch the call resumed from (0 = fresh start)
    micro_batch_size: int = 0  # sequences per forward/backward pass (0: the whole step)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")

    @property
    def samples_per_s(self) -> float:
        return self.sequences / self.seconds if self.seconds > 0 else float("nan")


_LATER_KEYS = ("branch_rate", "filter_share", "tokens_per_step")  # added later: left out at 0, so older runs resume
# how a step is split (up to float rounding) and which checkpoints are kept do not change training
_NOT_FINGERPRINTED = ("micro_batch_size", "keep_checkpoints")


def _fingerprint(cfg: OptimizerConfig, steps_per_epoch: int, seed: int) -> dict:
    phase = {k: v for k, v in asdict(cfg).items()
             if not (k in _LATER_KEYS and v == 0) and k not in _NOT_FINGERPRINTED}
    return {"phase": phase | {"betas": list(cfg.betas)}, "steps_per_epoch": steps_per_epoch, "seed": seed}


def make_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW over ``model``'s parameters, weight decay on matrices only (not biases or norms).
    ``ValueError`` for settings AdamW would reject, or (per-group weight decay, which torch does
    not check) a negative weight decay."""
    if not cfg.weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {cfg.weight_decay}")
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=cfg.betas, foreach=True,
    )


def train_phase(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerFast,
    batch_fn: BatchFn,
    steps_per_epoch: int,
    cfg: OptimizerConfig,
    out_dir: str | os.PathLike,
    *,
    seed: int,
    device: torch.device,
    resume: bool = True,
    stop_after: int | None = None,
    desc: str = "train",
    progress: bool | None = None,
    keep_epochs: Collection[int] | None = None,
) -> PhaseResult:
    """Train ``model`` in place for ``cfg.epochs`` epochs of ``steps_per_epoch`` steps, saving
    ``out_dir/epoch-NNN`` (weights, tokenizer, optimizer/scheduler/RNG state) after each epoch.

    With ``resume`` the latest complete checkpoint in ``out_dir`` is loaded and training
    continues from there (a finished phase just reloads its last epoch); without it, an
    ``out_dir`` holding checkpoints is an error. ``stop_after`` ends the call after that many
    epochs in total (to simulate an interruption). ``progress=None`` shows a bar on a TTY only.
    ``keep_epochs``: after each save, :func:`prune_epochs` (None keeps every checkpoint whole).
    """
    out_dir = Path(out_dir)
    total = cfg.epochs * steps_per_epoch
    model.to(device)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total, cfg))
    result = PhaseResult()
    fingerprint = _fingerprint(cfg, steps_per_epoch, seed)

    start = latest_epoch(out_dir)
    if start and not resume:
        raise ValueError(f"{out_dir} already holds checkpoints up to epoch {start}; resume or use a fresh directory")
    if start:
        start = min(start, cfg.epochs)
        state = torch.load(epoch_dir(out_dir, start) / STATE_FILE, map_location="cpu", weights_only=False)
        if state["fingerprint"] != fingerprint:
            raise ValueError(f"checkpoints in {out_dir} were made with a different configuration; use a fresh directory")
        model.load_state_dict(load_checkpoint(epoch_dir(out_dir, start)).state_dict())
        model.to(device)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
        result.epoch_losses = list(state["epoch_losses"])
        result.resumed_from = start
    last = cfg.epochs if stop_after is None else min(stop_after, cfg.epochs)

    model.train()
    micro = cfg.micro_batch_size
    if micro == 0 and device.type == "cuda" and last > start:
        from markovfork.llm_bridge.scale import auto_micro_batch

        micro = auto_micro_batch(model, max(len(e.input_ids) for e in batch_fn(start, 0)), device)
    result.micro_batch_size = micro
    bar = tqdm(total=(last - start) * steps_per_epoch, desc=desc, file=sys.stderr, leave=False,
               disable=(not progress) if progress is not None else None, dynamic_ncols=True)
    for epoch in range(start, last):
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # the epoch's step losses, summed on the device
        t_epoch = time.perf_counter()
        for step in range(steps_per_epoch):
            examples = batch_fn(epoch, step)
            chunks = [collate(c, tok.pad_token_id) for c in micro_batches(examples, micro)]
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = accumulate_step(model, chunks, device)
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            loss_sum += loss
            if device.type != "cuda":  # on CUDA the step is still running: the epoch's wall time is used
                result.seconds += time.perf_counter() - t0
            result.tokens += sum(int(c.attention_mask.sum()) for c in chunks)
            result.sequences += len(examples)
            bar.update(1)
            if (step + 1) % LOG_EVERY == 0 or step + 1 == steps_per_epoch:
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum.item() / (step + 1):.3f}",
                                tok_s=f"{result.tokens_per_s:,.0f}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            result.seconds += time.perf_counter() - t_epoch
        result.epoch_losses.append(loss_sum.item() / steps_per_epoch)
        _save_epoch(model, tok, opt, sched, out_dir, epoch + 1, result.epoch_losses, fingerprint, device)
        if keep_epochs is not None:
            prune_epochs(out_dir, epoch + 1, keep_epochs)
    bar.close()
    model.eval()
    return result


def prune_epochs(out_dir: str | os.PathLike, latest: int, keep: Collection[int]) -> None:
    """Once epoch ``latest`` is saved: delete every earlier epoch not in ``keep``, and drop the
    trainer state (optimizer, scheduler, RNG: twice the weights' size under AdamW) of the kept
    ones; resuming needs only ``latest``'s."""
    for e in range(1, latest):
        d = epoch_dir(out_dir, e)
        if d.is_dir() and e in keep:
            (d / STATE_FILE).unlink(missing_ok=True)
        elif d.is_dir():
            shutil.rmtree(d)


def _save_epoch(model, tok, opt, sched, out_dir: Path, epoch: int, losses, fingerprint, device) -> None:
    """Write the checkpoint into a temporary directory and rename it into place, so a crash
    mid-save never leaves a checkpoint that looks complete."""
    final = epoch_dir(out_dir, epoch)
    tmp = out_dir / f".epoch-{epoch:03d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_checkpoint(model, tok, tmp)
    torch.save(
        {
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "epoch": epoch,
            "epoch_losses": list(losses),
            "fingerprint": fingerprint,
        },
        tmp / STATE_FILE,
    )
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
