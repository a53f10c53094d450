"""Names of a package loaded on first use (PEP 562), so that importing the package costs nothing
until a name is touched: ``__getattr__, __dir__ = lazy_exports(__name__, globals(), EXPORTS)``
with ``EXPORTS = {module: [names]}``."""

from __future__ import annotations

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict, exports: dict[str, list[str]]):
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` (whose globals are
    ``namespace``) for the names of ``exports``; a loaded name is cached in ``namespace``."""
    module_of = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace.get("__all__", ())) | set(module_of))

    return __getattr__, __dir__
