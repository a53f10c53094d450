"""Weighted least squares of the free parameters against measured pass@k, with uncertainties.

The fit minimises the chi-square of the observations (``markovfork.fit.measured``)

    chi2(u) = sum_i ((pred_i(u) - y_i) / se_i)^2

over the free parameters in their unit coordinates u in [0, 1]^p (``scipy.optimize.least_squares``,
trust-region reflective, finite-difference Jacobian). The covariance of u is the Gauss-Newton
one scaled by the reduced chi-square (so that a model that misses the data by more than the
binomial noise reports wider intervals):

    Cov(u) = (J^T J)^-1 chi2 / (n - p),   J = d((pred - y) / se) / du = W^(1/2) d pred / du,

and each value's standard error is sigma_u dv/du (the delta method). A parameter that ends on a
bound is listed in ``at_bound`` with a nan standard error, and the others' covariance is taken
with it held there, so their intervals are conditional on the bound value. (With it included,
the Jacobian reports an interval for a parameter that the bound, not the data, holds: on
simulated data, capacity pinned at its upper bound 2 reported +- 0.17 with the truth at 1.) The standard errors se_i
of the final pass are binomial at the first pass's prediction (``reweight``), not at the
measured values: with the latter, the values that fluctuated toward 0 or 1 carry inflated
weights, and on simulated data the fit then missed known parameters by 4 to 9 reported sigmas.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from markovfork.fit.measured import Measured
from markovfork.fit.parameters import DEFAULT_FREE, PARAMETERS, check_names, from_unit, to_unit
from markovfork.fit.predict import CurvePredictor

__all__ = ["FitResult", "fit_parameters", "save_fit", "load_fit", "fit_document", "FIT_FORMAT"]

FIT_FORMAT = "markovfork-fit/1"


@dataclass(frozen=True)
class FitResult:
    """Fitted values, their standard errors, the values held fixed, and the fit's bookkeeping."""

    values: dict[str, float]  # fitted parameters
    sigma: dict[str, float]  # their standard errors (nan when the Jacobian is singular)
    fixed: dict[str, float]  # parameters held fixed
    covariance_unit: list[list[float]]  # Cov(u) of the fitted parameters, in their unit coordinates
    chi2: float
    n_observations: int
    evaluations: int  # predictions computed (the Jacobian's included)
    seconds_per_evaluation: float
    seconds: float
    data_fingerprint: str  # Measured.fingerprint of the data fitted
    engines: tuple[str, ...]
    predictor: dict = field(default_factory=dict)  # max_train_problems, steps_per_epoch, seed
    run_config: dict = field(default_factory=dict)  # the bridge RunConfig (as a dict)
    status: str = ""
    at_bound: tuple[str, ...] = ()  # fitted parameters that ended on a bound (their sigma is nan)

    @property
    def reduced_chi2(self) -> float:
        dof = self.n_observations - len(self.values)
        return self.chi2 / dof if dof > 0 else float("nan")

    def all_values(self) -> dict[str, float]:
        return self.fixed | self.values


def fit_parameters(predictor: CurvePredictor, measured: Measured, free=DEFAULT_FREE, start: dict | None = None,
                   max_evaluations: int = 200, reweight: bool = True) -> FitResult:
    """Fit the parameters ``free`` of ``predictor`` to ``measured`` (module docstring); the others
    keep the predictor's fixed values. ``start`` gives starting values (default: each one's
    declared default). With ``reweight`` the fit runs twice: first with standard errors at the
    measured values, then, from there, with standard errors at the first fit's prediction
    (:meth:`Measured.reweighted`). ``max_evaluations`` bounds each pass's function evaluations."""
    from scipy.optimize import least_squares

    free = check_names(free)
    if not free:
        raise ValueError("free must name at least one parameter to fit, got []")
    start = {n: PARAMETERS[n].default for n in free} | dict(start or {})
    check_names(start, "start values")
    if len(measured) <= len(free):
        raise ValueError(f"need more observations than free parameters, got {len(measured)} for {len(free)}")
    u0 = np.clip(to_unit(free, predictor.values({n: start[n] for n in free})), 0.0, 1.0)
    evals0, seconds0, t0 = predictor.evaluations, predictor.seconds, time.perf_counter()

    def residuals(u: np.ndarray) -> np.ndarray:
        return measured.residuals(predictor.predict(from_unit(free, np.clip(u, 0.0, 1.0))))

    sol = least_squares(residuals, u0, bounds=(0.0, 1.0), method="trf", diff_step=1e-4, max_nfev=max_evaluations)
    if reweight:
        measured = measured.reweighted(predictor.predict(from_unit(free, sol.x)))
        sol = least_squares(residuals, sol.x, bounds=(0.0, 1.0), method="trf", diff_step=1e-4, max_nfev=max_evaluations)
    values = from_unit(free, sol.x)
    chi2 = float(np.sum(sol.fun**2))
    dof = len(measured) - len(free)
    cov, at_bound = _covariance(sol.jac, sol.x, chi2 / dof)
    sigma = {n: float(np.sqrt(cov[i, i]) * PARAMETERS[n].unit_derivative(values[n])) if cov[i, i] >= 0 else float("nan")
             for i, n in enumerate(free)}
    evaluations = predictor.evaluations - evals0
    return FitResult(
        values=values,
        sigma=sigma,
        fixed={n: v for n, v in predictor.fixed.items() if n not in free},
        covariance_unit=cov.tolist(),
        chi2=chi2,
        n_observations=len(measured),
        evaluations=evaluations,
        seconds_per_evaluation=(predictor.seconds - seconds0) / max(evaluations, 1),
        seconds=time.perf_counter() - t0,
        data_fingerprint=measured.fingerprint,
        engines=measured.engines,
        predictor=predictor.settings(),
        run_config=predictor.run.to_dict(),
        status=str(sol.message),
        at_bound=tuple(n for n, hit in zip(free, at_bound) if hit),
    )


