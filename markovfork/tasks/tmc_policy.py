"""The TMC's tabular softmax policy and the instance population of a task.

**Chain edges.** The paper's policy is a softmax per row (layer ``l``, state ``s``) with one logit
per chain edge ``(l, s) -> (l+1, t)``, numbered ``offset(l) + s*m + t`` where
``offset(l) = sum_{l' < l} layer_size(l') * m``; equivalently row ``r = row_start(l) + s``
holds edges ``r*m .. r*m + m-1``. Every node of the unrolled tree at depth >= 2 (a step between
layers) takes its logit from its chain edge, so many tree nodes share one parameter; the root
and the layer-0 nodes (the root -> layer-0 step, not a decision) carry edge -1 and logit 0.

**Instance population.** A task's instance marks each of its V valid paths correct
independently with the path's expected correctness; :func:`tmc_instance_population` lists all
2^V configurations with their probabilities, the exact distribution :func:`tmc_problems` samples.
"""

from __future__ import annotations

import numpy as np

from markovfork.plumbing import checks
from markovfork.tasks.tmc import TMC
from markovfork.model.problems import Problems

__all__ = [
    "chain_row_start",
    "n_chain_edges",
    "chain_edge_index",
    "chain_node_logits",
    "chain_theta_from_transitions",
    "chain_row_probs",
    "chain_tv_distance",
    "tmc_instance_population",
]


def _tmc(tmc) -> TMC:
    if not isinstance(tmc, TMC):
        raise ValueError(f"tmc must be a TMC (from tmc_chain), got {type(tmc).__name__}")
    return tmc


def chain_row_start(tmc: TMC) -> np.ndarray:
    """(layers-1,) int64: the first row of each layer, ``row_start(l) = sum_{l' < l} layer_size(l')``
    (row of (l, s) is ``row_start(l) + s``; its edges start at ``offset(l) = row_start(l) * m``)."""
    tmc = _tmc(tmc)
    sizes = [tmc.layer_size(layer) for layer in range(tmc.layers - 1)]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def n_chain_edges(tmc: TMC) -> int:
    """Number of chain edges ``sum_{l < layers-1} layer_size(l) * m = (m0 + (layers-2) m) m``."""
    tmc = _tmc(tmc)
    return (tmc.m0 + (tmc.layers - 2) * tmc.m) * tmc.m


def chain_edge_index(tmc: TMC) -> np.ndarray:
    """(N,) int64: the chain edge ``offset(l) + s*m + t`` of each tree node v at depth l+2 >= 2
    (state t of layer l+1, parent at state s of layer l); -1 at the root and layer-0 nodes."""
    tmc = _tmc(tmc)
    tree = tmc.tree
    out = np.full(tree.n_nodes, -1, dtype=np.int64)
    v = np.flatnonzero(tree.depth >= 2)
    layer = tree.depth[v] - 2
    out[v] = (chain_row_start(tmc)[layer] + tree.label[tree.parent[v]]) * tmc.m + tree.label[v]
    return out


def _theta(tmc: TMC, theta) -> np.ndarray:
    """``theta`` checked: (n_chain_edges,) float64, each entry finite or -inf."""
    n = n_chain_edges(tmc)
    theta = checks.array("theta", theta, np.float64)
    if theta.shape != (n,):
        raise ValueError(f"theta must have shape ({n},) (one logit per chain edge), got {theta.shape}")
    bad = ~(np.isfinite(theta) | (theta == -np.inf))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"theta[{i}] must be a real number or -inf, got {theta[i]}")
    return theta


def chain_node_logits(tmc: TMC, theta) -> np.ndarray:
    """(N,) tree logits ``z_v = theta[chain_edge_index(v)]`` (0 at the root and layer-0 nodes)."""
    theta = _theta(_tmc(tmc), theta)
    index = chain_edge_index(tmc)
    return np.where(index >= 0, theta[np.maximum(index, 0)], 0.0)


def chain_theta_from_transitions(tmc: TMC) -> np.ndarray:
    """(n_chain_edges,) the true chain's logits ``theta[offset(l) + s*m + t] = log P_l(s, t)``
    (-inf where a step has probability 0)."""
    tmc = _tmc(tmc)
    with np.errstate(divide="ignore"):
        return np.concatenate([np.log(p).ravel() for p in tmc.transitions])


def chain_row_probs(tmc: TMC, theta) -> np.ndarray:
    """(rows, m) the policy's step probabilities ``softmax(theta_row(r))`` (rows as in
    :func:`chain_row_start`); for ``chain_theta_from_transitions`` these are the transitions."""
    tmc = _tmc(tmc)
    z = _theta(tmc, theta).reshape(-1, tmc.m)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def chain_tv_distance(tmc: TMC, theta) -> np.ndarray:
    """(rows,) total-variation distance of each policy row to the true chain's row,
    ``TV_r = 1/2 sum_t |softmax(theta_r)_t - P(r, t)|``."""
    true = np.concatenate(_tmc(tmc).transitions, axis=0)
    return 0.5 * np.abs(chain_row_probs(tmc, theta) - true).sum(axis=1)


def tmc_instance_population(tmc: TMC, task: int, max_valid_paths: int = 12) -> tuple[Problems, np.ndarray]:
    """Every instance of ``tmc.tasks[task]`` with its probability: ``(problems, weights)``.

    Configuration j (``0 .. 2^V - 1``) marks valid path i (``task_paths`` order) correct iff bit
    i of j is set; its weight is ``prod_i q_i^{b_i} (1 - q_i)^{1 - b_i}`` with ``q_i`` the path's
    expected correctness (weights sum to 1). Start, valid leaves, ids and empty features follow
    :func:`tmc_problems`, whose instances are draws from this population.
    """
    tmc = _tmc(tmc)
    max_valid_paths = checks.integer("max_valid_paths", max_valid_paths, 1, 62)
    paths = tmc.task_paths(task)
    n_valid = int(paths.leaf.size)
    if n_valid > max_valid_paths:
        raise ValueError(f"task {task} has V = {n_valid} valid paths, 2^{n_valid} instances: more than "
                         f"max_valid_paths = {max_valid_paths}; use sampled instances (tmc_problems)")
    tree = tmc.tree
    n_configs = 2**n_valid
    checks.fits_in_memory("max_valid_paths", max_valid_paths, 2 * n_configs * tree.n_nodes, "the instance masks")
    bits = ((np.arange(n_configs)[:, None] >> np.arange(n_valid)[None, :]) & 1).astype(bool)
    q = paths.expected_correctness
    weights = np.where(bits, q[None, :], 1.0 - q[None, :]).prod(axis=1)
    correct = np.zeros((n_configs, tree.n_nodes), dtype=bool)
    correct[:, paths.leaf] = bits
    valid = np.zeros_like(correct)
    valid[:, paths.leaf] = True
    start = np.full(n_configs, tmc.node([tmc.tasks[int(task)].start]), dtype=np.int64)
    problems = Problems(start=start, correct=correct, valid=valid, features=np.zeros((n_configs, 0)),
                        ids=np.arange(n_configs, dtype=np.int64))
    return problems, weights
