"""Spread-first-decision sampling: the n samples of a problem split over the top children of one node.

Settings ``Spread(m, at, min_p)``. For problem x the *spread nodes* S_x are the nodes u, reached
from the start with positive probability, that are of the kind ``at`` and have no node of that
kind strictly between the start and u (the first such node on every path; S_x is an antichain):

* ``"first"``: u has more than one child of non-zero (decoded) step probability; the path
  from the start to the first such node is deterministic, so every sample reaches the same u;
* ``"fork"``: u is a decision fork (:func:`markovfork.sft.evaluate.decision_forks`);
* ``"depth"`` (or an integer ``at = d``): u lies d steps below the start and has children.

At u the children are ranked by decoded step probability (stable: ties keep child order); the
top ``m`` with probability >= ``min_p`` * (top probability) qualify, m'_u of them. Sample j
(j = 0..n-1) walks with the policy; at the first spread node u it reaches it takes the child of
rank j mod m'_u, then continues with the policy. A sample that reaches no spread node is an
ordinary policy sample. This is the bridge's ``SpreadFirst`` (a fixed token position, each
sample's own row) on the tree; at ``at = 0`` it is its ``spread_position = 0``.

Samples with the same j mod L_x, L_x = lcm of m'_u over u in S_x, follow the same rule: problem
x has S_x = min(L_x, n) strata, stratum r holding n_r = ceil((n - r) / S_x) samples whose step
rows at the spread nodes are one-hot on child c_u[r mod m'_u]. With q_r its success probability,
the exact pass@k (a uniformly random k-subset of the n samples holds a success) is

    pass@k = 1 - sum_{k_1+..+k_S = k} [prod_r C(n_r, k_r) / C(n, k)] prod_r (1 - q_r)^{k_r},

for k = n ``1 - prod_r (1 - q_r)^{n_r}``; the usual estimator on the pooled count is unbiased
for it (``docs/model.md``), so :func:`markovfork.metrics.estimators.pass_at_k` scores sampled strata.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.plumbing.config_reader import check_fields
from markovfork.engines.exact import reach_probability, success_probability

__all__ = [
    "AT_KINDS", "Spread", "Strata", "spread_nodes", "spread_nodes_reference", "strata",
    "stratified_pass_at_k", "stratified_pass_at_k_reference", "spread_success", "spread_pass_at_k",
    "spread_leaves",
]

AT_KINDS = ("first", "fork", "depth")


@dataclass(frozen=True)
class Spread:
    """Spread-first-decision sampling settings (``m = 0``: off); ``at`` an integer d means
    ``at = "depth", depth = d``."""

    m: int = 0  # children the samples are spread over (0: off)
    at: str = "first"  # "first" | "fork" | "depth"
    min_p: float = 0.01  # a child qualifies with probability >= min_p * (top probability)
    depth: int = 0  # at = "depth": steps below the problem's start

    def __post_init__(self) -> None:
        if checks.is_integer(self.at):
            object.__setattr__(self, "depth", int(self.at))
            object.__setattr__(self, "at", "depth")
        check_fields(self)
        checks.integer("spread m", self.m, 0)
        if self.at not in AT_KINDS:
            raise ValueError(f"spread at must be 'first', 'fork', 'depth' or a depth >= 0, got {self.at!r}")
        checks.real("spread min_p", self.min_p, 0.0, 1.0)
        checks.integer("spread depth", self.depth, 0)

    @property
    def active(self) -> bool:
        return self.m > 0

    @staticmethod
    def parse_at(text: str) -> dict:
        """``"first"``, ``"fork"`` or a depth ``"3"`` as the fields ``at`` (and ``depth``)."""
        text = text.strip()
        if text in ("first", "fork"):
            return {"at": text}
        if text.isdigit():
            return {"at": "depth", "depth": int(text)}
        raise ValueError(f"spread at must be first, fork or a depth >= 0, got {text!r}")


@numba.njit(cache=True)
def _first_on_path_kernel(parent, kind, out):
    """out[p, v] = kind[p, v] and no ancestor w of v has kind[p, w] (parents have smaller ids)."""
    blocked = np.zeros(parent.shape[0], dtype=np.bool_)
    for p in range(kind.shape[0]):
        blocked[0] = False
        out[p, 0] = kind[p, 0]
        for v in range(1, parent.shape[0]):
            u = parent[v]
            blocked[v] = blocked[u] or kind[p, u]
            out[p, v] = kind[p, v] and not blocked[v]


def _kind_mask(tree, probs: np.ndarray, start: np.ndarray, spread: Spread) -> np.ndarray:
    """(P, N) nodes of the kind ``spread.at`` reached from the start with positive probability."""
    reach = reach_probability(tree, probs, start) > 0
    if spread.at == "fork":
        from markovfork.sft.evaluate import decision_forks

        kind = np.zeros(tree.n_nodes, dtype=bool)
        kind[decision_forks(tree)] = True
        return reach & kind[None, :]
    if spread.at == "depth":
        at_depth = tree.depth[None, :] == tree.depth[start][:, None] + spread.depth
        return reach & at_depth & (tree.n_children > 0)[None, :]
    live = np.zeros(probs.shape, dtype=np.int64)  # children with non-zero step probability
    np.add.at(live.T, tree.parent[1:], (probs[:, 1:] > 0).T)
    return reach & (live >= 2)


def spread_nodes(tree, probs, start, spread: Spread) -> np.ndarray:
    """(P, N) bool: the spread nodes S_x of each problem (module docstring)."""
    probs = checks.probability_rows(probs, tree.n_nodes)
    start = checks.start_ids(start, tree.n_nodes, probs.shape[0])
    kind = _kind_mask(tree, probs, start, spread)
    out = np.empty_like(kind)
    _first_on_path_kernel(tree.parent, kind, out)
    return out


def spread_nodes_reference(tree, probs, start, spread: Spread) -> np.ndarray:
    """Reference: walk up from every node of the kind to the start, looking for another."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    kind = _kind_mask(tree, probs, np.asarray(start, dtype=np.int64), spread)
    out = np.zeros_like(kind)
    for p, v in zip(*np.nonzero(kind)):
        w, first = tree.parent[v], True
        while w >= 0:
            first &= not kind[p, w]
            w = tree.parent[w]
        out[p, v] = first
    return out


