"""Reward models at inference: scores, best-of-N and the KL-regularised tilt, all exact.

With step probabilities pi(v) (the step parent[v] -> v) and a score r(y) on leaves:

* outcome reward (ORM), population form: ``r(y) = sum_x w_x [y correct for x] / sum_x w_x``,
  the probability that leaf y is correct for a random instance (0 at non-leaves);
* process reward (PRM) of a prefix u: the expected final score of a rollout from u,
  ``V(leaf) = r(leaf)``, ``V(u) = sum_{v child of u} pi(v) V(v)``;
* step advantage ``A(u -> v) = Q(u, v) - V(u) = V(v) - V(u)`` (in a tree the step is the state);
* KL-regularised step tilt (the closed form of ``max E_q[A] - beta KL(q || pi)`` at one node),
  ``q(v | u) = pi(v) exp(A(u -> v) / beta) / sum_w pi(w) exp(A(u -> w) / beta)``;
* path-level soft reweighting ``q(y) = p(y) exp(r(y) / tau) / sum_z p(z) exp(r(z) / tau)``;
* best-of-n with ties broken uniformly among the tied draws: for y with score s,
  ``P(select y) = p(y) / p(r = s) * (F(<= s)^n - F(< s)^n)``, F the base CDF of the score.

A leaf distribution p is a row over all N nodes that is 0 off the leaves and sums to 1
(:func:`leaf_distribution` builds it from step probabilities). Scores are compared exactly:
equal floats are one score level.
"""

from __future__ import annotations

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.engines.exact import reach_probability
from markovfork.rl.tree_ops import leaf_values
from markovfork.model.tree import LEAF

__all__ = [
    "orm_scores",
    "prm_scores",
    "prm_scores_reference",
    "step_advantage",
    "kl_tilt",
    "kl_tilt_reference",
    "leaf_distribution",
    "soft_reweight",
    "best_of_n",
    "leaf_success",
]

SUM_TOL = 1e-6  # tolerance on a leaf distribution's total mass (as tree.PROB_TOL for step rows)


# ----------------------------------------------------------------------------- input checks

def _score_rows(name: str, values, n_nodes: int) -> np.ndarray:
    """Finite real scores of shape (N,) or (P, N), as a float64 copy of the same shape."""
    ndim = np.ndim(values)
    if ndim not in (1, 2) or np.shape(values)[-1] != n_nodes:
        raise ValueError(f"{name} must have shape ({n_nodes},) or (P, {n_nodes}), got {np.shape(values)}")
    arr = checks.array(name, values, np.float64, ndim)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers, got {arr[~np.isfinite(arr)][0]}")
    return arr


def _step_rows(name: str, probs, n_nodes: int) -> np.ndarray:
    """Step probabilities of shape (N,) or (P, N) checked in [0, 1] (shape kept)."""
    if np.ndim(probs) not in (1, 2):
        raise ValueError(f"{name} must have shape ({n_nodes},) or (P, {n_nodes}), got {np.shape(probs)}")
    return checks.probability_rows(probs, n_nodes, name=name).reshape(np.shape(probs))


