"""markovfork.testing: its checks pass the package's own estimator and catch wrong ones (the
plug-in estimator's bias, a silent 1.0 for k > n, values out of range or out of order), its
strategies draw valid trees, policies, problems and count tables, and the core imports without
hypothesis."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork import pass_at_k
from markovfork.engines.exact import success_probability
from markovfork.model.problems import Problems
from markovfork.testing import (
    assert_bounded_and_monotone,
    assert_matches_engine,
    assert_rejects_k_above_n,
    assert_unbiased,
    check_pass_at_k_estimator,
    count_tables,
    expected_estimate,
    policies,
    problems,
    tree_cases,
    trees,
)
from markovfork.model.tree import tree_from_children


def plug_in(n, c, k):
    """1 - (1 - c/n)^k: in [0, 1] and monotone, rejects k > n, but biased for k >= 2."""
    if k > n:
        raise ValueError(f"k must be <= n, got k={k} with n={n}")
    return 1.0 - (1.0 - c / n) ** k


def test_package_estimator_passes_every_check():
    check_pass_at_k_estimator(pass_at_k, max_n=16)


def test_plug_in_estimator_is_caught_as_biased():
    assert_bounded_and_monotone(plug_in, 10)  # passes these: only the bias is wrong
    assert_rejects_k_above_n(plug_in, 10)
    # the message docs/testing.md shows: 1 - E(1 - c/2)^2 = 5/8 at p = 1/2, not 3/4
    with pytest.raises(AssertionError, match=r"^biased: E\[f\(n=2, c, k=2\)\] = 0.625 at p = 0.5, but pass@k = "
                                             r"1 - \(1-p\)\^k = 0.75$"):
        check_pass_at_k_estimator(plug_in)
    assert expected_estimate(plug_in, 10, 1, 0.3) == pytest.approx(0.3, abs=1e-15)  # k = 1: c/n, unbiased


def test_a_tiny_bias_in_one_count_is_caught():
    def nudged(n, c, k):  # exact everywhere except c = 1, by 1e-6
        return pass_at_k(n, c, k) - (1e-6 if c == 1 else 0.0)

    with pytest.raises(AssertionError, match="biased"):
        assert_unbiased(nudged, 8)


def test_silent_one_for_k_above_n_is_caught():
    def clamped(n, c, k):  # what several harnesses do: pass@k = 1 once k > n
        return 1.0 if k > n else pass_at_k(n, c, k)

    with pytest.raises(AssertionError, match=r"k > n accepted: f\(n=1, c=0, k=2\) returned 1.0"):
        check_pass_at_k_estimator(clamped)


@pytest.mark.parametrize(
    "estimator, message",
    [
        (lambda n, c, k: pass_at_k(n, c, k) * (1 + 1e-9), r"out of \[0, 1\]"),
        (lambda n, c, k: 1.0 - pass_at_k(n, c, k), "not monotone in c"),
        (lambda n, c, k: c / n / k, "not monotone in k"),
        (lambda n, c, k: float("nan"), r"out of \[0, 1\]"),
    ],
)
def test_range_and_order_violations_are_caught(estimator, message):
    with pytest.raises(AssertionError, match=message):
        assert_bounded_and_monotone(estimator, 6)


@given(n=st.integers(1, 30), p=st.floats(0.0, 1.0))
def test_expected_estimate_matches_binomial_moments(n, p):
    """E[c/n] = p and, for n >= 2, E[c(c-1) / (n(n-1))] = p^2 (factorial moments)."""
    assert expected_estimate(lambda n, c, k: c / n, n, 1, p) == pytest.approx(p, abs=1e-12)
    if n >= 2:
        second = expected_estimate(lambda n, c, k: c * (c - 1) / (n * (n - 1)), n, 1, p)
        assert second == pytest.approx(p * p, abs=1e-12)
    grid = expected_estimate(lambda n, c, k: c / n, n, 1, np.array([0.0, p, 1.0]))
    assert np.allclose(grid, [0.0, p, 1.0], atol=1e-12)


@given(case=tree_cases(), n=st.integers(1, 12))
def test_package_estimator_matches_the_exact_engine_on_random_trees(case, n):
    assert_matches_engine(pass_at_k, case.tree, case.probs, case.problems, n)


def test_plug_in_disagrees_with_the_engine_on_a_fork():
    """A fork with one correct leaf of two at probability 1/2: p = 1/2 and exact pass@2 = 3/4,
    while the plug-in's expectation at n = 4 is 1 - E(1 - c/4)^2 = 11/16."""
    tree, _ = tree_from_children([[1, 2], [], []], [1, 2, 2], [1.0, 0.5, 0.5])
    probs = np.array([[1.0, 0.5, 0.5]])
    answers = np.array([[False, True, False]])
    problem = Problems(start=[0], correct=answers, valid=answers, features=np.zeros((1, 0)), ids=[0])
    assert expected_estimate(plug_in, 4, 2, 0.5) == pytest.approx(11 / 16, abs=1e-15)
    assert_matches_engine(pass_at_k, tree, probs, problem, 4)
    # the largest disagreement, at k = 4: 1 - E(1 - c/4)^4 = 0.833984375 against 1 - 1/2^4
    with pytest.raises(AssertionError, match=r"disagrees with the exact engine at n=4, k=4: mean E\[f\] = 0.833984375, "
                       r"engine pass@k = 0.9375"):
        assert_matches_engine(plug_in, tree, probs, problem, 4)


