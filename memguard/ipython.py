"""L6 front end: IPython magics (issue 5); imported only by ``%load_ext memguard``."""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register memguard's magics with *ipython*."""
    del ipython
