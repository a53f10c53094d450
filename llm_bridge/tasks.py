"""The path-star task as text: problems, chain-of-thought formats, SFT mixes and JSONL I/O.

This module imports no torch, so data can be generated, inspected and exported without it.

A *path-star* problem has a source node and ``arms`` chains of ``depth`` nodes hanging off it
(Bachmann & Nagarajan 2024). Every node is a random single letter. The prompt lists the edges
in a shuffled order, then names the source and the target (the leaf of one arm); nothing in the
prompt's ordering reveals which arm reaches the target. Two answer formats:

``path`` (plain path)
    edge ``u v ,``; prompt ``<edges> | s t ?``; the answer is the path from s to t.
``arith`` (ArithChain)
    edge ``v = u + c ,`` (constant c in 1..max_constant); prompt ``<edges> | s = v0 ; t ?``;
    the answer is the value of t, after ``#``.

Chain-of-thought formats (the response; the first token names the mode):

========== ========================================= ==========================================
format     path                                      arith
========== ========================================= ==========================================
forward    ``> s a1 a2 ... t``                       ``> s = v0 , a1 = v1 , ... , t = vT # vT``
reverse    ``< t ... a2 a1 s``                       ``< t = aD-1 + c = ... = s + S = vT # vT``
rationale  ``? t ... a1 s > s a1 ... t``             ``? t ... a1 s > s = v0 , ... # vT``
========== ========================================= ==========================================

*forward* must choose the arm at the source with nothing on its left that tells which arm leads
to the target (the decision point). *reverse* walks back from the target along unique parents:
no decision point. *rationale* first names the chain back from the target, which makes the
forward step at the source decipherable.

The base model is trained on *undirected derivations*: forward walks along a uniformly random
arm and reverse walks from a uniformly random leaf, graded like any answer (right only when the
walk happens to involve the target). It learns both look-ups but not which arm to take.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from markovfork.plumbing.config_reader import check_fields
from markovfork.plumbing.io import atomic_path

__all__ = [
    "ANSWER_FORMATS",
    "COT_FORMATS",
    "LETTERS",
    "SYMBOLS",
    "Problem",
    "Example",
    "TaskSpec",
    "vocabulary",
    "sample_problem",
    "generate_problems",
    "split_problems",
    "prompt_text",
    "response_text",
    "undirected_derivation",
    "grade",
    "forward_arm_choice",
    "sft_mix",
    "write_jsonl",
    "read_jsonl",
]

ANSWER_FORMATS = ("path", "arith")
COT_FORMATS = ("forward", "reverse", "rationale")
LETTERS = tuple(string.ascii_lowercase)  # node names
SYMBOLS = (",", "|", "?", ";", "=", "+", "#", ">", "<")  # punctuation tokens of the task language
MODE_TOKENS = {"forward": ">", "reverse": "<", "rationale": "?"}  # first response token per format


@dataclass(frozen=True)
class TaskSpec:
    """Shape of the task distribution."""

    arms: int = 2  # arms hanging off the source (the fork's branching factor)
    depth: int = 5  # nodes per arm; the target is the leaf of one arm
    answer: str = "path"  # "path" (plain path) or "arith" (ArithChain)
    max_constant: int = 20  # arith: edge constants are drawn from 1..max_constant
    max_source_value: int = 20  # arith: the source value is drawn from 0..max_source_value

    def __post_init__(self) -> None:
        check_fields(self)
        if self.arms < 2:
            raise ValueError(f"arms must be >= 2, got {self.arms}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if self.answer not in ANSWER_FORMATS:
            raise ValueError(f"answer must be one of {ANSWER_FORMATS}, got {self.answer!r}")
        if self.arms * self.depth + 1 > len(LETTERS):
            raise ValueError(
                f"arms * depth + 1 must be <= {len(LETTERS)} (one letter per node), "
                f"got {self.arms} * {self.depth} + 1 = {self.arms * self.depth + 1}"
            )
        if self.max_constant < 1:
            raise ValueError(f"max_constant must be >= 1, got {self.max_constant}")
        if self.max_source_value < 0:
            raise ValueError(f"max_source_value must be >= 0, got {self.max_source_value}")

    @property
    def max_value(self) -> int:
        """Largest value any node can take in the arith format."""
        return self.max_source_value + self.depth * self.max_constant


def vocabulary(spec: TaskSpec) -> list[str]:
    """Every word the task language uses (letters, symbols, and integers for arith), in a fixed order."""
    words = list(LETTERS) + list(SYMBOLS)
    if spec.answer == "arith":
        words += [str(v) for v in range(spec.max_value + 1)]
    return words


@dataclass(frozen=True)
class Problem:
    """One path-star problem. ``arms[i]`` lists arm i's nodes from the source's child to its leaf."""

    answer: str  # "path" or "arith"
    source: str  # the source node's name
    arms: tuple[tuple[str, ...], ...]  # (arms, depth) node names
    target_arm: int  # index of the arm whose leaf is the target
    edge_order: tuple[tuple[int, int], ...]  # presentation order of the edges as (arm, step) pairs
    constants: tuple[tuple[int, ...], ...]  # (arms, depth) edge constants (arith; zeros for path)
    source_value: int  # value of the source (arith; 0 for path)

    @property
    def target(self) -> str:
        return self.arms[self.target_arm][-1]

    @property
    def path(self) -> tuple[str, ...]:
        """The correct path from the source to the target."""
        return (self.source,) + self.arms[self.target_arm]

    def values(self, arm: int) -> tuple[int, ...]:
        """Values along ``arm`` (source first): cumulative sums of the constants."""
        return tuple(int(v) for v in np.cumsum((self.source_value,) + self.constants[arm]))

    @property
    def target_value(self) -> int:
        return self.values(self.target_arm)[-1]

    def parent(self, arm: int, step: int) -> str:
        return self.source if step == 0 else self.arms[arm][step - 1]

    def key(self) -> tuple:
        """Identity for de-duplication: the graph, constants and question, not the edge order."""
        return (self.answer, self.source, tuple(sorted(self.arms)), self.target, self.source_value,
                tuple(sorted(zip(self.arms, self.constants))))

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Problem":
        return Problem(
            answer=d["answer"],
            source=d["source"],
            arms=tuple(tuple(a) for a in d["arms"]),
            target_arm=int(d["target_arm"]),
            edge_order=tuple((int(a), int(s)) for a, s in d["edge_order"]),
            constants=tuple(tuple(int(c) for c in a) for a in d["constants"]),
            source_value=int(d["source_value"]),
        )


@dataclass(frozen=True)
class Example:
    """One training or test sequence: the prompt, the response, and which CoT format it uses."""

    problem: Problem
    prompt: str  # prompt text (words separated by single spaces)
    response: str  # response text, without the end-of-sequence token
    format: str  # "forward" | "reverse" | "rationale" | "walk-forward" | "walk-reverse"


def sample_problem(spec: TaskSpec, rng: np.random.Generator) -> Problem:
    """Draw one problem: random distinct letters, a random target arm, shuffled edge order."""
    n_nodes = spec.arms * spec.depth + 1
    names = rng.permutation(len(LETTERS))[:n_nodes]
    letters = [LETTERS[i] for i in names]
    source = letters[0]
    arms = tuple(tuple(letters[1 + a * spec.depth: 1 + (a + 1) * spec.depth]) for a in range(spec.arms))
    target_arm = int(rng.integers(spec.arms))
    order = rng.permutation(spec.arms * spec.depth)
    edge_order = tuple((int(i) // spec.depth, int(i) % spec.depth) for i in order)
    if spec.answer == "arith":
        constants = tuple(tuple(int(c) for c in rng.integers(1, spec.max_constant + 1, size=spec.depth))
                          for _ in range(spec.arms))
        source_value = int(rng.integers(0, spec.max_source_value + 1))
    else:
        constants = tuple((0,) * spec.depth for _ in range(spec.arms))
        source_value = 0
    return Problem(spec.answer, source, arms, target_arm, edge_order, constants, source_value)


def generate_problems(spec: TaskSpec, n: int, seed: int, exclude: Iterable[tuple] = ()) -> list[Problem]:
    """``n`` distinct problems (by :meth:`Problem.key`) drawn with ``seed``, none whose key is in ``exclude``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    seen = set(exclude)
    out: list[Problem] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(f"could not draw {n} distinct problems for {spec}; the space is too small")
        p = sample_problem(spec, rng)
        k = p.key()
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def split_problems(spec: TaskSpec, n_train: int, n_test: int, seed: int) -> tuple[list[Problem], list[Problem]]:
    """Disjoint train and test sets: the test set is drawn first, then training problems avoid it."""
    test = generate_problems(spec, n_test, seed=_derive_seed(seed, "test"))
    train = generate_problems(spec, n_train, seed=_derive_seed(seed, "train"), exclude={p.key() for p in test})
    return train, test


