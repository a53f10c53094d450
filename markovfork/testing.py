"""Property tests for your own code: hypothesis strategies and exact checks of pass@k estimators.

Needs hypothesis, which the package's ``test`` extra installs (``pip install "markovfork[test]"``);
nothing else in markovfork imports this module. ``docs/testing.md`` shows a complete test.

Strategies (draw them with ``@given``): :func:`trees` (random small reasoning trees),
:func:`policies` (per-problem step probabilities over a tree), :func:`problems` (start nodes and
correct/valid leaves), :func:`tree_cases` (all three at once), :func:`count_tables` (per-problem
sample counts n and correct counts c). :func:`random_trees` and :func:`build_case` are the raw
form the package's own tests draw.

Checks for an estimator ``f(n, c, k)`` of pass@k from c correct out of n samples (scalars in,
a float out); each raises ``AssertionError`` naming the property and the offending values:

* :func:`assert_unbiased`: E_{c ~ Binomial(n, p)} f(n, c, k) = 1 - (1 - p)^k for every p and
  k <= n. The expectation is a finite sum over c (:func:`expected_estimate`), a polynomial of
  degree <= n in p, so equality at n + 1 distinct p proves it for every p;
* :func:`assert_bounded_and_monotone`: 0 <= f <= 1, non-decreasing in c and in k;
* :func:`assert_rejects_k_above_n`: k > n raises ``ValueError`` (no silent 1.0);
* :func:`assert_matches_engine`: on a tree, the mean over problems of E f(n, c_x, k) equals the
  exact engine's pass@k (``exact_pass_at_k`` of ``success_probability``);
* :func:`check_pass_at_k_estimator`: the first three for every n up to ``max_n``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as err:  # pragma: no cover - exercised by a subprocess test
    raise ImportError('markovfork.testing needs hypothesis: pip install "markovfork[test]"') from err

from markovfork.engines.exact import exact_pass_at_k, success_probability
from markovfork.model.problems import Problems
from markovfork.model.tree import DECIPHERABLE, FORK, LEAF, Tree, tree_from_children

__all__ = [
    "MAX_NODES", "MAX_PROBLEMS", "random_trees", "build_case", "trees", "policies", "problems", "TreeCase",
    "tree_cases", "CountTable", "count_tables", "expected_estimate", "assert_unbiased",
    "assert_bounded_and_monotone", "assert_rejects_k_above_n", "assert_matches_engine",
    "check_pass_at_k_estimator",
]

# Up to 9 nodes and 3 problems: every tree shape up to that size is reachable, paths are few
# enough to enumerate by hand, and each example runs in well under a millisecond.
MAX_NODES, MAX_PROBLEMS = 9, 3


def _draw_shape(draw, max_nodes):
    """children lists, kinds and easy flags of a random tree in input numbering (root 0)."""
    m = draw(st.integers(1, max_nodes))
    parent = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, m)]
    children = [[] for _ in range(m)]
    for v in range(1, m):
        children[parent[v]].append(v)
    for kids in children:  # child order independent of ids
        kids[:] = draw(st.permutations(kids))
    kind = [LEAF if not children[u] else draw(st.sampled_from([DECIPHERABLE, FORK])) for u in range(m)]
    easy = [True] + [draw(st.booleans()) for _ in range(1, m)]
    return children, kind, easy


def _draw_step_probs(draw, children, n_problems):
    """(P, m) step probabilities: weights on a coarse grid with zeros allowed (probability-0
    steps), at least one positive per node; the root's entry is 1."""
    m = len(children)
    probs = np.zeros((n_problems, m))
    probs[:, 0] = 1.0
    for p in range(n_problems):
        for u in range(m):
            if children[u]:
                w = np.array([draw(st.integers(0, 4)) for _ in children[u]], dtype=float)
                if w.sum() == 0:
                    w[0] = 1.0
                probs[p, children[u]] = w / w.sum()
    return probs


def _draw_answers(draw, children, n_problems):
    """(P, m) correct and valid leaf masks, correct implying valid."""
    m = len(children)
    correct = np.zeros((n_problems, m), dtype=bool)
    valid = np.zeros((n_problems, m), dtype=bool)
    for p in range(n_problems):
        for u in (u for u in range(m) if not children[u]):
            valid[p, u] = draw(st.booleans())
            correct[p, u] = valid[p, u] and draw(st.booleans())
    return correct, valid


@st.composite
def random_trees(draw):
    """A random tree in input numbering plus per-problem step probabilities and answers (a dict:
    children, kind, easy, probs, correct, valid, start); :func:`build_case` builds it."""
    children, kind, easy = _draw_shape(draw, MAX_NODES)
    m = len(children)
    n_problems = draw(st.integers(1, MAX_PROBLEMS))
    probs = _draw_step_probs(draw, children, n_problems)
    correct, valid = _draw_answers(draw, children, n_problems)
    start = [draw(st.integers(0, m - 1)) for _ in range(n_problems)]
    return dict(children=children, kind=kind, easy=easy, probs=probs, correct=correct, valid=valid, start=start)


