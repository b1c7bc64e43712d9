"""L8 presentation: the document of a run (:class:`~memguard.values.run.RunReport`).

Facts, the allocation sites at the peak, a sparkline of the traced heap over
time, what was still live at the end and any line profiles, laid out by
every format of :mod:`memguard.report` like the other values.
"""

from __future__ import annotations

from typing import Any

from ..units import format_size
from ..values.site import SMALLER, LeftOut
from ._model import (
    Document,
    Section,
    _absent,
    add_up,
    register_document,
    rss_peak_text,
    site_table,
    snapshot_left_out,
    traced_peak_text,
    type_table,
    when_iso,
)
from .lines import to_text

__all__ = ["run_document"]


def run_document(run: Any, top: int) -> Any:
    """The :mod:`memguard.report` document of a run: facts, sites at the peak, timeline.

    Example:
        >>> from memguard.values.run import RunReport
        >>> from memguard.values.timeline import Timeline
        >>> run = RunReport(command="a.py", argv=("a.py",), exit_code=0, duration_seconds=1.0,
        ...                 timeline=Timeline(interval_seconds=0.01, duration_seconds=1.0))
        >>> run_document(run, 5).title
        'memguard run "a.py"'
    """
    sections = [_peak_sites(run, top), *_timeline_and_end(run, top), *_line_sections(run)]
    caption = {"timeline": f"{traced_peak_text(run.timeline)} at {run.peak_seconds:.3f} s"
                           + (f"; {rss_peak_text(run.timeline)}" if run.rss else "")}
    return Document("run", f'memguard run "{run.command}"', _run_facts(run), sections,
                    ["timeline"] if run.timeline.samples else [], caption)


def _interval(run: Any) -> str:
    return f"{run.timeline.interval_seconds * 1000:g} ms"


def _above_start(size: int | None, why: str | None) -> str:
    return _absent(why) if size is None else f"{format_size(size)} above the start"


def _run_facts(run: Any) -> list[tuple[str, str]]:
    timeline = run.timeline
    exit_text = str(run.exit_code) + (f" ({run.error})" if run.error else "")
    facts = [("command", run.command), ("started", when_iso(run.started_at)),
             ("exit code", exit_text), ("duration", f"{run.duration_seconds:.3f} s"),
             ("traced peak", f"{traced_peak_text(timeline).removeprefix('traced peak ')}, at "
                             f"{run.peak_seconds:.3f} s (its time to one {_interval(run)} "
                             "interval)"),
             ("traced at the end", _above_start(run.traced_end_above_start_bytes,
                                                timeline.reason("traced_bytes")))]
    if timeline.rss_peak_bytes is not None:
        facts.append(("process RSS", rss_peak_text(timeline).removeprefix("RSS ")))
    elif run.rss:
        reason = dict(timeline.absent).get("rss_bytes", "RSS could not be read")
        facts.append(("process RSS", f"not measured: {reason}"))
    if run.children_peak_bytes is not None:
        facts.append(("with children", f"peak {format_size(run.children_peak_bytes)} absolute "
                                        f"(sampled every {_interval(run)})"))
    if run.limit is not None:
        limit = run.limit
        verdict = (f"EXCEEDED by {format_size(limit.overshoot_bytes)}" if limit.exceeded
                   else f"held, headroom {format_size(-limit.overshoot_bytes)}")
        facts.append(("limit", f"{format_size(limit.limit_bytes)} on the {limit.measured}: "
                               f"peak {format_size(limit.peak_above_start_bytes)} above the start, "
                               f"{verdict}"))
    if run.final is not None and run.final.types is not None:
        facts.append(("live at the end", f"{sum(n for _, n in run.final.types):,} objects "
                                          f"in {len(run.final.types):,} types"))
    return facts


def _sums(sites: Any) -> tuple[int, int]:
    return sum(s.size_bytes for s in sites), sum(s.count for s in sites)


def _peak_sites(run: Any, top: int) -> Any:
    title = "Allocation sites at the peak"
    if not run.sites and (run.rss or run.children):
        return Section(title, "not captured while process memory is measured (a capture's "
                              "copy of the traces would count in it); run without "
                              "--rss/--children for them")
    if not run.sites:
        return Section(title, "none captured: the traced heap never grew past 256 KiB, or "
                              "its peak was too short-lived to catch")
    note = (f"live at {format_size(run.sites_above_start_bytes or 0)} above the start, at "
            f"{run.sites_seconds:.3f} s ({run.sites_fraction:.0%} of the peak)")
    shown = run.sites[:top]
    rest = run.sites[top:]
    left = list(run.sites_left_out)
    smaller = next((item for item in left if item.name == SMALLER), LeftOut(SMALLER, 0, 0))
    left = [LeftOut(SMALLER, smaller.size_bytes + sum(s.size_bytes for s in rest),
                    smaller.count + sum(s.count for s in rest), smaller.sites + len(rest)),
            *(item for item in left if item.name != SMALLER)]
    return Section(title, note, add_up(site_table(shown), _sums(shown), left))


def _timeline_and_end(run: Any, top: int) -> list[Any]:
    sections = []
    start = run.timeline.traced_start_bytes or 0
    series = tuple(float(s.traced_bytes - start) for s in run.timeline.samples
                   if s.traced_bytes is not None)
    if series:
        sections.append(Section("Traced Python heap over time",
                                f"{len(series):,} samples every {_interval(run)}, "
                                f"{format_size(min(series))} to {format_size(max(series))} "
                                f"above the start", series=series))
    still = run.final.top_sites(top) if run.final is not None else ()
    if still:
        sections.append(Section("Still live at the end", "traced memory the program held "
                                "when it ended, biggest first",
                                add_up(site_table(still), _sums(still),
                                       snapshot_left_out(run.final.sites or (), still,
                                                         run.final.sites_left_out))))
    if run.final is not None and run.final.types:
        sections.append(Section("Live objects by type at the end", "",
                                type_table(run.final.types, top)))
    return sections


def _line_sections(run: Any) -> list[Any]:
    sections = [Section(f"Line profile of {profile.label}", profile.summary,
                        lines=[line for line in to_text(profile, source_width=30).splitlines()[1:]
                               if not line.startswith("note:")])
                for profile in run.lines]
    if run.lines_target is not None and not run.lines:
        sections.append(Section(f"Line profile of {run.lines_target}",
                                "the function was never called"))
    return sections


register_document("run", run_document)

