"""Pythia base models: the heterogeneity prior fitted on 100 of 10,000 samples per problem
(hypergeometric, seeded) predicts pass@1,000 and pass@10,000; zero-inflated beta-binomial (the
prior of markovfork.real) against the plain beta-binomial. Run from the repository root:

    python docs/examples/real/pythia_prior.py
"""

from pathlib import Path

import numpy as np

from markovfork.metrics.estimators import pass_at_k
from markovfork.metrics.extrapolate import fit_beta_binomial
from markovfork.real.counts import model_counts, read_counts
from markovfork.real.fit import subsample_counts
from markovfork.plumbing.seeds import child_seed

PATH = Path(__file__).with_name("math128_pythia_base_n10000.csv")
K = [1000, 10000]
print(f"{'model':<12} {'k':>6} {'measured':>9} {'zero-infl.':>10} {'plain':>7}   (fit on 100 samples/problem, seed 0)")
for label in read_counts(PATH)["model"].unique(maintain_order=True).to_list():
    _, n, c, _ = model_counts(PATH, label)
    rng = np.random.default_rng(child_seed(0, "pythia-subsample", label))
    n_sub, c_sub = subsample_counts(n, c, 100, rng)
    measured = pass_at_k(n, c, K).mean(axis=0)
    zi = fit_beta_binomial(n_sub, c_sub, zero_mass=True).pass_at_k(K)
    plain = fit_beta_binomial(n_sub, c_sub, zero_mass=False).pass_at_k(K)
    for j, k in enumerate(K):
        print(f"{label:<12} {k:>6} {measured[j]:>9.3f} {zi[j]:>10.3f} {plain[j]:>7.3f}")
