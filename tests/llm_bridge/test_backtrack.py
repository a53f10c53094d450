"""The backtrack format against a reader of the prompt text (every wrong-arm step is an edge of
the graph, the final segment the solver's answer), grading of backtrack / wrong-final-arm /
truncated responses, the branch-heavy mix's statistics (binomial and chi-square tests), the
filter's ranking against a brute-force reference, the config keys, the vocabulary extension, and
a tiny end-to-end run."""

import dataclasses
import json
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest, chisquare

from markovfork.llm_bridge.backtrack import (
    BACKTRACK,
    backtrack_response,
    backtrack_vocabulary,
    branch_count,
    branch_mix,
    filter_most_branching,
    longest_backtrack,
)
from markovfork.llm_bridge.config import (
    EvalConfig,
    ModelConfig,
    RunConfig,
    SamplingConfig,
    SFTConfig,
    config_from_dict,
    positions_needed,
)
from markovfork.llm_bridge.model import build_model, extend_vocabulary
from markovfork.llm_bridge.tasks import (
    Example,
    TaskSpec,
    forward_arm_choice,
    generate_problems,
    grade,
    prompt_text,
    response_text,
    sample_problem,
    sft_mix,
    vocabulary,
)
from markovfork.llm_bridge.tokenizer import build_tokenizer
from markovfork.llm_bridge.train import _fingerprint


specs = st.builds(TaskSpec, arms=st.integers(2, 4), depth=st.integers(1, 6), answer=st.sampled_from(["path", "arith"]))


def edges_from_text(prompt: str) -> set[tuple[str, str]]:
    """(parent, child) pairs read off the prompt text alone."""
    out = set()
    for edge in prompt.split(" | ")[0].split(" , "):
        w = edge.strip(" ,").split()
        out.add((w[2], w[0]) if "=" in w else (w[0], w[1]))
    return out


def path_from_text(prompt: str) -> list[str]:
    """Source-to-target path from the prompt text alone (parents followed back from the target)."""
    parent = {v: u for u, v in edges_from_text(prompt)}
    q = prompt.split(" | ")[1].split()
    source, target = (q[0], q[4]) if "=" in q else (q[0], q[1])
    path = [target]
    while path[-1] != source:
        path.append(parent[path[-1]])
    return path[::-1]


@given(spec=specs, seed=st.integers(0, 2**32 - 1), data=st.data())
def test_backtrack_response_walks_a_wrong_arm_then_answers(spec, seed, data):
    p = sample_problem(spec, np.random.default_rng(seed))
    wrong = data.draw(st.sampled_from([a for a in range(spec.arms) if a != p.target_arm]))
    g = data.draw(st.integers(1, spec.depth))
    r = backtrack_response(p, wrong, g)
    head, tail = r.split(f" {BACKTRACK} ")
    # the detour: g real edges away from the source, along a branch that does not lead to the target
    nodes = head.split()[1::4] if spec.answer == "arith" else head.split()[1:]
    assert len(nodes) == g + 1 and nodes[0] == p.source
    edges = edges_from_text(prompt_text(p))
    assert all((u, v) in edges for u, v in zip(nodes, nodes[1:]))
    path = path_from_text(prompt_text(p))
    assert nodes[1] != path[1]
    # then exactly the forward answer; graded right, final arm the target's
    assert tail == response_text(p, "forward") and (tail.split()[1:-2:4] if spec.answer == "arith" else tail.split()[1:]) == path
    assert branch_count(r) == 1 and grade(p, r) and forward_arm_choice(p, r) == p.target_arm
    # every truncation (the length budget running out) is wrong
    words = r.split()
    assert not any(grade(p, " ".join(words[:i])) for i in range(len(words)))
    # the mirror image: enter the target arm, backtrack, end in the wrong arm: wrong
    mirror = dataclasses.replace(p, target_arm=wrong)
    r2 = backtrack_response(mirror, p.target_arm, g)
    assert forward_arm_choice(p, r2) == wrong  # arith grades the value, which two arms may share
    assert grade(p, r2) == (spec.answer == "arith" and mirror.target_value == p.target_value)
    assert len(words) <= longest_backtrack(spec)


