"""Accuracy of the likelihood's base-rate integral on the MATH500 counts at full n = 128:
the fit's adapted trapezoid rule (G nodes per problem and type) and the old fixed rule (32-point
Gauss-Legendre in the base posterior's quantile scale, reproduced here) against the adaptive
reference of markovfork.real.reference, for both maps. Prints the total log-likelihood and the
differences. Run: python docs/examples/real/quadrature_check.py (about 2 minutes)."""

from pathlib import Path

import numpy as np
from scipy import special

from markovfork.real.counts import paired_counts
from markovfork.real.fit import fit_prior
from markovfork.real.model import (
    MarkovParams, adapt_nodes, base_posterior, evaluate, log_likelihood_per, logit_map_components, markov_components,
)
from markovfork.real.reference import _log_binomial, reference_log_likelihood

HERE = Path(__file__).resolve().parent
CSV = HERE / "math500_qwen25_7b_base_vs_simplerl.csv"


def old_rule(post, components_fn, n_t, c_t, size=32):
    """The fixed rule of the first version: Gauss-Legendre in the Beta posterior's quantile scale."""
    t, wt = np.polynomial.legendre.leggauss(size)
    t, wt = 0.5 * (t + 1.0), 0.5 * wt
    p = special.betaincinv(post.a_post[:, None], post.b_post[:, None], t[None, :])
    terms = np.stack([np.log(w) + _log_binomial(n_t[:, None], c_t[:, None], q) for w, q in components_fn(p)])
    beta = post.log_beta + special.logsumexp(np.log(wt)[None, :] + special.logsumexp(terms, axis=0), axis=1)
    return np.logaddexp(beta, post.log_zero + _log_binomial(n_t, c_t, np.zeros_like(n_t)))


def main():
    pairs = paired_counts(str(CSV), str(CSV), "base", "simplerl")
    n_t, c_t = pairs.n_tuned.astype(float), pairs.c_tuned.astype(float)
    prior = fit_prior(pairs.n_base, pairs.c_base)
    post = base_posterior(pairs.n_base, pairs.c_base, prior)
    cases = [("logit", (2.6, 2.5), lambda p: logit_map_components(p, 2.6, 2.5)),
             ("logit", (1.95, 1.45), lambda p: logit_map_components(p, 1.95, 1.45))]
    for theta in (MarkovParams(0.3, 0.02, 2.5, 0.5, 0.8), MarkovParams(0.5, 0.0, 2.35, 0.01, 0.12)):
        cases.append(("markov", theta, lambda p, th=theta: markov_components(p, th)))
    print("map | parameters | reference | G=32 | G=48 | G=64 | old fixed rule (32)")
    for kind, theta, fn in cases:
        ref = reference_log_likelihood(pairs.n_base, pairs.c_base, n_t, c_t, prior, fn)
        cells = []
        for size in (32, 48, 64):
            got = log_likelihood_per(evaluate(kind, theta, post, adapt_nodes(kind, theta, post, n_t, c_t, size)), n_t, c_t)
            cells.append(f"{np.sum(got - ref):+.2e} (max {np.max(np.abs(got - ref)):.1e})")
        old = old_rule(post, fn, n_t, c_t)
        print(f"{kind} | {theta} | {ref.sum():.3f} | " + " | ".join(cells) + f" | {np.sum(old - ref):+.1f}")


if __name__ == "__main__":
    main()
