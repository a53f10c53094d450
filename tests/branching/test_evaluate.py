"""Success within a budget: the dynamic program against brute-force enumeration of every token
sequence, the rollout kernel against its Python reference, and rollouts against the DP."""

import numpy as np
from hypothesis import given, strategies as st

from markovfork.branching import BranchingTask, Params, evaluate_rollouts, success_unbounded, success_within_budget
from markovfork.branching.evaluate import rollouts, rollouts_reference
from markovfork.branching.task import decision_probs


def _enumerate(task: BranchingTask, params: Params, budget: int) -> tuple[float, float]:
    """(success mass, total mass) over every token sequence, one token at a time: each child of
    each decision point, each contradiction depth, each forced token, each backtrack choice."""
    p, q = decision_probs(task, params)
    m, b, h, d = task.n_correct, task.children, task.branch_tokens, task.points
    success = total = 0.0

    def point(i, t, w):
        nonlocal success, total
        if i == d:  # the answer token
            total += w
            success += w if t + 1 <= budget else 0.0
            return
        if t == budget:  # cut
            total += w
            return
        for child in range(b):
            if child < m:
                point(i + 1, t + 1, w * p / m)
            else:
                for g in range(1, h + 1):
                    branch(i, 1, g, t + 1, w * (1 - p) / (b - m) / h)

    def branch(i, j, g, t, w):
        nonlocal total
        if t == budget:
            total += w
            return
        if j < g:  # a forced token
            branch(i, j + 1, g, t + 1, w)
            return
        point(i, t + 1, w * q)  # backtrack
        total += w * (1 - q)  # go on: forced tokens, then a wrong answer

    point(0, 0, 1.0)
    return success, total


@given(
    points=st.integers(1, 3), children=st.integers(2, 3), depth=st.integers(1, 3), budget=st.integers(1, 9),
    a=st.floats(-2, 3), c=st.floats(-2, 3), two_correct=st.booleans(),
)
def test_dp_equals_enumeration(points, children, depth, budget, a, c, two_correct):
    m = 2 if two_correct and children > 2 else 1
    task = BranchingTask(points=points, children=children, branch_tokens=depth, n_correct=m)
    params = Params(a, c)
    success, total = _enumerate(task, params, budget)
    assert abs(total - 1.0) < 1e-12
    assert abs(success_within_budget(task, params, budget) - success) < 1e-12


def test_dp_without_binding_budget_is_the_closed_form():
    task = BranchingTask(points=6, branch_tokens=4)
    params = Params(0.3, 1.2)
    assert abs(success_within_budget(task, params, 2000) - success_unbounded(task, params)) < 1e-12
    assert success_within_budget(task, params, task.points) == 0.0  # the answer needs token D + 1
    assert success_within_budget(task, Params(50.0, 0.0), task.points + 1) > 1 - 1e-15


@given(points=st.integers(1, 5), depth=st.integers(1, 6), budget=st.integers(1, 30),
       a=st.floats(-3, 3), c=st.floats(-3, 3), seed=st.integers(0, 2**64 - 1))
def test_rollout_kernel_equals_reference(points, depth, budget, a, c, seed):
    task = BranchingTask(points=points, branch_tokens=depth)
    fast = rollouts(task, Params(a, c), budget, 50, seed)
    slow = rollouts_reference(task, Params(a, c), budget, 50, seed)
    for name in ("success", "length", "branches"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name


def test_rollouts_agree_with_dp():
    task = BranchingTask(points=8, branch_tokens=10)
    n = 200_000
    for params, budget in ((Params(1.5, 1.0), 16), (Params(3.0, -0.5), 12), (Params(1.0, 2.0), 10_000)):
        exact = success_within_budget(task, params, budget)
        summary = evaluate_rollouts(task, params, budget, n, seed=11, ks=(1, 8))
        assert abs(summary.pass_at_k[0] - exact) < 5 * np.sqrt(exact * (1 - exact) / n) + 1e-9
        assert abs(summary.pass_at_k[1] - (1 - (1 - exact) ** 8)) < 0.01
        assert summary.mean_length <= budget
    # given success every point ends correct, after k backtracks with probability prop. to x^k,
    # x = (1 - P) q: a geometric number of entries with mean x / (1 - x) per point
    params = Params(1.0, 2.0)
    p, q = decision_probs(task, params)
    x = (1 - p) * q
    r = rollouts(task, params, 10_000, n, seed=4)
    succeeded = r.branches[r.success]
    se = np.sqrt(task.points * x) / (1 - x) / np.sqrt(succeeded.size)
    assert abs(succeeded.mean() - task.points * x / (1 - x)) < 5 * se
