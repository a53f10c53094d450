"""The likelihood's base-rate integral at full n = 128 (MATH500 counts, 500 problems) against an
independent adaptive reference (:mod:`markovfork.real.reference`: Gauss-Kronrod in logit p, the split
solved by Newton), for both maps: the total log-likelihood within 0.1 (it is within ~1e-3)."""

from pathlib import Path

import numpy as np
import pytest

from markovfork.real.counts import paired_counts
from markovfork.real.fit import fit_prior
from markovfork.real.model import (
    MarkovParams, adapt_nodes, base_posterior, evaluate, log_likelihood_per, logit_map_components, markov_components,
)
from markovfork.real.reference import reference_log_likelihood

MATH500 = str(Path(__file__).resolve().parents[2] / "docs" / "examples" / "real" / "math500_qwen25_7b_base_vs_simplerl.csv")


def _check(kind, theta, components_fn):
    pairs = paired_counts(MATH500, MATH500, "base", "simplerl")
    prior = fit_prior(pairs.n_base, pairs.c_base)
    post = base_posterior(pairs.n_base, pairs.c_base, prior)
    nodes = adapt_nodes(kind, theta, post, pairs.n_tuned, pairs.c_tuned)
    got = log_likelihood_per(evaluate(kind, theta, post, nodes), pairs.n_tuned, pairs.c_tuned)
    ref = reference_log_likelihood(pairs.n_base, pairs.c_base, pairs.n_tuned, pairs.c_tuned, prior, components_fn)
    assert abs(np.sum(got - ref)) < 0.1
    assert np.max(np.abs(got - ref)) < 0.01


def test_logit_map_likelihood_matches_the_adaptive_reference_at_n_128():
    _check("logit", (2.6, 2.5), lambda p: logit_map_components(p, 2.6, 2.5))


@pytest.mark.slow
@pytest.mark.parametrize("theta", [MarkovParams(0.3, 0.02, 2.5, 0.5, 0.8), MarkovParams(0.5, 0.0, 2.35, 0.01, 0.12)])
def test_markov_map_likelihood_matches_the_adaptive_reference_at_n_128(theta):
    _check("markov", theta, lambda p: markov_components(p, theta))
