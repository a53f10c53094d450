"""What the SFT models of the backtracking measurement sample (docs/bridge.md, "Branch-heavy
trajectories"): the run's own samples at one epoch (same seed, so the same draws as the run's
evaluation), sorted into outcomes. Writes docs/examples/backtrack/responses.json.

    python docs/examples/backtrack/responses.py runs/backtrack-convergent runs/backtrack-branch runs/backtrack-branch-filter

Outcomes per sample (path answers): ``direct`` (no backtrack) right / wrong, ``backtrack`` right /
wrong; for backtracking samples, whether the first arm entered was the target's, whether the final
answer re-enters the arm just abandoned, where the first
backtrack came (g: nodes walked into the arm, g = depth is at the leaf, where the leaf is seen not
to be the target), and the share of samples that used the whole budget (cut off).
"""

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from markovfork.llm_bridge.backtrack import BACKTRACK
from markovfork.llm_bridge.config import config_from_dict
from markovfork.llm_bridge.evaluate import evaluate_model, length_budget
from markovfork.llm_bridge.model import load_checkpoint
from markovfork.llm_bridge.run import test_problems
from markovfork.llm_bridge.tasks import forward_arm_choice, grade
from markovfork.plumbing.seeds import child_seed

HERE = Path(__file__).parent


def outcomes(problems, responses, budget) -> dict:
    c = Counter()
    g_counts = Counter()
    for p, rs in zip(problems, responses):
        for r in rs:
            words = r.split()
            ok = grade(p, r)
            if len(words) >= budget:
                c["cut_by_budget"] += 1
            if BACKTRACK not in words:
                c["direct_right" if ok else "direct_wrong"] += 1
                continue
            c["backtrack_right" if ok else "backtrack_wrong"] += 1
            i = words.index(BACKTRACK)
            first = forward_arm_choice(p, " ".join(words[:3]))
            c["backtrack_first_arm_target" if first == p.target_arm else "backtrack_first_arm_other"] += 1
            c["backtrack_twice_or_more"] += words.count(BACKTRACK) > 1
            c["backtrack_same_arm_again"] += forward_arm_choice(p, r) == first  # re-entered the arm it left
            g_counts[i - 2] += 1
    n = sum(len(rs) for rs in responses)
    out = {k: v / n for k, v in sorted(c.items())}
    out["first_backtrack_g"] = {int(g): v / n for g, v in sorted(g_counts.items())}
    out["n_samples"] = n
    return out


def main(dirs, epoch=12):
    torch.set_num_threads(2)
    result = {}
    for d in map(Path, dirs):
        cfg = config_from_dict(json.loads((d / "config.json").read_text()))
        ckpt = d / "sft" / "data-rho1" / f"epoch-{epoch:03d}"
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
        test = test_problems(cfg)
        res = evaluate_model(load_checkpoint(ckpt), tok, test, cfg.eval.n_samples, cfg.eval.sampling,
                             seed=child_seed(cfg.seed, "sample"), device=torch.device("cpu"),
                             batch_sequences=cfg.eval.batch_sequences, keep_responses=True)
        budget = length_budget(test, cfg.eval.sampling)
        cached = json.loads((d / "eval" / f"data-rho1-epoch{epoch:03d}.json").read_text())
        assert np.array_equal(res.correct, cached["correct"]), "not the run's own samples"
        name = d.name.removeprefix("backtrack-")
        result[name] = {"epoch": epoch, "budget": budget, **outcomes(test, res.responses, budget),
                        "examples": [r for r in res.responses[0][:8]]}
        print(name, json.dumps(result[name]))
    (HERE / "responses.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
