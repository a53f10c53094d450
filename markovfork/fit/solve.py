"""Weighted least squares of the free parameters against measured pass@k, with uncertainties.

The fit minimises the chi-square of the observations (``markovfork.fit.measured``)

    chi2(u) = sum_i ((pred_i(u) - y_i) / se_i)^2

(with fork observations, :mod:`markovfork.fit.forks`, their (pred - y) / se as further terms)
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
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from markovfork.fit.forks import ForkObservations, fork_statistic
from markovfork.fit.measured import Measured
from markovfork.fit.parameters import DEFAULT_FREE, PARAMETERS, check_names, from_unit, to_unit
from markovfork.fit.predict import INTEGRATION_TOLERANCE, CurvePredictor, pass_at_k_table
from markovfork.plumbing.io import json_safe

__all__ = ["FitResult", "fit_parameters", "save_fit", "load_fit", "fit_document", "fit_warnings", "fitted_grid",
           "FIT_FORMAT", "QUALITY_CHI2", "default_free"]

FIT_FORMAT = "markovfork-fit/2"
# format 1 (before issue 20's reparametrisation): memorisation meant m = lr scale^2, now M = m capacity,
# and there was no mode_memorisation (the simulator memorised the mode like the arm: 1)
FIT_FORMAT_1 = "markovfork-fit/1"


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
    fitted: dict = field(default_factory=dict)  # rhos, diversities, epochs, ks of the rows fitted
    integration_error: float = float("nan")  # max |pass@k| change at the fitted values with 4x the substeps
    forks: dict = field(default_factory=dict)  # fork observations fitted: their count and chi2 (fit.forks)

    @property
    def reduced_chi2(self) -> float:
        dof = self.n_observations - len(self.values)
        return self.chi2 / dof if dof > 0 else float("nan")

    def all_values(self) -> dict[str, float]:
        return self.fixed | self.values


def default_free(predictor: CurvePredictor, measured: Measured | None = None) -> tuple[str, ...]:
    """The parameters fitted unless told otherwise: :data:`DEFAULT_FREE`; when the predictor has a
    per-problem base spread (a bridge run), less ``base_step_accuracy`` (each problem's base skill is
    then set by the measured base counts, and the shared value moves no prediction) and with
    ``mode_memorisation`` (how far the mode choice, not only the arm, is memorised per problem) when
    the rows to fit (``measured``; None: assume so) have a data-level arm of both modes, 0 < rho < 1,
    after SFT: in the other arms every training problem asks for the same mode, and the rows do
    not tell the mode's memorisation (fitted on rho 0 and 1 alone it took 1.7, against 0.006 on the
    whole sweep; held at the predictor's fixed value instead: ``heldout.BRIDGE_MODE_MEMORISATION``
    for a bridge run)."""
    if getattr(predictor, "base_spread", None) is None:
        return DEFAULT_FREE
    free = tuple(n for n in DEFAULT_FREE if n != "base_step_accuracy")
    return free + ("mode_memorisation",) if measured is None or mixes_modes(predictor, measured) else free


def mixes_modes(predictor: CurvePredictor, measured: Measured) -> bool:
    """Whether ``measured`` has an SFT observation (epoch >= 1) of a data-level arm with 0 < rho < 1."""
    mixed = np.array([0.0 < rho < 1.0 and div == "data" for rho, div in predictor.arms])
    return bool(np.any(mixed[measured.arm] & (predictor.epochs[measured.epoch] >= 1)))


def fit_parameters(predictor: CurvePredictor, measured: Measured, free=None, start: dict | None = None,
                   max_evaluations: int = 200, reweight: bool = True, more_starts=(),
                   check_integration: bool = True, forks: ForkObservations | None = None) -> FitResult:
    """Fit the parameters ``free`` of ``predictor`` to ``measured`` (module docstring); the others
    keep the predictor's fixed values. ``start`` gives starting values (default: each one's
    declared default). With ``reweight`` the fit runs twice: first with standard errors at the
    measured values, then, from there, with standard errors at the first fit's prediction
    (:meth:`Measured.reweighted`). ``max_evaluations`` bounds each pass's function evaluations.
    ``more_starts``: further start values (dicts over ``start``) for the first pass; the second
    pass goes on from the first pass's lowest chi-square (the memorisation-capacity valley has
    local minima: docs/fit.md). ``check_integration``: predict once more at the fitted values with
    four times the integration substeps and keep the largest change (``integration_error``;
    :func:`fit_warnings` names it when above :data:`INTEGRATION_TOLERANCE`). ``forks``: fork
    observations (:mod:`markovfork.fit.forks`) fitted beside the pass@k values."""
    from scipy.optimize import least_squares

    free = check_names(default_free(predictor, measured) if free is None else free)
    if not free:
        raise ValueError("free must name at least one parameter to fit, got []")
    start = {n: PARAMETERS[n].default for n in free} | dict(start or {})
    check_names(start, "start values")
    n_forks = 0 if forks is None else len(forks)
    if len(measured) + n_forks <= len(free):
        raise ValueError(f"need more observations than free parameters, got {len(measured) + n_forks} for {len(free)}")
    u0 = np.clip(to_unit(free, predictor.values({n: start[n] for n in free})), 0.0, 1.0)
    evals0, seconds0, t0 = predictor.evaluations, predictor.seconds, time.perf_counter()

    def predicted(u: np.ndarray):
        values = from_unit(free, np.clip(u, 0.0, 1.0))
        if forks is None:
            return predictor.predict(values), None
        success, target = predictor.evaluate(values)
        return pass_at_k_table(success, predictor.ks), fork_statistic(target)

    def residuals(u: np.ndarray) -> np.ndarray:
        curves, fork = predicted(u)
        r = measured.residuals(curves)
        return r if forks is None else np.concatenate([r, forks.residuals(fork)])

    # with reweight, the first pass only sets the weights of the second: a loose tolerance is enough
    first = FIRST_PASS_TOLERANCES if reweight else TOLERANCES
    sol = least_squares(residuals, u0, bounds=(0.0, 1.0), method="trf", diff_step=1e-4, max_nfev=max_evaluations, **first)
    for extra in more_starts:
        other = start | dict(extra)
        u1 = np.clip(to_unit(free, predictor.values({n: other[n] for n in free})), 0.0, 1.0)
        alt = least_squares(residuals, u1, bounds=(0.0, 1.0), method="trf", diff_step=1e-4, max_nfev=max_evaluations,
                            **first)
        if alt.cost < sol.cost:
            sol = alt
    if reweight:
        measured = measured.reweighted(predicted(sol.x)[0])
        sol = least_squares(residuals, sol.x, bounds=(0.0, 1.0), method="trf", diff_step=1e-4, max_nfev=max_evaluations,
                            **TOLERANCES)
    values = from_unit(free, sol.x)
    chi2 = float(np.sum(sol.fun**2))
    dof = len(measured) + n_forks - len(free)
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
        n_observations=len(measured) + n_forks,
        evaluations=evaluations,
        seconds_per_evaluation=(predictor.seconds - seconds0) / max(evaluations, 1),
        seconds=time.perf_counter() - t0,
        data_fingerprint=measured.fingerprint,
        engines=measured.engines,
        predictor=predictor.settings(),
        run_config=dict(predictor.experiment.run_config),
        status=str(sol.message),
        at_bound=tuple(n for n, hit in zip(free, at_bound) if hit),
        fitted=fitted_grid(measured.table),
        integration_error=predictor.integration_error(values) if check_integration else float("nan"),
        forks={} if forks is None else {"observations": n_forks, "chi2": float(np.sum(sol.fun[len(measured):] ** 2))},
    )


def fitted_grid(table) -> dict:
    """The rhos and diversities (of the SFT rows, epoch >= 1), epochs and ks of the rows of ``table``:
    what a fit on them covers (``markovfork.fit.planned.coverage_problems``)."""
    sft = table.filter(table["epoch"] > 0)
    return {"rhos": sorted(float(r) for r in sft["rho"].unique()),
            "diversities": sorted(str(d) for d in sft["diversity"].unique()),
            "epochs": sorted(int(e) for e in table["epoch"].unique()),
            "ks": sorted(int(k) for k in table["k"].unique())}


# relative tolerances of the cost and the step (scipy default 1e-8): a chi2 of ~1,000 stops within 0.1 of its
# minimum, a tenth of what one standard deviation of a parameter moves it (1e-6: 18 instead of 11
# function evaluations in the second pass on the sweep, the same values to 3 digits)
TOLERANCES = dict(ftol=1e-4, xtol=1e-4)
FIRST_PASS_TOLERANCES = dict(ftol=1e-3, xtol=1e-3)

QUALITY_CHI2 = 4.0  # a reduced chi-square above this: the model misses the data, not the noise
# INTEGRATION_TOLERANCE (fit.predict): a fit whose curves move by more than it with 4x the integration
# substeps sits where the flow is stiff (large memorisation over small capacity, large lr): its values
# may be artefacts of the step size; its predictions are integrated finer (CurvePredictor.converged_success)

# a fitted value whose standard error exceeds this share of it: the data barely constrain it (for a
# log-scale parameter, a 2-sigma range spanning a factor of e^2 ~ 7)
LOOSE_SHARE = 0.5


def fit_warnings(result: FitResult) -> list[str]:
    """Why a fit should not be trusted as it stands (empty: no reason found): parameters on a
    bound, a reduced chi-square above :data:`QUALITY_CHI2`, undefined uncertainties or ones above
    :data:`LOOSE_SHARE` of the value, an integration error above :data:`INTEGRATION_TOLERANCE`."""
    out = []
    if result.at_bound:
        out.append("parameters on a bound (the bound, not the data, holds them): "
                   + ", ".join(f"{n} = {result.values[n]:.4g}" for n in result.at_bound))
    rc = result.reduced_chi2
    if rc == rc and rc > QUALITY_CHI2:
        out.append(f"reduced chi2 {rc:.3g} > {QUALITY_CHI2:g}: the simulator misses the data by more than their noise")
    undefined = [n for n, s in result.sigma.items() if n not in result.at_bound and not np.isfinite(s)]
    if undefined or rc != rc:
        out.append("undefined uncertainties (the data do not constrain them): " + ", ".join(undefined or result.values))
    loose = [n for n, sd in result.sigma.items() if np.isfinite(sd) and sd > LOOSE_SHARE * abs(result.values[n])]
    if loose:
        out.append(f"parameters the data barely constrain (sd above {LOOSE_SHARE:.0%} of the value): "
                   + ", ".join(f"{n} = {result.values[n]:.4g} +- {result.sigma[n]:.2g}" for n in loose))
    if result.integration_error > INTEGRATION_TOLERANCE:
        out.append(f"the curves at the fitted values move by {result.integration_error:.3g} with 4x the integration "
                   f"substeps (> {INTEGRATION_TOLERANCE:g}): the fit sits where the simulated flow is stiff")
    return out


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
    return json_safe(doc)


def _null_to_nan(x):
    return float("nan") if x is None else x


_DOC_KEYS = {"format", "parameters", "reduced_chi2", "fitted",
             *(f.name for f in fields(FitResult) if f.name not in ("values", "sigma", "fixed"))}
_GRID_KEYS = ("rhos", "diversities", "epochs", "ks")

def _from_format_1(doc: dict, path) -> dict:
    """A format-1 document in format 2's parameters: memorisation m -> M = m capacity (its sigma by
    the same factor), mode_memorisation 1, held fixed, and the covariance carried into the new unit
    coordinates (:func:`_unit_jacobian_from_format_1`). A document that cannot be converted is a
    one-line ValueError; other faults are left for :func:`_check_document` to name."""
    doc = dict(doc, format=FIT_FORMAT)
    params = {n: dict(p) if isinstance(p, dict) else p for n, p in (doc.get("parameters") or {}).items()}
    mem, cap = params.get("memorisation"), params.get("capacity")
    numeric = all(isinstance(x, dict) and isinstance(x.get(k), (int, float)) and not isinstance(x.get(k), bool)
                  for x in params.values() for k in ("value", "low", "high"))
    if not (numeric and mem is not None and cap is not None):
        raise ValueError(f"{path}: a format-1 fit file needs numeric value, low and high for every parameter, "
                         f"memorisation and capacity among them, to be read (its memorisation meant m = M / capacity)")
    cov = doc.get("covariance_unit")
    fitted = [n for n, p in params.items() if p.get("fitted") is True]
    if isinstance(cov, list) and len(cov) == len(fitted) and all(isinstance(r, list) and len(r) == len(fitted) for r in cov):
        a = _unit_jacobian_from_format_1(params, fitted)
        c = np.array([[np.nan if x is None else x for x in row] for row in cov], dtype=np.float64)
        held = ~np.isfinite(np.diag(c))  # held at a bound in the old fit: no variance, and none known
        new = a @ np.where(np.isfinite(c), c, 0.0) @ a.T
        new[held, :] = np.nan
        new[:, held] = np.nan
        doc["covariance_unit"] = new.tolist()
    # the sigma of M = m c with c held: the same factor (with c fitted too, the covariance above is the full story)
    mem["value"] = mem["value"] * cap["value"]
    if isinstance(mem.get("sigma"), (int, float)):
        mem["sigma"] = mem["sigma"] * cap["value"]
    for n, p in params.items():
        if n in PARAMETERS:
            p["low"], p["high"] = PARAMETERS[n].low, PARAMETERS[n].high
    params.setdefault("mode_memorisation", {"value": PARAMETERS["mode_memorisation"].default, "sigma": None,
                                            "fitted": False})
    doc["parameters"] = params
    return doc


def _unit_jacobian_from_format_1(params: dict, fitted: list[str]) -> np.ndarray:
    """d u_new / d u_old over the fitted parameters of a format-1 document: each parameter's unit
    coordinate rescaled from its stored bounds to today's, and log M = log m + log capacity."""
    def span(n, low, high):
        t = np.log if PARAMETERS[n].log else (lambda x: x)
        return float(t(high) - t(low))

    a = np.zeros((len(fitted), len(fitted)))
    for i, n in enumerate(fitted):
        if n not in PARAMETERS:
            return np.full_like(a, np.nan)
        old = span(n, params[n]["low"], params[n]["high"])
        new = span(n, PARAMETERS[n].low, PARAMETERS[n].high)
        a[i, i] = old / new
        if n == "memorisation" and "capacity" in fitted:  # log M = log m + log c (both log scales)
            j = fitted.index("capacity")
            a[i, j] = span("capacity", params["capacity"]["low"], params["capacity"]["high"]) / new
    return a


