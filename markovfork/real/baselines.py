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

from markovfork.metrics.estimators import pass_at_k
from markovfork.metrics.extrapolate import fit_beta_binomial

__all__ = ["beta_binomial_curve", "plug_in_curve"]


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
