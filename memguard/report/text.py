"""L8 presentation: plain text that fits the terminal (stdlib only).

Lines fit 80 columns, or the terminal's width when it is wider; the column
that would overflow (a file path, a type name) is clipped from the left, so
the file name and line number stay visible.
"""

from __future__ import annotations

from typing import Any

from ._model import TRIM_FLOOR, Document, Table, build

__all__ = ["clip_left", "render_text", "sparkline", "terminal_width"]

_BARS = "▁▂▃▄▅▆▇█"
_MIN_WIDTH = 80


def terminal_width() -> int:
    """80 columns, or the terminal's width when it is wider.

    Example:
        >>> terminal_width() >= 80
        True
    """
    import shutil  # with bz2 and lzma behind it: not at `import memguard`

    return max(_MIN_WIDTH, shutil.get_terminal_size((_MIN_WIDTH, 24)).columns)


def clip_left(text: str, width: int) -> str:
    """*text* cut to *width* characters, keeping its end (a path's file and line).

    A notebook cell's place (``In [7], line 3: source``) keeps its start
    instead: the cell and line are what the reader looks for.

    Example:
        >>> clip_left("/very/long/path/to/module.py:12", 20)
        '...h/to/module.py:12'
        >>> clip_left("In [7], line 3: store[i] = bytearray(512)", 24)
        'In [7], line 3: store...'
    """
    if len(text) <= width:
        return text
    if width <= 3:
        return text[-width:] if width > 0 else ""
    if text.startswith("In ["):
        return text[:width - 3] + "..."
    return "..." + text[-(width - 3):]


def clip_right(text: str, width: int) -> str:
    """*text* cut to *width* characters, keeping its start.

    Example:
        >>> clip_right("data = bytearray(512)", 12)
        'data = by...'
    """
    if len(text) <= width:
        return text
    return text[:max(0, width - 3)].rstrip() + "..." if width > 3 else text[:width]


def sparkline(values: tuple[float, ...] | list[float], width: int) -> str:
    """*values* drawn as one line of block characters, at most *width* long.

    Example:
        >>> sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8)
        '▁▂▃▄▅▆▇█'
    """
    if not values or width < 1:
        return ""
    if len(values) > width:  # the highest value of each bucket, so peaks stay visible
        step = len(values) / width
        values = [max(values[int(i * step):max(int((i + 1) * step), int(i * step) + 1)])
                  for i in range(width)]
    low, high = min(values), max(values)
    span = high - low
    if span == 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(7, int((v - low) / span * 8))] for v in values)


def _table(table: Table, width: int, indent: str = "  ") -> list[str]:
    columns = len(table.headers)
    widths = [max([len(table.headers[i])] + [len(row[i]) for row in table.rows])
              for i in range(columns)]
    total = len(indent) + sum(widths) + 2 * (columns - 1)
    if total > width and table.trim == columns - 1:
        # Too wide with the source lines: each goes on a line of its own,
        # under its row's place, rather than squeezing the place.
        under = [row[-1] for row in table.rows]
        narrow = Table(table.headers[:-1], [row[:-1] for row in table.rows],
                       table.align[:-1], table.flex)
        rows = _table(narrow, width, indent)
        start = len(indent) + sum(widths[:table.flex]) + 2 * table.flex + 2
        lines = rows[:1]
        for shown, text in zip(rows[1:], under, strict=True):
            lines.append(shown)
            if text:  # under the place, or further left when it would not fit there
                at = max(len(indent) + 4, min(start, width - len(text)))
                lines.append(" " * at + clip_right(text, max(TRIM_FLOOR, width - at)))
        return lines
    if total > width:
        widths[table.flex] = max(len(table.headers[table.flex]),
                                 widths[table.flex] - (total - width))
    lines = []
    for given in [table.headers, *table.rows]:
        row, more = given, []
        if table.wrap and table.flex == columns - 1:
            first, *more = _words(given[-1], widths[-1])
            row = [*given[:-1], first]
        cells = []
        for i, raw in enumerate(row):
            cell = clip_left(raw, widths[i])
            last = i == columns - 1
            if table.align[i] == "r":
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if last else cell.ljust(widths[i]))
        lines.append((indent + "  ".join(cells)).rstrip())
        lead = len(indent) + sum(widths[:-1]) + 2 * (columns - 1)
        lines.extend(" " * lead + rest for rest in more)
    return lines


def _words(text: str, width: int) -> list[str]:
    """*text* in lines of at most *width* characters, broken between words
    (a word longer than a line is cut)."""
    lines, line = [], ""
    for whole in text.split(" "):
        word = whole
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return lines


def _wrap(name: str, value: str, pad: int, width: int) -> list[str]:
    first = f"{name.ljust(pad)}  "
    room = max(20, width - len(first))
    words, lines, line = value.split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return [first + lines[0]] + [" " * len(first) + rest for rest in lines[1:]]


def layout(document: Document, width: int) -> str:
    """Lay out a document as text *width* columns wide."""
    lines = [clip_left(document.title, width)]
    pad = max((len(name) for name, _ in document.facts), default=0)
    for name, value in document.facts:
        lines.extend(_wrap(name, value, pad, width))
    for section in document.sections:
        lines.append("")
        lines.append(section.title)
        if section.note:
            lines.extend(_wrap("", section.note, 0, width))
        if section.table is not None:
            if section.table.rows:
                lines.extend(_table(section.table, width))
            else:
                lines.append("  (none)")
        if section.series:
            lines.append("  " + sparkline(section.series, width - 2))
        lines.extend(clip_left("  " + line, width) for line in section.lines)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_text(value: Any, *, width: int | None = None, top: int = 10) -> str:
    """Render a memguard value as plain text.

    Args:
        value: A snapshot, diff, timeline, limit or leak report.
        width: Columns; by default :func:`terminal_width`.
        top: Rows per table.

    Example:
        >>> from memguard.values.limit import LimitReport
        >>> print(render_text(LimitReport(label="t", source="python", method="tracemalloc",
        ...                               limit_bytes=2048, peak_above_start_bytes=1024)), end="")
        memguard limit "t"
        verdict   held, headroom 1.0 KiB
        measured  traced Python heap
        peak      1.0 KiB above the start
        limit     2.0 KiB
        levels    0 B at the start, 0 B at the end, absolute (+0 B kept)
        duration  0.000 s
        <BLANKLINE>
        Allocation sites at the peak
          the limit held, so no sites were captured
    """
    return layout(build(value, top), width or terminal_width())
