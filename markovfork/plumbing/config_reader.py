"""One typed reader for configuration dataclasses: TOML tables in, checked dataclasses out.

The simulator (``markovfork.sft.config``) and the LLM bridge (``markovfork.llm_bridge.config``)
describe their configurations as dataclasses; this module checks every value against the field's
annotation, the same way for a parsed TOML file (:func:`from_mapping`) and for a constructor call
from Python (:func:`check_fields`, called from ``__post_init__``). Supported annotations: ``int``,
``float``, ``str``, ``bool``, ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]`` and
nested dataclasses (a TOML table). Nothing is coerced: ``"0.5"`` is not a number, ``2.5`` and
``true`` are not integers; the one widening is an integer where a float is expected. Lists become
tuples for tuple fields. Errors are one ``ValueError`` line naming the section, key and value,
``[train] ks must be a list of integers, got 5``, in the message style of :mod:`markovfork.plumbing.checks`.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing

from markovfork.plumbing import checks

__all__ = ["check_value", "check_fields", "from_mapping"]


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _kind(hint) -> str:
    """How a value of type ``hint`` is described in a message."""
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is bool:
        return "true or false"
    if dataclasses.is_dataclass(hint):
        return "a table"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} {_plural(args[0])}"
        return f"a list of {_plural(args[0])}"
    return getattr(hint, "__name__", str(hint))


def _plural(hint) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(hint, "values")


def check_value(hint, value, name: str):
    """``value`` checked against the annotation ``hint`` and returned in the field's form (a float
    for ``float``, a tuple for ``tuple[...]``); ``ValueError`` naming ``name`` otherwise."""
    if hint is int:
        return checks.integer(name, value)
    if hint is float:
        return checks.real(name, value)
    if hint is str or hint is bool:
        if not isinstance(value, hint):
            raise ValueError(f"{name} must be {_kind(hint)}, got {checks._show(value)}")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise ValueError(f"{name} must be a table ({hint.__name__}), got {checks._show(value)}")
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:  # X | None: None (above) or an X (TOML has no null: this is X's message)
            return check_value(inner[0], value, name)
        raise TypeError(f"unsupported annotation {hint} for {name}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be {_kind(hint)}, got {checks._show(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"{name} must be {_kind(hint)}, got {checks._show(value)}")
            items = [check_value(a, v, f"{name}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            items = [check_value(args[0], v, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    raise TypeError(f"unsupported annotation {hint} for {name}")


def check_fields(obj, prefix: str = "") -> None:
    """Check every field of the dataclass instance ``obj`` against its annotation (in place:
    the checked form, e.g. a float for an integer given to a float field, is stored back).
    Call it first in ``__post_init__``; works for frozen dataclasses too."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        checked = check_value(hints[f.name], value, prefix + f.name)
        if checked is not value:
            object.__setattr__(obj, f.name, checked)


def _section_prefix(section: str) -> str:
    """``[train] `` for a section, nothing at the top level: the prefix of a key's name."""
    return f"[{section}] " if section else ""


def from_mapping(cls, mapping, section: str = ""):
    """An instance of the dataclass ``cls`` from a (parsed TOML) mapping.

    Unknown keys are rejected; a nested dataclass field takes a table (itself read with
    :func:`from_mapping`, section ``<section>.<key>``); every other value is checked against its
    annotation before the constructor runs, and the constructor's own ``ValueError`` (range and
    cross-field checks) is prefixed with the section."""
    where = _section_prefix(section)
    if not isinstance(mapping, dict):
        name = f"[{section}]" if section else "the configuration"
        raise ValueError(f"{name} must be a table, got {checks._show(mapping)}")
    hints = _hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        place = f"in [{section}]" if section else "at the top level"
        raise ValueError(f"unknown key {unknown[0]!r} {place} (known: {', '.join(known)})")
    values = {}
    for key, value in mapping.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and not isinstance(value, hint):
            if not isinstance(value, dict):
                raise ValueError(f"{where}{key} must be a table, got {checks._show(value)}")
            values[key] = from_mapping(hint, value, f"{section}.{key}" if section else key)
        else:
            values[key] = check_value(hint, value, where + key)
    try:
        return cls(**values)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith("[") or not where else where + message) from None
