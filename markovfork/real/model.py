"""The post-training map of one problem (a two-group tree) and the likelihood of tuned counts.

Tree of one problem: a start node g with two children, the common group E (base probability
s = 1 - r, its step logit tied across all problems) and the rare group H (probability r); each
group ends in a correct and a wrong leaf, with the problem's own correct shares u_E and u_H.
The base success rate is p = s u_E + r u_H. RL with verifiable rewards and a KL penalty beta to
the base (REINFORCE, exact expected gradient, :mod:`markovfork.rl.engines`) converges to the
per-step tilt (docs/real-models.md has the derivation; tests/real/test_model.py checks it
against the engine):

    u' = T_lam(u) = u e^lam / (u e^lam + 1 - u),      lam = 1 / beta   (each group's leaf step)
    s' = sigma(logit s + Delta),  Delta = (Vbar_E - Vbar_H) / beta        (the tied group step)
    p' = s' T_lam(u_E) + (1 - s') T_lam(u_H)                              (:func:`two_group_map`)

where Vbar_X is the training population's mean tuned value of group X. The training population
is not observed, so Delta is a free parameter (the pull of the tied step towards the common
group). Only p is observed per problem; the split of its correct mass between the groups is latent:
the rare group holds the share phi, u_H = phi p / r, u_E = (1 - phi) p / s, with phi drawn from a
Beta(alpha, beta_phi) restricted to the splits that fit in the groups (both shares <= 1), on
PHI_NODES fixed points plus phi = r (u_E = u_H = p, always possible). phi near 1: a problem only
rare paths solve, lost as r' = sigma(logit r - Delta) shrinks; phi near 0: only common paths,
sharpened twice. Parameters theta = (r, Delta, lam, alpha, beta_phi).

The likelihood of the tuned counts (c'_i of n'_i) given the base counts integrates the base
rate's posterior under the heterogeneity prior (the zero-inflated beta of
:mod:`markovfork.metrics.extrapolate`): an atom at p = 0 with weight pi0_i and Beta(a + c_i, b + n_i - c_i)
otherwise, integrated by G-point Gauss-Legendre in the Beta's quantile scale,

    L_i = sum_j w_ij sum_t P(t | p_ij) Bin(c'_i | n'_i, f_t(p_ij; theta)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from markovfork.metrics.extrapolate import BetaBinomialFit

__all__ = [
    "tilt", "two_group_map", "MarkovParams", "markov_components", "logit_map_components", "PosteriorGrid",
    "posterior_grid", "log_likelihood", "Q_FLOOR",
]

Q_FLOOR = 1e-12  # a tuned rate is kept in [Q_FLOOR, 1 - Q_FLOOR] in the binomial likelihood


def tilt(u, lam):
    """T_lam(u) = u e^lam / (u e^lam + 1 - u): the correct/wrong odds times e^lam (T(0) = 0, T(1) = 1)."""
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = u / (u + (1.0 - u) * np.exp(-lam))
    return np.where(u > 0.0, out, 0.0)  # 0 / 0 only at u = 0


def two_group_map(u_e, u_h, s, delta, lam):
    """p' = s' T_lam(u_E) + (1 - s') T_lam(u_H), s' = sigma(logit s + Delta)."""
    s_new = special.expit(special.logit(s) + delta)
    return s_new * tilt(u_e, lam) + (1.0 - s_new) * tilt(u_h, lam)


PHI_NODES = 12  # fixed split points phi (Gauss-Legendre on [0, 1]), plus the point phi = r


@dataclass(frozen=True)
class MarkovParams:
    """The map's shared parameters (module docstring)."""

    r: float  # base probability of the rare group (1 - s)
    delta: float  # logit shift of the tied group step towards the common group
    lam: float  # logit shift of each group's correct leaf (1 / beta at the KL optimum)
    alpha: float  # Beta(alpha, beta_phi) shape of the rare group's share phi of a problem's correct mass
    beta_phi: float

    @staticmethod
    def from_x(x) -> "MarkovParams":
        """From the optimiser's unconstrained vector (logit r, Delta, lam, log alpha, log beta_phi)."""
        return MarkovParams(float(special.expit(x[0])), float(x[1]), float(x[2]), float(np.exp(x[3])),
                            float(np.exp(x[4])))

    def to_x(self) -> np.ndarray:
        return np.array([special.logit(self.r), self.delta, self.lam, np.log(self.alpha), np.log(self.beta_phi)])

    def as_dict(self) -> dict:
        return {"r": self.r, "delta": self.delta, "lam": self.lam, "alpha": self.alpha, "beta_phi": self.beta_phi}


def _phi_nodes() -> np.ndarray:
    t = np.polynomial.legendre.leggauss(PHI_NODES)[0]
    return 0.5 * (t + 1.0)


def markov_components(p, params: MarkovParams):
    """[(P(phi | p), tuned rate)] over the split points phi at base rates ``p``: the rare group holds
    the share phi of the problem's correct mass, u_H = phi p / r and u_E = (1 - phi) p / s, and
    p' = s' T_lam(u_E) + r' T_lam(u_H). P(phi | p) is proportional to the Beta(alpha, beta_phi)
    density at the points where both shares are <= 1 (phi = r, the proportional split, always is)."""
    p = np.asarray(p, dtype=np.float64)
    r, s = params.r, 1.0 - params.r
    phis = np.append(_phi_nodes(), r)
    log_dens = (params.alpha - 1.0) * np.log(phis) + (params.beta_phi - 1.0) * np.log1p(-phis)
    dens = np.exp(log_dens - log_dens.max())
    r_new = special.expit(special.logit(r) - params.delta)
    s_new = 1.0 - r_new
    out, total = [], np.zeros_like(p)
    for phi, d in zip(phis, dens):
        u_h, u_e = phi * p / r, (1.0 - phi) * p / s
        ok = (u_h <= 1.0 + 1e-12) & (u_e <= 1.0 + 1e-12)
        weight = d * ok
        total += weight
        q = s_new * tilt(u_e, params.lam) + r_new * tilt(u_h, params.lam)
        out.append((weight, q))
    return [(w / total, q) for w, q in out]


def logit_map_components(p, a: float, b: float):
    """[(1, q)] with logit q = a + b logit p (q(0) = 0, q(1) = 1): the two-parameter logit map."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore"):
        q = special.expit(a + b * special.logit(p))
    return [(np.ones_like(p), np.where(p <= 0.0, 0.0, np.where(p >= 1.0, 1.0, q)))]


@dataclass(frozen=True, eq=False)
class PosteriorGrid:
    """Quadrature of each problem's base-rate posterior: nodes p (P, G+1), log weights (P, G+1);
    column 0 is the atom at p = 0 (weight 0 where c > 0 or the prior has no zero mass)."""

    p: np.ndarray
    log_w: np.ndarray


def posterior_grid(n, c, prior: BetaBinomialFit, size: int = 32) -> PosteriorGrid:
    """Posterior of each problem's base rate given its counts (n_i, c_i) under ``prior``: the atom
    pi0_i = w / (w + (1 - w) BB(0 | n_i)) at p = 0 when c_i = 0, and Beta(a + c_i, b + n_i - c_i) with
    weight 1 - pi0_i at Gauss-Legendre nodes of its quantile scale."""
    n = np.asarray(n, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    t, wt = np.polynomial.legendre.leggauss(size)
    t, wt = 0.5 * (t + 1.0), 0.5 * wt
    a_post, b_post = prior.a + c, prior.b + n - c
    nodes = special.betaincinv(a_post[:, None], b_post[:, None], t[None, :])
    log_bb0 = special.betaln(prior.a, prior.b + n) - special.betaln(prior.a, prior.b)  # log P(c=0 | beta part)
    with np.errstate(divide="ignore"):
        log_zero = np.where(c == 0, np.log(prior.w) - np.logaddexp(np.log(prior.w), np.log1p(-prior.w) + log_bb0),
                            -np.inf)
        log_beta = np.log(-np.expm1(log_zero))
    log_w = np.concatenate([log_zero[:, None], log_beta[:, None] + np.log(wt)[None, :]], axis=1)
    return PosteriorGrid(np.concatenate([np.zeros((n.size, 1)), nodes], axis=1), log_w)


def _log_binomial(n, c, q, log_choose=None):
    """log Bin(c | n, q) with q clipped to [Q_FLOOR, 1 - Q_FLOOR] (n, c broadcast as (P, 1));
    ``log_choose`` may be given (precomputed) or 0 (dropped, as in an optimiser's objective)."""
    q = np.clip(q, Q_FLOOR, 1.0 - Q_FLOOR)
    if log_choose is None:
        log_choose = special.gammaln(n + 1.0) - special.gammaln(c + 1.0) - special.gammaln(n - c + 1.0)
    return log_choose + c * np.log(q) + (n - c) * np.log1p(-q)


def log_joint(grid: PosteriorGrid, components, n_t, c_t, log_choose=None) -> np.ndarray:
    """(P, G+1) log of w_ij sum_t P(t | p_ij) Bin(c'_i | f_t(p_ij)) (t: the types or split points)."""
    n_t = np.asarray(n_t, dtype=np.float64)[:, None]
    c_t = np.asarray(c_t, dtype=np.float64)[:, None]
    # the binomial pmf itself (not its log) summed over the types, scaled by its row maximum
    terms = np.stack([_log_binomial(n_t, c_t, q, 0.0) for _, q in components])
    top = terms.max(axis=(0, 2))[:, None]
    mix = sum(weight * np.exp(t - top) for (weight, _), t in zip(components, terms))
    with np.errstate(divide="ignore"):
        extra = top if log_choose is None else top + log_choose
        if log_choose is None:
            extra = extra + (special.gammaln(n_t + 1.0) - special.gammaln(c_t + 1.0) - special.gammaln(n_t - c_t + 1.0))
        return grid.log_w + np.log(mix) + extra


def log_likelihood(grid: PosteriorGrid, components, n_t, c_t, weights=None, log_choose=None) -> float:
    """sum_i m_i log L_i (module docstring; m_i: problem multiplicities, default 1); ``log_choose=0``
    drops the binomial coefficients (a constant of the parameters)."""
    per = special.logsumexp(log_joint(grid, components, n_t, c_t, log_choose), axis=1)
    return float(np.sum(per if weights is None else weights * per))
