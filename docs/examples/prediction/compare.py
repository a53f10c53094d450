"""Predicted vs measured pass@k of the planned run (docs/examples/prediction): the table, RMSE and
count-histogram distances of docs/fit.md and predicted_vs_measured.png.

    python docs/examples/prediction/compare.py docs/examples/prediction/measured_results.parquet \
        docs/examples/prediction/predicted_vs_measured.png
"""
import os, sys
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np, polars as pl
from markovfork.plumbing.io import save_figure
from markovfork.fit.measured import binomial_se

measured_path, fig_path = sys.argv[1], sys.argv[2]
D = "docs/examples/prediction/"
pred = pl.read_parquet(D + "predicted.parquet").select("epoch", "k", pl.col("pass_at_k_post").alias("pred"),
                                                         pl.col("pass_at_k_post_sd").alias("sd"))
meas = pl.read_parquet(measured_path).filter(pl.col("rho") == 0.9).select(
    "epoch", "k", pl.col("pass_at_k_post").alias("meas"), "n_test")
sweep = pl.read_parquet("docs/examples/bridge_sweep_results.parquet").filter(pl.col("diversity") == "data")
def at(rho):
    return sweep.filter(pl.col("rho") == rho).group_by("epoch", "k").agg(pl.col("pass_at_k_post").mean().alias(f"r{rho}"))
interp = at(0.75).join(at(1.0), on=["epoch", "k"]).with_columns(
    interp=(0.4 * pl.col("r0.75") + 0.6 * pl.col("r1.0"))).select("epoch", "k", "interp")
t = pred.join(meas, on=["epoch", "k"]).join(interp, on=["epoch", "k"]).sort("epoch", "k")
m = t["n_test"][0]
t = t.with_columns(se=pl.Series(binomial_se(t["meas"].to_numpy(), m)))
print("| epoch | k | predicted | measured | interpolated (rho 0.75, 1) |")
print("|---:|---:|---:|---:|---:|")
for r in t.filter(pl.col("epoch").is_in([0, 1, 4, 12]) & pl.col("k").is_in([1, 4, 32])).iter_rows(named=True):
    print(f"| {r['epoch']} | {r['k']} | {r['pred']:.3f} ± {r['sd']:.3f} | {r['meas']:.3f} ± {r['se']:.3f} | {r['interp']:.3f} |")
post = t.filter(pl.col("epoch") >= 1)
for name in ("pred", "interp"):
    err = (post[name] - post["meas"]).to_numpy()
    print(f"{name}: RMSE {np.sqrt(np.mean(err**2)):.3f}, max |err| {np.abs(err).max():.3f}, mean err {err.mean():+.3f} "
          f"over {err.size} values (epochs 1-12, k 1-32)")
    for k in (1, 32):
        e = (post.filter(pl.col("k") == k)[name] - post.filter(pl.col("k") == k)["meas"]).to_numpy()
        print(f"   k={k}: RMSE {np.sqrt(np.mean(e**2)):.3f}, mean err {e.mean():+.3f}")
base = t.filter(pl.col("epoch") == 0)
print("epoch 0:", [(k, round(p, 3), round(x, 3)) for k, p, x in zip(base["k"], base["pred"], base["meas"])])

# per-problem success counts: predicted vs measured histograms (n = 32 samples)
from markovfork.fit import histogram_distance, measured_histogram, predicted_histogram
from markovfork.fit.planned import read_fit
from markovfork.fit.predict import CurvePredictor
from markovfork.llm_bridge.config import load_config
fit = read_fit(D + "fit.json")
planned = load_config(D + "planned.toml")
predictor = CurvePredictor(planned, fixed=fit.fixed, **fit.predictor)
success = predictor.success(fit.values)[0]  # (epochs, problems)
counts = pl.read_parquet(D + "measured_counts.parquet")
n = int(counts["n_samples"][0])
for i, e in enumerate(predictor.epochs.tolist()):
    if e in (0, 1, 4, 12):
        h = measured_histogram(counts.filter(pl.col("epoch") == e)["correct"].to_numpy(), n)
        g = predicted_histogram(success[i][~np.isnan(success[i])], n)
        d = histogram_distance(h, g)
        print(f"counts epoch {e}: " + ", ".join(f"{k} {v:.3f}" for k, v in d.items())
              + f"; unsolved (0 of {n}) measured {h[0]:.3f} predicted {g[0]:.3f}")

from matplotlib.figure import Figure
fig = Figure(figsize=(9, 3.4), layout="constrained")
axes = fig.subplots(1, 3, sharey=True)
for ax, e in zip(axes, (1, 4, 12)):
    r = t.filter(pl.col("epoch") == e)
    k = r["k"].to_numpy()
    ax.plot(k, r["pred"], "-", color="C0", label="predicted (before the run)")
    ax.fill_between(k, r["pred"] - 2 * r["sd"], r["pred"] + 2 * r["sd"], color="C0", alpha=0.25, lw=0)
    ax.errorbar(k, r["meas"], yerr=2 * r["se"].to_numpy(), fmt="o", color="black", ms=4, label="measured (±2 se)")
    ax.plot(k, r["interp"], "--", color="C1", label="interpolated rho 0.75/1")
    b = t.filter(pl.col("epoch") == 0)
    ax.plot(b["k"], b["meas"], ":", color="grey", label="base (measured)")
    ax.set_xscale("log", base=2); ax.set_xlabel("k"); ax.set_title(f"epoch {e}"); ax.grid(alpha=0.3)
axes[0].set_ylabel("pass@k (200 test problems)"); axes[0].set_ylim(0.3, 1.02)
axes[0].legend(fontsize=7, loc="lower right")
fig.suptitle("bridge run rho = 0.9, data-level, seed 2: predicted vs measured", fontsize=10)
save_figure(fig, fig_path, dpi=90)
