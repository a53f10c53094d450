"""Hypothesis strategies shared by the test modules: random small trees with problems."""

import numpy as np
from hypothesis import strategies as st

from markovfork.problems import Problems
from markovfork.tree import DECIPHERABLE, FORK, LEAF, tree_from_children

# Up to 9 nodes and 3 problems: every tree shape up to that size is reachable, paths are few
# enough to enumerate by hand, and each example runs in well under a millisecond.
MAX_NODES, MAX_PROBLEMS = 9, 3


@st.composite
def random_trees(draw):
    """A random tree in input numbering plus per-problem step probabilities and answers."""
    m = draw(st.integers(1, MAX_NODES))
    parent = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, m)]
    children = [[] for _ in range(m)]
    for v in range(1, m):
        children[parent[v]].append(v)
    for kids in children:  # child order independent of ids
        kids[:] = draw(st.permutations(kids))
    kind = [LEAF if not children[u] else draw(st.sampled_from([DECIPHERABLE, FORK])) for u in range(m)]
    easy = [True] + [draw(st.booleans()) for _ in range(1, m)]
    n_problems = draw(st.integers(1, MAX_PROBLEMS))
    # weights on a coarse grid with zeros allowed (probability-0 steps), at least one positive per row
    probs = np.zeros((n_problems, m))
    probs[:, 0] = 1.0
    for p in range(n_problems):
        for u in range(m):
            if children[u]:
                w = np.array([draw(st.integers(0, 4)) for _ in children[u]], dtype=float)
                if w.sum() == 0:
                    w[0] = 1.0
                probs[p, children[u]] = w / w.sum()
    leaves = [u for u in range(m) if not children[u]]
    correct = np.zeros((n_problems, m), dtype=bool)
    valid = np.zeros((n_problems, m), dtype=bool)
    for p in range(n_problems):
        for u in leaves:
            valid[p, u] = draw(st.booleans())
            correct[p, u] = valid[p, u] and draw(st.booleans())
    start = [draw(st.integers(0, m - 1)) for _ in range(n_problems)]
    return dict(children=children, kind=kind, easy=easy, probs=probs, correct=correct, valid=valid, start=start)


def build_case(case):
    """(tree, new_id, probs, problems) in breadth-first numbering from a :func:`random_trees` case."""
    tree, new_id = tree_from_children(case["children"], case["kind"], case["probs"][0], case["easy"])
    n_problems = case["probs"].shape[0]
    probs = np.empty_like(case["probs"])
    probs[:, new_id] = case["probs"]
    correct = np.zeros_like(case["correct"])
    correct[:, new_id] = case["correct"]
    valid = np.zeros_like(case["valid"])
    valid[:, new_id] = case["valid"]
    problems = Problems(
        start=new_id[case["start"]],
        correct=correct,
        valid=valid,
        features=np.zeros((n_problems, 0)),
        ids=np.arange(n_problems),
    )
    return tree, new_id, probs, problems
