"""L8 presentation: render any memguard value as text, Markdown, JSON or HTML.

One entry point for every front end (the command line, the pytest plugin,
notebooks)::

    render(value, "text")            # fits 80 columns, wider on a wider terminal
    render(value, "markdown")
    render(value, "json")            # the same versioned JSON a saved file holds
    render(value, "html")            # one self-contained page, charts embedded
    write(value, "report.html")      # format from the suffix: .txt .md .json .html .png .svg

Values: every kind memguard declares (:data:`memguard.values._value.KINDS`):
:class:`~memguard.values.snapshot.Snapshot`,
:class:`~memguard.values.diff.SnapshotDiff`,
:class:`~memguard.values.timeline.Timeline` (or the recording
:func:`memguard.record` yields), :class:`~memguard.values.limit.LimitReport`,
:class:`~memguard.values.leak.LeakReport`,
:class:`~memguard.values.watch.WatchReport`,
:class:`~memguard.values.lineprofile.LineProfile` and
:class:`~memguard.values.run.RunReport`. This is the one place a value
becomes text or a page: ``print(value)``, notebooks and the ``memguard``
command all come here (importing this package registers it with the values,
see :func:`memguard.values._value.register_renderer`).

This module never imports matplotlib; charts live in :mod:`memguard.report.plot`,
imported only when a chart is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TextIO

from ..values._value import register_renderer
from ._dispatch import unwrap
from ._model import Document, Section, Table, register_document
from .html import render_html
from .lines import to_text as _line_profile_text
from .markdown import render_markdown
from .run import run_document as _run_document  # noqa: F401  (registers its layout)
from .text import render_text
from .verdict import verdict

__all__ = ["Document", "Format", "Section", "Table", "register_document", "render", "render_to",
           "write"]

Format = Literal["text", "markdown", "json", "html"]
_FORMATS = ("text", "markdown", "json", "html")
_SUFFIXES: dict[str, str] = {
    ".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
    ".json": "json", ".html": "html", ".htm": "html", ".png": "png", ".svg": "svg",
}


def render(value: Any, fmt: Format = "text", *, width: int | None = None,
           charts: bool = True, top: int = 10) -> str:
    """Render *value* as a string.

    Args:
        value: A memguard value (snapshot, diff, timeline, limit or leak report).
        fmt: ``"text"``, ``"markdown"``, ``"json"`` or ``"html"``.
        width: Text width in columns; by default 80, or the terminal's width
            when it is wider.
        charts: Embed charts in HTML (needs matplotlib; without it the page
            says how to install it).
        top: How many sites and types each table lists.

    Returns:
        The rendered text; JSON is the versioned file format
        :func:`memguard.load` reads.

    Raises:
        ValueError: *fmt* is unknown.
        TypeError: *value* is not something memguard renders.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> print(render(Timeline(interval_seconds=0.01, duration_seconds=0.0), "text"), end="")
        memguard timeline
        samples             0 every 10 ms over 0.000 s
        traced Python heap  absent: not traced
        process RSS         absent: not measured
        <BLANKLINE>
        Samples
          no samples
    """
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(map(repr, _FORMATS))}, got {fmt!r}")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int)
                              or width < 40):
        raise ValueError(f"width must be an int of at least 40 columns, got {width!r}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    value = unwrap(value)
    if fmt == "json":
        from ..values.files import dumps  # json, only when JSON is asked for

        return dumps(value, indent=2) + "\n"
    if fmt == "text":
        if _kind(value) == "lineprofile":  # a profile reads best as its source listing
            return _line_profile_text(value) + "\n"
        return render_text(value, width=width, top=top)
    if fmt == "markdown":
        return render_markdown(value, top=top)
    return render_html(value, charts=charts, top=top)


def render_to(value: Any, stream: TextIO, fmt: Format = "text", *, width: int | None = None,
              top: int = 10) -> None:
    """Render *value* and write it to *stream*.

    Example:
        >>> import io
        >>> from memguard.values.timeline import Timeline
        >>> out = io.StringIO()
        >>> render_to(Timeline(interval_seconds=0.01, duration_seconds=0.0), out, "json")
        >>> '"kind": "timeline"' in out.getvalue()
        True
    """
    stream.write(render(value, fmt, width=width, top=top))


def write(value: Any, path: str | os.PathLike[str], fmt: str | None = None, *,
          top: int = 10, width: int = 80) -> Path:
    """Write *value* to *path*, as text, Markdown, JSON, HTML or a PNG/SVG chart.

    Args:
        value: A memguard value.
        path: Where to write; the format comes from the suffix (``.txt``,
            ``.md``, ``.json``, ``.html``, ``.png``, ``.svg``) unless *fmt*
            is given.
        fmt: One of ``"text"``, ``"markdown"``, ``"json"``, ``"html"``,
            ``"png"``, ``"svg"``.
        top: How many sites and types tables and bar charts show.
        width: Columns of a text file (a file has no terminal to fit).

    Returns:
        The path written.

    Raises:
        ValueError: The format cannot be told from the suffix, or is unknown.
        ImportError: A chart was asked for and matplotlib is not installed.
        OutputRefused: Something other than a regular file is at *path*
            (see :func:`memguard.output.write_file`).
        OSError: The file cannot be written.

    Example:
        >>> import tempfile, pathlib
        >>> from memguard.values.timeline import Timeline
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "timeline.md"
        >>> write(Timeline(interval_seconds=0.01, duration_seconds=0.0), target).suffix
        '.md'
    """
    from ..output import write_file  # not at `import memguard`: only a write needs it

    target = Path(path)
    chosen = fmt or _SUFFIXES.get(target.suffix.lower())
    if chosen is None:
        raise ValueError(f"cannot tell the format of {os.fspath(path)!r} from its suffix; "
                         f"use one of {', '.join(_SUFFIXES)} or pass fmt=")
    if chosen in ("png", "svg"):
        import io

        from .plot import metadata, plot

        figure = plot(unwrap(value), top=top)
        image = io.BytesIO()
        figure.savefig(image, format=chosen, metadata=metadata(chosen))
        write_file(path, image.getvalue())
        return target
    if chosen not in _FORMATS:
        raise ValueError(f"fmt must be one of text, markdown, json, html, png, svg; "
                         f"got {chosen!r}")
    text = render(value, chosen, top=top, width=width)  # type: ignore[arg-type]
    write_file(path, text)
    return target


def _kind(value: Any) -> str | None:
    # By the kind each value declares: this module imports no value module,
    # so that `import memguard` (which imports it) stays cheap.
    kind = getattr(type(value), "KIND", None)
    return kind if isinstance(kind, str) else None


def _text(value: Any, *, top: int = 10, width: int | None = None,
          source_width: int | None = 60) -> str:
    if _kind(value) == "lineprofile":
        return _line_profile_text(value, source_width=source_width)
    return render(value, "text", top=top, width=width).rstrip("\n")


def _notebook_html(value: Any, **options: Any) -> str:
    # A fragment that survives a shared notebook's sanitizer and styles only
    # its own output (memguard.report.notebook); snapshots and diffs without
    # charts, whose matplotlib import would land in the next diff. The full
    # one-file page, render(value, "html"), is for `memguard report --format
    # html` only: its <style>, <meta> and page-wide CSS would restyle the
    # whole notebook (issue 19 point 1). Imported here, when a notebook shows
    # a value: its html escaping loads html.entities, which `import memguard`
    # does not need.
    from .notebook import render_notebook

    return render_notebook(value, top=options.get("top", 10))


register_renderer("text", _text)
register_renderer("markdown", lambda value, **options: render(value, "markdown", **options))
register_renderer("html", lambda value, **options: render(value, "html", **options))
register_renderer("notebook-html", _notebook_html)
register_renderer("verdict", verdict)