def build_case(case):
    """(tree, new_id, probs, problems) in breadth-first numbering from a :func:`random_trees` case."""
    tree, new_id = tree_from_children(case["children"], case["kind"], case["probs"][0], case["easy"])
    n_problems = case["probs"].shape[0]
    probs = np.empty_like(case["probs"])
    probs[:, new_id] = case["probs"]
    correct = np.zeros_like(case["correct"])
    correct[:, new_id] = case["correct"]
    valid = np.zeros_like(case["valid"])
    valid[:, new_id] = case["valid"]
    problems = Problems(
        start=new_id[case["start"]],
        correct=correct,
        valid=valid,
        features=np.zeros((n_problems, 0)),
        ids=np.arange(n_problems),
    )
    return tree, new_id, probs, problems


def _tree_children(tree: Tree) -> list[list[int]]:
    return [tree.children(v).tolist() for v in range(tree.n_nodes)]


@st.composite
def trees(draw, max_nodes: int = MAX_NODES) -> Tree:
    """A random :class:`~markovfork.model.tree.Tree` of 1 to ``max_nodes`` nodes: any shape, random
    fork/decipherable kinds and easy flags, base step probabilities on a coarse grid (zeros
    allowed)."""
    children, kind, easy = _draw_shape(draw, max_nodes)
    edge_prob = _draw_step_probs(draw, children, 1)[0]
    return tree_from_children(children, kind, edge_prob, easy)[0]


def policies(tree: Tree, n_problems: int = 1):
    """Strategy: (n_problems, N) step probabilities for ``tree`` (``probs[x, v]`` = probability
    of the step ``parent[v] -> v`` for problem x; each node's children sum to 1; zeros allowed)."""
    children = _tree_children(tree)

    @st.composite
    def draw_probs(draw):
        return _draw_step_probs(draw, children, n_problems)

    return draw_probs()


def problems(tree: Tree, n_problems: int = 1):
    """Strategy: :class:`~markovfork.model.problems.Problems` over ``tree``: random start nodes and
    correct/valid leaves (correct implies valid; no features)."""
    children = _tree_children(tree)

    @st.composite
    def draw_problems(draw):
        correct, valid = _draw_answers(draw, children, n_problems)
        start = [draw(st.integers(0, tree.n_nodes - 1)) for _ in range(n_problems)]
        return Problems(start=start, correct=correct, valid=valid, features=np.zeros((n_problems, 0)),
                        ids=np.arange(n_problems))

    return draw_problems()


class TreeCase(NamedTuple):
    tree: Tree
    probs: np.ndarray  # (P, N) step probabilities, one row per problem
    problems: Problems


@st.composite
def tree_cases(draw, max_nodes: int = MAX_NODES, max_problems: int = MAX_PROBLEMS) -> TreeCase:
    """A :class:`TreeCase`: a :func:`trees` tree with :func:`policies` and :func:`problems` over it."""
    tree = draw(trees(max_nodes))
    n_problems = draw(st.integers(1, max_problems))
    return TreeCase(tree, draw(policies(tree, n_problems)), draw(problems(tree, n_problems)))


class CountTable(NamedTuple):
    n: np.ndarray  # (P,) int64 samples drawn per problem, >= 1
    c: np.ndarray  # (P,) int64 correct samples per problem, 0 <= c <= n


@st.composite
def count_tables(draw, max_problems: int = 20, max_n: int = 64, same_n: bool = False) -> CountTable:
    """A :class:`CountTable` of 1 to ``max_problems`` problems, each with 1 to ``max_n`` samples
    (one n for all when ``same_n``); c is drawn uniformly in 0..n or at the edges 0 and n."""
    n_problems = draw(st.integers(1, max_problems))
    if same_n:
        n = [draw(st.integers(1, max_n))] * n_problems
    else:
        n = [draw(st.integers(1, max_n)) for _ in range(n_problems)]
    c = [draw(st.one_of(st.integers(0, ni), st.sampled_from([0, ni]))) for ni in n]
    return CountTable(np.array(n, dtype=np.int64), np.array(c, dtype=np.int64))


def _table(estimator, n: int) -> np.ndarray:
    """(n + 1, n) values f(n, c, k) for c = 0..n, k = 1..n."""
    return np.array([[float(estimator(n, c, k)) for k in range(1, n + 1)] for c in range(n + 1)])


def _binomial_pmf(n: int, p) -> np.ndarray:
    """(len(p), n + 1) P(c | n, p) for c = 0..n."""
    p = np.atleast_1d(np.asarray(p, dtype=np.float64))[:, None]
    c = np.arange(n + 1)[None, :]
    choose = np.array([math.comb(n, ci) for ci in range(n + 1)], dtype=np.float64)[None, :]
    return choose * p**c * (1.0 - p) ** (n - c)


