"""Constructors of reasoning trees and of the problems posed on them.

Two families, one module each:

* :mod:`markovfork.tasks.fork`: **fork trees** (:func:`fork_tree`, :func:`fork_problems`),
  a ``branching``-ary tree in which ``forks`` internal nodes hide which branch is right;
* :mod:`markovfork.tasks.tmc`: **the multi-task tree-structured Markov chain (TMC)** of the
  Markovian view of post-training (:func:`tmc_chain`, :func:`tmc_tree`, :func:`tmc_problems`);
  :mod:`markovfork.tasks.tmc_policy`: its tabular softmax policy over chain edges
  (:func:`chain_edge_index`, :func:`chain_node_logits`) and a task's instance population
  (:func:`tmc_instance_population`).

Indices are 0-based everywhere.
"""

from markovfork.tasks._common import MAX_NODES
from markovfork.tasks.fork import PLACEMENTS, fork_problems, fork_tree
from markovfork.tasks.tmc import TMC, TaskPaths, TMCTask, tmc_chain, tmc_problems, tmc_tree
from markovfork.tasks.tmc_policy import (
    chain_edge_index,
    chain_node_logits,
    chain_row_probs,
    chain_row_start,
    chain_theta_from_transitions,
    chain_tv_distance,
    n_chain_edges,
    tmc_instance_population,
)

__all__ = [
    "MAX_NODES",
    "PLACEMENTS",
    "fork_tree",
    "fork_problems",
    "TMCTask",
    "TMC",
    "TaskPaths",
    "tmc_chain",
    "tmc_tree",
    "tmc_problems",
    "chain_row_start",
    "n_chain_edges",
    "chain_edge_index",
    "chain_node_logits",
    "chain_theta_from_transitions",
    "chain_row_probs",
    "chain_tv_distance",
    "tmc_instance_population",
]
