"""pass@k estimators: the unbiased estimator, its mean over problems, and curve crossovers.

With n samples of which c are correct, the unbiased estimator of pass@k is

    pass@k = 1 - C(n - c, k) / C(n, k)
           = 1 - prod_{j=0}^{k-1} (n - c - j) / (n - j)          (k factors)
           = 1 - prod_{i=n-c+1}^{n} (1 - k / i)                  (c factors)

The kernel evaluates whichever product has fewer factors, so it never forms a binomial
coefficient and never overflows (n up to 10^6 and beyond). When n - c < k every draw of k
samples contains a correct one and the estimate is exactly 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

__all__ = [
    "pass_at_k",
    "pass_at_k_reference",
    "PassAtKSummary",
    "mean_pass_at_k",
    "crossover_k",
]


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
                continue
            ratio = 1.0
            if kj <= ci:
                # k factors: (n - c - m) / (n - m), m = 0..k-1
                for m in range(kj):
                    ratio *= (ni - ci - m) / (ni - m)
            else:
                # c factors: 1 - k / t, t = n - c + 1..n
                for t in range(ni - ci + 1, ni + 1):
                    ratio *= 1.0 - kj / t
            out[i, j] = 1.0 - ratio


def _as_count_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must be integer counts, got {value!r}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            bad = arr[~np.isfinite(arr) | (arr != np.round(arr))].flat[0]
            raise ValueError(f"{name} must be integer counts, got {bad!r}")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {int(arr[arr < 0].flat[0])}")
    return arr


def _validated(n, c, k):
    n_arr = _as_count_array("n", n)
    c_arr = _as_count_array("c", c)
    k_arr = _as_count_array("k", k)
    if k_arr.ndim > 1:
        raise ValueError(f"k must be a scalar or a 1-D list of values, got shape {k_arr.shape}")
    if np.any(k_arr < 1):
        raise ValueError(f"k must be >= 1, got {int(k_arr[k_arr < 1].flat[0])}")
    try:
        n_b, c_b = np.broadcast_arrays(n_arr, c_arr)
    except ValueError:
        raise ValueError(f"n and c must broadcast together, got shapes {n_arr.shape} and {c_arr.shape}") from None
    if np.any(c_b > n_b):
        i = np.argmax(c_b > n_b)
        raise ValueError(f"c must be <= n, got c={int(c_b.flat[i])} with n={int(n_b.flat[i])}")
    if k_arr.size and n_b.size and k_arr.max() > n_b.min():
        raise ValueError(
            f"k must be <= n (pass@k needs at least k samples), got k={int(k_arr.max())} with n={int(n_b.min())}"
        )
    return n_b, c_b, k_arr


def pass_at_k(n, c, k):
    """Unbiased pass@k estimate ``1 - C(n-c, k) / C(n, k)`` for each problem and each k.

    ``n`` (samples) and ``c`` (correct samples) broadcast together; ``k`` is a scalar or a 1-D
    array. The result has shape ``broadcast(n, c).shape + k.shape`` (a float when all are
    scalars). Raises ``ValueError`` for k > n, c > n, k < 1 or negative counts.
    """
    n_b, c_b, k_arr = _validated(n, c, k)
    out = np.empty((n_b.size, max(k_arr.size, 1)), dtype=np.float64)
    _pass_at_k_kernel(
        np.ascontiguousarray(n_b.reshape(-1)),
        np.ascontiguousarray(c_b.reshape(-1)),
        np.ascontiguousarray(k_arr.reshape(-1)),
        out,
    )
    out = out.reshape(n_b.shape + k_arr.shape)
    return float(out) if out.ndim == 0 else out


def pass_at_k_reference(n: int, c: int, k: int) -> float:
    """Plain-Python reference for one (n, c, k): the k-factor product, no shortcuts beyond n-c<k."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod((n - c - np.arange(k)) / (n - np.arange(k))))


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
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    per_problem = np.atleast_2d(pass_at_k(n, c, np.atleast_1d(k)))  # (P, K)
    n_problems = per_problem.shape[0]
    if n_problems == 0:
        raise ValueError("need at least one problem to average pass@k over")
    mean = per_problem.mean(axis=0)
    stderr = per_problem.std(axis=0, ddof=1) / np.sqrt(n_problems) if n_problems > 1 else np.zeros_like(mean)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_problems, size=(n_boot, n_problems))
    boot = per_problem[idx].mean(axis=1)  # (n_boot, K)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha], axis=0)
    return PassAtKSummary(np.atleast_1d(np.asarray(k, dtype=np.int64)), mean, stderr, lo, hi, level)


def crossover_k(k, curve_a, curve_b) -> float:
    """Smallest k where ``curve_b - curve_a`` changes sign from positive to non-positive.

    Typically ``curve_a`` is the base model and ``curve_b`` the post-trained one: post leads at
    k = 1 and k* is where base catches up. Linear interpolation between grid points; returns
    ``nan`` when the curves do not cross on the grid (or ``curve_b`` never leads).
    """
    k = np.asarray(k, dtype=np.float64)
    diff = np.asarray(curve_b, dtype=np.float64) - np.asarray(curve_a, dtype=np.float64)
    if k.shape != diff.shape or k.ndim != 1:
        raise ValueError(f"k and both curves must be 1-D of equal length, got {k.shape} and {diff.shape}")
    if np.any(np.diff(k) <= 0):
        raise ValueError("k must be strictly increasing")
    for i in range(1, len(k)):
        if diff[i - 1] > 0 and diff[i] <= 0:
            t = diff[i - 1] / (diff[i - 1] - diff[i])
            return float(k[i - 1] + t * (k[i] - k[i - 1]))
    return float("nan")
