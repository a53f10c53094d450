"""markovfork: predict coverage shrinkage (pass@1 up, pass@k down) under post-training.

Chain-of-thought is modelled as a walk over a branching reasoning tree; post-training
reweights the tree. The core (this package) imports no torch.
"""

from markovfork.estimators import PassAtKSummary, crossover_k, mean_pass_at_k, pass_at_k
from markovfork.exact import exact_pass_at_k, reach_probability, success_probability
from markovfork.generators import fork_problems, fork_tree, tmc_chain, tmc_problems, tmc_tree
from markovfork.policy import Decoding, Policy, problem_logits, transition_probs
from markovfork.problems import Problems
from markovfork.sampled import sample_leaves, sample_rollouts
from markovfork.sft.simulate import SimulationConfig, load_config, simulate, sweep
from markovfork.tree import Tree, load_tree, tree_from_dict

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "pass_at_k", "mean_pass_at_k", "PassAtKSummary", "crossover_k",
    "Tree", "tree_from_dict", "load_tree", "fork_tree", "tmc_chain", "tmc_tree",
    "Problems", "fork_problems", "tmc_problems",
    "Policy", "Decoding", "problem_logits", "transition_probs",
    "success_probability", "reach_probability", "exact_pass_at_k",
    "sample_leaves", "sample_rollouts",
    "SimulationConfig", "load_config", "simulate", "sweep",
]
