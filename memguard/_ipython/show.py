"""L9 front end: how memguard's values look in IPython.

The values render themselves as HTML (``_repr_html_``) and Markdown through
:mod:`memguard.report`, without importing IPython. What IPython shows as
plain text is the value's ``repr``, one short line; while the extension is
loaded, the shell's plain-text formatter prints the text report instead
(what ``print(value)`` shows). The HTML is the notebook fragment of
:mod:`memguard.report.notebook` (tables, PNG charts, inline styles scoped to
the output, nothing a sanitizer removes), the same with the extension loaded
or not. Every value kind memguard declares is formatted, and the previous
formatters come back when the extension is unloaded.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..values.files import kinds

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["html", "plain_text", "register_formatters", "show_png", "value_types"]

def value_types() -> tuple[type, ...]:
    """Every memguard value class: the kinds the values declare (one list, in
    :mod:`memguard.values._value`).

    Example:
        >>> sorted(cls.__name__ for cls in value_types())[:3]
        ['LeakReport', 'LimitReport', 'LineProfile']
    """
    return tuple(kinds().values())


def plain_text(value: Any) -> str:
    """The text rendering of a memguard value, as ``print(value)`` and the command line show it.

    Example:
        >>> from memguard.values.limit import LimitReport
        >>> report = LimitReport(label="demo", source="python", method="tracemalloc",
        ...                      limit_bytes=2048, peak_above_start_bytes=1024)
        >>> "headroom 1.0 KiB" in plain_text(report)
        True
    """
    return str(value)


def html(value: Any) -> str:
    """The value's HTML for a notebook: a fragment that stays inside its own output.

    It is the value's ``_repr_html_``, which :mod:`memguard.report` renders
    with :func:`memguard.report.notebook.render_notebook`: tables, charts as
    size-bounded PNGs and inline styles only, no iframe, script or page-wide
    CSS, so a shared (untrusted) notebook still shows it and it never restyles
    the notebook around it.

    Example:
        >>> from memguard.values.limit import LimitReport
        >>> report = LimitReport(label="demo", source="python", method="tracemalloc",
        ...                      limit_bytes=2048, peak_above_start_bytes=1024)
        >>> html(report).startswith('<div class="memguard-output memguard-limit')
        True
    """
    return str(value._repr_html_())


def _pretty(value: Any, printer: Any, cycle: bool) -> None:
    del cycle  # the values are flat data; they cannot contain themselves
    printer.text(plain_text(value))


def register_formatters(shell: InteractiveShell) -> Callable[[], None]:
    """Print memguard's values as their text report in *shell*.

    Returns:
        A function that puts the previous formatters back.

    Example:
        ``restore = register_formatters(shell)`` when the extension loads,
        ``restore()`` when it unloads.
    """
    assert shell.display_formatter is not None
    formatters = shell.display_formatter.formatters
    previous = {
        (mime, cls): formatters[mime].for_type(cls, function)
        for mime, function in (("text/plain", _pretty), ("text/html", html))
        for cls in value_types()
    }

    def restore() -> None:
        for (mime, cls), old in previous.items():
            formatters[mime].pop(cls, None)
            if old is not None:
                formatters[mime].for_type(cls, old)

    return restore


def show_png(data: bytes, description: str) -> None:
    """Display a PNG image in place; a terminal shows *description* instead.

    Example:
        ``show_png(png_bytes, "back-references of session")`` inside a magic.
    """
    from IPython.display import display

    bundle = {"image/png": base64.b64encode(data).decode("ascii"), "text/plain": description}
    display(bundle, raw=True)  # type: ignore[no-untyped-call]
