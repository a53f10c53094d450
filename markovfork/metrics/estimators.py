"""pass@k estimators: the unbiased estimator, its mean over problems, and curve crossovers.

With n samples of which c are correct, the unbiased estimator of pass@k is

    pass@k = 1 - C(n - c, k) / C(n, k)
           = 1 - prod_{j=0}^{k-1} (1 - c / (n - j))              (k factors)
           = 1 - prod_{i=n-c+1}^{n} (1 - k / i)                  (c factors)

The kernel takes whichever product has fewer factors, ``1 - prod_j (1 - x_j)``, and never
subtracts nearly equal numbers (``1 - product`` cancels: it gave 0 for n = 10^18, c = k = 1,
instead of 10^-18). Up to ``DIRECT_MAX_FACTORS`` factors it sums positive terms,

    D_j = D_{j-1} + P_{j-1} x_j,   P_j = P_{j-1} (1 - x_j),   pass@k = D_m,

(relative error under 2 (m + 2) ulps: 5e-13 at most); beyond, it works in log space,
``pass@k = -expm1(sum_j log(1 - x_j))`` with each term ``log1p(-x)`` for ``x <= 1/2`` and
``log((b - a) / b)`` (exact integer difference) above, summed with compensation (a few ulps).
``1 - x_j`` is always formed from the exact integer difference. Counts up to 2^63 - 1. When
n - c < k every draw of k samples contains a correct one and the estimate is exactly 1.

For k beyond n, :mod:`markovfork.metrics.extrapolate` fits a beta-binomial model of per-problem success
(re-exported here: ``fit_beta_binomial``, ``extrapolate_pass_at_k``, loaded on first use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.plumbing.seeds import child_rng

# pass@k beyond n (markovfork.metrics.extrapolate), loaded on first use: it imports scipy.optimize
_EXTRAPOLATION = ("BetaBinomialFit", "fit_beta_binomial", "extrapolate_pass_at_k", "beta_binomial_log_likelihood")

__all__ = [
    "pass_at_k",
    "pass_at_k_reference",
    "PassAtKSummary",
    "mean_pass_at_k",
    "crossover_k",
    *_EXTRAPOLATION,
]


def __getattr__(name: str):
    if name in _EXTRAPOLATION:
        from markovfork.metrics import extrapolate

        return getattr(extrapolate, name)
    raise AttributeError(f"module 'markovfork.metrics.estimators' has no attribute {name!r}")


DIRECT_MAX_FACTORS = 2048  # up to this many factors the direct sum; beyond, the log-space sum


@numba.njit(cache=True, inline="always")
def _log_one_minus(a, b):
    """log(1 - a/b) for integers 0 <= a < b, accurate to a few ulps."""
    if a <= b - a:
        return np.log1p(-(a / b))
    return np.log((b - a) / b)


@numba.njit(cache=True)
def _one_minus_product(a0, b0, step, m):
    """1 - prod_{j<m} (1 - a / b_j) with b_j = b0 + step * j (step -1 or +1), 0 <= a < b_j."""
    if m <= DIRECT_MAX_FACTORS:
        # D_j = D_{j-1} + P_{j-1} x_j, P_j = P_{j-1} (1 - x_j): a sum of positive terms, no
        # cancellation; relative error <= 2 (m + 2) ulps
        prod = 1.0
        acc = 0.0
        for j in range(m):
            b = b0 + step * j
            inv = 1.0 / b
            acc += prod * (a0 * inv)
            prod *= (b - a0) * inv
        return min(acc, 1.0)  # the rounding of a sum whose exact value is below 1
    total = 0.0  # Neumaier-compensated sum of log(1 - x_j): relative error of a few ulps
    comp = 0.0
    for j in range(m):
        term = _log_one_minus(a0, b0 + step * j)
        t = total + term
        if abs(total) >= abs(term):
            comp += (total - t) + term
        else:
            comp += (term - t) + total
        total = t
    return 0.0 - np.expm1(total + comp)


@numba.njit(cache=True)
def _pass_at_k_kernel(n, c, k, out):
    """out[i, j] = 1 - C(n[i] - c[i], k[j]) / C(n[i], k[j]); inputs validated by the caller."""
    for i in range(n.shape[0]):
        ni = n[i]
        ci = c[i]
        for j in range(k.shape[0]):
            kj = k[j]
            if ni - ci < kj:
                out[i, j] = 1.0
            elif kj <= ci:  # k factors: 1 - c / (n - m), m = 0..k-1
                out[i, j] = _one_minus_product(ci, ni, -1, kj)
            else:  # c factors: 1 - k / t, t = n - c + 1..n
                out[i, j] = _one_minus_product(kj, ni - ci + 1, 1, ci)


def _validated(n, c, k):
    n_arr = checks.counts("n", n)
    c_arr = checks.counts("c", c)
    k_arr = checks.k_values(k)
    try:
        n_b, c_b = np.broadcast_arrays(n_arr, c_arr)
    except ValueError:
        raise ValueError(f"n and c must broadcast together, got shapes {n_arr.shape} and {c_arr.shape}") from None
    if np.any(c_b > n_b):
        i = np.argmax(c_b > n_b)
        raise ValueError(f"c must be <= n, got c={int(c_b.flat[i])} with n={int(n_b.flat[i])}")
    if n_b.size and k_arr.max() > n_b.min():
        raise ValueError(
            f"k must be <= n (pass@k needs at least k samples), got k={int(k_arr.max())} with n={int(n_b.min())}"
        )
    return n_b, c_b, k_arr


def pass_at_k(n, c, k):
    """Unbiased pass@k estimate ``1 - C(n-c, k) / C(n, k)`` for each problem and each k.

    ``n`` (samples) and ``c`` (correct samples) broadcast together (counts below 2^63); ``k`` is
    a scalar or a non-empty 1-D list. The result has shape ``broadcast(n, c).shape + k.shape``
    (a float when all are scalars). Raises ``ValueError`` for k > n, c > n, k < 1 or bad counts.
    """
    n_b, c_b, k_arr = _validated(n, c, k)
    out = np.empty((n_b.size, k_arr.size), dtype=np.float64)
    _pass_at_k_kernel(
        np.ascontiguousarray(n_b.reshape(-1)),
        np.ascontiguousarray(c_b.reshape(-1)),
        k_arr,
        out,
    )
    out = out.reshape(n_b.shape + np.shape(k))
    return float(out) if out.ndim == 0 else out


def pass_at_k_reference(n: int, c: int, k: int) -> float:
    """Exact reference for one (n, c, k): ``1 - C(n - c, k) / C(n, k)`` in rational arithmetic,
    rounded once to a float (slow for large k)."""
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


@dataclass(frozen=True)
class PassAtKSummary:
    """Mean pass@k over problems, its standard error and a percentile bootstrap interval."""

    k: np.ndarray  # (K,) the k values
    mean: np.ndarray  # (K,) mean over problems of the per-problem estimate
    stderr: np.ndarray  # (K,) standard error of that mean (sample std / sqrt(P))
    ci_low: np.ndarray  # (K,) lower end of the bootstrap interval
    ci_high: np.ndarray  # (K,) upper end of the bootstrap interval
    level: float  # coverage of the interval, e.g. 0.95


def mean_pass_at_k(n, c, k, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> PassAtKSummary:
    """Mean of the unbiased pass@k over problems with a standard error and bootstrap CI.

    The bootstrap resamples problems with replacement ``n_boot`` times (seeded) and reports the
    ``(1-level)/2`` and ``(1+level)/2`` percentiles of the resampled means.
    """
    level = checks.real("level", level, 0.0, 1.0, low_open=True, high_open=True)
    n_boot = checks.integer("n_boot", n_boot, 1)
    k = checks.k_values(k)
    per_problem = np.atleast_2d(pass_at_k(n, c, k))  # (P, K)
    n_problems = per_problem.shape[0]
    if n_problems == 0:
        raise ValueError("need at least one problem to average pass@k over")
    mean = per_problem.mean(axis=0)
    stderr = per_problem.std(axis=0, ddof=1) / np.sqrt(n_problems) if n_problems > 1 else np.zeros_like(mean)
    rng = child_rng(seed)  # = np.random.default_rng(seed)
    idx = rng.integers(0, n_problems, size=(n_boot, n_problems))
    boot = per_problem[idx].mean(axis=1)  # (n_boot, K)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return PassAtKSummary(k, mean, stderr, lo, hi, level)


def crossover_k(k, curve_a, curve_b) -> float:
    """Smallest k where ``curve_b - curve_a`` changes sign from positive to non-positive.

    Typically ``curve_a`` is the base model and ``curve_b`` the post-trained one: post leads at
    k = 1 and k* is where base catches up. Linear interpolation between grid points; returns
    ``nan`` when the curves do not cross on the grid (or ``curve_b`` never leads).
    """
    k = checks.k_values(k, increasing=True).astype(np.float64)
    a = checks.array("curve_a", curve_a, np.float64)
    b = checks.array("curve_b", curve_b, np.float64)
    if a.shape != k.shape or b.shape != k.shape:
        raise ValueError(f"k and both curves must be 1-D of equal length, got {k.shape}, {a.shape} and {b.shape}")
    diff = b - a
    for i in range(1, len(k)):
        if diff[i - 1] > 0 and diff[i] <= 0:
            t = diff[i - 1] / (diff[i - 1] - diff[i])
            return float(k[i - 1] + t * (k[i] - k[i - 1]))
    return float("nan")
