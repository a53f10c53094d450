"""RL post-training on the reasoning tree: RLVR update rules (analytic and sampled), reward-model
reweighting at inference, and the multi-task chain (TMC) experiment of the Markovian view of
post-training. See ``docs/posttraining.md``."""
