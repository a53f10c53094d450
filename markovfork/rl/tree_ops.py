"""Compiled per-problem tree operations shared by the RL engines.

The RL policy's logit of the step into node v for problem x is

    z_x(v) = base(v) + theta[tie(v)] + s [visible_x(v)] + F_x[fc(v)]

(``tie(v) = -1``: no tied parameter; ``fc(v) = -1``: not a fork child; F_x the feature part
W phi(x) of the fork children's logits, kept per problem). Step probabilities are a softmax over
each node's children. For a problem starting at node ``start``, ``R(v)`` is the probability of
passing through v and ``Q(v)`` the expected leaf value below v; ``S(v) = R(v) Q(v)``. The
gradient of ``J = sum_y pi(y) c(y)`` (leaf values c, treated as constants) with respect to the
logit z(v) of a step u -> v below ``start`` is

    dJ/dz(v) = S(v) - pi(v | u) S(u).
"""

from __future__ import annotations

import numba
import numpy as np

from markovfork.engines.sampled.streams import to_unit, xoshiro_next


@numba.njit(cache=True)
def logits_row(x, base, tie, theta, visible, skill, fc_col, fork, z):
    """z[v] = z_x(v) of the module docstring for problem x (z[0] = 0)."""
    z[0] = 0.0
    for v in range(1, base.shape[0]):
        val = base[v]
        t = tie[v]
        if t >= 0:
            val += theta[t]
        if visible[x, v]:
            val += skill
        f = fc_col[v]
        if f >= 0:
            val += fork[x, f]
        z[v] = val


@numba.njit(cache=True)
def softmax_row(child_start, z, probs):
    """probs[v] = softmax over the siblings of v of z (probs[0] = 1); a node whose children all
    have logit -inf spreads uniformly."""
    probs[0] = 1.0
    for u in range(child_start.shape[0] - 1):
        a, b = child_start[u], child_start[u + 1]
        if b == a:
            continue
        zmax = -np.inf
        for v in range(a, b):
            if z[v] > zmax:
                zmax = z[v]
        if zmax == -np.inf:
            for v in range(a, b):
                probs[v] = 1.0 / (b - a)
            continue
        total = 0.0
        for v in range(a, b):
            probs[v] = np.exp(z[v] - zmax)
            total += probs[v]
        for v in range(a, b):
            probs[v] /= total


@numba.njit(cache=True)
def subtree_reach(parent, probs, start, reach, inside):
    """reach[v] = R(v) from ``start``; inside[v] = v is ``start`` or below it."""
    for v in range(parent.shape[0]):
        reach[v] = 0.0
        inside[v] = False
    reach[start] = 1.0
    inside[start] = True
    for v in range(start + 1, parent.shape[0]):
        u = parent[v]
        if inside[u]:
            inside[v] = True
            reach[v] = reach[u] * probs[v]


@numba.njit(cache=True)
def leaf_values(child_start, probs, leaf_value, value):
    """value[u] = Q(u): leaf_value at leaves, sum_v pi(v) Q(v) over the children elsewhere."""
    n = child_start.shape[0] - 1
    for i in range(n):
        u = n - 1 - i
        a, b = child_start[u], child_start[u + 1]
        if a == b:
            value[u] = leaf_value[u]
        else:
            acc = 0.0
            for v in range(a, b):
                acc += probs[v] * value[v]
            value[u] = acc


@numba.njit(cache=True)
def add_linear_gradient(parent, probs, reach, value, inside, start, scale, grad):
    """grad[v] += scale * (S(v) - pi(v) S(parent v)) for every step below ``start``."""
    for v in range(start + 1, parent.shape[0]):
        if inside[v]:
            u = parent[v]
            grad[v] += scale * (reach[v] * value[v] - probs[v] * reach[u] * value[u])


@numba.njit(cache=True)
def add_kl_gradient(child_start, probs, ref_probs, weight, inside, scale, grad):
    """grad[w] -= scale * weight(u) * pi(w)(log(pi(w)/pi_ref(w)) - KL_u) for the children w of every
    node u below the start: the gradient of ``-sum_u weight(u) KL(pi(.|u) || pi_ref(.|u))`` with
    the visit weights held fixed (the per-step KL loss of GRPO and PPO implementations)."""
    for u in range(child_start.shape[0] - 1):
        a, b = child_start[u], child_start[u + 1]
        if b == a or not inside[u] or weight[u] == 0.0:
            continue
        kl = 0.0
        for w in range(a, b):
            if probs[w] > 0.0 and ref_probs[w] > 0.0:
                kl += probs[w] * np.log(probs[w] / ref_probs[w])
        for w in range(a, b):
            if probs[w] > 0.0 and ref_probs[w] > 0.0:
                grad[w] -= scale * weight[u] * probs[w] * (np.log(probs[w] / ref_probs[w]) - kl)


@numba.njit(cache=True)
def add_path_score(child_start, parent, probs, leaf, start, scale, grad):
    """grad += scale * d log pi(path)/dz for the path from ``start`` to ``leaf``: for each step
    u -> v on it, ``+scale`` at v and ``-scale pi(w)`` at every child w of u."""
    v = leaf
    while v != start:
        u = parent[v]
        grad[v] += scale
        for w in range(child_start[u], child_start[u + 1]):
            grad[w] -= scale * probs[w]
        v = u


@numba.njit(cache=True)
def rollout(child_start, probs, start, state):
    """One rollout from ``start`` under ``probs``: (leaf, log-probability of the path); ``state``
    (4 uint64, a xoshiro256** stream) is advanced in place."""
    u = start
    logp = 0.0
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    while child_start[u + 1] > child_start[u]:
        a, b = child_start[u], child_start[u + 1]
        x, s0, s1, s2, s3 = xoshiro_next(s0, s1, s2, s3)
        r = to_unit(x)
        chosen = b - 1
        acc = 0.0
        for v in range(a, b):
            acc += probs[v]
            if r < acc:
                chosen = v
                break
        while probs[chosen] == 0.0 and chosen > a:  # rounding past the last positive child
            chosen -= 1
        logp += np.log(probs[chosen]) if probs[chosen] > 0.0 else -np.inf
        u = chosen
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return u, logp


@numba.njit(cache=True)
def uniform(state):
    """One uniform in [0, 1) from the xoshiro256** stream ``state`` (advanced in place)."""
    x, s0, s1, s2, s3 = xoshiro_next(state[0], state[1], state[2], state[3])
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return to_unit(x)