def test_backtrack_examples_by_hand():
    p = sample_problem(TaskSpec(depth=2), np.random.default_rng(0))
    s, (a1, a2), (b1, b2) = p.source, p.arms[p.target_arm], p.arms[1 - p.target_arm]
    assert backtrack_response(p, 1 - p.target_arm, 2) == f"> {s} {b1} {b2} ! > {s} {a1} {a2}"
    assert grade(p, f"> {s} {b1} ! > {s} {a1} {a2}")
    assert not grade(p, f"> {s} {a1} ! > {s} {b1} {b2}")
    assert not grade(p, f"> {s} {b1} ! {s} {a1} {a2}")  # the answer after the backtrack needs its '>'
    assert not grade(p, f"> {s} {b1} {b2} !")  # budget ran out after the backtrack
    with pytest.raises(ValueError, match="wrong_arm"):
        backtrack_response(p, p.target_arm, 1)
    with pytest.raises(ValueError, match="g must be in 1..2, got 3"):
        backtrack_response(p, 1 - p.target_arm, 3)


def _forward_pool(spec, n, seed=0):
    return sft_mix(generate_problems(spec, n, seed=seed), 1.0, "data", seed=seed)


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 1.0])
def test_branch_share_wrong_arm_and_g_are_as_drawn(rate):
    spec = TaskSpec(arms=3, depth=4)
    pool = _forward_pool(spec, 3000)
    mixed = branch_mix(pool, rate, seed=7)
    assert [e.problem for e in mixed] == [e.problem for e in pool]
    bt = [e for e in mixed if e.format == "backtrack"]
    assert all(e.response == o.response for e, o in zip(mixed, pool) if e.format == "forward")
    assert binomtest(len(bt), len(mixed), rate).pvalue > 1e-3 if 0 < rate < 1 else len(bt) == rate * len(mixed)
    if bt:
        first = [forward_arm_choice(e.problem, " ".join(e.response.split()[:3])) for e in bt]
        offsets = Counter((f - e.problem.target_arm) % 3 for f, e in zip(first, bt))
        assert set(offsets) == {1, 2} and chisquare([offsets[1], offsets[2]]).pvalue > 1e-3
        g = Counter(e.response.split().index(BACKTRACK) - 2 for e in bt)
        assert set(g) == {1, 2, 3, 4} and chisquare([g[i] for i in (1, 2, 3, 4)]).pvalue > 1e-3
    assert branch_mix(pool, rate, seed=7) == mixed


def test_branch_mix_leaves_reverse_trajectories_alone():
    problems = generate_problems(TaskSpec(), 200, seed=1)
    mix = sft_mix(problems, 0.5, "data", seed=1)
    out = branch_mix(mix, 1.0, seed=2)
    assert [e for e in out if e.format == "reverse"] == [e for e in mix if e.format == "reverse"]
    assert all(e.format == "backtrack" for e in out if e.format != "reverse")


def _fake(counts):
    p = sample_problem(TaskSpec(), np.random.default_rng(0))
    return [Example(p, prompt_text(p), " ".join(["> x"] + ["!"] * c), "backtrack") for c in counts]


@given(counts=st.lists(st.integers(0, 3), min_size=1, max_size=40), share=st.floats(0, 0.99), seed=st.integers(0, 99))
def test_filter_drops_exactly_the_most_branching_share(counts, share, seed):
    ex = _fake(counts)
    for i, e in enumerate(ex):  # tag each example so kept ones can be identified
        ex[i] = dataclasses.replace(e, prompt=str(i))
    kept = filter_most_branching(ex, share, seed)
    kept_idx = [int(e.prompt) for e in kept]
    dropped = sorted(set(range(len(ex))) - set(kept_idx))
    assert len(dropped) == int(round(share * len(ex)))
    assert kept_idx == sorted(kept_idx)  # order preserved
    if dropped and kept_idx:
        assert min(counts[i] for i in dropped) >= max(counts[i] for i in kept_idx)
    # brute force: the kept multiset of counts is the smallest len(kept) counts
    assert sorted(counts[i] for i in kept_idx) == sorted(counts)[: len(kept_idx)]
    assert filter_most_branching(ex, share, seed) == kept


