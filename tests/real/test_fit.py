"""Maximum-likelihood fits recover the parameters of counts the maps themselves generated, and
the subsample is hypergeometric."""

import numpy as np
import pytest

from markovfork.real.fit import fit_map, predict, subsample_counts
from markovfork.real.model import MarkovParams, logit_map_components, markov_components
from markovfork.plumbing.seeds import child_rng


def _synthetic(comps_fn, n_problems, n, seed):
    rng = child_rng(seed, "real-synthetic")
    p = np.where(rng.random(n_problems) < 0.05, 0.0, rng.beta(0.9, 0.6, n_problems))
    comps = comps_fn(p)
    weights = np.stack([np.broadcast_to(w, p.shape) for w, _ in comps], axis=1)
    pick = np.array([rng.choice(len(comps), p=row / row.sum()) for row in weights])
    q = np.stack([qq for _, qq in comps], axis=1)[np.arange(n_problems), pick]
    nn = np.full(n_problems, n)
    return nn, rng.binomial(n, p), nn, rng.binomial(n, q), q


def test_logit_map_recovers_its_parameters():
    n_b, c_b, n_t, c_t, _ = _synthetic(lambda p: logit_map_components(p, 1.5, 1.3), 600, 64, 1)
    fit = fit_map("logit", n_b, c_b, n_t, c_t)
    assert fit.params["a"] == pytest.approx(1.5, abs=0.25)
    assert fit.params["b"] == pytest.approx(1.3, abs=0.15)


@pytest.mark.slow
def test_markov_map_recovers_its_parameters_and_tuned_curve():
    truth = MarkovParams.with_delta(0.4, 3.0, 2.0, 1.0, 1.0)
    n_b, c_b, n_t, c_t, q = _synthetic(lambda p: markov_components(p, truth), 600, 64, 2)
    fit = fit_map("markov", n_b, c_b, n_t, c_t)
    got = fit.params
    assert got["r"] == pytest.approx(truth.r, abs=0.1)
    assert got["lam"] == pytest.approx(truth.lam, abs=0.4)
    assert got["delta"] > 1.5  # the rare group's loss is found (its size is weakly identified)
    k = np.array([1, 8, 64, 512])
    pred = predict(fit, n_t, c_t, k)["tuned"].mean(axis=0)
    true_curve = np.mean(1 - (1 - q[:, None]) ** k, axis=0)
    np.testing.assert_allclose(pred, true_curve, atol=0.02)


def test_subsample_is_hypergeometric():
    rng = child_rng(0, "test-subsample")
    n = np.full(20000, 128)
    c = np.full(20000, 40)
    m, sub = subsample_counts(n, c, 16, rng)
    assert np.all(m == 16) and np.all(sub <= 16)
    assert sub.mean() == pytest.approx(16 * 40 / 128, abs=0.05)
    var = 16 * (40 / 128) * (88 / 128) * (128 - 16) / 127  # hypergeometric, smaller than binomial
    assert sub.var() == pytest.approx(var, rel=0.05)
    with pytest.raises(ValueError, match="subsample must be <="):
        subsample_counts(n, c, 200, rng)
