"""base_coverage: exact pass@k against per-path products, sampled pass@k against the exact
value within its Monte Carlo error, and the report's table and JSON forms."""

import json

import numpy as np
import pytest

from markovfork.engines.coverage import base_coverage, plot_coverage
from markovfork.tasks import fork_problems, fork_tree, tmc_chain, tmc_problems
from markovfork.model.policy import Decoding


def test_exact_pass_at_k_equals_path_products():
    tree = fork_tree(5, 3, 4, placement="random", easy_prob=0.5, seed=2)
    problems = fork_problems(tree, 40, seed=3)
    report = base_coverage(tree, problems, [1, 3, 10])
    p = np.array([np.prod(tree.edge_prob[tree.path_to(int(np.flatnonzero(row)[0]))]) for row in problems.correct])
    np.testing.assert_allclose(report.success, p, rtol=1e-12)
    np.testing.assert_allclose(report.exact, [np.mean(1 - (1 - p) ** k) for k in (1, 3, 10)], rtol=1e-12)
    assert report.sampled is None and report.n_samples == 0
    assert report.table()["pass_at_k_sampled"].null_count() == 3


def test_exact_on_tmc_instances_and_shares():
    tmc = tmc_chain(4, 2, 2, 1, high_edges={(1, 1): [1], (2, 1): [0]})
    problems = tmc_problems(tmc.tree, tmc, 0, 300, seed=4)
    report = base_coverage(tmc.tree, problems, [1, 30])
    paths = tmc.task_paths(0)
    p = problems.correct[:, paths.leaf] @ paths.prob
    np.testing.assert_allclose(report.success, p)
    np.testing.assert_allclose(report.exact_shares, [paths.prob[0], paths.prob[1:].sum(), 1 - paths.prob.sum()])


def test_decoding_changes_exact_coverage():
    tree = fork_tree(4, 2, 1, easy_prob=0.8, seed=0)
    problems = fork_problems(tree, 50, seed=1)
    greedy = base_coverage(tree, problems, [1, 8], decoding=Decoding(top_k=1))
    plain = base_coverage(tree, problems, [1, 8])
    # greedy decoding follows the easy child everywhere: success is 0 or 1 per problem
    assert set(np.unique(greedy.success)) <= {0.0, 1.0}
    assert greedy.exact[0] == greedy.exact[1]
    assert plain.exact[1] > plain.exact[0]


def test_sampled_matches_exact_within_monte_carlo_error():
    tree = fork_tree(4, 2, 2, placement="top", easy_prob=0.7, seed=5)
    problems = fork_problems(tree, 300, seed=6)
    n = 128
    report = base_coverage(tree, problems, [1, 4, 16, 128], n_samples=n, seed=7)
    p = report.success
    # the sampled pass@1 mean is mean_x c_x / n with c_x ~ Binomial(n, p_x): its exact sd
    sd1 = np.sqrt(np.sum(p * (1 - p)) / n) / len(p)
    assert abs(report.sampled.mean[0] - report.exact[0]) < 4 * sd1
    # at every k the Monte Carlo error is below the across-problem standard error reported
    assert np.all(np.abs(report.sampled.mean - report.exact) < 3 * report.sampled.stderr + 1e-12)
    assert np.all(report.sampled.ci_low <= report.sampled.mean) and np.all(report.sampled.mean <= report.sampled.ci_high)
    np.testing.assert_allclose(report.sampled_shares, report.exact_shares, atol=0.01)
    assert report.sampled_shares.sum() == pytest.approx(1.0)
    again = base_coverage(tree, problems, [1, 4, 16, 128], n_samples=n, seed=7)
    assert np.array_equal(again.sampled.mean, report.sampled.mean)
    table = report.table()
    assert table.columns[:4] == ["k", "pass_at_k_exact", "pass_at_k_sampled", "stderr"]
    assert table["n_samples"].to_list() == [n] * 4
    data = json.loads(json.dumps(report.to_json()))
    assert data["sampled"]["mean"] == report.sampled.mean.tolist()
    fig = plot_coverage(report)
    assert len(fig.axes[0].lines) >= 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=[4, 2]), r"k must be strictly increasing, got \[4, 2\]"),
        (dict(k=[0, 2]), "k must be an integer >= 1, got 0"),
        (dict(k=[1.5]), "k must be an integer, got 1.5"),
        (dict(k=[]), r"k must be an integer or a non-empty 1-D list of integers, got \[\]"),
        (dict(k=[1], seed=-1), r"seed must be an integer in \[0, 18446744073709551615\], got -1"),
        (dict(k=[1, 100], n_samples=64), "k must be <= n_samples=64 for the sampled estimate, got k=100"),
        (dict(k=[1], n_samples=-1), r"n_samples must be an integer in \[0, 9223372036854775807\], got -1"),
        # beyond the kernels' int64: a one-line error, not a Numba typing error (found by tests/cli/test_fuzz_options.py)
        (dict(k=[1], n_samples=2**64), r"n_samples must be an integer in \[0, 9223372036854775807\], got 18446744073709551616"),
        (dict(k=[1], n_samples=10**11), r"n_samples x problems = 100000000000 x 3 = 3e\+11 rollouts is more than 1e\+10"),
    ],
)
def test_bad_input(kwargs, message):
    tree = fork_tree(2, 2, 1)
    with pytest.raises(ValueError, match=message):
        base_coverage(tree, fork_problems(tree, 3), **kwargs)
