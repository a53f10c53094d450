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
is not observed, so the tilt is a free parameter, fitted as the tuned rare mass r' in [0, 1]
(Delta = logit r - logit r'; r' = 0: the rare group gone). Only p is observed per problem; the
split of its correct mass is latent: split type k has logit u_H = logit u_E + kappa_k, and
s u_E + r u_H = p fixes both shares (always feasible, smooth in p); kappa_k = logit phi0_k - logit r,
phi0_k (the rare group's share of a hard problem's correct mass) at PHI_NODES Gauss-Legendre points
with Beta(alpha, beta_phi) prior weights. r <= 1/2 (the map is symmetric under swapping the groups).
Parameters theta = (r, r', lam, alpha, beta_phi).

The likelihood of the tuned counts (c'_i of n'_i) given the base counts integrates the base
rate's posterior under the heterogeneity prior (the zero-inflated beta of
:mod:`markovfork.metrics.extrapolate`): an atom at p = 0 with weight pi0_i and Beta(a + c_i, b + n_i - c_i)
otherwise, each type in its own variable y = logit u_E by the trapezoid rule on a window adapted
to the posterior given both counts (:func:`adapt_nodes`),

    L_i = pi0_i 1{c'_i = 0} + sum_t P(t) sum_j w_itj Bin(c'_i | n'_i, f_t(y_itj; theta)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from markovfork.metrics.extrapolate import BetaBinomialFit

__all__ = [
    "tilt", "two_group_map", "MarkovParams", "split_types", "common_share", "markov_components",
    "logit_map_components", "BasePosterior", "base_posterior", "TypeNodes", "Evaluated", "evaluate", "log_terms",
    "log_likelihood", "log_likelihood_per", "adapt_nodes",
]

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


PHI_NODES = 12  # split types: Gauss-Legendre points phi0_k of [0, 1], weights from Beta(alpha, beta_phi)


@dataclass(frozen=True)
class MarkovParams:
    """The map's shared parameters (module docstring). The tuned rare mass ``r_new`` = r' is a
    parameter itself (in [0, 1]; r' = 0, the rare group gone, is reachable), Delta = logit s' -
    logit s follows from it. r <= 1/2: the rare group is the smaller one (the map is symmetric
    under swapping the groups, r <-> 1 - r, Delta <-> -Delta, phi <-> 1 - phi, so this removes
    a label switch)."""

    r: float  # base probability of the rare group (1 - s), <= 1/2
    r_new: float  # tuned probability of the rare group r' = sigma(logit r - Delta)
    lam: float  # logit shift of each group's correct leaf (1 / beta at the KL optimum)
    alpha: float  # Beta(alpha, beta_phi) shape of the rare group's share phi of a problem's correct mass
    beta_phi: float

    @staticmethod
    def with_delta(r, delta, lam, alpha, beta_phi) -> "MarkovParams":
        return MarkovParams(r, float(special.expit(special.logit(r) - delta)), lam, alpha, beta_phi)

    @property
    def delta(self) -> float:
        with np.errstate(divide="ignore"):
            return float(special.logit(self.r) - special.logit(self.r_new))

    @staticmethod
    def from_x(x) -> "MarkovParams":
        """From the optimiser's vector (logit 2r, r', lam, log alpha, log beta_phi); r' in [0, 1]."""
        return MarkovParams(float(0.5 * special.expit(x[0])), float(np.clip(x[1], 0.0, 1.0)), float(x[2]),
                            float(np.exp(x[3])), float(np.exp(x[4])))

    def to_x(self) -> np.ndarray:
        return np.array([special.logit(2.0 * self.r), self.r_new, self.lam, np.log(self.alpha), np.log(self.beta_phi)])

    def as_dict(self) -> dict:
        return {"r": self.r, "r_new": self.r_new, "delta": self.delta, "lam": self.lam, "alpha": self.alpha,
                "beta_phi": self.beta_phi}


def _v_nodes():
    t, wt = np.polynomial.legendre.leggauss(PHI_NODES)
    return 0.5 * (t + 1.0), 0.5 * wt


def split_types(params: MarkovParams):
    """[(log P(type k), kappa_k)]: type k has the rare group's correct log-odds above the common
    group's by kappa_k = logit phi0_k - logit r, i.e. the rare group holds the share phi0_k of the
    correct mass of a hard problem (p -> 0); phi0_k are Gauss-Legendre points of [0, 1] with prior
    weights proportional to the Beta(alpha, beta_phi) density times the Gauss-Legendre weight."""
    v, gw = _v_nodes()
    log_dens = (params.alpha - 1.0) * np.log(v) + (params.beta_phi - 1.0) * np.log1p(-v) + np.log(gw)
    log_dens = log_dens - special.logsumexp(log_dens)
    kappa = special.logit(v) - special.logit(params.r)
    return list(zip(log_dens, kappa))


def _log_mix(log_a, y1, log_b, y2):
    """(log(a sigma(y1) + b sigma(y2)), log(a sigma(-y1) + b sigma(-y2))) for a + b = 1."""
    return (np.logaddexp(log_a + special.log_expit(y1), log_b + special.log_expit(y2)),
            np.logaddexp(log_a + special.log_expit(-y1), log_b + special.log_expit(-y2)))


def common_share(p, kappa: float, r: float, iterations: int = 60) -> np.ndarray:
    """u_E solving s u_E + r T_kappa(u_E) = p (unique: the left side increases from 0 to 1), by
    Newton steps in y = logit u_E on logit of the left side (slope in (0, 1]), with bisection
    safeguard. Used to evaluate a type at given base rates (simulation, reference, tests); the
    likelihood integrates in y itself and never solves."""
    p = np.asarray(p, dtype=np.float64)
    s = 1.0 - r
    inner = (p > 0.0) & (p < 1.0)
    with np.errstate(divide="ignore"):
        target = special.logit(np.where(inner, p, 0.5))
    c1, c2 = np.log(s + r * np.exp(kappa)), -np.log(s + r * np.exp(-kappa))
    lo, hi = target - max(c1, c2) - 1.0, target - min(c1, c2) + 1.0
    y = target - (1.0 - p) * c1 - p * c2
    for _ in range(iterations):
        lm, l1m = _log_mix(np.log(s), y, np.log(r), y + kappa)
        f = lm - l1m - target
        lo, hi = np.where(f < 0, y, lo), np.where(f > 0, y, hi)
        slope = (s * special.expit(y) * special.expit(-y) + r * special.expit(y + kappa) * special.expit(-y - kappa)) \
            / np.exp(lm + l1m)
        y_new = y - f / slope
        y = np.where((y_new >= lo) & (y_new <= hi), y_new, 0.5 * (lo + hi))
        if np.max(np.abs(np.where(inner, f, 0.0)), initial=0.0) < 1e-13:
            break
    return np.where(inner, special.expit(y), np.where(p >= 1.0, 1.0, 0.0))


def markov_components(p, params: MarkovParams):
    """[(P(type), tuned rate)] over the split types at base rates ``p``: type k's shares solve
    s u_E + r u_H = p with logit u_H = logit u_E + kappa_k (:func:`split_types`), always feasible
    and smooth in p, and p' = s' T_lam(u_E) + r' T_lam(u_H)."""
    p = np.asarray(p, dtype=np.float64)
    r_new = params.r_new
    out = []
    for log_w, kappa in split_types(params):
        u_e = common_share(p, kappa, params.r)
        out.append((float(np.exp(log_w)), (1.0 - r_new) * tilt(u_e, params.lam) + r_new * tilt(tilt(u_e, kappa), params.lam)))
    return out


def logit_map_components(p, a: float, b: float):
    """[(1, q)] with logit q = a + b logit p (q(0) = 0, q(1) = 1): the two-parameter logit map."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore"):
        q = special.expit(a + b * special.logit(p))
    return [(1.0, np.where(p <= 0.0, 0.0, np.where(p >= 1.0, 1.0, q)))]


X_LIMIT = 50.0  # the base-rate integral runs over logits in [-X_LIMIT, X_LIMIT] (p from 2e-22)
SPAN = 200.0  # the base posterior's range: where its log density in x = logit p is within SPAN of its maximum
DROP = 35.0  # an adapted window: where the log integrand is within DROP of its maximum (e^-35 = 6e-16)
GRID_SIZE = 48  # trapezoid nodes per problem and type in the adapted window
DENSE_SIZE = 400  # nodes of the scan that places the window


@dataclass(frozen=True, eq=False)
class BasePosterior:
    """Each problem's base-rate posterior under the prior: atom at 0 with log weight ``log_zero``,
    Beta(A, B) with log weight ``log_beta``; its log density in x = logit p is
    A log sigma(x) + B log sigma(-x) - log B(A, B) (concave); ``lo``/``hi``: its range in x (SPAN)."""

    a_post: np.ndarray
    b_post: np.ndarray
    log_zero: np.ndarray
    log_beta: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def take(self, idx) -> "BasePosterior":
        return BasePosterior(*(getattr(self, f)[idx] for f in ("a_post", "b_post", "log_zero", "log_beta", "lo", "hi")))

    def log_density_x(self, x) -> np.ndarray:
        a, b = self.a_post[:, None], self.b_post[:, None]
        return a * special.log_expit(x) + b * special.log_expit(-x) - special.betaln(a, b)


def base_posterior(n, c, prior: BetaBinomialFit) -> BasePosterior:
    """Posterior of each problem's base rate given its counts (n_i, c_i) under ``prior``: the atom
    pi0_i = w / (w + (1 - w) BB(0 | n_i)) at p = 0 when c_i = 0, and Beta(a + c_i, b + n_i - c_i)
    with weight 1 - pi0_i."""
    n = np.asarray(n, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    a_post, b_post = prior.a + c, prior.b + n - c
    log_bb0 = special.betaln(prior.a, prior.b + n) - special.betaln(prior.a, prior.b)  # log P(c=0 | beta part)
    with np.errstate(divide="ignore"):
        log_zero = np.where(c == 0, np.log(prior.w) - np.logaddexp(np.log(prior.w), np.log1p(-prior.w) + log_bb0),
                            -np.inf)
        log_beta = np.log(-np.expm1(log_zero))
    xs = np.linspace(-X_LIMIT, X_LIMIT, 2001)  # the range: a fine scan of the concave log density
    post = BasePosterior(a_post, b_post, log_zero, log_beta, np.zeros_like(n), np.zeros_like(n))
    dens = post.log_density_x(xs[None, :])
    inside = dens >= dens.max(axis=1, keepdims=True) - SPAN
    first = np.argmax(inside, axis=1)
    last = xs.size - 1 - np.argmax(inside[:, ::-1], axis=1)
    return BasePosterior(a_post, b_post, log_zero, log_beta, xs[np.maximum(first - 1, 0)],
                         xs[np.minimum(last + 1, xs.size - 1)])


@dataclass(frozen=True, eq=False)
class TypeNodes:
    """The quadrature: per type t (markov: split types; logit: one), per problem, trapezoid nodes
    ``y`` (T, P, G) in the type's own integration variable (markov: y = logit u_E, p = s sigma(y)
    + r sigma(y + kappa_t); logit: y = logit p) and their log step weights ``log_step``."""

    y: np.ndarray
    log_step: np.ndarray

    def take(self, idx) -> "TypeNodes":
        return TypeNodes(self.y[:, idx], self.log_step[:, idx])


def _trapezoid(lo, hi, size):
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    y = lo[..., None] + (hi - lo)[..., None] * np.linspace(0.0, 1.0, size)
    wt = np.ones(size)
    wt[[0, -1]] = 0.5
    with np.errstate(divide="ignore"):
        return y, np.log((hi - lo) / (size - 1))[..., None] + np.log(wt)


@dataclass(frozen=True, eq=False)
class Evaluated:
    """A map evaluated on the nodes: per type, the log quadrature weight of each node including
    the base posterior and P(type) (``log_w`` (T, P, G)), base rate ``p`` (and log(1 - p)) and tuned rate as
    (log q, log(1 - q)); the atom at p = 0 (tuned rate 0) has log weight ``log_zero`` (P,)."""

    log_w: np.ndarray
    p: np.ndarray
    log_1mp: np.ndarray
    log_q: np.ndarray
    log_1mq: np.ndarray
    log_zero: np.ndarray


def _base_part(kind, r, post: BasePosterior, nodes: TypeNodes):
    """(log weight without P(type) (T, P, G), log p, log(1 - p)): the base posterior's density in
    the types' variables times the trapezoid step; depends on the map only through r."""
    a_post, b_post = post.a_post[None, :, None], post.b_post[None, :, None]
    y = nodes.y
    if kind == "markov":
        s = 1.0 - r
        kappa = _kappas(r)[:, None, None]
        log_p, log_1mp = _log_mix(np.log(s), y, np.log(r), y + kappa)
        log_dp = np.logaddexp(np.log(s) + special.log_expit(y) + special.log_expit(-y),
                              np.log(r) + special.log_expit(y + kappa) + special.log_expit(-y - kappa))
    else:
        log_p, log_1mp = special.log_expit(y), special.log_expit(-y)
        log_dp = log_p + log_1mp
    log_dens = (a_post - 1.0) * log_p + (b_post - 1.0) * log_1mp - special.betaln(a_post, b_post)
    return post.log_beta[None, :, None] + log_dens + log_dp + nodes.log_step, log_p, log_1mp


