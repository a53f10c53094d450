"""Evaluation: n sampled completions per test problem (``model.generate`` on a shared prompt
cache), graded exactly; the unbiased pass@k; and the model's distribution over arms at the fork.

Fork metrics are read off the model, not off samples: the prompt is followed by the forward
prefix up to the source (``> s`` for path, ``> s = v0 ,`` for arith), and the next-token
probabilities of the arms' first tokens, renormalised over the arms, give ``q`` (P, arms). Under
any tokenizer the fork position is found by encoding the forward response along each arm
(:func:`fork_tokens`): it is the first token at which the arms' encodings differ, the shared
tokens before it (a separate space token, say) are the teacher-forced prefix, and arm a's token
there is its first token (its whole name when the name is one token). With
target arm t_p, and the same meaning as the simulator's (``markovfork/sft/evaluate.py``, every
problem reaching the fork with probability 1):

    fork_accuracy           = mean_p q[p, t_p]
    fork_confidence_correct = sum_p q[p, t_p]^2 / sum_p q[p, t_p]
    fork_confidence_wrong   = sum_p sum_{a != t_p} q[p, a]^2 / sum_p sum_{a != t_p} q[p, a]
    fork_entropy            = mean_p H(q[p])

i.e. the expected probability the model gives to the arm it samples, split by whether that arm
is the target. ``fork_argmax_confidence`` is the older, argmax-conditioned summary: the mean of
``max_a q[p, a]`` over problems whose most likely arm is (not) the target. Forcing the forward
prefix measures the fork even for models that mostly answer in the reverse format.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch

import markovfork
from markovfork.llm_bridge.backtrack import branch_count
from markovfork.llm_bridge.config import SamplingConfig
from markovfork.llm_bridge.model import autocast, keep_logits
from markovfork.llm_bridge.tasks import Problem, forward_arm_choice, grade, prompt_text, response_text
from markovfork.llm_bridge.tokenizer import encode_example, is_word_level
from markovfork.plumbing.seeds import child_seed
from transformers import (
    DynamicCache,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    MinPLogitsWarper,
    PreTrainedTokenizerFast,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

__all__ = [
    "encode_by_length", "response_words", "decode_response", "fork_tokens",
    "EvalResult", "sampling_processors", "process_logits", "SpreadFirst", "sample_responses", "fork_probabilities",
    "length_budget", "evaluate_model",
]


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
    backtrack_share: float = float("nan")  # share of samples holding a backtrack token (nan: not recorded)
    mean_response_words: float = float("nan")  # mean sampled response length in words, [EOS] excluded
    sampling_seconds: float = float("nan")  # wall time of sampling (nan: not recorded)
    generated_tokens: int = 0  # tokens sampled, each response up to and including its end token
    responses: list[list[str]] | None = field(default=None, repr=False)  # (P, n) texts, if kept

    def pass_at_k(self, ks: Sequence[int]) -> np.ndarray:
        """Mean over problems of the unbiased pass@k (markovfork's estimator), one value per k."""
        per_problem = markovfork.pass_at_k(self.n_samples, self.correct, np.asarray(ks))  # (P, K)
        return np.atleast_2d(per_problem).mean(axis=0)

    @property
    def fork_accuracy(self) -> float:
        """Probability that a sampled forward step takes the target arm, averaged over problems."""
        return float(self.fork_probs[np.arange(len(self.target_arm)), self.target_arm].mean())

    def fork_confidence(self, correct: bool) -> float:
        """Expected probability of the sampled arm given that it is (not) the target:
        ``sum q[p, a]^2 / sum q[p, a]`` over the target arms (``correct``) or all other arms; nan
        when those arms carry no probability."""
        q = self.fork_probs
        on_target = np.zeros(q.shape, dtype=bool)
        on_target[np.arange(len(self.target_arm)), self.target_arm] = True
        sel = on_target if correct else ~on_target
        mass = float(q[sel].sum())
        return float((q[sel] ** 2).sum()) / mass if mass > 0 else float("nan")

    def fork_argmax_confidence(self, correct: bool) -> float:
        """Mean of ``max_a q[p, a]`` over problems whose most likely arm is (not) the target; nan if none."""
        sel = (self.fork_probs.argmax(axis=1) == self.target_arm) == correct
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
            "backtrack_share": self.backtrack_share,
            "mean_response_words": self.mean_response_words,
            "sampling_seconds": self.sampling_seconds,
            "generated_tokens": self.generated_tokens,
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
            backtrack_share=float(d.get("backtrack_share", float("nan"))),  # absent in older caches
            mean_response_words=float(d.get("mean_response_words", float("nan"))),
            sampling_seconds=float(d.get("sampling_seconds", float("nan"))),
            generated_tokens=int(d.get("generated_tokens", 0)),
        )


