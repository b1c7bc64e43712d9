"""L9 front end: read memguard files and render values for ``report`` and ``diff``.

Every value, a run included, is rendered by :func:`memguard.report.render`:
``memguard report --format html`` is the page ``render(value, "html")`` gives.
"""

from __future__ import annotations

import os
from typing import Any

from ..exceptions import CommandError, SnapshotFormatError
from .options import EXIT_ERROR

__all__ = ["load_value", "render_value"]


def load_value(path: str) -> Any:
    """Read a memguard file, or fail with a one-line :class:`CommandError` (exit code 1).

    Example:
        >>> load_value("no/such/file.json")
        Traceback (most recent call last):
        ...
        memguard.exceptions.CommandError: cannot read 'no/such/file.json': no such file
    """
    from ..values.files import load

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
    if fmt in ("png", "svg"):
        return _chart(value, fmt, top)
    from ..report import render

    try:
        return render(value, fmt, top=top)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise CommandError(f"cannot show this file as {fmt}: {error}",
                           exit_code=EXIT_ERROR) from None


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
