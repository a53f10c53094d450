"""Maximum-likelihood fit of a per-problem post-training map, predictions, and bootstrap intervals.

Two stages of one likelihood L(base) L(tuned | base): the heterogeneity prior (a, b, w) of the
base rates maximises L(base) (:func:`markovfork.metrics.extrapolate.fit_beta_binomial`), then the map's
parameters theta maximise

    log L(tuned | base; theta) = sum_i log sum_j w_ij sum_t P(t | p_ij) Bin(c'_i | n'_i, f_t(p_ij; theta))

(:mod:`markovfork.real.model`) by Nelder-Mead. Predictions condition each problem on both its
counts: the posterior weight of node (j, t) is proportional to the summand above, and

    tuned pass@k_i = sum_jt post_ijt (1 - (1 - f_t(p_ij))^k),   base pass@k_i = sum_jt post_ijt (1 - (1 - p_ij)^k).

Intervals: nonparametric bootstrap over problems (resample problems with replacement, refit both
stages, predict), percentile 2.5-97.5 %: they carry problem-sampling uncertainty and the counts'
binomial noise, not the map's misspecification.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from markovfork.metrics.extrapolate import BetaBinomialFit, fit_beta_binomial
from markovfork.real.model import (
    MarkovParams, PosteriorGrid, log_likelihood, logit_map_components, markov_components, posterior_grid,
)

__all__ = ["KINDS", "MapFit", "fit_prior", "fit_map", "components", "predict", "subsample_counts"]

KINDS = ("markov", "logit")
STARTS = {  # Nelder-Mead starting points (unconstrained vectors), the best result is kept
    "markov": [np.array([special.logit(0.2), 2.0, 1.5, 0.0, 0.0])],
    "logit": [np.array([1.0, 1.0]), np.array([0.5, 1.5])],
}
LIMIT = 30.0  # every unconstrained coordinate stays in [-LIMIT, LIMIT] (Delta = 30: the rare group is gone)
PARAM_NAMES = {"markov": ("r", "delta", "lam", "alpha", "beta_phi"), "logit": ("a", "b")}


def components(kind: str, x, p):
    """The map's [(P(type | p), tuned rate)] at base rates ``p`` for the unconstrained vector ``x``."""
    if kind == "markov":
        return markov_components(p, MarkovParams.from_x(x))
    return logit_map_components(p, float(x[0]), float(x[1]))


def param_dict(kind: str, x) -> dict:
    if kind == "markov":
        return MarkovParams.from_x(x).as_dict()
    return {"a": float(x[0]), "b": float(x[1])}


@dataclass(frozen=True, eq=False)
class MapFit:
    """A fitted map: ``kind``, its unconstrained vector ``x``, the prior and grid it was fitted on."""

    kind: str
    x: np.ndarray
    log_likelihood: float
    prior: BetaBinomialFit
    grid: PosteriorGrid

    @property
    def params(self) -> dict:
        return param_dict(self.kind, self.x)


def fit_prior(n, c, weights=None) -> BetaBinomialFit:
    """The zero-inflated beta-binomial prior of the base rates (problems repeated by ``weights``)."""
    n, c = np.asarray(n), np.asarray(c)
    if weights is not None:
        idx = np.repeat(np.arange(c.size), np.asarray(weights, dtype=np.int64))
        n, c = n[idx], c[idx]
    return fit_beta_binomial(n, c)


