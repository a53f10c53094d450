"""The tree data model: validation naming the node, read-only arrays, tree_from_children and
TreeBuilder on bad input, the strict JSON schema, and exact round trips at any depth."""

import json
import time

import numpy as np
import pytest
from hypothesis import given

from markovfork.tasks import fork_tree, tmc_chain
from markovfork.model.tree import (
    DECIPHERABLE,
    FORK,
    LEAF,
    Tree,
    TreeBuilder,
    load_tree,
    tree_from_children,
    tree_from_dict,
    tree_from_json,
    tree_to_json,
)
from strategies import build_case, random_trees

def _spec(a_probs=(0.5, 0.5), root_probs=(0.5, 0.5)):
    return {
        "kind": "fork",
        "children": [
            {"prob": root_probs[0], "children": [{"prob": a_probs[0]}, {"prob": a_probs[1]}]},
            {"prob": root_probs[1]},
        ],
    }


@pytest.mark.parametrize(
    "spec, message",
    [
        (_spec(a_probs=(0.3, 0.3)), "node 1: transition probabilities sum to 0.6, not 1"),
        (_spec(a_probs=(1.1, -0.1)), r"node 1: transition probability to child 4 is negative \(-0.1\)"),
        (_spec(a_probs=(float("nan"), 0.5)), r"node 1: transition probability to child 3 is not finite \(nan\)"),
        (_spec(root_probs=(0.5, float("inf"))), r"node 0: transition probability to child 2 is not finite \(inf\)"),
        ({**_spec(), "valid_branches": 3}, r"node 0: valid_branches must be in \[1, 2\], got 3"),
        ({"children": [{"prob": "high"}]}, "root.children\\[0\\]: prob must be a number, got 'high'"),
        ({"kind": "knot", "children": [{}]}, "root: unknown kind 'knot'"),
        ({"kind": "leaf", "children": [{}]}, "node 0: a node is a leaf exactly when it has no children"),
    ],
)
def test_tree_validation_names_the_node(spec, message):
    with pytest.raises(ValueError, match=message):
        tree_from_dict(spec)


def test_load_tree_errors(tmp_path):
    with pytest.raises(ValueError, match="tree file not found"):
        load_tree(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_tree(bad)


def _assert_same_tree(a, b):
    for name in ("child_start", "parent", "depth", "kind", "edge_prob", "edge_easy", "label", "valid_branches"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


@pytest.mark.parametrize(
    "tree",
    [
        fork_tree(4, 3, 5, placement="random", valid_branches=2, easy_prob=0.55, seed=3),
        fork_tree(7, 2, 4, placement="bottom", dead_ends=True, easy_prob=0.9, seed=1),
        tmc_chain(4, 3, 3, 2, seed=11).tree,
    ],
    ids=["full", "dead_ends", "tmc"],
)
def test_json_round_trip_is_exact(tree, tmp_path):
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree.to_dict()))
    _assert_same_tree(tree, load_tree(path))
    _assert_same_tree(tree, tree_from_dict(json.loads(json.dumps(tree.to_dict()))))


@given(random_trees())
def test_json_round_trip_random_trees(case):
    tree, *_ = build_case(case)
    _assert_same_tree(tree, tree_from_dict(json.loads(json.dumps(tree.to_dict()))))


def _recursive_to_dict(tree, v=0):
    """The nested form written recursively, as the format defines it (small trees only)."""
    d = {"kind": ["decipherable", "fork", "leaf"][int(tree.kind[v])], "label": int(tree.label[v])}
    if tree.kind[v] == FORK:
        d["valid_branches"] = int(tree.valid_branches[v])
    kids = tree.children(v)
    if len(kids):
        d["children"] = [{"prob": float(tree.edge_prob[c]), "easy": bool(tree.edge_easy[c]), **_recursive_to_dict(tree, int(c))}
                         for c in kids]
    return d


@given(random_trees())
def test_to_dict_equals_the_recursive_definition(case):
    tree, *_ = build_case(case)
    assert json.dumps(tree.to_dict()) == json.dumps(_recursive_to_dict(tree))
    assert tree_to_json(tree) == json.dumps(_recursive_to_dict(tree), indent=2) + "\n"


TREE_ARRAYS = ("child_start", "parent", "depth", "kind", "edge_prob", "edge_easy", "label", "valid_branches")
ARGS = dict(child_start=[1, 3, 3, 3], parent=[-1, 0, 0], depth=[0, 1, 1], kind=[FORK, LEAF, LEAF],
            edge_prob=[1.0, 0.25, 0.75], edge_easy=[True, False, True], label=[0, 0, 1], valid_branches=[1, 1, 1])


# ---------------------------------------------------------------------------- read-only arrays


