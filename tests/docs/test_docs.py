"""The documentation is tested: its examples run and its API is documented.

* Every ```` ```python ```` block of every ``docs/**/*.md`` page and of the
  README runs, the blocks of one page in order in one fresh namespace (so a
  page can build on its earlier blocks), in a temporary working directory.
  Blocks fenced as ``text``, ``pycon``, ``bash`` or anything else are shown,
  not run.
* Every ``Example:`` in the docstrings of memguard's modules runs as a
  doctest (``ELLIPSIS`` and ``NORMALIZE_WHITESPACE`` on).
* Every public name (in a public module's ``__all__``) defined in that
  module has a docstring, since the API reference is generated from them.
"""

from __future__ import annotations

import builtins
import doctest
import gc
import importlib
import inspect
import linecache
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from memguard import _counter

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "memguard"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page."""

    language: str
    line: int
    """The 1-based line of the block's first code line in the page."""
    code: str
    native: bool = False
    """Marked ``<!-- needs the native counter -->`` on the line before its fence."""


#: The comment that marks an example whose figures only the native counter gives.
NEEDS_NATIVE = "<!-- needs the native counter -->"


def fenced_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        info = match["info"].strip().lstrip("{").lstrip(".")
        language = info.split()[0].rstrip("}") if info else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        before = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        blocks.append(Block(language, i + 2, "\n".join(body) + "\n", before == NEEDS_NATIVE))
        i = j + 1
    return blocks


def test_fenced_blocks_finds_languages_lines_and_indented_fences() -> None:
    text = "# t\n\n```python\nx = 1\n```\n\n- item\n\n    ```text\n    out\n    ```\n"
    assert fenced_blocks(text) == [Block("python", 4, "x = 1\n"), Block("text", 10, "out\n")]
    marked = f"{NEEDS_NATIVE}\n\n```python\ny = 2\n```\n"
    assert fenced_blocks(marked) == [Block("python", 4, "y = 2\n", native=True)]


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("page", _pages(), ids=_page_id)
def test_python_examples_of_page_run(page: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # An example whose figures only the native counter gives is left out
    # where it is not built or is switched off (MEMGUARD_NO_NATIVE=1); the
    # page says so beside it.
    native = _counter.available()
    blocks = [b for b in fenced_blocks(page.read_text())
              if b.language == "python" and (native or not b.native)]
    if not blocks:
        return
    monkeypatch.chdir(tmp_path)
    # The page runs as a real module, __docs__, as a reader's script would:
    # its globals are module globals (holder chains name them so), and
    # classes it defines are module-qualified as "__docs__.Name".
    module = types.ModuleType("__docs__")
    module.__file__ = filename = str(page)
    monkeypatch.setitem(sys.modules, "__docs__", module)
    try:
        for block in blocks:
            # Pad with blank lines so tracebacks point at the page's own lines.
            source = "\n" * (block.line - 1) + block.code
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            exec(compile(source, filename, "exec"), module.__dict__)
    finally:
        module.__dict__.clear()
        linecache.cache.pop(filename, None)
        gc.collect()


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def _public(module: str) -> bool:
    return not any(part.startswith("_") for part in module.split("."))


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    out: list[str] = []
    # The interpreter's display hook binds each example's value to builtins._;
    # put back what was there, so no example's value outlives this test.
    missing = object()
    saved = getattr(builtins, "_", missing)
    try:
        for test in finder.find(module, module_name):
            test.globs = {**test.globs}
            try:
                runner.run(test, out=out.append)
            finally:
                test.globs.clear()
    finally:
        if saved is missing:
            vars(builtins).pop("_", None)
        else:
            builtins._ = saved  # type: ignore[attr-defined]
    gc.collect()
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(out)


@pytest.mark.parametrize("module_name", [m for m in _modules() if _public(m)])
def test_public_names_have_docstrings(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no module docstring"
    undocumented = []
    for name in getattr(module, "__all__", ()):
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if getattr(value, "__module__", None) != module_name:
            continue  # documented where it is defined
        doc = (value.__doc__ or "").strip()
        if not doc or (inspect.isclass(value) and doc.startswith(f"{name}(")):
            # A dataclass without a docstring gets its signature as __doc__.
            undocumented.append(name)
    assert undocumented == [], f"{module_name}: no docstring on {undocumented}"
