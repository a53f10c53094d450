"""Every figure of the results table (``markovfork.results`` schema), for every engine: the
simulator's ``simulate`` and ``sweep`` and the LLM bridge draw with these functions.

Each function takes a table (one run, a sweep or a bridge run) and returns a
:class:`matplotlib.figure.Figure` (no pyplot state, so it works headless and in parallel);
``markovfork.io.figure_writer`` writes it. matplotlib is imported inside the functions, not when
``markovfork`` is imported, to keep the command line's start-up fast.

A *run* is one (engine, rho, diversity, lr, epochs) combination (the columns present); runs that
differ only in their seed are averaged (the mean over seeds is drawn).
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = [
    "RUN_KEYS", "FIGURES", "results_figures", "plot_pass_at_k", "plot_shrinkage_vs_rho", "plot_shrinkage_vs_epochs",
    "plot_fork_confidence", "tmc_pass_at_k_figure", "tmc_paths_figure", "posttrain_pass_at_k_figure",
    "branching_figure",
]

RUN_KEYS = ("engine", "rho", "diversity", "lr", "epochs")  # what tells runs apart (seeds are averaged)


def _run_keys(table: pl.DataFrame) -> list[str]:
    return [c for c in RUN_KEYS if c in table.columns]


def _varying(table: pl.DataFrame, keys) -> list[str]:
    """The keys that take more than one value in ``table``."""
    return [c for c in keys if c in table.columns and table[c].n_unique() > 1]


def _check(table: pl.DataFrame) -> None:
    if table.height == 0:
        raise ValueError("the results table is empty")


def _label(row: dict, keys) -> str:
    parts = []
    for key in keys:
        value = row[key]
        parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts)


def _new_figure(title: str | list[str]):
    """A figure with one panel (a title) or one panel per title, side by side: (fig, ax or axes)."""
    from matplotlib.figure import Figure

    titles = [title] if isinstance(title, str) else list(title)
    fig = Figure(figsize=(6.0 * len(titles) - 2.0 * (len(titles) - 1), 4.0))
    axes = fig.subplots(1, len(titles), squeeze=False)[0]
    for ax, text in zip(axes, titles):
        ax.set_title(text, fontsize=10)
        ax.grid(alpha=0.3)
    return fig, (axes[0] if isinstance(title, str) else tuple(axes))


def _seed_mean(table: pl.DataFrame, by: list[str], values: list[str]) -> pl.DataFrame:
    """Mean of ``values`` over seeds (and any other column not in ``by``), sorted by ``by``."""
    return table.group_by(by, maintain_order=True).agg([pl.col(v).mean() for v in values]).sort(by)


def plot_pass_at_k(table: pl.DataFrame, epochs=None, max_lines: int = 5):
    """pass@k against k (log2 axis): the base model, then the post-trained model.

    One run: one line per epoch (``epochs``; default up to ``max_lines`` of the evaluated epochs,
    spread on a log scale and always including the last). Several runs: one line per run at its
    last epoch (``epochs`` must then be None). Several seeds are averaged.
    """
    _check(table)
    keys = _run_keys(table)
    runs = _varying(table, keys)
    if runs:
        if epochs is not None:
            raise ValueError(f"epochs= draws one run; the table varies in {runs} (filter it first)")
        return _pass_at_k_of_runs(table, keys, runs)
    mean = _seed_mean(table, ["epoch", "k"], ["pass_at_k_base", "pass_at_k_post"])
    evaluated = [e for e in mean["epoch"].unique().sort().to_list() if e > 0]
    if epochs is None:
        if len(evaluated) <= max_lines:
            epochs = evaluated
        else:  # about evenly spaced in log(epoch), the last one included
            idx = np.unique(np.round(np.geomspace(1, len(evaluated), max_lines)).astype(int) - 1)
            epochs = [evaluated[i] for i in idx]
    else:
        missing = [e for e in epochs if e not in evaluated]
        if missing:
            raise ValueError(f"epoch {missing[0]} was not evaluated (evaluated: {evaluated})")
    first = table.row(0, named=True)
    fig, ax = _new_figure(
        f"pass@k, {first['engine']} engine, rho={first['rho']:g}, {first['diversity']}-level data"
    )
    _base_line(ax, table)
    colors = _colors(len(epochs))
    for color, e in zip(colors, epochs):
        rows = mean.filter(pl.col("epoch") == e)
        ax.plot(rows["k"], rows["pass_at_k_post"], "-o", color=color, ms=3, label=f"epoch {e}")
    _pass_at_k_axes(ax)
    return fig


def _base_line(ax, table: pl.DataFrame) -> None:
    """pass@k of the base model (rows of the first evaluated epoch; seeds averaged)."""
    base = _seed_mean(table.filter(pl.col("epoch") == table["epoch"].min()), ["k"], ["pass_at_k_base"])
    ax.plot(base["k"], base["pass_at_k_base"], "-o", color="black", ms=3, lw=2, label="base")


def _pass_at_k_axes(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (test problems)")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)


def _pass_at_k_of_runs(table: pl.DataFrame, keys: list[str], label_keys: list[str]):
    last = table.filter(pl.col("epoch") == pl.col("epoch").max().over(keys))
    mean = _seed_mean(last, [*keys, "k"], ["pass_at_k_post"])
    runs = mean.select(keys).unique(maintain_order=True).sort(keys)
    fig, ax = _new_figure(f"pass@k after training, {table['engine'][0]} engine, {runs.height} runs")
    _base_line(ax, table)
    for color, run in zip(_colors(runs.height), runs.iter_rows(named=True)):
        part = mean.filter(pl.all_horizontal([pl.col(c) == run[c] for c in keys])).sort("k")
        ax.plot(part["k"], part["pass_at_k_post"], "-o", color=color, ms=3, label=_label(run, label_keys))
    _pass_at_k_axes(ax)
    return fig


def _cmap():
    """viridis without its palest yellow (hard to see on white)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    return ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.85, 256)))