def sampling_processors(s: SamplingConfig) -> LogitsProcessorList:
    """Hugging Face's own logits warpers for ``s``, in the order ``generate`` applies them:
    temperature, top-k, top-p, min-p (each only when switched on)."""
    processors = LogitsProcessorList()
    if s.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(float(s.temperature)))
    if s.top_k > 0:
        processors.append(TopKLogitsWarper(s.top_k))
    if s.top_p < 1.0:
        processors.append(TopPLogitsWarper(float(s.top_p)))
    if s.min_p > 0:
        processors.append(MinPLogitsWarper(float(s.min_p)))
    return processors


def process_logits(logits: torch.Tensor, s: SamplingConfig) -> torch.Tensor:
    """Next-token probabilities (N, V): the softmax of the logits after :func:`sampling_processors`."""
    return torch.softmax(sampling_processors(s)(None, logits.float()), dim=-1)


class SpreadFirst(LogitsProcessor):
    """At response position ``s.spread_position``, sample j of each problem (rows problem-major,
    ``n`` per problem) takes candidate ``j mod m`` of its row's top ``s.spread_first`` tokens, where
    m counts those with probability >= ``s.spread_min_p`` * (top probability); every other token
    gets score -inf. Applied after the sampling warpers, so candidates are read off the processed
    distribution."""

    def __init__(self, prompt_len: int, n: int, s: SamplingConfig):
        self.position = prompt_len + s.spread_position  # sequence length at which the decision is made
        self.n, self.first, self.min_p = n, s.spread_first, s.spread_min_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] != self.position:
            return scores
        probs = torch.softmax(scores, dim=-1)
        vals, idx = probs.topk(min(self.first, probs.shape[-1]), dim=-1)  # (N, m)
        n_valid = (vals >= self.min_p * vals[:, :1]).sum(dim=-1)  # (N,) >= 1
        j = torch.arange(probs.shape[0], device=probs.device) % self.n  # sample index within its problem
        choice = idx.gather(1, (j % n_valid)[:, None])  # (N, 1)
        return torch.full_like(scores, -float("inf")).scatter(1, choice, 0.0)


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
    stats: dict | None = None,
) -> list[list[str]]:
    """``n`` completions of each prompt (texts without [EOS]); (P, n) nested list. ``stats``, if
    given, gets ``tokens`` (tokens sampled, each response up to its end token) and ``seconds``.

    Prompts of equal token length are batched together (no padding). A response is decoded up to
    its first end or padding token; under a subword tokenizer its whitespace is made single spaces
    (:func:`decode_response`), so grading reads words as at the word level. Each batch prefills its
    prompts once into a ``DynamicCache``, draws each sample's first token from the prompt's
    processed logits, copies the cache to the n samples of each prompt, and hands it to
    ``model.generate`` with the sampling warpers (and :class:`SpreadFirst`) as logits processors
    for the remaining tokens (a sample that ends with its first token is decoded as ending
    there). The random draws of a batch come from torch's
    generator seeded by ``seed`` and the batch's position (the caller's RNG state is restored),
    so results are reproducible for a fixed ``batch_sequences``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    model.eval().to(device)
    encoded, by_len = encode_by_length(tok, prompts)
    eos, pad = tok.eos_token_id, tok.pad_token_id
    if is_word_level(tok):
        id_to_word = tok.convert_ids_to_tokens(list(range(len(tok))))
        decode = lambda seq: response_words(seq, eos, pad, id_to_word)  # noqa: E731
    else:
        decode = lambda seq: decode_response(tok, seq)  # noqa: E731
    # the warpers come from us; finished samples are filled with [EOS], not [PAD]: generate feeds
    # them back without an attention mask (nothing is padded), and a [PAD] fed there makes
    # transformers warn that the input may be padded
    config = GenerationConfig(do_sample=True, max_new_tokens=max(max_new_tokens - 1, 1), temperature=1.0, top_k=0,
                              top_p=1.0, pad_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    out: list[list[str]] = [[] for _ in prompts]
    per_batch = max(batch_sequences // n, 1)
    batch_no, n_tokens, t_start = 0, 0, time.perf_counter()
    stop = {eos, pad}
    for length in sorted(by_len):
        members = by_len[length]
        processors = sampling_processors(sampling)
        if sampling.spread_first > 0:
            processors.append(SpreadFirst(length, n, sampling))
        for start in range(0, len(members), per_batch):
            chunk = members[start:start + per_batch]
            batch_seed = child_seed(seed, batch_no)
            batch_no += 1
            ids = torch.tensor([encoded[i] for i in chunk], device=device)  # (B, T)
            cache = DynamicCache(config=model.config)
            with autocast(device), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(batch_seed)
                # prefill each prompt once and draw every sample's first token from its logits, as
                # generate would; then generate continues from the prompt's cache copied n times
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), cache=cache, use_cache=True,
                               **keep_logits(model, 1)).logits[:, -1].float().repeat_interleave(n, dim=0)  # (N, V)
                cache.batch_repeat_interleave(n)
                ids = ids.repeat_interleave(n, dim=0)  # (N, T), problem-major
                first = torch.multinomial(torch.softmax(processors(ids, logits), dim=-1), 1)  # (N, 1)
                seqs = torch.cat([ids, first], dim=1)
                if max_new_tokens > 1:
                    seqs = _generate(model, seqs, cache, config, processors)
            for row, seq in enumerate(seqs[:, length:].tolist()):
                out[chunk[row // n]].append(decode(seq))
                n_tokens += next((i + 1 for i, t in enumerate(seq) if t in stop), len(seq))
    if stats is not None:
        stats.update(tokens=n_tokens, seconds=time.perf_counter() - t_start)
    return out


def _generate(model, seqs: torch.Tensor, cache, config: GenerationConfig, processors) -> torch.Tensor:
    """``model.generate`` with only our settings: generate fills every setting ours leaves unset
    from the model's own ``generation_config`` (a pretrained checkpoint's may hold a repetition
    penalty, min-p, suppressed tokens ...), so a neutral one stands in for it during the call."""
    own = model.generation_config
    model.generation_config = GenerationConfig(pad_token_id=config.pad_token_id, eos_token_id=config.eos_token_id)
    try:
        return model.generate(seqs, attention_mask=torch.ones_like(seqs), cache=cache, generation_config=config,
                              logits_processor=processors)
    finally:
        model.generation_config = own


def encode_by_length(tok: PreTrainedTokenizerFast, texts: Sequence[str]) -> tuple[list[list[int]], dict[int, list[int]]]:
    """The token ids of each text and the indices of the texts by token length, in order of
    first appearance (texts of one length batch together without padding)."""
    encoded = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_len.setdefault(len(ids), []).append(i)
    return encoded, by_len


def response_words(token_ids: list[int], eos: int, pad: int, id_to_word: dict[int, str]) -> str:
    """A sampled response as text: its words up to the first end or padding token."""
    words = []
    for tid in token_ids:
        if tid == eos or tid == pad:
            break
        words.append(id_to_word[tid])
    return " ".join(words)


def decode_response(tok: PreTrainedTokenizerFast, token_ids: list[int]) -> str:
    """A sampled response under any tokenizer: its tokens up to the first end or padding token,
    decoded, with runs of whitespace made single spaces (and none at either end)."""
    stop = {tok.eos_token_id, tok.pad_token_id}
    end = next((i for i, t in enumerate(token_ids) if t in stop), len(token_ids))
    return " ".join(tok.decode(token_ids[:end], skip_special_tokens=True).split())


def fork_tokens(tok: PreTrainedTokenizerFast, p: Problem) -> tuple[list[int], list[int]]:
    """The teacher-forced input at the fork and each arm's token there, under ``tok``.

    The forward response along arm a (``> s a1 ...``, or ``> s = v0 , a1 = ...``) is encoded after
    the prompt as in training (:func:`~markovfork.llm_bridge.tokenizer.encode_example`) for every
    arm; the fork position is the first token at which these encodings differ. Returns the ids up
    to it (prompt, mode token, source and whatever tokens the arms share, e.g. a separate space)
    and arm a's id at it. Arms whose tokens there coincide are a ``ValueError``."""
    prompt = prompt_text(p)
    seqs = [encode_example(tok, prompt, response_text(replace(p, target_arm=a), "forward")).input_ids
            for a in range(len(p.arms))]
    at = 0
    shortest = min(len(s) for s in seqs)
    while at < shortest and len({s[at] for s in seqs}) == 1:
        at += 1
    arm_ids = [s[at] for s in seqs] if at < shortest else []
    if len(set(arm_ids)) != len(p.arms):
        raise ValueError(f"the tokenizer does not tell the arms {[a[0] for a in p.arms]} apart by one token")
    return seqs[0][:at], arm_ids


