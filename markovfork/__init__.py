"""markovfork: predict coverage shrinkage (pass@1 up, pass@k down) under post-training.

Chain-of-thought is modelled as a walk over a branching reasoning tree; post-training
reweights the tree. The core (this package) imports no torch.

The names below are loaded on first use (PEP 562), so ``import markovfork`` costs nothing
until a name is touched, and ``import markovfork.cli`` can set up the environment (thread
counts) before NumPy is first imported.
"""

from __future__ import annotations

from markovfork.plumbing import numba_start
from markovfork.plumbing.lazy import lazy_exports

numba_start.install()  # Numba's CPU target without all of scipy.linalg (see that module)

__version__ = "0.1.0"

_EXPORTS = {
    "markovfork.metrics.estimators": ["pass_at_k", "mean_pass_at_k", "PassAtKSummary", "crossover_k"],
    "markovfork.metrics.extrapolate": ["BetaBinomialFit", "fit_beta_binomial", "extrapolate_pass_at_k"],
    "markovfork.model.tree": ["Tree", "tree_from_dict", "load_tree"],
    "markovfork.tasks": ["fork_tree", "fork_problems", "tmc_chain", "tmc_tree", "tmc_problems"],
    "markovfork.model.problems": ["Problems"],
    "markovfork.model.policy": ["Policy", "Decoding", "problem_logits", "transition_probs"],
    "markovfork.engines.exact": ["success_probability", "reach_probability", "exact_pass_at_k"],
    "markovfork.engines.sampled": ["sample_leaves", "sample_rollouts"],
    "markovfork.sft.simulate": ["SimulationConfig", "load_config", "simulate", "sweep"],
    "markovfork.rl.config": ["RLConfig"],
    "markovfork.rl.train": ["train_rl"],
    "markovfork.experiments.tmc": ["TMCConfig", "run_tmc"],
    "markovfork.experiments.posttrain": ["PosttrainConfig", "posttrain"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *_MODULE_OF]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
