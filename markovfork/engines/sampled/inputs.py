"""Checks of the sampled engine's inputs, through :mod:`markovfork.plumbing.checks`, before any kernel runs.

Shapes, dtypes, start ids and scalars are checked here. The values of ``probs`` are checked by
the kernels themselves (``rows.row_ok``, fused into the path set-up: finite, >= 0, each node's
children summing to 1 within ``PROB_TOL``) before any index depends on them; a second pass here
would cost as much as the sampling. When a kernel rejects a row, ``raise_bad_probs`` names the
first bad entry.
"""

from __future__ import annotations

import numba
import numpy as np

from markovfork.plumbing import checks
from markovfork.engines.sampled.drivers import METHODS
from markovfork.engines.sampled.kernel_tree import kernel_tree
from markovfork.engines.sampled.rows import probs_ok, row_sums
from markovfork.model.tree import PROB_TOL

__all__ = ["kernel_arrays", "checked_inputs", "raise_bad_probs", "check_kernel_flags", "method_code",
           "thread_count"]


def kernel_arrays(tree, probs, start) -> tuple[np.ndarray, np.ndarray]:
    """(probs (P, N) float64, start (P,) int64), C-contiguous, with checked shapes, dtypes and
    start ids (not the probability values: the kernels check those)."""
    start = checks.start_ids(start, tree.n_nodes)
    probs = checks.probability_rows(probs, tree.n_nodes, start.shape[0], check_values=False)
    return probs, start


def raise_bad_probs(tree, probs: np.ndarray) -> None:
    """Raise the ValueError naming the first entry of probs outside [0, 1] or the first row of
    children not summing to 1 within PROB_TOL (the explicit twin of the kernels' check)."""
    checks.probability_rows(probs, tree.n_nodes)
    internal = np.flatnonzero(tree.n_children > 0)
    if internal.size and probs.shape[0]:
        sums = np.empty((probs.shape[0], internal.size))
        row_sums(np.ascontiguousarray(tree.child_start, dtype=np.int64), internal, probs, sums)
        bad = np.abs(sums - 1.0) > PROB_TOL
        if np.any(bad):
            p, i = (int(j) for j in np.argwhere(bad)[0])
            raise ValueError(f"probs[{p}] must sum to 1 over the children of node {int(internal[i])}, "
                             f"got {sums[p, i]:.9g}")


def checked_inputs(tree, probs, start) -> tuple[np.ndarray, np.ndarray]:
    """``kernel_arrays``, and the probability values checked too."""
    probs, start = kernel_arrays(tree, probs, start)
    if not probs_ok(kernel_tree(tree).last_child, probs, PROB_TOL):  # cached per tree
        raise_bad_probs(tree, probs)
    return probs, start


def check_kernel_flags(tree, probs: np.ndarray, ok: np.ndarray) -> None:
    """After a sampling kernel: raise for the problems whose probs it rejected (not sampled)."""
    if ok.all():
        return
    raise_bad_probs(tree, probs)  # the error path: names the first bad entry of all problems
    raise RuntimeError(f"internal error: problem {int(np.argmin(ok))}'s probs failed the kernel's check only")


def method_code(method) -> int:
    """The kernel code of a ``method`` name."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return METHODS[method]


def thread_count(n_threads) -> int | None:
    """Numba threads for one call: None (the current setting) or 1 .. NUMBA_NUM_THREADS."""
    if n_threads is None:
        return None
    return checks.integer("n_threads", n_threads, 1, numba.config.NUMBA_NUM_THREADS)
