"""The pass@k estimator against exact references: rational arithmetic up to n = 10^18, its
binomial expectation, monotonicity/range properties, and bad counts named clearly."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork import crossover_k, mean_pass_at_k, pass_at_k
from markovfork.metrics.estimators import pass_at_k_reference


def _exact(n, c, k):
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


# n <= 60 keeps the binomial sum cheap.
@given(n=st.integers(1, 60), data=st.data())
def test_matches_binomial_coefficient_formula(n, data):
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    exact = _exact(n, c, k)
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12, abs=0)
    assert pass_at_k_reference(n, c, k) == float(exact)


# Counts up to 10^18 and up to 3000 factors: both kernel paths (direct sum up to 2048 factors,
# log space beyond), against rational arithmetic, to relative 1e-12.
counts = st.one_of(st.integers(1, 10**4), st.integers(1, 10**18), st.integers(10**18 - 10**4, 10**18))


@given(n=counts, data=st.data())
def test_relative_error_below_1e_12_up_to_n_10_to_18(n, data):
    c = data.draw(st.one_of(st.integers(0, min(n, 3000)), st.integers(0, n), st.integers(max(0, n - 3000), n)))
    k = data.draw(st.integers(1, min(n, 3000)))
    exact = _exact(n, c, k)
    got = pass_at_k(n, c, k)
    if exact == 0:
        assert got == 0.0
    else:
        assert abs(Fraction(got) - exact) <= Fraction(1, 10**12) * exact


@pytest.mark.parametrize(
    "n, c, k, expect",
    [
        (10**18, 1, 1, Fraction(1, 10**18)),  # 0.0 before: the product form cancels
        (10**18, 2, 3, _exact(10**18, 2, 3)),
        (2**63 - 1, 1, 1, Fraction(1, 2**63 - 1)),
        (10**15, 10**6, 10**3, _exact(10**15, 10**6, 10**3)),
    ],
)
def test_tiny_estimates_at_huge_n(n, c, k, expect):
    got = pass_at_k(n, c, k)
    assert abs(Fraction(got) - expect) <= Fraction(1, 10**12) * expect


@given(n=st.integers(1, 60), p=st.floats(0.0, 1.0), data=st.data())
def test_unbiased_under_binomial_sampling(n, p, data):
    """E_c~Bin(n,p)[pass@k(n, c, k)] = 1 - (1-p)^k exactly (sum over every c)."""
    k = data.draw(st.integers(1, n))
    c = np.arange(n + 1)
    pmf = np.array([math.comb(n, ci) * p**ci * (1 - p) ** (n - ci) for ci in c])  # Binomial(n, p)
    expectation = float(np.sum(pmf * pass_at_k(n, c, k)))
    assert expectation == pytest.approx(1 - (1 - p) ** k, abs=1e-10)


@given(n=st.integers(1, 200), data=st.data())
def test_monotone_in_k_and_c_and_bounded(n, data):
    c = data.draw(st.integers(0, n))
    ks = np.arange(1, n + 1)
    row = pass_at_k(n, c, ks)
    assert np.all((row >= 0) & (row <= 1))
    assert np.all(np.diff(row) >= -1e-12)
    col = pass_at_k(n, np.arange(n + 1), data.draw(st.integers(1, n)))
    assert np.all(np.diff(col) >= -1e-12)


def test_large_n_no_overflow_and_matches_log_space_sum():
    """n = 10^6: compare with an independent log-space evaluation, 1 - exp(sum log1p(-c/(n-j)))."""
    n, ks = 10**6, np.array([1, 10, 1000, 10**5])
    c = np.array([0, 1, 17, 5 * 10**5, 10**6])
    got = pass_at_k(n, c, ks)
    assert got.shape == (5, 4) and np.all(np.isfinite(got))
    for i, ci in enumerate(c):
        for j, kj in enumerate(ks):
            if n - ci < kj:
                expect = 1.0
            else:
                log_ratio = math.fsum(np.log1p(-ci / (n - np.arange(kj, dtype=np.float64))))
                expect = -math.expm1(log_ratio)
            assert got[i, j] == pytest.approx(expect, rel=1e-9, abs=1e-15)
    assert got[0, 0] == 0.0 and got[1, 0] == pytest.approx(1e-6)


def test_shapes():
    assert isinstance(pass_at_k(10, 3, 2), float)
    assert pass_at_k([10, 10, 10], [1, 2, 3], 2).shape == (3,)
    assert pass_at_k([10, 10, 10], [1, 2, 3], [1, 2]).shape == (3, 2)
    assert pass_at_k(np.full((2, 3), 10), np.zeros((2, 3), int), [1]).shape == (2, 3, 1)


@pytest.mark.parametrize(
    "n, c, k, message",
    [
        (5, 1, 6, "k must be <= n"),
        (5, 6, 1, "c must be <= n"),
        (5, -1, 1, r"c must be integer counts in \[0, 2\^63\), got -1"),
        (-5, 0, 1, r"n must be integer counts in \[0, 2\^63\), got -5"),
        (5, 1, 0, "k must be integers >= 1, got 0"),
        (5, 1, [2, 0], "k must be an integer >= 1, got 0"),
        (5, 1.5, 1, "c must be integer counts, got 1.5"),
        (5, 1, [1, 9], "k must be <= n"),
        # beyond int64: "must be non-negative, got -9223372036854775808" before
        (2**63, 1, 1, r"n must be integer counts in \[0, 2\^63\), got 9223372036854775808"),
        (np.uint64(2**64 - 1), 1, 1, r"n must be integer counts in \[0, 2\^63\), got 18446744073709551615"),
        (np.array([5, 2**64 - 1], dtype=np.uint64), 1, 1, r"n must be integer counts in \[0, 2\^63\), got 18446744073709551615"),
        (2**70, 1, 1, r"n must be integer counts in \[0, 2\^63\), got 1180591620717411303424"),
        (1e19, 1, 1, r"n must be integer counts in \[0, 2\^63\), got 1e\+19"),
        (10, 2**64, 1, r"c must be integer counts in \[0, 2\^63\), got 18446744073709551616"),
        (10, 1, [], r"k must be an integer or a non-empty 1-D list of integers, got \[\]"),  # a reshape error before
        (10, 1, [[1, 2]], "k must be an integer or a non-empty 1-D list"),
        (10, 1, 2.0, "k must be integers, got 2.0"),
        (10, True, 1, "c must be integer counts, got True"),
    ],
)
def test_bad_input_raises(n, c, k, message):
    with pytest.raises(ValueError, match=message):
        pass_at_k(n, c, k)


def test_mean_with_stderr_and_bootstrap_interval():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.3, size=400)
    n = 64
    c = rng.binomial(n, p)
    ks = np.array([1, 8, 64])
    s = mean_pass_at_k(n, c, ks, n_boot=2000, seed=3)
    truth = np.array([np.mean(1 - (1 - p) ** k) for k in ks])
    assert np.all(s.ci_low <= s.mean) and np.all(s.mean <= s.ci_high)
    assert np.all(np.abs(s.mean - truth) < 4 * s.stderr + 1e-12)
    # bootstrap half-width is close to 1.96 standard errors for a mean of 400 problems
    half = (s.ci_high - s.ci_low) / 2
    assert np.allclose(half[:2], 1.96 * s.stderr[:2], rtol=0.2)
    again = mean_pass_at_k(n, c, ks, n_boot=2000, seed=3)
    assert np.array_equal(again.ci_low, s.ci_low)


def test_mean_and_crossover_bad_input():
    with pytest.raises(ValueError, match=r"level must be a finite number in \(0, 1\), got 1.0"):
        mean_pass_at_k(10, [1, 2], [1], level=1.0)
    with pytest.raises(ValueError, match="n_boot must be an integer >= 1, got 0"):
        mean_pass_at_k(10, [1, 2], [1], n_boot=0)
    with pytest.raises(ValueError, match=r"k must be strictly increasing, got \[2, 1\]"):
        crossover_k([2, 1], [0.1, 0.2], [0.3, 0.1])
    with pytest.raises(ValueError, match="k and both curves must be 1-D of equal length"):
        crossover_k([1, 2, 4], [0.1, 0.2], [0.3, 0.1])


def test_crossover_k():
    k = np.array([1, 2, 4, 8, 16])
    base = np.array([0.2, 0.35, 0.55, 0.75, 0.9])
    post = np.array([0.4, 0.5, 0.55, 0.6, 0.62])
    assert crossover_k(k, base, post) == pytest.approx(4.0)
    post2 = np.array([0.4, 0.5, 0.6, 0.6, 0.62])
    assert crossover_k(k, base, post2) == pytest.approx(5.0)  # diff 0.05 -> -0.15 between k=4 and 8
    assert np.isnan(crossover_k(k, base, base + 0.1))
