"""L6 front end: how memguard's values look in IPython.

The values render themselves as HTML (``_repr_html_``) and Markdown through
:mod:`memguard.report`, without importing IPython; their HTML is the notebook
fragment of :mod:`memguard.report.notebook` (tables, PNG charts, inline
styles scoped to the output, nothing a sanitizer removes). What IPython would
show as plain text is the dataclass ``repr``, a debugging form; while the
extension is loaded, the shell's plain-text formatter prints the report's
text rendering instead, and every value (the recording ``record()`` yields, a
watch or run report too) gets the same HTML fragment. The formatters are
registered by type name, so the value modules are not imported until a value
is shown, and the previous formatters come back when the extension is
unloaded.
"""

from __future__ import annotations

import base64
import importlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["VALUE_TYPES", "html", "plain_text", "register_formatters", "show_png"]

VALUE_TYPES: tuple[tuple[str, str], ...] = (
    ("memguard.values.snapshot", "Snapshot"),
    ("memguard.values.diff", "SnapshotDiff"),
    ("memguard.values.leak", "LeakReport"),
    ("memguard.values.limit", "LimitReport"),
    ("memguard.values.timeline", "Timeline"),
    ("memguard.values.lineprofile", "LineProfile"),
    ("memguard.values.watch", "WatchReport"),
    ("memguard.values.run", "RunReport"),
    ("memguard.guards.record", "Recording"),
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
    """The value's HTML for a notebook: a fragment that stays inside its own output.

    It is :func:`memguard.report.notebook.render_notebook`: tables, charts as
    size-bounded PNGs and inline styles only, no iframe, script or page-wide
    CSS, so a shared (untrusted) notebook still shows it and it never restyles
    the notebook around it.

    Example:
        >>> from memguard.values.limit import LimitReport
        >>> report = LimitReport(label="demo", source="python", method="tracemalloc",
        ...                      limit_bytes=2048, peak_bytes=1024)
        >>> html(report).startswith('<div class="memguard-output memguard-limit')
        True
    """
    notebook = importlib.import_module("memguard.report.notebook")
    return str(notebook.render_notebook(value))


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
