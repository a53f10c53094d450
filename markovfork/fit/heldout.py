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
from markovfork.fit.schema import check_table
from markovfork.fit.solve import default_free, fit_document, fit_parameters, fit_warnings
from markovfork.plumbing import checks

__all__ = ["Split", "leave_rho_out", "early_late", "mean_curves", "interpolate_in_rho", "errors", "train_forks",
           "beta_binomial_curves", "evaluate_split", "NO_FORK_FIXED", "SMALL_N"]

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
    m = measured_curves(table, predictor.arms, predictor.epochs, predictor.ks, n_test=_n_test(table))
    total = np.zeros((len(predictor.arms), predictor.epochs.size, predictor.ks.size))
    count = np.zeros_like(total)
    np.add.at(total, (m.arm, m.epoch, m.k), m.value)
    np.add.at(count, (m.arm, m.epoch, m.k), 1.0)
    out = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    out[:, 0] = out[0, 0]
    return out


def _n_test(table):
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


def _count_distance(counts, predictor, success: np.ndarray, held: np.ndarray) -> dict:
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

    measured = measured_curves(train, predictor.arms, predictor.epochs, predictor.ks, n_test=_n_test(train))
    free = default_free(predictor, measured) if free is None else free
    forks = train_forks(counts, split, predictor) if fork_observations else None
    fit = fit_parameters(predictor, measured, free, more_starts=more_starts(free), forks=forks)
    if progress:
        progress()
    success = predictor.success(fit.values)
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
            methods["no_fork"] = errors(predictor.predict(no_fork_fit.values), meas, cells)
        finally:
            predictor.fixed = saved
        if progress:
            progress()

    out = {"split": split.name, "train_rhos": list(split.train_rhos), "held_rhos": list(split.held_rhos),
           "train_until_epoch": split.train_until, "held_from_epoch": split.held_from,
           "fit": {"values": fit.values, "sigma": fit.sigma, "reduced_chi2": fit.reduced_chi2,
                   "at_bound": list(fit.at_bound), "evaluations": fit.evaluations,
                   "integration_error": fit.integration_error,
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
        out["counts"] = _count_distance(counts, predictor, success, held)
    return out


FIRST_EPOCH_RATIO = 1.3  # geometric first-epoch integration steps of the fit's predictor (docs/fit.md)
# where a bridge fit with the schedule starts (the declared defaults, lr 5 and memorisation 1, lie far
# from where fits of bridge runs end, lr ~ 50 - 160, memorisation ~ 45 - 130, capacity ~ 0.1 - 0.6,
# mode_memorisation ~ 0.003 - 0.015 (docs/fit.md): a start in that region saves least-squares
# iterations; the further starts still look at the other capacities). Used for the fit to every
# row (markovfork fit without held-out rows); held-out splits start from the defaults)
BRIDGE_START = {"lr": 100.0, "memorisation": 50.0, "capacity": 0.1, "mode_memorisation": 0.01}


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
    each problem's base skill from the base's count distribution (``markovfork.fit.heterogeneity``)."""
    from markovfork.fit.heterogeneity import base_spread_from_counts, bridge_lr_factors

    base = None if counts is None else base_counts(counts)
    spread = None if base is None else base_spread_from_counts(*base)
    schedule = bridge_lr_factors(experiment.run_config) is not None
    from markovfork.plumbing.executors import available_cores

    settings.setdefault("threads", available_cores())
    return CurvePredictor(experiment, seed=seed, base_spread=spread, lr_schedule=schedule,
                          first_epoch_ratio=FIRST_EPOCH_RATIO, feature_spectrum="exponential", **settings)


def fit_and_predict(table, experiment, *, counts=None, train_rhos=None, predict_rhos=None, train_until=None,
                    no_fork: bool = True, seed: int = 0, progress=None, fork_observations: bool = True) -> dict:
    """What ``markovfork fit`` computes: the simulator fitted on the training rows of ``table``
    (the run it describes mapped onto the simulator as ``experiment``, an
    :class:`~markovfork.fit.experiment.Experiment`; a bridge table's:
    ``llm_bridge.fit_runs.experiment_from_table``), the prediction on every cell and (when rhos or epochs are held out) the
    held-out errors next to the baselines. Returns the long table of measured vs predicted
    (``rows``), the JSON summary, the fit document and a few text lines."""
    import polars as pl

    check_table(table)
    rhos = sorted(float(r) for r in table.filter(pl.col("epoch") > 0)["rho"].unique())
    for name, given in (("--predict-rho", predict_rhos), ("--train-rho", train_rhos)):
        given = [float(r) for r in given or ()]
        dup = checks.first_repeat(given)
        if dup is not None:
            raise ValueError(f"{name} lists {dup:g} twice, got {given}")
        for r in given:
            if r not in rhos:
                raise ValueError(f"{name} {r:g} is not a measured rho (the table has {rhos})")
    both = sorted(set(map(float, train_rhos or ())) & set(map(float, predict_rhos or ())))
    if both and train_until is None:
        raise ValueError(f"rho {both[0]:g} is both fitted (--train-rho) and held out (--predict-rho): a held-out "
                         f"error must come from rows the fit never saw")
    held_rhos = tuple(float(r) for r in (predict_rhos or (rhos if train_until is not None else ())))
    train_r = tuple(float(r) for r in (train_rhos or [r for r in rhos if r not in held_rhos or train_until is not None]))
    last = int(table["epoch"].max())
    until = last if train_until is None else int(train_until)
    if train_until is not None and not 0 <= until < last:
        raise ValueError(f"--train-until-epoch must be in [0, {last - 1}] (the last measured epoch is {last}), got {until}")
    split = Split("fit", train_r, held_rhos, until, until + 1 if train_until is not None else 1)
    train = table.filter(pl.Series(split.train_mask(table["rho"].to_numpy(), table["epoch"].to_numpy())))
    settings = train.filter(pl.col("epoch") > 0).select("rho", "diversity", "epoch").unique().height
    if settings < 2:
        raise ValueError(f"too few settings to fit: {settings} SFT (rho, diversity, epoch) setting(s) in the training rows, need >= 2")
    predictor = bridge_predictor(experiment, counts, seed=seed)
    if held_rhos:
        res = evaluate_split(predictor, table, split, counts=counts, no_fork=no_fork, seed=seed, progress=progress,
                             fork_observations=fork_observations)
        fit, sim, meas, held = res.pop("fit_result"), res["predicted"], res["measured"], res["held"]
    else:
        measured = measured_curves(train, predictor.arms, predictor.epochs, predictor.ks, n_test=_n_test(train))
        free = default_free(predictor, measured)
        fit = fit_parameters(predictor, measured, free, start=bridge_start(predictor), more_starts=more_starts(free),
                             forks=train_forks(counts, split, predictor) if fork_observations else None)
        if progress:
            progress()
        meas = mean_curves(table, predictor)
        success = predictor.success(fit.values)
        sim = pass_at_k_table(success, predictor.ks)
        held = np.zeros(meas.shape[:2], dtype=bool)
        res = None
        if counts is not None:  # the fitted simulator's count histograms on every measured SFT setting
            fitted = ~np.isnan(meas[:, :, 0]) & (predictor.epochs[None, :] > 0)
            count_distance = _count_distance(counts, predictor, success, fitted)
    trained = np.zeros_like(held)
    for a, (rho, _) in enumerate(predictor.arms):
        trained[a] = split.train_mask(np.full(predictor.epochs.size, rho), predictor.epochs)
    records = []
    for a, (rho, div) in enumerate(predictor.arms):
        for e, ep in enumerate(predictor.epochs):
            role = "held_out" if held[a, e] else ("train" if trained[a, e] else "unused")
            for ki, k in enumerate(predictor.ks):
                records.append((rho, div, int(ep), int(k), float(meas[a, e, ki]), float(sim[a, e, ki]), role))
    rows = pl.DataFrame(records, schema=[("rho", pl.Float64), ("diversity", pl.String), ("epoch", pl.Int64),
                                         ("k", pl.Int64), ("measured", pl.Float64), ("predicted", pl.Float64),
                                         ("role", pl.String)], orient="row")
    doc = fit_document(fit)
    train_cells = np.broadcast_to((trained & ~np.isnan(meas[:, :, 0]))[:, :, None], meas.shape)
    summary = {"parameters": {n: {"value": v, "sigma": doc["parameters"][n]["sigma"]} for n, v in fit.values.items()},
               "fixed": fit.fixed, "at_bound": list(fit.at_bound), "reduced_chi2": doc["reduced_chi2"],
               "n_observations": fit.n_observations, "evaluations": fit.evaluations,
               "seconds_per_evaluation": fit.seconds_per_evaluation, "fit_seconds": fit.seconds,
               "train_fit": errors(sim, meas, train_cells), "data_fingerprint": fit.data_fingerprint,
               "fitted": fit.fitted, "integration_error": doc["integration_error"], "forks": fit.forks,
               "warnings": fit_warnings(fit)}
    text = [f"fitted on {fit.n_observations} measured values: reduced chi2 {doc['reduced_chi2']:.2f}, "
            f"{fit.evaluations} simulator evaluations at {fit.seconds_per_evaluation:.2f} s",
            *(f"  {n} = {v:.4g} +- {doc['parameters'][n]['sigma'] or float('nan'):.2g}"
              + (" (at bound)" if n in fit.at_bound else "") for n, v in fit.values.items())]
    if fit.forks:
        n_f, chi2_f = fit.forks["observations"], fit.forks["chi2"]
        text.insert(1, f"  of them {n_f} fork observations: chi2 per value {chi2_f / n_f:.2f} forks, "
                       f"{(fit.chi2 - chi2_f) / (fit.n_observations - n_f):.2f} pass@k")
    seeds = sorted(int(x) for x in table["seed"].unique())
    if len(seeds) >= 2 and "n_test" in table.columns:  # the noise part of a predictive interval (fit.intervals)
        from markovfork.fit.intervals import seed_ratio

        per_seed = np.stack([mean_curves(table.filter(pl.col("seed") == s), predictor) for s in seeds])
        fitted_cells = (trained & (predictor.epochs[None, :] > 0))[:, :, None] & ~np.isnan(meas)
        summary["noise_ratio"] = {"ks": predictor.ks.tolist(),
                                  "r": seed_ratio(per_seed, int(table["n_test"].max()), fitted_cells).tolist()}
    if predictor.base_spread is not None:
        summary["base_spread"] = predictor.base_spread
    if res is None and counts is not None and count_distance:
        summary["counts"] = count_distance
        text.append(f"count histograms (fitted settings): mean TV {count_distance['tv']:.3f}, W1 {count_distance['w1']:.3f}")
    if res is not None:
        summary["held_out"] = {k: v for k, v in res.items() if k not in ("predicted", "baseline", "measured", "held")}
        text.append(f"held out ({res['split']}: rhos {list(held_rhos)}, epochs >= {split.held_from}): pass@k error")
        for name, e in res["errors"].items():
            text.append(f"  {name:<14} RMSE {e['rmse']:.4f}  max {e['max']:.4f}  ({e['cells']} values)")
        if "large_k" in res:
            lk = res["large_k"]
            text.append(f"  at k = {lk['ks']}: " + ", ".join(f"{n} RMSE {lk[n]['rmse']:.4f}"
                                                          for n in ("simulator", "baseline", "beta_binomial")))
        if res.get("counts"):
            text.append(f"  count histograms: mean TV {res['counts']['tv']:.3f}, W1 {res['counts']['w1']:.3f}")
        summary["held_out"]["split"] = "held-out rhos" if train_until is None else f"epochs > {until}"
    return {"rows": rows, "arms": predictor.arms, "epochs": predictor.epochs.tolist(), "ks": predictor.ks.tolist(),
            "summary": summary, "fit_json": doc, "text": text}
