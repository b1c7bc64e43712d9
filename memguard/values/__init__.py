"""L4 values: plain, typed, immutable results that hold no user objects.

Each value has ``to_dict()`` / ``from_dict()`` for versioned JSON, a short
``repr``, a ``summary`` line, and ``str()`` / notebook forms rendered by
:mod:`memguard.report`. Every value module is imported here, so the kinds
they declare (:data:`memguard.values._value.KINDS`) are all known whenever a
file is read.
"""

from __future__ import annotations

from . import diff, leak, limit, lineprofile, run, snapshot, timeline, watch
from ._value import KINDS

__all__ = ["KINDS", "diff", "leak", "limit", "lineprofile", "run", "snapshot", "timeline",
           "watch"]
