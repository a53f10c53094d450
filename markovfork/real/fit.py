"""Maximum-likelihood fit of a per-problem post-training map, predictions, and bootstrap intervals.

Two stages of one likelihood L(base) L(tuned | base): the heterogeneity prior (a, b, w) of the
base rates maximises L(base) (:func:`markovfork.metrics.extrapolate.fit_beta_binomial`), then the map's
parameters theta maximise

    log L(tuned | base; theta) = sum_i log sum_t P(t) int Post_i(p) Bin(c'_i | n'_i, f_t(p; theta)) dp

(:mod:`markovfork.real.model`; the integral by a trapezoid rule on a window adapted to each
problem's posterior given both counts) by L-BFGS-B (finite-difference gradient) with the nodes
fixed, then the nodes are adapted at the optimum and the optimisation repeated from there until
the log-likelihood at the optimum moves by less than ``tol`` between node sets (a smooth objective
in every stage, an accurate integral at the end). Predictions condition each problem on both its
counts: the posterior weight of node (t, j) is proportional to its summand, and

    tuned pass@k_i = sum_tj post_itj (1 - (1 - f_t(p_itj))^k),   base pass@k_i = sum_tj post_itj (1 - (1 - p_itj)^k).

Intervals: nonparametric bootstrap over problems (resample problems with replacement, refit both
stages from the main fit's optimum to convergence, predict), percentile: they carry
problem-sampling uncertainty and the counts' binomial noise, not the map's misspecification.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from markovfork.metrics.extrapolate import BetaBinomialFit, fit_beta_binomial
from markovfork.real.model import (
    GRID_SIZE, BasePosterior, MarkovParams, TypeNodes, adapt_nodes, base_posterior, evaluate, log_likelihood,
    log_terms,
)

__all__ = ["KINDS", "MapFit", "fit_prior", "fit_map", "theta_of", "predict", "subsample_counts", "param_dict"]

KINDS = ("markov", "logit")
STARTS = {  # starting points (unconstrained vectors), the best result is kept
    "markov": [MarkovParams(0.2, 0.05, 1.5, 1.0, 1.0).to_x(),  # the tied step towards the common group
               MarkovParams(0.2, 0.6, 1.5, 1.0, 1.0).to_x()],  # and away from it
    "logit": [np.array([1.0, 1.0]), np.array([0.5, 1.5])],
}
BOUNDS = {  # box of the unconstrained vectors (far from any fitted value; a fit on it is reported)
    "markov": [(-12.0, 12.0), (0.0, 1.0), (-10.0, 20.0), (-5.0, 5.0), (-5.0, 5.0)],
    "logit": [(-30.0, 30.0), (-10.0, 10.0)],
}
PARAM_NAMES = {"markov": ("r", "r_new", "lam", "alpha", "beta_phi"), "logit": ("a", "b")}
TOL = 0.01  # log-likelihood change between node sets at which the staged fit stops
MAX_STAGES = 5


def theta_of(kind: str, x):
    """The map's parameters from its unconstrained vector."""
    if kind == "markov":
        return MarkovParams.from_x(x)
    return float(x[0]), float(x[1])


def param_dict(kind: str, x) -> dict:
    if kind == "markov":
        return MarkovParams.from_x(x).as_dict()
    return {"a": float(x[0]), "b": float(x[1])}


@dataclass(frozen=True, eq=False)
class MapFit:
    """A fitted map: ``kind``, its unconstrained vector ``x``, the prior, each problem's base
    posterior and adapted nodes; ``converged``: the optimiser's last stage converged and the
    log-likelihood was stable between the last two node sets; ``stages``, ``evaluations``."""

    kind: str
    x: np.ndarray
    log_likelihood: float
    prior: BetaBinomialFit
    post: BasePosterior
    nodes: TypeNodes
    converged: bool = True
    stages: int = 1
    evaluations: int = 0
    on_bound: tuple = ()

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


