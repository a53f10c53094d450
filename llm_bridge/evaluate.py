"""Evaluation: n sampled completions per test problem (batched, KV cache), graded exactly;
the unbiased pass@k; and the model's distribution over arms at the source (the fork).

Fork metrics are read off the model, not off samples: the prompt is followed by the forward
prefix up to the source (``> s`` for path, ``> s = v0 ,`` for arith), and the next-token
probabilities of the arms' first nodes, renormalised over the arms, give ``q`` (P, arms). Then
fork accuracy is the mean of ``q[target]`` (the chance a sampled forward step takes the right
arm), fork confidence is ``max q`` split by whether the argmax arm is the target, and fork
entropy is the entropy of ``q``. Forcing the forward prefix measures the fork even for models
that mostly answer in the reverse format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

import markovfork
from markovfork.llm_bridge.config import SamplingConfig
from markovfork.llm_bridge.model import autocast
from markovfork.llm_bridge.tasks import Problem, forward_arm_choice, grade, prompt_text, response_text
from transformers import PreTrainedTokenizerFast

__all__ = ["EvalResult", "process_logits", "sample_responses", "fork_probabilities", "evaluate_model"]


@dataclass
class EvalResult:
    """Per-problem outcomes of one model on one test set."""

    n_samples: int  # samples per problem
    correct: np.ndarray  # (P,) number of correct samples per problem
    fork_probs: np.ndarray  # (P, arms) teacher-forced arm probabilities at the source, renormalised
    target_arm: np.ndarray  # (P,) index of the target arm
    arm_mass: np.ndarray  # (P,) probability mass on arm tokens before renormalising
    forward_share: float  # share of samples whose first token is the forward mode ">"
    sampled_fork_accuracy: float  # among samples with a forward segment, share taking the target arm
    responses: list[list[str]] | None = field(default=None, repr=False)  # (P, n) texts, if kept

    def pass_at_k(self, ks: Sequence[int]) -> np.ndarray:
        """Mean over problems of the unbiased pass@k (markovfork's estimator), one value per k."""
        per_problem = markovfork.pass_at_k(self.n_samples, self.correct, np.asarray(ks))  # (P, K)
        return np.atleast_2d(per_problem).mean(axis=0)

    @property
    def chosen_correct(self) -> np.ndarray:
        return self.fork_probs.argmax(axis=1) == self.target_arm  # (P,)

    @property
    def fork_accuracy(self) -> float:
        return float(self.fork_probs[np.arange(len(self.target_arm)), self.target_arm].mean())

    def fork_confidence(self, correct: bool) -> float:
        """Mean max arm probability over problems whose argmax arm is (not) the target; nan if none."""
        sel = self.chosen_correct == correct
        return float(self.fork_probs.max(axis=1)[sel].mean()) if sel.any() else float("nan")

    @property
    def fork_entropy(self) -> float:
        q = np.clip(self.fork_probs, 1e-300, 1.0)
        return float(-(self.fork_probs * np.log(q)).sum(axis=1).mean())

    def to_dict(self) -> dict:
        return {
            "n_samples": self.n_samples,
            "correct": self.correct.tolist(),
            "fork_probs": self.fork_probs.tolist(),
            "target_arm": self.target_arm.tolist(),
            "arm_mass": self.arm_mass.tolist(),
            "forward_share": self.forward_share,
            "sampled_fork_accuracy": self.sampled_fork_accuracy,
        }

    @staticmethod
    def from_dict(d: dict) -> "EvalResult":
        return EvalResult(
            n_samples=int(d["n_samples"]),
            correct=np.asarray(d["correct"], dtype=np.int64),
            fork_probs=np.asarray(d["fork_probs"], dtype=np.float64),
            target_arm=np.asarray(d["target_arm"], dtype=np.int64),
            arm_mass=np.asarray(d["arm_mass"], dtype=np.float64),
            forward_share=float(d["forward_share"]),
            sampled_fork_accuracy=float(d["sampled_fork_accuracy"]),
        )


def process_logits(logits: torch.Tensor, s: SamplingConfig) -> torch.Tensor:
    """Next-token probabilities (N, V) after temperature, min-p and top-p, renormalised."""
    probs = torch.softmax(logits.float() / s.temperature, dim=-1)  # (N, V)
    if s.min_p > 0:
        probs = torch.where(probs >= s.min_p * probs.max(dim=-1, keepdim=True).values, probs, 0.0)
    if s.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(dim=-1) - sorted_p  # mass strictly above each token
        # keep a token while the mass above it is below top_p (the top token is always kept);
        # the small slack absorbs float error in the cumulative sum
        keep_sorted = before < s.top_p - 1e-7
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        probs = torch.where(keep, probs, 0.0)
    return probs / probs.sum(dim=-1, keepdim=True)


def _spread_choice(probs: torch.Tensor, n: int, s: SamplingConfig) -> torch.Tensor:
    """Sample j of each problem (rows are problem-major, n per problem) takes candidate
    ``j mod m`` of its row's top candidates, m = those with >= spread_min_p * top probability."""
    m = min(s.spread_first, probs.shape[-1])
    vals, idx = probs.topk(m, dim=-1)  # (N, m)
    n_valid = (vals >= s.spread_min_p * vals[:, :1]).sum(dim=-1)  # (N,) >= 1
    j = torch.arange(probs.shape[0], device=probs.device) % n  # sample index within its problem
    return idx.gather(1, (j % n_valid)[:, None]).squeeze(1)  # (N,)


@torch.no_grad()
def sample_responses(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerFast,
    prompts: Sequence[str],
    n: int,
    sampling: SamplingConfig,
    *,
    max_new_tokens: int,
    seed: int,
    device: torch.device,
    batch_sequences: int = 512,
) -> list[list[str]]:
    """``n`` completions of each prompt (texts without [EOS]); (P, n) nested list.

    Prompts of equal token length are batched together (no padding); each batch runs one
    prefill and then one cached decoding step per token. Random draws come from a generator
    seeded by ``seed`` and the batch's position, so results are reproducible for a fixed
    ``batch_sequences``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    model.eval().to(device)
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_len.setdefault(len(ids), []).append(i)
    id_to_word = tok.convert_ids_to_tokens(list(range(len(tok))))
    out: list[list[str]] = [[] for _ in prompts]
    per_batch = max(batch_sequences // n, 1)
    batch_no = 0
    for length in sorted(by_len):
        members = by_len[length]
        for start in range(0, len(members), per_batch):
            chunk = members[start:start + per_batch]
            gen = torch.Generator(device=device).manual_seed(int(np.random.SeedSequence([seed, batch_no]).generate_state(1)[0]))
            batch_no += 1
            ids = torch.tensor([encoded[i] for i in chunk], device=device)  # (B, T)
            # prefill each prompt once, then copy its KV cache to its n samples
            with autocast(device):
                step_out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
            past = step_out.past_key_values
            past.batch_repeat_interleave(n)
            logits = step_out.logits[:, -1].repeat_interleave(n, dim=0)  # (N, V)
            N, T = logits.shape[0], ids.shape[1]
            mask = torch.ones((N, T + max_new_tokens), dtype=torch.long, device=device)  # no padding anywhere
            finished = torch.zeros(N, dtype=torch.bool, device=device)
            new_tokens = []
            for t in range(max_new_tokens):
                probs = process_logits(logits, sampling)  # (N, V)
                if sampling.spread_first > 0 and t == sampling.spread_position:
                    nxt = _spread_choice(probs, n, sampling)
                else:
                    nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)  # (N,)
                nxt = torch.where(finished, tok.pad_token_id, nxt)
                new_tokens.append(nxt)
                finished |= nxt == tok.eos_token_id
                if bool(finished.all()) or t == max_new_tokens - 1:
                    break
                with autocast(device):
                    step_out = model(input_ids=nxt[:, None], attention_mask=mask[:, :T + t + 1],
                                     past_key_values=past, use_cache=True)
                past, logits = step_out.past_key_values, step_out.logits[:, -1]
            gen_ids = torch.stack(new_tokens, dim=1).cpu().tolist()  # (N, t)
            for row, seq in enumerate(gen_ids):
                words = []
                for tid in seq:
                    if tid == tok.eos_token_id or tid == tok.pad_token_id:
                        break
                    words.append(id_to_word[tid])
                out[chunk[row // n]].append(" ".join(words))
    return out


def _fork_prefix(p: Problem) -> str:
    """The forward response up to and including the source (and its value for arith)."""
    words = response_text(p, "forward").split()
    return " ".join(words[:2] if p.answer == "path" else words[:5])


@torch.no_grad()
def fork_probabilities(model: torch.nn.Module, tok: PreTrainedTokenizerFast, problems: Sequence[Problem],
                       *, device: torch.device, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced next-token probabilities of each arm's first node after the forward
    prefix: renormalised (P, arms), and the raw mass on the arm tokens (P,)."""
    model.eval().to(device)
    texts = [prompt_text(p) + " " + _fork_prefix(p) for p in problems]
    encoded = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    arm_ids = np.array([tok.convert_tokens_to_ids([a[0] for a in p.arms]) for p in problems])  # (P, arms)
    raw = np.zeros(arm_ids.shape, dtype=np.float64)
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_len.setdefault(len(ids), []).append(i)
    for members in by_len.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            ids = torch.tensor([encoded[i] for i in chunk], device=device)  # (B, T)
            with autocast(device):
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[:, -1]  # (B, V)
            probs = torch.softmax(logits.float(), dim=-1).cpu().double().numpy()
            raw[chunk] = np.take_along_axis(probs, arm_ids[chunk], axis=1)
    mass = raw.sum(axis=1)
    return raw / mass[:, None], mass


def evaluate_model(
    model: torch.nn.Module,
    tok: PreTrainedTokenizerFast,
    problems: Sequence[Problem],
    n: int,
    sampling: SamplingConfig,
    *,
    seed: int,
    device: torch.device,
    batch_sequences: int = 512,
    keep_responses: bool = False,
) -> EvalResult:
    """Sample ``n`` responses per problem, grade them, and read the fork probabilities."""
    if not problems:
        raise ValueError("need at least one test problem")
    longest = max(len(response_text(p, f).split()) for p in problems for f in ("forward", "reverse", "rationale"))
    max_new = sampling.max_new_tokens or longest + 4
    responses = sample_responses(model, tok, [prompt_text(p) for p in problems], n, sampling,
                                 max_new_tokens=max_new, seed=seed, device=device, batch_sequences=batch_sequences)
    correct = np.array([sum(grade(p, r) for r in rs) for p, rs in zip(problems, responses)], dtype=np.int64)
    first = [r.split()[:1] for rs in responses for r in rs]
    forward_share = sum(f == [">"] for f in first) / len(first)
    choices = [(forward_arm_choice(p, r), p.target_arm) for p, rs in zip(problems, responses) for r in rs]
    taken = [c == t for c, t in choices if c is not None]
    sampled_acc = float(np.mean(taken)) if taken else float("nan")
    q, mass = fork_probabilities(model, tok, problems, device=device)
    return EvalResult(
        n_samples=n,
        correct=correct,
        fork_probs=q,
        target_arm=np.array([p.target_arm for p in problems], dtype=np.int64),
        arm_mass=mass,
        forward_share=float(forward_share),
        sampled_fork_accuracy=sampled_acc,
        responses=responses if keep_responses else None,
    )
