"""The two RL training loops, each one compiled kernel over all iterations.

Both take gradient *ascent* steps ``params += lr * grad J`` on the parameters of
:mod:`markovfork.rl.tree_ops` (tied logits theta, the shared skill s, and the fork children's
feature weights in dual form: the training problems' fork logits F = F_0 + K A, with K the Gram
matrix of their features and A the dual coefficients, so ``dJ/dA = dJ/dF`` and a step moves F
by ``lr K dJ/dF``).

* analytic: every iteration takes the exact expected gradient, ``sum_x w_x grad J_x`` over the
  instances x with weights w (a population, or a training set with equal weights);
* sampled: every iteration draws ``batch_instances`` instances by their weights and
  ``group_size`` rollouts of each, and averages the estimates of :mod:`markovfork.rl.objectives`.

PPO keeps the batch's policy as "old" and takes ``ppo_epochs`` steps on the clipped surrogate.
"""

from __future__ import annotations

import numba
import numpy as np

from markovfork.rl.config import (
    F_CLIP, F_KL, F_LR, I_BATCH, I_GROUP, I_ITERATIONS, I_METHOD, I_PPO_EPOCHS, I_REJECT,
    I_REJECT_CURRENT, I_TRAIN_SKILL,
)
from markovfork.rl.objectives import (
    M_PPO, add_visit_kl, analytic_gradient, any_correct, draw_group, ppo_gradient,
    ppo_sample_gradient, sample_coefficients,
)
from markovfork.model.kernels import backward_value, forward_reach
from markovfork.rl.tree_ops import add_kl_gradient, add_path_score, logits_row, softmax_row, uniform


@numba.njit(cache=True)
def _accumulate(x, grad, weight, tie, visible, fc_col, dtheta, dskill, dfork):
    """Chain rule from the step logits of problem x to the parameters, times ``weight``."""
    for v in range(1, grad.shape[0]):
        g = grad[v] * weight
        if g == 0.0:
            continue
        t = tie[v]
        if t >= 0:
            dtheta[t] += g
        if visible[x, v]:
            dskill[0] += g
        f = fc_col[v]
        if f >= 0:
            dfork[x, f] += g


@numba.njit(cache=True)
def _step(ints, floats, gram, theta, skill, fork, coef, dtheta, dskill, dfork, rows, n_rows):
    """params += lr * grad; the fork logits of every training problem move by lr K dJ/dF."""
    lr = floats[F_LR]
    for t in range(theta.shape[0]):
        theta[t] += lr * dtheta[t]
    if ints[I_TRAIN_SKILL]:
        skill[0] += lr * dskill[0]
    for i in range(n_rows):
        x = rows[i]
        for f in range(fork.shape[1]):
            d = lr * dfork[x, f]
            if d == 0.0:
                continue
            coef[x, f] += d
            for y in range(fork.shape[0]):
                fork[y, f] += gram[y, x] * d
            dfork[x, f] = 0.0  # applied: a row listed twice (drawn twice) moves once


@numba.njit(cache=True)
def _snapshot(it, snap_at, snap, theta, skill, coef, theta_hist, skill_hist, coef_hist):
    while snap < snap_at.shape[0] and snap_at[snap] == it:
        theta_hist[snap] = theta
        skill_hist[snap] = skill[0]
        coef_hist[snap] = coef
        snap += 1
    return snap


