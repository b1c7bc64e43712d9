"""L8 presentation: a memguard value as an HTML fragment for a notebook output.

A notebook puts an output's HTML straight into its own page, and a notebook
shared with someone else is shown *untrusted*: JupyterLab, nbviewer, GitHub
and ``nbconvert --sanitize-html`` strip iframes, scripts, ``on*`` attributes
and (most of them) ``<style>`` and ``<svg>``. So the fragment is built only of
what survives them and cannot reach outside its own output:

* one root ``<div>`` with the class ``memguard-output`` and a class unique to
  this output; every style is an inline ``style`` attribute on an element of
  the fragment, so nothing applies to the notebook's other outputs (no
  ``<style>``, ``<html>``, ``<head>``, ``<meta>``, no global selector);
* tables of text for every figure (the verdict, the facts, sites and types),
  so a sanitizer that drops every style and image still leaves the answer;
* charts as one size-bounded PNG each (``<img src="data:...">``, which
  JupyterLab keeps in untrusted outputs), drawn on a transparent background
  in mid-tone colours that read on light and dark themes, with their exact
  figures beside them as text;
* colours from JupyterLab's theme variables (``--jp-content-font-color1``,
  ``--jp-border-color1``, ...) with light fallbacks, each after a plain
  declaration that a sanitizer keeps (JupyterLab's drops ``var()`` values), so
  that both a trusted and an untrusted output follow the theme.

:func:`render_notebook` is what memguard's values return from
``_repr_html_``; the one-file page of ``memguard report --format html``
stays in :mod:`memguard.report.html`.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator
from html import escape
from typing import Any

from .._optional import require
from ._dispatch import unwrap
from ._model import Document, Section, Table, build

__all__ = ["MAX_CHART_BYTES", "render_notebook"]

MAX_CHART_BYTES = 160_000
"""The largest PNG a chart may embed; a bigger one is drawn again at a lower resolution."""

_DPI = (144, 110, 80, 60)
_CHART_INK = "#8a94a3"
"""Axis, tick and title colour of the charts: a mid grey that reads on white and on black."""

# Style fragments. A declaration a sanitizer keeps comes first; the theme-aware
# one after it wins where var() survives (a trusted output, nbconvert's page).
_ROOT = ("color:var(--jp-content-font-color1, #1f2328);"
         "background:transparent;max-width:100%;margin:2px 0;line-height:1.45")
_TITLE = "margin:0 0 4px 0;font-weight:bold;font-size:1.08em"
_NOTE = "margin:2px 0 4px 0;opacity:0.85"
_TABLE = "border-collapse:collapse;margin:2px 0 8px 0;width:auto;max-width:100%"
_LINE = "1px solid rgba(128,128,128,0.45)"
_LINE_VAR = "var(--jp-border-color1, rgba(128,128,128,0.45))"
_CELL = "padding:2px 10px 2px 0;vertical-align:top;border:0;background:transparent"
_HEAD = (f"{_CELL};font-weight:bold;white-space:nowrap;border-bottom:{_LINE};"
         f"border-bottom-color:{_LINE_VAR}")
_ROW_RULE = f"border-bottom:1px solid rgba(128,128,128,0.2);border-bottom-color:{_LINE_VAR}"
# Long paths and chains wrap rather than run past the cell: "break-word" (a
# break only where a line would overflow, counted in a table's narrowest
# width) where a sanitizer keeps it; JupyterLab's untrusted sanitizer drops
# that value, and its "break-all" fallback is the one it keeps.
_WRAP = "white-space:normal;word-break:break-all;word-break:break-word;overflow-wrap:anywhere"
_NUMBER = "text-align:right;white-space:nowrap"
_SOURCE = ("text-align:left;white-space:pre-wrap;font-family:var(--jp-code-font-family, monospace);"
           "font-family:monospace")
_PRE = ("margin:2px 0 8px 0;padding:4px 6px;white-space:pre-wrap;word-break:normal;"
        "overflow-wrap:break-word;background:transparent;border-left:3px solid "
        "rgba(128,128,128,0.45)")
_FIGURE = "margin:6px 0 10px 0;padding:0;max-width:100%"
_IMAGE = "max-width:100%;height:auto;display:block;background:transparent"
_ALARM = "color:#d1242f;color:var(--jp-error-color1, #d1242f);font-weight:bold"

_serial = itertools.count(1)


def render_notebook(value: Any, *, charts: bool | None = None, top: int = 10) -> str:
    """Render a memguard value as an HTML fragment that is safe to show in a notebook.

    Args:
        value: Any value memguard renders (a snapshot, diff, timeline or the
            recording :func:`memguard.record` yields, a limit, leak, watch or
            run report, a line profile).
        charts: Embed the value's charts as PNG images (needs matplotlib;
            without it the fragment says how to install it). By default
            every value but a snapshot or a diff has its charts: those are
            steps of a hunt by snapshots, and drawing would import
            matplotlib into the memory the next diff compares (their tables
            say the same).
        top: Rows per table and bars per chart.

    Returns:
        One ``<div class="memguard-output ...">`` element, with inline
        styles only: no ``<style>``, ``<script>``, ``<iframe>``, event
        attributes or document-level tags.

    Raises:
        TypeError: *value* is not something memguard renders.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> fragment = render_notebook(Timeline(interval_seconds=0.01, duration_seconds=0.0))
        >>> fragment.startswith('<div class="memguard-output memguard-timeline')
        True
        >>> any(tag in fragment for tag in ("<style", "<script", "<iframe", "<html", "<meta"))
        False
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    value = unwrap(value)
    document = build(value, top)
    root = f"memguard-{document.kind}-{os.getpid():x}-{next(_serial)}"
    alarm = bool(getattr(value, "leaked", False) or getattr(value, "exceeded", False)
                 or getattr(value, "survivors", ()))
    parts = [f'<p style="{_TITLE}">{escape(document.title)}</p>', _facts(document, alarm)]
    if charts is None:
        charts = document.kind not in ("snapshot", "diff")
    if charts and document.charts:
        parts.extend(_charts(value, document, top))
    parts.extend(_section(section) for section in document.sections)
    return (f'<div class="memguard-output memguard-{document.kind} {root}" '
            f'style="{_ROOT}">\n' + "\n".join(p for p in parts if p) + "\n</div>")


