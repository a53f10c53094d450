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

The kernels take their inputs in named bundles (NamedTuples, one Numba type each): the
:class:`markovfork.rl.config.Settings` of the run, the :class:`TreeArrays`, the
:class:`ProblemArrays`, the trainable :class:`Params` (updated in place) and the
:class:`History` they fill in.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from markovfork.rl.objectives import (
    M_PPO, OldPolicy, add_visit_kl, analytic_gradient, any_correct, draw_group, ppo_gradient,
    ppo_sample_gradient, sample_coefficients,
)
from markovfork.model.kernels import backward_value, forward_reach
from markovfork.rl.tree_ops import add_kl_gradient, add_path_score, logits_row, softmax_row, uniform

__all__ = ["TreeArrays", "ProblemArrays", "Params", "History", "train_analytic_kernel", "train_sampled_kernel"]


class TreeArrays(NamedTuple):
    """The tree and the fixed structure of the logits (:class:`markovfork.rl.train.LogitModel`)."""

    child_start: np.ndarray  # (N+1,) int64: children of u are child_start[u]..child_start[u+1]-1
    parent: np.ndarray  # (N,) int64
    base: np.ndarray  # (N,) fixed logit part
    tie: np.ndarray  # (N,) int64: v's tied parameter (-1: none)
    fc_col: np.ndarray  # (N,) int64: v's fork column (-1: not a fork child)


class ProblemArrays(NamedTuple):
    """The training problems x (P of them) and what the run keeps fixed about each."""

    start: np.ndarray  # (P,) int64 start nodes
    visible: np.ndarray  # (P, N) bool: the skill's steps
    correct: np.ndarray  # (P, N) bool: correct leaves
    weights: np.ndarray  # (P,) sampling weights, sum 1 (analytic engine)
    cum_weights: np.ndarray  # (P,) their cumulative sums (sampled engine's draws)
    ref_probs: np.ndarray  # (P, N) the starting policy's step probabilities (KL, reject-easy)
    p_base: np.ndarray  # (P,) the starting policy's success probabilities (reject-easy, base)


class Params(NamedTuple):
    """The trainable parameters, updated in place: tied logits, the skill, the training problems'
    fork logits F = F_0 + K A with the dual coefficients A and the Gram matrix K."""

    theta: np.ndarray  # (T,)
    skill: np.ndarray  # (1,)
    fork: np.ndarray  # (P, F) F
    coef: np.ndarray  # (P, F) A (added since the start)
    gram: np.ndarray  # (P, P) K (never read without fork columns)


class Gradient(NamedTuple):
    """dJ/d(theta, skill, fork logits) (shapes of :class:`Params`'s first three), the kernels' scratch."""

    theta: np.ndarray
    skill: np.ndarray
    fork: np.ndarray


class History(NamedTuple):
    """What a run records: parameters at the snapshot iterations and per-iteration signals."""

    snap_at: np.ndarray  # (S,) int64 sorted snapshot iterations
    theta: np.ndarray  # (S, T)
    skill: np.ndarray  # (S,)
    coef: np.ndarray  # (S, P, F)
    reward: np.ndarray  # (I+1,)
    rejected: np.ndarray  # (I,)


@numba.njit(cache=True)
def _accumulate(x, grad, weight, tree, visible, dparams):
    """Chain rule from the step logits of problem x to the parameters, times ``weight``: adds to
    ``dparams`` (a :class:`Gradient`)."""
    tie, fc_col = tree.tie, tree.fc_col
    dtheta, dskill, dfork = dparams.theta, dparams.skill, dparams.fork
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
def _step(settings, params, dparams, rows, n_rows):
    """params += lr * grad (``dparams``); the fork logits of every training problem move by
    lr K dJ/dF (the rows ``rows[:n_rows]`` of dJ/dF, zeroed once applied)."""
    lr = settings.lr
    theta, skill, fork, coef, gram = params.theta, params.skill, params.fork, params.coef, params.gram
    dtheta, dskill, dfork = dparams.theta, dparams.skill, dparams.fork
    for t in range(theta.shape[0]):
        theta[t] += lr * dtheta[t]
    if settings.train_skill:
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
def _snapshot(it, snap, params, history):
    snap_at = history.snap_at
    while snap < snap_at.shape[0] and snap_at[snap] == it:
        history.theta[snap] = params.theta
        history.skill[snap] = params.skill[0]
        history.coef[snap] = params.coef
        snap += 1
    return snap


