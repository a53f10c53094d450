"""Limits and seed labels shared by the tree and problem generators."""

MAX_NODES = 2_000_000  # default cap on generated tree sizes (the (P, N) problem masks scale with it)

# Seed labels (see markovfork.plumbing.seeds): the tree and the problems draw from unrelated streams even
# when given the same seed. The values are the historical ones ("tr", "pr"), kept so that every
# generated tree and problem set stays bit-identical.
TREE_TAG, PROBLEM_TAG = 0x7472, 0x7072
