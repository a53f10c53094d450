"""The beta-binomial pass@k extrapolation against independent references: its likelihood against
numerical integration of binomial pmf x Beta pdf, recovery of known parameters from simulated
counts (within the standard errors of the observed information), agreement with the unbiased
estimator for k <= n, the curve against a direct product for k up to 10^6, and the zero mass."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from markovfork.metrics.estimators import (
    BetaBinomialFit,
    beta_binomial_log_likelihood,
    extrapolate_pass_at_k,
    fit_beta_binomial,
    mean_pass_at_k,
)
from markovfork.metrics.extrapolate import _negative_log_likelihood
from markovfork.testing import count_tables


def _simulated_counts(n, n_problems, a, b, w, seed):
    """Counts of a population with P(p = 0) = w, else p ~ Beta(a, b); n samples per problem."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, n_problems)
    p[rng.random(n_problems) < w] = 0.0
    return rng.binomial(n, p)


def _quadrature_log_likelihood(n, c, a, b, w):
    """sum_i log(w [c_i = 0] + (1 - w) int_0^1 Binomial(c_i; n_i, p) Beta(p; a, b) dp)."""
    total = 0.0
    for ni, ci in zip(np.broadcast_to(n, np.shape(c)), c):
        integral, _ = integrate.quad(lambda p: stats.binom.pmf(ci, ni, p) * stats.beta.pdf(p, a, b), 0.0, 1.0,
                                     epsabs=0, epsrel=1e-11, limit=200)
        total += math.log(w * (ci == 0) + (1 - w) * integral)
    return total


# Shapes >= 0.6 keep the Beta density's endpoint singularity mild enough for quad to reach
# relative 1e-11; n <= 30 and at most 5 problems keep each example to a few milliseconds.
@settings(max_examples=25)
@given(n=st.integers(1, 30), a=st.floats(0.6, 8.0), b=st.floats(0.6, 8.0), w=st.sampled_from([0.0, 0.3, 0.9]),
       data=st.data())
def test_log_likelihood_matches_quadrature(n, a, b, w, data):
    c = np.array(data.draw(st.lists(st.integers(0, n), min_size=1, max_size=5)))
    got = beta_binomial_log_likelihood(n, c, a, b, w)
    assert got == pytest.approx(_quadrature_log_likelihood(n, c, a, b, w), rel=1e-8, abs=1e-9)


def test_log_likelihood_per_problem_n_and_zero_mass():
    n, c = np.array([3, 10, 25, 1]), np.array([0, 4, 25, 0])
    got = beta_binomial_log_likelihood(n, c, 0.7, 1.9, 0.2)
    assert got == pytest.approx(_quadrature_log_likelihood(n, c, 0.7, 1.9, 0.2), rel=1e-8)


def test_gradient_matches_finite_differences():
    n, c = np.array([20.0, 20, 20, 5, 7]), np.array([0.0, 3, 20, 0, 7])
    weight = np.array([1.0, 2, 1, 3, 1])
    for x in ([0.1, -0.3, 0.2], [-1.5, 1.2, 0.0], [2.0, 0.5, 0.7]):
        err = optimize.check_grad(lambda x: _negative_log_likelihood(x, n, c, weight, True)[0],
                                  lambda x: _negative_log_likelihood(x, n, c, weight, True)[1], np.array(x))
        assert err < 1e-5


def _covariance(n, c, fit):
    """H^-1 of the observed information H (second differences of the public log-likelihood in
    (a, b, w)): the sampling covariance of the MLE at this many problems."""
    theta = np.array([fit.a, fit.b, fit.w])
    h = 1e-3 * np.maximum(theta, 0.1)

    def ll(t):
        return beta_binomial_log_likelihood(n, c, t[0], t[1], t[2])

    hess = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            ei, ej = np.eye(3)[i] * h[i], np.eye(3)[j] * h[j]
            hess[i, j] = (ll(theta + ei + ej) - ll(theta + ei - ej) - ll(theta - ei + ej) + ll(theta - ei - ej)) / (
                4 * h[i] * h[j])
    return np.linalg.inv(-hess)


