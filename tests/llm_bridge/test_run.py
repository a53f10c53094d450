"""The whole pipeline on the tiny config: the results table's schema and bookkeeping, reloading
checkpoints, and resuming an interrupted run to the same table."""

import json
import shutil

import numpy as np
import polars as pl
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

import markovfork
from markovfork.llm_bridge.config import config_from_dict, load_config
from markovfork.llm_bridge.run import run_bridge
from markovfork.llm_bridge.tasks import read_jsonl
from markovfork.reporting.results import RESULT_COLUMNS


def test_table_has_the_shared_schema_and_consistent_rows(tiny_run):
    t = pl.read_parquet(tiny_run / "bridge_results.parquet")
    assert t.columns[: len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert dict(zip(t.columns, t.dtypes)) | RESULT_COLUMNS == dict(zip(t.columns, t.dtypes))
    assert set(t["engine"]) == {"llm"}
    assert pl.read_csv(tiny_run / "bridge_results.csv").height == t.height
    # 3 data-level rhos + problem-level at 0.5 (0 and 1 coincide with data-level), epochs 0, 1, 2, k in 1, 2, 4, 8
    groups = sorted(t.select("diversity", "rho").unique().rows())
    assert groups == [("data", 0.0), ("data", 0.5), ("data", 1.0), ("problem", 0.5)]
    assert t.height == 4 * 3 * 4
    np.testing.assert_allclose(t["shrinkage"], t["pass_at_k_base"] - t["pass_at_k_post"])
    base = t.filter(pl.col("epoch") == 0)
    np.testing.assert_array_equal(base["pass_at_k_post"], base["pass_at_k_base"])
    assert base["train_loss"].is_nan().all() and not t.filter(pl.col("epoch") > 0)["train_loss"].is_nan().any()
    assert (t["pass_at_k_post"].is_between(0, 1)).all() and (t["fork_accuracy"].is_between(0, 1)).all()


def test_table_pass_at_k_equals_markovfork_on_the_cached_counts(tiny_run):
    t = pl.read_parquet(tiny_run / "bridge_results.parquet")
    ev = json.loads((tiny_run / "eval" / "data-rho1-epoch002.json").read_text())
    want = markovfork.pass_at_k(ev["n_samples"], ev["correct"], [1, 2, 4, 8]).mean(axis=0)
    got = t.filter((pl.col("rho") == 1.0) & (pl.col("epoch") == 2) & (pl.col("diversity") == "data")).sort("k")
    np.testing.assert_allclose(got["pass_at_k_post"], want)
    # the fork columns from the cached arm probabilities q and targets t, by their definitions
    # (docs/model.md section 8), not through EvalResult
    q, t = np.array(ev["fork_probs"]), np.array(ev["target_arm"])
    right = q[np.arange(len(t)), t]
    wrong = np.delete(q.ravel(), np.arange(len(t)) * q.shape[1] + t)
    assert got["fork_accuracy"].to_list() == pytest.approx([right.mean()] * 4)
    assert got["fork_confidence_correct"].to_list() == pytest.approx([(right**2).sum() / right.sum()] * 4)
    assert got["fork_confidence_wrong"].to_list() == pytest.approx([(wrong**2).sum() / wrong.sum()] * 4)
    assert got["fork_entropy"].to_list() == pytest.approx([-(q * np.log(q)).sum(axis=1).mean()] * 4)
    argmax_right = q.argmax(axis=1) == t
    if argmax_right.any():
        assert got["fork_argmax_confidence_correct"][0] == pytest.approx(q.max(axis=1)[argmax_right].mean())


def test_outputs_reload(tiny_run):
    ckpt = tiny_run / "sft" / "data-rho0.5" / "epoch-002"
    AutoModelForCausalLM.from_pretrained(ckpt, local_files_only=True)
    AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    test = list(read_jsonl(tiny_run / "data" / "test.jsonl"))
    assert len(test) == 16
    sft = list(read_jsonl(tiny_run / "data" / "sft-data-rho0.5.jsonl"))
    assert sum(e.format == "forward" for e in sft) == 32
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["peak_rss_gib"] > 0 and summary["throughput_tokens_per_s"]["base_tokens_per_s"] > 0
    for name in ("fig_pass_at_k.png", "fig_shrinkage.png", "fig_fork.png"):
        assert (tiny_run / name).stat().st_size > 0
    cfg = config_from_dict(json.loads((tiny_run / "config.json").read_text()))
    assert cfg.sft.diversities == ["data", "problem"]


def test_resume_after_interruption_reproduces_the_table(tiny_run, tmp_path, tiny_config):
    """Delete the last SFT checkpoint of one arm, its evaluations and the table, as if the run had
    died mid-SFT; resuming retrains that epoch and reproduces the table exactly."""
    out = tmp_path / "out"
    shutil.copytree(tiny_run, out)
    shutil.rmtree(out / "sft" / "data-rho1" / "epoch-002")
    for f in ["eval/data-rho1-epoch002.json", "bridge_results.parquet", "bridge_results.csv"]:
        (out / f).unlink()
    cfg = load_config(tiny_config)
    with pytest.raises(ValueError, match="is not empty; pass --resume"):
        run_bridge(cfg, out, resume=False, log=lambda m: None)
    import dataclasses

    with pytest.raises(ValueError, match="differs from this run's configuration"):
        run_bridge(dataclasses.replace(cfg, seed=1), out, resume=True, log=lambda m: None)
    run_bridge(cfg, out, resume=True, log=lambda m: None)
    a = pl.read_parquet(tiny_run / "bridge_results.parquet")
    b = pl.read_parquet(out / "bridge_results.parquet")
    assert a.equals(b)
