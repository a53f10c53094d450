"""A whole bridge run: data, base pretraining, SFT per (diversity, rho), evaluation, table, figures.

Layout of ``out``::

    config.json                    the RunConfig (a resumed run must match it)
    data/test.jsonl                test problems
    data/sft-<div>-rho<r>.jsonl    SFT trajectories
    base/epoch-NNN/                base checkpoints (save_pretrained + tokenizer + trainer state)
    sft/<div>-rho<r>/epoch-NNN/    SFT checkpoints
    eval/*.json                    evaluation of each checkpoint (cached, so resume skips it)
    bridge_results.{parquet,csv}   the results table (markovfork.reporting.results schema, engine "llm")
    fig_*.png                      figures
    summary.json                   wall times, throughput, peak memory

Every random stream is a child of ``seed`` (see :func:`markovfork.llm_bridge.tasks._derive_seed`): the test
set, the SFT problems, each base batch, each SFT epoch's order, initialisation and sampling.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from markovfork.plumbing.io import check_outputs, figure_writer, table_paths, table_writers, write_json, write_outputs, write_table
from markovfork.reporting.results import results_frame
from markovfork.llm_bridge.backtrack import branch_count, branch_mix, filter_most_branching
from markovfork.llm_bridge.config import RunConfig, config_from_dict
from markovfork.llm_bridge.run_files import eval_file, run_name, sft_settings
from markovfork.llm_bridge.evaluate import EvalResult, evaluate_model, length_budget
from markovfork.llm_bridge.local_checkpoint import load_tokenizer, task_tokenizers
from markovfork.llm_bridge.scale import eval_throughput, resolve_batch_sizes, throughput_line
from markovfork.llm_bridge.model import build_model, extend_vocabulary, load_checkpoint, resolve_device
from markovfork.llm_bridge.tasks import (
    Problem,
    _derive_seed,
    generate_problems,
    sft_mix,
    undirected_derivation,
    write_jsonl,
)
from markovfork.llm_bridge.tokenizer import encode_example
from markovfork.llm_bridge.train import PhaseResult, epoch_dir, make_optimizer, train_phase

__all__ = ["RunResult", "run_bridge", "evaluate_checkpoint", "find_run_config", "base_batch_fn", "sft_batch_fn", "test_problems", "result_rows", "evaluate_cached"]


@dataclass
class RunResult:
    """What :func:`run_bridge` produced."""

    table: pl.DataFrame  # the results table
    out: Path  # the output directory
    summary: dict  # timings, throughput, peak memory


def test_problems(cfg: RunConfig) -> list[Problem]:
    """The run's test problems (a pure function of the task and the seed)."""
    return generate_problems(cfg.task, cfg.eval.n_test, seed=_derive_seed(cfg.seed, "test"))


def sft_problems(cfg: RunConfig, test: list[Problem]) -> list[Problem]:
    """The fixed SFT problems, disjoint from the test set."""
    return generate_problems(cfg.task, cfg.sft.n_problems, seed=_derive_seed(cfg.seed, "sft"),
                             exclude={p.key() for p in test})


def base_batch_fn(cfg: RunConfig, tok, test: list[Problem]):
    """Base pretraining batches: fresh problems each step (none from the test set), each with an
    undirected derivation. A pure function of (seed, epoch, step)."""
    exclude = {p.key() for p in test}

    def batch(epoch: int, step: int):
        seed = _derive_seed(cfg.seed, f"base-{epoch}-{step}")
        problems = generate_problems(cfg.task, cfg.base.batch_size, seed=seed, exclude=exclude)
        rng = np.random.default_rng(seed)
        return [encode_example(tok, e.prompt, e.response) for e in (undirected_derivation(p, rng) for p in problems)]

    return batch


def sft_batch_fn(encoded: list, batch_size: int, seed: int):
    """SFT batches: a fresh permutation of the fixed set each epoch (a function of seed and epoch)."""

    def batch(epoch: int, step: int):
        order = np.random.default_rng(_derive_seed(seed, f"order-{epoch}")).permutation(len(encoded))
        return [encoded[i] for i in order[step * batch_size:(step + 1) * batch_size]]

    return batch


def evaluate_cached(checkpoint: Path, cache: Path, cfg: RunConfig, tok, test: list[Problem], device) -> EvalResult:
    """Evaluate a checkpoint on the test set, or read the cached result of an earlier run."""
    if cache.is_file():
        return EvalResult.from_dict(json.loads(cache.read_text()))
    model = load_checkpoint(checkpoint).to(device)
    res = evaluate_model(model, tok, test, cfg.eval.n_samples, cfg.eval.sampling, seed=_derive_seed(cfg.seed, "sample"),
                         device=device, batch_sequences=cfg.eval.batch_sequences)
    write_json(res.to_dict(), cache)
    return res


