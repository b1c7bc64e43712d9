"""L4 values: plain, typed, immutable results that hold no user objects.

Each value has ``to_dict()`` / ``from_dict()`` for versioned JSON, a short
``repr``, a ``summary`` line, and ``str()`` / notebook forms rendered by
:mod:`memguard.report`. Each value class declares its kind once
(:mod:`memguard.values._value`); :mod:`memguard.values.files` loads the value
modules when it first reads a file, so ``import memguard`` loads only the
ones it uses.
"""

from __future__ import annotations
