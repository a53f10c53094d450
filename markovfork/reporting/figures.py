"""Every figure of the results table (``markovfork.reporting.results`` schema), for every engine: the
simulator's ``simulate`` and ``sweep`` and the LLM bridge draw with these functions.

Each function takes a table (one run, a sweep or a bridge run) and returns a
:class:`matplotlib.figure.Figure` (no pyplot state, so it works headless and in parallel);
``markovfork.plumbing.io.figure_writer`` writes it. The figures of the post-training comparisons (TMC,
posttrain, branching, mitigations) are in :mod:`markovfork.reporting.comparison_figures`, drawn with the
helpers here. matplotlib is imported inside the functions, not when
``markovfork`` is imported, to keep the command line's start-up fast.

A *run* is one (engine, rho, diversity, lr, epochs, temperature) combination (the columns present); runs that
differ only in their seed are averaged (the mean over seeds is drawn).
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = [
    "RUN_KEYS", "FIGURES", "results_figures", "plot_pass_at_k", "plot_shrinkage_vs_rho", "plot_shrinkage_vs_epochs",
    "plot_fork_confidence",
]

RUN_KEYS = ("engine", "rho", "diversity", "lr", "epochs", "temperature")  # what tells runs apart (seeds are averaged)


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
