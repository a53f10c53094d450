"""Tree summaries against independent per-path counts."""

import numpy as np

from markovfork.model.tree_summary import node_table, summarize_tree
from markovfork.tasks import fork_tree


def test_summary_and_node_table():
    tree = fork_tree(3, 3, 2, placement="bottom", dead_ends=True, easy_prob=0.5, seed=1)
    s = summarize_tree(tree)
    assert (s.n_nodes, s.n_forks, s.n_leaves, s.depth) == (tree.n_nodes, 2, tree.leaves.size, 3)
    assert s.n_internal == s.n_forks + s.n_decipherable == tree.n_nodes - s.n_leaves
    # independent count of all-easy root-to-leaf paths and forks per path
    easy = [all(tree.edge_easy[tree.path_to(int(v))]) for v in tree.leaves]
    forks_on = [int(np.sum(tree.kind[tree.path_to(int(v))[:-1]] == 1)) for v in tree.leaves]
    assert s.n_easy_paths == sum(easy) and s.max_forks_on_path == max(forks_on)
    table = node_table(tree)
    assert table.height == tree.n_nodes and table["kind"].to_list().count("fork") == 2
