"""The two engines that score a policy on a tree: exact dynamic programming and sampled rollouts."""
