"""The bridge side of the fit: a results table or a planned run as an
:class:`~markovfork.fit.experiment.Experiment`, and what a fit covers.

The fit (:mod:`markovfork.fit`) takes simulator configurations only; this module holds what
needs a bridge :class:`~markovfork.llm_bridge.config.RunConfig`:

* :func:`run_from_table` / :func:`experiment_from_table`: the run a results table describes
  (``markovfork fit``);
* :func:`fitted_run`, :func:`coverage_problems`, :func:`predict_run`: a planned run checked
  against the run a fit was made on, then predicted (``markovfork predict``). Outside the fit:
  any difference in ``[task]``, ``[model]``, ``[base]``, the SFT settings other than rhos,
  diversities and epochs, and ``[eval.sampling]``; a rho outside the fitted range; SFT epochs
  beyond the fitted ones; a diversity the fit never saw. Free: the seed, threads and device,
  ``eval.epochs``, ``eval.ks``, ``n_samples`` and ``n_test``.

This module imports no torch.
"""

from __future__ import annotations

import dataclasses

from markovfork.fit.planned import Prediction, predict_planned
from markovfork.fit.solve import FitResult
from markovfork.llm_bridge.config import RunConfig, config_from_dict, load_config
from markovfork.llm_bridge.task_mapping import experiment, sft_arms
from markovfork.plumbing import checks

__all__ = ["TASK_COLUMNS", "run_from_table", "experiment_from_table", "fitted_run", "coverage_problems", "predict_run"]

TASK_COLUMNS = ("engine", "arms", "depth", "fork_format", "answer", "n_samples", "n_test")  # one value per table
FREE_SFT = {"rhos", "diversities", "epochs"}  # checked separately (range, seen diversities, epochs)
FREE_EVAL = {"epochs", "n_samples", "n_test"}  # ks follow n_samples


def run_from_table(table, config: str | None = None) -> RunConfig:
    """The bridge RunConfig a results table describes: ``config`` (a TOML file, or the CPU
    default) with the task (arms, depth, fork format, answer), the SFT arms, the evaluated epochs
    and the evaluation size taken from the table. A table that mixes task settings is refused."""
    for col in TASK_COLUMNS:
        if col in table.columns:
            values = table[col].unique().drop_nulls().to_list()
            if len(values) > 1:
                raise ValueError(f"the results mix task settings: {col} takes the values {sorted(values)} (fit one setting at a time)")
    run = load_config(config)
    first = table.row(0, named=True)
    task = dataclasses.replace(run.task, arms=int(first["arms"]), depth=int(first["depth"]),
                               **({"answer": first["answer"]} if first.get("answer") else {}))
    sft_rows = table.filter(table["epoch"] > 0)
    if sft_rows.height == 0:
        raise ValueError("the results have no SFT rows (epoch >= 1) to fit")
    epochs = sorted(int(e) for e in sft_rows["epoch"].unique())
    sft = dataclasses.replace(run.sft, rhos=sorted(float(r) for r in sft_rows["rho"].unique()),
                              diversities=sorted(sft_rows["diversity"].unique().to_list()),
                              epochs=max(epochs), **({"fork_format": first["fork_format"]} if first.get("fork_format") else {}))
    ev = dataclasses.replace(run.eval, epochs=epochs, n_samples=int(first["n_samples"]), n_test=int(first["n_test"]),
                             batch_sequences=max(run.eval.batch_sequences, int(first["n_samples"])))
    return dataclasses.replace(run, task=task, sft=sft, eval=ev)


def experiment_from_table(table, config: str | None = None):
    """:func:`run_from_table` mapped onto the simulator (what ``fit_and_predict`` takes)."""
    return experiment(run_from_table(table, config))


def fitted_run(fit: FitResult) -> RunConfig:
    """The bridge RunConfig the fit was made on."""
    try:
        return config_from_dict(fit.run_config)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the fit's run_config is not a valid bridge configuration: {exc}") from None


def _differences(a: dict, b: dict, prefix: str, skip=()) -> list[str]:
    return [f"{prefix}{k} = {b.get(k)!r} (fitted: {a.get(k)!r})"
            for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k)]


def coverage_problems(fit: FitResult, planned: RunConfig) -> list[str]:
    """The settings of ``planned`` outside what ``fit`` covers, one string each (empty: the
    prediction is an interpolation of the fitted run)."""
    fitted = fitted_run(fit)
    a, b = fitted.to_dict(), planned.to_dict()
    problems = []
    for section in ("task", "model", "base"):
        problems += _differences(a[section], b[section], f"[{section}] ")
    problems += _differences(a["sft"], b["sft"], "[sft] ", skip=FREE_SFT)
    problems += _differences(a["eval"], b["eval"], "[eval] ", skip=FREE_EVAL | {"sampling"})
    problems += _differences(a["eval"]["sampling"], b["eval"]["sampling"], "[eval.sampling] ")
    grid = fitted_grid(fit)
    low, high = min(grid["rhos"]), max(grid["rhos"])
    for rho, div in sft_arms(planned):
        if not low <= rho <= high:
            problems.append(f"rho {rho:g} outside the fitted range [{low:g}, {high:g}]")
        if div not in grid["diversities"]:
            problems.append(f"diversity {div!r} (fitted: {grid['diversities']})")
    if planned.sft.epochs > fitted.sft.epochs:
        problems.append(f"[sft] epochs = {planned.sft.epochs} beyond the fitted {fitted.sft.epochs}")
    last = max(grid["epochs"])
    beyond = [e for e in planned.eval.epochs if e > last]
    if beyond:
        problems.append(f"[eval] epoch {beyond[0]} beyond the last fitted epoch {last}")
    if max(planned.eval.ks) > max(grid["ks"]):
        problems.append(f"k {max(planned.eval.ks)} (n_samples {planned.eval.n_samples}) beyond the largest fitted k "
                        f"{max(grid['ks'])}")
    return problems


def fitted_grid(fit: FitResult) -> dict:
    """The rhos, diversities, epochs and ks the fit was made on (``FitResult.fitted``; a fit file
    written before that record existed: its run configuration's whole grid)."""
    if fit.fitted:
        return fit.fitted
    run = fitted_run(fit)
    arms = sft_arms(run)
    return {"rhos": sorted({r for r, _ in arms}), "diversities": sorted({d for _, d in arms}),
            "epochs": sorted({0, *run.eval.epochs}), "ks": list(run.eval.ks)}


def _repeats(planned: RunConfig) -> list[str]:
    """The lists of ``planned`` that name a value twice (each would be predicted twice)."""
    out = []
    for name, values in (("[sft] rhos", planned.sft.rhos), ("[sft] diversities", planned.sft.diversities),
                         ("[eval] epochs", planned.eval.epochs)):
        dup = checks.first_repeat(values)
        if dup is not None:
            out.append(f"{name} = {list(values)} repeats {dup}")
    return out


def predict_run(fit: FitResult, planned: RunConfig, *, uncertainty: bool = True) -> Prediction:
    """:func:`markovfork.fit.planned.predict_planned` of the bridge run ``planned``; a ValueError
    names every setting outside what the fit covers (:func:`coverage_problems`) and every list
    of ``planned`` that repeats a value."""
    repeated = _repeats(planned)
    if repeated:
        raise ValueError("the planned run's lists must not repeat a value: " + "; ".join(repeated))
    problems = coverage_problems(fit, planned)
    if problems:
        raise ValueError("the planned run is outside what the fit covers: " + "; ".join(problems))
    return predict_planned(fit, experiment(planned), uncertainty=uncertainty)
