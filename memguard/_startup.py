"""L1 foundation: the modules the interpreter had loaded before memguard was imported.

Imported first by ``memguard/__init__.py``, so :data:`MODULES` is the set a
plain ``python`` had at that point. :mod:`memguard.program.launch` uses it
to start a program with only those modules imported (the rest are
memguard's own imports), so that the program's own imports are measured as
``python -X tracemalloc`` measures them.
"""

from __future__ import annotations

import sys

MODULES = frozenset(sys.modules)
"""The names in :data:`sys.modules` when memguard was first imported."""