@numba.njit(cache=True)
def train_analytic_kernel(
    ints, floats, child_start, parent, base, tie, visible, fc_col, gram, correct, start, weights,
    ref_probs, p_base, theta, skill, fork, coef, snap_at, theta_hist, skill_hist, coef_hist, reward, rejected, it_from, it_to, snap,
):
    """Exact expected-gradient ascent over iterations it_from..it_to-1 (of 0..iterations, the last
    only evaluated); reward[it] = sum_x w_x p_x before step it (and after the last), rejected[it]
    = the weight of the update the reject-easy rule removed. ``snap``: the next snapshot's index;
    returns it (a run split into spans, parameters updated in place, equals the whole run)."""
    n_prob, n = correct.shape[0], child_start.shape[0] - 1
    z, probs, grad = np.empty(n), np.empty(n), np.empty(n)
    buf = np.empty((3, n))
    dtheta, dskill, dfork = np.zeros(theta.shape[0]), np.zeros(1), np.zeros(fork.shape)
    rows = np.arange(n_prob)
    ppo = ints[I_METHOD] == M_PPO
    old = np.empty((n_prob, n)) if ppo else np.empty((0, n))
    old_reach = np.empty((n_prob, n)) if ppo else np.empty((0, n))
    old_value = np.empty((n_prob, n)) if ppo else np.empty((0, n))
    inside = np.zeros((n_prob, n), dtype=np.bool_) if ppo else np.zeros((0, n), dtype=np.bool_)
    factor = np.ones(n_prob)
    iterations = ints[I_ITERATIONS]
    for it in range(it_from, it_to):
        snap = _snapshot(it, snap_at, snap, theta, skill, coef, theta_hist, skill_hist, coef_hist)
        if it == iterations or ppo:
            total = 0.0
            for x in range(n_prob):
                logits_row(x, base, tie, theta, visible, skill[0], fc_col, fork, z)
                softmax_row(child_start, z, probs)
                for v in range(n):
                    buf[2, v] = 1.0 if correct[x, v] else 0.0
                backward_value(child_start, probs, buf[2], buf[1])
                total += weights[x] * buf[1, start[x]]
                if ppo:
                    old[x] = probs
                    old_value[x] = buf[1]
                    forward_reach(parent, probs, start[x], old_reach[x], inside[x])
            reward[it] = total
            if it == iterations:
                break
        if ppo:
            lost = 0.0
            for x in range(n_prob):
                b = old_value[x, start[x]]
                pr = b if ints[I_REJECT_CURRENT] else p_base[x]
                factor[x] = (1.0 - min(max(pr, 0.0), 1.0)) ** ints[I_REJECT] if ints[I_REJECT] > 0 else 1.0
                lost += weights[x] * (1.0 - factor[x])
            rejected[it] = lost
            for _ in range(ints[I_PPO_EPOCHS]):
                dtheta[:] = 0.0
                dskill[:] = 0.0
                dfork[:] = 0.0
                for x in range(n_prob):
                    if weights[x] == 0.0 or factor[x] == 0.0:
                        continue
                    logits_row(x, base, tie, theta, visible, skill[0], fc_col, fork, z)
                    softmax_row(child_start, z, probs)
                    grad[:] = 0.0
                    ppo_gradient(child_start, parent, probs, old[x], old_reach[x], old_value[x], inside[x],
                                 start[x], old_value[x, start[x]], floats[F_CLIP], 1.0, grad)
                    if floats[F_KL] > 0.0:
                        add_kl_gradient(child_start, probs, ref_probs[x], old_reach[x], inside[x], floats[F_KL], grad)
                    _accumulate(x, grad, weights[x] * factor[x], tie, visible, fc_col, dtheta, dskill, dfork)
                _step(ints, floats, gram, theta, skill, fork, coef, dtheta, dskill, dfork, rows, n_prob)
            continue
        dtheta[:] = 0.0
        dskill[:] = 0.0
        dfork[:] = 0.0
        total = 0.0
        lost = 0.0
        for x in range(n_prob):
            if weights[x] == 0.0:
                continue
            logits_row(x, base, tie, theta, visible, skill[0], fc_col, fork, z)
            softmax_row(child_start, z, probs)
            grad[:] = 0.0
            p_ref = -1.0 if ints[I_REJECT_CURRENT] else p_base[x]
            p = analytic_gradient(ints, floats, child_start, parent, probs, correct[x], start[x],
                                  ref_probs[x], p_ref, buf, grad)
            total += weights[x] * p
            if ints[I_REJECT] > 0:
                pr = p if ints[I_REJECT_CURRENT] else p_base[x]
                lost += weights[x] * (1.0 - (1.0 - min(max(pr, 0.0), 1.0)) ** ints[I_REJECT])
            _accumulate(x, grad, weights[x], tie, visible, fc_col, dtheta, dskill, dfork)
        reward[it] = total
        rejected[it] = lost
        _step(ints, floats, gram, theta, skill, fork, coef, dtheta, dskill, dfork, rows, n_prob)
    return snap


@numba.njit(cache=True)
def _draw_instance(cum_weights, state):
    r = uniform(state) * cum_weights[-1]
    lo, hi = 0, cum_weights.shape[0] - 1
    while lo < hi:  # first index with cum_weights > r
        mid = (lo + hi) // 2
        if cum_weights[mid] > r:
            hi = mid
        else:
            lo = mid + 1
    return lo