def _derive_seed(seed: int, label: str) -> int:
    """A child seed for a named stream; stable across runs and Python versions."""
    return int(np.random.SeedSequence([seed, *label.encode()]).generate_state(1)[0])


def prompt_text(p: Problem) -> str:
    """The question: shuffled edges, then the source (and its value) and the target."""
    words: list[str] = []
    for arm, step in p.edge_order:
        u, v = p.parent(arm, step), p.arms[arm][step]
        if p.answer == "arith":
            words += [v, "=", u, "+", str(p.constants[arm][step]), ","]
        else:
            words += [u, v, ","]
    if p.answer == "arith":
        words += ["|", p.source, "=", str(p.source_value), ";", p.target, "?"]
    else:
        words += ["|", p.source, p.target, "?"]
    return " ".join(words)


def _forward_words(p: Problem, arm: int) -> list[str]:
    nodes = (p.source,) + p.arms[arm]
    if p.answer == "path":
        return [">", *nodes]
    values = p.values(arm)
    words = [">"]
    for i, (name, value) in enumerate(zip(nodes, values)):
        words += [name, "=", str(value)] + ([","] if i < len(nodes) - 1 else [])
    return words + ["#", str(values[-1])]


def _reverse_words(p: Problem, arm: int) -> list[str]:
    nodes = (p.source,) + p.arms[arm]
    if p.answer == "path":
        return ["<", *reversed(nodes)]
    # t = a_{D-1} + c_D = a_{D-2} + (c_{D-1} + c_D) = ... = s + S = v_T
    words = ["<", nodes[-1]]
    offset = 0
    for step in range(len(nodes) - 1, 0, -1):
        offset += p.constants[arm][step - 1]
        words += ["=", nodes[step - 1], "+", str(offset)]
    value = p.values(arm)[-1]
    return words + ["=", str(value), "#", str(value)]


