"""markovfork.figures: every figure of the results table, checked against the table itself (the
plotted points are the seed means of the rows they claim to draw, recomputed here with NumPy)."""

import numpy as np
import polars as pl
import pytest

from markovfork.figures import (
    FIGURES,
    plot_fork_confidence,
    plot_pass_at_k,
    plot_shrinkage_vs_epochs,
    plot_shrinkage_vs_rho,
    results_figures,
)
from markovfork.results import results_frame
from markovfork.sft.simulate import config_grid, load_config, sweep

SMALL_OVERRIDES = {"task.n_train": 100, "task.n_test": 100, "task.feature_dim": 100, "train.epochs": 3}


@pytest.fixture(scope="module")
def grid_table():
    base = load_config(None, **SMALL_OVERRIDES)
    return sweep(config_grid(base, rhos=[0.0, 0.5, 1.0], diversities=["data", "problem"], seeds=[0, 1]), workers=1)


def _seed_mean(table, **where) -> dict:
    """{k: mean over rows matching ``where``} of pass_at_k_post, by plain NumPy."""
    rows = table
    for col, value in where.items():
        rows = rows.filter(pl.col(col) == value)
    k, post = rows["k"].to_numpy(), rows["pass_at_k_post"].to_numpy()
    return {int(x): float(np.mean(post[k == x])) for x in np.unique(k)}


def _lines(fig) -> int:
    return sum(len(ax.lines) for ax in fig.axes)


def test_pass_at_k_one_run_draws_each_epoch(grid_table):
    one = grid_table.filter((pl.col("rho") == 1.0) & (pl.col("diversity") == "data"))
    ax = plot_pass_at_k(one).axes[0]
    assert len(ax.lines) == 1 + 3  # base, epochs 1, 2, 3
    assert ax.get_xscale() == "log"
    last = ax.lines[-1]
    expect = _seed_mean(one, epoch=3)
    assert list(last.get_xdata()) == list(expect) and np.allclose(last.get_ydata(), list(expect.values()))
    assert len(plot_pass_at_k(one, epochs=[3]).axes[0].lines) == 2


def test_pass_at_k_several_runs_draws_each_run_at_its_last_epoch(grid_table):
    ax = plot_pass_at_k(grid_table).axes[0]
    assert len(ax.lines) == 1 + 6  # base, then one per (rho, diversity); seeds averaged
    labels = [line.get_label() for line in ax.lines]
    assert labels[0] == "base" and "rho=0.5, diversity=problem" in labels
    line = ax.lines[labels.index("rho=0.5, diversity=problem")]
    expect = _seed_mean(grid_table, rho=0.5, diversity="problem", epoch=3)
    assert np.allclose(line.get_ydata(), list(expect.values()))
    with pytest.raises(ValueError, match="rho"):
        plot_pass_at_k(grid_table, epochs=[3])


def test_shrinkage_figures(grid_table):
    assert _lines(plot_shrinkage_vs_rho(grid_table)) == 2 + 1  # one per diversity, and the zero line
    line = plot_shrinkage_vs_rho(grid_table).axes[0].lines[0]
    assert list(line.get_xdata()) == [0.0, 0.5, 1.0]
    at_k64 = grid_table.filter((pl.col("k") == 64) & (pl.col("epoch") == 3) & (pl.col("diversity") == "data"))
    expect = [at_k64.filter(pl.col("rho") == r)["shrinkage"].mean() for r in (0.0, 0.5, 1.0)]
    assert np.allclose(line.get_ydata(), expect)
    every = plot_shrinkage_vs_rho(grid_table, every_epoch=True).axes[0]
    assert len(every.lines) == 2 * 3 + 1  # per diversity and epoch 1, 2, 3
    assert _lines(plot_shrinkage_vs_epochs(grid_table)) == 6 + 1  # one per (rho, diversity) run


def test_fork_confidence_figure_with_and_without_accuracy(grid_table):
    assert len(plot_fork_confidence(grid_table).axes[0].lines) == 2 * 6  # right and wrong per run
    fig = plot_fork_confidence(grid_table, accuracy=True)
    acc, conf = fig.axes
    assert len(acc.lines) == 6 and len(conf.lines) == 12
    run = grid_table.filter((pl.col("rho") == 0.0) & (pl.col("diversity") == "data") & (pl.col("k") == 1))
    expect = [run.filter(pl.col("epoch") == e)["fork_accuracy"].mean() for e in range(4)]
    assert np.allclose(acc.lines[0].get_ydata(), expect)


def test_results_figures_pick_the_top_run(grid_table):
    figs = results_figures(grid_table)
    assert list(figs) == list(FIGURES)
    assert len(figs["pass_at_k"].axes[0].lines) == 1 + 3  # rho = 1, diversity data, epochs 1..3
    assert len(figs["fork_confidence"].axes[0].lines) == 2 * 2  # rho = 1, both diversities
    assert list(results_figures(grid_table, ["fork_confidence", "pass_at_k"])) == ["pass_at_k", "fork_confidence"]
    with pytest.raises(ValueError, match="unknown figure"):
        results_figures(grid_table, ["nope"])


def test_bridge_shaped_table():
    """The bridge's table (engine llm, no lr/epochs columns, extra columns) draws too."""
    rows = []
    for div, rho in [("data", 0.0), ("data", 1.0), ("problem", 0.5)]:
        for epoch in (0, 1, 2):
            for k in (1, 4):
                rows.append(dict(engine="llm", rho=rho, diversity=div, seed=0, epoch=epoch, k=k,
                                 pass_at_k_base=0.1 * k, pass_at_k_post=0.1 * k + 0.01 * epoch + rho / 10,
                                 shrinkage=-(0.01 * epoch + rho / 10), fork_accuracy=0.5, fork_confidence_correct=0.6,
                                 fork_confidence_wrong=0.7, fork_entropy=0.1, train_loss=1.0, fork_format="arms"))
    table = results_frame(rows)
    ax = plot_pass_at_k(table).axes[0]
    assert len(ax.lines) == 1 + 3
    assert np.allclose(ax.lines[0].get_ydata(), [0.1, 0.4])  # base
    lines = {line.get_label(): line for line in ax.lines}
    assert np.allclose(lines["rho=0.5, diversity=problem"].get_ydata(), [0.1 + 0.02 + 0.05, 0.4 + 0.02 + 0.05])  # epoch 2
    assert np.allclose(lines["rho=1, diversity=data"].get_ydata(), [0.1 + 0.02 + 0.1, 0.4 + 0.02 + 0.1])
    assert _lines(plot_shrinkage_vs_rho(table, every_epoch=True)) == 2 * 2 + 1
    assert len(results_figures(table)) == len(FIGURES)