@numba.njit(cache=True)
def train_sampled_kernel(
    ints, floats, child_start, parent, base, tie, visible, fc_col, gram, correct, start, cum_weights,
    ref_probs, state, theta, skill, fork, coef, snap_at, theta_hist, skill_hist, coef_hist, reward, rejected, it_from, it_to, snap,
):
    """Minibatch stochastic-gradient ascent from rollouts over iterations it_from..it_to-1 (the
    stream ``state``, parameters and ``snap`` carried as in :func:`train_analytic_kernel`);
    reward[it] = mean reward of the
    iteration's rollouts (NaN when every instance was rejected), rejected[it] = share of
    instances skipped by the reject-easy rule."""
    n = child_start.shape[0] - 1
    g, n_batch = ints[I_GROUP], ints[I_BATCH]
    z, probs, grad, reach = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    inside = np.zeros(n, dtype=np.bool_)
    visits, ones = np.zeros(n), np.ones(n, dtype=np.bool_)
    leaves = np.empty((n_batch, g), dtype=np.int64)
    rewards, coefs = np.empty((n_batch, g)), np.empty(g)
    batch_x = np.empty(n_batch, dtype=np.int64)
    old = np.empty((n_batch, n))
    dtheta, dskill, dfork = np.zeros(theta.shape[0]), np.zeros(1), np.zeros(fork.shape)
    ppo = ints[I_METHOD] == M_PPO
    beta = floats[F_KL]
    iterations = ints[I_ITERATIONS]
    for it in range(it_from, it_to):
        snap = _snapshot(it, snap_at, snap, theta, skill, coef, theta_hist, skill_hist, coef_hist)
        if it == iterations:
            reward[it] = np.nan
            break
        dtheta[:] = 0.0
        dskill[:] = 0.0
        dfork[:] = 0.0
        kept, total = 0, 0.0
        for b in range(n_batch):
            x = _draw_instance(cum_weights, state)
            logits_row(x, base, tie, theta, visible, skill[0], fc_col, fork, z)
            softmax_row(child_start, z, probs)
            if ints[I_REJECT] > 0:
                check = probs if ints[I_REJECT_CURRENT] else ref_probs[x]
                if any_correct(child_start, check, correct[x], start[x], state, ints[I_REJECT]):
                    continue
            c = draw_group(child_start, probs, correct[x], start[x], state, leaves[kept], rewards[kept])
            total += c / g
            batch_x[kept] = x
            if ppo:
                old[kept] = probs
                for i in range(g):  # leave-one-out advantages, kept in rewards
                    rewards[kept, i] = rewards[kept, i] - (c - rewards[kept, i]) / (g - 1)
            else:
                forward_reach(parent, probs, start[x], reach, inside)
                sample_coefficients(ints, floats, reach, leaves[kept], rewards[kept], coefs)
                grad[:] = 0.0
                for i in range(g):
                    if coefs[i] != 0.0:
                        add_path_score(child_start, parent, probs, leaves[kept, i], start[x], coefs[i], grad)
                if beta > 0.0:
                    add_visit_kl(child_start, parent, probs, ref_probs[x], leaves[kept], start[x], beta, visits, ones, grad)
                _accumulate(x, grad, 1.0 / n_batch, tie, visible, fc_col, dtheta, dskill, dfork)
            kept += 1
        reward[it] = total / kept if kept else np.nan
        rejected[it] = (n_batch - kept) / n_batch
        if not ppo:
            _step(ints, floats, gram, theta, skill, fork, coef, dtheta, dskill, dfork, batch_x, kept)
            continue
        for _ in range(ints[I_PPO_EPOCHS]):
            dtheta[:] = 0.0
            dskill[:] = 0.0
            dfork[:] = 0.0
            for b in range(kept):
                x = batch_x[b]
                logits_row(x, base, tie, theta, visible, skill[0], fc_col, fork, z)
                softmax_row(child_start, z, probs)
                grad[:] = 0.0
                ppo_sample_gradient(child_start, parent, probs, old[b], leaves[b], rewards[b], start[x],
                                    floats[F_CLIP], 1.0 / g, grad)
                if beta > 0.0:
                    add_visit_kl(child_start, parent, probs, ref_probs[x], leaves[b], start[x], beta, visits, ones, grad)
                _accumulate(x, grad, 1.0 / n_batch, tie, visible, fc_col, dtheta, dskill, dfork)
            _step(ints, floats, gram, theta, skill, fork, coef, dtheta, dskill, dfork, batch_x, kept)
    return snap
