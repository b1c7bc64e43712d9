"""L8 presentation: Markdown (GitHub-flavoured tables), for notebooks and CI summaries."""

from __future__ import annotations

from typing import Any

from ._model import Document, Table, build
from .text import sparkline

__all__ = ["render_markdown"]


_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#"} | {"<": "&lt;", ">": "&gt;",
                                                                   "\n": " "})


def _cell(text: str) -> str:
    """*text* with Markdown's special characters escaped (``__init__`` stays literal)."""
    return text.translate(_SPECIAL)


def _table(table: Table) -> list[str]:
    rule = ["---:" if a == "r" else "---" for a in table.align]
    lines = ["| " + " | ".join(map(_cell, table.headers)) + " |", "| " + " | ".join(rule) + " |"]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows)
    return lines


def layout(document: Document) -> str:
    """Lay out a document as Markdown."""
    lines = [f"### {_cell(document.title)}", "", "| figure | value |", "| --- | --- |"]
    lines.extend(f"| {_cell(name)} | {_cell(value)} |" for name, value in document.facts)
    for section in document.sections:
        lines += ["", f"#### {_cell(section.title)}"]
        if section.note:
            lines += ["", _cell(section.note)]
        if section.table is not None:
            lines += [""] + (_table(section.table) if section.table.rows else ["(none)"])
        if section.series:
            lines += ["", "```text", sparkline(section.series, 60), "```"]
        if section.lines:
            lines += ["", "```text", *section.lines, "```"]
    return "\n".join(lines) + "\n"


def render_markdown(value: Any, *, top: int = 10) -> str:
    """Render a memguard value as Markdown.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> print(render_markdown(Timeline(interval_seconds=0.01, duration_seconds=0.0)), end="")
        ### memguard timeline
        <BLANKLINE>
        | figure | value |
        | --- | --- |
        | samples | 0 every 10 ms over 0.000 s |
        | traced Python heap | absent: not traced |
        | process RSS | absent: not measured |
        <BLANKLINE>
        #### Samples
        <BLANKLINE>
        no samples
    """
    return layout(build(value, top))
