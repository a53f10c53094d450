"""Predictive intervals for held-out pass@k: the test-set and sampling noise of the measured
value, the seed-to-seed spread, and the model's own discrepancy (``docs/fit.md``, "Intervals").

A measured cell (arm, epoch, k) is the mean over S seeds of pass@k on m test problems with n
samples each. Its variance around the simulator's prediction p is modelled as

    var = r_k v(p) / (m S)   +   lambda_k v(p),        v(p) = p~ (1 - p~),  p~ = (p m + 1/2) / (m + 1),

* **noise** ``r_k v / (m S)``: p (1 - p) / m bounds the test-set and sampling variance of a mean of
  m per-problem pass@k values (``measured.binomial_se``); r_k scales it to the spread that the
  seeds actually show (different seeds draw different test problems, SFT sets and models), fitted
  per k on the cells of the fitted rows that two or more seeds measured:
  r_k = sum_cells s^2_cell / sum_cells v(p_cell) / m, with s^2 the sample variance across seeds
  (for two seeds, half the squared seed difference) (:func:`seed_ratio`);
* **discrepancy** ``lambda_k v(p)``: the simulator's own error, fitted by maximum likelihood
  (Gaussian, per k) on held-out residuals measured-minus-predicted of *other* settings, with the
  noise part known (:func:`discrepancy`): for a left-out rho, the leave-one-rho-out residuals of
  the other rhos, so that no held-out cell tunes its own interval.

The interval at level 1 - alpha is p +- z_(1 - alpha/2) sqrt(var), clipped to [0, 1]
(:func:`interval`); the parameter uncertainty (delta method, ``planned``) is far smaller and left out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["shrunk_variance", "seed_ratio", "discrepancy", "interval", "coverage"]


def shrunk_variance(p, m) -> np.ndarray:
    """v(p) = p~ (1 - p~), p~ = (p m + 1/2) / (m + 1) (finite at p = 0 or 1)."""
    p = np.asarray(p, dtype=np.float64)
    q = (p * m + 0.5) / (m + 1.0)
    return q * (1.0 - q)


def seed_ratio(per_seed: np.ndarray, m: int, cells: np.ndarray) -> np.ndarray:
    """(ks,) r_k from ``per_seed`` (seeds, arms, epochs, ks) measured pass@k (nan: not measured) on
    the (arms, epochs, ks) mask ``cells``; 1 where fewer than two seeds measured any cell of that k."""
    x = np.asarray(per_seed, dtype=np.float64)
    n_seen = np.sum(~np.isnan(x), axis=0)
    ok = cells & (n_seen >= 2)
    mean = np.nanmean(np.where(n_seen >= 1, x, 0.0), axis=0)
    var = np.nanvar(x, axis=0, ddof=1, where=~np.isnan(x)) if x.shape[0] >= 2 else np.zeros(x.shape[1:])
    out = np.ones(x.shape[-1])
    for k in range(x.shape[-1]):
        sel = ok[..., k]
        if sel.any():
            out[k] = float(np.sum(var[..., k][sel]) / np.sum(shrunk_variance(mean[..., k][sel], m) / m))
    return out


def _noise(p, m, seeds, ratio):
    return ratio * shrunk_variance(p, m) / (m * seeds)


def discrepancy(residual: np.ndarray, predicted: np.ndarray, k_index: np.ndarray, m: int, seeds: int,
                ratio: np.ndarray) -> np.ndarray:
    """(ks,) lambda_k by maximum likelihood: residuals r_i ~ N(0, noise_i + lambda v_i) per k
    (1-D arrays of cells: residual, prediction and the index of their k); 0 where the residuals are
    within the noise."""
    from scipy.optimize import minimize_scalar

    residual, predicted, k_index = (np.asarray(a) for a in (residual, predicted, k_index))
    out = np.zeros(ratio.size)
    for k in range(ratio.size):
        sel = k_index == k
        if not sel.any():
            continue
        r2, v = residual[sel] ** 2, shrunk_variance(predicted[sel], m)
        noise = _noise(predicted[sel], m, seeds, ratio[k])

        def nll(log_lam):
            var = noise + np.exp(log_lam) * v
            return float(np.sum(np.log(var) + r2 / var))

        best = minimize_scalar(nll, bounds=(-25.0, 5.0), method="bounded")
        out[k] = float(np.exp(best.x)) if nll(best.x) < nll(-25.0) - 1e-9 else 0.0
    return out


def interval(predicted, k_index, m: int, seeds: int, ratio, lam, level: float = 0.9):
    """(low, high, sd) of the predictive interval at ``level`` for predictions ``predicted`` whose
    k indices are ``k_index`` (any shape, broadcast together)."""
    from scipy.stats import norm

    p = np.asarray(predicted, dtype=np.float64)
    k_index = np.asarray(k_index)
    ratio, lam = np.asarray(ratio), np.asarray(lam)
    sd = np.sqrt(_noise(p, m, seeds, ratio[k_index]) + lam[k_index] * shrunk_variance(p, m))
    z = norm.ppf(0.5 + level / 2.0)
    return np.clip(p - z * sd, 0.0, 1.0), np.clip(p + z * sd, 0.0, 1.0), sd


def coverage(measured, low, high) -> float:
    """Share of cells whose measured value lies in [low, high]."""
    y = np.asarray(measured)
    return float(np.mean((y >= low - 1e-12) & (y <= high + 1e-12)))
