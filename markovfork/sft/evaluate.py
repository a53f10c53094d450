"""Evaluation of a policy on test problems: exact (dynamic programming) and sampled.

Fork metrics are taken at *decision points*: forks with fewer valid branches than children.
For a problem x reaching decision fork u with probability r_x(u), a sampled branch c ~ pi_x(.|u)
is correct when it lies on a correct path. Exactly, with reach weights,

    fork_accuracy           = sum r sum_{c ok} pi(c)         / sum r
    fork_confidence_correct = sum r sum_{c ok} pi(c)^2       / sum r sum_{c ok} pi(c)
    fork_confidence_wrong   = sum r sum_{c bad} pi(c)^2      / sum r sum_{c bad} pi(c)
    fork_entropy            = sum r H(pi(.|u))               / sum r

i.e. the expected probability the model gives to the branch it picks, split by whether that
branch is right; the sampled engine reports the same quantities as averages over rollouts.

With ``spread`` active (:mod:`markovfork.model.spread`) only pass@k changes: it is the pass@k of
``n_samples`` spread samples per problem (exact, or the unbiased estimator on spread rollouts);
the fork metrics stay those of the decoded policy (the bridge's too are model probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markovfork.metrics.estimators import pass_at_k
from markovfork.engines.exact import exact_pass_at_k, node_entropy, reach_probability, success_probability
from markovfork.model.problems import Problems
from markovfork.model.spread import Spread, spread_leaves, spread_pass_at_k
from markovfork.model.tree import FORK, Tree

__all__ = ["Evaluation", "decision_forks", "evaluate_exact", "evaluate_sampled"]


@dataclass(frozen=True)
class Evaluation:
    """pass@k and fork metrics of one policy on one problem set."""

    k: np.ndarray  # (K,)
    pass_at_k: np.ndarray  # (K,)
    fork_accuracy: float
    fork_confidence_correct: float
    fork_confidence_wrong: float
    fork_entropy: float


def decision_forks(tree: Tree) -> np.ndarray:
    """Forks where a wrong branch exists (valid_branches < number of children)."""
    return np.flatnonzero((tree.kind == FORK) & (tree.valid_branches < tree.n_children))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def evaluate_exact(tree: Tree, probs: np.ndarray, problems: Problems, ks, spread: Spread = Spread(),
                   n_samples: int | None = None) -> Evaluation:
    """Exact pass@k (``mean 1 - (1 - p)^k``; with ``spread`` active, of ``n_samples`` spread
    samples) and reach-weighted fork metrics."""
    ks = np.atleast_1d(np.asarray(ks, dtype=np.int64))
    success = success_probability(tree, probs, problems.correct, problems.start)
    reach = reach_probability(tree, probs, problems.start)
    on_path = problems.on_correct_path(tree)
    entropy = node_entropy(tree, probs)  # (P, N)
    acc_num = conf_ok_num = conf_ok_den = conf_bad_num = conf_bad_den = ent_num = r_sum = 0.0
    for u in decision_forks(tree):
        kids = slice(tree.child_start[u], tree.child_start[u + 1])
        r = reach[:, u]
        pi = probs[:, kids]
        ok = on_path[:, kids]
        ok_mass = float(np.sum(r * np.sum(pi * ok, axis=1)))  # reach-weighted P(correct branch)
        acc_num += ok_mass
        conf_ok_num += float(np.sum(r * np.sum(pi**2 * ok, axis=1)))
        conf_ok_den += ok_mass
        conf_bad_num += float(np.sum(r * np.sum(pi**2 * ~ok, axis=1)))
        conf_bad_den += float(np.sum(r * np.sum(pi * ~ok, axis=1)))
        ent_num += float(np.sum(r * entropy[:, u]))
        r_sum += float(np.sum(r))
    return Evaluation(
        k=ks,
        pass_at_k=(spread_pass_at_k(tree, probs, problems, spread, n_samples, ks).mean(axis=0) if spread.active
                   else exact_pass_at_k(success, ks)),
        fork_accuracy=_ratio(acc_num, r_sum),
        fork_confidence_correct=_ratio(conf_ok_num, conf_ok_den),
        fork_confidence_wrong=_ratio(conf_bad_num, conf_bad_den),
        fork_entropy=_ratio(ent_num, r_sum),
    )


def evaluate_sampled(tree: Tree, probs: np.ndarray, problems: Problems, ks, n_samples: int, seed: int,
                     spread: Spread = Spread()) -> Evaluation:
    """pass@k by the unbiased estimator over ``n_samples`` rollouts per problem (spread rollouts
    when ``spread`` is active), and fork metrics averaged over the policy's rollouts that pass a
    decision fork."""
    from markovfork.engines.sampled import sample_leaves

    ks = np.atleast_1d(np.asarray(ks, dtype=np.int64))
    leaves = sample_leaves(tree, probs, problems.start, n_samples, seed)  # (P, n)
    rows = np.arange(len(problems))[:, None]
    scored = spread_leaves(tree, probs, problems.start, spread, n_samples, seed) if spread.active else leaves
    correct_counts = problems.correct[rows, scored].sum(axis=1)
    on_path = problems.on_correct_path(tree)
    # branch taken at each decision fork: the ancestor of the leaf whose parent is that fork
    forks = decision_forks(tree)
    is_fork = np.zeros(tree.n_nodes, dtype=bool)
    is_fork[forks] = True
    node = leaves.copy()
    branch = np.full(leaves.shape, -1, dtype=np.int64)  # one decision fork per path in the task trees
    while np.any(node > 0):
        par = np.where(node > 0, tree.parent[np.maximum(node, 0)], -1)
        hit = (par >= 0) & is_fork[np.maximum(par, 0)]
        branch = np.where(hit, node, branch)
        node = np.where(node > 0, par, 0)
    passed = branch >= 0
    pr = np.broadcast_to(rows, leaves.shape)
    chosen_prob = np.where(passed, probs[pr, np.maximum(branch, 0)], np.nan)
    chosen_ok = passed & on_path[pr, np.maximum(branch, 0)]
    fork_parent = tree.parent[np.maximum(branch, 0)]
    node_h = node_entropy(tree, probs)  # (P, N)
    entropy = np.full(leaves.shape, np.nan)
    for u in forks:
        sel = passed & (fork_parent == u)
        entropy[sel] = np.broadcast_to(node_h[:, u, None], leaves.shape)[sel]
    per_problem = np.atleast_2d(pass_at_k(n_samples, correct_counts, ks))  # (P, K)
    n_pass = int(passed.sum())
    return Evaluation(
        k=ks,
        pass_at_k=per_problem.mean(axis=0),
        fork_accuracy=_ratio(chosen_ok.sum(), n_pass),
        fork_confidence_correct=_ratio(np.nansum(chosen_prob * chosen_ok), chosen_ok.sum()),
        fork_confidence_wrong=_ratio(np.nansum(chosen_prob * (passed & ~chosen_ok)), (passed & ~chosen_ok).sum()),
        fork_entropy=_ratio(np.nansum(entropy), n_pass),
    )
