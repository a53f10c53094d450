"""Held-out prediction: fit the simulator on some settings of a measured run, predict the others,
and score it against baselines (``docs/fit.md``, "Held-out results").

A split names the training rows and the held-out rows of a results table: leave one rho out
(train on every other rho, epoch 0 included; hold out that rho's SFT epochs), or fit early epochs
and predict later ones (train on epochs <= E, hold out epochs > E). With per-problem counts the
fit also takes the fork observations of the training rows (:func:`train_forks`). The score of a prediction
P against the measured curves Y (the mean over seeds) on the held-out (arm, epoch >= 1, k) cells:

    RMSE = sqrt(mean (P - Y)^2),   max error = max |P - Y|.

Baselines, scored on the same cells:

* ``interpolation`` (leave-rho-out): per epoch and k, the measured curves linearly interpolated in
  rho between the nearest training rhos on either side, of the same diversity (at rho 0 and 1 the
  data- and problem-level mixes are the same, so those arms count for both); at an edge, the
  nearest training rho. ``persistence`` (early/late): the last training epoch's curve carried on.
* ``no_fork``: the same simulator with its fork mechanism switched off, fitted the same way on the
  same pass@k rows: the memorisation rate held at its lower bound (the per-problem fork logits do
  not grow; the fork choice stays what the shared logits make it), lr and base skill fitted; no
  fork observations (its fork cannot move to meet them).
* ``beta_binomial`` (large k, needs per-problem counts): per held-out (seed, arm, epoch), each
  problem's count of correct samples subsampled without replacement to n = 8 (hypergeometric,
  seeded), a beta-binomial with a zero mass fitted (:func:`markovfork.metrics.extrapolate.fit_beta_binomial`)
  and extrapolated to the ks above 8; scored at those ks only, next to the others there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markovfork.fit.counts import histogram_distance, measured_histogram, predicted_histogram
from markovfork.fit.forks import measured_forks
from markovfork.fit.measured import measured_curves
from markovfork.fit.parameters import PARAMETERS
from markovfork.fit.predict import CurvePredictor, pass_at_k_table
from markovfork.fit.solve import default_free, fit_parameters

__all__ = ["Split", "leave_rho_out", "early_late", "mean_curves", "interpolate_in_rho", "errors", "train_forks",
           "beta_binomial_curves", "evaluate_split", "histogram_distances", "table_n_test", "bridge_predictor",
           "NO_FORK_FIXED", "SMALL_N"]

NO_FORK_FIXED = {"memorisation": PARAMETERS["memorisation"].low}  # the fork mechanism off
NO_FORK_IDLE = ("capacity", "mode_memorisation")  # with memorisation off they move nothing: not fitted
SMALL_N = 8  # samples per problem the beta-binomial baseline may see


@dataclass(frozen=True)
class Split:
    """Training and held-out rows: training rows have (rho in ``train_rhos`` or epoch 0) and
    epoch <= ``train_until``; held-out rows have rho in ``held_rhos`` and epoch >= ``held_from``."""

    name: str
    train_rhos: tuple[float, ...]
    held_rhos: tuple[float, ...]
    train_until: int
    held_from: int

    def train_mask(self, rho, epoch) -> np.ndarray:
        rho, epoch = np.asarray(rho, dtype=float), np.asarray(epoch)
        return (np.isin(rho, self.train_rhos) | (epoch == 0)) & (epoch <= self.train_until)

    def held_mask(self, rho, epoch) -> np.ndarray:
        rho, epoch = np.asarray(rho, dtype=float), np.asarray(epoch)
        return np.isin(rho, self.held_rhos) & (epoch >= max(self.held_from, 1))


def leave_rho_out(rhos, held: float, last_epoch: int) -> Split:
    rest = tuple(float(r) for r in rhos if float(r) != float(held))
    if not rest:
        raise ValueError(f"leaving out rho {held} leaves no rho to fit on")
    return Split(f"rho {held:g} held out", rest, (float(held),), last_epoch, 1)


def early_late(rhos, until: int, last_epoch: int) -> Split:
    if not 0 <= until < last_epoch:
        raise ValueError(f"the last training epoch must be in [0, {last_epoch - 1}], got {until}")
    r = tuple(float(x) for x in rhos)
    return Split(f"epochs <= {until} fitted, {until + 1}-{last_epoch} predicted", r, r, until, until + 1)


def mean_curves(table, predictor) -> np.ndarray:
    """(arms, epochs, ks) mean over seeds of the measured pass@k on the predictor's grid (nan:
    not measured); epoch 0 (the base) is filled into every arm."""
    m = measured_curves(table, predictor.arms, predictor.epochs, predictor.ks, n_test=table_n_test(table))
    total = np.zeros((len(predictor.arms), predictor.epochs.size, predictor.ks.size))
    count = np.zeros_like(total)
    np.add.at(total, (m.arm, m.epoch, m.k), m.value)
    np.add.at(count, (m.arm, m.epoch, m.k), 1.0)
    out = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    out[:, 0] = out[0, 0]
    return out


def table_n_test(table):
    """The ``n_test=`` :func:`measured_curves` needs for ``table``: None when it has the column."""
    return None if "n_test" in table.columns else 1


def interpolate_in_rho(curves: np.ndarray, arms, train_rhos, target: int) -> np.ndarray:
    """(epochs, ks) baseline for arm ``target`` (module docstring): linear in rho between the
    nearest training arms below and above of the same diversity (rho 0 and 1 count for both),
    the nearest one at an edge."""
    rho, div = arms[target]
    pts = {}
    for i, (r, d) in enumerate(arms):
        if r in train_rhos and (d == div or r in (0.0, 1.0)) and not np.all(np.isnan(curves[i, 1:])):
            pts.setdefault(r, i)
    if not pts:
        raise ValueError(f"no training arm to interpolate rho {rho} ({div}) from")
    below = [r for r in pts if r <= rho]
    above = [r for r in pts if r >= rho]
    if below and above:
        lo, hi = max(below), min(above)
        if lo == hi:
            return curves[pts[lo]].copy()
        t = (rho - lo) / (hi - lo)
        return (1.0 - t) * curves[pts[lo]] + t * curves[pts[hi]]
    nearest = min(pts, key=lambda r: abs(r - rho))
    return curves[pts[nearest]].copy()


def errors(predicted: np.ndarray, measured: np.ndarray, mask: np.ndarray) -> dict:
    """RMSE and max |error| of ``predicted`` against ``measured`` on the cells ``mask``."""
    d = (predicted - measured)[mask]
    if d.size == 0 or np.any(np.isnan(d)):
        raise ValueError(f"no complete held-out cells to score ({d.size} cells, {int(np.isnan(d).sum())} missing)")
    return {"rmse": float(np.sqrt(np.mean(d**2))), "max": float(np.max(np.abs(d))), "cells": int(d.size)}


def train_forks(counts, split: Split, predictor):
    """The fork observations (:mod:`markovfork.fit.forks`) of the counts rows that ``split`` trains on
    (None without counts): a held-out rho's or epoch's forks never reach the fit."""
    if counts is None:
        return None
    import polars as pl

    rows = counts.filter(pl.Series(split.train_mask(counts["rho"].to_numpy(), counts["epoch"].to_numpy())))
    return measured_forks(rows, predictor.arms, predictor.epochs)


def _held_counts(counts, predictor, held: np.ndarray):
    """(arm, epoch index, the per-problem count rows of that setting) for each (arm, epoch) pair
    that ``held`` marks, arm by arm."""
    import polars as pl

    for a, (rho, div) in enumerate(predictor.arms):
        for e_idx in np.flatnonzero(held[a]):
            yield a, e_idx, counts.filter((pl.col("rho") == rho) & (pl.col("diversity") == div)
                                          & (pl.col("epoch") == int(predictor.epochs[e_idx])))


def beta_binomial_curves(counts, predictor, held: np.ndarray, *, small_n: int = SMALL_N, seed: int = 0) -> np.ndarray:
    """(arms, epochs, ks) beta-binomial extrapolation from counts subsampled to ``small_n`` (module
    docstring), mean over seeds, on the held-out (arm, epoch) pairs of ``held`` (others nan)."""
    from markovfork.metrics.extrapolate import fit_beta_binomial

    rng = np.random.default_rng(seed)
    out = np.full((len(predictor.arms), predictor.epochs.size, predictor.ks.size), np.nan)
    for a, e_idx, rows in _held_counts(counts, predictor, held):
        preds = []
        for (_,), part in rows.group_by(["seed"], maintain_order=True):
            n = part["n_samples"].to_numpy()
            if np.any(n < small_n):
                raise ValueError(f"counts need n_samples >= {small_n} per problem, got {int(n.min())}")
            c = rng.hypergeometric(part["correct"].to_numpy(), n - part["correct"].to_numpy(), small_n)
            if c.sum() == 0:
                preds.append(np.zeros(predictor.ks.size))
                continue
            preds.append(fit_beta_binomial(np.full(c.size, small_n), c).pass_at_k(predictor.ks))
        if preds:
            out[a, e_idx] = np.mean(preds, axis=0)
    return out


def histogram_distances(counts, predictor, success: np.ndarray, held: np.ndarray) -> dict:
    """Mean TV and W1 between measured (seeds pooled) and predicted per-problem count histograms
    over the held-out (arm, epoch) pairs."""
    tv, w1 = [], []
    for a, e_idx, rows in _held_counts(counts, predictor, held):
        if rows.height == 0:
            continue
        n = int(rows["n_samples"].max())
        d = histogram_distance(measured_histogram(rows["correct"].to_numpy(), n), predicted_histogram(success[a, e_idx], n))
        tv.append(d["tv"])
        w1.append(d["w1"])
    return {"tv": float(np.mean(tv)), "w1": float(np.mean(w1)), "settings": len(tv)} if tv else {}


def evaluate_split(predictor, table, split: Split, *, counts=None, no_fork: bool = True, seed: int = 0,
                   free=None, progress=None, fork_observations: bool = True) -> dict:
    """Fit ``predictor`` on the training rows of ``table`` (a polars results table) and score its
    held-out prediction against the baselines (module docstring). Returns a JSON-ready dict with
    the fit, each method's RMSE and max error, and (with ``counts``) the large-k comparison and
    the count-histogram distance of the fitted simulator on the held-out settings. With
    ``fork_observations`` the fit takes the fork observations of the counts' training rows."""
    import polars as pl

    train = table.filter(pl.Series(split.train_mask(table["rho"].to_numpy(), table["epoch"].to_numpy())))
    if train.filter(pl.col("epoch") > 0).select("rho", "diversity").unique().height < 1:
        raise ValueError(f"{split.name}: no SFT rows to fit on")
    meas = mean_curves(table, predictor)
    rhos = np.array([r for r, _ in predictor.arms])
    arm_held = np.isin(rhos, split.held_rhos)
    held = arm_held[:, None] & (predictor.epochs[None, :] >= max(split.held_from, 1)) & ~np.isnan(meas[:, :, 0])
    if not held.any():
        raise ValueError(f"{split.name}: no measured rows to predict")
    cells = np.broadcast_to(held[:, :, None], meas.shape)

    measured = measured_curves(train, predictor.arms, predictor.epochs, predictor.ks, n_test=table_n_test(train))
    free = default_free(predictor, measured) if free is None else free
    forks = train_forks(counts, split, predictor) if fork_observations else None
    fit = fit_parameters(predictor, measured, free, more_starts=more_starts(free), forks=forks)
    if progress:
        progress()
    success, multiple = predictor.converged_success(fit.values, fit.integration_error)
    sim = pass_at_k_table(success, predictor.ks)
    methods = {"simulator": errors(sim, meas, cells)}

    if split.held_from <= 1:  # leave-rho-out: interpolation in rho
        base = np.full_like(meas, np.nan)
        for a in np.flatnonzero(arm_held):
            base[a] = interpolate_in_rho(meas, predictor.arms, split.train_rhos, a)
        methods["interpolation"] = errors(base, meas, cells)
    else:  # early/late: the last training epoch carried on
        last = int(np.searchsorted(predictor.epochs, split.train_until, side="right")) - 1
        base = np.repeat(meas[:, last : last + 1], predictor.epochs.size, axis=1)
        methods["persistence"] = errors(base, meas, cells)

    no_fork_fit = None
    if no_fork:
        free_nf = tuple(n for n in free if n not in NO_FORK_FIXED and n not in NO_FORK_IDLE)
        saved = predictor.fixed
        predictor.fixed = saved | NO_FORK_FIXED
        try:
            no_fork_fit = fit_parameters(predictor, measured, free_nf)
            methods["no_fork"] = errors(predictor.converged_predict(no_fork_fit.values, no_fork_fit.integration_error),
                                        meas, cells)
        finally:
            predictor.fixed = saved
        if progress:
            progress()

    out = {"split": split.name, "train_rhos": list(split.train_rhos), "held_rhos": list(split.held_rhos),
           "train_until_epoch": split.train_until, "held_from_epoch": split.held_from,
           "fit": {"values": fit.values, "sigma": fit.sigma, "reduced_chi2": fit.reduced_chi2,
                   "at_bound": list(fit.at_bound), "evaluations": fit.evaluations,
                   "integration_error": fit.integration_error, "prediction_substep_multiple": multiple,
                   "seconds_per_evaluation": fit.seconds_per_evaluation, "seconds": fit.seconds},
           "errors": methods, "fit_result": fit, "predicted": sim, "baseline": base, "measured": meas, "held": held}
    if no_fork_fit is not None:
        out["no_fork_fit"] = {"values": no_fork_fit.values, "reduced_chi2": no_fork_fit.reduced_chi2}
    large = predictor.ks > SMALL_N
    if counts is not None and large.any():
        bb = beta_binomial_curves(counts, predictor, held, seed=seed)
        big = cells & large[None, None, :]
        out["large_k"] = {"ks": predictor.ks[large].tolist(),
                          **{name: errors(p, meas, big) for name, p in
                             (("simulator", sim), ("baseline", base), ("beta_binomial", bb))}}
        out["counts"] = histogram_distances(counts, predictor, success, held)
    return out


