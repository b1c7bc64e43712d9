"""L9 front end: the IPython extension (``%load_ext memguard``).

This module stays cheap to import; IPython and the magics are imported when
the extension loads. The magics (``%name?`` shows each one's options and an
example):

* ``%memguard_snapshot NAME`` and ``%memguard_diff A B``: snapshots and what
  grew between them;
* ``%%memguard_limit SIZE``: the cell fails over a peak-memory limit;
* ``%%memguard_leaks``: run the cell repeatedly and judge the growth;
* ``%memguard_holders EXPR``: who holds an object;
* ``%%memguard_record``: a timeline chart of the cell;
* ``%memguard_lines CALL``: a line-by-line memory profile of a call;
* ``%memguard_cells on|off``: a line after every cell with its memory.
"""

from __future__ import annotations

from typing import Any

from ._optional import require

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_LOADED: dict[int, tuple[Any, Any, Any]] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Register memguard's magics and value formatters with *ipython*.

    Example:
        In IPython or Jupyter: ``%load_ext memguard``.
    """
    require("IPython", extra="notebook")
    from ._ipython.magics import MemguardMagics
    from ._ipython.show import register_formatters
    from ._ipython.sites import name_cells

    if id(ipython) in _LOADED:
        unload_ipython_extension(ipython)
    magics = MemguardMagics(ipython)
    ipython.register_magics(magics)
    _LOADED[id(ipython)] = (magics, register_formatters(ipython), name_cells(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics, turn the per-cell line off and restore the formatters.

    ``%unload_ext memguard`` calls it; ``%reload_ext memguard`` calls it and
    loads again.

    Example:
        In IPython or Jupyter: ``%unload_ext memguard``.
    """
    loaded = _LOADED.pop(id(ipython), None)
    if loaded is not None:
        magics, restore, unname = loaded
        magics.close()
        restore()
        unname()
        registered = ipython.magics_manager.magics
        for kind, names in magics.magics.items():
            for name in names:
                if getattr(registered[kind].get(name), "__self__", None) is magics:
                    del registered[kind][name]
