"""The task generator against an independent reference: every prompt is parsed back into a
graph (or a system of equations) and solved from the text alone, then compared with the
generator's answers; grading, ordering (no leak of the target arm), de-duplication, SFT mixes
and JSONL round trips."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from markovfork.llm_bridge.tasks import (
    COT_FORMATS,
    Example,
    TaskSpec,
    forward_arm_choice,
    generate_problems,
    grade,
    prompt_text,
    read_jsonl,
    response_text,
    sample_problem,
    sft_mix,
    split_problems,
    undirected_derivation,
    write_jsonl,
)


def solve_from_text(prompt: str):
    """Reference solver that sees only the prompt text: returns (path source->target, target value)."""
    edges_part, question = prompt.split(" | ")
    parent, const = {}, {}
    for edge in edges_part.split(" , "):
        w = edge.strip(" ,").split()
        if "=" in w:  # "v = u + c"
            v, _, u, _, c = w
            const[v] = int(c)
        else:  # "u v"
            u, v = w
        assert v not in parent, "every node has one parent"
        parent[v] = u
    q = question.split()
    if "=" in q:  # "s = v0 ; t ?"
        source, value, target = q[0], int(q[2]), q[4]
    else:  # "s t ?"
        source, value, target = q[0], 0, q[1]
    path = [target]
    while path[-1] != source:
        path.append(parent[path[-1]])
    path = path[::-1]
    for node in path[1:]:
        value += const.get(node, 0)
    return tuple(path), value


specs = st.builds(
    TaskSpec,
    arms=st.integers(2, 4),
    depth=st.integers(1, 6),  # 4 * 6 + 1 = 25 letters fit in 26
    answer=st.sampled_from(["path", "arith"]),
    max_constant=st.integers(1, 20),
    max_source_value=st.integers(0, 20),
)


@given(spec=specs, seed=st.integers(0, 2**32 - 1))
def test_answers_match_a_solver_that_reads_only_the_text(spec, seed):
    p = sample_problem(spec, np.random.default_rng(seed))
    path, value = solve_from_text(prompt_text(p))
    assert path == p.path
    assert len(path) == spec.depth + 1
    words = prompt_text(p).split()
    assert len(set(w for w in words if w.isalpha())) == spec.arms * spec.depth + 1  # distinct letters
    for fmt in COT_FORMATS:
        r = response_text(p, fmt)
        assert grade(p, r), (fmt, r)
        if spec.answer == "arith":
            assert r.split()[-2:] == ["#", str(value)]
        else:
            tail = r.split()[r.split().index(">") + 1:] if ">" in r.split() else r.split()[1:][::-1]
            assert tuple(tail) == path


@given(seed=st.integers(0, 2**32 - 1))
def test_arith_cot_steps_are_true_equations(seed):
    """Every 'x = number' in the forward CoT and every cumulative offset in the reverse CoT agrees
    with the values the reference solver computes from the prompt."""
    spec = TaskSpec(answer="arith", depth=4)
    p = sample_problem(spec, np.random.default_rng(seed))
    # the value of every node on the target path, each solved from the text alone
    values = {node: solve_from_text(prompt_text(p).replace(f"; {p.target} ?", f"; {node} ?"))[1] for node in p.path}
    fwd = response_text(p, "forward").split()
    for i, w in enumerate(fwd):
        if w == "=":
            assert int(fwd[i + 1]) == values[fwd[i - 1]]
    rev = response_text(p, "reverse").split()  # "< t = a + c1 = b + c2 ... = v # v"
    target_value = values[p.target]
    for i, w in enumerate(rev):
        if w == "+":
            assert values[rev[i - 1]] + int(rev[i + 1]) == target_value


def test_grading_rejects_wrong_answers():
    spec = TaskSpec(arms=3, depth=4)
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = sample_problem(spec, rng)
        other = (p.target_arm + 1) % spec.arms
        wrong_path = "> " + " ".join((p.source,) + p.arms[other])
        assert not grade(p, wrong_path)
        assert not grade(p, response_text(p, "forward")[:-2])  # truncated
        assert not grade(p, "< " + " ".join(reversed((p.source,) + p.arms[other])))
        assert not grade(p, "")
        assert forward_arm_choice(p, wrong_path) == other
    pa = sample_problem(TaskSpec(answer="arith"), rng)
    r = response_text(pa, "forward").split()
    r[-1] = str(int(r[-1]) + 1)
    assert not grade(pa, " ".join(r))


def test_edge_order_does_not_reveal_the_target_arm():
    """Over many problems the target arm's source edge comes first among the source's edges
    about 1/arms of the time, and the target arm's first letter is the alphabetically smaller one
    about half the time: neither order nor names identify the target."""
    spec = TaskSpec(arms=2, depth=5)
    problems = generate_problems(spec, 2000, seed=3)
    first_is_target, smaller_is_target = 0, 0
    for p in problems:
        prompt = prompt_text(p).split(" | ")[0].split(" , ")
        source_edges = [e.split()[1] for e in prompt if e.split()[0] == p.source]
        assert len(source_edges) == 2
        first_is_target += source_edges[0] == p.arms[p.target_arm][0]
        smaller_is_target += min(a[0] for a in p.arms) == p.arms[p.target_arm][0]
    assert binomtest(first_is_target, len(problems), 0.5).pvalue > 1e-3
    assert binomtest(smaller_is_target, len(problems), 0.5).pvalue > 1e-3


def test_problems_are_distinct_and_splits_disjoint_and_seeded():
    spec = TaskSpec(arms=2, depth=1)  # tiny space (26 * 25 * 24 / 2 graphs x 2 targets): duplicates happen
    ps = generate_problems(spec, 3000, seed=1)
    assert len({p.key() for p in ps}) == 3000
    train, test = split_problems(spec, 2000, 500, seed=4)
    assert not {p.key() for p in train} & {p.key() for p in test}
    train2, test2 = split_problems(spec, 2000, 500, seed=4)
    assert train2 == train and test2 == test
    assert split_problems(spec, 2000, 500, seed=5)[1] != test


def test_edge_order_is_not_part_of_the_identity():
    spec = TaskSpec()
    p = sample_problem(spec, np.random.default_rng(0))
    q = type(p)(**{**p.__dict__, "edge_order": tuple(reversed(p.edge_order))})
    assert p.key() == q.key() and prompt_text(p) != prompt_text(q)


def test_undirected_derivations_walk_both_ways_along_random_arms():
    spec = TaskSpec(arms=2, depth=5)
    rng = np.random.default_rng(0)
    ps = generate_problems(spec, 4000, seed=2)
    exs = [undirected_derivation(p, rng) for p in ps]
    kinds = Counter(e.format for e in exs)
    assert binomtest(kinds["walk-forward"], len(exs), 0.5).pvalue > 1e-3
    right = sum(grade(e.problem, e.response) for e in exs)
    assert binomtest(right, len(exs), 0.5).pvalue > 1e-3  # right only when the walk hits the target
    for e in exs[:200]:  # every walk follows real edges end to end
        words = e.response.split()[1:]
        nodes = words if e.format == "walk-forward" else words[::-1]
        assert nodes[0] == e.problem.source and any(tuple(nodes[1:]) == a for a in e.problem.arms)


@pytest.mark.parametrize("rho", [0.0, 0.25, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("diversity", ["data", "problem"])
def test_sft_mix_prevalence_and_diversity(rho, diversity):
    ps = generate_problems(TaskSpec(), 400, seed=0)
    mix = sft_mix(ps, rho, diversity, seed=1)
    assert len(mix) == 400
    fmts = Counter(e.format for e in mix)
    assert fmts["forward"] == round(rho * 400) and fmts["reverse"] == 400 - round(rho * 400)
    assert all(grade(e.problem, e.response) for e in mix)
    by_problem = Counter(e.problem.key() for e in mix)
    both = sum(c == 2 for c in by_problem.values())
    if diversity == "data":
        assert both == 0 and len(by_problem) == 400
    else:
        assert both == min(fmts["forward"], fmts["reverse"])
        for key, c in by_problem.items():
            if c == 2:
                assert {e.format for e in mix if e.problem.key() == key} == {"forward", "reverse"}


def test_rationale_mix_uses_rationale_format():
    ps = generate_problems(TaskSpec(), 10, seed=0)
    mix = sft_mix(ps, 1.0, "data", seed=0, fork_format="rationale")
    assert {e.format for e in mix} == {"rationale"}
    assert all(e.response.startswith("? ") for e in mix)


def test_jsonl_round_trip(tmp_path):
    spec = TaskSpec(answer="arith", depth=3)
    ps = generate_problems(spec, 20, seed=0)
    mix = sft_mix(ps, 0.5, "data", seed=0)
    write_jsonl(mix, tmp_path / "a.jsonl")
    write_jsonl(ps, tmp_path / "b.jsonl")
    assert list(read_jsonl(tmp_path / "a.jsonl")) == mix
    assert list(read_jsonl(tmp_path / "b.jsonl")) == ps
    assert all(isinstance(e, Example) for e in read_jsonl(tmp_path / "a.jsonl"))
    (tmp_path / "c.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(ValueError, match="c.jsonl:1"):
        list(read_jsonl(tmp_path / "c.jsonl"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"arms": 1}, "arms must be >= 2, got 1"),
        ({"depth": 0}, "depth must be >= 1, got 0"),
        ({"arms": 3, "depth": 9}, "arms \\* depth \\+ 1 must be <= 26"),
        ({"answer": "text"}, "answer must be one of"),
    ],
)
def test_bad_spec_is_a_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TaskSpec(**kwargs)


def test_bad_mix_is_a_value_error():
    ps = generate_problems(TaskSpec(), 4, seed=0)
    with pytest.raises(ValueError, match="rho must be in \\[0, 1\\], got 1.5"):
        sft_mix(ps, 1.5, "data", seed=0)
    with pytest.raises(ValueError, match="diversity must be 'data' or 'problem', got 'mode'"):
        sft_mix(ps, 0.5, "mode", seed=0)
