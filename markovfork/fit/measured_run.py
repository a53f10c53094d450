"""What ``markovfork fit`` computes: the simulator fitted to a measured run's training rows, its
prediction of every cell, and (with rhos or epochs held out) the held-out errors next to the
baselines of :mod:`markovfork.fit.heldout` (``docs/fit.md``)."""

from __future__ import annotations

import numpy as np

from markovfork.fit.heldout import (Split, bridge_predictor, bridge_start, errors, evaluate_split, histogram_distances,
                                    mean_curves, more_starts, table_n_test, train_forks)
from markovfork.fit.measured import measured_curves
from markovfork.fit.predict import pass_at_k_table
from markovfork.fit.schema import check_table
from markovfork.fit.solve import default_free, fit_document, fit_parameters, fit_warnings
from markovfork.plumbing import checks

__all__ = ["fit_and_predict"]


def fit_and_predict(table, experiment, *, counts=None, train_rhos=None, predict_rhos=None, train_until=None,
                    no_fork: bool = True, seed: int = 0, progress=None, fork_observations: bool = True,
                    skill_per_mode: bool = True) -> dict:
    """What ``markovfork fit`` computes: the simulator fitted on the training rows of ``table``
    (the run it describes mapped onto the simulator as ``experiment``, an
    :class:`~markovfork.fit.experiment.Experiment`; a bridge table's:
    ``llm_bridge.fit_runs.experiment_from_table``), the prediction on every cell and (when rhos or epochs are held out) the
    held-out errors next to the baselines. Returns the long table of measured vs predicted
    (``rows``), the JSON summary, the fit document and a few text lines. ``skill_per_mode``: the
    predictor's decipherable-step skill, one per mode (default) or one shared (``docs/fit.md``)."""
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
    predictor = bridge_predictor(experiment, counts, seed=seed, skill_per_mode=skill_per_mode)
    if held_rhos:
        res = evaluate_split(predictor, table, split, counts=counts, no_fork=no_fork, seed=seed, progress=progress,
                             fork_observations=fork_observations)
        fit, sim, meas, held = res.pop("fit_result"), res["predicted"], res["measured"], res["held"]
        multiple = res["fit"]["prediction_substep_multiple"]
    else:
        measured = measured_curves(train, predictor.arms, predictor.epochs, predictor.ks, n_test=table_n_test(train))
        free = default_free(predictor, measured)
        fit = fit_parameters(predictor, measured, free, start=bridge_start(predictor), more_starts=more_starts(free),
                             forks=train_forks(counts, split, predictor) if fork_observations else None)
        if progress:
            progress()
        meas = mean_curves(table, predictor)
        success, multiple = predictor.converged_success(fit.values, fit.integration_error)
        sim = pass_at_k_table(success, predictor.ks)
        held = np.zeros(meas.shape[:2], dtype=bool)
        res = None
        if counts is not None:  # the fitted simulator's count histograms on every measured SFT setting
            fitted = ~np.isnan(meas[:, :, 0]) & (predictor.epochs[None, :] > 0)
            count_distance = histogram_distances(counts, predictor, success, fitted)
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
               "fitted": fit.fitted, "integration_error": doc["integration_error"],
               "prediction_substep_multiple": multiple, "forks": fit.forks,
               "warnings": fit_warnings(fit)}
    text = [f"fitted on {fit.n_observations} measured values: reduced chi2 {doc['reduced_chi2']:.2f}, "
            f"{fit.evaluations} simulator evaluations at {fit.seconds_per_evaluation:.2f} s",
            *(f"  {n} = {v:.4g} +- {doc['parameters'][n]['sigma'] or float('nan'):.2g}"
              + (" (at bound)" if n in fit.at_bound else "") for n, v in fit.values.items())]
    if multiple > 1:
        text.append(f"  curves predicted with {multiple}x the fit's integration substeps (its own step moved them by "
                    f"{fit.integration_error:.3g})")
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
