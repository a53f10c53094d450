"""Per-problem success counts of a bridge run, as one table (no torch).

A run caches one evaluation per checkpoint in ``OUT/eval/``: ``base.json`` and
``{diversity}-rho{rho}-epoch{e:03d}.json``, each with the number of correct samples out of
``n_samples`` for every test problem and the model's arm probabilities at the fork. The results
table keeps only means over problems; fitting the *distribution* of per-problem success (and
the beta-binomial extrapolation) needs the counts themselves:

    one row per (seed, diversity, rho, epoch, problem): n_samples, correct, target_arm,
    q_target (the renormalised probability of the target arm at the fork).

Epoch 0 rows repeat the base model's evaluation for every (diversity, rho), as in the results
table.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["sft_settings", "run_name", "rho_label", "eval_file", "problem_counts"]


def rho_label(rho: float) -> str:
    """The prevalence as it appears in a run's folder names: 0, 0.25, 0.5, 1."""
    return f"{rho:.3f}".rstrip("0").rstrip(".") if rho not in (0.0, 1.0) else str(int(rho))


def run_name(diversity: str, rho: float) -> str:
    """Name of one SFT run of a bridge run (its folder under ``sft/``, its evaluation files)."""
    return f"{diversity}-rho{rho_label(rho)}"


def eval_file(run_dir: str | Path, name: str | None = None, epoch: int = 0) -> Path:
    """Where a run caches one checkpoint's evaluation: the base model's (no ``name``), or SFT run
    ``name`` (:func:`run_name`) after ``epoch``."""
    return Path(run_dir) / "eval" / ("base.json" if name is None else f"{name}-epoch{epoch:03d}.json")


def sft_settings(diversities, rhos) -> list[tuple[str, float]]:
    """The (diversity, rho) SFT runs of a bridge run, in order. Problem-level diversity at rho 0
    or 1 is the data-level mix itself, so it is skipped when data-level is also run."""
    return [(d, float(r)) for d in diversities for r in rhos
            if not (d == "problem" and r in (0.0, 1.0) and "data" in diversities)]


def _read(path: Path) -> dict:
    from markovfork.plumbing.io import read_json

    return read_json(path, "evaluation file")


def _rows(ev: dict, seed: int, diversity: str, rho: float, epoch: int) -> dict[str, list]:
    n_test = len(ev["correct"])
    targets = ev["target_arm"]
    return {
        "seed": [seed] * n_test,
        "diversity": [diversity] * n_test,
        "rho": [float(rho)] * n_test,
        "epoch": [epoch] * n_test,
        "problem": list(range(n_test)),
        "n_samples": [int(ev["n_samples"])] * n_test,
        "correct": [int(c) for c in ev["correct"]],
        "target_arm": [int(t) for t in targets],
        "q_target": [float(q[t]) for q, t in zip(ev["fork_probs"], targets)],
    }


def problem_counts(run_dir: str | Path) -> "pl.DataFrame":
    """The per-problem counts of every evaluated checkpoint of the run in ``run_dir`` (module
    docstring). Settings and epochs come from the run's ``config.json``; a missing evaluation
    file is an error naming it."""
    import polars as pl

    run_dir = Path(run_dir)
    cfg = _read(run_dir / "config.json")
    seed, sft, epochs = int(cfg["seed"]), cfg["sft"], sorted(set(cfg["eval"]["epochs"]))
    base = _read(eval_file(run_dir))
    parts = []
    for diversity, rho in sft_settings(sft["diversities"], sft["rhos"]):
        name = run_name(diversity, rho)
        parts.append(_rows(base, seed, diversity, rho, 0))
        for e in epochs:
            parts.append(_rows(_read(eval_file(run_dir, name, e)), seed, diversity, rho, e))
    columns = {key: [v for part in parts for v in part[key]] for key in parts[0]} if parts else {}
    schema = {"seed": pl.Int64, "diversity": pl.String, "rho": pl.Float64, "epoch": pl.Int64, "problem": pl.Int64,
              "n_samples": pl.Int64, "correct": pl.Int64, "target_arm": pl.Int64, "q_target": pl.Float64}
    return pl.DataFrame(columns, schema=schema)
