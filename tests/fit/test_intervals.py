"""Predictive intervals (markovfork.fit.intervals): the noise ratio of pure binomial seeds is
near 1, the discrepancy variance is recovered by maximum likelihood, and intervals built from
both cover about their level."""

import numpy as np

from markovfork.fit.intervals import coverage, discrepancy, interval, seed_ratio, shrunk_variance

M = 200


def test_noise_ratio_of_binomial_seeds_is_near_one_and_uses_only_the_given_cells():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 0.9, size=(4, 50, 1))
    seeds = np.stack([rng.binomial(M, p) / M for _ in range(2)])
    cells = np.ones(p.shape, dtype=bool)
    r = seed_ratio(seeds, M, cells)
    assert r.shape == (1,) and 0.8 < r[0] < 1.25
    wide = seeds.copy()
    wide[1, 0] += 0.2  # a seed effect in arm 0 only
    assert seed_ratio(wide, M, cells)[0] > 3
    cells[0] = False
    assert seed_ratio(wide, M, cells)[0] == seed_ratio(seeds, M, cells)[0]
    assert seed_ratio(seeds[:1], M, cells)[0] == 1.0  # one seed: nothing to scale by


def test_discrepancy_is_recovered_and_intervals_cover():
    rng = np.random.default_rng(1)
    n = 4000
    pred = rng.uniform(0.3, 0.95, size=n)
    k = rng.integers(0, 2, size=n)
    lam_true = np.array([0.004, 0.0])
    noise = shrunk_variance(pred, M) / (M * 2)
    y = pred + rng.normal(size=n) * np.sqrt(noise + lam_true[k] * shrunk_variance(pred, M))
    lam = discrepancy(y - pred, pred, k, M, 2, np.ones(2))
    assert abs(lam[0] - 0.004) < 0.0006 and lam[1] < 0.0003
    lo, hi, sd = interval(pred, k, M, 2, np.ones(2), lam, 0.9)
    assert np.all((lo <= pred) & (pred <= hi)) and np.all(sd > 0)
    assert 0.87 < coverage(y, lo, hi) < 0.93
    lo0, hi0, _ = interval(pred, k, M, 2, np.ones(2), np.zeros(2), 0.9)  # without the discrepancy
    assert coverage(y[k == 0], lo0[k == 0], hi0[k == 0]) < 0.8
