"""L6 front end: read memguard files and render values for ``report`` and ``diff``.

Snapshots, diffs, timelines, limit and leak reports are rendered by
:mod:`memguard.report`. A run (:class:`~memguard.values.run.RunReport`) is
laid out here as a :mod:`memguard.report` document (facts, the sites at the
peak, a sparkline of the timeline, what was still live at the end), and its
chart is its timeline's.
"""

from __future__ import annotations

import os
from html import escape
from typing import Any

from ..exceptions import CommandError, SnapshotFormatError
from ..units import format_size
from .options import EXIT_ERROR

__all__ = ["load_value", "render_value", "run_document"]


def load_value(path: str) -> Any:
    """Read a memguard file, or fail with a one-line :class:`CommandError` (exit code 1).

    Example:
        >>> load_value("no/such/file.json")
        Traceback (most recent call last):
        ...
        memguard.exceptions.CommandError: cannot read 'no/such/file.json': no such file
    """
    from ..values import run as _run  # registers the "run" kind
    from ..values.files import load

    del _run
    if not os.path.exists(path):
        raise CommandError(f"cannot read {path!r}: no such file", exit_code=EXIT_ERROR)
    if os.path.isdir(path):
        raise CommandError(f"cannot read {path!r}: it is a directory", exit_code=EXIT_ERROR)
    try:
        return load(path)
    except SnapshotFormatError as error:
        raise CommandError(f"cannot read {error.path!r}: {error.reason}",
                           exit_code=EXIT_ERROR) from None
    except OSError as error:
        raise CommandError(f"cannot read {path!r}: {error.strerror or error}",
                           exit_code=EXIT_ERROR) from None


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
    from ..report._model import Document

    sections = [_peak_sites(run, top), *_timeline_and_end(run, top), *_line_sections(run)]
    caption = {"timeline": f"traced peak {format_size(run.traced_peak_bytes)} above the start "
                           f"at {run.peak_seconds:.3f} s (exact)"}
    return Document("run", f'memguard run "{run.command}"', _run_facts(run), sections,
                    ["timeline"] if run.timeline.samples else [], caption)


def _interval(run: Any) -> str:
    return f"{run.timeline.interval_seconds * 1000:g} ms"


def _run_facts(run: Any) -> list[tuple[str, str]]:
    timeline = run.timeline
    exit_text = str(run.exit_code) + (f" ({run.error})" if run.error else "")
    facts = [("command", run.command), ("started", run.started_at or "unknown"),
             ("exit code", exit_text), ("duration", f"{run.duration_seconds:.3f} s"),
             ("traced peak", f"{format_size(run.traced_peak_bytes)} above the start, at "
                             f"{run.peak_seconds:.3f} s (exact peak; its time to one "
                             f"{_interval(run)} interval)"),
             ("traced at the end", format_size(run.traced_end_bytes))]
    if timeline.rss_peak_bytes is not None:
        how = ("kernel high-water mark, exact" if timeline.rss_peak_method == "kernel-hwm"
               else "highest sample")
        facts.append(("process RSS", f"peak {format_size(timeline.rss_peak_bytes)} "
                      f"({format_size(timeline.rss_peak_above_start_bytes or 0, signed=True)} "
                      f"above the start, {how})"))
    elif run.rss:
        reason = dict(timeline.absent).get("rss_bytes", "RSS could not be read")
        facts.append(("process RSS", f"not measured: {reason}"))
    if run.children_peak_bytes is not None:
        facts.append(("with children", f"peak {format_size(run.children_peak_bytes)} "
                                        f"(sampled every {_interval(run)})"))
    if run.limit is not None:
        facts.append(("limit", str(run.limit).partition(": ")[2]))
    if run.final is not None and run.final.types is not None:
        facts.append(("live at the end", f"{sum(n for _, n in run.final.types):,} objects "
                                          f"in {len(run.final.types):,} types"))
    return facts


def _site_table(sites: Any) -> Any:
    from ..report._model import Table

    rows = [[format_size(s.size_bytes), f"{s.count:,}", f"{s.filename}:{s.lineno}"]
            for s in sites]
    return Table(["size", "blocks", "where"], rows, "rrl", 2)


def _peak_sites(run: Any, top: int) -> Any:
    from ..report._model import Section

    title = "Allocation sites at the peak"
    if not run.sites and (run.rss or run.children):
        return Section(title, "not captured while process memory is measured (a capture's "
                              "copy of the traces would count in it); run without "
                              "--rss/--children for them")
    if not run.sites:
        return Section(title, "none captured: the traced heap never grew past 256 KiB, or "
                              "its peak was too short-lived to catch")
    note = (f"live at {format_size(run.sites_level_bytes)} above the start, at "
            f"{run.sites_seconds:.3f} s ({run.sites_fraction:.0%} of the peak)")
    # Sites under 1% of the captured level are noise next to the culprits.
    floor = run.sites_level_bytes / 100
    shown = [s for s in run.sites[:top] if s.size_bytes >= floor] or list(run.sites[:1])
    rest = run.sites[len(shown):]
    if rest:
        note += (f"; {len(rest)} smaller sites ({format_size(sum(s.size_bytes for s in rest))})"
                 f" not shown")
    return Section(title, note, _site_table(shown))


