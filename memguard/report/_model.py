"""L8 presentation: one neutral document model per value, shared by every format.

:func:`build` turns a value into a :class:`Document` (a title, facts, tables,
lines and the charts that fit it); the text, Markdown and HTML renderers only
lay that document out, so all three always say the same thing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..units import format_size
from ..values.site import SMALLER, AllocationSite, LeftOut, left_out_of, locate
from .verdict import SITE_NOTES

if TYPE_CHECKING:
    # Layouts are found by kind (each value declares its own), so that this
    # core, which `import memguard` loads, loads no value module itself.
    from ..values.diff import SiteDelta, SnapshotDiff
    from ..values.leak import LeakReport
    from ..values.limit import LimitReport
    from ..values.snapshot import Snapshot
    from ..values.timeline import Timeline
    from ..values.watch import WatchReport

__all__ = ["Document", "Section", "Table", "build", "call_path", "register_document",
           "site_table", "type_table"]


@dataclass
class Table:
    """Rows of cells; *align* is ``"l"`` or ``"r"`` per column, *flex* the
    column that gives way when a line is too wide: clipped from the left (a
    path keeps its file name and line) or, with *wrap*, continued on the
    next lines (a sentence keeps its beginning, and its end)."""

    headers: list[str]
    rows: list[list[str]]
    align: str
    flex: int
    trim: int | None = None
    """The last column when it holds text that may move under its row (a
    site's source line) when the table is too wide for the text form."""
    wrap: bool = False
    """Whether the flex column (the last) wraps onto the next lines instead of
    being clipped from the left (a sentence, such as a leak's detail)."""


TRIM_FLOOR = 24
"""The fewest characters of such text shown on its own line."""


@dataclass
class Section:
    """A titled part of a document: a note, then a table or plain lines."""

    title: str
    note: str = ""
    table: Table | None = None
    lines: list[str] = field(default_factory=list)
    series: tuple[float, ...] = ()
    """Values drawn as a one-line sparkline in text."""


@dataclass
class Document:
    """What a report says, independent of its format."""

    kind: str
    title: str
    facts: list[tuple[str, str]]
    sections: list[Section]
    charts: list[str]
    """Chart names: ``"timeline"``, ``"growth"``, ``"top"``."""
    caption: dict[str, str] = field(default_factory=dict)
    """The exact figures shown beside each chart, by chart name."""


def _quoted(kind: str, label: str | None) -> str:
    return f'memguard {kind} "{label}"' if label else f"memguard {kind}"


def _absent(why: str | None) -> str:
    # Every absent figure says why; a value from an old file may not know.
    return f"absent: {why or 'not measured (no reason was recorded)'}"


def _size_or_absent(value: int | None, why: str | None, *, signed: bool = False) -> str:
    return _absent(why) if value is None else format_size(value, signed=signed)


def _when(timestamp: float) -> str:
    """The one format of a moment on every page: ``2023-11-14 22:13:20 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def when_iso(text: str) -> str:
    """An ISO 8601 time (a run file's ``started_at``) in the pages' one format.

    Example:
        >>> when_iso("2023-11-14T22:13:20+00:00"), when_iso(""), when_iso("soon")
        ('2023-11-14 22:13:20 UTC', 'unknown', 'soon')
    """
    if not text:
        return "unknown"
    import datetime  # 10 ms at `import memguard` for a run page's one date

    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return _when(moment.timestamp())


def _elapsed(seconds: float) -> str:
    """Time between two snapshots; a negative one says which came first."""
    if seconds >= 0:
        return f"{seconds:.3f} s from the earlier snapshot to the later"
    return (f"{-seconds:.3f} s the other way: the snapshot compared as later was taken "
            "first")


def site_table(sites: Sequence[AllocationSite]) -> Table:
    """Sites as rows of size, blocks, place and (when known) the line's source."""
    rows = [[format_size(s.size_bytes), f"{s.count:,}", s.where, s.source]
            for s in sites]
    return _source_column(Table(["size", "blocks", "where", "line"], rows, "rrll", 2, trim=3))


_LEFT_OUT_LABELS = {
    "memguard": "memguard's own work (left out)",
    "import machinery": "the import machinery (left out)",
    "filtered out": "sites the file filters left out",
    "program runner": "runpy, which started the program (left out)",
    "shrunk": "sites that shrank (not listed)",
}


def left_out_label(item: LeftOut) -> str:
    """What a table's row for *item* is called."""
    if item.name == SMALLER:
        return f"{item.sites:,} smaller sites" if item.sites else "smaller sites"
    return _LEFT_OUT_LABELS.get(item.name, f"{item.name} (left out)")


def add_up(table: Table, shown: tuple[int, int], items: Sequence[LeftOut], *,
           diff: bool = False) -> Table:
    """*table* of sites with a row per *items* (smaller sites, what was left
    out by design) and a total row, so that it adds up to its total.

    *shown* is the exact ``(bytes, blocks)`` of the table's rows; for a diff
    (*diff*) every figure is a change.
    """
    items = [item for item in items if item.size_bytes or item.count]
    if not items:
        return table
    rows = [*table.rows]
    size, count = shown
    for item in items:
        rows.append(_extra_row(table, left_out_label(item), item.size_bytes, item.count, diff))
        size += item.size_bytes
        count += item.count
    rows.append(_extra_row(table, "total", size, count, diff))
    return Table(table.headers, rows, table.align, table.flex, table.trim)


def _extra_row(table: Table, label: str, size: int, count: int, diff: bool) -> list[str]:
    row = [""] * len(table.headers)
    row[table.flex] = label
    if diff:  # change, size, Δblocks, blocks, where
        row[0], row[2] = format_size(size, signed=True), f"{count:+,}"
    else:  # size, blocks, where
        row[0], row[1] = format_size(size), f"{count:,}"
    return row


def _source_column(table: Table) -> Table:
    """*table* without its last column (the source lines) when every row's is empty."""
    if any(row[-1] for row in table.rows):
        return table
    return Table(table.headers[:-1], [row[:-1] for row in table.rows], table.align[:-1],
                 table.flex)


def type_table(types: Sequence[tuple[str, int]], top: int) -> Table:
    """Live objects by type: the *top* types, then the rest and the total."""
    rows = [[f"{n:,}", name] for name, n in types[:top]]
    if len(types) > top:
        rows.append([f"{sum(n for _, n in types[top:]):,}", f"{len(types) - top:,} more types"])
        rows.append([f"{sum(n for _, n in types):,}", "total"])
    return Table(["count", "type"], rows, "rl", 1)


def _sums(sites: Sequence[AllocationSite]) -> tuple[int, int]:
    return sum(s.size_bytes for s in sites), sum(s.count for s in sites)


def snapshot_left_out(sites: Sequence[AllocationSite], shown: Sequence[AllocationSite],
                      before: Sequence[LeftOut] = ()) -> list[LeftOut]:
    """What a table of *shown* out of all *sites* does not list: the user's
    smaller sites, then memguard's own and the import machinery's; *before*
    is what the sites themselves had left out already."""
    listed = set(map(id, shown))
    smaller = [0, 0, 0]
    named: dict[str, list[int]] = {}
    for item in before:
        entry = smaller if item.name == SMALLER else named.setdefault(item.name, [0, 0, 0])
        entry[0] += item.size_bytes
        entry[1] += item.count
        entry[2] += item.sites
    for site in sites:
        if id(site) in listed:
            continue
        name = left_out_of(site)
        sums = smaller if name is None else named.setdefault(name, [0, 0, 0])
        sums[0] += site.size_bytes
        sums[1] += site.count
        sums[2] += 1
    return [LeftOut(SMALLER, smaller[0], smaller[1], smaller[2]),
            *(LeftOut(name, size, count, n) for name, (size, count, n) in sorted(named.items()))]


def _snapshot(value: Snapshot, top: int) -> Document:
    facts = [("taken", _when(value.timestamp)),
             ("python", f"{value.python or 'unknown'} on {value.platform or 'unknown'}, "
                        f"pid {value.pid}")]
    if value.sites is None or value.traced_bytes is None:
        facts.append(("traced Python heap", _absent(value.reason("sites"))))
    else:
        peak = "" if value.traced_peak_bytes is None else (
            f", peak {format_size(value.traced_peak_bytes)}")
        facts.append(("traced Python heap", f"{format_size(value.traced_bytes)} in "
                      f"{len(value.sites):,} sites{peak} (absolute; traceback limit "
                      f"{value.traceback_limit})"))
    facts.append(("process RSS", _size_or_absent(value.rss_bytes, value.reason("rss_bytes"))))
    facts.append(("process USS", _size_or_absent(value.uss_bytes, value.reason("uss_bytes"))))
    if value.types is None:
        facts.append(("live objects", _absent(value.reason("types"))))
    else:
        total = sum(n for _, n in value.types)
        facts.append(("live objects", f"{total:,} in {len(value.types):,} types"))
    facts.append(("open descriptors", _absent(value.reason("fds")) if value.fds is None
                  else str(len(value.fds))))
    facts.append(("threads", f"{len(value.threads)}: {', '.join(value.threads)}"
                  if value.threads else "0"))
    sections = []
    if value.sites is None:
        sections.append(Section("Top allocation sites", _absent(value.reason("sites"))))
    else:
        shown = value.top_sites(top)
        note = "live traced memory, biggest first; the rows add up to every traced block"
        sections.append(Section("Top allocation sites", note,
                                add_up(site_table(shown), _sums(shown),
                                       snapshot_left_out(value.sites, shown,
                                                         value.sites_left_out))))
    if value.types is None:
        sections.append(Section("Live objects by type", _absent(value.reason("types"))))
    else:
        sections.append(Section("Live objects by type",
                                "gc-tracked objects and the untracked ones they hold",
                                type_table(value.types, top)))
    caption = {"top": _top_caption(value.top_sites(top), value.types[:top] if value.types
                                   else ())}
    return Document("snapshot", _quoted("snapshot", value.label), facts, sections,
                    ["top"] if value.sites or value.types else [], caption)


def _top_caption(sites: Sequence[Any], types: Sequence[tuple[str, Any]]) -> str:
    parts = []
    for site in sites[:5]:
        size = getattr(site, "size_diff_bytes", None)
        size = site.size_bytes if size is None else size
        parts.append(f"{site.filename.rsplit('/', 1)[-1]}:{site.lineno} "
                     f"{format_size(size, signed=hasattr(site, 'size_diff_bytes'))}")
    parts.extend(f"{name} {count}" for name, count in types[:5])
    return "; ".join(parts)


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def _caller(filename: str, lineno: int) -> str:
    named = locate(filename, lineno)
    if named != f"{filename}:{lineno}":
        return named  # a notebook cell: "In [7], line 3"
    return f"{os.path.basename(filename)}:{lineno}"


def call_path(delta: SiteDelta) -> str:
    """Where a change was allocated: ``file:line``, then for a traceback its
    callers, nearest first, by file name (``util.py:2 <- main.py:5``); text cut
    from the left keeps the callers and the innermost file name.

    Example:
        >>> from memguard.values.diff import SiteDelta
        >>> from memguard.values.site import Frame
        >>> call_path(SiteDelta(filename="/app/util.py", lineno=2, size_bytes=1,
        ...                     size_diff_bytes=1, count=1, count_diff=1,
        ...                     traceback=(Frame("/app/main.py", 5), Frame("/app/util.py", 2))))
        '/app/util.py:2 <- main.py:5'
    """
    callers = [_caller(f.filename, f.lineno) for f in delta.traceback[-2::-1]]
    return " <- ".join([delta.where, *callers])


def _diff(value: SnapshotDiff, top: int) -> Document:
    facts = [("elapsed", _elapsed(value.elapsed_seconds)), ("sites grouped by", value.by),
             ("traced Python heap", _size_or_absent(value.traced_diff_bytes,
                                                    value.reason("traced_bytes"), signed=True)),
             ("process RSS", _size_or_absent(value.rss_diff_bytes, value.reason("rss_bytes"),
                                             signed=True)),
             ("process USS", _size_or_absent(value.uss_diff_bytes, value.reason("uss_bytes"),
                                             signed=True))]
    if value.include or value.exclude:
        facts.append(("file filters", f"include {_names(value.include)}; "
                                      f"exclude {_names(value.exclude)}"))
    facts.append(("descriptors", f"opened {_names(value.fds_opened)}; "
                                 f"closed {_names(value.fds_closed)}"))
    facts.append(("threads", f"started {_names(value.threads_started)}; "
                             f"ended {_names(value.threads_ended)}"))
    sections = []
    if value.sites is None:
        sections.append(Section("Changed allocation sites", _absent(value.reason("sites"))))
    else:
        shown = value.sites[:top]
        rows = [[format_size(s.size_diff_bytes, signed=True), format_size(s.size_bytes),
                 f"{s.count_diff:+,}", f"{s.count:,}", call_path(s), s.source] for s in shown]
        rest = value.sites[top:]
        smaller = LeftOut(SMALLER, sum(s.size_diff_bytes for s in rest),
                          sum(s.count_diff for s in rest), len(rest))
        total = format_size(value.sites_diff_bytes or 0, signed=True)
        note = (f"{len(value.sites):,} sites changed, {total} in all; biggest change first; "
                + ("memguard's own frames and the import machinery included" if value.internal
                   else "the rows add up to the change of every traced block"))
        table = _source_column(Table(["change", "size", "Δblocks", "blocks", "where", "line"],
                                     rows, "rrrrll", 4, trim=5))
        shown_sums = (sum(s.size_diff_bytes for s in shown), sum(s.count_diff for s in shown))
        sections.append(Section("Changed allocation sites", note,
                                add_up(table, shown_sums, [smaller, *value.left_out],
                                       diff=True)))
    if value.types is None:
        sections.append(Section("Changed object counts", _absent(value.reason("types"))))
    else:
        rows = [[f"{t.count_diff:+,}", f"{t.count:,}", t.name] for t in value.types[:top]]
        more = value.types[top:]
        if more:
            rows.append([f"{sum(t.count_diff for t in more):+,}", f"{sum(t.count for t in more):,}",
                         f"{len(more):,} more types"])
            rows.append([f"{sum(t.count_diff for t in value.types):+,}",
                         f"{sum(t.count for t in value.types):,}", "total"])
        sections.append(Section("Changed object counts", f"{len(value.types):,} types changed",
                                Table(["change", "count", "type"], rows, "rrl", 2)))
    types = [(t.name, f"{t.count_diff:+,}") for t in (value.types or ())[:top]]
    caption = {"top": _top_caption((value.sites or ())[:top], types)}
    title = f'memguard diff "{value.before or "before"}" -> "{value.after or "after"}"'
    return Document("diff", title, facts, sections,
                    ["top"] if value.sites or value.types else [], caption)


def traced_peak_text(timeline: Timeline) -> str:
    """The exact traced peak, as an absolute level and above the start, or why it is absent.

    The same words are in the text, the HTML, the chart's legend and its caption.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> traced_peak_text(Timeline(interval_seconds=0.01, duration_seconds=1.0,
        ...                           traced_start_bytes=1024, traced_peak_bytes=3072))
        'traced peak 3.0 KiB absolute, +2.0 KiB above the start (exact)'
    """
    above = timeline.traced_peak_above_start_bytes
    if timeline.traced_peak_bytes is None or above is None:
        return f"traced peak {_absent(timeline.reason('traced_bytes') or 'not traced')}"
    return (f"traced peak {format_size(timeline.traced_peak_bytes)} absolute, "
            f"{format_size(above, signed=True)} above the start (exact)")


def rss_peak_text(timeline: Timeline) -> str:
    """The RSS peak, absolute and above the start, and how it was measured.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> rss_peak_text(Timeline(interval_seconds=0.01, duration_seconds=1.0,
        ...                        absent=(("rss_bytes", "psutil is missing"),)))
        'RSS peak absent: psutil is missing'
    """
    if timeline.rss_peak_bytes is None:
        return f"RSS peak {_absent(timeline.reason('rss_bytes') or 'not measured')}"
    how = ("kernel high-water mark, exact" if timeline.rss_peak_method == "kernel-hwm"
           else "highest sample")
    above = timeline.rss_peak_above_start_bytes
    rise = "" if above is None else f", {format_size(above, signed=True)} above the start"
    return f"RSS peak {format_size(timeline.rss_peak_bytes)} absolute{rise} ({how})"


def _timeline(value: Timeline, top: int) -> Document:
    interval = f"{value.interval_seconds * 1000:g} ms"
    facts = [("samples", f"{len(value.samples):,} every {interval} over "
                         f"{value.duration_seconds:.3f} s")]
    if value.started_at:
        facts.insert(0, ("started", _when(value.started_at)))
    if value.traced_peak_bytes is None or value.traced_start_bytes is None:
        traced = _absent(value.reason("traced_bytes") or "not traced")
    else:
        end = "" if value.traced_end_bytes is None else (
            f", end {format_size(value.traced_end_bytes)}")
        traced = (f"start {format_size(value.traced_start_bytes)}{end} (absolute); "
                  + traced_peak_text(value).removeprefix("traced "))
    facts.append(("traced Python heap", traced))
    if value.rss_peak_bytes is None:
        rss = _absent(value.reason("rss_bytes") or "not measured")
    else:
        start = "" if value.rss_start_bytes is None else (
            f"start {format_size(value.rss_start_bytes)} (absolute); ")
        rss = start + rss_peak_text(value).removeprefix("RSS ")
    facts.append(("process RSS", rss))
    sections = []
    if value.marks:
        rows = [[f"{m.time_seconds:.3f} s",
                 "absent" if m.traced_bytes is None else format_size(m.traced_bytes), m.label]
                for m in value.marks]
        sections.append(Section("Marks", "", Table(["time", "traced", "label"], rows, "rrl", 2)))
    traced_series = tuple(float(s.traced_bytes) for s in value.samples
                          if s.traced_bytes is not None)
    if traced_series:
        low, high = min(traced_series), max(traced_series)
        sections.append(Section(
            "Traced Python heap over time",
            f"sampled: {format_size(low)} to {format_size(high)}", series=traced_series))
    elif not value.samples:
        sections.append(Section("Samples", "no samples"))
    caption = {"timeline": f"{len(value.samples):,} samples; "
                           f"{traced_peak_text(value)}; {rss_peak_text(value)}"}
    return Document("timeline", _quoted("timeline", value.label), facts, sections,
                    ["timeline"] if value.samples else [], caption)


def _limit(value: LimitReport, top: int) -> Document:
    verdict = (f"EXCEEDED by {format_size(value.overshoot_bytes)}" if value.exceeded
               else f"held, headroom {format_size(-value.overshoot_bytes)}")
    facts = [("verdict", verdict), ("measured", value.measured),
             ("peak", f"{format_size(value.peak_above_start_bytes)} above the start"),
             ("limit", format_size(value.limit_bytes)),
             ("levels", f"{format_size(value.start_bytes)} at the start, "
                        f"{format_size(value.end_bytes)} at the end, absolute "
                        f"({format_size(value.end_above_start_bytes, signed=True)} kept)"),
             ("duration", f"{value.duration_seconds:.3f} s")]
    note = SITE_NOTES.get(value.sites_status, value.sites_status)
    if value.sites:
        note += f", captured at {format_size(value.sites_above_start_bytes or 0)} above the start"
        section = Section("Allocation sites at the peak", note, site_table(value.sites[:top]))
    else:
        section = Section("Allocation sites at the peak", note)
    caption = {"top": f"peak {format_size(value.peak_above_start_bytes)} above the start, limit "
                      f"{format_size(value.limit_bytes)}; " + _top_caption(value.sites[:top], ())}
    return Document("limit", _quoted("limit", value.label), facts, [section],
                    ["top"] if value.sites else [], caption)


def _watch(value: WatchReport, top: int) -> Document:
    facts = [("verdict", value.summary), ("watched", str(value.watched)),
             ("freed", str(value.collected)),
             ("holder search", f"{value.search_seconds:.3f} s")]
    sections = []
    if value.survivors:
        rows = [[s.name, s.type_name, s.object_repr, s.holder] for s in value.survivors[:top]]
        sections.append(Section("Objects still alive after gc.collect()",
                                "each with the chain of references that holds it",
                                Table(["object", "type", "repr", "held by"], rows, "llll", 3)))
    return Document("watch", _quoted("watch", value.label), facts, sections, [])


def _leak(value: LeakReport, top: int) -> Document:
    from ..values.leak import format_amount

    calls = f"{value.iterations} measured" + (f" after {value.warmup} warm-up"
                                              if value.warmup else "")
    facts = [("verdict", value.summary), ("calls", f"{calls} ({value.mode})"),
             ("duration", f"{value.duration_seconds:.3f} s")]
    rows = [[s.name, "LEAK" if s.leaked else "ok", format_amount(s.per_call, s.unit),
             format_amount(s.total, s.unit), s.detail] for s in value.signals]
    sections = [Section("Signals", "growth per call is the fitted slope over the measured calls",
                        Table(["signal", "verdict", "per call", "total", "detail"], rows,
                              "llrrl", 4, wrap=True))]
    if value.sites:
        over = ("per call" if value.site_calls <= 1
                else f"growth over {value.site_calls:,} traced calls")
        sections.append(Section("Growing allocation sites", f"{over}, biggest first",
                                site_table(value.sites[:top])))
    if value.types:
        type_rows = [[format_amount(n, "", signed=True).strip(), name]
                     for name, n in value.types[:top]]
        sections.append(Section("Growing types", "objects per call",
                                Table(["per call", "type"], type_rows, "rl", 1)))
    if value.sample:
        sections.append(Section("Sample leaked object", "", lines=value.sample.splitlines()))
    if value.resources:
        sections.append(Section("Leaked resources", "", lines=list(value.resources)))
    fits = "; ".join(f"{name} {format_amount(slope, _unit(value, name))} per call"
                     for name, (slope, _) in value.fits.items())
    caption = {"growth": fits or "no fitted series",
               "top": _top_caption(value.sites[:top],
                                   [(n, f"{c:+.2f}/call") for n, c in value.types[:top]])}
    charts = (["growth"] if value.series else []) + (["top"] if value.sites or value.types
                                                     else [])
    return Document("leak", _quoted("leak check", value.label), facts, sections, charts, caption)


def _unit(report: LeakReport, name: str) -> str:
    for signal in report.signals:
        if signal.name == name:
            return signal.unit
    return "bytes" if name in ("python", "malloc", "rss") else name


_builders: dict[type | str, Callable[[Any, int], Document]] = {}


def register_document(cls: type | str, builder: Callable[[Any, int], Document]) -> None:
    """Teach every format to show values of *cls*: *builder(value, top)* returns its document.

    *cls* is a class, or the kind a memguard value declares (``"limit"``), so
    that a layout is registered without importing the value's module.

    The document's ``charts`` are drawn by :func:`memguard.report.plot.chart`;
    a ``"timeline"`` chart of a value with a ``timeline`` attribute draws that.

    Example:
        >>> class Note:
        ...     text = "hello"
        >>> register_document(Note, lambda note, top: Document(
        ...     "note", "memguard note", [("text", note.text)], [], []))
        >>> from memguard.report import render
        >>> print(render(Note(), "text"), end="")
        memguard note
        text  hello
    """
    if not isinstance(cls, type | str):
        raise TypeError(f"cls must be a class or a kind, not {type(cls).__name__}")
    if not callable(builder):
        raise TypeError(f"builder must be callable, not {type(builder).__name__}")
    _builders[cls] = builder


def build(value: Any, top: int = 10) -> Document:
    """The :class:`Document` for *value*.

    Raises:
        TypeError: memguard does not know how to show *value*.
    """
    for cls in type(value).__mro__:
        builder = _builders.get(cls)
        if builder is not None:
            return builder(value, top)
    kind = getattr(type(value), "KIND", None)
    builder = _builders.get(kind) if isinstance(kind, str) else None
    if builder is not None:
        return builder(value, top)
    from ..values.files import kinds

    known = ", ".join(cls.__name__ for cls in kinds().values())
    raise TypeError(f"memguard.report cannot render {type(value).__name__}; expected one "
                    f"of {known}")


for _kind, _builder in (("snapshot", _snapshot), ("diff", _diff), ("timeline", _timeline),
                        ("limit", _limit), ("leak", _leak), ("watch", _watch)):
    register_document(_kind, _builder)
