"""The install layout: every package folder is listed for setuptools, cli and llm_bridge only
under the markovfork namespace, and the console script points into it."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE_FOLDERS = {"markovfork": "markovfork", "markovfork.cli": "cli", "markovfork.llm_bridge": "llm_bridge"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_installed_under_the_namespace():
    found = set()
    for name, folder in NAMESPACE_FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    setuptools = _pyproject()["tool"]["setuptools"]
    assert set(setuptools["packages"]) == found
    assert setuptools["package-dir"] == {k: v for k, v in NAMESPACE_FOLDERS.items() if k != "markovfork"}


def test_console_script_and_no_top_level_cli():
    project = _pyproject()["project"]
    assert project["scripts"] == {"markovfork": "markovfork.cli:main"}
    assert all(not p.startswith(("cli", "llm_bridge")) for p in _pyproject()["tool"]["setuptools"]["packages"])
