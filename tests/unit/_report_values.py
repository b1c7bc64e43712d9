"""Hand-built memguard values for the value and renderer unit tests (no live tracing)."""

from __future__ import annotations

from memguard.values.diff import compare
from memguard.values.leak import LeakReport, SignalVerdict
from memguard.values.limit import LimitReport
from memguard.values.site import AllocationSite, Frame
from memguard.values.snapshot import Snapshot
from memguard.values.timeline import Mark, Sample, Timeline

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


def site(filename: str, lineno: int, size: int, count: int,
         traceback: tuple[Frame, ...] = ()) -> AllocationSite:
    return AllocationSite(filename=filename, lineno=lineno, size_bytes=size, count=count,
                          traceback=traceback)


def before() -> Snapshot:
    return Snapshot(
        label="before", timestamp=T0,
        sites=(site("/srv/app/cache.py", 12, 40_960, 10),
               site("/srv/app/models.py", 7, 2_048, 4),
               site("/srv/app/models.py", 9, 1_024, 2),
               site("/srv/app/old.py", 3, 512, 1)),
        traceback_limit=1, traced_bytes=44_544, traced_peak_bytes=60_000,
        types=(("dict", 1200), ("str", 900), ("app.Session", 3)),
        rss_bytes=50 * 1024**2, uss_bytes=None,
        fds=((0, "/dev/null"), (1, "pipe:[100]"), (2, "pipe:[101]")),
        threads=("MainThread",), pid=4242, python="CPython 3.11.7",
        platform="Linux-6.1-x86_64 (linux)",
        absent=(("uss_bytes", "process USS is not available: access denied"),),
    )


def after() -> Snapshot:
    return Snapshot(
        label="after", timestamp=T0 + 2.5,
        sites=(site("/srv/app/cache.py", 12, 1_089_536, 266),
               site("/srv/app/models.py", 7, 2_048, 4),
               site("/srv/app/models.py", 9, 3_072, 5),
               site("/srv/app/new.py", 30, 8_192, 1),
               site("/usr/lib/python3.11/json/decoder.py", 353, 4_096, 40)),
        traceback_limit=1, traced_bytes=1_106_944, traced_peak_bytes=1_200_000,
        types=(("dict", 1450), ("str", 900), ("app.Session", 259), ("bytes", 12)),
        rss_bytes=52 * 1024**2, uss_bytes=None,
        fds=((0, "/dev/null"), (1, "pipe:[100]"), (2, "pipe:[101]"), (5, "/srv/data/a.db")),
        threads=("MainThread", "worker-1"), pid=4242, python="CPython 3.11.7",
        platform="Linux-6.1-x86_64 (linux)",
        absent=(("uss_bytes", "process USS is not available: access denied"),),
    )


def untraced() -> Snapshot:
    return Snapshot(label="cold", timestamp=T0, types=None, rss_bytes=10 * 1024**2,
                    absent=(("sites", "tracemalloc was not tracing"),
                            ("traced_bytes", "tracemalloc was not tracing"),
                            ("types", "the object census was switched off (census=False)")))


def diff():  # type: ignore[no-untyped-def]
    return compare(before(), after())


def timeline() -> Timeline:
    return Timeline(
        label="load", started_at=T0, interval_seconds=0.01, duration_seconds=0.05,
        samples=(Sample(0.0, 1_000, 50 * 1024**2), Sample(0.01, 500_000, 51 * 1024**2),
                 Sample(0.02, 1_500_000, 52 * 1024**2), Sample(0.03, 2_000_000, 53 * 1024**2),
                 Sample(0.04, 800_000, 53 * 1024**2), Sample(0.05, 900_000, 52 * 1024**2)),
        marks=(Mark("parsed", 0.015, 1_000_000), Mark("indexed", 0.035, 1_900_000)),
        traced_start_bytes=1_000, traced_end_bytes=900_000, traced_peak_bytes=2_600_000,
        rss_start_bytes=50 * 1024**2, rss_peak_bytes=54 * 1024**2, rss_peak_method="kernel-hwm",
    )


def limit_report() -> LimitReport:
    return LimitReport(label="test_import", source="python", method="tracemalloc",
                       limit_bytes=1_000_000, peak_above_start_bytes=1_500_000, start_bytes=10_000,
                       end_bytes=20_000, duration_seconds=0.25,
                       sites=(site("/srv/app/loader.py", 40, 1_200_000, 3),
                              site("/srv/app/loader.py", 41, 200_000, 100)),
                       sites_status="peak", sites_above_start_bytes=1_450_000)


def leak_report() -> LeakReport:
    return LeakReport(
        label="handle_request", leaked=True, iterations=5, warmup=2,
        signals=(SignalVerdict(name="python", leaked=True, per_call=1024.0, total=5120.0,
                               unit="bytes", detail="slope 1024 ± 3 B/call"),
                 SignalVerdict(name="objects", leaked=True, per_call=2.0, total=10.0,
                               unit="objects", detail="slope 2.00 ± 0.01"),
                 SignalVerdict(name="fds", leaked=False, per_call=0.0, total=0.0, unit="fds")),
        series={"python": (1024.0, 2048.0, 3072.0, 4096.0, 5120.0),
                "objects": (2.0, 4.0, 6.0, 8.0, 10.0)},
        fits={"python": (1024.0, 1024.0), "objects": (2.0, 2.0)},
        sites=(site("/srv/app/handlers.py", 88, 1024, 1),),
        types=(("app.Request", 1.0), ("dict", 1.0)),
        sample="<app.Request object at 0x1>\n  held by app.handlers.LOG[-1]",
        resources=(), duration_seconds=0.5,
    )
