"""No module imports another by name at run time, around the layer contract.

import-linter sees only ``import`` statements; ``importlib.import_module("memguard.report")``
in a value was how the values reached the presentation layer above them. The
one sanctioned dynamic import is :func:`memguard._optional.require`, for the
optional heavy packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import memguard

PACKAGE = Path(memguard.__file__).parent
ALLOWED = {"_optional.py"}


def _dynamic_imports(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (func.attr if isinstance(func, ast.Attribute)
                    else func.id if isinstance(func, ast.Name) else "")
            if name in ("import_module", "__import__"):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}()")
        elif isinstance(node, ast.ImportFrom) and node.module == "importlib" and any(
                alias.name == "import_module" for alias in node.names):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                         "from importlib import import_module")
    return found


def test_only_optional_imports_modules_by_name() -> None:
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path.name not in ALLOWED
             or path.parent != PACKAGE for hit in _dynamic_imports(path)]
    assert found == []


def test_the_check_sees_a_dynamic_import() -> None:
    """The check itself works: both spellings are found."""
    sample = PACKAGE / "_optional.py"
    assert _dynamic_imports(sample), "_optional.require imports by name and must be seen"
    assert {hit.split()[-1] for hit in _dynamic_imports(sample)} == {"import_module()"}
