"""Each module's docstring names its layer as the import contract orders them.

The import-linter contract in pyproject.toml is the authority: its layers,
counted from the bottom, are L1, L2, ...; a module's docstring starts with
``L<n> <name>:`` for the layer it sits in.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layers() -> list[list[str]]:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^layers = \[\n(.*?)^\]", text, re.MULTILINE | re.DOTALL)
    assert block is not None
    rows = re.findall(r'"([^"]+)"', block.group(1))
    return [[name.strip() for name in row.split(":")] for row in reversed(rows)]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_every_module_is_labelled_with_its_contract_layer() -> None:
    layers = _layers()
    assert len(layers) >= 9
    wrong = []
    for path in sorted((ROOT / "memguard").rglob("*.py")):
        name = _module(path)
        if name == "memguard":
            continue
        number = next((n for n, members in enumerate(layers, 1)
                       if any(name == m or name.startswith(m + ".") for m in members)), None)
        assert number is not None, f"{name} is in no layer of the import contract"
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if not doc.startswith(f"L{number} "):
            wrong.append(f"{name}: {doc[:30]!r} (its layer is L{number})")
    assert not wrong, "\n".join(wrong)
