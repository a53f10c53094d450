"""Predict the pass@k curves of a bridge run that has not been made, from fitted parameters.

A fit (:func:`markovfork.fit.save_fit`) holds the free parameters' values and the bridge run
configuration they were fitted to. :func:`predict_planned` takes a *planned* run (new rho,
diversity, evaluation epochs, k, seed) already mapped onto the simulator (an
:class:`~markovfork.fit.experiment.Experiment`; a bridge run: ``llm_bridge.fit_runs.predict_run``
checks it against the fit and maps it) and evaluates :class:`CurvePredictor` at the fitted
values, with the fit's predictor settings:

    pass@k(arm, epoch, k) = CurvePredictor(planned, fixed=fit.fixed, **fit.predictor).predict(fit.values)

(integrated with more substeps where 4x of them would move the table by more than the fit's
tolerance: ``CurvePredictor.converged_success``).

The fitted parameters absorb what the simulator lacks (the bridge's model, optimiser, base
schedule, task shape), so a prediction is only as good as its run resembles the fitted one.
``llm_bridge.fit_runs.coverage_problems`` lists the settings outside what the fit covers: any difference in
``[task]``, ``[model]``, ``[base]``, the SFT settings other than rhos, diversities and epochs
(n_problems, lr, batch size, fork format, ...) and ``[eval.sampling]``; a rho outside the fitted
range; SFT epochs beyond the fitted ones (the bridge's cosine schedule spans the run's epochs);
a diversity the fit never saw; evaluation epochs beyond the last fitted epoch and ks beyond the
largest fitted k (the grid of the rows fitted, ``FitResult.fitted``: held-out rows do not count);
a list that repeats a value. Free: the seed, threads and device, ``eval.epochs`` and
``n_samples`` within those bounds, and ``n_test``.

The parameter uncertainty of each value is propagated by the delta method from the fit's
covariance of the unit coordinates u (parameters held at a bound contribute nothing):

    sd(pass@k)^2 = g^T Cov(u) g,   g = d pass@k / du   (central differences, step 1e-3 in u).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from markovfork.fit.experiment import Experiment
from markovfork.fit.parameters import from_unit, to_unit
from markovfork.fit.predict import CurvePredictor
from markovfork.fit.solve import FitResult, load_fit

__all__ = [
    "Prediction", "read_fit", "predict_planned", "prediction_table", "prediction_figure", "ENGINE",
]

ENGINE = "predicted"  # the engine column of a prediction table
_STEP = 1e-3  # central-difference step in the unit coordinates


@dataclass(frozen=True)
class Prediction:
    """Predicted pass@k of a planned run: ``pass_at_k[arm, epoch, k]`` and its parameter sd."""

    arms: list[tuple[float, str]]  # (rho, diversity) per arm, the run's order
    epochs: np.ndarray  # evaluated epochs, 0 (the base model) first
    ks: np.ndarray
    pass_at_k: np.ndarray  # (arms, epochs, ks)
    sd: np.ndarray  # (arms, epochs, ks) parameter-uncertainty standard deviation
    experiment: Experiment  # the planned run, mapped onto the simulator
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
    except UnicodeDecodeError as exc:
        raise ValueError(f"fit file {str(path)!r} is not JSON text (byte {exc.start} is not UTF-8: a binary file, "
                         f"such as a Parquet table?)") from None
    except OSError as exc:
        raise ValueError(f"cannot read fit file {str(path)!r}: {exc.strerror or exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"fit file {str(path)!r} is not a valid markovfork fit: missing or malformed {exc}") from None
    if not fit.run_config:
        raise ValueError(f"fit file {str(path)!r} holds no bridge run configuration (run_config)")
    return fit


def predict_planned(fit: FitResult, planned: Experiment, *, uncertainty: bool = True) -> Prediction:
    """The predicted pass@k table of every SFT arm of ``planned`` (module docstring). Whether the
    run is inside what the fit covers is the caller's check (a bridge run:
    ``llm_bridge.fit_runs.predict_run``)."""
    predictor = CurvePredictor(planned, fixed=fit.fixed, **fit.predictor)
    values = dict(fit.values)
    # integrated until 4x the substeps moves the table by at most INTEGRATION_TOLERANCE: the fit's own check
    # covered its fitted arms only, and a planned arm can be stiff where they were not
    curves = predictor.converged_predict(values)
    sd = np.zeros_like(curves)
    if uncertainty and values:
        cov = np.asarray(fit.covariance_unit, dtype=np.float64)
        if cov.shape != (len(values), len(values)):
            raise ValueError(f"the fit's covariance must be {len(values)} x {len(values)} (one row per fitted "
                             f"parameter), got shape {cov.shape}")
        sd = _parameter_sd(predictor, values, cov, curves.shape)
    return Prediction(arms=list(predictor.arms), epochs=predictor.epochs, ks=predictor.ks, pass_at_k=curves,
                      sd=sd, experiment=planned, fit=fit)


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
    cols = pred.experiment.columns
    rows = []
    for a, (rho, diversity) in enumerate(pred.arms):
        for e, epoch in enumerate(pred.epochs):
            for j, k in enumerate(pred.ks):
                post = float(pred.pass_at_k[a, e, j])
                rows.append(dict(
                    engine=ENGINE, rho=float(rho), diversity=diversity, seed=int(cols["seed"]), epoch=int(epoch), k=int(k),
                    pass_at_k_base=float(base[a, j]), pass_at_k_post=post, shrinkage=float(base[a, j]) - post,
                    fork_accuracy=nan, fork_confidence_correct=nan, fork_confidence_wrong=nan, fork_entropy=nan,
                    train_loss=nan, pass_at_k_post_sd=float(pred.sd[a, e, j]), n_samples=int(cols["n_samples"]),
                    n_test=int(cols["n_test"]), fork_format=cols["fork_format"], answer=cols["answer"],
                    arms=int(cols["arms"]), depth=int(cols["depth"]),
                ))
    return results_frame(rows)


def prediction_figure(table):
    """pass@k against k of the prediction (:func:`markovfork.reporting.figures.plot_pass_at_k`): one arm,
    a line per epoch; several arms, a line per arm at its last epoch."""
    from markovfork.reporting.figures import plot_pass_at_k

    return plot_pass_at_k(table)
