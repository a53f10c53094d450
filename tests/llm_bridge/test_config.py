"""Bridge run configs: typed TOML files through ``bridge run --config`` (one line, exit 2, nothing
written), the same checks on the constructors, and max_len against the positions a run uses."""

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from markovfork.cli import main
from markovfork.llm_bridge.config import (
    EvalConfig,
    ModelConfig,
    PhaseConfig,
    RunConfig,
    SamplingConfig,
    SFTConfig,
    config_from_dict,
    positions_needed,
)
from markovfork.llm_bridge.model import build_model
from markovfork.llm_bridge.tasks import TaskSpec, prompt_text, response_text, sample_problem, vocabulary
from markovfork.llm_bridge.tokenizer import build_tokenizer, encode_example

# (TOML text, words the one-line error must contain: the section, the key and the value)
BAD_FILES = [
    ('[model]\nn_layer = "2"\n', ["[model]", "n_layer", "'2'"]),
    ("[model]\nn_layer = 2.5\n", ["[model]", "n_layer", "2.5"]),
    ('[sft]\nrhos = "0.5"\n', ["[sft]", "rhos", "'0.5'"]),
    ('threads = "2"\n', ["threads", "'2'"]),
    ("[eval]\nepochs = 2\n", ["[eval]", "epochs", "2"]),
    ("[model]\nmax_len = 4\n", ["[model]", "max_len", "4"]),
    ("[sft]\nbetas = [0.9]\n", ["[sft]", "betas", "[0.9]"]),
    ("[sft]\nrhos = []\n", ["[sft]", "rhos", "[]"]),
    ("[base]\nbetas = [0.9, 1.5]\n", ["[base]", "betas[1]", "1.5"]),
    ("[sft]\nsteps_per_epoch = 3\n", ["unknown key 'steps_per_epoch' in [sft]"]),
    ('[eval.sampling]\ntop_p = "x"\n', ["[eval.sampling]", "top_p", "'x'"]),
    ("[eval]\nsampling = 3\n", ["[eval]", "sampling", "3"]),
    ("[eval]\nepochs = []\n", ["epochs", "[]"]),
    ('[task]\narms = "3"\n', ["[task]", "arms", "'3'"]),
    ("seed = true\n", ["seed", "True"]),
    ("seed = 1.0\n", ["seed", "1.0"]),
    ("device = 3\n", ["device", "3"]),
    ("model = 3\n", ["model", "3"]),
    ("[sft]\nrhos = [0.5, true]\n", ["[sft]", "rhos[1]", "True"]),
    ("[sft]\nbranch_rate = 1.5\n", ["[sft]", "branch_rate", "1.5"]),
    ('[sft]\nbranch_rate = "0.5"\n', ["[sft]", "branch_rate", "'0.5'"]),
    ("[sft]\nfilter_share = 1.0\n", ["[sft]", "filter_share", "1.0"]),
    ("[sft]\nbranch_rate = 0.5\n", ["[eval.sampling]", "max_new_tokens", "branch_rate > 0"]),
    ('[sft]\nbranch_rate = 0.5\nfork_format = "rationale"\n[eval.sampling]\nmax_new_tokens = 16\n',
     ["[sft]", "branch_rate", "'rationale'"]),
]


@pytest.mark.parametrize(("text", "named"), BAD_FILES, ids=[t.replace("\n", " ").strip() for t, _ in BAD_FILES])
def test_wrong_typed_config_file_one_line_nothing_written(tmp_path, text, named):
    path = tmp_path / "run.toml"
    path.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["bridge", "run", "--config", str(path), "--out-dir", str(out)])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.stderr
    for word in named:
        assert word in lines[0], lines[0]
    for vague in ("not supported between", "ufunc", "dictionary update sequence"):
        assert vague not in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ModelConfig(n_layer="2"),
        lambda: ModelConfig(n_layer=2.5),
        lambda: ModelConfig(dropout="0"),
        lambda: PhaseConfig(betas=(0.9,)),
        lambda: PhaseConfig(epochs=True),
        lambda: SFTConfig(rhos="0.5"),
        lambda: SFTConfig(rhos=[]),
        lambda: SFTConfig(diversities=[]),
        lambda: SamplingConfig(temperature="1"),
        lambda: EvalConfig(epochs=2),
        lambda: EvalConfig(sampling={"top_p": 0.5}),
        lambda: RunConfig(threads="2"),
        lambda: RunConfig(seed=True),
        lambda: TaskSpec(arms="2"),
        lambda: RunConfig(model=ModelConfig(max_len=4)),
    ],
)
def test_constructors_reject_wrong_types(make):
    with pytest.raises(ValueError, match="must be"):
        make()