def _paired(a: np.ndarray, b: np.ndarray, names: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Two (N,)/(P, N) arrays as C-contiguous (R, N) arrays of one row count; whether both were 1-D."""
    one_d = a.ndim == 1 and b.ndim == 1
    a2, b2 = np.atleast_2d(a), np.atleast_2d(b)
    if a2.shape[0] != b2.shape[0] and 1 not in (a2.shape[0], b2.shape[0]):
        raise ValueError(f"{names} must have the same number of rows (or one), got {a.shape} and {b.shape}")
    rows = max(a2.shape[0], b2.shape[0])
    shape = (rows, a2.shape[1])
    return (np.ascontiguousarray(np.broadcast_to(a2, shape)),
            np.ascontiguousarray(np.broadcast_to(b2, shape)), one_d)


def _leaf_rows(leaf_probs) -> np.ndarray:
    """Leaf distributions (.., N): real, in [0, 1], each row summing to 1 within SUM_TOL."""
    arr = np.asarray(leaf_probs)
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"leaf_probs must have shape (..., N) with N >= 1, got {arr.shape}")
    arr = checks.array("leaf_probs", arr, np.float64, arr.ndim)
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # NaN fails too
    if bad.any():
        raise ValueError(f"leaf_probs must be probabilities in [0, 1], got {arr[bad][0]}")
    total = arr.sum(axis=-1)
    off = np.abs(total - 1.0) > SUM_TOL
    if off.any():
        raise ValueError(f"each row of leaf_probs must sum to 1 (a distribution over leaves), got {total[off].flat[0]:.9g}")
    return arr


def _leaf_scores(leaf_scores, shape: tuple) -> np.ndarray:
    """Finite scores broadcast to ``shape`` (given as (N,) or the full shape)."""
    ndim = np.ndim(leaf_scores)
    if np.shape(leaf_scores) not in ((shape[-1],), tuple(shape)):
        raise ValueError(f"leaf_scores must have shape ({shape[-1]},) or {tuple(shape)}, got {np.shape(leaf_scores)}")
    arr = checks.array("leaf_scores", leaf_scores, np.float64, ndim)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"leaf_scores must be finite numbers, got {arr[~np.isfinite(arr)][0]}")
    return np.broadcast_to(arr, shape)


# ----------------------------------------------------------------------------- scores

def orm_scores(problems, weights=None) -> np.ndarray:
    """(N,) population ORM ``r(v) = sum_x w_x [v correct for x] / sum_x w_x`` (uniform w by default):
    the probability that leaf v is correct for a random instance; 0 wherever no problem marks v
    correct (every non-leaf, for problems that fit their tree)."""
    correct = problems.correct.astype(np.float64)
    if weights is None:
        return correct.mean(axis=0)
    w = checks.array("weights", weights, np.float64)
    if w.shape != (len(problems),):
        raise ValueError(f"weights must have one entry per problem ({len(problems)}), got shape {w.shape}")
    if not np.all(np.isfinite(w) & (w >= 0.0)) or w.sum() <= 0.0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0, got {w.tolist()[:8]}")
    return (w @ correct) / w.sum()


@numba.njit(cache=True)
def _value_kernel(child_start, probs, scores, out):
    """out[r, u] = V_r(u): scores at leaves, sum_v probs[r, v] V_r(v) above (bottom-up), one
    row at a time with the RL engines' recursion (:func:`markovfork.rl.tree_ops.leaf_values`)."""
    for r in range(probs.shape[0]):
        leaf_values(child_start, probs[r], scores[r], out[r])


def prm_scores(tree, probs, leaf_scores) -> np.ndarray:
    """PRM of every node: ``V(u)`` = expected final leaf score of a rollout from u under ``probs``,
    ``V(leaf) = score``, ``V(u) = sum_{v child of u} pi(v) V(v)``.

    ``probs`` and ``leaf_scores`` are (N,) or (P, N) (one row broadcast against many); entries of
    ``leaf_scores`` off the leaves are ignored. Returns (N,) when both are 1-D, else (P, N)."""
    probs = _step_rows("probs", probs, tree.n_nodes)
    scores = _score_rows("leaf_scores", leaf_scores, tree.n_nodes)
    probs2, scores2, one_d = _paired(probs, scores, "probs and leaf_scores")
    out = np.empty_like(probs2)
    _value_kernel(tree.child_start, probs2, scores2, out)
    return out[0] if one_d else out


def prm_scores_reference(tree, probs, leaf_scores) -> np.ndarray:
    """NumPy reference for :func:`prm_scores`: one depth level at a time, children scattered onto
    their parents with ``np.add.at``."""
    probs2, scores2 = np.broadcast_arrays(np.atleast_2d(np.asarray(probs, dtype=np.float64)),
                                          np.atleast_2d(np.asarray(leaf_scores, dtype=np.float64)))
    leaf = tree.kind == LEAF
    value = np.where(leaf[None, :], scores2, 0.0)
    for d in range(int(tree.depth.max()), 0, -1):
        v = np.flatnonzero(tree.depth == d)
        np.add.at(value.T, tree.parent[v], (probs2[:, v] * value[:, v]).T)
    one_d = np.ndim(probs) == 1 and np.ndim(leaf_scores) == 1
    return value[0] if one_d else value


def step_advantage(tree, probs, leaf_scores) -> np.ndarray:
    """``A(u -> v) = V(v) - V(u)`` at every non-root v (u = parent[v]), 0 at the root; V is
    :func:`prm_scores` (same shapes: (N,) when both inputs are 1-D, else (P, N))."""
    value = prm_scores(tree, probs, leaf_scores)
    adv = np.zeros_like(value)
    adv[..., 1:] = value[..., 1:] - value[..., tree.parent[1:]]
    return adv


# ----------------------------------------------------------------------------- the KL tilt

@numba.njit(cache=True)
def _tilt_kernel(child_start, base, adv, beta, out):
    """out[r, v] = base[r, v] exp(adv[r, v] / beta) normalised over v's siblings, in log space."""
    n_nodes = child_start.shape[0] - 1
    for r in range(base.shape[0]):
        out[r, 0] = base[r, 0]
        for u in range(n_nodes):
            a, b = np.uint64(child_start[u]), np.uint64(child_start[u + 1])
            if a == b:
                continue
            amax = -np.inf  # max advantage over the children the base can take
            for v in range(a, b):
                if base[r, v] > 0.0 and adv[r, v] > amax:
                    amax = adv[r, v]
            if amax == -np.inf:  # no child has base mass: keep the row
                for v in range(a, b):
                    out[r, v] = base[r, v]
                continue
            # shifted advantages are <= 0, so A'/beta is never +inf (no inf - inf for tiny beta)
            zmax = -np.inf
            for v in range(a, b):
                if base[r, v] > 0.0:
                    z = np.log(base[r, v]) + (adv[r, v] - amax) / beta
                    out[r, v] = z
                    if z > zmax:
                        zmax = z
            total = 0.0
            for v in range(a, b):
                w = np.exp(out[r, v] - zmax) if base[r, v] > 0.0 else 0.0
                out[r, v] = w
                total += w
            for v in range(a, b):
                out[r, v] /= total


def kl_tilt(tree, base_probs, advantage, beta) -> np.ndarray:
    """KL-regularised step policy ``q(v | u) = pi(v) exp(A(u -> v) / beta) / Z(u)`` at every node.

    The per-node maximiser of ``E_q[A] - beta KL(q || pi)`` (the "GRPO-KL" closed form of the
    Markovian view of post-training). ``base_probs`` and ``advantage`` are (N,) or (P, N), applied
    row-wise (one row broadcast against many); ``beta > 0``. Children with base probability 0
    stay at 0; a node whose children all have base probability 0 keeps its row. Returns (N,)
    when both inputs are 1-D, else (P, N)."""
    base = _step_rows("base_probs", base_probs, tree.n_nodes)
    adv = _score_rows("advantage", advantage, tree.n_nodes)
    beta = checks.real("beta", beta, 0.0, low_open=True)
    base2, adv2, one_d = _paired(base, adv, "base_probs and advantage")
    out = np.empty_like(base2)
    _tilt_kernel(tree.child_start, base2, adv2, beta, out)
    return out[0] if one_d else out


def kl_tilt_reference(tree, base_probs, advantage, beta) -> np.ndarray:
    """NumPy reference for :func:`kl_tilt`: the product ``pi exp((A - max A) / beta)`` normalised,
    one node at a time, vectorised over rows."""
    base2, adv2 = np.broadcast_arrays(np.atleast_2d(np.asarray(base_probs, dtype=np.float64)),
                                      np.atleast_2d(np.asarray(advantage, dtype=np.float64)))
    out = base2.copy()
    for u in np.flatnonzero(tree.n_children > 0):
        a, b = tree.child_start[u], tree.child_start[u + 1]
        p, s = base2[:, a:b], adv2[:, a:b]
        live = p > 0
        shift = np.where(live, s, -np.inf).max(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", over="ignore"):  # (s - shift) / beta <= 0: overflow is -inf
            w = np.where(live, p * np.exp((s - shift) / beta), 0.0)
        total = w.sum(axis=1, keepdims=True)
        keep = total[:, 0] > 0
        out[keep, a:b] = w[keep] / total[keep]
    one_d = np.ndim(base_probs) == 1 and np.ndim(advantage) == 1
    return out[0] if one_d else out


# ----------------------------------------------------------------------------- leaf distributions

def leaf_distribution(tree, probs, start) -> np.ndarray:
    """(P, N) leaf distribution of rollouts from ``start[p]``: :func:`~markovfork.engines.exact.reach_probability`
    kept at the leaves, 0 elsewhere (a start at a leaf ends there)."""
    reach = reach_probability(tree, probs, start)
    return np.where((tree.kind == LEAF)[None, :], reach, 0.0)


def soft_reweight(leaf_probs, leaf_scores, tau) -> np.ndarray:
    """Path-level tilt ``q(y) = p(y) exp(r(y) / tau) / sum_z p(z) exp(r(z) / tau)`` of each leaf
    distribution (shape (..., N), rows summing to 1); ``leaf_scores`` (N,) or the same shape;
    ``tau > 0``. Leaves with p(y) = 0 stay at 0. Same shape as ``leaf_probs``."""
    p = _leaf_rows(leaf_probs)
    s = _leaf_scores(leaf_scores, p.shape)
    tau = checks.real("tau", tau, 0.0, low_open=True)
    live = p > 0
    shift = np.where(live, s, -np.inf).max(axis=-1, keepdims=True)  # every row has some mass
    with np.errstate(divide="ignore", over="ignore"):  # (s - shift) / tau <= 0: overflow is -inf
        z = np.where(live, np.log(np.where(live, p, 1.0)) + (s - shift) / tau, -np.inf)
    w = np.exp(z - z.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


def best_of_n(leaf_probs, leaf_scores, n) -> np.ndarray:
    """Distribution of the leaf kept by best-of-n: n i.i.d. leaves from p, the highest score kept,
    ties broken uniformly among the tied draws. For y at score level s,
    ``P(y) = p(y) / p(r = s) * (F(<= s)^n - F(< s)^n)`` with F the base CDF of the score.

    ``leaf_probs`` (..., N), rows summing to 1; ``leaf_scores`` (N,) or the same shape; n >= 1.
    Same shape as ``leaf_probs``."""
    p = _leaf_rows(leaf_probs)
    s = _leaf_scores(leaf_scores, p.shape)
    n = checks.integer("n", n, 1)
    shape = p.shape
    p2, s2 = p.reshape(-1, shape[-1]), s.reshape(-1, shape[-1])
    rows, width = p2.shape
    order = np.argsort(s2, axis=1, kind="stable")
    ps = np.take_along_axis(p2, order, axis=1)
    ss = np.take_along_axis(s2, order, axis=1)
    new_level = np.ones_like(ss, dtype=bool)
    new_level[:, 1:] = ss[:, 1:] != ss[:, :-1]
    level = np.cumsum(new_level, axis=1) - 1  # score level of each sorted entry, per row
    flat = (np.arange(rows)[:, None] * width + level).ravel()
    mass = np.bincount(flat, weights=ps.ravel(), minlength=rows * width).reshape(rows, width)
    below = np.cumsum(mass, axis=1) - mass  # F(< s) of each level
    m = np.take_along_axis(mass, level, axis=1)  # p(r = s): summed directly, not as a CDF difference
    f_lt = np.clip(np.take_along_axis(below, level, axis=1), 0.0, 1.0)
    f_le = f_lt + m
    # F(<=s)^n - F(<s)^n = F(<=s)^n (1 - (1 - m / F(<=s))^n), without cancellation when m is small
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = f_le**n * -np.expm1(n * np.log1p(-np.minimum(m / f_le, 1.0)))
        picked = np.where(ps > 0, ps * gain / m, 0.0)
    out = np.empty_like(p2)
    np.put_along_axis(out, order, picked, axis=1)
    return out.reshape(shape)


def leaf_success(leaf_dist, problems) -> np.ndarray:
    """(P,) success probability of problem x under its leaf distribution,
    ``sum_y q_x(y) [y correct for x]``; feed it to :func:`~markovfork.engines.exact.exact_pass_at_k`.
    ``leaf_dist`` is (P, N) (one row per problem) or (N,) (the same distribution for all)."""
    n_problems, n_nodes = problems.correct.shape
    dist = _leaf_rows(leaf_dist)
    if dist.shape not in ((n_nodes,), (n_problems, n_nodes)):
        raise ValueError(f"leaf_dist must have shape ({n_nodes},) or ({n_problems}, {n_nodes}), got {dist.shape}")
    return (np.broadcast_to(dist, problems.correct.shape) * problems.correct).sum(axis=1)
