"""Docs that run: every fenced ``python`` block of README.md and docs/**/*.md is executed exactly
as shown, in a fresh Python process in an empty temporary directory.

A block runs as a script (``python block.py``) unless an HTML comment on the line just above its
fence says otherwise (invisible in the rendered page)::

    <!-- doc-test: pytest, cold-cache -->

Words, separated by commas:

- ``script`` (the default): ``python block.py``, exit status 0;
- ``pytest``: the block is a test file, ``python -m pytest block.py``, every test passes;
- ``output``: the next fenced block (no language) is exactly what the script prints;
- ``cold-cache``: ``NUMBA_CACHE_DIR`` is a new empty directory (nothing compiled yet);
- ``copy DIR``: DIR (relative to the repository) is copied to the same place under the temporary
  directory first, for blocks that read files of the repository by relative path (and may write
  beside them: the copies, never the repository's files);
- ``slow``: marked ``slow`` (left out of the fast lane, ``-m "not slow"``);
- ``skip: REASON``: not run (keep these rare: a block that needs a GPU run, a cluster, ...). It must
  be the last word, the rest of the comment is the reason.

Pages whose text is owned elsewhere (README.md, docs/fit.md) carry their words here instead, in
``MARKERS_KEPT_HERE``: (the file, a string of the block) -> the words, as in a marker.
"""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# (file, a string in the block) -> the words of a marker
MARKERS_KEPT_HERE = {
    ("docs/fit.md", "runs/sweep-s0/bridge_results.parquet"):
        "skip: reads runs/sweep-s0, the output of a bridge run (markovfork bridge run, GPU hours); the same fit on "
        "the committed sweep (docs/examples/prediction/README.md) runs",
}

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*$")
MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<words>.*?)\s*-->\s*$")
WORDS = {"script", "pytest", "output", "cold-cache", "slow"}


@dataclass
class Block:
    path: Path  # the markdown file
    line: int  # 1-based line of the opening fence
    code: str
    words: set = field(default_factory=set)
    copies: list = field(default_factory=list)
    skip: str | None = None
    output: str | None = None  # the next plain block, when the block has `output`

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_marker(text: str, where: str) -> tuple[set, list, str | None]:
    words, copies, skip = set(), [], None
    rest = text
    if "skip:" in rest:
        rest, skip = rest.split("skip:", 1)
        skip = skip.strip()
        if not skip:
            raise ValueError(f"{where}: 'skip:' needs a reason")
    for word in filter(None, (w.strip() for w in rest.split(","))):
        if word.startswith("copy "):
            copies.append(word[len("copy "):].strip())
        elif word in WORDS:
            words.add(word)
        else:
            raise ValueError(f"{where}: unknown doc-test word {word!r} (known: {sorted(WORDS)}, 'copy DIR', 'skip:')")
    if {"script", "pytest"} <= words:
        raise ValueError(f"{where}: a block is a script or a pytest file, not both")
    return words, copies, skip


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of one markdown file: python blocks as Blocks (with the plain block that
    follows, for `output`)."""
    lines = path.read_text().splitlines()
    fences = []  # (opening line index, indent, lang, body)
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m["indent"], m["lang"]
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"{path.relative_to(ROOT)}:{i + 1}: fence never closed")
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1:j]]
        fences.append((i, lang, "\n".join(body) + "\n"))
        i = j + 1
    blocks = []
    for n, (start, lang, body) in enumerate(fences):
        if lang != "python":
            continue
        block = Block(path, start + 1, body)
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        rel = str(path.relative_to(ROOT))
        kept = [words for (file, needle), words in MARKERS_KEPT_HERE.items() if file == rel and needle in body]
        if k >= 0 and (m := MARKER.match(lines[k])):
            kept.append(m["words"])
        if len(kept) > 1:
            raise ValueError(f"{block.name}: two markers (one in the page, one in MARKERS_KEPT_HERE)")
        if kept:
            block.words, block.copies, block.skip = parse_marker(kept[0], block.name)
        if "output" in block.words:
            following = fences[n + 1] if n + 1 < len(fences) else None
            if following is None or following[1] != "":
                raise ValueError(f"{block.name}: 'output' but no plain block follows")
            block.output = following[2]
        blocks.append(block)
    return blocks


BLOCKS = [block for path in DOCS for block in blocks_of(path)]


def _param(block: Block):
    marks = []
    if block.skip:
        marks.append(pytest.mark.skip(reason=block.skip))
    if "slow" in block.words:
        marks.append(pytest.mark.slow)
    return pytest.param(block, id=block.name, marks=marks)


def test_every_python_block_is_found():
    """The extraction sees the blocks the pages are known to have (a broken fence pattern would
    otherwise pass by finding nothing), every skip has a reason, and the skips stay rare."""
    names = {block.name.split(":")[0] for block in BLOCKS}
    assert {"README.md", "docs/testing.md", "docs/scaling.md", "docs/sft.md", "docs/model.md"} <= names
    assert len(BLOCKS) >= 10
    assert sum(1 for block in BLOCKS if "pytest" in block.words) >= 1
    assert any("cold-cache" in block.words for block in BLOCKS)
    skipped = [block for block in BLOCKS if block.skip]
    assert all(len(block.skip) > 20 for block in skipped)
    assert len(skipped) <= 3, [block.name for block in skipped]


def test_markers_are_checked():
    assert parse_marker("pytest, cold-cache, slow", "x") == ({"pytest", "cold-cache", "slow"}, [], None)
    assert parse_marker("copy docs/examples, slow", "x") == ({"slow"}, ["docs/examples"], None)
    assert parse_marker("slow, skip: needs a cluster, of any kind", "x") == ({"slow"}, [], "needs a cluster, of any kind")
    with pytest.raises(ValueError, match="unknown doc-test word 'scirpt'"):
        parse_marker("scirpt", "x")
    with pytest.raises(ValueError, match="needs a reason"):
        parse_marker("skip:", "x")


@pytest.mark.parametrize("block", [_param(block) for block in BLOCKS])
def test_doc_block_runs_as_shown(block, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for rel in block.copies:
        shutil.copytree(ROOT / rel, work / rel)
    env = dict(os.environ)
    if "cold-cache" in block.words:
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")  # empty: every kernel compiles
    if "pytest" in block.words:
        file = work / "test_doc_block.py"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", file.name]
    else:
        file = work / "doc_block.py"
        command = [sys.executable, file.name]
    file.write_text(block.code)
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{block.name} failed:\n{result.stdout}\n{result.stderr}"
    if "pytest" in block.words:
        assert re.search(r"\b[1-9]\d* passed\b", result.stdout) and "failed" not in result.stdout, result.stdout
    if block.output is not None:
        assert result.stdout == block.output
