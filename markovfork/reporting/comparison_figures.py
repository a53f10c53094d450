"""Figures of the post-training comparisons: the TMC experiment (``markovfork tmc``), RL after
SFT (``markovfork posttrain``), branch-heavy data (``markovfork branching``) and the mitigations
side by side (``markovfork mitigations``). Same conventions and helpers as
:mod:`markovfork.reporting.figures`: each function takes the command's table and returns a Figure."""

from __future__ import annotations

import numpy as np
import polars as pl

from markovfork.reporting.figures import _check, _colors, _epoch_axis, _label, _new_figure, _pass_at_k_axes, _seed_mean

__all__ = ["tmc_pass_at_k_figure", "tmc_paths_figure", "posttrain_pass_at_k_figure", "branching_figure",
           "mitigations_figure"]


# ----------------------------------------------------------------------------- TMC experiment
TMC_COLUMNS = ("method", "task", "k", "pass_at_1", "pass_at_k", "easy_valid", "hard_valid", "invalid")


def _tmc_table(table: pl.DataFrame) -> tuple[list[str], list[int]]:
    """The methods (in table order) and tasks of a TMC table (``run_tmc(...).table``), checked."""
    _check(table)
    missing = [c for c in TMC_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the TMC table lacks the columns {missing}")
    methods = table["method"].unique(maintain_order=True).to_list()
    tasks = table["task"].unique().sort().to_list()
    if table.height != len(methods) * len(tasks) or table.select("method", "task").is_duplicated().any():
        raise ValueError(f"the TMC table must hold one row per (method, task), got {table.height} rows for "
                         f"{len(methods)} methods and {len(tasks)} tasks")
    return methods, tasks


def _tmc_value(table: pl.DataFrame, methods, task: int, column: str) -> np.ndarray:
    """``column`` of ``task`` for each method, in the order of ``methods``."""
    rows = table.filter(pl.col("task") == task)
    value = dict(zip(rows["method"].to_list(), rows[column].to_list()))
    return np.array([value[m] for m in methods], dtype=np.float64)


def _method_axis(ax, methods) -> None:
    """Methods along x; shares in [0, 1] along y, with room above for the legend."""
    ax.set_xticks(np.arange(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.grid(axis="x", visible=False)


def tmc_pass_at_k_figure(table: pl.DataFrame):
    """pass@K per method of the TMC experiment: grouped bars, one per task (the i-th task in
    colour Ci), with pass@1 of the same policy and task as a white dot on each bar."""
    methods, tasks = _tmc_table(table)
    k = int(table["k"].max())
    fig, ax = _new_figure(f"TMC: pass@{k} (bars) and pass@1 (dots) per method")
    x = np.arange(len(methods))
    width = 0.8 / len(tasks)
    for i, task in enumerate(tasks):
        at = x + (i - (len(tasks) - 1) / 2) * width
        color = f"C{i % 10}"
        ax.bar(at, _tmc_value(table, methods, task, "pass_at_k"), width, color=color, label=f"task {task} pass@{k}")
        ax.plot(at, _tmc_value(table, methods, task, "pass_at_1"), linestyle="none", marker="o", ms=5, mfc="white",
                mec="black", mew=0.8, zorder=3, label="pass@1" if i == 0 else "_pass@1")
    _method_axis(ax, methods)
    ax.set_ylabel("share of instances solved")
    ax.legend(fontsize=7, ncol=len(tasks) + 1, loc="upper center")
    return fig


TMC_PATH_TYPES = (("easy_valid", "easy valid", "C2"), ("hard_valid", "hard valid", "C1"), ("invalid", "invalid", "C7"))


def tmc_paths_figure(table: pl.DataFrame):
    """Path-type shares per method of the TMC experiment, one panel per task: stacked bars of
    the easy-valid, hard-valid and invalid shares of the policy's paths (they sum to 1)."""
    methods, tasks = _tmc_table(table)
    fig, axes = _new_figure([f"task {t}: where the policy's paths go" for t in tasks])
    x = np.arange(len(methods))
    for ax, task in zip(axes, tasks):
        bottom = np.zeros(len(methods))
        for column, label, color in TMC_PATH_TYPES:
            share = _tmc_value(table, methods, task, column)
            ax.bar(x, share, 0.7, bottom=bottom, color=color, label=label)
            bottom = bottom + share
        _method_axis(ax, methods)
    axes[0].set_ylabel("share of paths")
    axes[-1].legend(fontsize=7, ncol=3, loc="upper center")
    return fig


def posttrain_pass_at_k_figure(table: pl.DataFrame):
    """``markovfork posttrain``: pass@k against k for the base, the start of RL (the SFT model)
    and each run's last RL snapshot (runs: method, kl, reject_easy; seeds averaged)."""
    _check(table)
    keys = [c for c in ("method", "kl", "reject_easy") if table[c].n_unique() > 1] or ["method"]
    from markovfork.experiments.posttrain import at_end_of_rl

    rl = at_end_of_rl(table).filter(pl.col("stage") == "rl")
    start = table["start"][0]
    fig, ax = _new_figure(f"RL after {'SFT' if start == 'sft' else 'the base'}: pass@k")
    for stage, style in (("base", dict(color="0.5", ls="--")), ("start", dict(color="0.2", ls=":"))):
        if stage == "start" and start != "sft":
            continue
        s = _seed_mean(table.filter(pl.col("stage") == stage), ["k"], ["pass_at_k"])
        ax.plot(s["k"], s["pass_at_k"], marker="o", ms=3, label="SFT (start of RL)" if stage == "start" else "base", **style)
    runs = _seed_mean(rl, [*keys, "k"], ["pass_at_k"])
    groups = runs.partition_by(keys, maintain_order=True)
    for color, run in zip(_colors(len(groups)), groups):
        ax.plot(run["k"], run["pass_at_k"], marker="o", ms=3, color=color, label="RL " + _label(run.row(0, named=True), keys))
    _pass_at_k_axes(ax)
    return fig


def branching_figure(table: pl.DataFrame):
    """``markovfork branching``: training loss per token and success within the budget against
    the epoch, one line per (teacher, filtered share)."""
    _check(table)
    budget = int(table["budget"][0])
    fig, (loss_ax, ok_ax) = _new_figure(["SFT loss per token", f"success within {budget} tokens"])
    runs = table.partition_by(["teacher", "filtered_share"], maintain_order=True)
    for color, run in zip(_colors(len(runs)), runs):
        share = run["filtered_share"][0]
        label = run["teacher"][0] + (f", {share:.0%} most-branching dropped" if share > 0 else "")
        run = _seed_mean(run, ["epoch"], ["train_loss", "success"])
        loss_ax.plot(run["epoch"], run["train_loss"], "-o", ms=3, color=color, label=label)
        ok_ax.plot(run["epoch"], run["success"], "-o", ms=3, color=color, label=label)
    for ax in (loss_ax, ok_ax):
        _epoch_axis(ax)
    ok_ax.set_ylim(0, 1.02)
    ok_ax.legend(fontsize=8)
    return fig


def mitigations_figure(table: pl.DataFrame):
    """``markovfork mitigations``: pass@k against k, one panel per group (decoding, data,
    filtering), one line per mitigation; the reference rows (base model, plain SFT) in grey."""
    _check(table)
    groups = list(dict.fromkeys(table["group"]))
    rho = table["rho"][0]
    titles = {"decoding": f"decoding the SFT model (rho={rho:g})", "data": f"data mitigations (rho={rho:g})",
              "filtering": f"branch-heavy data, {table['budget'][0]}-token budget"}
    fig, axes = _new_figure([titles.get(g, g) for g in groups])
    axes = axes if isinstance(axes, tuple) else (axes,)
    reference = table.filter(pl.col("group") == "decoding").filter(
        pl.col("mitigation").is_in(["base model", f"SFT rho={rho:g}"]))
    for ax, group in zip(axes, groups):
        part = table.filter(pl.col("group") == group)
        if group == "data":  # the runs the data mitigations change, for comparison
            part = pl.concat([reference, part])
        names = list(dict.fromkeys(part["mitigation"]))
        for color, name in zip(_colors(len(names)), names):
            line = part.filter(pl.col("mitigation") == name).sort("k")
            grey = name == "base model" or name.startswith("SFT rho=")
            ax.plot(line["k"], line["pass_at_k"], marker="o", ms=3, label=name,
                    **({"color": "0.5", "ls": "--"} if grey else {"color": color, "ls": "-"}))
        _pass_at_k_axes(ax)
    return fig