def test_arrays_are_read_only_and_the_callers_stay_writeable():
    tree = fork_tree(4, 2, 2, easy_prob=0.8, seed=1)
    for name in TREE_ARRAYS:
        with pytest.raises(ValueError, match="read-only"):
            getattr(tree, name)[:] = getattr(tree, name)[0]
    # the exact and sampled engines cache nothing that a write could make stale: writes fail
    with pytest.raises(ValueError, match="read-only"):
        tree.edge_easy[:] = True
    prob = np.array(ARGS["edge_prob"])
    own = Tree(**{**ARGS, "edge_prob": prob})
    prob[1] = 0.5  # the caller's array is copied, not frozen
    assert own.edge_prob[1] == 0.25 and prob.flags.writeable


def test_array_likes_are_accepted_in_the_kernels_dtypes():
    tree = Tree(**ARGS)  # plain lists: an AttributeError before
    ref, _ = tree_from_children([[1, 2], [], []], [FORK, LEAF, LEAF], [1.0, 0.25, 0.75], [True, False, True], [0, 0, 1])
    for name in TREE_ARRAYS:
        assert getattr(tree, name).dtype == getattr(ref, name).dtype and np.array_equal(getattr(tree, name), getattr(ref, name))
    assert tree.kind.dtype == np.int8 and tree.edge_easy.dtype == np.bool_


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(label=[0.0, 0.5, 1.0]), "tree.label must be integers, got dtype float64"),
        (dict(kind=[FORK, LEAF, 258]), r"tree.kind must be integers in \[-128, 127\], got 258"),
        (dict(kind=[5, LEAF, LEAF]), "unknown node kind 5"),
        (dict(edge_prob=["1", "0.25", "0.75"]), "tree.edge_prob must be real numbers"),
        (dict(edge_easy=[1, 0, 2]), "tree.edge_easy must be booleans"),
        (dict(parent=[[-1, 0, 0]]), r"tree.parent must be a 1-D array, got shape \(1, 3\)"),
        (dict(parent=[-1, 0, 5]), "tree.parent disagrees with tree.child_start"),
        (dict(child_start=[1, 3, 3, 9]), "tree.child_start must be non-decreasing offsets"),
        (dict(depth=[0, 1]), r"tree.depth must have shape \(3,\), got \(2,\)"),
    ],
)
def test_bad_tree_arrays(changes, message):
    with pytest.raises(ValueError, match=message):
        Tree(**{**ARGS, **changes})


# ---------------------------------------------------------------------------- tree_from_children, TreeBuilder


@pytest.mark.parametrize(
    "children, kind, message",
    [
        ([[1], [0]], [DECIPHERABLE, DECIPHERABLE], "children\\[1\\] lists the root, already reached"),  # never returned
        ([[0]], [DECIPHERABLE], "children\\[0\\] lists the root, already reached"),  # never returned
        ([[1], [2], [1]], [DECIPHERABLE] * 3, "children\\[2\\] lists node 1, already reached"),
        ([[1, 1], []], [DECIPHERABLE, LEAF], "children\\[0\\] lists node 1, already reached"),
        ([[1, 3], [], []], [DECIPHERABLE, LEAF, LEAF], r"children\[0\] lists node 3, but the nodes are 0..2"),  # IndexError
        ([[1, -1], [], []], [DECIPHERABLE, LEAF, LEAF], r"children\[0\] lists node -1, but the nodes are 0..2"),
        ([[1, 2], [], []], [DECIPHERABLE, LEAF], r"kind must have one entry per node \(3\), got shape \(2,\)"),  # IndexError
        ([[1], [], []], [DECIPHERABLE, LEAF, LEAF], "node 2 is not reached from node 0"),
        ([[1.0], []], [DECIPHERABLE, LEAF], r"children\[0\] must be node ids, got 1.0"),
        ([[1], 2], [DECIPHERABLE, LEAF], r"children\[1\] must be a list of node ids, got 2"),
        ([], [], "a tree needs at least one node"),
    ],
)
def test_tree_from_children_rejects_what_is_not_a_tree(children, kind, message):
    with pytest.raises(ValueError, match=message):
        tree_from_children(children, kind, [1.0] * len(children))


def test_tree_from_children_attribute_errors():
    with pytest.raises(ValueError, match="edge_prob has no entry for node 2"):
        tree_from_children([[1, 2], [], []], [0, 2, 2], {0: 1.0, 1: 0.5})
    with pytest.raises(ValueError, match="label must be integers, got dtype float64"):
        tree_from_children([[1, 2], [], []], [0, 2, 2], [1.0, 0.5, 0.5], label=[0, 1.5, 2])


