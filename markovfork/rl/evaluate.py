"""Scores of a post-trained policy on a set of problems: pass@k, the easy / hard / invalid split
of its paths, and its path entropy, exactly or from rollouts.

* exact: ``pass@k = mean_x 1 - (1 - p_x)^k`` (:func:`markovfork.engines.exact.exact_pass_at_k`) and the
  path-type shares of :func:`markovfork.engines.exact.path_type_mass`;
* sampled: ``n_samples`` rollouts per problem, pass@k by the unbiased estimator
  (:func:`markovfork.pass_at_k`) and the shares as counted.

The path entropy ``H = sum_u R(u) H(u)`` (nats; R the reach probability from the start, H(u) the
entropy of u's step distribution) is a property of the policy and is computed exactly for both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markovfork.plumbing import checks
from markovfork.metrics.estimators import pass_at_k
from markovfork.engines.exact import exact_pass_at_k, node_entropy, path_type_mass, reach_probability, success_probability
from markovfork.model.problems import Problems
from markovfork.model.tree import Tree

__all__ = ["PolicyScore", "score_policy", "EVAL_ENGINES"]

EVAL_ENGINES = ("analytic", "sampled")


@dataclass(frozen=True)
class PolicyScore:
    k: np.ndarray  # (K,)
    pass_at_k: np.ndarray  # (K,) mean over problems
    easy_valid: float  # mean share of paths that are valid with every edge easy
    hard_valid: float
    invalid: float
    path_entropy: float  # mean over problems, nats


def score_policy(tree: Tree, probs: np.ndarray, problems: Problems, ks, engine: str = "analytic",
                 n_samples: int | None = None, seed: int = 0) -> PolicyScore:
    """Score the step probabilities ``probs`` ((P, N), one row per problem) on ``problems``."""
    ks = checks.k_values(ks)
    if engine not in EVAL_ENGINES:
        raise ValueError(f"engine must be one of {', '.join(EVAL_ENGINES)}, got {engine!r}")
    entropy = float(np.mean(np.sum(reach_probability(tree, probs, problems.start) * node_entropy(tree, probs), axis=1)))
    if engine == "analytic":
        success = success_probability(tree, probs, problems.correct, problems.start)
        mass = path_type_mass(tree, probs, problems)
        return PolicyScore(ks, exact_pass_at_k(success, ks), float(mass.easy_valid.mean()),
                           float(mass.hard_valid.mean()), float(mass.invalid.mean()), entropy)
    from markovfork.engines.sampled import sample_rollouts

    n = int(ks.max()) if n_samples is None else checks.integer("n_samples", n_samples, int(ks.max()))
    counts = sample_rollouts(tree, probs, problems, n, seed)
    per_problem = np.atleast_2d(pass_at_k(n, counts.correct, ks))
    return PolicyScore(ks, per_problem.mean(axis=0), float(counts.easy_valid.mean() / n),
                       float(counts.hard_valid.mean() / n), float(counts.invalid.mean() / n), entropy)
