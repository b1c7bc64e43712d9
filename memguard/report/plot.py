"""L8 presentation: matplotlib charts of memguard values, through the object API.

Each function draws on the ``Axes`` it is given, or on a new
:class:`matplotlib.figure.Figure`, and returns the figure. Nothing here uses
pyplot's global state, switches backends or needs a display, so charts work
in tests, on CI machines and in notebooks alike. matplotlib is imported on
first use through :func:`memguard._optional.require` (the ``plot`` extra).

Sizes on axes are printed by :func:`memguard.units.format_size`; titles say
what was measured.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._optional import require
from ..units import format_size
from ..values.diff import SnapshotDiff
from ..values.leak import LeakReport
from ..values.limit import LimitReport
from ..values.snapshot import Snapshot
from ..values.timeline import Timeline
from ._dispatch import unwrap
from ._model import call_path, rss_peak_text, traced_peak_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["chart", "metadata", "plot", "plot_growth", "plot_timeline", "plot_top", "to_png",
           "to_svg"]

_TRACED = "#2b6cb0"
_RSS = "#dd6b20"
_PEAK = "#c53030"
_GROW = "#c53030"
_SHRINK = "#2f855a"
_MARK = "#4a5568"


def _figure(ax: Axes | None, *, size: tuple[float, float] = (8.0, 4.2)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    figure_module = require("matplotlib.figure", "plot")
    figure = figure_module.Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def _size_axis(axis: Any, values: Sequence[float], *, signed: bool = False) -> None:
    """Ticks at round multiples of a binary unit, labelled by ``format_size``."""
    ticker = require("matplotlib.ticker", "plot")
    biggest = max((abs(v) for v in values), default=0.0)
    unit = 1
    for step in (1024, 1024**2, 1024**3, 1024**4):
        if biggest >= step:
            unit = step

    class _Binary(ticker.MaxNLocator):  # type: ignore[misc, name-defined]
        def tick_values(self, vmin: float, vmax: float) -> Any:
            if unit == 1:
                # Bytes come whole: a flat series (no leak) gets ticks at whole
                # bytes around it, never "+0 B, +0 B, 0 B, -0 B".
                vmin, vmax = min(vmin, -1.0), max(vmax, 1.0)
            return super().tick_values(vmin / unit, vmax / unit) * unit

    axis.set_major_locator(_Binary(nbins=6, steps=[1, 2.5, 5, 10], integer=unit == 1))
    axis.set_major_formatter(ticker.FuncFormatter(_tick_label(signed)))


def _tick_label(signed: bool) -> Any:
    def label(value: float, _position: int) -> str:
        whole = round(value)
        if abs(value - whole) < 1e-6 * max(1.0, abs(value)):
            value = whole  # -0.0 and float noise read as the round figure they are
        return format_size(value, signed=signed and value != 0)

    return label


def _legend_below(ax: Axes, handles: list[Any], labels: list[str]) -> None:
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=1,
              fontsize="small", frameon=False)


def _peak_at(ax: Axes, heights: Sequence[float], fraction: float) -> None:
    """Scale *ax* so the highest of *heights* is *fraction* of the way up."""
    low, high = min(heights), max(heights)
    span = (high - low) or max(abs(high), 1.0)
    bottom = low - 0.05 * span
    ax.set_ylim(bottom, bottom + (high - bottom) / fraction)


def plot_timeline(timeline: Any, ax: Axes | None = None) -> Figure:
    """Memory over time: the traced heap, the RSS, the marks and the exact peak.

    Args:
        timeline: A :class:`~memguard.values.timeline.Timeline`, or the
            recording :func:`memguard.record` yields.
        ax: Draw here; a new figure is made when omitted.

    Example:
        >>> from memguard.values.timeline import Sample, Timeline
        >>> tl = Timeline(interval_seconds=0.01, duration_seconds=0.02, traced_start_bytes=0,
        ...               traced_peak_bytes=3000,
        ...               samples=(Sample(0.0, 0, None), Sample(0.02, 2048, None)))
        >>> plot_timeline(tl).axes[0].get_title()
        'Memory over time (traced Python heap)'
    """
    timeline = unwrap(timeline)
    if not isinstance(timeline, Timeline):
        raise TypeError(f"plot_timeline needs a Timeline, not {type(timeline).__name__}")
    figure, ax = _figure(ax)
    times = [s.time_seconds for s in timeline.samples]
    traced = [(s.time_seconds, s.traced_bytes) for s in timeline.samples
              if s.traced_bytes is not None]
    measured = []
    heights: list[float] = []
    if traced:
        ax.plot([t for t, _ in traced], [b for _, b in traced], color=_TRACED, linewidth=1.6,
                label="traced Python heap (sampled)")
        heights = [float(b) for _, b in traced]
        measured.append("traced Python heap")
        if timeline.traced_peak_bytes is not None:
            peak = timeline.traced_peak_bytes
            heights.append(float(peak))
            ax.axhline(peak, color=_PEAK, linestyle="--", linewidth=1.1,
                       label=traced_peak_text(timeline))
        _size_axis(ax.yaxis, heights)
        # The traced peak at 90% of its axis, the RSS peak below at 70% of
        # its own: on twin axes each peak would otherwise sit at the top,
        # one dashed line hiding the other.
        _peak_at(ax, heights, 0.9)
        ax.set_ylabel("traced Python heap (absolute)")
    rss = [(s.time_seconds, s.rss_bytes) for s in timeline.samples if s.rss_bytes is not None]
    if rss:
        rss_ax = ax.twinx() if traced else ax
        rss_ax.plot([t for t, _ in rss], [b for _, b in rss], color=_RSS, linewidth=1.2,
                    linestyle="-" if not traced else ":", label="process RSS (sampled)")
        rss_heights = [float(b) for _, b in rss]
        if timeline.rss_peak_bytes is not None and timeline.rss_peak_method == "kernel-hwm":
            rss_ax.axhline(timeline.rss_peak_bytes, color=_RSS, linestyle=(0, (6, 3)),
                           linewidth=1.1, label=rss_peak_text(timeline))
            rss_heights.append(float(timeline.rss_peak_bytes))
        _size_axis(rss_ax.yaxis, rss_heights)
        if rss_ax is not ax:
            _peak_at(rss_ax, rss_heights, 0.7)
        rss_ax.set_ylabel("process RSS (absolute)")
        measured.append("process RSS")
        if rss_ax is not ax:
            lines, labels = ax.get_legend_handles_labels()
            more, more_labels = rss_ax.get_legend_handles_labels()
            _legend_below(ax, lines + more, labels + more_labels)
    if traced and not rss:
        _legend_below(ax, *ax.get_legend_handles_labels())
    for mark in timeline.marks:
        ax.axvline(mark.time_seconds, color=_MARK, linewidth=0.8, linestyle="-.")
        ax.annotate(mark.label, xy=(mark.time_seconds, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(2, -2), textcoords="offset points", rotation=90, va="top",
                    fontsize="small", color=_MARK)
    ax.set_xlabel("seconds since the start")
    if times:
        ax.set_xlim(min(times), max(*times, min(times) + 1e-6))
    name = f" of {_clipped(timeline.label)}" if timeline.label else ""
    what = " and ".join(measured) or "nothing measured"
    _fit_title(ax, f"Memory over time{name} ({what})")
    return figure


def _unit_of(report: LeakReport, name: str) -> str:
    for signal in report.signals:
        if signal.name == name:
            return signal.unit
    return "bytes" if name in ("python", "malloc", "rss") else name


#: Each series of a leak check, named after what it measured.
SERIES_NAMES = {"python": "traced Python memory (tracemalloc)",
                "blocks": "small-object allocator blocks",
                "objects": "live objects (gc)",
                "malloc": "bytes in use by malloc (mallinfo2)",
                "rss": "resident memory (RSS)",
                "fds": "open descriptors", "threads": "threads"}


def _fit_title(ax: Axes, title: str) -> None:
    """*title*, wrapped so it fits the width of its axes (about 70 characters a line)."""
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(title, 70)) or title)


def _clipped(label: str, width: int = 60) -> str:
    """A label (a path, a test id) cut from the left to *width* characters."""
    return label if len(label) <= width else "..." + label[-(width - 3):]


def _flat(values: Sequence[float], fit: tuple[float, float] | None) -> bool:
    return all(v == 0 for v in values) and (fit is None or fit[0] == 0)


def _growth_axes(ax: Axes, count_ax: Axes | None, *, separate: bool, any_shown: bool) -> None:
    ticker = require("matplotlib.ticker", "plot")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("measured call (0 = first)")
    if count_ax is None:
        if any_shown:
            ax.legend(loc="upper left", fontsize="small")
    elif separate:
        count_ax.set_ylabel("growth since the start (count)")
        ax.set_xlabel("")
        ax.legend(loc="upper left", fontsize="small")
        count_ax.legend(loc="upper left", fontsize="small")
        count_ax.set_xlabel("measured call (0 = first)")
    else:
        count_ax.set_ylabel("count")
        lines, labels = ax.get_legend_handles_labels()
        more, more_labels = count_ax.get_legend_handles_labels()
        _legend_below(ax, lines + more, labels + more_labels)


def plot_growth(report: LeakReport, ax: Axes | None = None) -> Figure:
    """Growth per call for a leak report: each series and its fitted line.

    Byte series (traced Python heap, malloc, RSS) share the left axis; object,
    descriptor and thread counts go on a panel of their own. A series that
    stayed at zero is left out (the text report lists it). The fitted line is
    ``intercept + slope * i`` over the call index ``i`` (0 for the first
    measured call), with the slope per call in the legend.

    Example:
        >>> from memguard.values.leak import LeakReport
        >>> rep = LeakReport(label="f", leaked=True, iterations=3, warmup=0,
        ...                  series={"python": (64.0, 128.0, 192.0)},
        ...                  fits={"python": (64.0, 64.0)})
        >>> plot_growth(rep).axes[0].get_title()
        'Growth per call of f (traced Python memory (tracemalloc))'
    """
    if not isinstance(report, LeakReport):
        raise TypeError(f"plot_growth needs a LeakReport, not {type(report).__name__}")
    series = {name: values for name, values in report.series.items()
              if not _flat(values, report.fits.get(name))}
    mixed = (any(_unit_of(report, n) == "bytes" for n in series)
             and any(_unit_of(report, n) != "bytes" for n in series))
    separate = ax is None and mixed
    figure: Figure
    if separate:
        figure_module = require("matplotlib.figure", "plot")
        figure = figure_module.Figure(figsize=(8.0, 6.4), layout="constrained")
        ax, count_ax = figure.subplots(2, 1, sharex=True)
    else:
        figure, ax = _figure(ax)
        count_ax = ax.twinx() if mixed else None
    names = SERIES_NAMES
    byte_values: list[float] = []
    shown = []
    for i, (name, values) in enumerate(series.items()):
        unit = _unit_of(report, name)
        target = count_ax if unit != "bytes" and count_ax is not None else ax
        color = f"C{i}"
        calls = list(range(len(values)))
        target.plot(calls, values, "o", color=color, markersize=3.5,
                    label=f"{names.get(name, name)} (measured)")
        fit = report.fits.get(name)
        if fit is not None:
            slope, intercept = fit
            per_call = (format_size(round(slope), signed=True) if unit == "bytes"
                        else f"{slope:+.2f} {unit}")
            target.plot(calls, [intercept + slope * c for c in calls], "-", color=color,
                        linewidth=1.3, label=f"fit: {per_call} per call")
        if unit == "bytes":
            byte_values.extend(values)
        shown.append(names.get(name, name))
    if byte_values:
        _size_axis(ax.yaxis, byte_values, signed=True)
        ax.set_ylabel("growth since the start")
    _growth_axes(ax, count_ax, separate=separate, any_shown=bool(shown))
    _fit_title(ax, f"Growth per call of {_clipped(report.label)} "
                   f"({', '.join(shown) or 'no growing series'})")
    return figure


def _short(where: str, width: int = 38) -> str:
    if len(where) <= width:
        return where
    if where.startswith("In ["):  # a notebook cell: its number and line come first
        return where[:width - 3] + "..."
    return "..." + where[-(width - 3):]


def _bars(ax: Axes, labels: list[str], values: list[float], *, sizes: bool, title: str,
          signed: bool) -> None:
    positions = list(range(len(labels)))[::-1]
    colors = [_GROW if v >= 0 else _SHRINK for v in values] if signed else [_TRACED] * len(values)
    ax.barh(positions, values, color=colors)
    ax.set_yticks(positions, [_short(label) for label in labels], fontsize="small")
    if sizes:
        _size_axis(ax.xaxis, values, signed=signed)
    for pos, val in zip(positions, values, strict=True):
        text = format_size(val, signed=signed) if sizes else (f"{val:+,.4g}" if signed
                                                               else f"{val:,.0f}")
        ax.annotate(text, xy=(val, pos), xytext=(3 if val >= 0 else -3, 0),
                    textcoords="offset points", va="center",
                    ha="left" if val >= 0 else "right", fontsize="x-small")
    ax.set_title(title, wrap=True)
    ax.margins(x=0.18)


def _top_data(value: Any, top: int) -> tuple[list[tuple[Any, ...]], str]:
    """``[(kind, labels, values, sizes, title, signed), ...]`` for the value's bar charts."""
    panels: list[tuple[Any, ...]] = []
    if isinstance(value, Snapshot):
        sites = value.top_sites(top)
        if sites:
            panels.append(([s.where for s in sites],
                           [float(s.size_bytes) for s in sites], True,
                           "Top allocation sites (live traced memory)", False))
        if value.types:
            types = value.types[:top]
            panels.append(([n for n, _ in types], [float(c) for _, c in types], False,
                           "Most numerous live objects by type", False))
        return panels, "snapshot"
    if isinstance(value, SnapshotDiff):
        if value.sites:
            sites_d = value.sites[:top]
            panels.append(([call_path(s) for s in sites_d], [float(s.size_diff_bytes)
                                                       for s in sites_d], True,
                           "Biggest changes by allocation site (traced memory)", True))
        if value.types:
            types_d = value.types[:top]
            panels.append(([t.name for t in types_d], [float(t.count_diff) for t in types_d],
                           False, "Biggest changes in live objects by type", True))
        return panels, "diff"
    if isinstance(value, LimitReport):
        if value.sites:
            panels.append(([s.where for s in value.sites[:top]],
                           [float(s.size_bytes) for s in value.sites[:top]], True,
                           f"Allocation sites at the peak of {value.label}", False))
        return panels, "limit"
    if isinstance(value, LeakReport):
        if value.sites:
            panels.append(([s.where for s in value.sites[:top]],
                           [float(s.size_bytes) for s in value.sites[:top]], True,
                           "Growing allocation sites (bytes per call)", True))
        if value.types:
            panels.append(([n for n, _ in value.types[:top]],
                           [float(c) for _, c in value.types[:top]], False,
                           "Growing types (objects per call)", True))
        return panels, "leak"
    raise TypeError(f"plot_top needs a Snapshot, SnapshotDiff, LimitReport or LeakReport, "
                    f"not {type(value).__name__}")


