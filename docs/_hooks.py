"""MkDocs hook: build the navigation and the API reference from what exists.

Several people add pages and modules in parallel, so nothing is hard-coded:

* the top-level pages in ``ORDER`` come first (those that exist), then any
  other top-level page alphabetically;
* every ``docs/guide/*.md`` is listed under "Guides", in ``GUIDE_ORDER``
  first and then alphabetically, titled by its first heading;
* ``reliability.md`` is generated from ``tests/reliability``'s test
  docstrings, unless a hand-written page exists;
* every public module of the ``memguard`` package (no ``_`` in its dotted
  name, ``__main__`` excluded) gets a generated reference page,
  ``reference/<dotted.name>.md``, rendered by mkdocstrings from its
  docstrings.

Modules are found on the file system, not imported.

Docstrings show reference chains such as ``HANDLERS['click'][3]``, which
Markdown reads as a reference link ``[...][3]`` and mkdocs-autorefs then
fails to resolve. A cross-reference target is a dotted Python name, so an
"autoref" whose identifier is not one is put back as the text it was.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "memguard"

ORDER = [
    "index.md",
    "getting-started.md",
    "how-it-measures.md",
    "coming-from.md",
    "troubleshooting.md",
    "benchmarks.md",
    "reliability.md",
    "changelog.md",
]
GUIDE_ORDER = [
    "limits.md",
    "leaks.md",
    "watch.md",
    "pytest.md",
    "ci-baselines.md",
    "xdist.md",
    "reports.md",
    "notebooks.md",
    "cli.md",
    "line-profile.md",
]
SECTION_AFTER = "troubleshooting.md"


def public_modules() -> list[str]:
    """Dotted names of memguard's public modules, the package first."""
    names: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if any(part.startswith("_") for part in parts):
            continue
        names.append(".".join(parts))
    return sorted(names, key=lambda name: (name != "memguard", name))


def facade_names() -> list[tuple[str, str]]:
    """``(name, where it is defined)`` for each name ``memguard/__init__.py`` imports."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    exported: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            exported = set(ast.literal_eval(node.value))
    found: list[tuple[str, str]] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                name = alias.asname or alias.name
                if name in exported and not name.startswith("_"):
                    found.append((name, f"memguard.{node.module}.{alias.name}"))
    return sorted(found, key=lambda pair: pair[0].lower())


def reference_page(module: str) -> str:
    """The Markdown source of one module's reference page."""
    if module == "memguard":
        # The package re-exports names documented on their own modules' pages.
        rows = "\n".join(f"| `memguard.{name}` | `{where}` |" for name, where in facade_names())
        return (f"# `{module}`\n\n::: {module}\n    options:\n      members: false\n\n"
                f"## Public names\n\nEach is documented on the page of the module that "
                f"defines it.\n\n| name | defined as |\n| --- | --- |\n{rows}\n")
    return f"# `{module}`\n\n::: {module}\n"


def _ordered(names: list[str], order: list[str]) -> list[str]:
    first = [name for name in order if name in names]
    return first + sorted(name for name in names if name not in order)


RELIABILITY_TESTS = ROOT / "tests" / "reliability"


def _generates_reliability(docs_dir: Path) -> bool:
    return RELIABILITY_TESTS.is_dir() and not (docs_dir / "reliability.md").exists()


def _test_kind(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """" (property-based, N examples)", " (K cases)" or "" from the decorators."""
    given = examples = None
    cases = 0
    for decorator in node.decorator_list:
        text = ast.unparse(decorator)
        if "given" in text:
            given = True
        if isinstance(decorator, ast.Call):
            for keyword in decorator.keywords:
                if keyword.arg == "max_examples" and isinstance(keyword.value, ast.Constant):
                    examples = keyword.value.value
            if text.startswith("pytest.mark.parametrize") and len(decorator.args) > 1:
                values = decorator.args[1]
                if isinstance(values, ast.List | ast.Tuple):
                    cases = len(values.elts)
    if given:
        return f" (property-based, {examples} examples)" if examples else " (property-based)"
    return f" ({cases} cases)" if cases else ""


def reliability_page() -> str:
    """A page listing what the reliability suite tries, read from its tests' docstrings."""
    out = [
        "# Reliability",
        "",
        "memguard runs inside other people's test suites and notebooks, so it must never",
        "be what crashes, hangs, corrupts state or leaks. The reliability suite in",
        "`tests/reliability/` tries hostile inputs, concurrency, interrupts, forks and",
        "missing platform features. This page is generated from that suite's tests when",
        "the site is built; every test listed runs in `./check`, and a failure fails it.",
        "",
        "```bash",
        ".venv/bin/python -m pytest tests/reliability -q",
        "```",
        "",
    ]
    for path in sorted(RELIABILITY_TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        tests = [node for node in tree.body
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                 and node.name.startswith("test_")]
        if not tests:
            continue
        title = (ast.get_docstring(tree) or path.stem).strip().splitlines()[0]
        title = re.sub(r"\s*\(issue \d+\)", "", title).rstrip(".")
        out += [f"## {title}", "", f"`tests/reliability/{path.name}`, {len(tests)} tests:", ""]
        for node in tests:
            name = node.name.removeprefix("test_").replace("_", " ")
            doc = (ast.get_docstring(node) or "").strip().splitlines()
            kind = _test_kind(node)
            out.append(f"- **{name}**{kind}" + (f": {doc[0]}" if doc else ""))
        out.append("")
    return "\n".join(out)


def build_nav(docs_dir: Path) -> list[Any]:
    """The navigation for the pages under *docs_dir* and the public modules."""
    top = _ordered([p.name for p in docs_dir.glob("*.md")]
                   + (["reliability.md"] if _generates_reliability(docs_dir) else []), ORDER)
    guides = _ordered([p.name for p in (docs_dir / "guide").glob("*.md")], GUIDE_ORDER)
    nav: list[Any] = []
    for name in top:
        nav.append(name)
        if name == SECTION_AFTER and guides:
            nav.append({"Guides": [f"guide/{g}" for g in guides]})
    if guides and SECTION_AFTER not in top:
        nav.append({"Guides": [f"guide/{g}" for g in guides]})
    nav.append({"API reference": [{m: f"reference/{m}.md"} for m in public_modules()]})
    return nav


def on_config(config: Any) -> Any:
    """Set the navigation from the files present."""
    config["nav"] = build_nav(Path(config["docs_dir"]))
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated reference pages."""
    from mkdocs.structure.files import File

    for module in public_modules():
        files.append(File.generated(config, f"reference/{module}.md",
                                    content=reference_page(module)))
    if _generates_reliability(Path(config["docs_dir"])):
        files.append(File.generated(config, "reliability.md", content=reliability_page()))
    return files


_AUTOREF = re.compile(r"<autoref (?P<attrs>[^>]*)>(?P<title>.*?)</autoref>", re.DOTALL)
_IDENTIFIER = re.compile(r'\bidentifier="(?P<id>[^"]*)"')
_DOTTED_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def _restore_non_references(html: str) -> str:
    def restore(match: re.Match[str]) -> str:
        found = _IDENTIFIER.search(match["attrs"])
        if found is None or _DOTTED_NAME.match(found["id"]):
            return match[0]
        return f"[{match['title']}][{found['id']}]"
    return _AUTOREF.sub(restore, html)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Leave bracketed text that cannot be a cross-reference as text."""
    return _restore_non_references(html)