def test_filter_ties_are_broken_by_the_seed():
    ex = [dataclasses.replace(e, prompt=str(i)) for i, e in enumerate(_fake([1] * 50 + [0] * 50))]
    picks = {tuple(e.prompt for e in filter_most_branching(ex, 0.3, s)) for s in range(5)}
    assert len(picks) > 1  # 30 of the 50 tied one-branch examples, which depends on the seed
    assert all(sum(int(i) < 50 for i in pick) == 20 for pick in picks)
    pool = branch_mix(_forward_pool(TaskSpec(), 1000), 0.5, seed=3)
    kept = filter_most_branching(pool, 0.5, seed=4)
    assert len(kept) == 500 and sum(branch_count(e.response) for e in kept) == max(0, sum(
        branch_count(e.response) for e in pool) - 500)
    with pytest.raises(ValueError, match=r"filter_share must be a finite number in \[0, 1\), got 1.0"):
        filter_most_branching(pool, 1.0, 0)
    with pytest.raises(ValueError, match=r"branch_rate must be a finite number in \[0, 1\], got 1.5"):
        branch_mix(pool, 1.5, 0)


SAMPLING = SamplingConfig(max_new_tokens=16)


@pytest.mark.parametrize(("sft", "sampling", "match"), [
    (dict(branch_rate=1.5), SAMPLING, r"branch_rate must be a finite number in \[0, 1\], got 1.5"),
    (dict(branch_rate=-0.1), SAMPLING, "branch_rate"),
    (dict(filter_share=1.0), SAMPLING, r"filter_share must be a finite number in \[0, 1\), got 1.0"),
    (dict(branch_rate=0.5, fork_format="rationale"), SAMPLING, "branch_rate > 0 needs fork_format 'forward'"),
    (dict(branch_rate=0.5), SamplingConfig(), r"max_new_tokens must be set when \[sft\] branch_rate > 0"),
])
def test_config_rejects_bad_branch_settings_in_one_line(sft, sampling, match):
    with pytest.raises(ValueError, match=match) as info:
        RunConfig(sft=SFTConfig(**sft), eval=EvalConfig(sampling=sampling))
    assert "\n" not in str(info.value)


def test_config_round_trip_and_positions_cover_the_longest_backtrack():
    cfg = RunConfig(sft=SFTConfig(rhos=[1.0], branch_rate=0.5, filter_share=0.5), eval=EvalConfig(sampling=SAMPLING))
    assert config_from_dict(cfg.to_dict()) == cfg
    assert config_from_dict({"sft": {"branch_rate": 0, "filter_share": 0}}) == RunConfig()  # integers accepted
    for answer in ("path", "arith"):
        task = TaskSpec(depth=3, answer=answer)
        plain = positions_needed(task, SamplingConfig(max_new_tokens=2))
        p = sample_problem(task, np.random.default_rng(0))
        need = len(prompt_text(p).split()) + longest_backtrack(task) + 1
        assert positions_needed(task, SamplingConfig(max_new_tokens=2), backtrack=True) == max(plain, need)
    assert positions_needed(TaskSpec(), SAMPLING) == 34 + 16 - 1  # prompt + budget - 1
    assert positions_needed(TaskSpec(), SAMPLING, backtrack=True) == 34 + 15 + 1  # prompt + "> s w1..w5 ! > s a1..a5" + [EOS]


def test_fingerprint_of_runs_without_branching_is_unchanged():
    """Runs made before the branch keys existed still resume: at 0 the keys are left out."""
    fp = _fingerprint(SFTConfig(), 10, 0)["phase"]
    assert "branch_rate" not in fp and "filter_share" not in fp
    assert _fingerprint(SFTConfig(branch_rate=0.5), 10, 0)["phase"]["branch_rate"] == 0.5


def test_backtrack_vocabulary_appends_one_token_and_keeps_the_others():
    task = TaskSpec()
    plain, extended = build_tokenizer(vocabulary(task)), build_tokenizer(backtrack_vocabulary(task))
    assert len(plain) == 38 and len(extended) == 39
    assert extended.convert_tokens_to_ids(BACKTRACK) == 38
    assert {w: i for w, i in extended.get_vocab().items() if w != BACKTRACK} == plain.get_vocab()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_extend_vocabulary_keeps_old_logits_and_adds_the_mean_row(arch):
    task = TaskSpec(depth=2)
    plain, extended = build_tokenizer(vocabulary(task)), build_tokenizer(backtrack_vocabulary(task))
    model = build_model(ModelConfig(arch=arch, n_layer=1, n_embd=16, n_head=2, max_len=32), plain, seed=0)
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
        old = model.get_input_embeddings().weight.clone()
    extend_vocabulary(model, len(extended))
    with torch.no_grad():
        after = model(input_ids=ids).logits
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == 39
    torch.testing.assert_close(emb[38], old.mean(dim=0))
    torch.testing.assert_close(after[..., :38], before)
    assert extend_vocabulary(model, 39) is model
    with pytest.raises(ValueError, match="more than the tokenizer's 38"):
        extend_vocabulary(model, 38)


