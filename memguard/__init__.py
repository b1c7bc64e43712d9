"""memguard: make memory a tested property of code.

Peak-memory limits and leak checks for tests, leak hunting in notebooks, and
a ``memguard`` command that runs a program and reports on it.

``import memguard`` is cheap: it starts no tracing and imports none of
matplotlib, IPython, objgraph, pympler or psutil; each is imported by the
feature that needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The report core (stdlib only) registers how values are shown, so that
# print(value) and notebooks render the full report without the values
# importing upwards (memguard.values._value).
from . import report
from ._version import __version__
from .exceptions import (
    CheckFailed,
    CommandError,
    LeakDetected,
    MeasurementUnavailable,
    MemguardError,
    MemoryLimitExceeded,
    OutputRefused,
    SnapshotFormatError,
    TracingError,
)
from .guards.limit import limit
from .units import format_size, parse_size
from .values.limit import LimitReport
from .values.site import AllocationSite

if TYPE_CHECKING:
    from .guards.leaks import check_leaks, track_leaks
    from .guards.profile import profile, profile_lines
    from .guards.record import record
    from .guards.watch import expect_collected, watch
    from .values.diff import SnapshotDiff
    from .values.diff import compare as diff
    from .values.files import load
    from .values.leak import LeakReport, SignalVerdict
    from .values.lineprofile import LineProfile
    from .values.run import RunReport
    from .values.snapshot import Snapshot
    from .values.snapshot import take_snapshot as snapshot
    from .values.timeline import Timeline
    from .values.watch import Survivor, WatchReport

#: Public names imported on first use, so that ``import memguard`` (done by
#: every test suite that loads the pytest plugin) stays cheap: name -> (module,
#: attribute). ``limit``, the exceptions and the units are imported eagerly.
_LAZY: dict[str, tuple[str, str]] = {
    "check_leaks": (".guards.leaks", "check_leaks"),
    "track_leaks": (".guards.leaks", "track_leaks"),
    "profile": (".guards.profile", "profile"),
    "profile_lines": (".guards.profile", "profile_lines"),
    "record": (".guards.record", "record"),
    "expect_collected": (".guards.watch", "expect_collected"),
    "watch": (".guards.watch", "watch"),
    "SnapshotDiff": (".values.diff", "SnapshotDiff"),
    "diff": (".values.diff", "compare"),
    "load": (".values.files", "load"),
    "LeakReport": (".values.leak", "LeakReport"),
    "SignalVerdict": (".values.leak", "SignalVerdict"),
    "LineProfile": (".values.lineprofile", "LineProfile"),
    "RunReport": (".values.run", "RunReport"),
    "Snapshot": (".values.snapshot", "Snapshot"),
    "snapshot": (".values.snapshot", "take_snapshot"),
    "Timeline": (".values.timeline", "Timeline"),
    "Survivor": (".values.watch", "Survivor"),
    "WatchReport": (".values.watch", "WatchReport"),
}


def __getattr__(name: str) -> Any:
    """Import a lazily loaded public name on first use (PEP 562)."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'memguard' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "OutputRefused",
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
    "report",
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
