"""markovfork.reporting.figures: every figure of the results table, checked against the table itself (the
plotted points are the seed means of the rows they claim to draw, recomputed here with NumPy)."""

import numpy as np
import polars as pl
import pytest

from markovfork.reporting.figures import (
    FIGURES,
    plot_fork_confidence,
    plot_pass_at_k,
    plot_shrinkage_vs_epochs,
    plot_shrinkage_vs_rho,
    results_figures,
)
from markovfork.reporting.results import results_frame
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


# ----------------------------------------------------------------------------- TMC experiment
@pytest.fixture(scope="module")
def tmc_table():
    from markovfork.experiments.tmc import TMCConfig, run_tmc

    return run_tmc(TMCConfig(methods=("reinforce", "kl"), iterations=50, instances=20, k=8)).table


def _tmc_column(table, task, column):
    """``column`` of ``task`` per method, in the table's method order."""
    return table.filter(pl.col("task") == task)[column].to_list()


def test_tmc_pass_at_k_figure_bars_are_the_table(tmc_table):
    from markovfork.reporting.comparison_figures import tmc_pass_at_k_figure

    (ax,) = tmc_pass_at_k_figure(tmc_table).axes
    methods = ["chain", "base", "reinforce", "kl"]
    assert [t.get_text() for t in ax.get_xticklabels()] == methods
    assert [c.get_label() for c in ax.containers] == ["task 1 pass@8", "task 2 pass@8"]
    one, two = ax.containers
    for task, bars in ((1, one), (2, two)):
        assert np.allclose([b.get_height() for b in bars], _tmc_column(tmc_table, task, "pass_at_k"))
        assert all(b.get_y() == 0.0 for b in bars)
    centres = [[b.get_x() + b.get_width() / 2 for b in bars] for bars in (one, two)]
    assert all(x1 < x2 < x1 + 1 for x1, x2 in zip(*centres))  # grouped: task 2 just right of task 1
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(dots) == 2
    for task, dot, x in zip((1, 2), dots, centres):
        assert np.allclose(dot.get_xdata(), x)  # on its bar
        assert np.allclose(dot.get_ydata(), _tmc_column(tmc_table, task, "pass_at_1"))
    assert "pass@8" in ax.get_title() and ax.get_ylim()[0] == 0.0


def test_tmc_paths_figure_stacks_the_shares_per_task(tmc_table):
    from markovfork.reporting.comparison_figures import tmc_paths_figure

    axes = tmc_paths_figure(tmc_table).axes
    assert [ax.get_title().split(":")[0] for ax in axes] == ["task 1", "task 2"]
    for task, ax in zip((1, 2), axes):
        assert [c.get_label() for c in ax.containers] == ["easy valid", "hard valid", "invalid"]
        easy, hard, invalid = ax.containers
        shares = [_tmc_column(tmc_table, task, c) for c in ("easy_valid", "hard_valid", "invalid")]
        for bars, share in zip((easy, hard, invalid), shares):
            assert np.allclose([b.get_height() for b in bars], share)
        assert np.allclose([b.get_y() for b in hard], shares[0])  # stacked on easy
        assert np.allclose([b.get_y() for b in invalid], np.add(shares[0], shares[1]))
        assert np.allclose([b.get_y() + b.get_height() for b in invalid], 1.0)  # the analytic shares sum to 1
        assert [t.get_text() for t in ax.get_xticklabels()] == ["chain", "base", "reinforce", "kl"]


def test_tmc_figures_refuse_tables_they_cannot_draw(tmc_table):
    from markovfork.reporting.comparison_figures import tmc_pass_at_k_figure, tmc_paths_figure

    for draw in (tmc_pass_at_k_figure, tmc_paths_figure):
        with pytest.raises(ValueError, match="empty"):
            draw(tmc_table.head(0))
        with pytest.raises(ValueError, match="hard_valid"):
            draw(tmc_table.drop("hard_valid"))
        with pytest.raises(ValueError, match="one row per"):
            draw(pl.concat([tmc_table, tmc_table.head(1)]))