def fit_map(kind: str, n_b, c_b, n_t, c_t, *, weights=None, prior=None, grid_size: int = 32, starts=None,
            max_evals: int = 2000) -> MapFit:
    """Maximum-likelihood map of ``kind`` (``markov`` or ``logit``) from both models' counts
    (module docstring); ``weights`` are problem multiplicities, ``starts`` override the starts."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    prior = fit_prior(n_b, c_b, weights) if prior is None else prior
    grid = posterior_grid(n_b, c_b, prior, grid_size)
    # the objective sees each distinct (n_b, c_b, n_t, c_t) once, weighted by its multiplicity
    w = np.ones(np.size(c_b)) if weights is None else np.asarray(weights, dtype=np.float64)
    rows = np.stack([np.asarray(a, dtype=np.int64) for a in (n_b, c_b, n_t, c_t)], axis=1)
    uniq, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    w_u = np.bincount(inverse.reshape(-1), weights=w, minlength=uniq.shape[0])
    keep = w_u > 0
    pick = first[keep]
    grid_k = PosteriorGrid(grid.p[pick], grid.log_w[pick])
    n_t_k, c_t_k, w_k = uniq[keep, 2], uniq[keep, 3], w_u[keep]

    def nll(x):
        if not np.all(np.isfinite(x)) or np.any(np.abs(x) > LIMIT):
            return 1e300
        value = -log_likelihood(grid_k, components(kind, x, grid_k.p), n_t_k, c_t_k, w_k, 0.0)
        return value if np.isfinite(value) else 1e300

    best = None
    for x0 in (STARTS[kind] if starts is None else starts):
        res = optimize.minimize(nll, np.asarray(x0, dtype=np.float64), method="Nelder-Mead",
                                options={"maxfev": max_evals, "xatol": 1e-3, "fatol": 1e-4})
        if best is None or res.fun < best.fun:
            best = res
    log_choose = special.gammaln(n_t_k + 1.0) - special.gammaln(c_t_k + 1.0) - special.gammaln(n_t_k - c_t_k + 1.0)
    return MapFit(kind, np.asarray(best.x), -float(best.fun) + float(w_k @ log_choose), prior, grid)


def _posterior(fit: MapFit, n_t, c_t):
    """Per type t: (posterior weights (P, G+1), tuned rates (P, G+1)); the weights sum to 1 per problem."""
    from markovfork.real.model import _log_binomial

    n_t = np.asarray(n_t, dtype=np.float64)[:, None]
    c_t = np.asarray(c_t, dtype=np.float64)[:, None]
    terms, rates = [], []
    for weight, q in components(fit.kind, fit.x, fit.grid.p):
        with np.errstate(divide="ignore"):
            terms.append(fit.grid.log_w + np.log(weight) + _log_binomial(n_t, c_t, q))
        rates.append(q)
    total = special.logsumexp(np.stack(terms), axis=(0, 2))
    return [(np.exp(t - total[:, None]), q) for t, q in zip(terms, rates)]


def predict(fit: MapFit, n_t, c_t, k, *, n_full=None, n_b=None, c_b=None) -> dict:
    """Per-problem predictions (module docstring) at each k: ``tuned`` and ``base`` (P, K).
    With ``n_full`` (and the base counts ``n_b``, ``c_b``): ``lost`` (P,), the probability that the
    base solves the problem within n_full samples and the tuned model does not, given that the
    observed counts are the first n_b and n_t of those samples."""
    k = np.asarray(k, dtype=np.float64)
    post = _posterior(fit, n_t, c_t)
    tuned = np.zeros((fit.grid.p.shape[0], k.size))
    base = np.zeros_like(tuned)
    log_miss_base = np.log1p(-np.minimum(fit.grid.p, 1.0 - 1e-16))
    for j, kk in enumerate(k):
        miss_b = np.exp(kk * log_miss_base)
        for weight, q in post:
            tuned[:, j] += np.sum(weight * -np.expm1(kk * np.log1p(-np.minimum(q, 1.0 - 1e-16))), axis=1)
            base[:, j] += np.sum(weight * (1.0 - miss_b), axis=1)
    out = {"tuned": tuned, "base": base}
    if n_full is not None:
        rest_b = np.maximum(n_full - np.asarray(n_b), 0)[:, None]
        rest_t = np.maximum(n_full - np.asarray(n_t), 0)[:, None]
        solves_b = np.where(np.asarray(c_b)[:, None] > 0, 1.0, -np.expm1(rest_b * log_miss_base))
        lost = np.zeros(fit.grid.p.shape[0])
        for weight, q in post:
            fails_t = np.where(np.asarray(c_t)[:, None] > 0, 0.0,
                               np.exp(rest_t * np.log1p(-np.minimum(q, 1.0 - 1e-16))))
            lost += np.sum(weight * solves_b * fails_t, axis=1)
        out["lost"] = lost
    return out


def subsample_counts(n, c, m: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(m, c_sub) per problem: m of the n samples drawn without replacement (hypergeometric)."""
    n, c = np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64)
    if m > int(n.min()):
        raise ValueError(f"subsample must be <= the samples per problem ({int(n.min())}), got {m}")
    return np.full(c.shape, m, dtype=np.int64), rng.hypergeometric(c, n - c, m)
