"""Measured curves as fit observations: binomial standard errors, grid indexing, fingerprint."""

import numpy as np
import polars as pl
import pytest

from markovfork.fit.measured import binomial_se, measured_curves
from markovfork.reporting.results import results_frame

ARMS = [(0.0, "data"), (0.5, "data"), (0.5, "problem")]
EPOCHS, KS = [0, 1, 2], [1, 4]


def table(engine="llm", n_test=100, value=lambda i: 0.1 + 0.01 * i):
    rows, i = [], 0
    for seed in (0, 1):
        for rho, div in ARMS:
            for epoch in EPOCHS:
                for k in KS:
                    rows.append(dict(engine=engine, rho=rho, diversity=div, seed=seed, epoch=epoch, k=k,
                                     pass_at_k_base=0.1, pass_at_k_post=value(i), shrinkage=0.0, fork_accuracy=0.5,
                                     fork_confidence_correct=0.5, fork_confidence_wrong=0.5, fork_entropy=0.6,
                                     train_loss=0.1, n_test=n_test))
                    i += 1
    return results_frame(rows)


def test_binomial_se_is_the_bound_and_finite_at_the_edges():
    m = 200
    p = np.array([0.0, 0.3, 0.5, 1.0])
    se = binomial_se(p, m)
    assert np.all(np.isfinite(se)) and np.all(se > 0)
    np.testing.assert_allclose(se[1:3], np.sqrt(p[1:3] * (1 - p[1:3]) / m), rtol=0.01)
    assert se[0] == pytest.approx(se[3], rel=1e-12) and se[0] == pytest.approx(np.sqrt(0.5 / 201 * (1 - 0.5 / 201) / m))


def test_rows_indexed_on_the_grid_with_the_base_once_per_seed_and_k():
    t = table()
    meas = measured_curves(t, ARMS, EPOCHS, KS)
    assert len(meas) == 2 * (len(KS) + len(ARMS) * 2 * len(KS))
    assert set(meas.arm[meas.epoch == 0]) == {0}
    for a, e, k, v in zip(meas.arm, meas.epoch, meas.k, meas.value):
        if e == 0:
            continue
        rho, div = ARMS[a]
        hit = t.filter((pl.col("rho") == rho) & (pl.col("diversity") == div) & (pl.col("epoch") == EPOCHS[e])
                       & (pl.col("k") == KS[k]))
        assert v in hit["pass_at_k_post"].to_list()
    predicted = np.zeros((len(ARMS), len(EPOCHS), len(KS)))
    np.testing.assert_allclose(meas.residuals(predicted), -meas.value / meas.se)


def test_fingerprint_follows_the_data_not_the_row_order(tmp_path):
    t = table()
    fp = measured_curves(t, ARMS, EPOCHS, KS).fingerprint
    assert measured_curves(t.sample(fraction=1.0, shuffle=True, seed=4), ARMS, EPOCHS, KS).fingerprint == fp
    changed = table(value=lambda i: 0.1 + 0.01 * i + (1e-9 if i == 3 else 0.0))
    assert measured_curves(changed, ARMS, EPOCHS, KS).fingerprint != fp
    t.write_csv(tmp_path / "runs.csv")
    t.write_parquet(tmp_path / "runs.parquet")
    assert measured_curves(tmp_path / "runs.parquet", ARMS, EPOCHS, KS).fingerprint == fp
    assert measured_curves(tmp_path / "runs.csv", ARMS, EPOCHS, KS).fingerprint == fp


def test_test_problem_count_from_the_argument_when_no_column():
    t = table(n_test=50).drop("n_test")
    with pytest.raises(ValueError, match="no n_test column"):
        measured_curves(t, ARMS, EPOCHS, KS)
    meas = measured_curves(t, ARMS, EPOCHS, KS, n_test=50)
    np.testing.assert_array_equal(meas.se, binomial_se(meas.value, 50))


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.drop("k"), r"lacks the columns \['k'\]"),
    (lambda t: pl.concat([t, t.with_columns(engine=pl.lit("analytic"))]), "mixes engines"),
    (lambda t: t.with_columns(k=pl.col("k") * 3), "off the predicted grid"),
    (lambda t: t.with_columns(rho=pl.col("rho") + 0.1), "off the predicted grid"),
    (lambda t: t.with_columns(pass_at_k_post=pl.col("pass_at_k_post") + 2), r"in \[0, 1\]"),
    (lambda t: t.with_columns(n_test=0), "n_test must be >= 1"),
])
def test_bad_tables_are_one_line_errors(mutate, message):
    with pytest.raises(ValueError, match=message) as info:
        measured_curves(mutate(table()), ARMS, EPOCHS, KS)
    assert "\n" not in str(info.value)


def test_engine_selects_rows():
    mixed = pl.concat([table(), table(engine="analytic", value=lambda i: 0.5)])
    meas = measured_curves(mixed, ARMS, EPOCHS, KS, engine="llm")
    assert meas.engines == ("llm",) and np.all(meas.value < 0.5)
    with pytest.raises(ValueError, match="no rows of engine 'sampled'"):
        measured_curves(mixed, ARMS, EPOCHS, KS, engine="sampled")
