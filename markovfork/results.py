"""The one tidy table schema shared by every engine (analytic, sampled, llm).

One row per (engine, rho, diversity, seed, epoch, k). ``epoch = 0`` rows describe the model
before post-training. Fork metrics describe the post-trained model at that epoch.
"""

from __future__ import annotations

import polars as pl

__all__ = ["RESULT_COLUMNS", "results_frame"]

RESULT_COLUMNS: dict[str, pl.DataType] = {
    "engine": pl.String,  # "analytic" | "sampled" | "llm"
    "rho": pl.Float64,  # fork prevalence: share of training trajectories through a decision point
    "diversity": pl.String,  # "data" | "problem" | "rationale" (how fork data was synthesised)
    "seed": pl.Int64,  # seed of the run
    "epoch": pl.Int64,  # epochs of post-training (0 = base model)
    "k": pl.Int64,  # the k of pass@k
    "pass_at_k_base": pl.Float64,  # pass@k of the base model (test problems)
    "pass_at_k_post": pl.Float64,  # pass@k of the post-trained model at this epoch (test problems)
    "shrinkage": pl.Float64,  # pass_at_k_base - pass_at_k_post
    "fork_accuracy": pl.Float64,  # probability the first fork decision is a correct branch
    "fork_confidence_correct": pl.Float64,  # mean max-probability at forks, chosen branch correct
    "fork_confidence_wrong": pl.Float64,  # mean max-probability at forks, chosen branch wrong
    "fork_entropy": pl.Float64,  # mean entropy (nats) of the fork distribution
    "train_loss": pl.Float64,  # mean training cross-entropy per step at this epoch (nan at epoch 0)
}


def results_frame(rows: list[dict]) -> pl.DataFrame:
    """Build the results table from row dicts: the schema's columns first, in order, with
    their dtypes; extra keys are kept as trailing columns. Missing schema columns are an error."""
    if not rows:
        return pl.DataFrame(schema=RESULT_COLUMNS)
    missing = [name for name in RESULT_COLUMNS if name not in rows[0]]
    if missing:
        raise ValueError(f"result rows lack the columns {missing}")
    df = pl.DataFrame(rows, infer_schema_length=None)
    df = df.with_columns([pl.col(name).cast(dtype) for name, dtype in RESULT_COLUMNS.items()])
    extra = [c for c in df.columns if c not in RESULT_COLUMNS]
    return df.select(list(RESULT_COLUMNS) + extra)
