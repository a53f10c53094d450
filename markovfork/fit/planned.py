"""Predict the pass@k curves of a bridge run that has not been made, from fitted parameters.

A fit (:func:`markovfork.fit.save_fit`) holds the free parameters' values and the bridge run
configuration they were fitted to. :func:`predict_planned` maps a *planned* run configuration
(new rho, diversity, evaluation epochs, k, seed) onto the simulator (``task_mapping``) and
evaluates :class:`CurvePredictor` at the fitted values, with the fit's predictor settings:

    pass@k(arm, epoch, k) = CurvePredictor(planned, fixed=fit.fixed, **fit.predictor).predict(fit.values)

The fitted parameters absorb what the simulator lacks (the bridge's model, optimiser, base
schedule, task shape), so a prediction is only as good as its run resembles the fitted one.
:func:`coverage_problems` lists the settings outside what the fit covers: any difference in
``[task]``, ``[model]``, ``[base]``, the SFT settings other than rhos, diversities and epochs
(n_problems, lr, batch size, fork format, ...) and ``[eval.sampling]``; a rho outside the fitted
range; SFT epochs beyond the fitted ones (the bridge's cosine schedule spans the run's epochs);
a diversity the fit never saw. Free: the seed, threads and device, ``eval.epochs``, ``eval.ks``,
``n_samples`` and ``n_test``.

The parameter uncertainty of each value is propagated by the delta method from the fit's
covariance of the unit coordinates u (parameters held at a bound contribute nothing):

    sd(pass@k)^2 = g^T Cov(u) g,   g = d pass@k / du   (central differences, step 1e-3 in u).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from markovfork.fit.parameters import from_unit, to_unit
from markovfork.fit.predict import CurvePredictor
from markovfork.fit.solve import FitResult, load_fit

__all__ = [
    "Prediction", "read_fit", "fitted_run", "coverage_problems", "predict_planned", "prediction_table",
    "prediction_figure", "ENGINE",
]

ENGINE = "predicted"  # the engine column of a prediction table
FREE_SECTIONS = {"seed", "threads", "device"}  # run settings a prediction may change at will
FREE_SFT = {"rhos", "diversities", "epochs"}  # checked separately (range, seen diversities, epochs)
FREE_EVAL = {"epochs", "n_samples", "n_test"}  # ks follow n_samples
_STEP = 1e-3  # central-difference step in the unit coordinates


@dataclass(frozen=True)
class Prediction:
    """Predicted pass@k of a planned run: ``pass_at_k[arm, epoch, k]`` and its parameter sd."""

    arms: list[tuple[float, str]]  # (rho, diversity) per arm, the run's order
    epochs: np.ndarray  # evaluated epochs, 0 (the base model) first
    ks: np.ndarray
    pass_at_k: np.ndarray  # (arms, epochs, ks)
    sd: np.ndarray  # (arms, epochs, ks) parameter-uncertainty standard deviation
    run: object  # the planned RunConfig
    fit: FitResult


def read_fit(path: str | Path) -> FitResult:
    """:func:`load_fit` with one-line errors: a missing, unreadable or malformed file is a ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"fit file {str(path)!r} does not exist")
    try:
        fit = load_fit(path)
    except json.JSONDecodeError as exc:
        raise ValueError(f"fit file {str(path)!r} is not JSON: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"fit file {str(path)!r} is not a valid markovfork fit: missing or malformed {exc}") from None
    if not fit.run_config:
        raise ValueError(f"fit file {str(path)!r} holds no bridge run configuration (run_config)")
    return fit


def fitted_run(fit: FitResult):
    """The bridge RunConfig the fit was made on."""
    from markovfork.llm_bridge.config import config_from_dict

    try:
        return config_from_dict(fit.run_config)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the fit's run_config is not a valid bridge configuration: {exc}") from None


def _differences(a: dict, b: dict, prefix: str, skip=()) -> list[str]:
    return [f"{prefix}{k} = {b.get(k)!r} (fitted: {a.get(k)!r})"
            for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k)]