@numba.njit(cache=True)
def train_analytic_kernel(settings, tree, problems, params, history, it_from, it_to, snap):
    """Exact expected-gradient ascent over iterations it_from..it_to-1 (of 0..iterations, the last
    only evaluated); reward[it] = sum_x w_x p_x before step it (and after the last), rejected[it]
    = the weight of the update the reject-easy rule removed (both in ``history``). ``snap``: the
    next snapshot's index; returns it (a run split into spans, parameters updated in place,
    equals the whole run)."""
    child_start, parent = tree.child_start, tree.parent
    start, visible, correct = problems.start, problems.visible, problems.correct
    weights, ref_probs, p_base = problems.weights, problems.ref_probs, problems.p_base
    reward, rejected = history.reward, history.rejected
    n_prob, n = correct.shape[0], child_start.shape[0] - 1
    z, probs, grad = np.empty(n), np.empty(n), np.empty(n)
    buf = np.empty((3, n))
    dtheta, dskill, dfork = np.zeros(params.theta.shape[0]), np.zeros(1), np.zeros(params.fork.shape)
    dparams = Gradient(dtheta, dskill, dfork)
    rows = np.arange(n_prob)
    ppo = settings.method == M_PPO
    old = np.empty((n_prob, n)) if ppo else np.empty((0, n))
    old_reach = np.empty((n_prob, n)) if ppo else np.empty((0, n))
    old_value = np.empty((n_prob, n)) if ppo else np.empty((0, n))
    inside = np.zeros((n_prob, n), dtype=np.bool_) if ppo else np.zeros((0, n), dtype=np.bool_)
    factor = np.ones(n_prob)
    iterations = settings.iterations
    for it in range(it_from, it_to):
        snap = _snapshot(it, snap, params, history)
        if it == iterations or ppo:
            total = 0.0
            for x in range(n_prob):
                logits_row(x, tree, visible, params, z)
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
                pr = b if settings.reject_current else p_base[x]
                factor[x] = (1.0 - min(max(pr, 0.0), 1.0)) ** settings.reject if settings.reject > 0 else 1.0
                lost += weights[x] * (1.0 - factor[x])
            rejected[it] = lost
            for _ in range(settings.ppo_epochs):
                dtheta[:] = 0.0
                dskill[:] = 0.0
                dfork[:] = 0.0
                for x in range(n_prob):
                    if weights[x] == 0.0 or factor[x] == 0.0:
                        continue
                    logits_row(x, tree, visible, params, z)
                    softmax_row(child_start, z, probs)
                    grad[:] = 0.0
                    ppo_gradient(child_start, parent, probs, OldPolicy(old[x], old_reach[x], old_value[x], inside[x]),
                                 start[x], old_value[x, start[x]], settings.clip, 1.0, grad)
                    if settings.kl > 0.0:
                        add_kl_gradient(child_start, probs, ref_probs[x], old_reach[x], inside[x], settings.kl, grad)
                    _accumulate(x, grad, weights[x] * factor[x], tree, visible, dparams)
                _step(settings, params, dparams, rows, n_prob)
            continue
        dtheta[:] = 0.0
        dskill[:] = 0.0
        dfork[:] = 0.0
        total = 0.0
        lost = 0.0
        for x in range(n_prob):
            if weights[x] == 0.0:
                continue
            logits_row(x, tree, visible, params, z)
            softmax_row(child_start, z, probs)
            grad[:] = 0.0
            p_ref = -1.0 if settings.reject_current else p_base[x]
            p = analytic_gradient(settings, child_start, parent, probs, correct[x], start[x], ref_probs[x],
                                  p_ref, buf, grad)
            total += weights[x] * p
            if settings.reject > 0:
                pr = p if settings.reject_current else p_base[x]
                lost += weights[x] * (1.0 - (1.0 - min(max(pr, 0.0), 1.0)) ** settings.reject)
            _accumulate(x, grad, weights[x], tree, visible, dparams)
        reward[it] = total
        rejected[it] = lost
        _step(settings, params, dparams, rows, n_prob)
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
def train_sampled_kernel(settings, tree, problems, params, history, state, it_from, it_to, snap):
    """Minibatch stochastic-gradient ascent from rollouts over iterations it_from..it_to-1 (the
    stream ``state``, parameters and ``snap`` carried as in :func:`train_analytic_kernel`);
    reward[it] = mean reward of the
    iteration's rollouts (NaN when every instance was rejected), rejected[it] = share of
    instances skipped by the reject-easy rule."""
    child_start, parent = tree.child_start, tree.parent
    start, visible, correct = problems.start, problems.visible, problems.correct
    cum_weights, ref_probs = problems.cum_weights, problems.ref_probs
    reward, rejected = history.reward, history.rejected
    n = child_start.shape[0] - 1
    g, n_batch = settings.group, settings.batch
    z, probs, grad, reach = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    inside = np.zeros(n, dtype=np.bool_)
    visits, ones = np.zeros(n), np.ones(n, dtype=np.bool_)
    leaves = np.empty((n_batch, g), dtype=np.int64)
    rewards, coefs = np.empty((n_batch, g)), np.empty(g)
    batch_x = np.empty(n_batch, dtype=np.int64)
    old = np.empty((n_batch, n))
    dtheta, dskill, dfork = np.zeros(params.theta.shape[0]), np.zeros(1), np.zeros(params.fork.shape)
    dparams = Gradient(dtheta, dskill, dfork)
    ppo = settings.method == M_PPO
    beta = settings.kl
    iterations = settings.iterations
    for it in range(it_from, it_to):
        snap = _snapshot(it, snap, params, history)
        if it == iterations:
            reward[it] = np.nan
            break
        dtheta[:] = 0.0
        dskill[:] = 0.0
        dfork[:] = 0.0
        kept, total = 0, 0.0
        for b in range(n_batch):
            x = _draw_instance(cum_weights, state)
            logits_row(x, tree, visible, params, z)
            softmax_row(child_start, z, probs)
            if settings.reject > 0:
                check = probs if settings.reject_current else ref_probs[x]
                if any_correct(child_start, check, correct[x], start[x], state, settings.reject):
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
                sample_coefficients(settings, reach, leaves[kept], rewards[kept], coefs)
                grad[:] = 0.0
                for i in range(g):
                    if coefs[i] != 0.0:
                        add_path_score(child_start, parent, probs, leaves[kept, i], start[x], coefs[i], grad)
                if beta > 0.0:
                    add_visit_kl(child_start, parent, probs, ref_probs[x], leaves[kept], start[x], beta, visits, ones, grad)
                _accumulate(x, grad, 1.0 / n_batch, tree, visible, dparams)
            kept += 1
        reward[it] = total / kept if kept else np.nan
        rejected[it] = (n_batch - kept) / n_batch
        if not ppo:
            _step(settings, params, dparams, batch_x, kept)
            continue
        for _ in range(settings.ppo_epochs):
            dtheta[:] = 0.0
            dskill[:] = 0.0
            dfork[:] = 0.0
            for b in range(kept):
                x = batch_x[b]
                logits_row(x, tree, visible, params, z)
                softmax_row(child_start, z, probs)
                grad[:] = 0.0
                ppo_sample_gradient(child_start, parent, probs, old[b], leaves[b], rewards[b], start[x],
                                    settings.clip, 1.0 / g, grad)
                if beta > 0.0:
                    add_visit_kl(child_start, parent, probs, ref_probs[x], leaves[b], start[x], beta, visits, ones, grad)
                _accumulate(x, grad, 1.0 / n_batch, tree, visible, dparams)
            _step(settings, params, dparams, batch_x, kept)
    return snap
