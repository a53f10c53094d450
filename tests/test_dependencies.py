"""Dependencies run one way (``docs/architecture.md``): the import graph of every module under
``markovfork/``, ``llm_bridge/`` and ``cli/`` (read with ``ast``, nothing imported) has no cycle
among module-level imports, and no core module imports the bridge, the CLI, torch or
transformers, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"markovfork": ROOT / "markovfork", "markovfork.llm_bridge": ROOT / "llm_bridge", "markovfork.cli": ROOT / "cli"}
CORE_FORBIDDEN = ("markovfork.llm_bridge", "markovfork.cli", "torch", "transformers")


def module_files(packages=PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the packages (``__init__`` as the package)."""
    out = {}
    for name, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules) -> str:
    """The most specific known module that ``name`` names (``a.b.f`` -> ``a.b`` for a function f)."""
    while name and name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str, path: Path, modules) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in ``path``; ``from a import b`` names
    ``a.b`` when that is a module, else ``a``. Imports under ``if TYPE_CHECKING`` are skipped."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []

    def visit(node, top: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            out.extend((_resolve(a.name, modules), top) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((full if full in modules else _resolve(base, modules), top))
        inner = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, True)
    return out


def graph(files: dict[str, Path]) -> dict[str, dict[str, bool]]:
    """module -> {imported module: at module level?} (an import at both levels counts as module level)."""
    out = {}
    for module, path in files.items():
        edges: dict[str, bool] = {}
        for target, top in imports(module, path, files):
            edges[target] = edges.get(target, False) or top
        out[module] = edges
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), sorted (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return sorted(found)


def dependency_problems(files: dict[str, Path]) -> list[str]:
    """Every violation, one line each: a cycle of module-level imports, or a core module that
    imports the bridge, the CLI, torch or transformers (any level)."""
    g = graph(files)
    top = {m: {t for t, at_top in e.items() if at_top and t in files} for m, e in g.items()}
    problems = [f"import cycle: {' <-> '.join(c)}" for c in cycles(top)]
    for module, edges in sorted(g.items()):
        if module.startswith(("markovfork.llm_bridge", "markovfork.cli")) or not module.startswith("markovfork"):
            continue
        for target, at_top in sorted(edges.items()):
            if any(target == f or target.startswith(f + ".") for f in CORE_FORBIDDEN):
                problems.append(f"core module {module} imports {target} ({'module level' if at_top else 'in a function'})")
    return problems


def test_every_package_is_read():
    files = module_files()
    assert {"markovfork.tasks.path_star", "markovfork.llm_bridge.tasks", "markovfork.cli.fit_cmd"} <= set(files)
    g = graph(files)
    assert g["markovfork.llm_bridge.tasks"].get("markovfork.tasks.path_star") is True  # the bridge builds on the core


def test_dependencies_run_one_way():
    assert dependency_problems(module_files()) == []


def test_function_level_cycles_are_few():
    """Lazy (function-level) imports may close a loop that module-level ones do not; list them."""
    files = module_files()
    every = {m: {t for t in e if t in files} for m, e in graph(files).items()}
    assert cycles(every) == []


@pytest.mark.parametrize("planted, expected", [
    ("from markovfork.llm_bridge.config import RunConfig\n", "core module markovfork.model.tree imports markovfork.llm_bridge.config (module level)"),
    ("def f():\n    import torch\n", "core module markovfork.model.tree imports torch (in a function)"),
    ("from markovfork.sft import simulate\n", "import cycle: "),
])
def test_a_planted_import_is_caught(tmp_path, planted, expected):
    files = module_files()
    copy = tmp_path / "tree.py"
    copy.write_text(files["markovfork.model.tree"].read_text() + "\n" + planted)
    files["markovfork.model.tree"] = copy
    problems = dependency_problems(files)
    assert any(p.startswith(expected) for p in problems), problems
