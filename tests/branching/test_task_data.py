"""The branch-count distribution against closed forms, teacher datasets against it, and the
most-branching filter (sampled and exact)."""

import numpy as np
import pytest
from scipy import stats

from markovfork.branching import BranchingTask, Teacher, expected_counts, filter_most_branching, teacher_trajectories
from markovfork.branching.data import kept_branch_pmf
from markovfork.branching.task import branch_count_pmf, decision_probs
from markovfork.branching.task import Params


def test_branch_count_pmf_matches_negative_binomial_and_binomial():
    task = BranchingTask(points=7)
    k = np.arange(60)
    unbounded = branch_count_pmf(task, Teacher(0.45))
    np.testing.assert_allclose(unbounded[:60], stats.nbinom.pmf(k, 7, 0.55), rtol=1e-10, atol=1e-16)
    assert abs(unbounded.sum() - 1) < 1e-14
    once = branch_count_pmf(task, Teacher(0.3, retries=1))  # W = Bernoulli(beta): B ~ Binomial(D, beta)
    np.testing.assert_allclose(once, stats.binom.pmf(np.arange(8), 7, 0.3), atol=1e-15)
    for teacher in (Teacher(0.45), Teacher(0.6, retries=2), Teacher(0.0)):
        pmf = branch_count_pmf(task, teacher)
        assert np.dot(np.arange(pmf.size), pmf) == pytest.approx(7 * teacher.mean_entries(), rel=1e-12)


def test_decision_probs():
    p, q = decision_probs(BranchingTask(children=5, n_correct=2), Params(np.log(1.5), 0.0))
    assert p == pytest.approx(3 / 6) and q == 0.5  # 2 * 1.5 / (2 * 1.5 + 3)
    assert decision_probs(BranchingTask(), Params(1e4, -1e4)) == (1.0, 0.0)


def test_teacher_dataset_counts_and_means():
    task = BranchingTask(points=6, branch_tokens=5)
    data = teacher_trajectories(task, Teacher(0.4), 40_000, seed=3)
    extra = data.length - task.convergent_length  # sum of g + 1 over the entries, g in 1..h
    assert np.all(extra >= 2 * data.branches) and np.all(extra <= (task.branch_tokens + 1) * data.branches)
    expect = expected_counts(task, Teacher(0.4))
    se_b = np.sqrt(6 * 0.4) / 0.6 / np.sqrt(len(data))  # sd of a negative binomial / sqrt(N)
    assert abs(data.branches.mean() - expect.wrong) < 5 * se_b
    assert abs(data.length.mean() - expect.tokens) < 5 * se_b * (task.mean_excursion + 2)
    capped = teacher_trajectories(task, Teacher(1.0, retries=2), 5, seed=0)
    assert np.all(capped.branches == 12)
    same = teacher_trajectories(task, Teacher(0.4), 40_000, seed=3)
    assert np.array_equal(same.length, data.length) and np.array_equal(same.branches, data.branches)
    flat = teacher_trajectories(BranchingTask(points=3, branch_tokens=1), Teacher(0.5), 100, seed=1)
    assert np.array_equal(flat.length, 4 + 2 * flat.branches)  # h = 1: every entry costs 2 tokens


def test_filter_drops_the_most_branching_share():
    task = BranchingTask(points=5)
    data = teacher_trajectories(task, Teacher(0.5), 1000, seed=0)
    for share in (0.0, 0.25, 0.5, 0.999):
        kept = filter_most_branching(data, share, seed=1)
        assert len(kept) == 1000 - int(np.floor(share * 1000))
        if share:
            dropped = np.setdiff1d(np.arange(1000), _kept_index(data, kept))
            assert data.branches[dropped].min() >= kept.branches.max()
    # ties at random: the convergent teacher's data (all B = 0) loses different rows per seed
    flat = teacher_trajectories(task, Teacher(0.0), 200, seed=0)
    flat = type(flat)(flat.points, flat.branches, np.arange(200))  # lengths as row labels
    a, b = (filter_most_branching(flat, 0.5, seed=s).length for s in (1, 2))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, filter_most_branching(flat, 0.5, seed=1).length)
    with pytest.raises(ValueError, match="share must be a finite number in"):
        filter_most_branching(data, 1.0)


def _kept_index(data, kept):
    """Row indices of ``kept`` in ``data`` (rows are kept in order: a greedy match)."""
    out, j = [], 0
    for i in range(len(data)):
        if j < len(kept) and data.branches[i] == kept.branches[j] and data.length[i] == kept.length[j]:
            out.append(i)
            j += 1
    assert j == len(kept)
    return np.array(out)


def test_exact_filter_is_the_large_sample_limit():
    task = BranchingTask(points=6)
    teacher = Teacher(0.4)
    weights = kept_branch_pmf(task, teacher, 0.5)
    assert weights.sum() == pytest.approx(0.5, abs=1e-14)
    data = teacher_trajectories(task, teacher, 200_000, seed=5)
    for share in (0.25, 0.5, 0.75):
        kept = filter_most_branching(data, share, seed=5)
        exact = expected_counts(task, teacher, share)
        assert kept.branches.mean() == pytest.approx(exact.wrong, abs=0.02)
        assert kept.length.mean() == pytest.approx(exact.tokens, rel=0.01)
    assert expected_counts(task, Teacher(0.0), 0.5).wrong == 0.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(points=0), "points must be an integer in"),
    (dict(n_correct=4), r"n_correct \(children = 4\) must be an integer in \[1, 3\]"),
    (dict(branch_tokens=2.0), "branch_tokens must be an integer"),
])
def test_task_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BranchingTask(**kwargs)


def test_teacher_validation():
    with pytest.raises(ValueError, match="beta must be a finite number in"):
        Teacher(0.99)  # unbounded retries need beta <= 0.95
    with pytest.raises(ValueError, match="retries must be an integer"):
        Teacher(0.5, retries=0)
    assert Teacher(1.0, retries=3).mean_entries() == 3
