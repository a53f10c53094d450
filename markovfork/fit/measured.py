"""Measured pass@k curves as fit observations: a results table (``markovfork.reporting.results`` schema,
any engine) indexed against a predictor's (arm, epoch, k) grid, with binomial standard errors.

Each row is one observation: the mean over ``m`` test problems of a per-problem pass@k, whose
variance is at most p (1 - p) / m (a per-problem value in [0, 1] with mean p). The standard
error is that binomial bound at a shrunk estimate, so that a measured 0 or 1 keeps a finite
weight:

    se = sqrt(p~ (1 - p~) / m),   p~ = (p m + 1/2) / (m + 1).

Those weights favour values that fluctuated toward 0 or 1 (a measured 1.0 where the model
says 0.98 gets a third of the right standard error): :meth:`Measured.reweighted` recomputes the
standard errors at a prediction, which the fit uses for its second pass (``markovfork.fit.solve``).

Epoch-0 rows (the base model) repeat in every arm of a run; one per (seed, k) is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["Measured", "measured_curves", "binomial_se", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("engine", "rho", "diversity", "seed", "epoch", "k", "pass_at_k_post")


def binomial_se(p, m) -> np.ndarray:
    """Standard error of a mean of ``m`` per-problem pass@k values with mean ``p`` (module docstring)."""
    p, m = np.asarray(p, dtype=np.float64), np.asarray(m, dtype=np.float64)
    shrunk = (p * m + 0.5) / (m + 1.0)
    return np.sqrt(shrunk * (1.0 - shrunk) / m)


@dataclass(frozen=True, eq=False)
class Measured:
    """Observations on a (arm, epoch, k) grid: ``value[i]`` is measured at
    ``(arm[i], epoch[i], k[i])`` (indices into the predictor's arms, epochs and ks)."""

    arm: np.ndarray
    epoch: np.ndarray
    k: np.ndarray
    value: np.ndarray
    se: np.ndarray
    n_test: np.ndarray  # test problems behind each value
    fingerprint: str  # sha256 of the observations (their keys, values and test-problem counts)
    engines: tuple[str, ...]
    table: object = field(repr=False)  # the polars rows used

    def __len__(self) -> int:
        return int(self.value.size)

    def reweighted(self, predicted: np.ndarray) -> "Measured":
        """The same observations with standard errors at the *predicted* pass@k (shrunk as in
        :func:`binomial_se`): a value that fluctuated to 0 or 1 no longer gets the tiny standard
        error of its own p, and with it a weight that pulls the fit toward the noise."""
        return replace(self, se=binomial_se(predicted[self.arm, self.epoch, self.k], self.n_test))

    def residuals(self, predicted: np.ndarray) -> np.ndarray:
        """(predicted - measured) / se for every observation; ``predicted`` is (arms, epochs, ks)."""
        return (predicted[self.arm, self.epoch, self.k] - self.value) / self.se


def read_table(path) -> "pl.DataFrame":
    """A results table from a Parquet file (suffix ``.parquet``) or a CSV file (any other)."""
    import polars as pl

    path = str(path)
    return pl.read_parquet(path) if path.endswith(".parquet") else pl.read_csv(path)


def _fingerprint(table) -> str:
    h = hashlib.sha256()
    for row in table.iter_rows():
        h.update(("|".join(repr(v) for v in row) + "\n").encode())
    return h.hexdigest()


def measured_curves(table, arms, epochs, ks, *, engine: str | None = None, n_test: int | None = None) -> Measured:
    """The observations of ``table`` (a polars DataFrame, or a path to a Parquet or CSV file in
    the results schema) on the grid ``arms`` [(rho, diversity)], ``epochs``, ``ks``.

    ``engine`` keeps only that engine's rows (required when the table mixes engines). The test
    problems per row come from an ``n_test`` column or the ``n_test`` argument. A row off the
    grid, a missing column or an empty selection is a ``ValueError``."""
    import polars as pl

    if not isinstance(table, pl.DataFrame):
        table = read_table(table)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the results table lacks the columns {missing}")
    if engine is not None:
        table = table.filter(pl.col("engine") == engine)
    engines = tuple(sorted(set(table["engine"].to_list())))
    if len(engines) > 1:
        raise ValueError(f"the results table mixes engines {list(engines)}: choose one with engine=")
    if n_test is None:
        if "n_test" not in table.columns:
            raise ValueError("the results table has no n_test column: pass n_test= (test problems per row)")
        counts = table["n_test"]
    else:
        counts = pl.Series("n_test", [n_test] * table.height, dtype=pl.Int64)
    table = table.select(*REQUIRED_COLUMNS).with_columns(counts.cast(pl.Int64).alias("n_test"))
    if table.height == 0:
        raise ValueError(f"the results table has no rows{'' if engine is None else f' of engine {engine!r}'}")
    table = table.sort(table.columns)  # one order for any row order (the fingerprint and the base row kept)
    base = table.filter(pl.col("epoch") == 0).unique(subset=["seed", "k"], keep="first", maintain_order=True)
    table = pl.concat([base, table.filter(pl.col("epoch") != 0)])

    arm_of = {(float(r), d): i for i, (r, d) in enumerate(arms)}
    epoch_of = {int(e): i for i, e in enumerate(epochs)}
    k_of = {int(k): i for i, k in enumerate(ks)}
    idx = np.empty((table.height, 3), dtype=np.int64)
    for i, (rho, div, ep, k) in enumerate(table.select("rho", "diversity", "epoch", "k").iter_rows()):
        a = 0 if ep == 0 else arm_of.get((float(rho), div))
        if a is None or ep not in epoch_of or k not in k_of:
            raise ValueError(f"measured row off the predicted grid: rho {rho}, diversity {div!r}, epoch {ep}, k {k}")
        idx[i] = a, epoch_of[ep], k_of[k]
    value = table["pass_at_k_post"].to_numpy().astype(np.float64)
    m = table["n_test"].to_numpy()
    if not (np.all(np.isfinite(value)) and np.all((value >= 0) & (value <= 1))):
        raise ValueError("pass_at_k_post must be finite and in [0, 1] in every measured row")
    if np.any(m < 1):
        raise ValueError(f"n_test must be >= 1 in every measured row, got {int(m.min())}")
    return Measured(idx[:, 0], idx[:, 1], idx[:, 2], value, binomial_se(value, m), m.astype(np.int64), _fingerprint(table),
                    engines, table)
