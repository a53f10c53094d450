"""Collect the backtracking measurement (docs/bridge.md, "Branch-heavy trajectories") into
docs/examples/backtrack/results.{csv,json}: one row per SFT run and evaluated epoch, plus the
epoch-12 rows at the tight budget (``bridge eval --max-new-tokens 11``) when present.

    python docs/examples/backtrack/collect.py runs/backtrack-convergent runs/backtrack-branch runs/backtrack-branch-filter
"""

import json
import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).parent
KEEP = ["run", "budget", "branch_rate", "filter_share", "train_examples", "train_branch_share", "train_response_words",
        "epoch", "train_loss", "response_words", "backtrack_share", "sampled_fork_accuracy", "fork_accuracy"]


def wide(t: pl.DataFrame, run: str, budget: int, train: dict | None = None) -> pl.DataFrame:
    """One row per epoch: the columns above and pass@k for every k."""
    t = t.with_columns(pl.lit(run).alias("run"), pl.lit(budget).alias("budget"))
    if train:
        t = t.with_columns([pl.lit(v).alias(k) for k, v in train.items()])
    if run == "base":  # no SFT data
        t = t.drop([c for c in KEEP[2:7] if c in t.columns])
    p = t.pivot(on="k", index="epoch", values="pass_at_k_post").rename(lambda c: c if c == "epoch" else f"pass@{c}")
    return t.select([c for c in KEEP if c in t.columns]).unique("epoch", keep="first").join(p, on="epoch").sort("epoch")


def main(dirs: list[str]) -> None:
    frames = []
    for d in map(Path, dirs):
        run = d.name.removeprefix("backtrack-")
        cfg = json.loads((d / "config.json").read_text())
        t = pl.read_csv(d / "bridge_results.csv").filter(pl.col("epoch") > 0)
        frames.append(wide(t, run, cfg["eval"]["sampling"]["max_new_tokens"]))
        base = pl.read_csv(d / "bridge_results.csv").filter(pl.col("epoch") == 0).with_columns(
            pl.col("pass_at_k_base").alias("pass_at_k_post"))
        if run == "convergent":
            frames.insert(0, wide(base, "base", cfg["eval"]["sampling"]["max_new_tokens"]))
        tight = d / "eval-budget11" / "eval_results.csv"
        if tight.is_file():
            train = {k: t[k][0] for k in ("branch_rate", "filter_share", "train_examples", "train_branch_share",
                                          "train_response_words")}
            e = pl.read_csv(tight)
            frames.append(wide(e, run, 11, train).with_columns(pl.col("train_loss").fill_nan(None)))
            if run == "convergent":
                b = e.with_columns(pl.col("pass_at_k_base").alias("pass_at_k_post"), pl.lit(0).alias("epoch"))
                frames.insert(1, wide(b, "base", 11))
    table = pl.concat(frames, how="diagonal_relaxed")
    table.write_csv(HERE / "results.csv", float_precision=4)
    (HERE / "results.json").write_text(json.dumps(table.to_dicts(), indent=1) + "\n")
    with pl.Config(tbl_rows=100, tbl_cols=30, tbl_width_chars=250):
        print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