class Strata(NamedTuple):
    """The strata of n samples per problem, problem-major: problem x owns rows offset[x] ..
    offset[x + 1] - 1, sample j of x lies in row offset[x] + j mod size[x]."""

    problem: np.ndarray  # (R,) int64: the problem of each stratum
    count: np.ndarray  # (R,) int64: samples in the stratum, n_r
    probs: np.ndarray  # (R, N) step probabilities, one-hot at the spread nodes
    start: np.ndarray  # (R,) int64: start node (the problem's)
    offset: np.ndarray  # (P + 1,) int64: first row of each problem
    n_samples: int

    @property
    def size(self) -> np.ndarray:
        return np.diff(self.offset)


def strata(tree, probs, start, spread: Spread, n_samples: int) -> Strata:
    """The strata of ``n_samples`` spread samples per problem (module docstring)."""
    n = checks.integer("n_samples", n_samples, 1)
    probs = checks.probability_rows(probs, tree.n_nodes)
    start = checks.start_ids(start, tree.n_nodes, probs.shape[0])
    n_problems = probs.shape[0]
    pairs = np.argwhere(spread_nodes(tree, probs, start, spread)) if spread.active else np.empty((0, 2), int)
    chosen, period = [], [1] * n_problems
    for p, u in pairs:
        kids = np.arange(tree.child_start[u], tree.child_start[u + 1])
        q = probs[p, kids]
        order = np.argsort(-q, kind="stable")[: spread.m]
        top = q[order]
        chosen.append(kids[order[top >= spread.min_p * top[0]]])  # a prefix: top is sorted
        period[p] = min(math.lcm(period[p], len(chosen[-1])), n)  # once >= n, every sample is its own
    size = np.array(period, dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(size)])
    problem = np.repeat(np.arange(n_problems), size)
    r = np.arange(offset[-1]) - offset[problem]
    checks.fits_in_memory("n_samples", n, 8 * offset[-1] * tree.n_nodes, "the strata's step probabilities")
    rows = probs[problem]
    for (p, u), kids in zip(pairs, chosen):
        sel = np.arange(offset[p], offset[p + 1])
        rows[sel, tree.child_start[u]:tree.child_start[u + 1]] = 0.0
        rows[sel, kids[(sel - offset[p]) % len(kids)]] = 1.0
    count = (n - r + size[problem] - 1) // size[problem]
    return Strata(problem, count, rows, start[problem], offset, n)


