"""markovfork: predict coverage shrinkage (pass@1 up, pass@k down) under post-training.

Chain-of-thought is modelled as a walk over a branching reasoning tree; post-training
reweights the tree. The core (this package) imports no torch.
"""

from markovfork.estimators import PassAtKSummary, crossover_k, mean_pass_at_k, pass_at_k

__version__ = "0.1.0"

__all__ = ["__version__", "pass_at_k", "mean_pass_at_k", "PassAtKSummary", "crossover_k"]
