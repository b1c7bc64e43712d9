"""A native counter that was built must load: a build that cannot be imported
(it once asked for more static thread-local storage than a dlopen'ed module
gets) would silently send every guard to the tracemalloc fallback, and the
counter's own tests would skip."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import memguard


def test_a_built_extension_imports() -> None:
    package = Path(memguard.__file__).parent
    built = [*package.glob("_native*.so"), *package.glob("_native*.pyd")]
    if not built:
        pytest.skip("memguard._native is not built here (no C compiler at install time)")
    module = importlib.import_module("memguard._native")  # raises if it cannot load
    for name in ("begin", "end", "line_read", "set_tag", "tag_totals"):
        assert callable(getattr(module, name)), name