def _padded(s: Strata, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, S_max) counts and values per problem and stratum (count 0 beyond a problem's strata)."""
    width = int(s.size.max())
    col = np.arange(len(s.problem)) - s.offset[s.problem]
    counts = np.zeros((len(s.offset) - 1, width), dtype=np.int64)
    vals = np.zeros((len(s.offset) - 1, width))
    counts[s.problem, col] = s.count
    vals[s.problem, col] = values
    return counts, vals


def stratified_pass_at_k(counts, success, k) -> np.ndarray:
    """(P, K) exact pass@k of n = sum_r counts[x, r] samples, counts[x, r] of them succeeding
    with probability success[x, r] (module docstring). Per problem, with f_i the failure
    probability of sample i (strata in order), the mean over k-subsets of prod f,
    A_i(k) = e_k(f_1..f_i) / C(i, k), obeys the convex recursion

        A_i(k) = (i - k) / i * A_{i-1}(k) + k / i * f_i A_{i-1}(k - 1),   A_0(0) = 1,

    and pass@k = 1 - A_n(k): no cancellation, every entry stays in [0, 1]."""
    counts = checks.array("counts", np.atleast_2d(counts), np.int64, 2)
    success = checks.array("success", np.atleast_2d(success), np.float64, 2)
    if counts.shape != success.shape or np.any(counts < 0):
        raise ValueError(f"counts must be non-negative and match success's shape {success.shape}, got {counts.shape}")
    if np.any(~((success >= -1e-12) & (success <= 1 + 1e-12))):
        raise ValueError("success probabilities must lie in [0, 1]")
    n = counts.sum(axis=1)
    if np.any(n != n[0]) or n[0] < 1:
        raise ValueError(f"every problem needs the same n >= 1 samples, got {sorted(set(n.tolist()))}")
    ks = checks.k_values(k, n=int(n[0]))
    fail = np.clip(1.0 - success, 0.0, 1.0)
    kk = np.arange(int(ks.max()) + 1, dtype=np.float64)[None, :]
    a = np.zeros((counts.shape[0], kk.shape[1]))
    a[:, 0] = 1.0
    i = np.zeros(counts.shape[0])
    for col in range(counts.shape[1]):
        for t in range(int(counts[:, col].max(initial=0))):
            act = counts[:, col] > t
            i_new = i + act
            den = np.where(act, i_new, 1.0)[:, None]
            shifted = np.concatenate([np.zeros((a.shape[0], 1)), a[:, :-1]], axis=1)
            step = np.maximum(i_new[:, None] - kk, 0.0) / den * a + kk / den * fail[:, col, None] * shifted
            a = np.where(act[:, None], step, a)
            i = i_new
    return 1.0 - a[:, ks]


def stratified_pass_at_k_reference(counts, success, k) -> np.ndarray:
    """Brute force: the sum over every (k_1, .., k_S) with sum k in the formula, per problem."""
    counts, success = np.atleast_2d(counts), np.atleast_2d(success)
    out = np.empty((counts.shape[0], len(np.atleast_1d(k))))
    for x in range(counts.shape[0]):
        n = int(counts[x].sum())
        for col, kv in enumerate(np.atleast_1d(k)):
            total = 0.0
            for ks in itertools.product(*(range(int(c) + 1) for c in counts[x])):
                if sum(ks) == kv:
                    total += math.prod(math.comb(int(c), kj) * (1.0 - q) ** kj for c, kj, q in zip(counts[x], ks, success[x]))
            out[x, col] = 1.0 - total / math.comb(n, int(kv))
    return out


def spread_success(tree, probs, problems, spread: Spread, n_samples: int) -> tuple[Strata, np.ndarray]:
    """The strata and their exact success probabilities q_r (:func:`markovfork.engines.exact.success_probability`
    under each stratum's rows)."""
    problems.check_tree(tree)
    s = strata(tree, probs, problems.start, spread, n_samples)
    return s, success_probability(tree, s.probs, problems.correct[s.problem], s.start)


def spread_pass_at_k(tree, probs, problems, spread: Spread, n_samples: int, ks) -> np.ndarray:
    """(P, K) exact pass@k of ``n_samples`` spread samples per problem."""
    s, q = spread_success(tree, probs, problems, spread, n_samples)
    return stratified_pass_at_k(*_padded(s, q), ks)


def spread_leaves(tree, probs, start, spread: Spread, n_samples: int, seed: int) -> np.ndarray:
    """(P, n) leaves of spread samples: column j is sample j. One
    :func:`markovfork.engines.sampled.sample_leaves` call per distinct stratum size, each on its own
    stream ``child_seed(seed, "spread", size)``."""
    from markovfork.engines.sampled import sample_leaves
    from markovfork.plumbing.seeds import child_seed

    s = strata(tree, probs, start, spread, n_samples)
    out = np.empty((len(s.offset) - 1, s.n_samples), dtype=np.int64)
    col = np.arange(len(s.problem)) - s.offset[s.problem]
    size = s.size[s.problem]
    for g in np.unique(s.count):
        rows = np.flatnonzero(s.count == g)
        leaves = sample_leaves(tree, s.probs[rows], s.start[rows], int(g), child_seed(seed, "spread", int(g)))
        cols = col[rows, None] + size[rows, None] * np.arange(g)[None, :]
        out[s.problem[rows, None], cols] = leaves
    return out
