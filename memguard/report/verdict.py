"""L8 presentation: the verdict of a failed check, the text its exception carries.

A :class:`~memguard.values.limit.LimitReport`, a
:class:`~memguard.values.leak.LeakReport` and a
:class:`~memguard.values.watch.WatchReport` are shown two ways: as a full
report (:func:`memguard.report.render`, ``print(value)``) and as the
verdict a failed check raises, the pytest failure's first lines
(``value.message(top=5)``). Both are written here, in the presentation
layer; the values' ``message()`` is a one-line call into
:func:`memguard.values._value.shown` with the format ``"verdict"``, which
this module registers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..units import format_size
from ..values.leak import LeakReport, format_amount, source_text
from ..values.limit import LimitReport
from ..values.site import AllocationSite
from ..values.watch import WatchReport

__all__ = ["SITE_NOTES", "verdict"]

SITE_NOTES: dict[str, str] = {
    "peak": "sites live at the peak",
    "partial": (
        "sites captured below the peak; the rest of the peak was too short-lived "
        "to attribute"
    ),
    "unattributed": (
        "the peak was too short-lived to attribute (it rose and fell between two "
        "chances to capture it), so no sites are named"
    ),
    "off": "site capture was switched off (sites=False)",
    "not-needed": "the limit held, so no sites were captured",
    "unavailable": "sites are not available for the process's RSS",
}
"""Why a limit report's sites are what they are, by its ``sites_status``: the
one wording the verdict and the full report share."""


def verdict(value: Any, *, top: int = 5, **_: Any) -> str:
    """The verdict of *value*: its first line, then what explains it (up to *top* items).

    A value with no verdict of its own (a snapshot, a timeline) answers with
    its one-line summary.

    Example:
        >>> print(verdict(LimitReport(label="t", source="python", method="counter",
        ...                           limit_bytes=1000, peak_above_start_bytes=1500,
        ...                           sites_status="off")))
        Memory limit exceeded in t: peak 1.5 KiB > limit 1000 B (+500 B), counted Python heap
          site capture was switched off (sites=False)
    """
    for cls, write in _VERDICTS:
        if isinstance(value, cls):
            return write(value, top)
    return str(value.summary)


def _limit(report: LimitReport, top: int) -> str:
    if report.exceeded:
        lines = [f"Memory limit exceeded in {report.label}: peak "
                 f"{format_size(report.peak_above_start_bytes)} > limit "
                 f"{format_size(report.limit_bytes)} (+{format_size(report.overshoot_bytes)}), "
                 f"{report.measured}"]
    else:
        lines = [report.summary]
    if report.sites:
        captured = report.sites_above_start_bytes or 0
        level = format_size(captured)
        how = ""
        if report.sample_interval_bytes:
            how = (f"estimated from allocations sampled every "
                   f"{format_size(round(report.sample_interval_bytes))} on average; ")
        lines.append(f"  top allocation sites ({how}{SITE_NOTES[report.sites_status]}, "
                     f"captured at {level} above the start):")
        # Sites under 1% of the captured level are noise next to the culprits.
        floor = captured / 100
        shown = [s for s in report.sites[:top] if s.size_bytes >= floor] or list(report.sites[:1])
        lines.extend(f"    {site}" for site in shown)
        rest = report.sites[len(shown):]
        if rest:
            lines.append(f"    ... {len(rest)} more sites, "
                         f"{format_size(sum(s.size_bytes for s in rest))}")
    elif report.exceeded:
        lines.append(f"  {SITE_NOTES[report.sites_status]}")
    return "\n".join(lines)


def _watch(report: WatchReport, top: int) -> str:
    if not report.survivors:
        return report.summary
    lines = [f"{report.survived_text} in {report.label}:"]
    for survivor in report.survivors[:top]:
        lines.append(f"  {survivor.name}: {survivor.type_name} {survivor.object_repr}")
        lines.append(f"    held by {survivor.holder}")
    rest = len(report.survivors) - top
    if rest > 0:
        lines.append(f"  ... {rest} more")
    return "\n".join(lines)


def _leak_sites(report: LeakReport, top: int, per: str) -> list[str]:
    lines: list[str] = []
    calls = max(1, report.site_calls)
    for site in report.sites[:top]:
        blocks = f"{site.count:,} block{'' if site.count == 1 else 's'}"
        if site.size_bytes % calls == 0 and site.count % calls == 0:
            count = site.count // calls
            growth = (f"{format_size(site.size_bytes // calls, signed=True)} {per} in "
                      f"{count:,} block{'' if count == 1 else 's'}")
        elif site.count == 0:  # a block there before the calls, grown in place
            growth = (f"{format_amount(site.size_bytes / calls, 'bytes')} {per} "
                      f"({format_size(site.size_bytes, signed=True)} over {calls} calls, "
                      f"grown in place)")
        else:
            growth = (f"{format_amount(site.size_bytes / calls, 'bytes')} {per} "
                      f"({format_size(site.size_bytes, signed=True)} in {blocks} "
                      f"over {calls} calls)")
        lines.append(f"    {site.where}: {growth}")
        source = source_text(site)
        if source:
            lines.append(f"      {source}")
        prefix = f"{site.filename}:{site.lineno} -> "
        lines.extend(f"      calls {entry[len(prefix):]}" for entry in report.calls_into_c
                     if entry.startswith(prefix))
    return lines


def _leak(report: LeakReport, top: int) -> str:
    if report.leaked and report.fired:
        lines = [f"Leak detected in {report.label}: {report.growth_text(with_warmup=True)}"]
    else:
        lines = [report.summary]
    lines.extend(f"  {signal}" for signal in report.signals)
    per = "kept" if report.mode == "single" else "per call"
    if report.sites[:top]:
        lines.append(f"  top growing allocation sites (bytes {per}):")
        lines.extend(_leak_sites(report, top, per))
    heap = {"python", "blocks", "objects"} & {s.name for s in report.fired}
    shown = {f"{site.filename}:{site.lineno} -> " for site in report.sites[:top]}
    native = [entry for entry in report.calls_into_c
              if entry.partition(" -> ")[0] + " -> " not in shown]
    if native and not heap:
        lines.append("  calls into C on every call (a leak the heap cannot show is in one):")
        for entry in native[:top]:
            where, _, name = entry.partition(" -> ")
            file, _, line = where.rpartition(":")
            source = source_text(AllocationSite(filename=file, lineno=int(line or 0),
                                                size_bytes=0, count=0))
            lines.append(f"    {where}: {name}" + (f"  ({source})" if source else ""))
    if report.types[:top]:
        counted = "count kept" if report.mode == "single" else "count per call"
        lines.append(f"  top growing types ({counted}):")
        lines.extend(f"    {name}: {format_amount(count, '').strip()} {per}"
                     for name, count in report.types[:top])
    if report.sample:
        lines.append(f"  sample leaked object: {report.sample}")
    if report.resources:
        lines.append("  leaked resources:")
        lines.extend(f"    {resource}" for resource in report.resources)
    if report.mode == "repeated" and report.iterations > 1 and report.duration_seconds > 0:
        lines.append(f"  {report.iterations} calls measured"
                     + (f" ({report.calls_per_reading} per reading)"
                        if report.calls_per_reading > 1 else "")
                     + (f", {report.naming_calls} more traced to name the leak"
                        if report.naming_calls else "")
                     + f", {report.duration_seconds:.2f} s in all")
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)


_VERDICTS: tuple[tuple[type, Callable[[Any, int], str]], ...] = (
    (LimitReport, _limit), (LeakReport, _leak), (WatchReport, _watch))
