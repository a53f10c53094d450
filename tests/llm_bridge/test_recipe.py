"""The forks paper's setting as a recipe (``configs/forks-qwen-0.5b.toml``): its values are the
paper's, its placeholder checkpoint is refused in one line before anything is written, and the
same setting at test size (``configs/forks-tiny.toml``: only the counts marked ``# tiny`` and the
checkpoint differ) with the checkpoint path pointed at a tiny local Qwen2-style model runs the
whole pipeline: base, SFT, sampling, pass@k, fork metrics, the results table, the pruned
checkpoints and the throughput in ``summary.json``."""

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from click.testing import CliRunner

import markovfork
from markovfork.cli import main
from markovfork.plumbing.io import read_toml
from markovfork.llm_bridge.config import config_from_dict
from markovfork.llm_bridge import local_checkpoint
from markovfork.llm_bridge.local_checkpoint import load_tokenizer
from markovfork.llm_bridge.run import run_bridge
from markovfork.llm_bridge.tokenizer import is_word_level
from markovfork.reporting.results import RESULT_COLUMNS

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "forks-qwen-0.5b.toml"
TINY = RECIPE.with_name("forks-tiny.toml")


def _flat(doc: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in doc.items():
        out |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}
    return out


def _marked_tiny(path: Path) -> set[str]:
    """The keys whose line in ``path`` carries the comment ``# tiny``, as ``section.key``."""
    section, marked = "", set()
    for line in path.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[] ") + "."
        elif "# tiny" in line:
            marked.add(section + line.split("=")[0].strip())
    return marked


def test_the_tiny_config_is_the_recipe_but_for_the_marked_counts():
    recipe, tiny = _flat(read_toml(RECIPE)), _flat(read_toml(TINY))
    assert recipe.keys() == tiny.keys()
    differ = {k for k in recipe if recipe[k] != tiny[k]}
    assert differ == _marked_tiny(TINY) | {"model.checkpoint"}
    assert {"sft.n_problems", "sft.epochs", "eval.n_test", "eval.n_samples"} <= differ


def test_the_recipe_is_the_papers_setting():
    cfg = config_from_dict(read_toml(RECIPE))
    assert (cfg.task.answer, cfg.task.arms, cfg.task.depth, cfg.task.max_constant) == ("arith", 2, 10, 20)
    assert (cfg.sft.n_problems, cfg.sft.epochs, cfg.sft.lr) == (6400, 16, 1e-5)
    assert (cfg.eval.n_samples, cfg.eval.n_test, cfg.eval.epochs) == (64, 1000, [1, 2, 4, 8, 16])
    s = cfg.eval.sampling
    assert (s.temperature, s.top_p, s.top_k, s.min_p, s.spread_first) == (1.0, 0.95, 0, 0.0, 0)
    assert cfg.model.checkpoint == "/path/to/Qwen2.5-0.5B"


def test_the_placeholder_checkpoint_is_refused_in_one_line(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["bridge", "run", "--config", str(RECIPE), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "[model] checkpoint" in lines[0] and "/path/to/Qwen2.5-0.5B" in lines[0], lines
    assert not out.exists()


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    doc = read_toml(TINY)
    ckpt = tmp_path_factory.mktemp("ckpt") / "tiny-qwen"
    local_checkpoint.main([str(ckpt), "--config", str(TINY)])  # the command forks-tiny.toml documents
    doc["model"]["checkpoint"] = str(ckpt)  # the override a user makes
    doc["device"], doc["threads"] = "cpu", 1
    cfg = config_from_dict(doc)
    out = tmp_path_factory.mktemp("run") / "out"
    threads = torch.get_num_threads()
    res = run_bridge(cfg, out, progress=False, log=lambda m: None)
    torch.set_num_threads(threads)
    return cfg, res


def test_the_recipe_runs_on_a_tiny_local_model(recipe_run):
    cfg, res = recipe_run
    t = pl.read_parquet(res.out / "bridge_results.parquet")
    assert t.columns[: len(RESULT_COLUMNS)] == list(RESULT_COLUMNS)
    assert sorted(set(t["rho"])) == [0.0, 0.5, 1.0] and set(t["epoch"]) == {0, 1, 3} and set(t["k"]) == {1, 2, 4}
    assert set(t["answer"]) == {"arith"} and set(t["depth"]) == {10} and set(t["n_test"]) == {4}
    # pass@k from the cached per-problem counts, by markovfork's estimator
    ev = json.loads((res.out / "eval" / "data-rho1-epoch003.json").read_text())
    got = t.filter((pl.col("rho") == 1.0) & (pl.col("epoch") == 3)).sort("k")
    np.testing.assert_allclose(got["pass_at_k_post"], markovfork.pass_at_k(4, ev["correct"], [1, 2, 4]).mean(axis=0))
    q = np.array(ev["fork_probs"])
    np.testing.assert_allclose(q.sum(axis=1), 1.0)
    assert got["fork_accuracy"][0] == pytest.approx(q[np.arange(4), ev["target_arm"]].mean())
    # the checkpoints carry the pretrained model's own subword tokenizer
    tok = load_tokenizer(res.out / "sft" / "data-rho1" / "epoch-003")
    assert not is_word_level(tok) and len(tok) == len(load_tokenizer(cfg.model.checkpoint))
    # keep_checkpoints = "evaluated": the evaluated epochs stay, only the last with its trainer state
    for name in ("data-rho0", "data-rho0.5", "data-rho1"):
        assert sorted(p.name for p in (res.out / "sft" / name).iterdir()) == ["epoch-001", "epoch-003"]
        assert not (res.out / "sft" / name / "epoch-001" / "trainer_state.pt").exists()
        assert (res.out / "sft" / name / "epoch-003" / "trainer_state.pt").is_file()
    # throughput: training and sampling, tokens/s and samples/s
    summary = json.loads((res.out / "summary.json").read_text())
    tp = summary["throughput_tokens_per_s"]
    for key in ("base_tokens_per_s", "sft_tokens_per_s", "base_samples_per_s", "sft_samples_per_s",
                "eval_samples_per_s", "eval_tokens_per_s"):
        assert tp[key] > 0 and math.isfinite(tp[key]), key


def test_bridge_eval_of_a_pretrained_runs_checkpoint_reproduces_its_rows(recipe_run):
    """``evaluate_checkpoint`` (``bridge eval``) on the run's SFT checkpoint, with the run's base:
    the checkpoint's own tokenizer, the run's problems and sampling seed give the run's rows."""
    from markovfork.llm_bridge.run import evaluate_checkpoint

    cfg, res = recipe_run
    got = evaluate_checkpoint(res.out / "sft" / "data-rho0.5" / "epoch-003", cfg,
                              base=res.out / "base" / "epoch-001", log=lambda m: None).sort("k")
    want = pl.read_parquet(res.out / "bridge_results.parquet").filter(
        (pl.col("rho") == 0.5) & (pl.col("epoch") == 3)).sort("k")
    for col in ("pass_at_k_post", "pass_at_k_base", "fork_accuracy", "fork_confidence_correct", "forward_share"):
        np.testing.assert_allclose(got[col], want[col], rtol=1e-12, err_msg=col)
