"""Type-checked examples of the public API (mypy --strict runs over this file)."""

from __future__ import annotations

import memguard


@memguard.limit(mb=10)
def build() -> list[int]:
    return list(range(10))


async def fetch() -> bytes:
    return b""


fetch_limited = memguard.limit("1 MiB")(fetch)
values: list[int] = build()

with memguard.limit(kib=512) as guard:
    pass
peak: int = guard.peak_above_start_bytes
size: int = memguard.parse_size("1.5 GiB")


@memguard.track_leaks
def handler() -> int:
    return 1


@memguard.track_leaks(repeat=50)
def handler_with_options() -> int:
    return 2


leak_report: memguard.LeakReport = memguard.check_leaks(handler)
leaked: bool = leak_report.leaked

with memguard.track_leaks() as tracker:
    pass

before: memguard.Snapshot = memguard.snapshot("before")
after: memguard.Snapshot = memguard.snapshot()
changes: memguard.SnapshotDiff = memguard.diff(before, after)

with memguard.record(interval=0.01) as recording:
    recording.mark("start")

watched: memguard.WatchReport = memguard.expect_collected(object.__new__(type("T", (), {})))
with memguard.watch() as watcher:
    pass


@memguard.profile
def build_rows() -> list[str]:
    return [str(i) for i in range(10)]


line_profile: memguard.LineProfile = memguard.profile_lines(build_rows)
