"""``markovfork bridge``: run refuses bad settings before writing anything, eval of a saved
checkpoint, its options reach the sampler, and one-line errors for bad input."""

import polars as pl
import pytest
from click.testing import CliRunner

import bridge_runs
from markovfork.cli import main
from markovfork.llm_bridge import run as bridge_run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return bridge_runs.tiny_run(tmp_path_factory)


def _invoke(args):
    return CliRunner().invoke(main, args)


def test_run_on_a_missing_device_leaves_nothing_and_the_corrected_command_works(tiny):
    """``bridge run --device cuda`` without CUDA is refused before any file is written, so the
    same command with the right device then runs in that directory (it used to be refused as
    'not empty', or with --resume as 'config differs')."""
    assert tiny.refused_exit_code == 2
    assert tiny.refused_output.strip() == "Error: device 'cuda' requested but CUDA is not available"
    assert tiny.left_after_refusal == []
    assert (tiny.out / "bridge_results.parquet").is_file() and (tiny.out / "config.json").is_file()


def test_eval_matches_the_run_table(tiny, tmp_path):
    """Evaluating a run's checkpoint with the run's own config (found from the checkpoint path)
    and its base reproduces the run table's rows for that epoch."""
    ckpt = tiny.out / "sft" / "data-rho1" / "epoch-002"
    r = _invoke(["bridge", "eval", str(ckpt), "--base", str(tiny.out / "base" / "epoch-002"), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    got = pl.read_parquet(tmp_path / "eval_results.parquet").sort("k")
    run = pl.read_parquet(tiny.out / "bridge_results.parquet").filter(
        (pl.col("rho") == 1.0) & (pl.col("epoch") == 2) & (pl.col("diversity") == "data")).sort("k")
    cols = ["k", "pass_at_k_base", "pass_at_k_post", "shrinkage", "fork_accuracy", "fork_confidence_correct",
            "fork_confidence_wrong", "fork_entropy", "epoch"]
    for col in cols:
        assert got[col].to_list() == pytest.approx(run[col].to_list(), nan_ok=True), col
    assert "pass_at_k_post" in r.output


def test_eval_options_reach_the_sampler(tiny, tmp_path, monkeypatch):
    """--problems, --n-samples and the sampling options arrive in the evaluation unchanged."""
    seen = []
    real = bridge_run.evaluate_model

    def spy(model, tok, problems, n, sampling, **kwargs):
        seen.append((len(problems), n, sampling))
        return real(model, tok, problems, n, sampling, **kwargs)

    monkeypatch.setattr(bridge_run, "evaluate_model", spy)
    r = _invoke(["bridge", "eval", str(tiny.out / "base" / "epoch-002"), "--problems",
                 str(tiny.out / "data" / "test.jsonl"), "--n-samples", "4", "--temperature", "0.5", "--top-k", "3",
                 "--top-p", "0.9", "--min-p", "0.05", "--spread-first", "2", "--spread-position", "1",
                 "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    [(n_problems, n, s)] = seen
    assert (n_problems, n) == (16, 4)
    assert (s.temperature, s.top_k, s.top_p, s.min_p, s.spread_first, s.spread_position) == (0.5, 3, 0.9, 0.05, 2, 1)
    assert pl.read_parquet(tmp_path / "eval_results.parquet")["k"].to_list() == [1, 2, 4]


def test_a_missing_base_is_reported_before_any_evaluation(tiny, monkeypatch):
    """``bridge eval CKPT --base nope`` used to evaluate CKPT first and fail only then."""
    calls = []
    monkeypatch.setattr(bridge_run, "evaluate_model", lambda *a, **k: calls.append(a))
    r = _invoke(["bridge", "eval", str(tiny.out / "base" / "epoch-002"), "--base", "nope"])
    assert r.exit_code == 2
    assert r.output.strip() == "Error: base: no model checkpoint (config.json) in nope"
    assert calls == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["bridge", "eval", "/nonexistent/ckpt"], "no model checkpoint (config.json) in /nonexistent/ckpt"),
        (["bridge", "run", "--device", "tpu", "--out", "{tmp}/x"], "device must be 'auto', 'cpu' or 'cuda[:i]', got 'tpu'"),
        (["bridge", "run", "--config", "{tmp}/bad.toml", "--out", "{tmp}/y"], "unknown key 'dpeth' in [task]"),
        (["bridge", "run", "--config", "{tmp}/missing.toml"], "config file not found"),
        (["bridge", "run", "--config", "{tmp}/decay.toml", "--out", "{tmp}/z"],
         "[base] weight_decay must be >= 0, got -1.0"),
        (["bridge", "sweep", "--rho", "0,1.5", "--out", "{tmp}/x"], "--rho values must be in [0, 1], got 1.5"),
        (["bridge", "sweep", "--config", "{tmp}/bad.toml", "--seeds", "0,1", "--out", "{tmp}/y"],
         "unknown key 'dpeth' in [task]"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path):
    (tmp_path / "bad.toml").write_text("[task]\ndpeth = 3\n")
    (tmp_path / "decay.toml").write_text("[base]\nweight_decay = -1.0\n[model]\nn_layer = 1\nn_embd = 8\nn_head = 1\n")
    r = _invoke([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2
    text = r.output.strip()
    assert text.startswith("Error: ") and message in text and len(text.splitlines()) == 1
    assert not any((tmp_path / d).exists() for d in "xyz")


def test_counts_command_writes_the_per_problem_table(tiny, tmp_path):
    from markovfork.llm_bridge.run_files import problem_counts

    result = CliRunner().invoke(main, ["bridge", "counts", str(tiny.out), str(tiny.out), "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(tmp_path / "c.parquet")
    assert table.height == 2 * problem_counts(tiny.out).height
    assert pl.read_csv(tmp_path / "c.csv").height == table.height
    bad = CliRunner().invoke(main, ["bridge", "counts", str(tmp_path / "nope"), "--out", str(tmp_path / "d")])
    assert bad.exit_code == 2 and "nope" in bad.stderr and "Traceback" not in bad.output
    assert not (tmp_path / "d.parquet").exists()