@pytest.fixture(scope="module")
def tiny_branch_run(tmp_path_factory):
    from markovfork.llm_bridge.run import run_bridge

    cfg = RunConfig(
        threads=1, task=TaskSpec(depth=2), model=ModelConfig(n_layer=1, n_embd=16, n_head=2, max_len=32),
        sft=SFTConfig(epochs=1, n_problems=40, rhos=[1.0], branch_rate=0.5, filter_share=0.25),
        eval=EvalConfig(n_test=4, n_samples=4, epochs=[1], sampling=SamplingConfig(max_new_tokens=9)),
    )
    cfg = dataclasses.replace(cfg, base=dataclasses.replace(cfg.base, epochs=1, steps_per_epoch=2))
    out = tmp_path_factory.mktemp("branch") / "out"
    return run_bridge(cfg, out, log=lambda m: None)


def test_tiny_branch_heavy_run(tiny_branch_run):
    from transformers import AutoTokenizer

    res, out = tiny_branch_run, tiny_branch_run.out
    assert len(AutoTokenizer.from_pretrained(out / "base" / "epoch-001")) == 38
    assert AutoTokenizer.from_pretrained(out / "sft" / "data-rho1" / "epoch-001").convert_tokens_to_ids("!") == 38
    data = [json.loads(line) for line in (out / "data" / "sft-data-rho1.jsonl").read_text().splitlines()]
    kept_branched = sum(BACKTRACK in d["response"] for d in data)
    assert len(data) == 30 and 0 < kept_branched < 30  # 40 * 0.25 dropped, all of them branched
    row = res.table.filter(res.table["epoch"] == 1).row(0, named=True)
    assert row["train_examples"] == 30 and row["train_branch_share"] == kept_branched / 30 and row["branch_rate"] == 0.5
    assert 0 <= row["backtrack_share"] <= 1 and 0 <= row["response_words"] <= 9


def test_the_length_budget_bounds_every_sampled_response():
    from markovfork.llm_bridge.evaluate import length_budget, sample_responses

    task = TaskSpec(depth=2)
    tok = build_tokenizer(backtrack_vocabulary(task))
    model = extend_vocabulary(build_model(ModelConfig(n_layer=1, n_embd=16, n_head=2, max_len=40),
                                          build_tokenizer(vocabulary(task)), seed=0), len(tok))
    problems = generate_problems(task, 3, seed=0)
    assert length_budget(problems, SamplingConfig()) == 8 + 4  # rationale "? t a1 s > s a1 t", + 4
    for budget in (1, 5):
        sampling = SamplingConfig(max_new_tokens=budget)
        assert length_budget(problems, sampling) == budget
        out = sample_responses(model, tok, [prompt_text(p) for p in problems], 8, sampling, max_new_tokens=budget,
                               seed=0, device=torch.device("cpu"))
        assert max(len(r.split()) for rs in out for r in rs) <= budget


def test_bridge_eval_takes_another_budget(tiny_branch_run, tmp_path):
    from click.testing import CliRunner

    from markovfork.cli import main

    ckpt = tiny_branch_run.out / "sft" / "data-rho1" / "epoch-001"
    r = CliRunner().invoke(main, ["bridge", "eval", str(ckpt), "--max-new-tokens", "3", "--out-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "budget 3 tokens" in r.output
    import polars as pl

    got = pl.read_parquet(tmp_path / "eval_results.parquet")
    assert (got["response_words"] <= 3).all() and got["response_words"][0] > 0
    r = CliRunner().invoke(main, ["bridge", "eval", str(ckpt), "--max-new-tokens", "0"])
    assert r.exit_code == 2 and "max_new_tokens must be >= 1, got 0" in r.output