def _kappas(r):
    return special.logit(_v_nodes()[0]) - special.logit(r)


def _log_pair(w1, a1, w2, a2):
    """(log(w1 sigma(a1) + w2 sigma(a2)), log(w1 sigma(-a1) + w2 sigma(-a2))), w1 + w2 = 1, for
    |a| <= 700 (the nodes' logits stay within about 80)."""
    e1, e2 = np.exp(-a1), np.exp(-a2)
    d1, d2 = 1.0 / (1.0 + e1), 1.0 / (1.0 + e2)
    return np.log(w1 * d1 + w2 * d2), np.log(w1 * e1 * d1 + w2 * e2 * d2)


class _BaseCache:
    """The last base part per (nodes, r): the optimiser's finite differences in the other
    parameters reuse it."""

    def __init__(self):
        self.key, self.post, self.nodes, self.value = None, None, None, None

    def get(self, kind, r, post, nodes):
        if (kind, r) != self.key or post is not self.post or nodes is not self.nodes:  # held: ids stay unique
            self.key, self.post, self.nodes, self.value = (kind, r), post, nodes, _base_part(kind, r, post, nodes)
        return self.value


_CACHE = _BaseCache()


def evaluate(kind: str, theta, post: BasePosterior, nodes: TypeNodes) -> Evaluated:
    """All nodes' weights and rates for the map ``kind`` with parameters ``theta`` (MarkovParams,
    or (a, b) of the logit map). Markov type t integrates in y = logit u_E: p(y) = s sigma(y) +
    r sigma(y + kappa_t), the posterior density times dp/dy, and p' = s' sigma(y + lam) +
    r' sigma(y + kappa_t + lam) (T_lam in log-odds)."""
    y = nodes.y
    if kind == "markov":
        base_w, log_p, log_1mp = _CACHE.get(kind, theta.r, post, nodes)
        lw_t = np.array([lw for lw, _ in split_types(theta)])[:, None, None]
        r_new = theta.r_new
        a1 = y + theta.lam
        log_q, log_1mq = _log_pair(1.0 - r_new, a1, r_new, a1 + _kappas(theta.r)[:, None, None])
        log_w = base_w + lw_t
    else:
        a, b = theta
        log_w, log_p, log_1mp = _CACHE.get(kind, 0.0, post, nodes)
        a1 = a + b * y
        log_q, log_1mq = special.log_expit(a1), special.log_expit(-a1)
    return Evaluated(log_w, np.exp(log_p), log_1mp, log_q, log_1mq, post.log_zero)