@pytest.mark.parametrize("a, b, w, seed", [(0.8, 2.5, 0.25, 0), (2.0, 0.7, 0.1, 1), (0.4, 4.0, 0.4, 2)])
def test_recovers_known_parameters_within_four_standard_errors(a, b, w, seed):
    n, n_problems = 16, 20_000
    c = _simulated_counts(n, n_problems, a, b, w, seed)
    fit = fit_beta_binomial(n, c)
    se = np.sqrt(np.diag(_covariance(n, c, fit)))
    assert np.all(se < [0.25 * a, 0.25 * b, 0.05])  # the data pin the parameters: the test has power
    assert abs(fit.a - a) < 4 * se[0] and abs(fit.b - b) < 4 * se[1] and abs(fit.w - w) < 4 * se[2]
    assert fit.n_problems == n_problems and fit.zero_mass


def test_fit_maximises_the_likelihood():
    n, c = 12, _simulated_counts(12, 500, 0.9, 1.7, 0.2, 3)
    fit = fit_beta_binomial(n, c)
    assert fit.log_likelihood == pytest.approx(beta_binomial_log_likelihood(n, c, fit.a, fit.b, fit.w), rel=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(30):
        a, b = fit.a * np.exp(rng.normal(0, 0.2)), fit.b * np.exp(rng.normal(0, 0.2))
        w = float(np.clip(fit.w + rng.normal(0, 0.05), 0, 0.99))
        assert beta_binomial_log_likelihood(n, c, a, b, w) <= fit.log_likelihood + 1e-9
    plain = fit_beta_binomial(n, c, zero_mass=False)
    assert plain.w == 0.0 and not plain.zero_mass
    assert plain.log_likelihood <= fit.log_likelihood + 1e-9  # nested model


@pytest.mark.parametrize("w, zero_mass", [(0.0, False), (0.2, True)])
def test_matches_unbiased_estimator_for_k_up_to_n(w, zero_mass):
    """Both estimate E[1 - (1 - p)^k]; on the same counts they differ by far less than the mean
    estimator's standard error (their sampling errors are shared)."""
    n, ks = 32, [1, 2, 4, 8, 16, 32]
    c = _simulated_counts(n, 2000, 1.2, 3.0, w, 4)
    predicted = extrapolate_pass_at_k(n, c, ks, zero_mass=zero_mass)
    measured = mean_pass_at_k(n, c, ks, n_boot=10)
    assert np.all(np.abs(predicted - measured.mean) < 2 * measured.stderr)
    assert np.all(np.abs(predicted - measured.mean) < 0.01)


def test_zero_mass_removes_the_upward_bias_at_large_k():
    """30% unsolvable problems: pass@10000 is about 0.7 (0.688 exactly); the zero-mass fit lands
    within four standard errors of it (delta method on the observed information), while a plain
    Beta, with no mass at p = 0, explains the excess of c = 0 by a small a and overshoots."""
    a, b, w, n, n_problems, k = 0.5, 3.0, 0.3, 20, 20_000, 10_000
    c = _simulated_counts(n, n_problems, a, b, w, 5)
    truth = BetaBinomialFit(a, b, w, 0.0, n_problems, True).pass_at_k(k)
    assert truth == pytest.approx(0.688, abs=5e-4)
    fit = fit_beta_binomial(n, c)
    theta, step = np.array([fit.a, fit.b, fit.w]), 1e-6
    grad = np.array([(BetaBinomialFit(*(theta + e), 0.0, n_problems, True).pass_at_k(k)
                      - BetaBinomialFit(*(theta - e), 0.0, n_problems, True).pass_at_k(k)) / (2 * step)
                     for e in np.eye(3) * step])
    se = math.sqrt(grad @ _covariance(n, c, fit) @ grad)
    assert se < 0.02  # enough problems to tell the two models apart
    assert abs(fit.pass_at_k(k) - truth) < 4 * se
    assert abs(fit.pass_at_k(k) - 0.7) < 0.03
    plain = extrapolate_pass_at_k(n, c, k, zero_mass=False)
    assert plain > truth + 0.1 and plain > truth + 8 * se


def test_curve_matches_direct_product_up_to_a_million():
    """B(a, b + k) / B(a, b) = prod_{j<k} (b + j) / (a + b + j), summed in log space with fsum."""
    fit = BetaBinomialFit(a=0.37, b=5.2, w=0.15, log_likelihood=0.0, n_problems=1, zero_mass=True)
    ks = [1, 7, 1000, 10**6]
    got = fit.pass_at_k(ks)
    for k, value in zip(ks, got):
        j = np.arange(k, dtype=float)
        log_ratio = math.fsum(np.log1p(-fit.a / (fit.a + fit.b + j)))
        assert value == pytest.approx((1 - fit.w) * -math.expm1(log_ratio), rel=1e-10)
    far = fit.pass_at_k([10**6, 10**9, 10**12, 10**18])
    assert np.all(np.isfinite(far)) and np.all(np.diff(far) > 0) and far[-1] <= 1 - fit.w
    assert isinstance(fit.pass_at_k(5), float)


@given(table=count_tables(max_problems=12, max_n=40))
def test_any_count_table_gives_a_valid_curve(table):
    """For any table with a correct sample: a curve in [0, 1 - w], non-decreasing in k up to
    10^18, and a likelihood no lower than at the plain Beta's start (mean rate, a + b = 1)."""
    assume(table.c.any())
    fit = fit_beta_binomial(table.n, table.c)
    curve = fit.pass_at_k([1, 2, 10, 1000, 10**6, 10**18])
    assert np.all(np.isfinite(curve)) and np.all(curve >= 0) and np.all(curve <= 1 - fit.w + 1e-15)
    assert np.all(np.diff(curve) >= -1e-15)
    mean = float(np.clip(np.mean(table.c / table.n), 1e-3, 1 - 1e-3))
    assert fit.log_likelihood >= beta_binomial_log_likelihood(table.n, table.c, mean, 1 - mean) - 1e-9


def test_no_overflow_warning_on_widely_varying_n():
    """n from 1 to 200 per problem: the line search visits shapes where a row with c > 0 has
    likelihood below e^-709; the slope in w once overflowed there (a RuntimeWarning, an error
    under this suite's settings)."""
    rng = np.random.default_rng(0)
    n = rng.integers(1, 200, 2000)
    p = rng.beta(0.5, 2.0, 2000)
    p[rng.random(2000) < 0.2] = 0.0
    fit = fit_beta_binomial(n, rng.binomial(n, p))
    assert abs(fit.w - 0.2) < 0.05 and abs(fit.a - 0.5) < 0.15


def test_degenerate_tables_stay_finite():
    every = fit_beta_binomial(8, [8, 8, 8])  # every sample correct: a at its bound, b tiny
    assert every.pass_at_k(1) > 0.999 and every.pass_at_k(10**6) <= 1.0
    mixed = fit_beta_binomial(8, [0, 0, 8, 8])
    assert np.all(np.isfinite(mixed.pass_at_k([1, 100]))) and 0.4 < mixed.pass_at_k(100) <= 1.0


@pytest.mark.parametrize(
    "n, c, k, message",
    [
        (10, [3, 11], 5, "c must be <= n, got c=11 with n=10"),
        (10, [3, -1], 5, "c must be integer counts in [0, 2^63), got -1"),
        (10, [2.5], 5, "c must be integer counts, got 2.5"),
        ([10, 10], [1, 2, 3], 5, "n and c must have one entry per problem, got lengths 2 and 3"),
        (10, [[1, 2]], 5, "c must be a 1-D array of per-problem counts"),
        (10, [], 5, "c must hold at least one problem's count"),
        (0, [0], 5, "n must be >= 1 sample per problem, got 0"),
        (10, [0, 0, 0], 5, "c must contain at least one correct sample, got all zeros"),
        (10, [1, 2], 0, "k must be integers >= 1, got 0"),
        (10, [1, 2], [[5]], "k must be an integer or a non-empty 1-D list of integers"),
    ],
)
def test_bad_input_is_one_line_value_error(n, c, k, message):
    with pytest.raises(ValueError) as info:
        extrapolate_pass_at_k(n, c, k)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("a, b, w, message", [(0.0, 1.0, 0.0, "a must be"), (1.0, -2.0, 0.0, "b must be"),
                                              (1.0, 1.0, 1.0, "w must be"), (1.0, float("nan"), 0.0, "b must be")])
def test_bad_parameters_of_the_likelihood(a, b, w, message):
    with pytest.raises(ValueError, match=message):
        beta_binomial_log_likelihood(5, [1, 2], a, b, w)
    with pytest.raises(ValueError, match=message):
        BetaBinomialFit(a, b, w, 0.0, 1, True)
