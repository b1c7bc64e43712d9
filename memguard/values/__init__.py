"""L4 values: plain, typed, immutable results that hold no user objects.

Each value has ``to_dict()`` / ``from_dict()`` for versioned JSON, a one-line
``__str__`` and a dataclass ``__repr__``. Rendering lives in
:mod:`memguard.report`.
"""

from __future__ import annotations