def _colors(n: int):
    cmap = _cmap()
    return [cmap(x) for x in (np.linspace(0.0, 1.0, n) if n > 1 else [0.4])]


def _at_largest_k(table: pl.DataFrame, k) -> tuple[pl.DataFrame, int]:
    k = int(table["k"].max()) if k is None else int(k)
    rows = table.filter(pl.col("k") == k)
    if rows.height == 0:
        raise ValueError(f"k={k} is not in the table (k values: {table['k'].unique().sort().to_list()})")
    return rows, k


def plot_shrinkage_vs_rho(table: pl.DataFrame, k=None, every_epoch: bool = False):
    """Shrinkage pass@k(base) - pass@k(post) against the prevalence rho, at the last epoch (or,
    with ``every_epoch``, one line per evaluated epoch after 0).

    ``k``: default the largest k in the table. One line per diversity and engine (and per lr or
    epochs when those vary); several seeds are averaged.
    """
    _check(table)
    rows, k = _at_largest_k(table, k)
    if every_epoch:
        rows = rows.filter(pl.col("epoch") > 0)
        _check(rows)
    else:
        rows = rows.filter(pl.col("epoch") == pl.col("epoch").max().over(_run_keys(rows)))
    groups = ["diversity", "engine", *_varying(rows, ("lr", "epochs"))]
    label_keys = _varying(rows, groups) or ["diversity"]
    if every_epoch:
        groups.append("epoch")
        label_keys = [*label_keys, "epoch"]
    mean = _seed_mean(rows, [*groups, "rho"], ["shrinkage"])
    when = "per epoch" if every_epoch else "after training"
    fig, ax = _new_figure(f"coverage shrinkage at k={k} {when}")
    for i, (_, part) in enumerate(mean.group_by(groups, maintain_order=True)):
        ax.plot(part["rho"], part["shrinkage"], "-o", ms=3, color=f"C{i % 10}",
                label=_label(part.row(0, named=True), label_keys))
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("fork prevalence rho (share of training trajectories through the decision point)")
    ax.set_ylabel(f"pass@{k} base - post")
    ax.legend(fontsize=8)
    return fig


def plot_shrinkage_vs_epochs(table: pl.DataFrame, k=None):
    """Shrinkage at ``k`` (default the largest) against training epochs, one line per run
    (colour: rho; line style: diversity); several seeds are averaged."""
    _check(table)
    rows, k = _at_largest_k(table, k)
    keys = _run_keys(rows)
    mean = _seed_mean(rows, [*keys, "epoch"], ["shrinkage"])
    runs = mean.select(keys).unique(maintain_order=True).sort(keys)
    rhos = runs["rho"].unique().sort().to_list()
    cmap, lo, hi = _cmap(), min(rhos), max(rhos)
    colors = {r: cmap((r - lo) / (hi - lo) if hi > lo else 0.4) for r in rhos}  # by value, as the colour bar
    styles = dict(zip(runs["diversity"].unique(maintain_order=True).to_list(), ["-", "--", ":", "-."] * 4))
    label_keys = _varying(runs, keys) or ["rho"]
    fig, ax = _new_figure(f"coverage shrinkage at k={k} during training")
    for run in runs.iter_rows(named=True):
        part = mean.filter(pl.all_horizontal([pl.col(c) == run[c] for c in keys])).sort("epoch")
        ax.plot(part["epoch"], part["shrinkage"], styles[run["diversity"]], marker="o", ms=2.5,
                color=colors[run["rho"]], label=_label(run, label_keys))
    ax.axhline(0.0, color="grey", lw=0.8)
    _epoch_axis(ax)
    ax.set_ylabel(f"pass@{k} base - post")
    if runs.height <= 8:
        ax.legend(fontsize=7)
    else:  # too many runs to name one by one: a colour bar for rho, a legend for the line styles
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.lines import Line2D

        norm = Normalize(lo, hi) if hi > lo else Normalize(lo - 0.4, lo + 0.6)
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="rho")
        handles = [Line2D([], [], color="grey", ls=ls, label=f"diversity={d}") for d, ls in styles.items()]
        ax.legend(handles=handles, fontsize=7, loc="upper left")
    return fig