def _check_document(doc, path) -> None:
    """One-line ValueErrors for a fit document that :func:`load_fit` cannot trust."""
    if not isinstance(doc, dict) or doc.get("format") != FIT_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path} is not a markovfork fit file (format {FIT_FORMAT!r}), got format {got!r}")
    unknown = sorted(set(doc) - _DOC_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key {unknown[0]!r} in the fit file (allowed: {sorted(_DOC_KEYS)})")
    params = doc.get("parameters")
    if not isinstance(params, dict):
        raise ValueError(f"{path}: parameters must be an object of parameter entries, got {params!r}")
    check_names(params, f"parameters of {path}")
    absent = [n for n in PARAMETERS if n not in params]
    if absent:
        raise ValueError(f"{path} lacks the parameter {absent[0]!r} (a fit file has every one of {list(PARAMETERS)})")
    for n, p in params.items():
        v = p.get("value") if isinstance(p, dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{path}: parameter {n!r} must have a finite numeric value, got {v!r}")
        if not PARAMETERS[n].low <= v <= PARAMETERS[n].high:
            raise ValueError(f"{path}: parameter {n!r} = {v!r} is outside its bounds "
                             f"[{PARAMETERS[n].low:g}, {PARAMETERS[n].high:g}]")
        if not isinstance(p.get("fitted"), bool):
            raise ValueError(f"{path}: parameter {n!r} needs 'fitted': true or false, got {p.get('fitted')!r}")
    n_fitted = sum(p["fitted"] for p in params.values())
    cov = doc.get("covariance_unit")
    if (not isinstance(cov, list) or len(cov) != n_fitted
            or any(not isinstance(r, list) or len(r) != n_fitted for r in cov)):
        raise ValueError(f"{path}: covariance_unit must be {n_fitted} x {n_fitted} (one row per fitted parameter)")
    grid = doc.get("fitted")
    if grid not in (None, {}) and (not isinstance(grid, dict)
                                   or any(not isinstance(grid.get(k), list) or not grid.get(k) for k in _GRID_KEYS)):
        raise ValueError(f"{path}: fitted must be an object with the lists {list(_GRID_KEYS)}, got {grid!r}")


def load_fit(path: str | Path) -> FitResult:
    """Read what :func:`save_fit` wrote (a malformed document is a one-line ValueError)."""
    doc = json.loads(Path(path).read_text())
    if isinstance(doc, dict) and doc.get("format") == FIT_FORMAT_1:
        doc = _from_format_1(doc, path)
    _check_document(doc, path)
    params = doc["parameters"]
    return FitResult(
        values={n: p["value"] for n, p in params.items() if p["fitted"]},
        sigma={n: _null_to_nan(p["sigma"]) for n, p in params.items() if p["fitted"]},
        fixed={n: p["value"] for n, p in params.items() if not p["fitted"]},
        engines=tuple(doc["engines"]),
        covariance_unit=[[_null_to_nan(x) for x in row] for row in doc["covariance_unit"]],
        at_bound=tuple(doc.get("at_bound", ())),
        fitted=doc.get("fitted") or {},
        integration_error=_null_to_nan(doc.get("integration_error")),
        forks=doc.get("forks") or {},
        **{k: doc[k] for k in ("chi2", "n_observations", "evaluations", "seconds_per_evaluation",
                               "seconds", "data_fingerprint", "predictor", "run_config", "status")},
    )