def response_text(p: Problem, fmt: str) -> str:
    """The correct response to ``p`` in CoT format ``fmt`` (forward, reverse or rationale)."""
    if fmt == "forward":
        words = _forward_words(p, p.target_arm)
    elif fmt == "reverse":
        words = _reverse_words(p, p.target_arm)
    elif fmt == "rationale":
        words = ["?", *reversed(p.path)] + _forward_words(p, p.target_arm)
    else:
        raise ValueError(f"fmt must be one of {COT_FORMATS}, got {fmt!r}")
    return " ".join(words)


def undirected_derivation(p: Problem, rng: np.random.Generator) -> Example:
    """A base-model example: with equal odds a forward walk along a uniformly random arm or a
    reverse walk from a uniformly random leaf. Neither looks at the target."""
    arm = int(rng.integers(len(p.arms)))
    if rng.random() < 0.5:
        return Example(p, prompt_text(p), " ".join(_forward_words(p, arm)), "walk-forward")
    return Example(p, prompt_text(p), " ".join(_reverse_words(p, arm)), "walk-reverse")


def grade(p: Problem, response: str) -> bool:
    """Whether ``response`` answers ``p``: the exact path (path) or the exact target value (arith).

    path: the words after the last ``>`` must be the path; a response without ``>`` that starts
    with ``<`` must list the path backwards. arith: the word after the last ``#`` must be the
    target's value. Anything else (truncated, malformed) is wrong.
    """
    words = response.split()
    if p.answer == "arith":
        if "#" not in words:
            return False
        i = len(words) - 1 - words[::-1].index("#")
        return words[i + 1:] == [str(p.target_value)]
    if ">" in words:
        i = len(words) - 1 - words[::-1].index(">")
        return tuple(words[i + 1:]) == p.path
    if words[:1] == ["<"]:
        return tuple(reversed(words[1:])) == p.path
    return False


