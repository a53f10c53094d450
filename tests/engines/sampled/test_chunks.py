"""Sampling in spans (issue 19.2: the interpreter reached between kernel calls) gives the same
leaves and counts, bit for bit, as one call over everything: every split of the problems and of
each problem's rollouts, walks and paths."""

import numpy as np
import pytest

from markovfork.engines.sampled import api, drivers
from markovfork.engines.sampled.inputs import kernel_arrays
from markovfork.engines.sampled.kernel_tree import hard_edges, kernel_tree
from tests.engines.sampled.cases import random_probs, random_problems, random_tree


def _run(tree, probs, problems, n_samples, method, budget):
    kt = kernel_tree(tree)
    p, s = kernel_arrays(tree, probs, problems.start)
    batch = api._batch(p, s, n_samples, 11, method)
    leaves = np.empty((s.shape[0], n_samples), dtype=np.int64)
    ok = drivers.run_chunks(kt, batch, leaves, budget=budget)
    outcomes = drivers.Outcomes(hard_edges(tree), problems.correct.astype(bool), problems.valid.astype(bool))
    counts = np.empty((s.shape[0], 4), dtype=np.int64)
    ok2 = drivers.run_chunks(kt, batch, counts, outcomes, budget=budget)
    assert ok.all() and ok2.all()
    return leaves, counts, list(drivers.spans(kt, batch, 1, budget))


@pytest.mark.parametrize("method", [drivers.AUTO, drivers.WALK, drivers.PATH])
@pytest.mark.parametrize("n_samples", [1, 9000])  # 9000 > BLOCK: a problem's rollouts split too
def test_spans_give_the_same_draws(method, n_samples):
    tree = random_tree(3, depth=6)
    problems = random_problems(tree, 5, seed=4)
    probs = random_probs(tree, 5, seed=5)
    whole, whole_counts, one = _run(tree, probs, problems, n_samples, method, budget=10**12)
    assert len(one) == 1  # everything fits: a single call, as before spans existed
    for budget in (1, 100, 5000, 10**5):
        leaves, counts, calls = _run(tree, probs, problems, n_samples, method, budget)
        if budget < 5000:
            assert len(calls) > 1
        assert np.array_equal(leaves, whole), budget
        assert np.array_equal(counts, whole_counts), budget
        # the calls cover every (problem, rollout) pair exactly once
        cover = np.zeros((5, n_samples), dtype=int)
        for first, count, lo, hi in calls:
            cover[lo:hi, first:first + count] += 1
        assert np.all(cover == 1)
    # counts are the classified leaves
    hard = hard_edges(tree)
    valid = problems.valid[np.arange(5)[:, None], whole]
    easy = hard[whole] == hard[problems.start][:, None]
    assert np.array_equal(whole_counts[:, 0], problems.correct[np.arange(5)[:, None], whole].sum(axis=1))
    assert np.array_equal(whole_counts[:, 1], (valid & easy).sum(axis=1))
    assert np.array_equal(whole_counts[:, 3], (~valid).sum(axis=1))
