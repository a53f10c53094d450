"""Per-problem success counts: the histogram a model predicts, the one a run measured, and the
distance between them.

A test problem x that one sample solves with probability s_x has, over n samples, a count
c ~ Binomial(n, s_x). The predicted histogram of counts over the test problems is the mixture

    h(c) = (1 / P) sum_x C(n, c) s_x^c (1 - s_x)^(n - c),   c = 0 .. n,

and the measured one is the share of test problems with c correct samples. Their distances:
total variation TV = (1/2) sum_c |h(c) - g(c)| (0 to 1), and the Wasserstein-1 distance in
success rate, W1 = (1/n) sum_c |H(c) - G(c)| with H, G the cumulative histograms (0 to 1: the
mean shift of the per-problem success rate needed to turn one into the other).
"""

from __future__ import annotations

import numpy as np

from markovfork.plumbing import checks

__all__ = ["predicted_histogram", "measured_histogram", "histogram_distance"]


def predicted_histogram(success, n_samples: int) -> np.ndarray:
    """(..., n + 1) mixture of Binomial(n, s_x) over the last axis of ``success`` (nan: no problem)."""
    from scipy.stats import binom

    n = checks.integer("n_samples", n_samples, 1)
    s = np.asarray(success, dtype=np.float64)
    flat = s.reshape(-1, s.shape[-1])
    c = np.arange(n + 1)
    out = np.array([binom.pmf(c[None, :], n, r[~np.isnan(r), None]).mean(axis=0) for r in flat])
    return out.reshape(*s.shape[:-1], n + 1)


def measured_histogram(correct, n_samples: int) -> np.ndarray:
    """(n + 1,) share of problems with c correct samples, from per-problem counts ``correct``."""
    n = checks.integer("n_samples", n_samples, 1)
    c = np.asarray(correct)
    if c.ndim != 1 or c.size == 0 or not np.issubdtype(c.dtype, np.integer) or c.min() < 0 or c.max() > n:
        raise ValueError(f"correct must be a non-empty list of counts in [0, n_samples={n}], got {c.tolist()[:8]}")
    return np.bincount(c, minlength=n + 1) / c.size


def histogram_distance(measured, predicted) -> dict[str, float]:
    """Total variation and Wasserstein-1 (in success rate) between two count histograms over 0 .. n."""
    g, h = np.asarray(measured, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if g.shape != h.shape or g.ndim != 1 or g.size < 2:
        raise ValueError(f"histograms must be two vectors over the same counts 0 .. n, got shapes {g.shape} and {h.shape}")
    n = g.size - 1
    return {"tv": float(0.5 * np.abs(g - h).sum()), "w1": float(np.abs(np.cumsum(g - h)).sum() / n)}
