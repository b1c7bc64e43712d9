"""L8 presentation: one self-contained HTML page per value.

The page needs no network: the style is inline, charts are embedded (inline
SVG by default, or base64 PNG), and beside every chart its exact figures are
printed, so nothing is read off an axis. Without matplotlib the page still
has every table, and says how to get the charts.
"""

from __future__ import annotations

from typing import Any, Literal

from .._version import __version__
from ._model import Document, Section, Table, build

__all__ = ["escape", "render_html"]


def escape(text: str, quote: bool = True) -> str:
    """*text* safe in HTML, as :func:`html.escape` makes it (whose import brings
    the 2,000 named entities along, at ``import memguard``).

    Example:
        >>> escape('<a href="x">&</a>')
        '&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;'
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if quote:
        text = text.replace('"', "&quot;").replace("'", "&#x27;")
    return text

# The page may load nothing: no scripts, no fonts, no images but its own
# data: URIs. A browser enforces it, so "self-contained" is checked, not hoped.
_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2430;margin:0;
background:#f6f7f9}
main{max-width:1040px;margin:0 auto;padding:24px 28px 40px;background:#fff;min-height:100vh}
h1{font-size:1.45em;margin:0 0 14px;overflow-wrap:anywhere}h2{font-size:1.15em;margin:28px 0 6px;
border-bottom:1px solid #d9dde3;padding-bottom:3px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;vertical-align:top}
table.facts td{overflow-wrap:anywhere}div.scroll{overflow-x:auto;max-width:100%}
table.facts th{text-align:left;font-weight:600;color:#4a5568;white-space:nowrap}
table.data thead th{border-bottom:2px solid #c7ccd4;text-align:left}
table.data td{border-bottom:1px solid #eceff3;font-variant-numeric:tabular-nums}
table.data .r{text-align:right;white-space:nowrap}table.data .l{word-break:break-all}
p.note{color:#4a5568;margin:2px 0 6px}pre{background:#f3f4f6;padding:8px;overflow-x:auto}
figure.chart{margin:18px 0;border:1px solid #e2e5ea;padding:10px}
figure.chart svg,figure.chart img{max-width:100%;height:auto;display:block}
figcaption{font-size:.92em;color:#2d3748;margin-top:6px}
svg.sparkline{display:block;width:100%;max-width:600px;height:64px;background:#f3f4f6}
@media (max-width:600px){main{padding:14px 10px 28px}table.facts th{white-space:normal}
th,td{padding:2px 5px}}
footer{margin-top:36px;color:#718096;font-size:.85em}
""".strip()


def _table(table: Table) -> str:
    head = "".join(f'<th class="{a}">{escape(h)}</th>' for h, a in zip(table.headers,
                                                                        table.align, strict=True))
    body = "".join(
        "\n<tr>" + "".join(f'<td class="{a}">{escape(c)}</td>'
                           for c, a in zip(row, table.align, strict=True)) + "</tr>"
        for row in table.rows)
    # A wide table scrolls on its own on a narrow screen; the page does not.
    return (f'<div class="scroll"><table class="data">\n<thead><tr>{head}</tr></thead>\n'
            f'<tbody>{body}\n</tbody></table></div>')


def svg_sparkline(series: tuple[float, ...], *, width: int = 600, height: int = 64) -> str:
    """*series* as a small inline SVG line (no matplotlib, no fonts): what the
    text's block-character sparkline says, drawn as a line a browser scales.

    Example:
        >>> svg_sparkline((0.0, 1.0, 0.5))[:38]
        '<svg class="sparkline" role="img" aria'
    """
    low, high = min(series), max(series)
    span = (high - low) or 1.0
    step = width / max(len(series) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
                      for i, v in enumerate(series))
    return (f'<svg class="sparkline" role="img" aria-label="{len(series):,} samples" '
            f'viewBox="0 0 {width} {height}" preserveAspectRatio="none">'
            f'<polyline fill="none" stroke="#2b6cb0" stroke-width="1.5" '
            f'vector-effect="non-scaling-stroke" points="{points}"/></svg>')


def _section(section: Section, charted: bool) -> str:
    parts = [f"<section>\n<h2>{escape(section.title)}</h2>"]
    if section.note:
        parts.append(f'<p class="note">{escape(section.note)}</p>')
    if section.table is not None:
        parts.append(_table(section.table) if section.table.rows else "<p>(none)</p>")
    if section.series and not charted:
        parts.append(svg_sparkline(section.series))
    if section.lines:
        parts.append("<pre>" + escape("\n".join(section.lines)) + "</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def _charts(value: Any, document: Document, top: int,
            chart_format: Literal["svg", "png"]) -> tuple[list[str], str | None]:
    from . import plot as plots

    figures = []
    for name in document.charts:
        try:
            figure = plots.chart(value, name, top=top)
        except ImportError as error:
            return [], str(error)
        if chart_format == "svg":
            image = plots.to_svg(figure)
        else:
            import base64

            data = base64.b64encode(plots.to_png(figure)).decode("ascii")
            image = f'<img alt="{escape(name)} chart" src="data:image/png;base64,{data}">'
        caption = escape(document.caption.get(name, ""))
        figures.append(f'<figure class="chart" id="chart-{name}">{image}'
                       f"<figcaption><strong>Exact figures:</strong> {caption}</figcaption>"
                       "</figure>")
    return figures, None


def render_html(value: Any, *, charts: bool = True, top: int = 10,
                chart_format: Literal["svg", "png"] = "svg") -> str:
    """Render a memguard value as one self-contained HTML page.

    Args:
        value: A snapshot, diff, timeline, limit or leak report.
        charts: Embed the value's charts (needs matplotlib).
        top: Rows per table and bars per chart.
        chart_format: ``"svg"`` (inline, sharp at any zoom) or ``"png"``
            (base64, smaller for long timelines).

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> page = render_html(Timeline(interval_seconds=0.01, duration_seconds=0.0))
        >>> page.startswith("<!DOCTYPE html>"), "http" in page.replace("http-equiv", "")
        (True, False)
    """
    if chart_format not in ("svg", "png"):
        raise ValueError(f"chart_format must be 'svg' or 'png', got {chart_format!r}")
    document = build(value, top)
    figures: list[str] = []
    missing = None
    if charts and document.charts:
        figures, missing = _charts(value, document, top, chart_format)
    facts = "".join(f"\n<tr><th>{escape(n)}</th><td>{escape(v)}</td></tr>"
                    for n, v in document.facts)
    body = [f"<h1>{escape(document.title)}</h1>",
            f'<table class="facts"><tbody>{facts}\n</tbody></table>', *figures]
    if missing:
        body.append(f'<p class="note">Charts are not included: {escape(missing)}</p>')
    body.extend(_section(s, bool(figures)) for s in document.sections)
    body.append(f"<footer>memguard {escape(__version__)} · {escape(document.kind)} report"
                "</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_POLICY}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(document.title)}</title>\n<style>\n{_STYLE}\n</style></head>\n"
            f"<body><main class=\"memguard-report memguard-{document.kind}\">\n"
            + "\n".join(body) + "\n</main></body></html>\n")
