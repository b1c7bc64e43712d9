"""L8 presentation: line profiles as text, Markdown, HTML and a bar chart.

Renders :class:`~memguard.values.lineprofile.LineProfile` values. The text
form is a fixed-width table (what ``print(profile)`` shows); Markdown and
HTML show the same columns; the
chart draws one horizontal bar per source line that did something, with the
object-oriented matplotlib API (matplotlib is imported only by
:func:`plot_lines`, through :func:`memguard._optional.require`).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Literal

from .._optional import require
from ..units import format_size
from ..values.site import locate
from ._model import Document, Section, Table, register_document
from .html import escape

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..values.lineprofile import LineProfile, LineRow

__all__ = ["Metric", "document", "plot_lines", "to_html", "to_markdown", "to_text"]

Metric = Literal["allocated", "retained", "peak"]
_METRICS: dict[str, str] = {
    "allocated": "allocated_bytes",
    "retained": "retained_bytes",
    "peak": "peak_share_bytes",
}
_HEADER = ("Line", "Hits", "Allocated", "Retained", "At peak", "Source")
_TEXT_HEADER = (f"{'Line':>4}  {'Hits':>4}  {'Allocated':>10}  {'Retained':>10}  "
                f"{'At peak':>10}  Source")


def _cells(row: LineRow) -> tuple[str, ...]:
    if not (row.hits or row.allocated_bytes or row.retained_bytes or row.peak_share_bytes):
        return (str(row.lineno), "", "", "", "", row.source)
    return (str(row.lineno), str(row.hits), format_size(row.allocated_bytes),
            format_size(row.retained_bytes), format_size(row.peak_share_bytes), row.source)


def _profiles(profile: LineProfile) -> list[LineProfile]:
    return [profile, *profile.callees]


def to_text(profile: LineProfile, *, source_width: int | None = 60) -> str:
    """The fixed-width table ``print(profile)`` shows.

    Args:
        profile: The profile.
        source_width: Cut source lines longer than this (``None``: never).

    Returns:
        A summary line, a header, one line per source line, and notes on
        unattributed memory and blind spots; callees follow, each as its
        own table.

    Example:
        >>> from memguard.values.lineprofile import LineProfile
        >>> print(to_text(LineProfile(function="f", filename="x.py", first_lineno=1,
        ...                           rows=(), blind_spots=())))
        f (x.py:1): 0 calls, allocated 0 B, peak 0 B, retained 0 B
        Line  Hits   Allocated    Retained     At peak  Source
    """
    lines = [profile.summary, _TEXT_HEADER]
    for row in profile.rows:
        text = row.source
        if source_width is not None and len(text) > source_width:
            text = text[: max(source_width - 3, 0)] + "..."
        cells = _cells(row)
        lines.append(f"{cells[0]:>4}  {cells[1]:>4}  {cells[2]:>10}  {cells[3]:>10}  "
                     f"{cells[4]:>10}  {text}".rstrip())
    lines.extend(f"note: {note}" for note in profile.notes())
    for callee in profile.callees:
        lines.append("")
        lines.append(to_text(callee, source_width=source_width))
    return "\n".join(lines)


def to_markdown(profile: LineProfile) -> str:
    """A Markdown table per function, the caveats as a list.

    Example:
        >>> from memguard.values.lineprofile import LineProfile, LineRow
        >>> value = LineProfile(function="f", filename="x.py", first_lineno=1, calls=1,
        ...                     rows=(LineRow(lineno=2, source="x = [0] * 10", hits=1,
        ...                                   allocated_bytes=136),), blind_spots=())
        >>> print(to_markdown(value))
        **f** (`x.py:1`): 1 call, allocated 136 B, peak 0 B, retained 0 B
        <BLANKLINE>
        | Line | Hits | Allocated | Retained | At peak | Source |
        | ---: | ---: | ---: | ---: | ---: | --- |
        | 2 | 1 | 136 B | 0 B | 0 B | `x = [0] * 10` |
    """
    parts: list[str] = []
    for item in _profiles(profile):
        summary = item.summary.replace(item.label, f"**{item.function}** "
                                       f"(`{locate(item.filename, item.first_lineno)}`)", 1)
        lines = [summary, "", "| " + " | ".join(_HEADER) + " |",
                 "| ---: | ---: | ---: | ---: | ---: | --- |"]
        for row in item.rows:
            cells = list(_cells(row))
            source = cells[-1].strip().replace("|", "\\|").replace("`", "'")
            cells[-1] = f"`{source}`" if source else ""
            lines.append("| " + " | ".join(cells) + " |")
        notes = item.notes()
        if notes:
            lines.append("")
            lines.extend(f"- {note}" for note in notes)
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _html_table(item: LineProfile) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in _HEADER)
    body = []
    for row in item.rows:
        cells = _cells(row)
        numbers = "".join(f'<td style="text-align:right">{escape(c)}</td>' for c in cells[:5])
        body.append(f"<tr>{numbers}<td><pre style=\"margin:0\">{escape(cells[5])}</pre></td>"
                    "</tr>")
    notes = "".join(f"<li>{escape(note)}</li>" for note in item.notes())
    return (f"<p><b>{escape(item.function)}</b> <code>{escape(item.filename)}:"
            f"{item.first_lineno}</code>: {escape(item.summary.split(': ', 1)[-1])}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            + (f"<ul>{notes}</ul>" if notes else ""))


def to_html(profile: LineProfile, *, chart: bool = False) -> str:
    """An HTML fragment: a table per function, optionally the chart as an embedded PNG.

    Args:
        profile: The profile.
        chart: Embed :func:`plot_lines` (needs matplotlib).

    Example:
        >>> from memguard.values.lineprofile import LineProfile
        >>> html = to_html(LineProfile(function="f<x>", filename="x.py", first_lineno=1,
        ...                            rows=()))
        >>> "<b>f&lt;x&gt;</b>" in html
        True
    """
    parts = [_html_table(item) for item in _profiles(profile)]
    if chart:
        figure = plot_lines(profile)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        import base64

        encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
        parts.append(f'<img alt="memory by line" src="data:image/png;base64,{encoded}">')
    return '<div class="memguard-lines">' + "".join(parts) + "</div>"


def plot_lines(profile: LineProfile, ax: Axes | None = None, *,
               metric: Metric = "allocated", top: int | None = 20) -> Figure:
    """Draw one horizontal bar per line: allocated, retained or share of the peak.

    Args:
        profile: The profile (its own lines; callees are not drawn).
        ax: The Axes to draw on; a new Figure is made when ``None``.
        metric: ``"allocated"``, ``"retained"`` or ``"peak"``.
        top: Draw at most this many lines, the largest by *metric*, in source
            order (``None``: every line that did something).

    Returns:
        The Figure drawn on.

    Raises:
        ValueError: *metric* is unknown.
        ImportError: matplotlib is not installed (the message says how to
            install it).

    Example:
        >>> from memguard.values.lineprofile import LineProfile, LineRow
        >>> value = LineProfile(function="f", filename="x.py", first_lineno=1, calls=1,
        ...                     rows=(LineRow(lineno=2, source="a = b'x' * 4096", hits=1,
        ...                                   allocated_bytes=4129),))
        >>> figure = plot_lines(value)
        >>> figure.axes[0].get_title()
        'f: allocated by line'
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {', '.join(map(repr, _METRICS))}, "
                         f"got {metric!r}")
    attribute = _METRICS[metric]
    rows = [r for r in profile.rows if getattr(r, attribute)]
    if top is not None:
        rows = sorted(rows, key=lambda r: -abs(int(getattr(r, attribute))))[:top]
    rows.sort(key=lambda r: r.lineno)
    if ax is None:
        figure_module = require("matplotlib.figure", "plot")
        figure: Any = figure_module.Figure(figsize=(8, 1.2 + 0.35 * max(len(rows), 1)))
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    values = [int(getattr(r, attribute)) for r in rows]
    labels = [f"{r.lineno}: {r.source.strip()[:40]}" for r in rows]
    positions = list(range(len(rows)))
    ax.barh(positions, values, color=["#c0392b" if v < 0 else "#2e86c1" for v in values])
    ax.set_yticks(positions, labels=labels, fontfamily="monospace")
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(lambda x, _pos: format_size(x))
    ax.set_xlabel(f"{metric} (traced Python heap)")
    ax.set_title(f"{profile.function}: {metric} by line")
    if not rows:
        ax.text(0.5, 0.5, "no line allocated anything", ha="center", va="center",
                transform=ax.transAxes)
    result: Figure = figure
    return result