def result_rows(base: EvalResult, post: EvalResult, ks: list[int], *, rho: float, diversity: str, seed: int,
                epoch: int, train_loss: float, extra: dict | None = None) -> list[dict]:
    """Rows of the results table for one (rho, diversity, epoch): one per k."""
    pb, pp = base.pass_at_k(ks), post.pass_at_k(ks)
    rows = []
    for k, b, p in zip(ks, pb, pp):
        rows.append({
            "engine": "llm", "rho": rho, "diversity": diversity, "seed": seed, "epoch": epoch, "k": int(k),
            "pass_at_k_base": float(b), "pass_at_k_post": float(p), "shrinkage": float(b - p),
            "fork_accuracy": post.fork_accuracy,
            "fork_confidence_correct": post.fork_confidence(True),
            "fork_confidence_wrong": post.fork_confidence(False),
            "fork_entropy": post.fork_entropy,
            "fork_argmax_confidence_correct": post.fork_argmax_confidence(True),
            "fork_argmax_confidence_wrong": post.fork_argmax_confidence(False),
            "train_loss": train_loss,
            "forward_share": post.forward_share,
            "sampled_fork_accuracy": post.sampled_fork_accuracy,
            "n_samples": post.n_samples,
            "n_test": len(post.correct),
            "backtrack_share": post.backtrack_share,
            "response_words": post.mean_response_words,
            **(extra or {}),
        })
    return rows


