"""Coverage of the base policy: exact and sampled pass@k over a set of problems.

Exact: ``pass@k = mean_x 1 - (1 - p_x)^k`` with ``p_x`` from the dynamic programme of
:mod:`markovfork.engines.exact`. Sampled: ``n`` rollouts per problem from :mod:`markovfork.engines.sampled`,
scored with the unbiased estimator ``1 - C(n - c, k) / C(n, k)`` and averaged over problems
with a bootstrap interval (:func:`markovfork.metrics.estimators.mean_pass_at_k`). The two agree in
expectation; the interval says how closely at this ``n`` and number of problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from markovfork.plumbing import checks
from markovfork.metrics.estimators import PassAtKSummary, mean_pass_at_k
from markovfork.engines.exact import PathTypeMass, exact_pass_at_k, path_type_mass, success_probability
from markovfork.model.policy import Decoding, Policy, problem_logits, transition_probs
from markovfork.model.problems import Problems
from markovfork.model.tree import Tree

__all__ = ["CoverageReport", "base_coverage", "plot_coverage", "MAX_ROLLOUTS"]

# sampled rollouts of one coverage estimate: about 1e8 a second on one core (the rollout kernels),
# so 1e10 is minutes; more is a typo (--samples 1e11), not a run
MAX_ROLLOUTS = 10**10


@dataclass(frozen=True, eq=False)
class CoverageReport:
    """Exact and (optionally) sampled pass@k of one policy on one set of problems."""

    k: np.ndarray  # (K,) int64: the k values
    exact: np.ndarray  # (K,) exact pass@k, mean over problems
    success: np.ndarray  # (P,) exact per-problem success probability p_x
    path_mass: PathTypeMass  # exact per-problem easy-valid / hard-valid / invalid shares
    n_samples: int  # rollouts per problem (0: no sampling)
    sampled: PassAtKSummary | None  # sampled pass@k with stderr and bootstrap CI (None if n_samples = 0)
    sampled_shares: np.ndarray | None  # (3,) sampled easy-valid / hard-valid / invalid share of all rollouts
    seed: int  # seed of the rollouts and of the bootstrap

    @property
    def n_problems(self) -> int:
        return int(self.success.shape[0])

    @property
    def exact_shares(self) -> np.ndarray:
        """(3,) exact easy-valid / hard-valid / invalid share, mean over problems."""
        m = self.path_mass
        return np.array([m.easy_valid.mean(), m.hard_valid.mean(), m.invalid.mean()])

    def table(self) -> pl.DataFrame:
        """One row per k: exact pass@k, sampled mean, standard error and interval (null if unsampled)."""
        s = self.sampled
        empty = [None] * len(self.k)
        return pl.DataFrame(
            {
                "k": self.k.astype(np.int64),
                "pass_at_k_exact": self.exact,
                "pass_at_k_sampled": s.mean if s else empty,
                "stderr": s.stderr if s else empty,
                "ci_low": s.ci_low if s else empty,
                "ci_high": s.ci_high if s else empty,
                "n_samples": [self.n_samples] * len(self.k),
                "n_problems": [self.n_problems] * len(self.k),
                "seed": [self.seed] * len(self.k),
            },
            schema={
                "k": pl.Int64, "pass_at_k_exact": pl.Float64, "pass_at_k_sampled": pl.Float64,
                "stderr": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
                "n_samples": pl.Int64, "n_problems": pl.Int64, "seed": pl.Int64,
            },
        )

    def to_json(self) -> dict:
        """Plain-JSON form (lists and numbers) for ``--json`` output."""
        names = ("easy_valid", "hard_valid", "invalid")
        out = {
            "n_problems": self.n_problems,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "k": self.k.tolist(),
            "exact": self.exact.tolist(),
            "exact_shares": dict(zip(names, self.exact_shares.tolist())),
        }
        if self.sampled is not None:
            s = self.sampled
            out["sampled"] = {
                "mean": s.mean.tolist(), "stderr": s.stderr.tolist(),
                "ci_low": s.ci_low.tolist(), "ci_high": s.ci_high.tolist(), "level": s.level,
            }
            out["sampled_shares"] = dict(zip(names, self.sampled_shares.tolist()))
        return out


def base_coverage(
    tree: Tree,
    problems: Problems,
    k,
    n_samples: int = 0,
    seed: int = 0,
    decoding: Decoding = Decoding(),
    skill: float = 0.0,
    n_boot: int = 1000,
    level: float = 0.95,
    n_threads: int | None = None,
) -> CoverageReport:
    """pass@k of the base policy (logits ``log edge_prob``, ``skill`` at decipherable nodes, W = 0).

    Exact pass@k for every k; with ``n_samples > 0`` also the sampled estimate from
    ``n_samples`` rollouts per problem (needs ``max(k) <= n_samples``, and at most
    :data:`MAX_ROLLOUTS` rollouts in all).
    """
    k_arr = checks.k_values(k, increasing=True)
    n_samples = checks.integer("n_samples", n_samples, 0, checks.INT64_MAX)  # the kernels count in int64
    seed = checks.seed(seed)
    if n_samples and k_arr[-1] > n_samples:
        raise ValueError(f"k must be <= n_samples={n_samples} for the sampled estimate, got k={int(k_arr[-1])}")
    problems.check_tree(tree)
    if n_samples * len(problems) > MAX_ROLLOUTS:
        raise ValueError(f"n_samples x problems = {n_samples} x {len(problems)} = {n_samples * len(problems):.3g} rollouts "
                         f"is more than {MAX_ROLLOUTS:.0e} (beyond that, hours of sampling): lower n_samples or the problems")
    policy = Policy.base(tree, feature_dim=problems.feature_dim, skill=skill)
    probs = transition_probs(tree, problem_logits(tree, policy, problems), decoding)
    success = success_probability(tree, probs, problems.correct, problems.start)
    exact = exact_pass_at_k(success, k_arr)
    mass = path_type_mass(tree, probs, problems)
    sampled = shares = None
    if n_samples:
        from markovfork.engines.sampled import sample_rollouts
        counts = sample_rollouts(tree, probs, problems, n_samples, seed, n_threads)
        sampled = mean_pass_at_k(n_samples, counts.correct, k_arr, n_boot=n_boot, level=level, seed=seed)
        total = float(n_samples * len(problems))
        shares = np.array([counts.easy_valid.sum(), counts.hard_valid.sum(), counts.invalid.sum()]) / total
    return CoverageReport(k_arr, exact, success, mass, n_samples, sampled, shares, int(seed))


def plot_coverage(report: CoverageReport, title: str = "base policy coverage"):
    """A matplotlib Figure of pass@k against k (log2 axis): exact line, sampled points with CI bars."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    ax.plot(report.k, report.exact, "-o", color="C0", ms=3, label="exact")
    s = report.sampled
    if s is not None:
        yerr = np.vstack([s.mean - s.ci_low, s.ci_high - s.mean]).clip(min=0)
        ax.errorbar(
            report.k, s.mean, yerr=yerr, fmt="s", color="C1", ms=4, capsize=3,
            label=f"sampled, n={report.n_samples} ({int(round(100 * s.level))}% CI)",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{title} ({report.n_problems} problems)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig
