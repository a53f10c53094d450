"""Held-out benchmarks of the fitted simulator on the committed bridge sweep (docs/fit.md, "Held-out
results"), each against its baselines, with 90 % predictive intervals and their coverage.

    python benchmarks/fit_heldout.py fit [--out DIR] [--only NAME ...]   # the fits (minutes each), cached in DIR
    python benchmarks/fit_heldout.py report [--out DIR] [--seed2 PATH] [--sft1000 PATH]   # the tables, from the cache

``--results/--counts/--config`` name another sweep (default: the committed one), e.g. the ArithChain
sweep (docs/examples/bridge_arith_*): the same fits and tables, fitted on it alone.

Settings (names for --only): ``full`` (every row; parameters, fit time), ``loo`` (each rho left out
in turn), ``two`` (rho 0 and 1 fitted, every interior rho of both diversities predicted), ``early``
(epochs <= 4 fitted, 5-12 predicted). Each held-out fit also fits the no-fork simulator; the
large-k beta-binomial baseline comes from the per-problem counts. ``report`` adds the rho 0.9 run of
docs/examples/prediction (the full fit's prediction, next to the old one committed there) and, with
``--seed2``, a third seed's results table as pure test data (nothing is refitted: the leave-one-rho-out
fits of seeds 0-1 predict it, and the full fit). Intervals (``markovfork.fit.intervals``): the noise
ratio r_k from the fitted cells of seeds 0-1, the discrepancy lambda_k from the leave-one-rho-out
residuals of the *other* rhos (for the rho 0.9 run and seed 2: of all five).
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "docs" / "examples"
RESULTS, COUNTS, CONFIG = EX / "bridge_sweep_results.parquet", EX / "bridge_sweep_counts.parquet", EX / "bridge-sweep.toml"
PRED = EX / "prediction"
LEVEL = 0.9


def setup(results=RESULTS, counts=COUNTS, config=CONFIG, skill_per_mode=True):
    """The sweep's results and counts tables and the fit's predictor for it (default: the committed sweep)."""
    from markovfork.fit.heldout import bridge_predictor
    from markovfork.llm_bridge.fit_runs import experiment_from_table

    table, counts = pl.read_parquet(results), pl.read_parquet(counts)
    return table, counts, bridge_predictor(experiment_from_table(table, str(config)), counts, skill_per_mode=skill_per_mode)


def per_seed(table, predictor) -> tuple[np.ndarray, list[int]]:
    """(seeds, arms, epochs, ks) measured pass@k of each seed (nan: not measured; epoch 0 in every arm)."""
    from markovfork.fit.heldout import mean_curves

    seeds = sorted(int(s) for s in table["seed"].unique())
    return np.stack([mean_curves(table.filter(pl.col("seed") == s), predictor) for s in seeds]), seeds


def run_fits(out: Path, only, data: dict, fork_observations: bool = True) -> None:
    from markovfork.fit.heldout import Split, early_late, evaluate_split, leave_rho_out, more_starts, train_forks
    from markovfork.fit.solve import default_free
    from markovfork.fit.measured import measured_curves
    from markovfork.fit.solve import fit_parameters

    table, counts, predictor = setup(**data)
    rhos = sorted(float(r) for r in table.filter(pl.col("epoch") > 0)["rho"].unique())
    last = int(table["epoch"].max())
    jobs = []
    if "full" in only:
        jobs.append("full")
    if "loo" in only:
        jobs += [f"loo_{r:g}" for r in rhos]
    jobs += [name for name in only if name.startswith("loo_")]  # one left-out rho: loo_0.25
    if "two" in only:
        jobs.append("two")
    if "early" in only:
        jobs.append("early")
    for job in jobs:
        t0 = time.perf_counter()
        if job == "full":
            m = measured_curves(table, predictor.arms, predictor.epochs, predictor.ks)
            free = default_free(predictor, m)
            everything = Split("full", tuple(rhos), (), last, last + 1)
            fit = fit_parameters(predictor, m, free, more_starts=more_starts(free),
                                 forks=train_forks(counts, everything, predictor) if fork_observations else None)
            res = {"fit_result": fit, "predicted": predictor.converged_predict(fit.values, fit.integration_error)}
        else:
            if job.startswith("loo_"):
                split = leave_rho_out(rhos, float(job[4:]), last)
            elif job == "two":
                split = Split("rho 0 and 1 fitted", (0.0, 1.0), tuple(r for r in rhos if 0 < r < 1), last, 1)
            else:
                split = early_late(rhos, 4, last)
            res = evaluate_split(predictor, table, split, counts=counts, fork_observations=fork_observations)
        res["wall"] = time.perf_counter() - t0
        with open(out / f"{job}.pkl", "wb") as f:
            pickle.dump(res, f)
        print(f"{job}: {res['wall']:.0f} s", flush=True)


def load(out: Path, name: str):
    path = out / f"{name}.pkl"
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return pickle.load(f)


def rmse(d) -> float:
    return float(np.sqrt(np.mean(np.asarray(d) ** 2)))


def report_forks(predictor, counts, values) -> None:
    """The fork statistic mean q (1 - q) (markovfork.fit.forks) of every arm, simulated vs measured."""
    from markovfork.fit.forks import fork_statistic

    stat = fork_statistic(predictor.evaluate(values)[1])
    print("\n| fork statistic mean q (1 - q), simulator / bridge | " + " | ".join(f"epoch {e}" for e in predictor.epochs[1:]) + " |")
    print("|---|" + "---|" * (predictor.epochs.size - 1))
    for a, (rho, div) in enumerate(predictor.arms):
        cells = []
        for i, e in enumerate(predictor.epochs[1:], start=1):
            q = counts.filter(pl.col("rho") == rho, pl.col("diversity") == div, pl.col("epoch") == int(e))["q_target"].to_numpy()
            cells.append(f"{stat[a, i]:.3f} / {fork_statistic(q):.3f}" if q.size else "-")
        print(f"| rho {rho:g} {div} | " + " | ".join(cells) + " |")


def report(out: Path, seed2: str | None, sft1000: str | None, data: dict) -> None:
    from markovfork.fit.counts import histogram_distance, measured_histogram, predicted_histogram
    from markovfork.fit.heldout import base_counts, mean_curves
    from markovfork.fit.intervals import coverage, discrepancy, interval, seed_ratio
    from markovfork.fit.planned import read_fit
    from markovfork.fit.predict import CurvePredictor, pass_at_k_table

    table, counts, predictor = setup(**data)
    committed = data["results"] == RESULTS
    m = int(table["n_test"][0])
    curves, seeds = per_seed(table, predictor)
    meas = mean_curves(table, predictor)
    ks = predictor.ks
    kidx = np.broadcast_to(np.arange(ks.size), meas.shape)
    rhos = sorted(float(r) for r in table.filter(pl.col("epoch") > 0)["rho"].unique())
    arm_rho = np.array([r for r, _ in predictor.arms])

    # --- the base: count histogram and pass@k, before (the old fit) and after (per-problem skill)
    old = read_fit(PRED / "fit.json")
    from markovfork.llm_bridge.fit_runs import experiment_from_table
    ex = experiment_from_table(table, str(data["config"]))
    s_old = CurvePredictor(ex, fixed=old.fixed, **old.predictor).success(old.values)[0, 0]
    s_new = predictor.success({})[0, 0]
    correct, n = base_counts(counts)
    h = measured_histogram(correct, int(n[0]))
    print(f"## Base model (epoch 0), seeds {seeds} pooled\n")
    print(f"measured pass@k {np.round(meas[0, 0], 3).tolist()}")
    for name, s in ((("old (one skill, the committed sweep's fit)", s_old),) if committed else ()) + (("new (per-problem skill)", s_new),):
        d = histogram_distance(h, predicted_histogram(s[~np.isnan(s)], int(n[0])))
        print(f"{name}: pass@k {np.round(pass_at_k_table(s, ks), 3).tolist()}, count TV {d['tv']:.3f}, W1 {d['w1']:.3f}")
    print(f"base spread: {predictor.base_spread}")

    full = load(out, "full")
    if full is not None:
        f = full["fit_result"]
        print("\n## Whole sweep\n")
        print(f"reduced chi2 {f.reduced_chi2:.2f}, {f.evaluations} evaluations x {f.seconds_per_evaluation:.3f} s, "
              f"fit {f.seconds:.1f} s; at bound: {list(f.at_bound) or 'none'}")
        for k_, v in f.values.items():
            from markovfork.fit.parameters import PARAMETERS
            p = PARAMETERS[k_]
            print(f"  {k_} = {v:.4g} +- {f.sigma[k_]:.2g} (bounds {p.low:g} - {p.high:g})")
        fitted = ~np.isnan(meas)
        print(f"  RMSE over every measured cell {rmse((full['predicted'] - meas)[fitted]):.4f}")
        if f.forks:
            n_f, chi2_f = f.forks["observations"], f.forks["chi2"]
            print(f"  chi2 per value: pass@k {(f.chi2 - chi2_f) / (f.n_observations - n_f):.2f}, "
                  f"{n_f} fork observations {chi2_f / n_f:.2f}")
        report_forks(predictor, counts, f.values)

    # --- leave one rho out
    lam_all = ratio_all = None
    intervals_loo, residuals = {}, {}
    loo = {r: load(out, f"loo_{r:g}") for r in rhos}
    if all(v is not None for v in loo.values()):
        print(f"\n## Leave one rho out (epochs 1-12, k 1-32; mean of seeds {seeds})\n")
        print("| held out | simulator RMSE / max | interpolation RMSE / max | no fork RMSE / max | k 16, 32: sim / interp / beta-bin | count TV | 90 % coverage | lr, memorisation, capacity | at bound | wall |")
        print("|---|---|---|---|---|---|---|---|---|---:|")
        pooled = {"simulator": [], "interpolation": [], "no_fork": []}
        cov_in, cov_n = 0, 0
        for r, res in loo.items():
            held = np.broadcast_to(res["held"][:, :, None], meas.shape)
            residuals[r] = (meas - res["predicted"], held)
        for r, res in loo.items():
            e = res["errors"]
            held = np.broadcast_to(res["held"][:, :, None], meas.shape)
            for name in pooled:
                pred = {"simulator": res["predicted"], "interpolation": res["baseline"]}.get(name)
                if pred is not None:
                    pooled[name].append((pred - meas)[held])
            # noise ratio on this split's fitted cells (the other rhos, epochs >= 1), discrepancy on the other rhos' LOO residuals
            train_cells = np.broadcast_to((arm_rho[:, None] != r) & (predictor.epochs[None, :] > 0), meas.shape[:2])[:, :, None] & ~np.isnan(meas)
            ratio = seed_ratio(curves, m, train_cells)
            others = [q for q in rhos if q != r]
            res_o = np.concatenate([residuals[q][0][residuals[q][1]] for q in others])
            pred_o = np.concatenate([loo[q]["predicted"][residuals[q][1]] for q in others])
            k_o = np.concatenate([kidx[residuals[q][1]] for q in others])
            lam = discrepancy(res_o, pred_o, k_o, m, len(seeds), ratio)
            lo, hi, _ = interval(res["predicted"], kidx, m, len(seeds), ratio, lam, LEVEL)
            c_in = int(np.sum(((meas >= lo - 1e-12) & (meas <= hi + 1e-12))[held]))
            cov_in += c_in
            cov_n += int(held.sum())
            intervals_loo[r] = (ratio, lam)
            lk = res.get("large_k", {})
            fv = res["fit"]["values"]
            print(f"| rho {r:g} | {e['simulator']['rmse']:.3f} / {e['simulator']['max']:.3f} | "
                  f"{e['interpolation']['rmse']:.3f} / {e['interpolation']['max']:.3f} | {e['no_fork']['rmse']:.3f} / {e['no_fork']['max']:.3f} | "
                  + (f"{lk['simulator']['rmse']:.4f} / {lk['baseline']['rmse']:.4f} / {lk['beta_binomial']['rmse']:.4f} | " if lk else "- | ")
                  + f"{res.get('counts', {}).get('tv', float('nan')):.2f} | {c_in / held.sum():.0%} ({c_in}/{int(held.sum())}) | "
                  f"{fv['lr']:.3g}, {fv['memorisation']:.3g}, {fv['capacity']:.3g} | {','.join(res['fit']['at_bound']) or 'none'} | {res['wall']:.0f} s |")
        nf = [(loo[r]["errors"]["no_fork"]["rmse"] ** 2, loo[r]["errors"]["no_fork"]["cells"]) for r in rhos]
        pooled_nf = float(np.sqrt(sum(a * b for a, b in nf) / sum(b for _, b in nf)))
        print(f"| pooled | {rmse(np.concatenate(pooled['simulator'])):.3f} | {rmse(np.concatenate(pooled['interpolation'])):.3f} | "
              f"{pooled_nf:.3f} | | | {cov_in / cov_n:.0%} ({cov_in}/{cov_n}) | | | |")
        ratio_all = seed_ratio(curves, m, (predictor.epochs[None, :, None] > 0) & ~np.isnan(meas))
        res_a = np.concatenate([residuals[q][0][residuals[q][1]] for q in rhos])
        pred_a = np.concatenate([loo[q]["predicted"][residuals[q][1]] for q in rhos])
        k_a = np.concatenate([kidx[residuals[q][1]] for q in rhos])
        lam_all = discrepancy(res_a, pred_a, k_a, m, len(seeds), ratio_all)
        print(f"\nnoise ratio r_k (all fitted cells) {np.round(ratio_all, 2).tolist()}; discrepancy lambda_k (all LOO residuals) "
              f"{np.round(lam_all, 4).tolist()} for k = {ks.tolist()}")
        cov_k = []
        for ki in range(ks.size):
            tot = sum(int(residuals[r][1][..., ki].sum()) for r in rhos)
            inside = 0
            for r in rhos:
                ratio, lam = intervals_loo[r]
                lo, hi, _ = interval(loo[r]["predicted"], kidx, m, len(seeds), ratio, lam, LEVEL)
                inside += int(np.sum(((meas[..., ki] >= lo[..., ki] - 1e-12)
                                      & (meas[..., ki] <= hi[..., ki] + 1e-12))[residuals[r][1][..., ki]]))
            cov_k.append(f"k={ks[ki]}: {inside / tot:.0%}")
        print("LOO coverage by k: " + ", ".join(cov_k))

    for name, label in (("two", "Two runs (rho 0, 1) predict the rest"), ("early", "Early epochs (<= 4) predict later ones (5-12)")):
        res = load(out, name)
        if res is None:
            continue
        e = res["errors"]
        base = "interpolation" if "interpolation" in e else "persistence"
        lk = res.get("large_k", {})
        print(f"\n## {label}\n")
        print(f"simulator RMSE {e['simulator']['rmse']:.3f} (max {e['simulator']['max']:.3f}); {base} {e[base]['rmse']:.3f} "
              f"(max {e[base]['max']:.3f}); no fork {e['no_fork']['rmse']:.3f}; "
              + (f"k 16, 32: sim {lk['simulator']['rmse']:.4f} / {base} {lk['baseline']['rmse']:.4f} / beta-binomial {lk['beta_binomial']['rmse']:.4f}; " if lk else "")
              + f"fit {res['fit']['values']}, at bound {res['fit']['at_bound']}, wall {res['wall']:.0f} s")
        if name == "two" and all(v is not None for v in loo.values()):
            # noise ratio on the fitted cells (rho 0, 1), discrepancy from the LOO residuals at rho 0 and 1
            # (cells of the edge arms only: no interior cell tunes its own interval)
            held3 = np.broadcast_to(res["held"][:, :, None], meas.shape)
            fitted = np.isin(arm_rho, (0.0, 1.0))[:, None, None] & (predictor.epochs[None, :, None] > 0) & ~np.isnan(meas)
            ratio = seed_ratio(curves, m, fitted)
            edges = [q for q in rhos if q in (0.0, 1.0)]
            lam = discrepancy(np.concatenate([residuals[q][0][residuals[q][1]] for q in edges]),
                              np.concatenate([loo[q]["predicted"][residuals[q][1]] for q in edges]),
                              np.concatenate([kidx[residuals[q][1]] for q in edges]), m, len(seeds), ratio)
            lo, hi, _ = interval(res["predicted"], kidx, m, len(seeds), ratio, lam, LEVEL)
            inside = int(np.sum(((meas >= lo - 1e-12) & (meas <= hi + 1e-12))[held3]))
            print(f"  90 % coverage (discrepancy from the rho 0 and 1 LOO residuals): {inside / held3.sum():.0%} "
                  f"({inside}/{int(held3.sum())})")
        if name == "two":
            held = res["held"]
            for a, (rho, div) in enumerate(predictor.arms):
                if held[a].any():
                    d_s = (res["predicted"][a] - meas[a])[held[a]]
                    d_b = (res["baseline"][a] - meas[a])[held[a]]
                    print(f"  rho {rho:g} {div}: simulator {rmse(d_s):.3f}, interpolation {rmse(d_b):.3f}")

    # --- the rho 0.9 run (seed 2), predicted by the full fit; the old prediction as committed
    if full is not None and committed:
        from markovfork.llm_bridge.config import load_config
        from markovfork.llm_bridge.task_mapping import experiment
        from markovfork.fit.heldout import bridge_predictor
        planned = experiment(load_config(PRED / "planned.toml"))
        pp = bridge_predictor(planned, counts, skill_per_mode=full["fit_result"].predictor.get("skill_per_mode", False))
        new = pp.converged_predict(full["fit_result"].values)[0]  # as markovfork predict
        mt = pl.read_parquet(PRED / "measured_results.parquet")
        y = mean_curves(mt, pp)[0]
        old_t = pl.read_parquet(PRED / "predicted.parquet").sort("epoch", "k")
        old_p = old_t["pass_at_k_post"].to_numpy().reshape(pp.epochs.size, ks.size)
        i75 = predictor.arms.index((0.75, "data")); i1 = predictor.arms.index((1.0, "data"))
        interp = 0.4 * meas[i75] + 0.6 * meas[i1]
        post = pp.epochs >= 1
        print("\n## rho 0.9 run (docs/examples/prediction, seed 2), epochs 1-12, k 1-32\n")
        print(f"old prediction RMSE {rmse((old_p - y)[post]):.3f}; new {rmse((new - y)[post]):.3f}; interpolation (0.75, 1) {rmse((interp - y)[post]):.3f}")
        for k in (1, 32):
            j = list(ks).index(k)
            print(f"  k={k}: old {rmse((old_p - y)[post, j]):.3f}, new {rmse((new - y)[post, j]):.3f}, interpolation {rmse((interp - y)[post, j]):.3f}")
        print(f"  epoch 12, pass@32: measured {y[-1, -1]:.3f}, old {old_p[-1, -1]:.3f}, new {new[-1, -1]:.3f}; "
              f"pass@1: measured {y[-1, 0]:.3f}, old {old_p[-1, 0]:.3f}, new {new[-1, 0]:.3f}")
        if lam_all is not None:
            k2 = np.broadcast_to(np.arange(ks.size), new.shape)
            lo, hi, _ = interval(new, k2, m, 1, ratio_all, lam_all, LEVEL)
            print(f"  90 % interval coverage (one seed): {coverage(y[post], lo[post], hi[post]):.0%} of {int(post.sum() * ks.size)} cells")

    # --- a third seed as test data
    if seed2 and committed and Path(seed2).exists() and all(v is not None for v in loo.values()):
        t2 = pl.read_parquet(seed2)
        y2 = mean_curves(t2, predictor)
        print(f"\n## Seed 2 of the sweep ({seed2}): test data, nothing refitted\n")
        print("| rho held out | LOO simulator (seeds 0-1) | LOO interpolation (seeds 0-1) | full fit | seeds 0-1 mean (replicate) | 90 % coverage (LOO) |")
        print("|---|---|---|---|---|---|")
        allsim, allint, allfull, allrep, cin, cn = [], [], [], [], 0, 0
        for r in rhos:
            held = np.broadcast_to(loo[r]["held"][:, :, None], meas.shape) & ~np.isnan(y2)
            ratio, lam = intervals_loo[r]
            lo, hi, _ = interval(loo[r]["predicted"], kidx, m, 1, ratio, lam, LEVEL)
            inside = int(np.sum(((y2 >= lo - 1e-12) & (y2 <= hi + 1e-12))[held]))
            cin += inside; cn += int(held.sum())
            ds, di = (loo[r]["predicted"] - y2)[held], (loo[r]["baseline"] - y2)[held]
            df = (full["predicted"] - y2)[held] if full is not None else np.array([np.nan])
            dr = (meas - y2)[held]
            allsim.append(ds); allint.append(di); allfull.append(df); allrep.append(dr)
            print(f"| rho {r:g} | {rmse(ds):.3f} | {rmse(di):.3f} | {rmse(df):.3f} | {rmse(dr):.3f} | {inside / held.sum():.0%} |")
        print(f"| pooled | {rmse(np.concatenate(allsim)):.3f} | {rmse(np.concatenate(allint)):.3f} | {rmse(np.concatenate(allfull)):.3f} | "
              f"{rmse(np.concatenate(allrep)):.3f} | {cin / cn:.0%} ({cin}/{cn}) |")
        print(f"seed 2 base pass@k {np.round(y2[0, 0], 3).tolist()}")

    if sft1000 and committed and full is not None and lam_all is not None:
        report_sft_size(sft1000, full, table, counts, predictor, meas, lam_all, ratio_all)


def report_sft_size(path: str, full: dict, table, counts, predictor, meas, lam, ratio) -> None:
    """A run with half the SFT set (docs/examples/bridge-sweep-sft1000.toml, seed 0), test data:
    predicted by the fit to the whole sweep (nothing refitted), against the sweep's own measured
    curve at the same rho (the set size ignored) and that curve plus the simulated effect of the
    set size (simulator at 1,000 minus at 2,000)."""
    from markovfork.fit.heldout import bridge_predictor, mean_curves
    from markovfork.fit.intervals import interval
    from markovfork.llm_bridge.fit_runs import experiment_from_table

    t3 = pl.read_parquet(path)
    p3 = bridge_predictor(experiment_from_table(t3, str(EX / "bridge-sweep-sft1000.toml")), counts,
                          skill_per_mode=full["fit_result"].predictor.get("skill_per_mode", False))
    values = full["fit_result"].values
    sim = p3.converged_predict(values)
    y = mean_curves(t3, p3)
    ks = predictor.ks
    post = p3.epochs >= 1
    m = int(t3["n_test"][0])
    print(f"\n## Half the SFT set ({path}, 1,000 trajectories, seed 0): test data, nothing refitted\n")
    print("| rho | simulator | sweep curve (2,000) | sweep curve + simulated size effect | 90 % coverage |")
    print("|---|---|---|---|---|")
    alls, allb, allc, cin, cn = [], [], [], 0, 0
    for a, arm in enumerate(p3.arms):
        j = predictor.arms.index(arm)
        corrected = meas[j] + sim[a] - full["predicted"][j]
        d_s, d_b, d_c = ((x - y[a])[post] for x in (sim[a], meas[j], corrected))
        k2 = np.broadcast_to(np.arange(ks.size), sim[a].shape)
        lo, hi, _ = interval(sim[a], k2, m, 1, ratio, lam, LEVEL)
        inside = int(np.sum(((y[a] >= lo - 1e-12) & (y[a] <= hi + 1e-12))[post]))
        cin += inside; cn += int(post.sum() * ks.size)
        alls.append(d_s); allb.append(d_b); allc.append(d_c)
        print(f"| {arm[0]:g} | {rmse(d_s):.3f} | {rmse(d_b):.3f} | {rmse(d_c):.3f} | {inside / (post.sum() * ks.size):.0%} |")
    print(f"| pooled | {rmse(np.concatenate(alls)):.3f} | {rmse(np.concatenate(allb)):.3f} | {rmse(np.concatenate(allc)):.3f} | "
          f"{cin / cn:.0%} ({cin}/{cn}) |")
    i1 = p3.arms.index((1.0, "data"))
    print(f"rho 1, epoch 12, pass@32: measured {y[i1, -1, -1]:.3f}, simulator {sim[i1, -1, -1]:.3f} "
          f"(2,000: simulator {full['predicted'][predictor.arms.index((1.0, 'data')), -1, -1]:.3f}, "
          f"measured {meas[predictor.arms.index((1.0, 'data')), -1, -1]:.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("fit", "report"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "fit-heldout"), help="cache of the fits (default runs/fit-heldout)")
    ap.add_argument("--only", nargs="*", default=["full", "loo", "two", "early"])
    ap.add_argument("--seed2", default=None, help="a third seed's results table (test data only)")
    ap.add_argument("--sft1000", default=None, help="the half-SFT-set run's results table (test data only)")
    ap.add_argument("--results", default=str(RESULTS), help="the sweep's results table (default: the committed sweep)")
    ap.add_argument("--counts", default=str(COUNTS), help="its per-problem counts")
    ap.add_argument("--config", default=str(CONFIG), help="its bridge configuration")
    ap.add_argument("--no-fork-observations", action="store_true", help="fit pass@k only (docs/fit.md, \"Fork observations\")")
    ap.add_argument("--skill", choices=("per-mode", "shared"), default="per-mode",
                    help="the predictor's decipherable-step skill (docs/fit.md, \"Fourth round\"); report needs the fit's")
    args = ap.parse_args()
    data = {"results": Path(args.results).resolve(), "counts": Path(args.counts).resolve(), "config": Path(args.config).resolve(),
            "skill_per_mode": args.skill == "per-mode"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.what == "fit":
        run_fits(out, args.only, data, fork_observations=not args.no_fork_observations)
    else:
        report(out, args.seed2, args.sft1000, data)


if __name__ == "__main__":
    main()