def _peak_rss_gib() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_bridge(cfg: RunConfig, out: str | Path, *, resume: bool = False, progress: bool | None = None,
               log=None, base_only: bool = False) -> RunResult:
    """Run the whole pipeline into ``out``. ``resume`` continues an interrupted run (same config).
    ``base_only`` stops after the base model's training and evaluation (an empty table, no
    figures): a base that several runs share (:mod:`markovfork.llm_bridge.sweep`)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(out)
    cfg_dict = json.loads(json.dumps(cfg.to_dict()))
    if out.exists() and any(out.iterdir()):
        if not resume:
            raise ValueError(f"output directory {out} is not empty; pass --resume to continue it or choose another")
        saved = out / "config.json"
        if saved.is_file() and config_from_dict(json.loads(saved.read_text())) != cfg:
            raise ValueError(f"{saved} differs from this run's configuration; cannot resume {out}")
    # everything that can reject the configuration runs before the first file is written
    check_outputs([out / "config.json"])
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    tok, sft_tok = task_tokenizers(cfg)  # the checkpoint's own, or word-level (+ backtrack token for branching SFT)
    cfg = resolve_batch_sizes(cfg, tok)  # [base] / [sft] tokens_per_step -> batch_size
    test = test_problems(cfg)
    pool = sft_problems(cfg, test)
    model = build_model(cfg.model, tok, seed=_derive_seed(cfg.seed, "init"))
    for section, phase in (("base", cfg.base), ("sft", cfg.sft)):
        try:
            make_optimizer(model, phase)
        except ValueError as exc:
            raise ValueError(f"[{section}] {exc}") from None

    out.mkdir(parents=True, exist_ok=True)
    write_json(cfg_dict, out / "config.json")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    throughput: dict[str, float] = {}
    write_jsonl(test, out / "data" / "test.jsonl")
    ks = cfg.eval.ks
    log(f"bridge: device {device}, {torch.get_num_threads()} threads, {len(test)} test problems, ks {ks}")

    # --- base pretraining on undirected derivations ---
    t0 = time.perf_counter()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"bridge: model {cfg.model.arch} with {n_params:,} parameters")
    base_res: PhaseResult = train_phase(model, tok, base_batch_fn(cfg, tok, test), cfg.base.steps_per_epoch, cfg.base,
                                        out / "base", seed=cfg.seed, device=device, resume=True, desc="base",
                                        progress=progress)
    timings["base_train_s"] = time.perf_counter() - t0
    throughput["base_tokens_per_s"] = base_res.tokens_per_s
    base_ckpt = epoch_dir(out / "base", cfg.base.epochs)
    log(f"bridge: base trained, loss per epoch {[round(x, 3) for x in base_res.epoch_losses]}")
    t0 = time.perf_counter()
    base_eval = evaluate_cached(base_ckpt, eval_file(out), cfg, sft_tok, test, device)
    timings["eval_s"] = time.perf_counter() - t0
    log(f"bridge: base pass@1 {base_eval.pass_at_k([1])[0]:.3f} pass@{ks[-1]} {base_eval.pass_at_k([ks[-1]])[0]:.3f} "
        f"fork accuracy {base_eval.fork_accuracy:.3f}")
    del model
    if base_only:
        timings["total_s"] = time.perf_counter() - t_start
        summary = _summary(timings, throughput, n_params, device, base_res)
        write_json(summary, out / "summary.json")
        return RunResult(results_frame([]), out, summary)

    # --- SFT per (diversity, rho) ---
    rows: list[dict] = []
    sft_tokens, sft_seconds, sft_sequences = 0, 0.0, 0
    timings["sft_train_s"] = 0.0
    for diversity, rho in sft_settings(cfg.sft.diversities, cfg.sft.rhos):
        name = run_name(diversity, rho)
        mix_seed = _derive_seed(cfg.seed, f"mix-{name}")
        examples = sft_mix(pool, rho, diversity, seed=mix_seed, fork_format=cfg.sft.fork_format)
        if cfg.sft.branch_rate > 0:
            examples = branch_mix(examples, cfg.sft.branch_rate, seed=_derive_seed(mix_seed, "branch"))
        n_before = len(examples)
        if cfg.sft.filter_share > 0:
            examples = filter_most_branching(examples, cfg.sft.filter_share, seed=_derive_seed(mix_seed, "filter"))
        if not examples:
            raise ValueError(f"[sft] filter_share {cfg.sft.filter_share} leaves no trajectory of {n_before}")
        write_jsonl(examples, out / "data" / f"sft-{name}.jsonl")
        branches = np.array([branch_count(e.response) for e in examples])
        mix_stats = {"branch_rate": cfg.sft.branch_rate, "filter_share": cfg.sft.filter_share,
                     "train_examples": len(examples), "train_branch_share": float((branches > 0).mean()),
                     "train_response_words": float(np.mean([len(e.response.split()) for e in examples]))}
        encoded = [encode_example(sft_tok, e.prompt, e.response) for e in examples]
        steps = math.ceil(len(encoded) / cfg.sft.batch_size)
        t0 = time.perf_counter()
        model = load_checkpoint(base_ckpt)
        model = extend_vocabulary(model, len(sft_tok)) if sft_tok is not tok else model
        res = train_phase(model, sft_tok, sft_batch_fn(encoded, cfg.sft.batch_size, mix_seed), steps, cfg.sft,
                          out / "sft" / name, seed=cfg.seed, device=device, resume=True, desc=f"sft {name}",
                          progress=progress,
                          keep_epochs=set(cfg.eval.epochs) if cfg.sft.keep_checkpoints == "evaluated" else None)
        timings["sft_train_s"] += time.perf_counter() - t0
        sft_tokens += res.tokens
        sft_seconds += res.seconds
        sft_sequences += res.sequences
        del model
        extra = {"fork_format": cfg.sft.fork_format, "answer": cfg.task.answer, "arms": cfg.task.arms,
                 "depth": cfg.task.depth, **mix_stats}
        rows += result_rows(base_eval, base_eval, ks, rho=rho, diversity=diversity, seed=cfg.seed, epoch=0,
                            train_loss=float("nan"), extra=extra)
        for e in sorted(set(cfg.eval.epochs)):
            t0 = time.perf_counter()
            post = evaluate_cached(epoch_dir(out / "sft" / name, e), eval_file(out, name, e), cfg, sft_tok, test, device)
            timings["eval_s"] += time.perf_counter() - t0
            rows += result_rows(base_eval, post, ks, rho=rho, diversity=diversity, seed=cfg.seed, epoch=e,
                                train_loss=res.epoch_losses[e - 1], extra=extra)
            log(f"bridge: {name} epoch {e}: loss {res.epoch_losses[e - 1]:.3f} "
                f"pass@1 {post.pass_at_k([1])[0]:.3f} pass@{ks[-1]} {post.pass_at_k([ks[-1]])[0]:.3f} "
                f"fork acc {post.fork_accuracy:.3f} conf {post.fork_confidence(True):.3f}/"
                f"{post.fork_confidence(False):.3f} forward share {post.forward_share:.2f} "
                f"backtrack share {post.backtrack_share:.2f} response words {post.mean_response_words:.2f}")

    table = results_frame(rows)
    write_outputs({**table_writers(table, out / "bridge_results"), **_figures(table, out)})  # one output set
    throughput["sft_tokens_per_s"] = sft_tokens / sft_seconds if sft_seconds > 0 else float("nan")
    throughput |= {"base_samples_per_s": base_res.samples_per_s,
                   "sft_samples_per_s": sft_sequences / sft_seconds if sft_seconds > 0 else float("nan"),
                   **eval_throughput(out / "eval")}
    log(f"bridge: throughput {throughput_line(throughput)}")
    timings["total_s"] = time.perf_counter() - t_start
    summary = _summary(timings, throughput, n_params, device, base_res)
    write_json(summary, out / "summary.json")
    log(f"bridge: done in {timings['total_s']:.0f} s, peak RSS {summary['peak_rss_gib']:.2f} GiB; table {out}/bridge_results.csv")
    return RunResult(table, out, summary)


def _summary(timings: dict, throughput: dict, n_params: int, device, base_res: PhaseResult) -> dict:
    """``summary.json``: wall times, throughput, peak memory of this invocation."""
    return {"timings_s": timings, "throughput_tokens_per_s": throughput, "peak_rss_gib": _peak_rss_gib(),
            "n_params": n_params, "device": str(device), "threads": torch.get_num_threads(),
            "base_epoch_losses": base_res.epoch_losses}


def _figures(table: pl.DataFrame, out: Path) -> dict:
    """Writers of the run's figures (markovfork.reporting.figures): pass@k of every run at its last epoch
    against the base, shrinkage at the largest k against rho per epoch, fork accuracy and
    confidence against epochs; none for an empty table."""
    from markovfork.reporting.figures import plot_fork_confidence, plot_pass_at_k, plot_shrinkage_vs_rho

    if table.is_empty():
        return {}
    return {
        out / "fig_pass_at_k.png": figure_writer(plot_pass_at_k(table)),
        out / "fig_shrinkage.png": figure_writer(plot_shrinkage_vs_rho(table, every_epoch=True)),
        out / "fig_fork.png": figure_writer(plot_fork_confidence(table, accuracy=True)),
    }


def find_run_config(checkpoint: str | Path) -> Path | None:
    """The ``config.json`` of the run a checkpoint belongs to (searched up to three levels up)."""
    p = Path(checkpoint).resolve()
    for parent in [p, *p.parents][:4]:
        if (parent / "config.json").is_file() and (parent / "base").is_dir():
            return parent / "config.json"
    return None


def evaluate_checkpoint(checkpoint: str | Path, cfg: RunConfig, *, problems: list[Problem] | None = None,
                        base: str | Path | None = None, out: str | Path | None = None,
                        log=None) -> pl.DataFrame:
    """Evaluate one local checkpoint (and optionally a base checkpoint on the same problems and
    samples' seed) and return results-table rows; with ``out``, also write ``eval_results``."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    checkpoint = Path(checkpoint)
    # every input is checked before the first (slow) evaluation
    for what, path in (("checkpoint", checkpoint), ("base", base)):
        if path is not None and not (Path(path) / "config.json").is_file():
            raise ValueError(f"{what}: no model checkpoint (config.json) in {path}")
    if out is not None:
        check_outputs(table_paths(Path(out) / "eval_results"))
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    if problems is not None and not problems:
        raise ValueError("problems must hold at least one test problem, got none")
    model = load_checkpoint(checkpoint).to(device)
    base_model = load_checkpoint(base).to(device) if base is not None else None
    tok = load_tokenizer(checkpoint)
    problems = problems if problems is not None else test_problems(cfg)
    ks = cfg.eval.ks
    seed = _derive_seed(cfg.seed, "sample")
    kwargs = dict(seed=seed, device=device, batch_sequences=cfg.eval.batch_sequences)
    post = evaluate_model(model, tok, problems, cfg.eval.n_samples, cfg.eval.sampling, **kwargs)
    if base is not None:
        base_eval = evaluate_model(base_model, tok, problems, cfg.eval.n_samples, cfg.eval.sampling, **kwargs)
    else:
        base_eval = None
    state_file = checkpoint / "trainer_state.pt"
    epoch = int(torch.load(state_file, map_location="cpu", weights_only=False)["epoch"]) if state_file.is_file() else 0
    rows = result_rows(base_eval or post, post, ks, rho=float("nan"), diversity="", seed=cfg.seed, epoch=epoch,
                       train_loss=float("nan"), extra={"checkpoint": str(checkpoint)})
    if base_eval is None:
        for r in rows:
            r["pass_at_k_base"] = r["shrinkage"] = float("nan")
    table = results_frame(rows)
    if out is not None:
        write_table(table, Path(out) / "eval_results")
    log(f"bridge eval: {checkpoint}: " + ", ".join(f"pass@{k} {v:.3f}" for k, v in zip(ks, post.pass_at_k(ks)))
        + f"; fork accuracy {post.fork_accuracy:.3f}; backtrack share {post.backtrack_share:.3f}, "
        f"response words {post.mean_response_words:.2f} "
        f"(budget {length_budget(problems, cfg.eval.sampling, tok)} tokens)")
    return table
