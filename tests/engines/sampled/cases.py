"""Trees, probabilities, problems and references shared by the sampled engine's tests
(``from engines.sampled.cases import ...``: tests/ is on pytest's pythonpath)."""

import numpy as np
from scipy import stats

from markovfork.model.policy import Decoding, transition_probs
from markovfork.model.problems import Problems
from markovfork.model.tree import FORK, LEAF, tree_from_children, tree_from_dict

METHODS = ["walk", "path"]


def small_tree():
    """Leaves at depths 1..3, branching 1..3, one hard edge, a zero-probability-friendly shape."""
    return tree_from_dict(
        {
            "kind": "fork",
            "children": [
                {"prob": 0.5, "children": [{"prob": 0.2}, {"prob": 0.5, "easy": False}, {"prob": 0.3}]},
                {"prob": 0.3, "children": [{"prob": 1.0, "children": [{"prob": 0.6}, {"prob": 0.4}]}]},
                {"prob": 0.2},
            ],
        }
    )


def random_tree(seed, depth=5, max_children=4, p_leaf=0.15):
    """A random tree; nodes below the root stop early with probability p_leaf."""
    rng = np.random.default_rng(seed)
    children, kind, prob, easy = [[]], [0], [1.0], [True]
    front = [0]
    for d in range(depth):
        new_front = []
        for u in front:
            if d > 0 and rng.random() < p_leaf:
                continue
            k = int(rng.integers(1, max_children + 1))
            w = rng.dirichlet(np.ones(k))
            for j in range(k):
                children.append([])
                kind.append(0)
                prob.append(float(w[j]))
                easy.append(bool(w[j] > 0.3))
                children[u].append(len(children) - 1)
                new_front.append(len(children) - 1)
        front = new_front
    kind = [LEAF if not c else (FORK if i == 0 else 0) for i, c in enumerate(children)]
    tree, _ = tree_from_children(children, kind, prob, easy)
    return tree


TREES = {"small": small_tree, "random5": lambda: random_tree(3), "random6": lambda: random_tree(13, depth=6)}


def random_probs(tree, n_problems, seed, scale=1.0, decoding=Decoding()):
    rng = np.random.default_rng(seed)
    logits = tree.edge_logit[None, :] + scale * rng.normal(size=(n_problems, tree.n_nodes))
    return transition_probs(tree, logits, decoding)


def random_problems(tree, n_problems, seed, start=None):
    rng = np.random.default_rng(seed)
    leaf = tree.kind == LEAF
    valid = leaf[None, :] & (rng.random((n_problems, tree.n_nodes)) < 0.7)
    correct = valid & (rng.random((n_problems, tree.n_nodes)) < 0.5)
    start = np.zeros(n_problems, dtype=np.int64) if start is None else np.asarray(start, dtype=np.int64)
    return Problems(start, correct, valid, np.zeros((n_problems, 0)), np.arange(n_problems))


def chi_square_pvalue(counts, expected_probs, min_expected=5.0):
    """Goodness of fit, pooling the cells with expected count < min_expected into one cell."""
    n = counts.sum()
    expected = expected_probs * n
    big = expected >= min_expected
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] < min_expected:  # pooled cell still small: fold it into the smallest big cell
        i = np.argmin(exp[:-1])
        obs[i] += obs[-1]
        exp[i] += exp[-1]
        obs, exp = obs[:-1], exp[:-1]
    exp = exp * (obs.sum() / exp.sum())  # rescale away rounding in the exact probabilities
    return stats.chisquare(obs, exp).pvalue


def walk_reference(tree, probs_row, start, uniforms, n_samples):
    """Plain-Python walks consuming ``uniforms`` one per step, rollouts in order (inverse CDF)."""
    leaves, i = [], 0
    for _ in range(n_samples):
        v = start
        while tree.n_children[v]:
            kids = np.arange(tree.child_start[v], tree.child_start[v + 1])
            v = int(kids[np.searchsorted(np.cumsum(probs_row[kids]), uniforms[i], side="right")])
            i += 1
        leaves.append(v)
    return np.array(leaves)
