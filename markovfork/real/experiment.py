"""One call for the command and the examples: fit the maps to a base/tuned pair (optionally on a
hypergeometric subsample of each problem's samples), predict the tuned pass@k curve and the
crossover k*, bootstrap intervals over problems, and the baselines on the same counts.

Measured curves are the unbiased estimator on the full counts (k <= n); errors (RMSE, max) and
interval coverage are over k = 1..n. k* = :func:`markovfork.metrics.estimators.crossover_k` on k = 1..K
(first k where base pass@k >= tuned pass@k, linear interpolation between integers).
"""

from __future__ import annotations

import time

import numpy as np

from markovfork.metrics.estimators import crossover_k, pass_at_k
from markovfork.real.baselines import beta_binomial_curve, beta_binomial_lost, plug_in_curve, plug_in_lost
from markovfork.real.fit import fit_map, predict, subsample_counts
from markovfork.plumbing.seeds import child_seed

__all__ = ["run_real_fit", "METHODS"]

METHODS = ("markov", "logit", "beta_binomial", "plug_in")
LEVEL = 0.95
LEVELS = (0.90, 0.95)  # coverage is reported for both bands; the printed band is LEVEL


def _curves(method, n_b, c_b, n_t, c_t, k, weights=None, x0=None, n_full=None):
    """(base curve, tuned curve, fit or None, expected lost (nan without n_full)) of one method."""
    if method in ("beta_binomial", "plug_in"):
        fn = beta_binomial_curve if method == "beta_binomial" else plug_in_curve
        lost = float("nan")
        if n_full is not None:
            lost = beta_binomial_lost(n_b, c_b, n_t, c_t, n_full, weights) if method == "beta_binomial" else \
                plug_in_lost(n_b, c_b, n_t, c_t, weights)
        return fn(n_b, c_b, k, weights), fn(n_t, c_t, k, weights), None, lost
    fit = fit_map(method, n_b, c_b, n_t, c_t, weights=weights, starts=None if x0 is None else [x0])
    pred = predict(fit, n_t, c_t, k, n_full=n_full, n_b=n_b, c_b=c_b)
    w = np.ones(np.size(c_t)) if weights is None else np.asarray(weights, dtype=np.float64)
    lost = float(w @ pred["lost"] * np.size(c_t) / w.sum()) if n_full is not None else float("nan")
    return w @ pred["base"] / w.sum(), w @ pred["tuned"] / w.sum(), fit, lost


