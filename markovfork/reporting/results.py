"""The one tidy table schema shared by every engine (analytic, sampled, llm).

One row per (engine, rho, diversity, seed, epoch, k). ``epoch = 0`` rows describe the model
before post-training. Fork metrics describe the post-trained model at that epoch.
"""

from __future__ import annotations

__all__ = ["RESULT_COLUMNS", "results_frame"]

# column name -> polars dtype name (``RESULT_COLUMNS`` maps to the dtypes themselves; polars is
# imported on first use so that commands which never build a table start faster)
_COLUMN_TYPES: dict[str, str] = {
    "engine": "String",  # "analytic" | "sampled" | "llm"
    "rho": "Float64",  # fork prevalence: share of training trajectories through a decision point
    "diversity": "String",  # "data" | "problem" | "rationale" (how fork data was synthesised)
    "seed": "Int64",  # seed of the run
    "epoch": "Int64",  # epochs of post-training (0 = base model)
    "k": "Int64",  # the k of pass@k
    "pass_at_k_base": "Float64",  # pass@k of the base model (test problems)
    "pass_at_k_post": "Float64",  # pass@k of the post-trained model at this epoch (test problems)
    "shrinkage": "Float64",  # pass_at_k_base - pass_at_k_post
    "fork_accuracy": "Float64",  # probability the first fork decision is a correct branch
    "fork_confidence_correct": "Float64",  # mean probability of the branch taken at a fork, when right
    "fork_confidence_wrong": "Float64",  # mean probability of the branch taken at a fork, when wrong
    "fork_entropy": "Float64",  # mean entropy (nats) of the fork distribution
    "train_loss": "Float64",  # mean training cross-entropy per step at this epoch (nan at epoch 0)
}


def _result_columns() -> dict:
    import polars as pl

    return {col: getattr(pl, dtype) for col, dtype in _COLUMN_TYPES.items()}


def __getattr__(name: str):
    if name == "RESULT_COLUMNS":
        return _result_columns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def results_frame(rows: list[dict]) -> "pl.DataFrame":
    """Build the results table from row dicts: the schema's columns first, in order, with
    their dtypes; extra keys are kept as trailing columns. Missing schema columns are an error."""
    import polars as pl

    columns = _result_columns()
    if not rows:
        return pl.DataFrame(schema=columns)
    missing = [name for name in columns if name not in rows[0]]
    if missing:
        raise ValueError(f"result rows lack the columns {missing}")
    df = pl.DataFrame(rows, infer_schema_length=None)
    df = df.with_columns([pl.col(name).cast(dtype) for name, dtype in columns.items()])
    extra = [c for c in df.columns if c not in columns]
    return df.select(list(columns) + extra)