FIRST_EPOCH_RATIO = 1.3  # geometric first-epoch integration steps of the fit's predictor (docs/fit.md)
# where a bridge fit with the schedule starts (the declared defaults, lr 5 and memorisation 1, lie far
# from where fits of bridge runs end, lr ~ 50 - 160, memorisation ~ 45 - 130, capacity ~ 0.1 - 0.6,
# mode_memorisation ~ 0.003 - 0.015 (docs/fit.md): a start in that region saves least-squares
# iterations; the further starts still look at the other capacities). Used for the fit to every
# row (markovfork fit without held-out rows); held-out splits start from the defaults)
BRIDGE_START = {"lr": 100.0, "memorisation": 50.0, "capacity": 0.1, "mode_memorisation": 0.01}

# where the rows to fit cannot tell the mode's memorisation (solve.default_free: no data-level arm mixes
# the modes, e.g. rho 0 and 1 only), a bridge fit holds it here, not at the simulator's own 1 (the mode
# memorised per problem like the arm): the path-star bridge's mode is a shared choice, and every fit of
# it that could tell ended at 0.001 - 0.019 (seeds 0-1 and seed 2, docs/fit.md, "A skill per mode, and a
# shared mode where the rows cannot tell it"). The fit file records the held value, so a saved fit predicts as it did.
BRIDGE_MODE_MEMORISATION = 0.01