def forward_arm_choice(p: Problem, response: str) -> int | None:
    """The arm a response takes at the source in its last forward segment, or None if it has none."""
    words = response.split()
    if ">" not in words:
        return None
    i = len(words) - 1 - words[::-1].index(">")
    # path: "> s a1 ..."; arith: "> s = v0 , a1 = ..."
    j = i + 2 if p.answer == "path" else i + 5
    if j >= len(words):
        return None
    for arm, nodes in enumerate(p.arms):
        if words[j] == nodes[0]:
            return arm
    return None


def sft_mix(problems: Sequence[Problem], rho: float, diversity: str, seed: int,
            fork_format: str = "forward") -> list[Example]:
    """SFT trajectories: a share ``rho`` in the fork format (``forward`` by default), the rest reverse.

    There are ``len(problems)`` trajectories, ``F = round(rho * N)`` of them in the fork format.
    ``diversity="data"``: N distinct problems, each shown in one format. ``diversity="problem"``:
    ``B = min(F, N - F)`` problems are shown in both formats, the rest in the majority format, so
    the share is the same but the model sees both ways of solving the same problem. At rho 0 or 1
    the two coincide. ``fork_format="rationale"`` swaps forward for the rationale format.
    """
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [0, 1], got {rho}")
    if diversity not in ("data", "problem"):
        raise ValueError(f"diversity must be 'data' or 'problem', got {diversity!r}")
    if fork_format not in ("forward", "rationale"):
        raise ValueError(f"fork_format must be 'forward' or 'rationale', got {fork_format!r}")
    n = len(problems)
    n_fork = int(round(rho * n))
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if diversity == "data":
        fmts = [fork_format] * n_fork + ["reverse"] * (n - n_fork)
        pairs = [(problems[i], f) for i, f in zip(order, fmts)]
    else:
        both = min(n_fork, n - n_fork)
        majority = fork_format if n_fork >= n - n_fork else "reverse"
        chosen = [problems[i] for i in order[: n - both]]
        pairs = [(p, fork_format) for p in chosen[:both]] + [(p, "reverse") for p in chosen[:both]]
        pairs += [(p, majority) for p in chosen[both:]]
        pairs = [pairs[i] for i in rng.permutation(len(pairs))]
    return [Example(p, prompt_text(p), response_text(p, f), f) for p, f in pairs]


def write_jsonl(examples: Iterable[Example | Problem], path: str | os.PathLike) -> Path:
    """Write problems or examples as JSON lines, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for e in examples:
            if isinstance(e, Example):
                rec = {"problem": e.problem.to_dict(), "prompt": e.prompt, "response": e.response, "format": e.format}
            elif isinstance(e, Problem):
                rec = {"problem": e.to_dict()}
            else:
                raise ValueError(f"can only write Example or Problem records, got {type(e).__name__}")
            fh.write(json.dumps(rec) + "\n")
    return path


def read_jsonl(path: str | os.PathLike) -> Iterator[Example | Problem]:
    """Read what :func:`write_jsonl` wrote: an Example per line with a prompt, else a Problem."""
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                p = Problem.from_dict(rec["problem"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a task record ({exc})") from None
            if "prompt" in rec:
                yield Example(p, rec["prompt"], rec["response"], rec["format"])
            else:
                yield p
