"""pass@k beyond the number of samples: a beta-binomial fit of per-problem success counts.

The unbiased estimator (:func:`markovfork.metrics.estimators.pass_at_k`) needs k <= n. To predict
pass@k for k beyond n, model each problem's success rate p (Kazdan et al. 2025,
arXiv 2510.05197): with probability w the problem is unsolvable (p = 0), otherwise
p ~ Beta(a, b). Problem i, sampled n_i times with c_i correct, then has likelihood

    L_i = w [c_i = 0] + (1 - w) C(n_i, c_i) B(a + c_i, b + n_i - c_i) / B(a, b),

and (a, b, w) maximise sum_i log L_i. The predicted pass@k is the expectation of 1 - (1 - p)^k
under the fitted prior,

    pass@k = (1 - w) (1 - B(a, b + k) / B(a, b)),

computed as ``(1 - w) * -expm1(betaln(a, b + k) - betaln(a, b))``: no cancellation, finite and
accurate for any k (10^6, 10^18). A Beta puts no mass at p = 0, so without w truly unsolvable
problems pull a towards 0 and the predicted curve keeps rising: it overestimates large-k pass@k.

Assumptions: problems are exchangeable draws from one population of success rates; a problem's
samples are independent with a fixed success rate; that rate is Beta-distributed (plus the
point mass at 0). The curve is a model's prediction, not an unbiased estimate; for k <= n
prefer the unbiased estimator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from markovfork.plumbing import checks

__all__ = [
    "BetaBinomialFit",
    "fit_beta_binomial",
    "extrapolate_pass_at_k",
    "beta_binomial_log_likelihood",
]

LOG_SHAPE_BOUNDS = (np.log(1e-6), np.log(1e6))  # a and b each in [1e-6, 1e6] (log space)
W_MAX = 1.0 - 1e-9  # the zero mass stays below 1 (a problem with c > 0 needs the Beta part)


def _counts_table(n, c) -> tuple[np.ndarray, np.ndarray]:
    """(n, c) as equal-length 1-D int64 arrays (n may be one number for every problem)."""
    n_arr = checks.counts("n", n)
    c_arr = checks.counts("c", c)
    if c_arr.ndim != 1 or n_arr.ndim > 1:
        raise ValueError(f"c must be a 1-D array of per-problem counts and n a number or such an array, "
                         f"got shapes {n_arr.shape} and {c_arr.shape}")
    if n_arr.ndim == 1 and n_arr.shape != c_arr.shape:
        raise ValueError(f"n and c must have one entry per problem, got lengths {n_arr.size} and {c_arr.size}")
    n_arr = np.broadcast_to(n_arr, c_arr.shape)
    if c_arr.size == 0:
        raise ValueError("c must hold at least one problem's count, got an empty array")
    if np.any(n_arr < 1):
        raise ValueError(f"n must be >= 1 sample per problem, got {int(n_arr.min())}")
    if np.any(c_arr > n_arr):
        i = int(np.argmax(c_arr > n_arr))
        raise ValueError(f"c must be <= n, got c={int(c_arr[i])} with n={int(n_arr[i])}")
    return np.ascontiguousarray(n_arr), c_arr


def _log_beta_part(n, c, a, b):
    """log C(n, c) B(a + c, b + n - c) / B(a, b): the beta-binomial log pmf."""
    log_choose = special.gammaln(n + 1.0) - special.gammaln(c + 1.0) - special.gammaln(n - c + 1.0)
    return log_choose + special.betaln(a + c, b + n - c) - special.betaln(a, b)


def _per_problem_log_likelihood(n, c, a, b, w):
    """(log L_i, log of L_i's Beta component, beta-binomial log pmf) for each (n_i, c_i)."""
    beta_part = _log_beta_part(n, c, a, b)
    with np.errstate(divide="ignore"):  # log 0 = -inf: at w = 0 the zero component drops out
        log_w = np.log(w)
    log_beta = np.log1p(-w) + beta_part
    return np.where(c == 0, np.logaddexp(log_w, log_beta), log_beta), log_beta, beta_part


def beta_binomial_log_likelihood(n, c, a: float, b: float, w: float = 0.0) -> float:
    """sum_i log L_i of the counts (``n`` samples, ``c`` correct per problem) under Beta(a, b)
    with mass ``w`` at p = 0 (the module docstring's L_i, binomial coefficient included)."""
    n_arr, c_arr = _counts_table(n, c)
    a = checks.real("a", a, 0.0, low_open=True)
    b = checks.real("b", b, 0.0, low_open=True)
    w = checks.real("w", w, 0.0, 1.0, high_open=True)
    return float(np.sum(_per_problem_log_likelihood(n_arr.astype(float), c_arr.astype(float), a, b, w)[0]))


def _negative_log_likelihood(x, n, c, weight, zero_mass):
    """-sum_i log L_i and its gradient in x = (log a, log b[, w]); rows weighted by multiplicity."""
    a, b = np.exp(x[0]), np.exp(x[1])
    w = x[2] if zero_mass else 0.0
    log_l, log_beta, beta_part = _per_problem_log_likelihood(n, c, a, b, w)
    # d beta_part / da and / db (digamma differences), then the chain rule for log a, log b
    common = special.digamma(a + b) - special.digamma(a + b + n)
    d_a = special.digamma(a + c) - special.digamma(a) + common
    d_b = special.digamma(b + n - c) - special.digamma(b) + common
    zero = c == 0
    resp = np.exp(log_beta - log_l)  # share of L_i from the Beta component (1 where c > 0)
    grad = [-np.sum(weight * resp * d_a) * a, -np.sum(weight * resp * d_b) * b]
    if zero_mass:
        # d log L_i / dw: (1 - e^beta_part) / L_i at c = 0, -1 / (1 - w) otherwise; 1 / L_i only on
        # the c = 0 rows and capped at e^700 (where L_i < e^-700 the slope is vast either way)
        d_w = np.full(n.shape, -1.0 / (1.0 - w))
        d_w[zero] = -np.expm1(beta_part[zero]) * np.exp(np.minimum(-log_l[zero], 700.0))
        grad.append(-np.sum(weight * d_w))
    return -float(np.sum(weight * log_l)), np.array(grad)


@dataclass(frozen=True)
class BetaBinomialFit:
    """Maximum-likelihood Beta(a, b) prior of per-problem success, with mass ``w`` at p = 0."""

    a: float  # Beta shape of the solvable problems' success rate
    b: float  # Beta shape (the larger b / a, the harder the solvable problems)
    w: float  # share of problems with success rate exactly 0 (0 when fitted without zero mass)
    log_likelihood: float  # sum_i log L_i at the fitted parameters
    n_problems: int  # problems the fit saw
    zero_mass: bool  # whether w was fitted (False: a plain Beta, w = 0)

    def __post_init__(self) -> None:  # a fit built by hand (a prior to predict from) is checked too
        checks.real("a", self.a, 0.0, low_open=True)
        checks.real("b", self.b, 0.0, low_open=True)
        checks.real("w", self.w, 0.0, 1.0, high_open=True)

    def pass_at_k(self, k):
        """Predicted pass@k ``(1 - w) (1 - B(a, b + k) / B(a, b))`` for a scalar k or a 1-D list
        (any k >= 1, also beyond the fitted n); a float for a scalar k."""
        k_arr = checks.k_values(k).astype(np.float64)
        log_ratio = special.betaln(self.a, self.b + k_arr) - special.betaln(self.a, self.b)
        out = (1.0 - self.w) * -np.expm1(log_ratio)
        return float(out[0]) if np.ndim(k) == 0 else out


def fit_beta_binomial(n, c, *, zero_mass: bool = True) -> BetaBinomialFit:
    """Fit the module docstring's beta-binomial model to per-problem counts by maximum likelihood.

    ``c`` holds the correct samples of each problem, ``n`` the samples drawn (one number for
    all or one per problem). ``zero_mass=False`` fits a plain Beta (w = 0). The shapes a and b
    are optimised in log space within [1e-6, 1e6]. Raises ``ValueError`` for bad counts or a
    table without any correct sample (nothing to fit: every p could be 0).
    """
    n_arr, c_arr = _counts_table(n, c)
    if not np.any(c_arr > 0):
        raise ValueError("c must contain at least one correct sample, got all zeros (nothing to fit)")
    pairs, weight = np.unique(np.stack([n_arr, c_arr], axis=1), axis=0, return_counts=True)
    n_u, c_u, weight = pairs[:, 0].astype(float), pairs[:, 1].astype(float), weight.astype(float)
    mean = float(np.clip(np.mean(c_arr / n_arr), 1e-3, 1 - 1e-3))
    share_zero = float(np.mean(c_arr == 0))
    bounds = [LOG_SHAPE_BOUNDS, LOG_SHAPE_BOUNDS] + ([(0.0, W_MAX)] if zero_mass else [])
    best = None
    for total in (1.0, 10.0):  # a + b: a diffuse and a concentrated start
        for w0 in ((0.0, 0.5 * share_zero) if zero_mass else (None,)):
            x0 = [np.log(mean * total), np.log((1 - mean) * total)] + ([w0] if zero_mass else [])
            res = optimize.minimize(_negative_log_likelihood, np.array(x0), args=(n_u, c_u, weight, zero_mass),
                                    jac=True, method="L-BFGS-B", bounds=bounds)
            if best is None or res.fun < best.fun:
                best = res
    x = best.x
    return BetaBinomialFit(
        a=float(np.exp(x[0])),
        b=float(np.exp(x[1])),
        w=float(x[2]) if zero_mass else 0.0,
        log_likelihood=-float(best.fun),
        n_problems=int(c_arr.size),
        zero_mass=zero_mass,
    )


def extrapolate_pass_at_k(n, c, k, *, zero_mass: bool = True):
    """Predicted pass@k for any k (also k > n) from per-problem counts: the fitted
    :class:`BetaBinomialFit`'s ``pass_at_k(k)`` (assumptions in the module docstring)."""
    k_arr = checks.k_values(k)  # checked before the fit: a bad k fails fast
    fit = fit_beta_binomial(n, c, zero_mass=zero_mass)
    return fit.pass_at_k(k if np.ndim(k) == 0 else k_arr)
