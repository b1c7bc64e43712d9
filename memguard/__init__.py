"""memguard: make memory a tested property of code.

Peak-memory limits and leak checks for tests, leak hunting in notebooks, and
a ``memguard`` command that runs a program and reports on it.

``import memguard`` is cheap: it starts no tracing and imports none of
matplotlib, IPython, objgraph, pympler or psutil; each is imported by the
feature that needs it.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .exceptions import (
    CheckFailed,
    CommandError,
    LeakDetected,
    MeasurementUnavailable,
    MemguardError,
    MemoryLimitExceeded,
    SnapshotFormatError,
    TracingError,
)
from .guards.leaks import check_leaks, track_leaks
from .guards.limit import limit
from .guards.profile import profile, profile_lines
from .guards.record import record
from .guards.watch import expect_collected, watch
from .units import format_size, parse_size
from .values.diff import SnapshotDiff
from .values.diff import compare as diff
from .values.files import load
from .values.leak import LeakReport, SignalVerdict
from .values.limit import LimitReport
from .values.lineprofile import LineProfile
from .values.run import RunReport
from .values.site import AllocationSite
from .values.snapshot import Snapshot
from .values.snapshot import take_snapshot as snapshot
from .values.timeline import Timeline
from .values.watch import Survivor, WatchReport

__all__ = [
    "AllocationSite",
    "CheckFailed",
    "CommandError",
    "LeakDetected",
    "LeakReport",
    "LimitReport",
    "LineProfile",
    "MeasurementUnavailable",
    "MemguardError",
    "MemoryLimitExceeded",
    "RunReport",
    "SignalVerdict",
    "Snapshot",
    "SnapshotDiff",
    "SnapshotFormatError",
    "Survivor",
    "Timeline",
    "TracingError",
    "WatchReport",
    "__version__",
    "check_leaks",
    "diff",
    "expect_collected",
    "format_size",
    "limit",
    "load",
    "load_ipython_extension",
    "parse_size",
    "profile",
    "profile_lines",
    "record",
    "snapshot",
    "track_leaks",
    "unload_ipython_extension",
    "watch",
]


def load_ipython_extension(ipython: Any) -> None:
    """Register memguard's magics: ``%load_ext memguard``."""
    from .ipython import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove memguard's magics: ``%unload_ext memguard``."""
    from .ipython import unload_ipython_extension as unload

    unload(ipython)