def fit_map(kind: str, n_b, c_b, n_t, c_t, *, weights=None, prior=None, starts=None, size: int = GRID_SIZE,
            tol: float = TOL, max_stages: int = MAX_STAGES, bounds=None) -> MapFit:
    """Maximum-likelihood map of ``kind`` (``markov`` or ``logit``) from both models' counts
    (module docstring); ``weights`` are problem multiplicities, ``starts`` override the starts,
    ``bounds`` the box (a coordinate with equal bounds is held fixed: a likelihood profile)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    prior = fit_prior(n_b, c_b, weights) if prior is None else prior
    # each distinct (n_b, c_b, n_t, c_t) once, weighted by its multiplicity
    w = np.ones(np.size(c_b)) if weights is None else np.asarray(weights, dtype=np.float64)
    rows = np.stack([np.asarray(a, dtype=np.int64) for a in (n_b, c_b, n_t, c_t)], axis=1)
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    w_u = np.bincount(inverse, weights=w, minlength=uniq.shape[0])
    post_u = base_posterior(uniq[:, 0], uniq[:, 1], prior)
    keep = np.flatnonzero(w_u > 0)
    post_k, n_t_k, c_t_k, w_k = post_u.take(keep), uniq[keep, 2], uniq[keep, 3], w_u[keep]
    evals = [0]

    def nll(x, nodes):
        evals[0] += 1
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            value = -log_likelihood(evaluate(kind, theta_of(kind, x), post_k, nodes), n_t_k, c_t_k, w_k, False)
        return value if np.isfinite(value) else 1e300

    def adapt(x):
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            return adapt_nodes(kind, theta_of(kind, x), post_k, n_t_k, c_t_k, size)

    box = BOUNDS[kind] if bounds is None else bounds
    best = None
    for x0 in (STARTS[kind] if starts is None else starts):
        x = np.clip(np.asarray(x0, dtype=np.float64), *np.array(box).T)
        nodes = adapt(x)
        converged, stage = False, 0
        for stage in range(1, max_stages + 1):
            res = optimize.minimize(nll, x, args=(nodes,), method="L-BFGS-B", bounds=box,
                                    options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-6, "eps": 1e-7})
            x = res.x
            nodes = adapt(x)
            change = abs(nll(x, nodes) - res.fun)
            if change < tol:
                converged = bool(res.success)
                break
        value = nll(x, nodes)
        if best is None or value < best[0]:
            best = (value, x, converged, stage)
    value, x, converged, stage = best
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        nodes_u = adapt_nodes(kind, theta_of(kind, x), post_u, uniq[:, 2], uniq[:, 3], size)
        ll = log_likelihood(evaluate(kind, theta_of(kind, x), post_k, nodes_u.take(keep)), n_t_k, c_t_k, w_k)
    lo, hi = np.array(BOUNDS[kind]).T
    on_bound = tuple(name for name, v, a, b in zip(PARAM_NAMES[kind], x, lo, hi) if min(v - a, b - v) < 1e-3)
    post_full = base_posterior(n_b, c_b, prior)
    return MapFit(kind, np.asarray(x), ll, prior, post_full, nodes_u.take(inverse), converged, stage, evals[0], on_bound)


def _posterior(fit: MapFit, n_t, c_t):
    """(evaluated nodes, posterior weight of each node (T, P, G)); the atom (base and tuned rate 0)
    holds the rest of each problem's weight."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        ev = evaluate(fit.kind, theta_of(fit.kind, fit.x), fit.post, fit.nodes)
        nodes, atom = log_terms(ev, n_t, c_t)
        total = np.logaddexp(special.logsumexp(nodes, axis=(0, 2)), atom)
    return ev, np.exp(nodes - total[None, :, None])


def predict(fit: MapFit, n_t, c_t, k, *, n_full=None, n_b=None, c_b=None) -> dict:
    """Per-problem predictions (module docstring) at each k: ``tuned`` and ``base`` (P, K).
    With ``n_full`` (and the base counts ``n_b``, ``c_b``): ``lost`` (P,), the probability that the
    base solves the problem within n_full samples and the tuned model does not, given that the
    observed counts are the first n_b and n_t of those samples."""
    k = np.asarray(k, dtype=np.float64)
    ev, post = _posterior(fit, n_t, c_t)
    tuned = np.zeros((post.shape[1], k.size))
    base = np.zeros_like(tuned)
    for j, kk in enumerate(k):
        tuned[:, j] = np.sum(post * -np.expm1(kk * ev.log_1mq), axis=(0, 2))
        base[:, j] = np.sum(post * -np.expm1(kk * ev.log_1mp), axis=(0, 2))
    out = {"tuned": tuned, "base": base}
    if n_full is not None:
        rest_b = np.maximum(n_full - np.asarray(n_b), 0)[None, :, None]
        rest_t = np.maximum(n_full - np.asarray(n_t), 0)[None, :, None]
        solves_b = np.where(np.asarray(c_b)[None, :, None] > 0, 1.0, -np.expm1(rest_b * ev.log_1mp))
        fails_t = np.where(np.asarray(c_t)[None, :, None] > 0, 0.0, np.exp(rest_t * ev.log_1mq))
        out["lost"] = np.sum(post * solves_b * fails_t, axis=(0, 2))
    return out


def subsample_counts(n, c, m: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(m, c_sub) per problem: m of the n samples drawn without replacement (hypergeometric)."""
    n, c = np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64)
    if m > int(n.min()):
        raise ValueError(f"subsample must be <= the samples per problem ({int(n.min())}), got {m}")
    return np.full(c.shape, m, dtype=np.int64), rng.hypergeometric(c, n - c, m)