def _timeline_and_end(run: Any, top: int) -> list[Any]:
    from ..report._model import Section, Table

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
                                "when it ended, biggest first", _site_table(still)))
    if run.final is not None and run.final.types:
        rows = [[f"{n:,}", name] for name, n in run.final.types[:top]]
        sections.append(Section("Live objects by type at the end", "",
                                Table(["count", "type"], rows, "rl", 1)))
    return sections


def _line_sections(run: Any) -> list[Any]:
    from ..report._model import Section

    sections = [Section(f"Line profile of {profile.label}", str(profile),
                        lines=[line for line in profile.table(source_width=30).splitlines()[1:]
                               if not line.startswith("note:")])
                for profile in run.lines]
    if run.lines_target is not None and not run.lines:
        sections.append(Section(f"Line profile of {run.lines_target}",
                                "the function was never called"))
    return sections


def _run_html(run: Any, top: int) -> str:
    from ..report import render
    from ..report.text import sparkline

    document = run_document(run, top)
    facts = "".join(f"<tr><th>{escape(n)}</th><td>{escape(v)}</td></tr>"
                    for n, v in document.facts)
    parts = [f"<h1>{escape(document.title)}</h1>",
             f'<table class="facts"><tbody>{facts}</tbody></table>']
    for section in document.sections:
        parts.append(f"<section><h2>{escape(section.title)}</h2>")
        if section.note:
            parts.append(f'<p class="note">{escape(section.note)}</p>')
        table = section.table
        if table is not None:
            header = "".join(f'<th class="{a}">{escape(h)}</th>'
                             for h, a in zip(table.headers, table.align, strict=True))
            cells = "".join("<tr>" + "".join(f'<td class="{a}">{escape(c)}</td>'
                                             for c, a in zip(row, table.align, strict=True))
                            + "</tr>" for row in table.rows)
            parts.append(f'<table class="data"><thead><tr>{header}</tr></thead>'
                         f"<tbody>{cells}</tbody></table>")
        if section.series:
            parts.append(f"<pre>{escape(sparkline(section.series, 80))}</pre>")
        if section.lines:
            parts.append("<pre>" + escape("\n".join(section.lines)) + "</pre>")
        parts.append("</section>")
    parts.append("<h2>Timeline</h2>")
    # The timeline's own page brings the style and the chart with its exact
    # figures; the run's facts and sections go in front of them.
    page = render(run.timeline, "html", top=top)
    head, _, rest = page.partition("<h1>")
    _, _, rest = rest.partition("</h1>")
    head = head.replace(f"<title>{escape(_timeline_title(run))}</title>",
                        f"<title>{escape(document.title)}</title>")
    return head + "\n".join(parts) + rest


def _timeline_title(run: Any) -> str:
    label = run.timeline.label
    return f'memguard timeline "{label}"' if label else "memguard timeline"


def render_value(value: Any, fmt: str, *, top: int) -> str | bytes:
    """Render *value* in *fmt* (text, markdown, json, html, png or svg).

    Raises:
        CommandError: A chart was asked for and matplotlib is missing (exit code 1).

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> render_value(Timeline(interval_seconds=0.01, duration_seconds=0.0), "json",
        ...              top=5)[:10]
        '{\\n  "forma'
    """
    from ..values.files import dumps
    from ..values.run import RunReport

    if fmt == "json":
        return dumps(value, indent=2) + "\n"
    is_run = isinstance(value, RunReport)
    if fmt in ("png", "svg"):
        return _chart(value.timeline if is_run else value, fmt, top)
    from ..report import markdown as markdown_layout
    from ..report import render, text

    if not is_run:
        try:
            return render(value, fmt, top=top)  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            raise CommandError(f"cannot show this file as {fmt}: {error}",
                               exit_code=EXIT_ERROR) from None
    if fmt == "text":
        return text.layout(run_document(value, top), text.terminal_width())
    if fmt == "markdown":
        return markdown_layout.layout(run_document(value, top))
    return _run_html(value, top)


def _chart(value: Any, fmt: str, top: int) -> str | bytes:
    try:
        from ..report import plot

        figure = plot.plot(value, top=top)
    except ImportError as error:
        raise CommandError(str(error), exit_code=EXIT_ERROR) from None
    except (TypeError, ValueError) as error:
        raise CommandError(f"cannot draw this file as {fmt}: {error}",
                           exit_code=EXIT_ERROR) from None
    if fmt == "png":
        return bytes(plot.to_png(figure))
    return str(plot.to_svg(figure))
