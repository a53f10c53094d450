"""JSON text of any nesting depth, read and written without recursion.

The standard library's encoder and decoder recurse once per nesting level and give up near
Python's recursion limit (a tree file 600 levels deep). :func:`loads` uses ``json.loads`` and
falls back to an explicit-stack parser for deeper documents (same values, same
``json.JSONDecodeError`` on bad text); :func:`dumps` writes ``json.dumps(obj)``'s text (default
separators, no indentation) with an explicit stack.
"""

from __future__ import annotations

import json
import re
from json.decoder import JSONDecodeError, scanstring
from json.encoder import encode_basestring_ascii

__all__ = ["loads", "dumps"]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?")
_CONSTANTS = {"true": True, "false": False, "null": None, "NaN": float("nan"),
              "Infinity": float("inf"), "-Infinity": float("-inf")}


def loads(text: str):
    """``json.loads(text)``, also for documents nested deeper than the recursion limit."""
    try:
        return json.loads(text)
    except RecursionError:
        return _loads_iterative(text)


def _value(s: str, pos: int):
    """A scalar at ``pos`` (string, number or constant): (value, end), or (container, end) for
    an opening bracket (an empty dict or list to be filled)."""
    ch = s[pos:pos + 1]
    if ch == '"':
        return scanstring(s, pos + 1)
    if ch == "{":
        return {}, pos + 1
    if ch == "[":
        return [], pos + 1
    for word, value in _CONSTANTS.items():
        if s.startswith(word, pos):
            return value, pos + len(word)
    m = _NUMBER.match(s, pos)
    if m is None:
        raise JSONDecodeError("Expecting value", s, pos)
    integer, frac, exp = m.groups()
    return (float(integer + (frac or "") + (exp or "")) if frac or exp else int(integer)), m.end()


def _loads_iterative(s: str):
    """Explicit-stack JSON parser: ``stack`` holds the open containers (and a dict's pending key)."""
    stack: list = []  # [container, key]
    pos = _WS.match(s, 0).end()
    while True:
        value, pos = _value(s, pos)
        pos = _WS.match(s, pos).end()
        if isinstance(value, (dict, list)):
            if not _closes(value, s[pos:pos + 1]):  # a container opens: read its first item
                stack.append([value, None])
                if isinstance(value, dict):
                    pos = _key(s, pos, stack[-1])
                continue
            pos = _WS.match(s, pos + 1).end()  # {} or []
        # attach the finished value, closing containers for as long as they end here
        while True:
            if not stack:
                if pos != len(s):
                    raise JSONDecodeError("Extra data", s, pos)
                return value
            top = stack[-1]
            if isinstance(top[0], list):
                top[0].append(value)
            else:
                top[0][top[1]] = value
            ch = s[pos:pos + 1]
            if ch == ",":
                pos = _WS.match(s, pos + 1).end()
                if isinstance(top[0], dict):
                    pos = _key(s, pos, top)
                break
            if not _closes(top[0], ch):
                raise JSONDecodeError("Expecting ',' delimiter", s, pos)
            value = stack.pop()[0]
            pos = _WS.match(s, pos + 1).end()


def _closes(container, ch: str) -> bool:
    return ch == ("}" if isinstance(container, dict) else "]")


def _key(s: str, pos: int, top: list) -> int:
    """Read ``"key":`` into ``top[1]``; the position of the value after it."""
    if s[pos:pos + 1] != '"':
        raise JSONDecodeError("Expecting property name enclosed in double quotes", s, pos)
    top[1], pos = scanstring(s, pos + 1)
    pos = _WS.match(s, pos).end()
    if s[pos:pos + 1] != ":":
        raise JSONDecodeError("Expecting ':' delimiter", s, pos)
    return _WS.match(s, pos + 1).end()


def dumps(obj) -> str:
    """``json.dumps(obj)``'s text (separators ", " and ": "), for any nesting depth."""
    out: list[str] = []
    stack: list = [iter([obj])]  # iterators over the items still to write; the root is a 1-list
    closers: list[str] = [""]
    first: list[bool] = [True]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            first.pop()
            out.append(closers.pop())
            continue
        if not first[-1]:
            out.append(", ")
        first[-1] = False
        if isinstance(stack[-1], _DictItems):
            key, item = item
            out.append(encode_basestring_ascii(_key_text(key)) + ": ")
        if isinstance(item, dict):
            out.append("{")
            stack.append(_DictItems(item))
            closers.append("}")
            first.append(True)
        elif isinstance(item, (list, tuple)):
            out.append("[")
            stack.append(iter(item))
            closers.append("]")
            first.append(True)
        else:
            out.append(json.dumps(item))
    return "".join(out)


_END = object()


class _DictItems:
    """An iterator over a dict's items that :func:`dumps` can tell apart from a list's."""

    def __init__(self, d: dict):
        self._it = iter(d.items())

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)


def _key_text(key) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    if isinstance(key, (int, float)):
        return json.dumps(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
