"""What a newcomer meets first: ``memguard``'s names and its size keywords (issue 14)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import memguard


def test_dir_shows_the_public_names_only() -> None:
    names = dir(memguard)
    assert names == sorted(memguard.__all__)
    for private in ("Any", "TYPE_CHECKING", "annotations", "importlib"):
        assert private not in names


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    # Fresh, so names other tests already imported cannot hide a broken one.
    probe = ("import memguard, types\n"
             "missing = [n for n in memguard.__all__ if getattr(memguard, n, None) is None]\n"
             "assert isinstance(memguard.report, types.ModuleType)\n"
             "assert callable(memguard.report.render)\n"
             "print(missing)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_facade_imports_statically() -> None:
    """import-linter must see every import: no importlib in memguard/__init__.py."""
    source = Path(memguard.__file__).read_text()
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    assert "importlib" not in imported
    assert "import_module" not in source


@pytest.mark.parametrize(("keywords", "message"), [
    ({"mb": True}, "mb= takes a number of megabytes (MB, powers of 1000), such as mb=100; "
                   "got bool True"),
    ({"mb": "100"}, "mb= takes a number of megabytes (MB, powers of 1000), such as mb=100; "
                    "got str '100' (a string goes first: limit('100 MB'))"),
    ({"kib": [4]}, "kib= takes a number of kibibytes (KiB, powers of 1024), such as kib=100; "
                   "got list [4]"),
])
def test_a_unit_keyword_says_what_it_takes(keywords: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError) as refused:
        memguard.limit(**keywords)  # type: ignore[arg-type]
    assert str(refused.value) == message


def test_a_unit_keyword_still_refuses_bad_numbers() -> None:
    with pytest.raises(ValueError, match=r"^gb= must be a finite number of gigabytes, got nan$"):
        memguard.limit(gb=float("nan"))
    with pytest.raises(ValueError, match=r"^mb= must not be negative, got -1$"):
        memguard.limit(mb=-1)
    assert memguard.limit(mb=1.5).limit_bytes == 1_500_000