def _facts(document: Document, alarm: bool) -> str:
    rows = []
    for name, text in document.facts:
        style = f"{_CELL};{_WRAP};text-align:left"
        if name == "verdict" and alarm:
            style += f";{_ALARM}"
        rows.append(f'<tr><th scope="row" style="{_CELL};text-align:left;white-space:nowrap;'
                    f'font-weight:bold">{escape(name)}</th>'
                    f'<td style="{style}">{escape(text)}</td></tr>')
    return f'<table style="{_TABLE}"><tbody>{"".join(rows)}</tbody></table>'


def _column_styles(table: Table) -> list[str]:
    styles = []
    for header, align in zip(table.headers, table.align, strict=True):
        if header == "Source":
            styles.append(_SOURCE)
        elif align == "r":
            styles.append(_NUMBER)
        else:
            styles.append(f"text-align:left;{_WRAP}")
    return styles


def _table(table: Table) -> str:
    styles = _column_styles(table)
    head = "".join(
        f'<th style="{_HEAD};text-align:{"right" if align == "r" else "left"}">'
        f"{escape(header)}</th>"
        for header, align in zip(table.headers, table.align, strict=True))
    rows = []
    for row in table.rows:
        cells = "".join(
            f'<td style="{_CELL};{_ROW_RULE};{style}{";" + _ALARM if cell == "LEAK" else ""}">'
            f"{escape(cell)}</td>"
            for cell, style in zip(row, styles, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    return (f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _section(section: Section) -> str:
    parts = [f'<p style="{_TITLE};margin-top:10px">{escape(section.title)}</p>']
    if section.note:
        parts.append(f'<p style="{_NOTE}">{escape(section.note)}</p>')
    if section.table is not None:
        parts.append(_table(section.table) if section.table.rows
                     else f'<p style="{_NOTE}">(none)</p>')
    if section.lines:
        parts.append(f'<pre style="{_PRE}">' + escape("\n".join(section.lines)) + "</pre>")
    return "\n".join(parts)


def _charts(value: Any, document: Document, top: int) -> Iterator[str]:
    try:
        from . import plot as plots

        matplotlib = require("matplotlib", "plot")
    except ImportError as error:
        yield f'<p style="{_NOTE}">Charts are not included: {escape(str(error))}</p>'
        return
    ink = {"text.color": _CHART_INK, "axes.labelcolor": _CHART_INK, "axes.edgecolor": _CHART_INK,
           "xtick.color": _CHART_INK, "ytick.color": _CHART_INK,
           "axes.titlecolor": _CHART_INK, "figure.facecolor": "none",
           "axes.facecolor": "none", "savefig.transparent": True,
           "legend.labelcolor": _CHART_INK, "grid.color": _CHART_INK, "grid.alpha": 0.3}
    for name in document.charts:
        with matplotlib.rc_context(ink):
            figure = plots.chart(value, name, top=top)
            data = _bounded_png(plots, figure)
        width = round(figure.get_figwidth() * 96)
        encoded = base64.b64encode(data).decode("ascii")
        caption = escape(document.caption.get(name, ""))
        alt = escape(f"{name} chart of {document.title}")
        yield (f'<figure style="{_FIGURE}"><img alt="{alt}" width="{width}" style="{_IMAGE}" '
               f'src="data:image/png;base64,{encoded}">'
               f'<figcaption style="{_NOTE}"><b>Exact figures:</b> {caption}</figcaption>'
               f"</figure>")


def _bounded_png(plots: Any, figure: Any) -> bytes:
    """The figure as a PNG of at most :data:`MAX_CHART_BYTES`, as sharp as fits."""
    data = b""
    for dpi in _DPI:
        data = plots.to_png(figure, dpi=dpi)
        if len(data) <= MAX_CHART_BYTES:
            break
    return data
