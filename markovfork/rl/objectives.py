"""The RLVR update rules on one problem: the exact expected gradient (analytic engine) and its
Monte Carlo estimate from a group of G rollouts (sampled engine).

With p the problem's success probability, r(y) the 0/1 reward of leaf y and grad p = sum_y
pi(y) r(y) grad log pi(y), the analytic gradient of each method is ``m(p) grad p`` plus the KL
term, times the reject-easy factor ``(1 - p_ref)^R``:

    reinforce, reinforce-baseline   m = 1             (a baseline changes the variance only)
    grpo      m = g(1) - g(0),  g(r) = E_{c ~ Bin(G-1, p)} (r - (c+r)/G) / (std_G(c+r) + eps)
    raft      m = (1 - (1 - p)^G) / p                 (mean over a group's correct samples)
    passk     m = k (1 - p)^(k-1)                     (grad of 1 - (1 - p)^k)
    unlikely  leaf values r(y) (1 - lambda q_<(y)),   q_<(y) = sum of pi(y') over correct y'
              with pi(y') < pi(y): a correct path is penalised by the mass of rarer correct ones
    KL        - beta sum_u R(u) grad KL(pi(.|u) || pi_ref(.|u))    (visit weights held fixed)

Each sampled estimator below has exactly that expectation (tested against the analytic engine).
PPO is in :func:`ppo_gradient` and :func:`ppo_sample_gradient`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from typing import NamedTuple

from markovfork.rl.config import GRPO_EPS, METHODS
from markovfork.model.kernels import backward_value, forward_reach
from markovfork.rl.tree_ops import add_kl_gradient, add_linear_gradient, rollout

M_REINFORCE, M_BASELINE, M_RAFT, M_PPO, M_GRPO, M_PASSK, M_UNLIKELY = range(len(METHODS))


class OldPolicy(NamedTuple):
    """PPO's "old" policy on one problem (:func:`ppo_gradient`): step probabilities, reach
    R_old, value Q_old and the nodes below the start, each (N,)."""

    probs: np.ndarray
    reach: np.ndarray
    value: np.ndarray
    inside: np.ndarray


@numba.njit(cache=True)
def _binom_pmf(n, c, p):
    if p <= 0.0:
        return 1.0 if c == 0 else 0.0
    if p >= 1.0:
        return 1.0 if c == n else 0.0
    lg = math.lgamma(n + 1) - math.lgamma(c + 1) - math.lgamma(n - c + 1)
    return math.exp(lg + c * math.log(p) + (n - c) * math.log1p(-p))


@numba.njit(cache=True)
def grpo_advantage(r, c, g):
    """(r - c/G) / (std + eps) for a sample with reward r in a group of G with c correct."""
    mean = c / g
    return (r - mean) / (math.sqrt(mean * (1.0 - mean)) + GRPO_EPS)


@numba.njit(cache=True)
def method_weight(method, p, g, k):
    """m(p) of the module docstring for the linear methods."""
    if method == M_GRPO:
        if g < 2:
            return 0.0
        w = 0.0
        for c in range(g):
            pmf = _binom_pmf(g - 1, c, p)
            w += pmf * (grpo_advantage(1.0, c + 1, g) - grpo_advantage(0.0, c, g))
        return w
    if method == M_RAFT:
        if p <= 0.0:
            return float(g)  # the limit p -> 0
        if p >= 1.0:
            return 1.0
        return -math.expm1(g * math.log1p(-p)) / p
    if method == M_PASSK:
        return k * (1.0 - p) ** (k - 1)
    return 1.0


@numba.njit(cache=True)
def _unlikely_values(child_start, reach, correct, inside, lam, leaf_value):
    """leaf_value[y] = r(y) (1 - lam q_<(y)) for the leaves below the start (0 elsewhere)."""
    n = child_start.shape[0] - 1
    ids = np.empty(n, dtype=np.int64)
    m = 0
    for v in range(n):
        leaf_value[v] = 0.0
        if inside[v] and child_start[v + 1] == child_start[v] and correct[v]:
            ids[m] = v
            m += 1
    ids = ids[:m]
    order = np.argsort(np.array([reach[v] for v in ids]), kind="mergesort")
    below = 0.0  # mass of correct leaves strictly rarer than the current group of ties
    i = 0
    while i < m:
        j = i
        tie_mass = 0.0
        while j < m and reach[ids[order[j]]] == reach[ids[order[i]]]:
            tie_mass += reach[ids[order[j]]]
            j += 1
        for t in range(i, j):
            leaf_value[ids[order[t]]] = 1.0 - lam * below
        below += tie_mass
        i = j


@numba.njit(cache=True)
def analytic_gradient(settings, child_start, parent, probs, correct, start, ref_probs, p_reject, buf, grad):
    """grad += the method's expected gradient w.r.t. the step logits of one problem (see the
    module docstring); ``p_reject`` is the reject reference's success probability (-1: the
    current policy's). Returns the success probability p. ``settings``: :class:`markovfork.rl.config.Settings`;
    ``buf``: (3, N) scratch."""
    n = child_start.shape[0] - 1
    reach, value, leafv = buf[0], buf[1], buf[2]
    inside = np.zeros(n, dtype=np.bool_)
    forward_reach(parent, probs, start, reach, inside)
    for v in range(n):
        leafv[v] = 1.0 if correct[v] else 0.0
    backward_value(child_start, probs, leafv, value)
    p = value[start]
    r = settings.reject
    factor = 1.0
    if r > 0:
        pr = p if p_reject < 0.0 else p_reject
        factor = (1.0 - min(max(pr, 0.0), 1.0)) ** r
        if factor == 0.0:
            return p
    method = settings.method
    if method == M_UNLIKELY:
        _unlikely_values(child_start, reach, correct, inside, settings.unlikeliness, leafv)
        backward_value(child_start, probs, leafv, value)
        add_linear_gradient(parent, probs, reach, value, inside, start, factor, grad)
    else:
        m = method_weight(method, p, settings.group, settings.passk)
        add_linear_gradient(parent, probs, reach, value, inside, start, factor * m, grad)
    beta = settings.kl
    if beta > 0.0:
        add_kl_gradient(child_start, probs, ref_probs, reach, inside, factor * beta, grad)
    return p


@numba.njit(cache=True)
def ppo_gradient(child_start, parent, probs, old, start, baseline, clip, scale, grad):
    """grad += scale * d/dz of the exact expected per-step clipped surrogate under the old policy
    ``old`` (:class:`OldPolicy`),
    ``sum_v R_old(v) [Q_old(v) min(rho A+, clip(rho) A+) + (1 - Q_old(v)) min(rho A-, clip(rho) A-)]``
    with rho = pi(v)/pi_old(v), A+ = 1 - b, A- = -b (b: the old success probability)."""
    old_probs, old_reach, old_value, inside = old.probs, old.reach, old.value, old.inside
    n = child_start.shape[0] - 1
    total = np.zeros(n)
    coef_rho = np.zeros(n)
    for v in range(start + 1, n):
        if not inside[v] or old_probs[v] <= 0.0:
            continue
        rho = probs[v] / old_probs[v]
        c = 0.0
        if rho < 1.0 + clip:
            c += old_value[v] * (1.0 - baseline)
        if rho > 1.0 - clip:
            c -= (1.0 - old_value[v]) * baseline
        coef_rho[v] = scale * old_reach[v] * c * rho
        total[parent[v]] += coef_rho[v]
    for v in range(start + 1, n):
        if inside[v]:
            grad[v] += coef_rho[v] - probs[v] * total[parent[v]]


@numba.njit(cache=True)
def draw_group(child_start, probs, correct, start, state, leaves, rewards):
    """G = leaves.size rollouts from ``start``: leaves and 0/1 rewards filled in; returns the
    number correct."""
    c = 0
    for i in range(leaves.shape[0]):
        leaf, _ = rollout(child_start, probs, start, state)
        leaves[i] = leaf
        rewards[i] = 1.0 if correct[leaf] else 0.0
        c += int(rewards[i])
    return c


@numba.njit(cache=True)
def any_correct(child_start, probs, correct, start, state, r):
    """True when one of r rollouts from ``start`` ends at a correct leaf (all r are drawn)."""
    hit = False
    for _ in range(r):
        leaf, _ = rollout(child_start, probs, start, state)
        if correct[leaf]:
            hit = True
    return hit


@numba.njit(cache=True)
def sample_coefficients(settings, reach, leaves, rewards, coef):
    """coef[i]: the weight of grad log pi(y_i) in the method's estimate (already divided by G)."""
    g = leaves.shape[0]
    method = settings.method
    c = 0.0
    for i in range(g):
        c += rewards[i]
    for i in range(g):
        r = rewards[i]
        loo = (c - r) / (g - 1) if g > 1 else 0.0  # leave-one-out mean reward
        if method == M_REINFORCE:
            a = r
        elif method == M_BASELINE or method == M_PPO:
            a = r - loo
        elif method == M_GRPO:
            a = grpo_advantage(r, c, g)
        elif method == M_RAFT:
            a = g * r / c if c > 0 else 0.0
        elif method == M_PASSK:
            k = settings.passk
            neg_others = (g - 1) - (c - r)
            credit = 1.0 if r > 0 else 1.0 - _comb_ratio(neg_others, g - 1, k - 1)
            a = k * (credit - (1.0 - _comb_ratio(neg_others, g - 1, k)))
        else:  # M_UNLIKELY
            a = -loo
            if r > 0:
                q_i = reach[leaves[i]]  # the path's probability
                rarer = 0
                for j in range(g):
                    if j != i and rewards[j] > 0 and reach[leaves[j]] < q_i:
                        rarer += 1
                a += 1.0 - settings.unlikeliness * rarer / (g - 1)
        coef[i] = a / g