def plot_top(value: Any, ax: Axes | None = None, *, top: int = 10) -> Figure:
    """The top sites and types of a value as horizontal bars.

    With *ax*, only the first panel (sites, or types when there are no
    sites) is drawn there; otherwise one figure holds a panel for each.

    Example:
        >>> from memguard.values.site import AllocationSite
        >>> from memguard.values.snapshot import Snapshot
        >>> snap = Snapshot(timestamp=0.0, sites=(AllocationSite(
        ...     filename="app.py", lineno=3, size_bytes=4096, count=2),))
        >>> plot_top(snap).axes[0].get_title()
        'Top allocation sites (live traced memory)'
    """
    value = unwrap(value)
    panels, _kind = _top_data(value, top)
    if ax is not None or len(panels) < 2:
        rows = len(panels[0][0]) if panels else 3
        figure, ax = _figure(ax, size=(8.0, 1.2 + 0.34 * max(3, rows)))
        if panels:
            labels, values, sizes, title, signed = panels[0]
            _bars(ax, labels, values, sizes=sizes, title=title, signed=signed)
        else:
            ax.set_title("No sites or types to show")
            ax.set_axis_off()
        return figure
    figure_module = require("matplotlib.figure", "plot")
    height = sum(1.2 + 0.34 * max(3, len(panel[0])) for panel in panels)
    figure = figure_module.Figure(figsize=(8.0, height), layout="constrained")
    for index, (labels, values, sizes, title, signed) in enumerate(panels):
        _bars(figure.add_subplot(len(panels), 1, index + 1), labels, values, sizes=sizes,
              title=title, signed=signed)
    return figure  # type: ignore[no-any-return]


