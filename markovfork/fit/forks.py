"""Fork observations: how far the arm choice at the forward fork has collapsed on the test problems.

For a test problem x, q_x is the model's probability of the correct arm at the forward mode's fork,
renormalised over the arms and read with the prompt forced (the bridge: its next-token
probabilities after the forward prompt, the ``q_target`` column of a counts table; the simulator:
the softmax of its logits over the fork's children, ``PathStar.target_arm_probability``). The
observation of an SFT arm at an epoch is the mean over the test problems (all seeds pooled)

    y = (1 / P) sum_x q_x (1 - q_x),   se = sd_x(q_x (1 - q_x)) / sqrt(P),

1/4 for an undecided two-arm fork and 0 when every problem's arm is certain, right or wrong. The
test problems' correct arms cannot be learnt (they are drawn at random), so y falls only as
memorised training forks leak onto the test problems (interference): the mechanism behind the
coverage loss. In an arm that mixes modes the reverse mode's samples cover the answer and pass@k
barely shows the collapse (the bridge sweep: only rho = 1 loses pass@32); y shows it at every
rho > 0 (docs/fit.md, "Fork observations").

Only arms that train the forward mode (rho > 0) are observed: at rho = 0 no SFT example takes the
forward fork, the simulator's fork does not move (y stays 1/4), and the bridge's still sharpens
(y 0.064 at epoch 12 of the sweep): a difference in kind that the fit should not absorb. Epoch 0
is left out for the same reason (the bridge's base is not undecided at the fork: y 0.20).

The fit (``solve.fit_parameters(forks=)``) adds (pred - y) / se to its residuals, each weighted
by its sampling noise like a pass@k value. The simulator misses these values by more than that
noise (reduced chi2 ~ 40 on the sweep), so the block weighs more than its share of the data;
weighting it down by its Birge ratio sqrt(chi2_f / n_f) was tried and predicted the held-out edge
rho worse (docs/fit.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ForkObservations", "measured_forks", "fork_statistic", "SE_FLOOR"]

SE_FLOOR = 1e-3  # smallest standard error of an observation (all problems certain: sd 0)


def fork_statistic(q) -> np.ndarray:
    """Mean over the last axis (test problems; nan: none) of q (1 - q)."""
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.nanmean(q * (1.0 - q), axis=-1)


@dataclass(frozen=True, eq=False)
class ForkObservations:
    """``value[i]`` (module docstring) measured at ``(arm[i], epoch[i])``, indices into the predictor's
    arms and epochs, with standard error ``se[i]`` from ``n_problems[i]`` test problems."""

    arm: np.ndarray
    epoch: np.ndarray
    value: np.ndarray
    se: np.ndarray
    n_problems: np.ndarray

    def __len__(self) -> int:
        return int(self.value.size)

    def residuals(self, statistic: np.ndarray) -> np.ndarray:
        """(predicted - measured) / se; ``statistic`` is the predicted (arms, epochs) :func:`fork_statistic`."""
        return (statistic[self.arm, self.epoch] - self.value) / self.se


def measured_forks(counts, arms, epochs) -> ForkObservations | None:
    """The fork observations of a per-problem counts table (columns rho, diversity, epoch,
    q_target; every seed pooled) on the predictor's ``arms`` ((rho, diversity) pairs) and
    ``epochs``: one per arm with rho > 0 and epoch >= 1 that the table has (module docstring).
    Rows off that grid are left out, so the caller filters the rows it may fit on. None when no
    row qualifies (or the table has no q_target column)."""
    import polars as pl

    if counts is None or "q_target" not in counts.columns:
        return None
    rows = counts.filter((pl.col("epoch") >= 1) & (pl.col("rho") > 0) & pl.col("q_target").is_not_null())
    if rows.height == 0:
        return None
    if not rows["q_target"].is_between(0.0, 1.0).all():
        bad = rows.filter(~pl.col("q_target").is_between(0.0, 1.0))["q_target"][0]
        raise ValueError(f"q_target must be a probability in [0, 1], got {bad!r}")
    arm_of = {(float(r), str(d)): a for a, (r, d) in enumerate(arms)}
    epoch_of = {int(e): i for i, e in enumerate(epochs)}
    stats = (rows.with_columns(g=pl.col("q_target") * (1.0 - pl.col("q_target")))
             .group_by("rho", "diversity", "epoch")
             .agg(pl.col("g").mean().alias("y"), pl.col("g").std().alias("sd"), pl.len().alias("n"))
             .sort("rho", "diversity", "epoch"))
    keep = [(arm_of[(float(r), str(d))], epoch_of[int(e)], y, sd, n)
            for r, d, e, y, sd, n in stats.iter_rows()
            if (float(r), str(d)) in arm_of and int(e) in epoch_of]
    if not keep:
        return None
    arm, epoch, y, sd, n = (np.array(c) for c in zip(*keep))
    sd = np.nan_to_num(np.asarray(sd, dtype=np.float64), nan=0.0)
    n = np.asarray(n, dtype=np.int64)
    return ForkObservations(arm=arm.astype(np.int64), epoch=epoch.astype(np.int64), value=np.asarray(y, dtype=np.float64),
                            se=np.maximum(sd / np.sqrt(n), SE_FLOOR), n_problems=n)
