"""L9 front end: read memguard files and render values for ``report`` and ``diff``.

Every value is rendered by :mod:`memguard.report`. A run's HTML page here
puts the run's document (:func:`memguard.report.run.run_document`) in front of
its timeline's page, with the timeline chart and its exact figures.
"""

from __future__ import annotations

import os
from html import escape
from typing import Any

from ..exceptions import CommandError, SnapshotFormatError
from ..report.run import run_document
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