def document(profile: LineProfile, top: int = 10) -> Document:
    """The neutral document :func:`memguard.report.render` lays out for a profile.

    Every line of the function is listed (*top* does not cut a profile: its
    lines are in source order); callees follow as sections of their own.

    Example:
        >>> from memguard.values.lineprofile import LineProfile
        >>> doc = document(LineProfile(function="f", filename="x.py", first_lineno=1,
        ...                            rows=(), calls=1))
        >>> doc.title, doc.facts[1]
        ('memguard line profile: f', ('calls', '1'))
    """
    del top
    sections = []
    for item in _profiles(profile):
        rows = [list(_cells(row)) for row in item.rows]
        title = "Lines" if item is profile else f"Lines of {item.label} (expanded callee)"
        sections.append(Section(title, table=Table(list(_HEADER), rows, "rrrrrl", 5)))
    notes = list(profile.notes())
    if notes:
        sections.append(Section("Notes", lines=notes))
    facts = [
        ("function", profile.label),
        ("calls", str(profile.calls)),
        ("allocated", format_size(profile.allocated_bytes)),
        ("peak", format_size(profile.peak_bytes)),
        ("retained", profile.summary.rpartition("retained ")[2]),
        ("measured by", _measure(profile)),
    ]
    return Document("lineprofile", f"memguard line profile: {profile.function}", facts,
                    sections, [])


def _measure(profile: LineProfile) -> str:
    if profile.method == "counter":
        return "memguard's allocation counter (retained: line tags, every frame)"
    return f"tracemalloc (retained: tracebacks of {profile.nframes} frames)"


register_document("lineprofile", document)
