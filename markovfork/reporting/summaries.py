"""One-row-per-run summaries of results tables, as the command line prints them."""

from __future__ import annotations

import polars as pl


def sweep_summary(table: pl.DataFrame) -> pl.DataFrame:
    """One row per SFT run of a sweep: the last epoch at the largest k, with pass@1 (smallest k)."""
    keys = ["engine", "rho", "diversity", "lr", "epochs", "seed"] + (["temperature"] if "temperature" in table.columns else [])
    last = table.filter(
        (pl.col("k") == pl.col("k").max()) & (pl.col("epoch") == pl.col("epoch").max().over(keys))
    )
    first = table.filter(pl.col("k") == pl.col("k").min()).filter(pl.col("epoch") == pl.col("epoch").max().over(keys))
    return (
        last.select(*keys, "k", "decision_points", "pass_at_k_base", "pass_at_k_post", "shrinkage",
                    "fork_confidence_correct", "fork_confidence_wrong")
        .join(first.select(*keys, pl.col("pass_at_k_base").alias("pass1_base"), pl.col("pass_at_k_post").alias("pass1_post")),
              on=keys, how="left", maintain_order="left")
    )


def posttrain_summary(table: pl.DataFrame) -> pl.DataFrame:
    """One row per post-training run: pass@1 and pass@k_max of base, start and the last RL snapshot."""
    from markovfork.experiments.posttrain import RUN_KEYS, at_end_of_rl

    keys = list(RUN_KEYS)
    k_max = table["k"].max()
    t = at_end_of_rl(table)
    out = None
    for stage in ("base", "start", "rl"):
        s = t.filter(pl.col("stage") == stage)
        one = s.filter(pl.col("k") == 1).select(*keys, pl.col("pass_at_k").alias(f"pass1_{stage}"))
        big = s.filter(pl.col("k") == k_max).select(*keys, pl.col("pass_at_k").alias(f"passk_{stage}"))
        both = one.join(big, on=keys)
        out = both if out is None else out.join(both, on=keys)
    return out.with_columns(pl.lit(int(k_max)).alias("k")).sort(keys)