# further first-pass starts (capacity low and high): from the default start alone the fit can end in
# a local minimum of the memorisation-capacity valley (tests/fit/test_recovery.py, calibration)
MORE_STARTS = ({"capacity": 0.4}, {"capacity": 4.0})


def more_starts(free) -> list[dict]:
    return [dict(s) for s in MORE_STARTS if set(s) <= set(free)]


def bridge_start(predictor) -> dict | None:
    """:data:`BRIDGE_START` for a predictor with the bridge's schedule, else None (the defaults)."""
    return dict(BRIDGE_START) if predictor.lr_factors is not None else None


def base_counts(counts):
    """(correct, n_samples) of the base model (epoch 0) in a per-problem counts table, one row per
    (seed, problem) (the base rows repeat in every arm); None when it has none."""
    import polars as pl

    base = counts.filter(pl.col("epoch") == 0).unique(subset=["seed", "problem"], keep="first").sort("seed", "problem")
    if base.height == 0:
        return None
    return base["correct"].to_numpy(), base["n_samples"].to_numpy()


def bridge_predictor(experiment, counts=None, *, seed: int = 0, **settings) -> CurvePredictor:
    """The predictor ``markovfork fit`` uses: the bridge's learning-rate schedule when the run
    states it, geometric first-epoch steps, and (with per-problem ``counts`` holding epoch-0 rows)
    each problem's base skill from the base's count distribution (``markovfork.fit.heterogeneity``),
    a decipherable-step skill per mode (forward and reverse walks are different look-ups: each is
    learnt from its own SFT steps), and the mode's memorisation, where not fitted, held at
    :data:`BRIDGE_MODE_MEMORISATION`."""
    from markovfork.fit.heterogeneity import base_spread_from_counts, bridge_lr_factors

    base = None if counts is None else base_counts(counts)
    spread = None if base is None else base_spread_from_counts(*base)
    schedule = bridge_lr_factors(experiment.run_config) is not None
    from markovfork.plumbing.executors import available_cores

    settings.setdefault("threads", available_cores())
    fixed = {"mode_memorisation": BRIDGE_MODE_MEMORISATION} | dict(settings.pop("fixed", None) or {})
    settings.setdefault("skill_per_mode", True)
    return CurvePredictor(experiment, seed=seed, base_spread=spread, lr_schedule=schedule, fixed=fixed,
                          first_epoch_ratio=FIRST_EPOCH_RATIO, feature_spectrum="exponential", **settings)
