"""memguard: make memory a tested property of code.

Peak-memory limits and leak checks for tests, leak hunting in notebooks, and
a ``memguard`` command that runs a program and reports on it.

``import memguard`` is cheap: it starts no tracing and imports none of
matplotlib, IPython, objgraph, pympler or psutil; each is imported by the
feature that needs it.
"""

from __future__ import annotations

# First: the modules loaded before memguard (memguard.program starts programs
# with only those).
from . import _startup  # noqa: F401

# isort: split
from typing import TYPE_CHECKING, Any

# The report core (stdlib only) registers how values are shown, so that
# print(value) and notebooks render the full report without the values
# importing upwards (memguard.values._value).
from . import report
from ._counter import measurement
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
    from . import report
    from .guards.record import record
    from .guards.watch import expect_collected, watch
    from .leaks.api import check_leaks, track_leaks
    from .lines.profile import profile, profile_lines
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

def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562), so that ``import memguard``
    (done by every test suite that loads the pytest plugin) stays cheap.

    ``limit``, the exceptions and the units are imported eagerly; everything
    else here. The imports are written out, one per name, so that
    import-linter sees each of them.
    """
    value = _import_public(name)
    globals()[name] = value
    return value


def _import_public(name: str) -> Any:  # noqa: PLR0911, PLR0912
    if name == "report":
        # Not `from . import report`: that asks this very __getattr__ first.
        # Importing anything from the submodule binds it here, as any import does.
        from .report import render

        del render
        return globals()["report"]
    if name == "check_leaks":
        from .leaks.api import check_leaks

        return check_leaks
    if name == "track_leaks":
        from .leaks.api import track_leaks

        return track_leaks
    if name == "profile":
        from .lines.profile import profile

        return profile
    if name == "profile_lines":
        from .lines.profile import profile_lines

        return profile_lines
    if name == "record":
        from .guards.record import record

        return record
    if name == "expect_collected":
        from .guards.watch import expect_collected

        return expect_collected
    if name == "watch":
        from .guards.watch import watch

        return watch
    if name in ("SnapshotDiff", "diff"):
        from .values.diff import SnapshotDiff, compare

        return SnapshotDiff if name == "SnapshotDiff" else compare
    if name == "load":
        from .values.files import load

        return load
    if name in ("LeakReport", "SignalVerdict"):
        from .values import leak

        return getattr(leak, name)
    if name == "LineProfile":
        from .values.lineprofile import LineProfile

        return LineProfile
    if name == "RunReport":
        from .values.run import RunReport

        return RunReport
    if name in ("Snapshot", "snapshot"):
        from .values.snapshot import Snapshot, take_snapshot

        return Snapshot if name == "Snapshot" else take_snapshot
    if name == "Timeline":
        from .values.timeline import Timeline

        return Timeline
    if name in ("Survivor", "WatchReport"):
        from .values import watch as watch_values

        return getattr(watch_values, name)
    raise AttributeError(f"module 'memguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names only (``dir(memguard)``, tab completion)."""
    return sorted(__all__)


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
    "measurement",
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