def chart(value: Any, name: str, *, top: int = 10) -> Figure:
    """The chart called *name* (``"timeline"``, ``"growth"`` or ``"top"``) of *value*.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> chart(Timeline(interval_seconds=0.01, duration_seconds=0.0), "timeline").axes[0] \\
        ...     .get_title()
        'Memory over time (nothing measured)'
    """
    value = unwrap(value)
    if name == "timeline":
        inner = getattr(value, "timeline", None)
        return plot_timeline(inner if isinstance(inner, Timeline) else value)
    if name == "growth":
        return plot_growth(value)
    if name == "top":
        return plot_top(value, top=top)
    raise ValueError(f"unknown chart {name!r}; expected 'timeline', 'growth' or 'top'")


def plot(value: Any, *, top: int = 10) -> Figure:
    """The main chart of *value*: a timeline, a leak's growth, or the top sites and types.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> type(plot(Timeline(interval_seconds=0.01, duration_seconds=0.0))).__name__
        'Figure'
    """
    value = unwrap(value)
    if isinstance(value, Timeline):
        return plot_timeline(value)
    if isinstance(getattr(value, "timeline", None), Timeline):
        return plot_timeline(value.timeline)
    if isinstance(value, LeakReport) and value.series:
        return plot_growth(value)
    return plot_top(value, top=top)


def metadata(fmt: str) -> dict[str, Any]:
    """Metadata for ``savefig`` that keeps the output the same from run to run.

    Example:
        >>> metadata("svg")
        {'Date': None}
    """
    return {"Date": None} if fmt == "svg" else {}


def to_svg(figure: Figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, stable ids).

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> to_svg(plot(Timeline(interval_seconds=0.01, duration_seconds=0.0)))[:4]
        '<svg'
    """
    matplotlib = require("matplotlib", "plot")
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "memguard"}):
        figure.savefig(buffer, format="svg", metadata=metadata("svg"))
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def to_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes.

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> to_png(plot(Timeline(interval_seconds=0.01, duration_seconds=0.0)))[:4]
        b'\\x89PNG'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
