"""Charts of hand-built values: what is drawn, in human units, through matplotlib's object API."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import _report_values as values
import pytest

from memguard.report import plot, write

pytest.importorskip("matplotlib")


def _drawn(figure: Any) -> Any:
    figure.savefig(io.BytesIO(), format="png")
    return figure


def _visible_ticks(axis: Any, lo: float, hi: float) -> list[str]:
    return [t.get_text() for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True)
            if lo <= v <= hi]


def test_timeline_chart() -> None:
    figure = _drawn(plot.plot_timeline(values.timeline()))
    traced_ax, rss_ax = figure.axes
    assert traced_ax.get_title() == ("Memory over time of load "
                                     "(traced Python heap and process RSS)")
    assert traced_ax.get_lines()[0].get_ydata().tolist() == [
        1_000, 500_000, 1_500_000, 2_000_000, 800_000, 900_000]
    assert _visible_ticks(traced_ax.yaxis, *traced_ax.get_ylim()) == [
        "0 B", "512.0 KiB", "1.0 MiB", "1.5 MiB", "2.0 MiB", "2.5 MiB"]
    assert _visible_ticks(rss_ax.yaxis, *rss_ax.get_ylim()) == [
        "50.0 MiB", "52.5 MiB", "55.0 MiB"]
    assert [t.get_text() for t in traced_ax.texts] == ["parsed", "indexed"]
    legend = [t.get_text() for t in traced_ax.get_legend().get_texts()]
    # Each peak says whether it is a level or a rise, in the text's words.
    assert legend == [
        "traced Python heap (sampled)",
        "traced peak 2.5 MiB absolute, +2.5 MiB above the start (exact)",
        "process RSS (sampled)",
        "RSS peak 54.0 MiB absolute, +4.0 MiB above the start (kernel high-water mark, exact)"]
    peak_line = traced_ax.get_lines()[1]
    assert list(peak_line.get_ydata()) == [2_600_000, 2_600_000]
    # Both dashed peak lines are visible: on twin axes they would both sit at
    # the top; here the traced peak is at 90% of the height, RSS at 70%.
    rss_line = rss_ax.get_lines()[1]
    traced_y = traced_ax.transData.transform((0, peak_line.get_ydata()[0]))[1]
    rss_y = rss_ax.transData.transform((0, rss_line.get_ydata()[0]))[1]
    height = traced_ax.bbox.height
    assert (traced_y - traced_ax.bbox.y0) / height == pytest.approx(0.9, abs=0.01)
    assert (rss_y - rss_ax.bbox.y0) / height == pytest.approx(0.7, abs=0.01)


def test_growth_chart_draws_series_and_fits() -> None:
    figure = _drawn(plot.plot_growth(values.leak_report()))
    bytes_ax, count_ax = figure.axes
    assert bytes_ax.get_title() == ("Growth per call of handle_request (traced Python memory "
                                    "(tracemalloc),\nlive objects (gc))")
    (points, fit) = bytes_ax.get_lines()
    assert points.get_xdata().tolist() == [0, 1, 2, 3, 4]
    assert fit.get_ydata().tolist() == [1024.0, 2048.0, 3072.0, 4096.0, 5120.0]
    assert fit.get_label() == "fit: +1.0 KiB per call"
    assert count_ax.get_lines()[1].get_label() == "fit: +2.00 objects per call"
    assert _visible_ticks(bytes_ax.yaxis, *bytes_ax.get_ylim()) == [
        "+1.0 KiB", "+2.0 KiB", "+3.0 KiB", "+4.0 KiB", "+5.0 KiB"]


def test_growth_on_a_given_axes_uses_a_twin_axis() -> None:
    figure_module = pytest.importorskip("matplotlib.figure")
    figure = figure_module.Figure()
    ax = figure.add_subplot()
    assert plot.plot_growth(values.leak_report(), ax=ax) is figure
    assert len(figure.axes) == 2


def test_top_bars_for_a_diff() -> None:
    figure = _drawn(plot.plot_top(values.diff()))
    sites_ax, types_ax = figure.axes
    assert sites_ax.get_title() == "Biggest changes by allocation site (traced memory)"
    assert [p.get_width() for p in sites_ax.patches] == [1_048_576, 8_192, 4_096, 2_048, -512]
    assert [t.get_text() for t in sites_ax.get_yticklabels()] == [
        "/srv/app/cache.py:12", "/srv/app/new.py:30", ".../lib/python3.11/json/decoder.py:353",
        "/srv/app/models.py:9", "/srv/app/old.py:3"]
    assert [t.get_text() for t in sites_ax.texts][:2] == ["+1.0 MiB", "+8.0 KiB"]
    assert [p.get_width() for p in types_ax.patches] == [256, 250, 12]


@pytest.mark.parametrize("name", ["after", "limit_report", "leak_report"])
def test_top_bars_for_other_values(name: str) -> None:
    figure = _drawn(plot.plot_top(getattr(values, name)()))
    assert figure.axes[0].patches


def test_wrong_values_are_refused() -> None:
    with pytest.raises(TypeError, match="plot_timeline needs a Timeline, not Snapshot"):
        plot.plot_timeline(values.after())
    with pytest.raises(TypeError, match="plot_growth needs a LeakReport"):
        plot.plot_growth(values.timeline())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown chart 'pie'"):
        plot.chart(values.after(), "pie")


def test_svg_is_stable_and_png_is_png(tmp_path: Path) -> None:
    assert plot.to_svg(plot.plot_top(values.diff())) == plot.to_svg(plot.plot_top(values.diff()))
    png = write(values.timeline(), tmp_path / "t.png")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = write(values.leak_report(), tmp_path / "g.svg")
    assert "<svg" in svg.read_text()
    with pytest.raises(ValueError, match="cannot tell the format of"):
        write(values.timeline(), tmp_path / "t.pdf")


def test_no_pyplot_and_no_backend_switch() -> None:
    code = textwrap.dedent("""
        import sys, matplotlib
        # rcParams["backend"] would itself import pyplot to resolve "auto".
        backend = dict.__getitem__(matplotlib.rcParams, "backend")
        sys.path.insert(0, "tests/unit")
        import _report_values as values
        from memguard.report import plot, render
        for fig in (plot.plot_timeline(values.timeline()), plot.plot_top(values.diff()),
                    plot.plot_growth(values.leak_report())):
            plot.to_png(fig); plot.to_svg(fig)
        render(values.diff(), "html")
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        assert dict.__getitem__(matplotlib.rcParams, "backend") == backend, "switched"
        print("ok")
    """)
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY")}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert done.stdout.strip() == "ok", done.stderr
