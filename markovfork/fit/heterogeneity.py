"""Per-problem heterogeneity of the base model and the bridge's learning-rate schedule, as the
simulator sees them.

**Base skill per problem.** The simulator's base model gives every problem the same skill s
(``task.base_step_accuracy``), so every test problem has the same base success probability, while
a bridge base model solves some problems almost always and others rarely. Here each problem gets
its own skill s_x = s + delta_x, delta_x fixed through SFT (the shared s is trained as before):

1. a zero-inflated beta-binomial (:func:`markovfork.metrics.extrapolate.fit_beta_binomial`) is fitted
   to the base model's per-problem success counts (the epoch-0 rows of ``bridge counts``): success
   rate 0 with probability w, else Beta(a, b) (:func:`base_spread_from_counts`);
2. P problems get the P mid-quantiles q_i = F^-1((i + 1/2) / P) of that distribution, assigned in
   a seeded random order (``plumbing.seeds.child_rng(seed, "base-spread", role)``): deterministic,
   and the same for every arm (:func:`spread_quantiles`);
3. each q_i becomes the skill at which the simulated base solves a problem with probability q_i
   (the base success is increasing in the skill; computed on a grid and inverted, q clipped to
   what the simulator's base can reach: its forward mode guesses the fork, so s_x -> inf gives
   forward_prior / arms + (1 - forward_prior)) (:func:`skill_for_success`).

With it the base's pass@k curve and count histogram follow the measured ones by construction, and
``base_step_accuracy`` no longer moves any prediction (only s_x = s + delta_x matters): it is not
fitted.

**Learning-rate schedule.** The bridge's SFT warms up linearly over ``warmup_steps`` optimizer
steps and decays on a cosine to ``min_lr_ratio`` of its peak (``llm_bridge/train.py: lr_at``), with
ceil(n_problems / batch_size) steps per epoch. :func:`bridge_lr_factors` gives each epoch's mean
multiplier of the peak; the simulator's gradient-flow time in epoch e is ``lr`` times it, so ``lr``
is the flow time of an epoch at the peak learning rate.
"""

from __future__ import annotations

import math

import numpy as np

from markovfork.plumbing.seeds import child_rng

__all__ = ["base_spread_from_counts", "spread_quantiles", "base_success_curve", "skill_for_success",
           "bridge_lr_factors", "lr_multiplier"]

SKILL_GRID = np.linspace(-8.0, 12.0, 81)  # skill logits over which the base success is tabulated


def base_spread_from_counts(correct, n_samples) -> dict:
    """{"a", "b", "w"}: the zero-inflated beta-binomial fitted to per-problem counts ``correct`` of
    ``n_samples`` samples each (one number or one per problem)."""
    from markovfork.metrics.extrapolate import fit_beta_binomial

    c = np.asarray(correct, dtype=np.int64)
    n = np.broadcast_to(np.asarray(n_samples, dtype=np.int64), c.shape)
    fit = fit_beta_binomial(n, c, zero_mass=True)
    return {"a": float(fit.a), "b": float(fit.b), "w": float(fit.w)}


def check_spread(spread) -> dict:
    if not isinstance(spread, dict) or set(spread) != {"a", "b", "w"}:
        raise ValueError(f"base_spread must be a dict with keys a, b, w, got {spread!r}")
    a, b, w = (float(spread[k]) for k in ("a", "b", "w"))
    if not (a > 0 and b > 0 and 0 <= w < 1 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"base_spread needs a > 0, b > 0, 0 <= w < 1, got {spread!r}")
    return {"a": a, "b": b, "w": w}


def spread_quantiles(spread: dict, n: int, seed: int, role: str) -> np.ndarray:
    """(n,) mid-quantiles of the zero-inflated Beta ``spread`` in a seeded random order."""
    from scipy.stats import beta

    s = check_spread(spread)
    u = (np.arange(n) + 0.5) / n
    inner = np.clip((u - s["w"]) / (1.0 - s["w"]), 0.0, 1.0)
    q = np.where(u <= s["w"], 0.0, beta.ppf(inner, s["a"], s["b"]))
    return q[child_rng(seed, "base-spread", role).permutation(n)]


def base_success_curve(ps, decoding, skills=SKILL_GRID) -> np.ndarray:
    """(len(skills),) base success probability of the simulated task ``ps`` (a built PathStar) at
    each skill logit (mean over its test problems, which the untrained base treats alike)."""
    from markovfork.engines.exact import success_probability
    from markovfork.model.policy import transition_probs
    from markovfork.model.tree import DECIPHERABLE

    tree, test = ps.tree, ps.test
    parent_visible = np.zeros(tree.n_nodes, dtype=bool)
    parent_visible[1:] = tree.kind[tree.parent[1:]] == DECIPHERABLE
    visible = test.on_correct_path(tree) & parent_visible
    out = np.empty(len(skills))
    for i, s in enumerate(skills):
        z = np.where(visible, s, 0.0) + tree.edge_logit
        z[:, 0] = 0.0
        probs = transition_probs(tree, z, decoding)
        out[i] = float(np.mean(success_probability(tree, probs, test.correct, test.start)))
    return out


def skill_for_success(q, curve: np.ndarray, skills=SKILL_GRID) -> np.ndarray:
    """The skill logits at which the base success (``curve`` over ``skills``, increasing) equals
    ``q``, interpolated linearly in logit(success); q outside the curve's range is clipped to it."""
    lo, hi = float(curve[0]), float(curve[-1])
    keep = np.concatenate([[True], np.diff(curve) > 1e-12])  # strictly increasing for the inversion
    c, s = curve[keep], np.asarray(skills)[keep]
    q = np.clip(np.asarray(q, dtype=np.float64), lo, hi)
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    return np.interp(logit(np.clip(q, 1e-12, 1 - 1e-12)), logit(np.clip(c, 1e-12, 1 - 1e-12)), s)


def lr_multiplier(step: int, total: int, warmup: int, floor: float) -> float:
    """The bridge's multiplier of the peak learning rate at optimizer step ``step`` (0-based) of
    ``total``: linear warm-up, then a cosine from 1 to ``floor`` (``llm_bridge.train.lr_at``)."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup - 1, 1)
    progress = min((step - warmup) / span, 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def bridge_lr_factors(run_config: dict, epochs: int | None = None) -> np.ndarray | None:
    """(epochs,) mean learning-rate multiplier of each SFT epoch of a bridge run (its configuration
    as a dict, ``RunConfig.to_dict()``); None when the run does not say (no ``sft`` section, or a
    batch size set by ``tokens_per_step``, which depends on the tokenizer)."""
    sft = (run_config or {}).get("sft")
    if not isinstance(sft, dict) or any(k not in sft for k in ("epochs", "batch_size", "n_problems", "warmup_steps",
                                                                "min_lr_ratio")):
        return None
    if int(sft.get("tokens_per_step", 0) or 0) > 0:
        return None
    per_epoch = math.ceil(int(sft["n_problems"]) / int(sft["batch_size"]))
    total = int(sft["epochs"]) * per_epoch
    m = np.array([lr_multiplier(s, total, int(sft["warmup_steps"]), float(sft["min_lr_ratio"])) for s in range(total)])
    factors = m.reshape(int(sft["epochs"]), per_epoch).mean(axis=1)
    return factors if epochs is None else factors[:epochs]