def _log_choose(n, c):
    return special.gammaln(n + 1.0) - special.gammaln(c + 1.0) - special.gammaln(n - c + 1.0)


def log_terms(ev: Evaluated, n_t, c_t, with_choose: bool = True):
    """(log of every node's summand (T, P, G), the atom's (P,)): weight times Bin(c'_i | n'_i, q)."""
    n_t = np.asarray(n_t, dtype=np.float64)
    c_t = np.asarray(c_t, dtype=np.float64)
    choose = _log_choose(n_t, c_t) if with_choose else np.zeros_like(n_t)
    nodes = ev.log_w + c_t[:, None] * ev.log_q + (n_t - c_t)[:, None] * ev.log_1mq + choose[:, None]
    atom = np.where(c_t == 0, ev.log_zero + choose, -np.inf)  # tuned rate 0 on the atom
    return nodes, atom


def log_likelihood_per(ev: Evaluated, n_t, c_t, with_choose: bool = True) -> np.ndarray:
    nodes, atom = log_terms(ev, n_t, c_t, with_choose)
    return np.logaddexp(special.logsumexp(nodes, axis=(0, 2)), atom)


def log_likelihood(ev: Evaluated, n_t, c_t, weights=None, with_choose: bool = True) -> float:
    """sum_i m_i log L_i (module docstring; m_i: problem multiplicities, default 1)."""
    per = log_likelihood_per(ev, n_t, c_t, with_choose)
    return float(np.sum(per if weights is None else weights * per))


