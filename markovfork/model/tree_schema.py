"""The schema of the nested tree JSON form, checked node by node (see :func:`markovfork.model.tree.tree_from_dict`).

A node is ``{"kind", "children", "label"}`` (a fork may add ``"valid_branches"``); a child also
carries ``"prob"`` and ``"easy"``. Any other key, and any value of the wrong type, is a
``ValueError`` naming the node's path, with the closest allowed key when the key looks like a typo.
"""

from __future__ import annotations

import difflib

import numpy as np

from markovfork.plumbing import checks

__all__ = ["DECIPHERABLE", "FORK", "LEAF", "KIND_NAMES", "path_text", "read_node"]

DECIPHERABLE, FORK, LEAF = 0, 1, 2
KIND_NAMES = {DECIPHERABLE: "decipherable", FORK: "fork", LEAF: "leaf"}
_KIND_CODES = {name: code for code, name in KIND_NAMES.items()}

_NODE_KEYS = ("kind", "children", "label", "valid_branches")
_CHILD_KEYS = ("prob", "easy", *_NODE_KEYS)


def path_text(steps: list[int]) -> str:
    """``root.children[i].children[j]...`` for the child positions ``steps`` (long paths shortened)."""
    parts = [f".children[{i}]" for i in steps]
    if len(parts) > 12:
        parts = parts[:4] + [f"...({len(parts) - 8} levels)..."] + parts[-4:]
    return "root" + "".join(parts)


def read_node(node, is_child: bool, n_siblings: int, where) -> tuple:
    """(kind code, prob, easy, label, valid_branches, children) of one node dict, checked
    against the schema; ``where()`` names the node in an error."""
    if not isinstance(node, dict):
        raise ValueError(f"{where()}: each node must be an object, got {node!r}")
    allowed = _CHILD_KEYS if is_child else _NODE_KEYS
    for key in node:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1) or [a for a in allowed if str(key).startswith(a)]
            if key in ("prob", "easy"):
                why = " (the root has no incoming step)"
            elif key in ("nodes", "edges", "id"):
                why = " (a tree is nested objects with 'children'; the id-based form is not read)"
            else:
                why = f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(allowed)})"
            raise ValueError(f"{where()}: unknown key {key!r}{why}")
    kids = node.get("children", [])
    if not isinstance(kids, list):
        raise ValueError(f"{where()}: 'children' must be a list, got {kids!r}")
    name = node.get("kind", "decipherable" if kids else "leaf")
    if not isinstance(name, str) or name not in _KIND_CODES:
        raise ValueError(f"{where()}: unknown kind {name!r} (expected one of {sorted(_KIND_CODES)})")
    label = node.get("label", 0)
    if not checks.is_integer(label):
        raise ValueError(f"{where()}: label must be an integer, got {label!r}")
    valid = node.get("valid_branches", 1)
    if "valid_branches" in node and name != "fork":
        raise ValueError(f"{where()}: valid_branches is only read at a fork, and this node is {name!r}")
    if not checks.is_integer(valid):
        raise ValueError(f"{where()}: valid_branches must be an integer, got {valid!r}")
    prob = node.get("prob", 1.0 / n_siblings)
    if not checks.is_real(prob):
        raise ValueError(f"{where()}: prob must be a number, got {prob!r}")
    easy = node.get("easy", True)
    if not isinstance(easy, (bool, np.bool_)):
        raise ValueError(f"{where()}: easy must be true or false, got {easy!r}")
    return _KIND_CODES[name], float(prob), bool(easy), int(label), int(valid), kids