def _epoch_axis(ax) -> None:
    """Epochs on a symmetric-log axis (linear in [0, 1], so epoch 0, the base model, is shown)."""
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0.0)
    ax.set_xlabel("epoch")


def plot_fork_confidence(table: pl.DataFrame, accuracy: bool = False):
    """Mean probability the model gives the branch it picks at the decision fork, split by
    whether that branch is right (solid) or wrong (dashed), against epochs; two lines per run
    (several seeds are averaged). With ``accuracy``, a second panel on the left draws the fork
    accuracy (probability the first fork decision is a correct branch) of each run."""
    _check(table)
    keys = _run_keys(table)
    values = ["fork_accuracy", "fork_confidence_correct", "fork_confidence_wrong"]
    mean = _seed_mean(table.filter(pl.col("k") == pl.col("k").min()), [*keys, "epoch"], values)
    runs = mean.select(keys).unique(maintain_order=True).sort(keys)
    label_keys = _varying(runs, keys)
    if accuracy:
        fig, (acc, ax) = _new_figure(["accuracy at the decision fork", "confidence at the decision fork"])
    else:
        fig, ax = _new_figure("confidence at the decision fork")
    for i, run in enumerate(runs.iter_rows(named=True)):
        part = mean.filter(pl.all_horizontal([pl.col(c) == run[c] for c in keys])).sort("epoch")
        name = f" ({_label(run, label_keys)})" if label_keys else ""
        right, wrong = ("C2", "C3") if runs.height == 1 else (f"C{i % 10}", f"C{i % 10}")
        ax.plot(part["epoch"], part["fork_confidence_correct"], "-o", ms=2.5, color=right, label=f"right branch{name}")
        ax.plot(part["epoch"], part["fork_confidence_wrong"], "--s", ms=2.5, color=wrong, label=f"wrong branch{name}")
        if accuracy:
            acc.plot(part["epoch"], part["fork_accuracy"], "-o", ms=2.5, color=f"C{i % 10}",
                     label=_label(run, label_keys) if label_keys else "fork accuracy")
    _epoch_axis(ax)
    ax.set_ylabel("mean probability of the chosen branch")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, ncol=2 if runs.height > 4 else 1)
    if accuracy:
        _epoch_axis(acc)
        acc.set_ylabel("fork accuracy")
        acc.set_ylim(0, 1.02)
        acc.legend(fontsize=7)
    return fig


FIGURES = ("pass_at_k", "shrinkage_vs_rho", "shrinkage_vs_epochs", "fork_confidence")


def results_figures(table: pl.DataFrame, names=FIGURES) -> dict:
    """The standard figures of a results table, by name (in ``FIGURES`` order): ``pass_at_k`` of
    the highest-prevalence run of the first diversity (first lr, most epochs), shrinkage against
    rho and against epochs for every run, and ``fork_confidence`` of the highest prevalence (every
    diversity). For a one-run table these are that run's figures."""
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure {unknown[0]!r} (known: {', '.join(FIGURES)})")
    _check(table)
    first = table.row(0, named=True)
    top = table.filter(pl.col("rho") == table["rho"].max())
    if "lr" in table.columns:
        top = top.filter(pl.col("lr") == first["lr"])
    if "epochs" in table.columns:
        top = top.filter(pl.col("epochs") == table["epochs"].max())
    draw = {
        "pass_at_k": lambda: plot_pass_at_k(top.filter(pl.col("diversity") == first["diversity"])),
        "shrinkage_vs_rho": lambda: plot_shrinkage_vs_rho(table),
        "shrinkage_vs_epochs": lambda: plot_shrinkage_vs_epochs(table),
        "fork_confidence": lambda: plot_fork_confidence(top),
    }
    return {name: draw[name]() for name in FIGURES if name in names}


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
    last = table.filter(pl.col("stage") == "rl").group_by(["method", "kl", "reject_easy", "seed"]).agg(
        pl.col("iteration").max().alias("last"))
    rl = table.join(last, on=["method", "kl", "reject_easy", "seed"]).filter(pl.col("iteration") == pl.col("last"))
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
