"""L9 front end: how memguard's values look in IPython.

The values render themselves as HTML (``_repr_html_``, with inline charts)
and Markdown through :mod:`memguard.report`, without importing IPython. What
IPython would show as plain text is the dataclass ``repr``, a debugging form;
while the extension is loaded, the shell's plain-text formatter prints the
report's text rendering instead, and a value without its own ``_repr_html_``
(a leak or limit report) is shown as the HTML report, charts included. HTML
that is a whole page is shown in an iframe, so that its styles stay out of
the notebook's own page. The formatters are registered by type name, so the
value modules are not imported until a value is shown, and the previous
formatters come back when the extension is unloaded.
"""

from __future__ import annotations

import base64
import importlib
import io
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["VALUE_TYPES", "html", "isolated", "plain_text", "register_formatters", "show_png"]

VALUE_TYPES: tuple[tuple[str, str], ...] = (
    ("memguard.values.snapshot", "Snapshot"),
    ("memguard.values.diff", "SnapshotDiff"),
    ("memguard.values.leak", "LeakReport"),
    ("memguard.values.limit", "LimitReport"),
    ("memguard.values.timeline", "Timeline"),
    ("memguard.values.lineprofile", "LineProfile"),
)
"""The (module, class) of every value the extension formats as text."""


def plain_text(value: Any) -> str:
    """The text rendering of a memguard value, as the command line prints it.

    Example:
        >>> from memguard.values.limit import LimitReport
        >>> report = LimitReport(label="demo", source="python", method="tracemalloc",
        ...                      limit_bytes=2048, peak_bytes=1024)
        >>> "headroom 1.0 KiB" in plain_text(report)
        True
    """
    own = getattr(value, "render_text", None)
    if callable(own):  # a line profile prints its own table
        stream = io.StringIO()
        own(stream)
        return stream.getvalue().rstrip("\n")
    report = importlib.import_module("memguard.report")
    render = getattr(report, "render", None)
    if render is None:
        # memguard.report without its renderers (a partial install): the
        # values' own text, rather than a dataclass repr.
        message = getattr(value, "message", None)
        return str(message()) if callable(message) else str(value)
    return str(render(value, "text")).rstrip("\n")


def html(value: Any) -> str:
    """The value's HTML for a notebook: its own ``_repr_html_``, or else the HTML report.

    A whole HTML document (a report page, with its global styles) is put in an
    ``<iframe srcdoc>``: a notebook inserts output HTML into its own page, where
    a page's ``body`` and heading styles would restyle the notebook itself.

    Example:
        >>> from memguard.values.limit import LimitReport
        >>> report = LimitReport(label="demo", source="python", method="tracemalloc",
        ...                      limit_bytes=2048, peak_bytes=1024)
        >>> html(report).startswith('<iframe class="memguard-report"')
        True
    """
    own = getattr(type(value), "_repr_html_", None)
    if own is not None:
        document = str(own(value))
    else:
        render = importlib.import_module("memguard.report").render
        document = str(render(value, "html"))
    return isolated(document)


def isolated(document: str) -> str:
    """Wrap a whole HTML document in an iframe sized to its content; leave fragments alone.

    The frame may not run scripts (the reports have none); its height follows
    the document once loaded, where the notebook allows that, and is 480 px
    otherwise.

    Example:
        >>> isolated("<b>fragment</b>")
        '<b>fragment</b>'
        >>> isolated("<!DOCTYPE html><html><body>page</body></html>")[:31]
        '<iframe class="memguard-report"'
    """
    if not document.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        return document
    fit = "this.style.height=(this.contentDocument.documentElement.scrollHeight+8)+'px'"
    return (f'<iframe class="memguard-report" sandbox="allow-same-origin" '
            f'style="width:100%;height:480px;border:0" onload="{fit}" '
            f'srcdoc="{escape(document, quote=True)}"></iframe>')


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
        (mime, module, name): formatters[mime].for_type_by_name(module, name, function)
        for mime, function in (("text/plain", _pretty), ("text/html", html))
        for module, name in VALUE_TYPES
    }

    def restore() -> None:
        for (mime, module, name), old in previous.items():
            formatters[mime].pop(f"{module}.{name}", None)
            if old is not None:
                formatters[mime].for_type_by_name(module, name, old)

    return restore


def show_png(data: bytes, description: str) -> None:
    """Display a PNG image in place; a terminal shows *description* instead.

    Example:
        ``show_png(png_bytes, "back-references of session")`` inside a magic.
    """
    from IPython.display import display

    bundle = {"image/png": base64.b64encode(data).decode("ascii"), "text/plain": description}
    display(bundle, raw=True)  # type: ignore[no-untyped-call]