@numba.njit(cache=True)
def _comb_ratio(m, n, k):
    """C(m, k) / C(n, k) for m <= n (0 when k > m), as a running product."""
    if k > m:
        return 0.0
    out = 1.0
    for j in range(k):
        out *= (m - j) / (n - j)
    return out


@numba.njit(cache=True)
def add_visit_kl(child_start, parent, probs, ref_probs, leaves, start, beta, visits, ones, grad):
    """grad += the per-step KL gradient at the nodes the rollouts visited, each visit weighing 1/G."""
    g = leaves.shape[0]
    visits[:] = 0.0
    for i in range(g):
        v = leaves[i]
        while v != start:
            v = parent[v]
            visits[v] += 1.0 / g
    add_kl_gradient(child_start, probs, ref_probs, visits, ones, beta, grad)


@numba.njit(cache=True)
def ppo_sample_gradient(child_start, parent, probs, old_probs, leaves, advantages, start, clip, scale, grad):
    """grad += scale * d/dz of the per-step clipped surrogate summed over the stored rollouts,
    ``sum_i sum_(u->v on y_i) min(rho A_i, clip(rho) A_i)``, rho = pi(v)/pi_old(v)."""
    for i in range(leaves.shape[0]):
        a = advantages[i]
        v = leaves[i]
        while v != start:
            u = parent[v]
            rho = probs[v] / old_probs[v]
            if (a >= 0.0 and rho < 1.0 + clip) or (a < 0.0 and rho > 1.0 - clip):
                w = scale * a * rho
                grad[v] += w
                for x in range(child_start[u], child_start[u + 1]):
                    grad[x] -= w * probs[x]
            v = u