def coverage_problems(fit: FitResult, planned) -> list[str]:
    """The settings of ``planned`` (a RunConfig) outside what ``fit`` covers, one string each
    (empty: the prediction is an interpolation of the fitted run)."""
    from markovfork.llm_bridge.task_mapping import sft_arms

    fitted = fitted_run(fit)
    a, b = fitted.to_dict(), planned.to_dict()
    problems = []
    for section in ("task", "model", "base"):
        problems += _differences(a[section], b[section], f"[{section}] ")
    problems += _differences(a["sft"], b["sft"], "[sft] ", skip=FREE_SFT)
    problems += _differences(a["eval"], b["eval"], "[eval] ", skip=FREE_EVAL | {"sampling"})
    problems += _differences(a["eval"]["sampling"], b["eval"]["sampling"], "[eval.sampling] ")
    fitted_arms = sft_arms(fitted)
    rhos = [rho for rho, _ in fitted_arms]
    low, high = min(rhos), max(rhos)
    seen = {div for _, div in fitted_arms}
    for rho, div in sft_arms(planned):
        if not low <= rho <= high:
            problems.append(f"rho {rho:g} outside the fitted range [{low:g}, {high:g}]")
        if div not in seen:
            problems.append(f"diversity {div!r} (fitted: {sorted(seen)})")
    if planned.sft.epochs > fitted.sft.epochs:
        problems.append(f"[sft] epochs = {planned.sft.epochs} beyond the fitted {fitted.sft.epochs}")
    return problems


def predict_planned(fit: FitResult, planned, *, uncertainty: bool = True) -> Prediction:
    """The predicted pass@k table of every SFT arm of ``planned`` (module docstring); a
    ValueError names every setting outside what the fit covers."""
    problems = coverage_problems(fit, planned)
    if problems:
        raise ValueError("the planned run is outside what the fit covers: " + "; ".join(problems))
    predictor = CurvePredictor(planned, fixed=fit.fixed, **fit.predictor)
    values = dict(fit.values)
    curves = predictor.predict(values)
    sd = np.zeros_like(curves)
    if uncertainty and values:
        cov = np.asarray(fit.covariance_unit, dtype=np.float64)
        if cov.shape != (len(values), len(values)):
            raise ValueError(f"the fit's covariance must be {len(values)} x {len(values)} (one row per fitted "
                             f"parameter), got shape {cov.shape}")
        sd = _parameter_sd(predictor, values, cov, curves.shape)
    return Prediction(arms=list(predictor.arms), epochs=predictor.epochs, ks=predictor.ks, pass_at_k=curves,
                      sd=sd, run=planned, fit=fit)


def _parameter_sd(predictor: CurvePredictor, values: dict, cov: np.ndarray, shape: tuple) -> np.ndarray:
    """sqrt(g^T Cov(u) g) per value of the ``shape`` table, g by central differences in u
    (parameters whose covariance is nan, held at a bound, are left out)."""
    names = list(values)
    u0 = np.asarray(to_unit(names, values))
    use = [i for i in range(len(names)) if np.isfinite(cov[i, i])]
    if not use:
        return np.zeros(shape)
    grads = []
    for i in use:
        lo, hi = u0.copy(), u0.copy()
        lo[i], hi[i] = max(u0[i] - _STEP, 0.0), min(u0[i] + _STEP, 1.0)
        grads.append((predictor.predict(from_unit(names, hi)) - predictor.predict(from_unit(names, lo))) / (hi[i] - lo[i]))
    g = np.stack(grads, axis=-1)  # (arms, epochs, ks, p)
    sub = cov[np.ix_(use, use)]
    var = np.einsum("...i,ij,...j->...", g, sub, g)
    return np.sqrt(np.maximum(var, 0.0))


def prediction_table(pred: Prediction):
    """The prediction as a results table (``markovfork.reporting.results`` schema, engine ``"predicted"``):
    pass_at_k_post and, as an extra column, ``pass_at_k_post_sd``; the fork metrics and the
    training loss are not predicted (nan)."""
    from markovfork.reporting.results import results_frame

    nan = float("nan")
    base = pred.pass_at_k[:, 0, :]
    run = pred.run
    rows = []
    for a, (rho, diversity) in enumerate(pred.arms):
        for e, epoch in enumerate(pred.epochs):
            for j, k in enumerate(pred.ks):
                post = float(pred.pass_at_k[a, e, j])
                rows.append(dict(
                    engine=ENGINE, rho=float(rho), diversity=diversity, seed=int(run.seed), epoch=int(epoch), k=int(k),
                    pass_at_k_base=float(base[a, j]), pass_at_k_post=post, shrinkage=float(base[a, j]) - post,
                    fork_accuracy=nan, fork_confidence_correct=nan, fork_confidence_wrong=nan, fork_entropy=nan,
                    train_loss=nan, pass_at_k_post_sd=float(pred.sd[a, e, j]), n_samples=int(run.eval.n_samples),
                    n_test=int(run.eval.n_test), fork_format=run.sft.fork_format, answer=run.task.answer,
                    arms=int(run.task.arms), depth=int(run.task.depth),
                ))
    return results_frame(rows)


def prediction_figure(table):
    """pass@k against k of the prediction (:func:`markovfork.reporting.figures.plot_pass_at_k`): one arm,
    a line per epoch; several arms, a line per arm at its last epoch."""
    from markovfork.reporting.figures import plot_pass_at_k

    return plot_pass_at_k(table)