def _y_range(kind, theta, post: BasePosterior):
    """(T, P) bounds in each type's variable covering the base posterior's range in x = logit p."""
    if kind != "markov":
        return post.lo[None, :], post.hi[None, :]
    kappa = np.array([k for _, k in split_types(theta)])[:, None]
    r, s = theta.r, 1.0 - theta.r
    c1, c2 = np.log(s + r * np.exp(kappa)), -np.log(s + r * np.exp(-kappa))  # logit p(y) - y lies between
    return post.lo[None, :] - np.maximum(c1, c2), post.hi[None, :] - np.minimum(c1, c2)


def adapt_nodes(kind: str, theta, post: BasePosterior, n_t, c_t, size: int = GRID_SIZE,
                dense: int = DENSE_SIZE) -> TypeNodes:
    """The quadrature matched to each problem's and type's posterior given BOTH counts under the
    map at ``theta``: a scan of ``dense`` nodes over the base posterior's range finds where the
    summand (posterior density x P(type) x Bin(c'_i | p'(y))) is within DROP of its maximum (one
    scan step of margin each side), and ``size`` trapezoid nodes cover that window. The window
    follows the tuned count into the base posterior's tails, where a fixed rule in the base
    posterior's own quantile scale has no nodes; the trapezoid rule is spectrally accurate for a
    smooth summand that is negligible at the window's ends. Fixed nodes are then used for every
    theta of an optimisation stage (a smooth objective), and adapted again at its optimum."""
    lo, hi = _y_range(kind, theta, post)
    y, log_step = _trapezoid(lo, hi, dense)
    scan, _ = log_terms(evaluate(kind, theta, post, TypeNodes(y, log_step)), n_t, c_t)
    scan = scan - log_step  # the summand's density, not its quadrature weight
    inside = scan >= scan.max(axis=2, keepdims=True) - DROP
    first = np.argmax(inside, axis=2)
    last = dense - 1 - np.argmax(inside[..., ::-1], axis=2)
    lo_w = np.take_along_axis(y, np.maximum(first - 1, 0)[..., None], axis=2)[..., 0]
    hi_w = np.take_along_axis(y, np.minimum(last + 1, dense - 1)[..., None], axis=2)[..., 0]
    return TypeNodes(*_trapezoid(lo_w, hi_w, size))