def test_the_sft_phase_has_no_steps_per_epoch():
    """An SFT epoch is one pass over its data: the base phase's steps_per_epoch is not an SFT option."""
    assert "steps_per_epoch" in {f.name for f in dataclasses.fields(PhaseConfig)}
    assert "steps_per_epoch" not in {f.name for f in dataclasses.fields(SFTConfig)}


def test_round_trip_through_to_dict():
    cfg = config_from_dict({"seed": 3, "sft": {"rhos": [0, 1], "betas": [0.8, 0.9]}, "eval": {"sampling": {"top_p": 1}}})
    assert cfg.sft.rhos == [0.0, 1.0] and cfg.sft.betas == (0.8, 0.9) and type(cfg.eval.sampling.top_p) is float
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("answer", ["path", "arith"])
def test_max_len_of_positions_needed_fits_training_and_generation(answer):
    """A model with exactly ``positions_needed`` positions runs the longest training sequence and
    the longest generation of its task; the count matches the encoded lengths."""
    task = TaskSpec(depth=2, answer=answer, max_constant=3, max_source_value=3)
    sampling = SamplingConfig()
    need = positions_needed(task, sampling)
    tok = build_tokenizer(vocabulary(task))
    p = sample_problem(task, np.random.default_rng(5))
    longest = max((encode_example(tok, prompt_text(p), response_text(p, f)) for f in ("forward", "reverse", "rationale")),
                  key=lambda e: len(e.input_ids))
    response = len(longest.input_ids) - longest.prompt_len - 1  # without [EOS]
    assert need == longest.prompt_len + max(response + 1, response + 4 - 1)
    model = build_model(ModelConfig(n_layer=1, n_embd=8, n_head=1, max_len=need), tok, seed=0)
    with torch.no_grad():
        model(input_ids=torch.tensor([longest.input_ids]))  # training: prompt + response + [EOS]
        generation = longest.input_ids[: longest.prompt_len] + [3] * (response + 4 - 1)  # fed during generation
        assert len(generation) == need
        model(input_ids=torch.tensor([generation]))
        with pytest.raises(IndexError):
            model(input_ids=torch.tensor([generation + [3]]))  # one more position does not exist
    with pytest.raises(ValueError, match=f"max_len must be >= {need}"):
        RunConfig(task=task, model=ModelConfig(max_len=need - 1))
    RunConfig(task=task, model=ModelConfig(max_len=need))


def test_any_document_gives_a_config_or_one_line_value_error():
    """Random documents over the real key names: a config or a one-line ValueError, nothing else."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    keys = sorted({"bogus", "sampling", *(f.name for cls in (RunConfig, TaskSpec, ModelConfig, PhaseConfig, SFTConfig,
                                                             EvalConfig, SamplingConfig) for f in dataclasses.fields(cls))})
    leaf = st.one_of(st.integers(-3, 10**20), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3),
                     st.lists(st.one_of(st.integers(-2, 70), st.floats(-1, 2), st.text(max_size=2)), max_size=4))
    documents = st.recursive(leaf, lambda inner: st.dictionaries(st.sampled_from(keys), inner, max_size=4), max_leaves=12)

    @given(documents)
    @settings(max_examples=300, deadline=None)
    def check(doc):
        try:
            config_from_dict(doc)
        except ValueError as exc:
            assert "\n" not in str(exc)

    check()
