"""Baselines for the tuned model's pass@k curve, on the same (sub)sampled counts.

* beta-binomial: the tuned model's own counts fitted by :func:`markovfork.metrics.extrapolate.fit_beta_binomial`
  (zero-inflated), pass@k = (1 - w)(1 - B(a, b + k) / B(a, b)) for any k;
* plug-in: the mean over problems of the unbiased estimator 1 - C(n - c, k) / C(n, k) for
  k <= n; beyond n the curve is held at its value at k = n (the share of problems solved at
  least once): the estimator has no value there, and holding it is the no-extrapolation guess;
* logit map: logit p' = a + b logit p per problem, fitted by maximum likelihood exactly as the
  Markov map (:mod:`markovfork.real.fit`, ``kind="logit"``).
"""

from __future__ import annotations

import numpy as np

from scipy import special

from markovfork.metrics.estimators import pass_at_k
from markovfork.metrics.extrapolate import fit_beta_binomial

__all__ = ["beta_binomial_curve", "plug_in_curve", "beta_binomial_lost", "plug_in_lost"]


def beta_binomial_curve(n, c, k, weights=None) -> np.ndarray:
    """Predicted pass@k at each k of the zero-inflated beta-binomial fitted to (n, c); ``weights``:
    integer multiplicities of the problems (a bootstrap resample)."""
    n, c = np.asarray(n), np.asarray(c)
    if weights is not None:
        idx = np.repeat(np.arange(c.size), np.asarray(weights, dtype=np.int64))
        n, c = n[idx], c[idx]
    return fit_beta_binomial(n, c).pass_at_k(np.asarray(k))


def plug_in_curve(n, c, k, weights=None) -> np.ndarray:
    """Mean unbiased pass@k over problems for k <= min(n), held at k = min(n) beyond."""
    n, c = np.asarray(n), np.asarray(c)
    k = np.asarray(k, dtype=np.int64)
    m = int(n.min())
    per = pass_at_k(n, c, np.minimum(k, m))  # (P, K)
    w = np.ones(c.size) if weights is None else np.asarray(weights, dtype=np.float64)
    return w @ per / w.sum()


def _log_fail_rest(fit, n, c, rest):
    """log P(no success in ``rest`` further samples | c of n) per problem under the zero-inflated
    beta-binomial ``fit`` (atom at 0: never solves; Beta(a + c, b + n - c) otherwise)."""
    n, c, rest = (np.asarray(v, dtype=np.float64) for v in (n, c, rest))
    log_beta_fail = special.betaln(fit.a + c, fit.b + n - c + rest) - special.betaln(fit.a + c, fit.b + n - c)
    if fit.w <= 0.0:
        return log_beta_fail
    log_bb0 = special.betaln(fit.a, fit.b + n) - special.betaln(fit.a, fit.b)
    log_pi0 = np.where(c == 0, np.log(fit.w) - np.logaddexp(np.log(fit.w), np.log1p(-fit.w) + log_bb0), -np.inf)
    return np.logaddexp(log_pi0, np.log(-np.expm1(log_pi0)) + log_beta_fail)


def beta_binomial_lost(n_b, c_b, n_t, c_t, n_full: int, weights=None) -> float:
    """Expected number of problems the base solves within ``n_full`` samples and the tuned model
    does not, each model's rate drawn from its own beta-binomial posterior given its counts (the
    observed counts being the first of the n_full samples), the two independent given the counts
    (the baseline has no joint model). Scaled to the number of problems under ``weights``."""
    w = np.ones(np.size(c_b)) if weights is None else np.asarray(weights, dtype=np.float64)
    idx = np.repeat(np.arange(np.size(c_b)), w.astype(np.int64))
    fit_b = fit_beta_binomial(np.asarray(n_b)[idx], np.asarray(c_b)[idx])
    fit_t = fit_beta_binomial(np.asarray(n_t)[idx], np.asarray(c_t)[idx])
    rest_b, rest_t = np.maximum(n_full - np.asarray(n_b), 0), np.maximum(n_full - np.asarray(n_t), 0)
    solves_b = np.where(np.asarray(c_b) > 0, 1.0, -np.expm1(_log_fail_rest(fit_b, n_b, c_b, rest_b)))
    fails_t = np.where(np.asarray(c_t) > 0, 0.0, np.exp(_log_fail_rest(fit_t, n_t, c_t, rest_t)))
    return float(w @ (solves_b * fails_t) * np.size(c_b) / w.sum())


def plug_in_lost(n_b, c_b, n_t, c_t, weights=None) -> float:
    """Problems the base solved and the tuned model did not in the observed samples (no
    extrapolation, as the plug-in curve), scaled to the number of problems under ``weights``."""
    w = np.ones(np.size(c_b)) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(w @ ((np.asarray(c_b) > 0) & (np.asarray(c_t) == 0)) * np.size(c_b) / w.sum())