def _rows_are_distributions(tree, probs):
    for v in range(tree.n_nodes):
        lo, hi = tree.child_start[v], tree.child_start[v + 1]
        if hi > lo and not np.isclose(probs[:, lo:hi].sum(axis=1), 1.0).all():
            return False
    return bool(np.all((probs >= 0) & (probs <= 1)) and np.all(probs[:, 0] == 1.0))


@given(data=st.data(), tree=trees(max_nodes=12), n_problems=st.integers(1, 4))
def test_strategies_draw_valid_policies_and_problems(data, tree, n_problems):
    assert 1 <= tree.n_nodes <= 12
    probs = data.draw(policies(tree, n_problems))
    assert probs.shape == (n_problems, tree.n_nodes) and _rows_are_distributions(tree, probs)
    problem_set = data.draw(problems(tree, n_problems))
    assert len(problem_set) == n_problems
    not_leaf = np.ones(tree.n_nodes, dtype=bool)
    not_leaf[tree.leaves] = False
    assert not problem_set.valid[:, not_leaf].any()  # answers only at leaves
    p = success_probability(tree, probs, problem_set.correct, problem_set.start)
    assert np.all((p >= -1e-12) & (p <= 1 + 1e-12))


@given(case=tree_cases(max_nodes=5, max_problems=2))
def test_tree_cases_respect_their_bounds(case):
    assert case.tree.n_nodes <= 5 and 1 <= case.probs.shape[0] <= 2
    assert _rows_are_distributions(case.tree, case.probs) and len(case.problems) == case.probs.shape[0]


@given(table=count_tables(max_problems=7, max_n=40), same=count_tables(same_n=True))
def test_count_tables_are_valid(table, same):
    for t in (table, same):
        assert t.n.dtype == np.int64 and t.c.dtype == np.int64 and t.n.shape == t.c.shape
        assert np.all(t.n >= 1) and np.all((t.c >= 0) & (t.c <= t.n))
    assert 1 <= table.n.size <= 7 and table.n.max() <= 40
    assert np.all(same.n == same.n[0])
    per_problem = pass_at_k(table.n, table.c, 1)  # a table is valid input for the estimator
    assert np.allclose(per_problem, table.c / table.n)


def test_core_imports_without_hypothesis_and_testing_names_the_extra():
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import markovfork, markovfork.metrics.estimators as e\n"
        "assert e.extrapolate_pass_at_k(4, [0, 2, 4], 100) > 0\n"
        "try:\n    import markovfork.testing\nexcept ImportError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'markovfork.testing needs hypothesis: pip install "markovfork[test]"' in out.stdout


def test_docs_examples_run(capsys):
    """Every python block of docs/testing.md runs; a block followed by a plain block prints
    exactly that block; the test functions a block defines pass."""
    text = (Path(__file__).parent.parent / "docs" / "testing.md").read_text()
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)
    ran = compared = 0
    for i, (lang, code) in enumerate(blocks):
        if lang != "python":
            continue
        namespace = {"__name__": f"docs_testing_{i}"}
        exec(compile(code, f"docs/testing.md block {i}", "exec"), namespace)
        for name, func in namespace.items():
            if name.startswith("test_") and callable(func):
                func()
                ran += 1
        printed = capsys.readouterr().out
        if i + 1 < len(blocks) and blocks[i + 1][0] == "" and printed:
            assert printed == blocks[i + 1][1]
            compared += 1
    assert ran == 3 and compared == 1