def run_real_fit(pairs, *, subsample: int | None = None, seed: int = 0, k=None, n_boot: int = 20,
                 methods=METHODS, progress=None) -> dict:
    """Fit and predict (module docstring). Returns {"table": polars DataFrame (one row per k),
    "summary": dict, "text": printable lines}."""
    import polars as pl

    n_full = int(min(pairs.n_base.min(), pairs.n_tuned.min()))
    k_user = [] if k is None else [int(x) for x in k]
    k_max = max([n_full, *k_user])
    k_grid = np.arange(1, k_max + 1)
    n_b, c_b, n_t, c_t = pairs.n_base, pairs.c_base, pairs.n_tuned, pairs.c_tuned
    if subsample is not None:
        rng = np.random.default_rng(child_seed(seed, "real-fit-subsample"))
        n_b, c_b = subsample_counts(n_b, c_b, subsample, rng)
        n_t, c_t = subsample_counts(n_t, c_t, subsample, rng)
    k_meas = np.arange(1, n_full + 1)
    base_meas = pass_at_k(pairs.n_base, pairs.c_base, k_meas).mean(axis=0)
    tuned_meas = pass_at_k(pairs.n_tuned, pairs.c_tuned, k_meas).mean(axis=0)
    measured_lost = int(np.sum((pairs.c_base > 0) & (pairs.c_tuned == 0)))
    results, timings, cpu = {}, {}, {}
    for method in methods:
        t0, c0 = time.perf_counter(), time.process_time()
        base, tuned, fit, lost = _curves(method, n_b, c_b, n_t, c_t, k_grid,
                                         n_full=n_full if subsample is not None else None)
        timings[method] = time.perf_counter() - t0
        cpu[method] = time.process_time() - c0
        results[method] = {"base": base, "tuned": tuned, "fit": fit, "lost": lost, "boot": []}
        if progress:
            progress()
    rng = np.random.default_rng(child_seed(seed, "real-fit-bootstrap"))
    t0 = time.perf_counter()
    for _ in range(n_boot):
        weights = rng.multinomial(c_b.size, np.full(c_b.size, 1.0 / c_b.size))
        for method in methods:
            fit = results[method]["fit"]
            base, tuned, bfit, lost = _curves(method, n_b, c_b, n_t, c_t, k_grid, weights,
                                              None if fit is None else fit.x,
                                              n_full if subsample is not None else None)
            results[method]["boot"].append((base, tuned, None if bfit is None else bfit.x, lost,
                                            True if bfit is None else bfit.converged))
        if progress:
            progress()
    boot_seconds = time.perf_counter() - t0
    k_star_meas = crossover_k(k_meas, base_meas, tuned_meas)
    cols = {"k": k_grid}
    meas_pad = lambda v: np.concatenate([v, np.full(k_max - n_full, np.nan)])  # noqa: E731
    cols["base_measured"], cols["tuned_measured"] = meas_pad(base_meas), meas_pad(tuned_meas)
    summary = {"n": n_full, "fitted_on_n": int(n_t.min()), "subsample": subsample, "seed": seed, "n_boot": n_boot,
               "problems": int(c_b.size), "base_label": pairs.base_label, "tuned_label": pairs.tuned_label,
               "measured": {"k_star": k_star_meas, "lost": measured_lost,
                            "base_pass_at_1": float(base_meas[0]), "tuned_pass_at_1": float(tuned_meas[0]),
                            "base_pass_at_n": float(base_meas[-1]), "tuned_pass_at_n": float(tuned_meas[-1])},
               "methods": {}, "fit_seconds": timings, "fit_cpu_seconds": cpu, "bootstrap_seconds": boot_seconds}
    lo_q, hi_q = 100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2
    for method, res in results.items():
        boots = res["boot"]
        tuned_b = np.array([b[1] for b in boots]) if boots else np.empty((0, k_max))
        lo = np.percentile(tuned_b, lo_q, axis=0) if boots else np.full(k_max, np.nan)
        hi = np.percentile(tuned_b, hi_q, axis=0) if boots else np.full(k_max, np.nan)
        err = res["tuned"][:n_full] - tuned_meas
        k_star = crossover_k(k_grid, res["base"], res["tuned"])
        ks_b = np.array([crossover_k(k_grid, b[0], b[1]) for b in boots])
        entry = {"rmse": float(np.sqrt(np.mean(err ** 2))), "max_error": float(np.max(np.abs(err))),
                 "k_star": k_star, "k_star_interval": _interval(ks_b, lo_q, hi_q),
                 "k_star_no_crossing_share": float(np.mean(np.isnan(ks_b))) if boots else None,
                 "coverage": float(np.mean((tuned_meas >= lo[:n_full]) & (tuned_meas <= hi[:n_full]))) if boots else None,
                 "coverage_by_level": {f"{lev:.2f}": _coverage(tuned_b, tuned_meas, lev) for lev in LEVELS} if boots else None,
                 "boot_not_converged": int(sum(not b[4] for b in boots)),
                 "base_rmse": float(np.sqrt(np.mean((res["base"][:n_full] - base_meas) ** 2)))}
        if res["fit"] is not None:
            xs = np.array([b[2] for b in boots]) if boots else np.empty((0, res["fit"].x.size))
            from markovfork.real.fit import param_dict

            pb = [param_dict(method, x) for x in xs]
            entry["params"] = {name: {"value": v, "sd": float(np.std([d[name] for d in pb])) if pb else None,
                                      "interval": _interval(np.array([d[name] for d in pb]), lo_q, hi_q)}
                               for name, v in res["fit"].params.items()}
            entry["log_likelihood"] = res["fit"].log_likelihood
            entry["converged"] = res["fit"].converged
            entry["on_bound"] = list(res["fit"].on_bound)
            entry["prior"] = {"a": res["fit"].prior.a, "b": res["fit"].prior.b, "w": res["fit"].prior.w}
        if subsample is not None:
            entry["lost"] = res["lost"]
            entry["lost_interval"] = _interval(np.array([b[3] for b in boots]), lo_q, hi_q)
        summary["methods"][method] = entry
        cols[f"{method}_tuned"], cols[f"{method}_base"] = res["tuned"], res["base"]
        cols[f"{method}_tuned_lo"], cols[f"{method}_tuned_hi"] = lo, hi
    table = pl.DataFrame(cols)
    return {"table": table, "summary": summary, "text": _text(table, summary, k_user)}


