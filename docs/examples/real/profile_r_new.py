"""Profile likelihood of the Markov map in the tuned rare-group mass r' (Delta = logit r - logit r')
on the MATH500 pair fitted on 16 of 128 samples (seed 0, as the must-show): r' held at each value,
the other parameters maximised. Run: python docs/examples/real/profile_r_new.py"""

from pathlib import Path

import numpy as np

from markovfork.real.counts import paired_counts
from markovfork.real.fit import BOUNDS, fit_map, subsample_counts
from markovfork.plumbing.seeds import child_seed

CSV = str(Path(__file__).resolve().parent / "math500_qwen25_7b_base_vs_simplerl.csv")


def main():
    pairs = paired_counts(CSV, CSV, "base", "simplerl")
    rng = np.random.default_rng(child_seed(0, "real-fit-subsample"))
    n_b, c_b = subsample_counts(pairs.n_base, pairs.c_base, 16, rng)
    n_t, c_t = subsample_counts(pairs.n_tuned, pairs.c_tuned, 16, rng)
    free = fit_map("markov", n_b, c_b, n_t, c_t)
    print(f"free fit: {free.params}, log-lik {free.log_likelihood:.3f}")
    for r_new in (0.0, 0.01, 0.03, 0.1, 0.2, 0.35, 0.5, 0.8, 1.0):
        box = list(BOUNDS["markov"])
        box[1] = (r_new, r_new)
        start = free.x.copy()
        start[1] = r_new
        fit = fit_map("markov", n_b, c_b, n_t, c_t, bounds=box, starts=[start])
        p = fit.params
        print(f"r' = {r_new:.2f}: log-lik {fit.log_likelihood:.3f} (drop {free.log_likelihood - fit.log_likelihood:.3f}); "
              f"r {p['r']:.3f}, lam {p['lam']:.3f}, alpha {p['alpha']:.3f}, beta_phi {p['beta_phi']:.3f}", flush=True)


if __name__ == "__main__":
    main()
