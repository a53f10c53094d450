"""RL training in spans of iterations (issue 19.2: the interpreter reached between kernel calls)
equals one call over every iteration, bit for bit: parameters, stream state and snapshots
carried across calls, spans of 1 iteration up to more than the run."""

import numpy as np
import pytest

from markovfork.rl.config import RLConfig
from markovfork.rl.train import RLStart, iteration_spans, tabular_model, train_rl
from markovfork.tasks import fork_problems, fork_tree


@pytest.mark.parametrize("engine", ["analytic", "sampled"])
@pytest.mark.parametrize("method", ["grpo", "ppo"])
def test_chunked_training_equals_one_call(engine, method):
    tree = fork_tree(depth=3, branching=2, forks=1, easy_prob=0.7, seed=0)
    problems = fork_problems(tree, 4, seed=1)
    model = tabular_model(tree)
    theta = tree.edge_logit.copy()
    theta[0] = 0.0
    config = RLConfig(method=method, engine=engine, iterations=13, lr=0.5, group_size=4, batch_instances=2,
                      kl=0.1, ppo_epochs=2, seed=3)
    snaps = [0, 1, 5, 12, 13]
    runs = []
    for chunk in (10**6, 1, 2, 5, 13, 14, 100):
        spans = list(iteration_spans(config, tree, len(problems), chunk))
        assert spans[0][0] == 0 and spans[-1][1] == 14 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert len(spans) == -(-14 // min(chunk, 14))
        runs.append(train_rl(model, problems, config, RLStart(theta), snapshots=snaps, chunk_iterations=chunk))
    for trace in runs[1:]:
        for name in ("theta", "skill", "coef", "reward", "rejected"):
            assert np.array_equal(getattr(trace, name), getattr(runs[0], name), equal_nan=True), name
    assert not np.array_equal(runs[0].theta[0], runs[0].theta[-1])  # training moved the parameters