def _coverage(tuned_b, measured, level):
    """Share of the measured points inside the bootstrap percentile band at ``level``."""
    n = measured.size
    lo = np.percentile(tuned_b[:, :n], 100 * (1 - level) / 2, axis=0)
    hi = np.percentile(tuned_b[:, :n], 100 * (1 + level) / 2, axis=0)
    return float(np.mean((measured >= lo) & (measured <= hi)))


def _interval(values, lo_q, hi_q):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    return [float(np.percentile(values, lo_q)), float(np.percentile(values, hi_q))]


def _fmt(x, digits=3):
    return "  nan" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _text(table, summary, k_user) -> list[str]:
    n = summary["n"]
    ks = sorted(set(k_user) | {1, 2, 4, 8, 16, 32, 64, 128, n, 4 * n} if not k_user else set(k_user))
    ks = [k for k in ks if k <= table.height]
    fitted = f"fitted on {summary['fitted_on_n']} of {n} samples per problem" if summary["subsample"] else \
        f"fitted on all {n} samples per problem"
    lines = [f"{summary['base_label']} -> {summary['tuned_label']}: {summary['problems']} problems, {fitted}; "
             f"intervals: {summary['n_boot']} bootstrap resamples of the problems (95% percentile)"]
    m = summary["methods"]
    if "markov" in m and "params" in m["markov"]:
        lines.append("markov map: " + ", ".join(f"{name} {_fmt(d['value'])} (sd {_fmt(d['sd'])})"
                                                for name, d in m["markov"]["params"].items()))
    if "logit" in m and "params" in m["logit"]:
        lines.append("logit map:  " + ", ".join(f"{name} {_fmt(d['value'])} (sd {_fmt(d['sd'])})"
                                                for name, d in m["logit"]["params"].items()))
    lines.append(f"{'k':>6} {'base':>6} {'tuned':>6} " + " ".join(f"{name:>22}" for name in m))
    for k in ks:
        row = table.row(k - 1, named=True)
        cells = [f"{_fmt(row[f'{x}_tuned'])} [{_fmt(row[f'{x}_tuned_lo'])},{_fmt(row[f'{x}_tuned_hi'])}]" for x in m]
        lines.append(f"{k:>6} {_fmt(row['base_measured'])} {_fmt(row['tuned_measured'])} " + " ".join(f"{c:>22}" for c in cells))
    meas = summary["measured"]
    lines.append(f"measured: k* {_fmt(meas['k_star'], 1)}, lost at k={n}: {meas['lost']}")
    for name, e in m.items():
        iv = e["k_star_interval"]
        lost = f", lost {_fmt(e['lost'], 1)}" + (f" [{_fmt(e['lost_interval'][0], 1)},{_fmt(e['lost_interval'][1], 1)}]"
                                                 if e.get("lost_interval") else "") if "lost" in e else ""
        lines.append(f"{name}: RMSE {_fmt(e['rmse'], 4)}, max error {_fmt(e['max_error'], 4)}, coverage "
                     f"{_fmt(e['coverage'], 2)}, k* {_fmt(e['k_star'], 1)}"
                     + (f" [{_fmt(iv[0], 1)},{_fmt(iv[1], 1)}]" if iv else "") + lost)
    return lines