def expected_estimate(estimator, n: int, k: int, p):
    """E_{c ~ Binomial(n, p)} f(n, c, k) = sum_{c=0}^{n} C(n, c) p^c (1-p)^(n-c) f(n, c, k),
    exactly (a finite sum), for a success rate p or an array of them."""
    values = np.array([float(estimator(n, c, k)) for c in range(n + 1)])
    out = _binomial_pmf(n, p) @ values
    return float(out[0]) if np.ndim(p) == 0 else out


def _test_points(n: int) -> np.ndarray:
    """n + 1 distinct Chebyshev points in (0, 1) plus the ends 0 and 1."""
    j = np.arange(n + 1)
    return np.concatenate([[0.0, 1.0], (1.0 - np.cos(np.pi * (2 * j + 1) / (2 * (n + 1)))) / 2.0])


def assert_unbiased(estimator, n: int, *, tol: float = 1e-9) -> None:
    """E_{c ~ Binomial(n, p)} f(n, c, k) = 1 - (1 - p)^k within ``tol`` for every k <= n and every
    p: both sides are polynomials of degree <= n in p, checked at n + 3 distinct points."""
    table = _table(estimator, n)
    p = _test_points(n)
    expected = _binomial_pmf(n, p) @ table  # (points, n)
    exact = 1.0 - (1.0 - p[:, None]) ** np.arange(1, n + 1)[None, :]
    err = np.abs(expected - exact)
    if not np.all(err <= tol):  # NaN fails too
        i, j = np.unravel_index(np.nanargmax(np.where(np.isnan(err), np.inf, err)), err.shape)
        raise AssertionError(f"biased: E[f(n={n}, c, k={j + 1})] = {expected[i, j]:.12g} at p = {p[i]:.6g}, "
                             f"but pass@k = 1 - (1-p)^k = {exact[i, j]:.12g}")


def assert_bounded_and_monotone(estimator, n: int, *, tol: float = 1e-12) -> None:
    """0 <= f(n, c, k) <= 1, f non-decreasing in c (fixed k) and in k (fixed c), for k <= n."""
    table = _table(estimator, n)
    bad = ~((table >= 0.0) & (table <= 1.0))
    if bad.any():
        c, k = np.argwhere(bad)[0]
        raise AssertionError(f"out of [0, 1]: f(n={n}, c={c}, k={k + 1}) = {float(table[c, k])!r}")
    for axis, what in ((0, "c"), (1, "k")):
        drops = np.diff(table, axis=axis) < -tol
        if drops.any():
            c, k = np.argwhere(drops)[0]
            c2, k2 = (c + 1, k) if axis == 0 else (c, k + 1)
            raise AssertionError(f"not monotone in {what}: f(n={n}, c={c}, k={k + 1}) = {table[c, k]:.12g} > "
                                 f"f(n={n}, c={c2}, k={k2 + 1}) = {table[c2, k2]:.12g}")


def assert_rejects_k_above_n(estimator, n: int) -> None:
    """f(n, c, n + 1) raises ``ValueError`` for c = 0 and c = n: pass@k needs k samples."""
    for c in sorted({0, n}):
        try:
            value = estimator(n, c, n + 1)
        except ValueError:
            continue
        raise AssertionError(f"k > n accepted: f(n={n}, c={c}, k={n + 1}) returned {value!r} instead of a ValueError")


def assert_matches_engine(estimator, tree: Tree, probs, problems: Problems, n: int, *, tol: float = 1e-9) -> None:
    """For every k <= n: mean over problems x of E_{c ~ Binomial(n, p_x)} f(n, c, k) equals the
    exact engine's pass@k, p_x = ``success_probability`` of the tree under ``probs``."""
    p = success_probability(tree, probs, problems.correct, problems.start)
    ks = np.arange(1, n + 1)
    engine = exact_pass_at_k(p, ks)
    table = _table(estimator, n)
    mean = (_binomial_pmf(n, p) @ table).mean(axis=0)
    err = np.abs(mean - engine)
    if not np.all(err <= tol):
        j = int(np.nanargmax(np.where(np.isnan(err), np.inf, err)))
        raise AssertionError(f"disagrees with the exact engine at n={n}, k={j + 1}: mean E[f] = {mean[j]:.12g}, "
                             f"engine pass@k = {engine[j]:.12g} (success probabilities {p.tolist()})")


def check_pass_at_k_estimator(estimator, *, max_n: int = 12, tol: float = 1e-9) -> None:
    """Every property above for n = 1..``max_n`` (every c and k): ``k > n`` rejected, values in
    [0, 1] and monotone, unbiased for every p. Raises ``AssertionError`` at the first failure."""
    for n in range(1, max_n + 1):
        assert_rejects_k_above_n(estimator, n)
        assert_bounded_and_monotone(estimator, n)
        assert_unbiased(estimator, n, tol=tol)
