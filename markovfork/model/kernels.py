"""The compiled tree operations: one implementation of each, shared by every engine.

Nodes are numbered so that a parent precedes its children and each node's children are the
contiguous ids ``child_start[u] .. child_start[u + 1] - 1``. With step probabilities pi(v) (the
probability of the step parent[v] -> v):

* softmax over children: ``pi(v) = exp((z(v) - max z) / T) / sum_c exp((z(c) - max z) / T)``
  over the siblings c of v (every logit -inf: uniform); :func:`softmax_children`;
* backward value: ``V(leaf) = c(leaf)``, ``V(u) = sum_{v child of u} pi(v) V(v)``;
  :func:`backward_value`;
* forward reach: ``R(start) = 1``, ``R(v) = R(parent v) pi(v)`` below ``start``, 0 elsewhere;
  :func:`forward_reach`;
* the walk: at node v with uniform u, the first child c_j with ``u < pi(c_1) + ... + pi(c_j)``;
  rounding guard: a u at or past the rounded sum takes the last child with positive
  probability (never a zero-probability child, never a child of the next node);
  :func:`choose_child` (the walks themselves, which draw the uniforms, are
  ``markovfork.engines.sampled.walk.walk`` and ``markovfork.rl.tree_ops.rollout``);
* hard-edge counting: ``H(root) = 0``, ``H(v) = H(parent v) + [edge into v is hard]``; a path
  from s down to a leaf l is all-easy exactly when ``H(l) == H(s)``; :func:`hard_edge_counts`.

Each is tested against an independent reference (enumeration of root-to-leaf paths) in
``tests/model/test_kernels.py``. Node ids are cast to uint64 inside: unsigned indices spare
Numba's negative-index wraparound code.
"""

from __future__ import annotations

import numba
import numpy as np

from markovfork.model.indices import U1

__all__ = [
    "softmax_children", "backward_value", "forward_reach", "choose_child", "hard_edge_counts",
]


@numba.njit(cache=True, inline="always")
def softmax_children(z, a, b, temperature, out):
    """out[a:b] = softmax of z[a:b] / temperature (see the module docstring); every z -inf:
    ``1 / (b - a)`` each."""
    zmax = -np.inf
    for v in range(a, b):
        if z[v] > zmax:
            zmax = z[v]
    if zmax == -np.inf:  # no child can be taken: guard against 0/0, spread uniformly
        for v in range(a, b):
            out[v] = 1.0 / (b - a)
        return
    total = 0.0
    if temperature == 1.0:
        for v in range(a, b):
            out[v] = np.exp(z[v] - zmax)
            total += out[v]
    else:
        for v in range(a, b):
            out[v] = np.exp((z[v] - zmax) / temperature)
            total += out[v]
    for v in range(a, b):
        out[v] /= total


@numba.njit(cache=True)
def backward_value(child_start, probs, leaf_value, value):
    """value[u] = V(u): ``leaf_value[u]`` at leaves, ``sum_v probs[v] V(v)`` over the children
    elsewhere (bottom-up; ``leaf_value`` bool or float)."""
    n = child_start.shape[0] - 1
    for i in range(n):
        u = np.uint64(n - 1 - i)
        a, b = np.uint64(child_start[u]), np.uint64(child_start[u + U1])
        if a == b:
            value[u] = 1.0 * leaf_value[u]
        else:
            acc = 0.0
            for v in range(a, b):
                acc += probs[v] * value[v]
            value[u] = acc


@numba.njit(cache=True)
def forward_reach(parent, probs, start, reach, inside):
    """reach[v] = R(v), the probability that a walk from ``start`` passes through v;
    inside[v] = v is ``start`` or below it."""
    n = parent.shape[0]
    s = np.uint64(start)
    for v in range(n):
        reach[v] = 0.0
        inside[v] = False
    reach[s] = 1.0
    inside[s] = True
    for v in range(s + U1, np.uint64(n)):
        u = np.uint64(parent[v])
        if inside[u]:
            inside[v] = True
            reach[v] = reach[u] * probs[v]


@numba.njit(cache=True, inline="always")
def choose_child(child_start, row, v, u):
    """Child of internal node v taken by uniform u (the walk step of the module docstring)."""
    v = np.uint64(v)
    a, b = np.uint64(child_start[v]), np.uint64(child_start[v + U1])
    acc = 0.0
    for c in range(a, b):
        acc += row[c]
        if u < acc:
            return c
    c = b - U1
    while c > a and not row[c] > 0.0:
        c -= U1
    return c


@numba.njit(cache=True)
def hard_edge_counts(parent, edge_easy):
    """(N,) int64 H(v): the number of hard (not ``edge_easy``) steps on the path root -> v."""
    hard = np.zeros(parent.shape[0], dtype=np.int64)
    for v in range(1, parent.shape[0]):
        hard[v] = hard[parent[v]] + np.int64(not edge_easy[v])
    return hard


# Interruptible compiled work: Python signal handlers (Ctrl-C, SIGTERM) run only between kernel
# calls, so long work is cut into spans of about CALL_BUDGET work units (roughly one node visit
# or one step each; about 0.01-0.05 s of compiled work, benchmarks/chunked_kernels.py) with the
# interpreter reached in between.
CALL_BUDGET = 1 << 21


def work_spans(n_items: int, work_per_item: float, budget: int | None = None):
    """Consecutive ranges (lo, hi) covering 0..n_items-1, each of at most ``budget`` (default
    CALL_BUDGET) work units when an item costs ``work_per_item`` (at least one item a span)."""
    budget = CALL_BUDGET if budget is None else budget
    step = max(1, int(budget // max(float(work_per_item), 1.0)))
    for lo in range(0, n_items, step):
        yield lo, min(lo + step, n_items)
