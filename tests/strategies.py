"""Hypothesis strategies shared by the test modules: the public ones of :mod:`markovfork.testing`
(random small trees with problems), imported from there so there is one place for them."""

from markovfork.testing import MAX_NODES, MAX_PROBLEMS, build_case, random_trees

__all__ = ["MAX_NODES", "MAX_PROBLEMS", "random_trees", "build_case"]
