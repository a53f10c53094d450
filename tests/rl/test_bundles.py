"""The RL kernels' named argument bundles (issue 18.2): one Numba type of the settings for every
run, no kernel over 10 arguments, and compiled kernels loaded from Numba's cache in a fresh
process (NamedTuples of arrays and of mixed scalars cache like plain arrays)."""

import inspect
import os
import subprocess
import sys

import numba
import pytest

from markovfork.rl import engines, objectives, pretrain, reward_models, tree_ops
from markovfork.rl.config import ENGINES, METHODS, RLConfig, Settings

MAX_ARGS = 10


def _kernels():
    for module in (engines, objectives, tree_ops, reward_models, pretrain):
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj.py_func


def test_no_rl_kernel_takes_more_than_ten_arguments():
    arity = {name: len(inspect.signature(f).parameters) for name, f in _kernels()}
    assert "markovfork.rl.engines.train_sampled_kernel" in arity
    assert max(arity.values()) <= MAX_ARGS, {k: v for k, v in arity.items() if v > MAX_ARGS}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_config_gives_settings_of_one_numba_type(engine):
    base = numba.typeof(RLConfig(engine=engine).settings())
    for method in METHODS:
        config = RLConfig(method=method, engine=engine, iterations=3, lr=2, group_size=6, kl=1, reject_easy=2,
                          reject_reference="current", passk_k=2, train_skill=False)
        settings = config.settings()
        assert isinstance(settings, Settings) and numba.typeof(settings) == base
        assert settings.method == METHODS.index(method) and settings.reject_current and not settings.train_skill
        assert settings.lr == 2.0 and settings.group == 6 and settings.passk == 2


_CHILD = """
from markovfork.rl import engines
from markovfork.rl.config import RLConfig
from markovfork.rl.train import RLStart, tabular_model, train_rl
from markovfork.tasks import fork_problems, fork_tree
tree = fork_tree(depth=3, branching=2, forks=1, easy_prob=0.7, seed=0)
problems = fork_problems(tree, 3, seed=1)
theta = tree.edge_logit.copy()
theta[0] = 0.0
for engine in ("analytic", "sampled"):
    train_rl(tabular_model(tree), problems, RLConfig(engine=engine, iterations=3), RLStart(theta))
stats = [engines.train_analytic_kernel.stats, engines.train_sampled_kernel.stats]
print(sum(len(s.cache_hits) for s in stats), sum(len(s.cache_misses) for s in stats))
"""


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="no compiled kernels")
def test_training_kernels_load_from_the_cache_in_a_fresh_process():
    runs = [subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True) for _ in range(2)]
    hits, misses = map(int, runs[1].stdout.split())  # the first run compiled whatever was missing
    assert (hits, misses) == (2, 0), runs[1].stdout + runs[1].stderr
