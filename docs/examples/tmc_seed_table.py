"""The TMC results table of docs/posttraining.md: the mean over seeds 0-4 for each engine and
reject-easy reference (markdown rows). Run: python docs/examples/tmc_seed_table.py"""
import polars as pl
from markovfork.experiments.tmc import run_tmc, TMCConfig, TMC_METHODS
for eng in ("analytic","sampled"):
    for ref in ("base","current"):
        t=pl.concat([run_tmc(TMCConfig(engine=eng, methods=TMC_METHODS, seed=s, reject_reference=ref)).table for s in range(5)])
        agg=t.group_by(["method","task"],maintain_order=True).agg(pl.col("pass_at_1").mean(), pl.col("pass_at_k").mean(), pl.col("easy_valid").mean(), pl.col("hard_valid").mean(), pl.col("invalid").mean())
        print(eng, ref)
        for m in agg["method"].unique(maintain_order=True):
            a=agg.filter(pl.col("method")==m)
            r1=a.filter(pl.col("task")==1).row(0,named=True); r2=a.filter(pl.col("task")==2).row(0,named=True)
            print(f"| {m} | {r1['pass_at_1']:.3f} | {r1['pass_at_k']:.3f} | {r2['pass_at_1']:.3f} | {r2['pass_at_k']:.3f} | {r1['easy_valid']:.3f} / {r1['hard_valid']:.3f} / {r1['invalid']:.3f} | {r2['easy_valid']:.3f} / {r2['hard_valid']:.3f} / {r2['invalid']:.3f} |")