def _covariance(jac: np.ndarray, u: np.ndarray, scale: float, edge: float = 1e-6):
    """Cov(u) = (J^T J)^-1 scale over the parameters away from their bounds; a parameter held by
    a bound (within ``edge`` of 0 or 1 in u) gets nan rows and columns: the Jacobian there says
    how the fit would move *into* the bound, not how far the data allow it to go. Returns the
    covariance and the at-bound mask."""
    at_bound = (u <= edge) | (u >= 1.0 - edge)
    cov = np.full((u.size, u.size), np.nan)
    inner = np.flatnonzero(~at_bound)
    if inner.size:
        sub = jac[:, inner]
        try:
            inv = np.linalg.inv(sub.T @ sub) * scale
        except np.linalg.LinAlgError:
            inv = np.full((inner.size, inner.size), np.nan)
        if np.all(np.isfinite(inv)):
            cov[np.ix_(inner, inner)] = inv
    return cov, at_bound


def save_fit(result: FitResult, path: str | Path) -> Path:
    """Write ``result`` as JSON (atomically): the values, standard errors, bounds and meanings of
    the parameters, the fit statistics and the fingerprint of the data they came from."""
    from markovfork.plumbing.io import write_json

    return write_json(fit_document(result), Path(path))


def fit_document(result: FitResult) -> dict:
    """The JSON document :func:`save_fit` writes (strict JSON: nan as null)."""
    doc = {
        "format": FIT_FORMAT,
        "parameters": {
            n: {"value": v, "sigma": result.sigma.get(n), "fitted": n in result.values, "low": PARAMETERS[n].low,
                "high": PARAMETERS[n].high, "meaning": PARAMETERS[n].meaning}
            for n, v in result.all_values().items()
        },
        "reduced_chi2": result.reduced_chi2,
        **{k: v for k, v in asdict(result).items() if k not in ("values", "sigma", "fixed")},
    }
    return _nan_to_null(doc)


def _nan_to_null(obj):
    """``obj`` with every float nan replaced by None (strict JSON has no NaN; read back as nan)."""
    if isinstance(obj, dict):
        return {k: _nan_to_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_null(v) for v in obj]
    return None if isinstance(obj, float) and obj != obj else obj


def _null_to_nan(x):
    return float("nan") if x is None else x


def load_fit(path: str | Path) -> FitResult:
    """Read what :func:`save_fit` wrote."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != FIT_FORMAT:
        raise ValueError(f"{path} is not a markovfork fit file (format {FIT_FORMAT!r}), got format {doc.get('format')!r}")
    params = doc["parameters"]
    check_names(params, f"parameters of {path}")
    return FitResult(
        values={n: p["value"] for n, p in params.items() if p["fitted"]},
        sigma={n: _null_to_nan(p["sigma"]) for n, p in params.items() if p["fitted"]},
        fixed={n: p["value"] for n, p in params.items() if not p["fitted"]},
        engines=tuple(doc["engines"]),
        covariance_unit=[[_null_to_nan(x) for x in row] for row in doc["covariance_unit"]],
        at_bound=tuple(doc.get("at_bound", ())),
        **{k: doc[k] for k in ("chi2", "n_observations", "evaluations", "seconds_per_evaluation",
                               "seconds", "data_fingerprint", "predictor", "run_config", "status")},
    )