@pytest.mark.parametrize("parent, message", [(3, r"\(0..0\), got 3"), (-1, r"\(0..0\), got -1"), (0.0, r"\(0..0\), got 0.0")])
def test_tree_builder_rejects_unknown_parents(parent, message):
    builder = TreeBuilder()
    builder.add(DECIPHERABLE)
    with pytest.raises(ValueError, match="parent must be the id of a node added before " + message):
        builder.add(LEAF, parent=parent)
    with pytest.raises(ValueError, match=r"\(none yet\), got 0"):
        TreeBuilder().add(LEAF, parent=0)


# ---------------------------------------------------------------------------- strict JSON schema


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"children": [{"prob": 0.5, "childen": [{}]}, {"prob": 0.5}]}, r"root.children\[0\]: unknown key 'childen' \(did you mean 'children'\?\)"),
        ({"children": [{"probability": 0.9}, {"probability": 0.1}]}, r"root.children\[0\]: unknown key 'probability' \(did you mean 'prob'\?\)"),
        ({"knd": "fork", "children": [{}, {}]}, r"root: unknown key 'knd' \(did you mean 'kind'\?\)"),
        ({"children": [{"easy": "no"}]}, r"root.children\[0\]: easy must be true or false, got 'no'"),
        ({"children": [{"prob": True}]}, r"root.children\[0\]: prob must be a number, got True"),
        ({"children": [{"prob": None}]}, r"root.children\[0\]: prob must be a number, got None"),
        ({"label": 1.7}, "root: label must be an integer, got 1.7"),
        ({"label": None}, "root: label must be an integer, got None"),
        ({"label": True}, "root: label must be an integer, got True"),
        ({"kind": "fork", "valid_branches": [1], "children": [{}, {}]}, r"root: valid_branches must be an integer, got \[1\]"),
        ({"valid_branches": 1, "children": [{}, {}]}, "root: valid_branches is only read at a fork, and this node is 'decipherable'"),
        ({"kind": 1, "children": [{}]}, "root: unknown kind 1"),
        ({"nodes": [{"id": 0, "children": [1]}, {"id": 1}]}, "root: unknown key 'nodes' .*the id-based form is not read"),
        ({"prob": 1.0, "children": [{}]}, r"root: unknown key 'prob' \(the root has no incoming step\)"),
        ({"children": {"prob": 1.0}}, "root: 'children' must be a list"),
        ({"children": [[]]}, r"root.children\[0\]: each node must be an object, got \[\]"),
        ({"children": [{}, {"children": [{"children": [{"knd": "leaf"}]}]}]}, r"root.children\[1\].children\[0\].children\[0\]: unknown key 'knd'"),
        ([], "a tree spec must be an object"),
    ],
)
def test_json_schema_is_strict(spec, message):
    with pytest.raises(ValueError, match=message):
        tree_from_dict(spec)


def test_deep_paths_are_named_shortly():
    spec = leaf = {}
    for _ in range(50):
        leaf["children"] = [{}]
        leaf = leaf["children"][0]
    leaf["lable"] = 3
    with pytest.raises(ValueError, match=r"^root(\.children\[0\]){4}\.\.\.\(42 levels\)\.\.\.(\.children\[0\]){4}: unknown key 'lable'"):
        tree_from_dict(spec)


def _chain(n):
    tree, _ = tree_from_children([[i + 1] for i in range(n)] + [[]], [DECIPHERABLE] * n + [LEAF], [1.0] * (n + 1),
                                 label=list(range(n + 1)))
    return tree


def test_600_levels_round_trip_through_a_file(tmp_path):
    tree = _chain(600)  # a RecursionError before, on export and on reading
    path = tmp_path / "deep.json"
    path.write_text(tree_to_json(tree))
    _assert_same_tree(tree, load_tree(path))
    assert tree_to_json(tree) == _deep_reference_json(tree) + "\n"  # one line, json.dumps's separators


def _deep_reference_json(tree):
    """json.dumps of the recursive definition, with the recursion limit raised for it."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5 * tree.n_nodes))
    try:
        return json.dumps(_recursive_to_dict(tree))
    finally:
        sys.setrecursionlimit(limit)


def test_100000_deep_chain_round_trips_in_seconds(tmp_path):
    tree = _chain(100_000)
    start = time.perf_counter()
    text = tree_to_json(tree)
    back = tree_from_json(text)
    path = tmp_path / "chain.json"
    path.write_text(text)
    from_file = load_tree(path)
    assert time.perf_counter() - start < 30
    _assert_same_tree(tree, back)
    _assert_same_tree(tree, from_file)
    assert text.count("\n") == 1  # deeper than INDENT_MAX_DEPTH: one line, not depth^2 spaces