def length_budget(problems: Sequence[Problem], sampling: SamplingConfig,
                  tok: PreTrainedTokenizerFast | None = None) -> int:
    """Tokens sampled per response ([EOS] included): ``sampling.max_new_tokens``, or by default the
    longest correct forward / reverse / rationale response + 4, in words (word-level, or no
    ``tok``) or in ``tok``'s tokens (a backtracking response is longer: give such runs an
    explicit budget, the same for every compared run)."""
    if sampling.max_new_tokens:
        return sampling.max_new_tokens
    if tok is None or is_word_level(tok):
        longest = max(len(response_text(p, f).split()) for p in problems for f in ("forward", "reverse", "rationale"))
    else:
        longest = max(len(e.input_ids) - e.prompt_len - 1 for e in (
            encode_example(tok, prompt_text(p), response_text(p, f)) for p in problems
            for f in ("forward", "reverse", "rationale")))
    return longest + 4


@torch.no_grad()
def fork_probabilities(model: torch.nn.Module, tok: PreTrainedTokenizerFast, problems: Sequence[Problem],
                       *, device: torch.device, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced next-token probabilities of each arm's first token at the fork position
    (:func:`fork_tokens`): renormalised (P, arms), and the raw mass on the arm tokens (P,)."""
    model.eval().to(device)
    forks = [fork_tokens(tok, p) for p in problems]
    encoded = [ids for ids, _ in forks]
    arm_ids = np.array([arms for _, arms in forks])  # (P, arms)
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded):
        by_len.setdefault(len(ids), []).append(i)
    raw = np.zeros(arm_ids.shape, dtype=np.float64)
    for members in by_len.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            ids = torch.tensor([encoded[i] for i in chunk], device=device)  # (B, T)
            with autocast(device):
                # the last position's logits only: all of them would be B x T x V (25 GB in bf16 for 512
                # prompts of 165 tokens under a 152k vocabulary)
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                               **keep_logits(model, 1)).logits[:, -1]  # (B, V)
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
    max_new = length_budget(problems, sampling, tok)
    stats: dict = {}
    responses = sample_responses(model, tok, [prompt_text(p) for p in problems], n, sampling,
                                 max_new_tokens=max_new, seed=seed, device=device, batch_sequences=batch_sequences,
                                 stats=stats)
    correct = np.array([sum(grade(p, r) for r in rs) for p, rs in zip(problems, responses)], dtype=np.int64)
    first = [r.split()[:1] for rs in responses for r in rs]
    forward_share = sum(f == [">"] for f in first) / len(first)
    choices = [(forward_arm_choice(p, r), p.target_arm) for p, rs in zip(problems, responses) for r in rs]
    taken = [c == t for c, t in choices if c is not None]
    sampled_acc = float(np.mean(taken)) if taken else float("nan")
    flat = [r for rs in responses for r in rs]
    q, mass = fork_probabilities(model, tok, problems, device=device)
    return EvalResult(
        n_samples=n,
        correct=correct,
        fork_probs=q,
        target_arm=np.array([p.target_arm for p in problems], dtype=np.int64),
        arm_mass=mass,
        forward_share=float(forward_share),
        sampled_fork_accuracy=sampled_acc,
        backtrack_share=float(np.mean([branch_count(r) > 0 for r in flat])),
        mean_response_words=float(np.mean([len(r.split()) for r in flat])),
        sampling_seconds=stats["seconds"],
        generated_tokens=stats["tokens"],
        responses=responses if keep_responses else None,
    )
