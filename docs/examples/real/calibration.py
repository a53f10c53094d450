"""Calibration of the bootstrap bands on data the Markov map itself generated: draw 500 problems
from the fitted prior and map (base rate, split type, tuned rate), draw 16 samples per problem
from each model, fit, bootstrap (B resamples, refits from the main optimum to convergence), and
count the share of the TRUE tuned pass@k points (k = 1..128, the mean over the 500 drawn problems
of 1 - (1 - q_i)^k) inside the 90 % and 95 % percentile bands; also the non-converged refits.

    python docs/examples/real/calibration.py --replicates 5 --boot 20

The generating parameters default to a moderate map; pass --params r,r_new,lam,alpha,beta_phi."""

import argparse
import time

import numpy as np

from markovfork.metrics.extrapolate import BetaBinomialFit
from markovfork.real.fit import fit_map, predict
from markovfork.real.model import MarkovParams, markov_components
from markovfork.plumbing.seeds import child_rng

PRIOR = BetaBinomialFit(a=0.80, b=0.53, w=0.028, log_likelihood=0.0, n_problems=500, zero_mass=True)  # MATH500 base prior


def simulate(params, problems, m, rng):
    p = np.where(rng.random(problems) < PRIOR.w, 0.0, rng.beta(PRIOR.a, PRIOR.b, problems))
    comps = markov_components(p, params)
    pick = rng.choice(len(comps), size=problems, p=np.array([w for w, _ in comps]))
    q = np.stack([qq for _, qq in comps], axis=1)[np.arange(problems), pick]
    n = np.full(problems, m)
    return n, rng.binomial(m, p), n, rng.binomial(m, q), q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicates", type=int, default=5)
    ap.add_argument("--boot", type=int, default=20)
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--params", default="0.3,0.05,2.0,0.8,1.0")
    args = ap.parse_args()
    params = MarkovParams(*[float(v) for v in args.params.split(",")])
    k = np.arange(1, 129)
    inside = {0.90: [], 0.95: []}
    not_conv = 0
    for rep in range(args.replicates):
        t0 = time.time()
        rng = child_rng(rep, "real-calibration")
        n_b, c_b, n_t, c_t, q = simulate(params, args.problems, args.m, rng)
        truth = np.mean(-np.expm1(k[None, :] * np.log1p(-np.minimum(q, 1 - 1e-16))[:, None]), axis=0)
        fit = fit_map("markov", n_b, c_b, n_t, c_t)
        curves = []
        for _ in range(args.boot):
            w = rng.multinomial(args.problems, np.full(args.problems, 1.0 / args.problems)).astype(float)
            bfit = fit_map("markov", n_b, c_b, n_t, c_t, weights=w, starts=[fit.x])
            not_conv += not bfit.converged
            curves.append(w @ predict(bfit, n_t, c_t, k)["tuned"] / w.sum())
        curves = np.array(curves)
        for level in inside:
            lo = np.percentile(curves, 50 * (1 - level), axis=0)
            hi = np.percentile(curves, 50 * (1 + level), axis=0)
            inside[level].append(np.mean((truth >= lo) & (truth <= hi)))
        point = predict(fit, n_t, c_t, k)["tuned"].mean(axis=0)
        print(f"replicate {rep}: coverage 90% {inside[0.90][-1]:.2f}, 95% {inside[0.95][-1]:.2f}, "
              f"RMSE of the point curve {np.sqrt(np.mean((point - truth) ** 2)):.4f}, {time.time() - t0:.0f} s", flush=True)
    print(f"{args.replicates} replicates x {args.boot} resamples: mean coverage 90% band {np.mean(inside[0.90]):.2f}, "
          f"95% band {np.mean(inside[0.95]):.2f}; non-converged refits {not_conv} of {args.replicates * args.boot}")


if __name__ == "__main__":
    main()
