"""Branch-heavy chain of thought: the ``backtrack`` format and the branch-heavy SFT mix (no torch).

arXiv 2604.01702 (RESEARCH.md §2, §5 item 6): SFT on divergent trajectories (enter a branch,
abandon it, take another) lowers the training loss and hurts results; filtering out the
trajectories that branch most restores them. The path-star version:

========== =============================================== =========================================
format     path                                            arith
========== =============================================== =========================================
backtrack  ``> s w1 ... wg ! > s a1 ... t``                ``> s = v0 , w1 = x1 , ... wg = xg ! > s = v0 , ... # vT``
========== =============================================== =========================================

The response walks ``g`` nodes (1 <= g <= depth) into a wrong arm ``w``, abandons it with the
backtrack token ``!``, and then answers exactly as the forward format does. Grading is
:func:`markovfork.llm_bridge.tasks.grade` unchanged: it reads the segment after the last ``>`` (the
last ``#`` for arith), i.e. the answer after the last backtrack; a response that is cut off by the
length budget before it reaches the target is wrong. :func:`~markovfork.llm_bridge.tasks.forward_arm_choice`
reads the last forward segment, so it gives the arm of the final answer.

The backtrack token is *not* part of :func:`~markovfork.llm_bridge.tasks.vocabulary` (so the
tokenizers of every other run stay as they were): :func:`backtrack_vocabulary` appends it after
the task's words, and a base model trained without it gets one more embedding row at SFT
(:func:`markovfork.llm_bridge.model.extend_vocabulary`).

Branch-heavy mix: each forward trajectory becomes a backtrack trajectory with probability
``branch_rate`` (wrong arm uniform over the other arms, g uniform in 1..depth), independently;
its branch count (number of ``!``) is 1, a convergent one's 0. ``filter_share`` then drops
``round(filter_share * N)`` trajectories, the most-branching first, ties broken by a seeded
permutation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from markovfork.plumbing import checks
from markovfork.llm_bridge.tasks import Example, Problem, TaskSpec, _forward_words, vocabulary

__all__ = ["BACKTRACK", "backtrack_vocabulary", "backtrack_response", "branch_count", "branch_mix",
           "filter_most_branching", "longest_backtrack"]

BACKTRACK = "!"  # the explicit backtrack token: abandon the arm being walked, restart at the source


def backtrack_vocabulary(spec: TaskSpec) -> list[str]:
    """The task's words followed by the backtrack token (ids of the other words unchanged)."""
    return vocabulary(spec) + [BACKTRACK]


def backtrack_response(p: Problem, wrong_arm: int, g: int) -> str:
    """Enter ``wrong_arm`` for ``g`` nodes, backtrack, then the forward answer:
    ``forward(wrong_arm)[: 2 + g] + [!] + forward(target_arm)`` (path; arith cuts after node g's value)."""
    if wrong_arm == p.target_arm or not 0 <= wrong_arm < len(p.arms):
        raise ValueError(f"wrong_arm must be an arm other than the target {p.target_arm}, got {wrong_arm}")
    depth = len(p.arms[wrong_arm])
    if not 1 <= g <= depth:
        raise ValueError(f"g must be in 1..{depth}, got {g}")
    wrong = _forward_words(p, wrong_arm)
    prefix = wrong[:2 + g] if p.answer == "path" else wrong[:4 + 4 * g]  # "> s = v0" then ", w = x" per node
    return " ".join(prefix + [BACKTRACK] + _forward_words(p, p.target_arm))


def branch_count(response: str) -> int:
    """Number of backtracks (``!`` tokens) in a response."""
    return response.split().count(BACKTRACK)


def longest_backtrack(spec: TaskSpec) -> int:
    """Words in the longest backtrack response of ``spec`` (g = depth)."""
    from markovfork.llm_bridge.tasks import sample_problem

    p = sample_problem(spec, np.random.default_rng(0))
    return len(backtrack_response(p, (p.target_arm + 1) % spec.arms, spec.depth).split())


def branch_mix(examples: Sequence[Example], branch_rate: float, seed: int) -> list[Example]:
    """Each ``forward`` example becomes a ``backtrack`` one with probability ``branch_rate``
    (wrong arm uniform over the non-target arms, g uniform in 1..depth); others pass unchanged.
    The three draws per forward example come from one generator seeded with ``seed``, in order."""
    checks.real("branch_rate", branch_rate, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    out = []
    for e in examples:
        if e.format != "forward":
            out.append(e)
            continue
        p = e.problem
        branch = rng.random() < branch_rate
        other = int(rng.integers(len(p.arms) - 1))
        g = int(rng.integers(1, len(p.arms[0]) + 1))
        if branch:
            wrong = other + (other >= p.target_arm)  # uniform over the arms != target
            out.append(Example(p, e.prompt, backtrack_response(p, wrong, g), "backtrack"))
        else:
            out.append(e)
    return out


def filter_most_branching(examples: Sequence[Example], share: float, seed: int) -> list[Example]:
    """Drop ``round(share * N)`` examples, those with the most backtracks first; among equal
    counts the order of a permutation seeded with ``seed`` decides. The rest keep their order."""
    checks.real("filter_share", share, 0.0, 1.0, high_open=True)
    n = len(examples)
    n_drop = int(round(share * n))
    tie = np.random.default_rng(seed).permutation(n)
    counts = np.array([branch_count(e.response) for e in examples], dtype=np.int64)
    ranked = np.lexsort((tie, -counts))  # most branches first, then the permutation
    dropped = set(ranked[:n_drop].tolist())
    return [e for i, e in enumerate(examples) if i not in dropped]
