"""pass@k: the unbiased estimator, crossovers, and the beta-binomial extrapolation beyond n."""
