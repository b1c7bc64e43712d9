"""The HTML report in a real headless browser (Debian's chromium).

Each page is loaded from disk with the network switched off; the DOM the
browser builds must hold the tables and the charts, the browser must log no
failed load, and a screenshot of each page is kept in ``test-artifacts/``.
Every kind of page (a diff, a timeline, a ``--rss`` run, a limit, a leak, a
line profile, a watch, a snapshot) is laid out at 1280 px and at 390 px (a
phone) and must fit: nothing wider than the window. Each chart's texts
(titles, legends) must lie inside its image. ``.ci/run`` installs chromium
when it is missing; where it cannot be installed these tests are skipped,
saying so.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import memguard
from memguard import _tracing
from memguard.report import write
from tests import helpers

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = helpers.needs_browser
pytest.importorskip("matplotlib")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return helpers.chromium(tmp_path, "--enable-logging=stderr", "--v=0", *args, timeout=90)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("html")
    window = _tracing.begin()
    try:
        before = memguard.snapshot("before")
        with memguard.record(interval=0.005, label="load") as timeline:
            data = [bytearray(10_000) for _ in range(300)]
            timeline.mark("allocated")
            time.sleep(0.03)
        after = memguard.snapshot("after")
        now = memguard.snapshot("now")
    finally:
        _tracing.end(window)
    del data
    _VALUES.update({"diff": memguard.diff(before, after), "timeline": timeline.timeline,
                    "snapshot": now, **_more_values(folder)})
    return {name: write(value, folder / f"{name}.html") for name, value in _VALUES.items()}


_VALUES: dict[str, Any] = {}
"""The value behind each page, by kind."""


def _more_values(folder: Path) -> dict[str, Any]:
    """A value of every other kind, built by hand with long names and big counts."""
    from memguard.program import Program, run_program
    from memguard.values.leak import LeakReport, SignalVerdict
    from memguard.values.lineprofile import LineProfile, LineRow
    from memguard.values.site import AllocationSite
    from memguard.values.watch import Survivor, WatchReport

    long = "/very/long/path/to/a/package/with/a/deep/layout/and/a/long/module_name.py"
    leak = LeakReport(
        label="tests/test_service.py::TestHandlers::test_request_handler_keeps_nothing"
              "[parametrized-case-with-a-long-id]",
        leaked=True, iterations=40, warmup=5,
        signals=(SignalVerdict(name="python", leaked=True, per_call=64.4, total=2576.0,
                               unit="bytes", detail="slope 64.4 ± 0.2 B/call over 40 calls, "
                               "38 of 40 steps up, persistent after the allowance"),
                 SignalVerdict(name="objects", leaked=False, per_call=0.0, total=0.0,
                               unit="objects")),
        series={"python": tuple(64.4 * i for i in range(40)), "objects": (0.0,) * 40},
        fits={"python": (64.4, 0.0), "objects": (0.0, 0.0)},
        sites=(AllocationSite(filename=long, lineno=12, size_bytes=64, count=1),),
        types=(("builtins.dict", 1.0),))
    profile = LineProfile(function="load", filename=long, first_lineno=1, calls=1,
                          rows=(LineRow(lineno=1, source="def load():"),
                                LineRow(lineno=2, source="    return [bytes(100) for _ in "
                                        "range(10_000)]  # a long line of source " * 2,
                                        allocated_bytes=1_200_000, retained_bytes=1_100_000,
                                        peak_share_bytes=1_200_000, hits=1)),
                          peak_bytes=1_200_000, retained_total_bytes=1_100_000)
    watch = WatchReport(label="test_close", watched=2, survivors=(Survivor(
        name="session", type_name="app.Session", object_repr="<app.Session object at 0x7f>",
        chain=("app.registry.HANDLERS", "['click']", "[3]", "Session")),))
    with memguard.limit(mb=100, label="under") as guard:
        block = bytearray(300_000)
    del block
    script = folder / "program.py"
    script.write_text("data = [bytearray(1000) for _ in range(3000)]\n", encoding="utf-8")
    run = run_program(Program(str(script)), interval=0.005, rss=True)
    return {"run": run, "limit": guard.report, "leak": leak, "lineprofile": profile,
            "watch": watch}


# The page may run no script; a copy of it for measuring carries one that
# writes the layout's widths into the title of the page framing it, which
# --dump-dom then shows. Headless chromium's window is at least 500 px wide,
# so a phone's 390 px is an iframe of that width.
_MEASURE = """<script>
addEventListener("load", () => {
  // What sits in a scrolling box (a wide table, a pre) scrolls there.
  const wide = [...document.querySelectorAll("main *")]
    .filter(e => !e.closest("div.scroll, pre"))
    .filter(e => e.getBoundingClientRect().right > innerWidth + 1)
    .map(e => e.tagName + "." + e.getAttribute("class"));
  parent.document.title = JSON.stringify({scroll: document.documentElement.scrollWidth,
                                          inner: innerWidth, wide: wide.slice(0, 5)});
});
</script>"""


def _framed(page: Path, width: int, tmp_path: Path, *, measure: bool) -> Path:
    """*page* in an iframe *width* px wide (the measuring script added when asked)."""
    text = page.read_text(encoding="utf-8")
    if measure:
        text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
        text = text.replace("</body>", _MEASURE + "</body>")
    frame = tmp_path / f"framed-{width}-{page.name}"
    frame.write_text(
        '<!DOCTYPE html><html><head><title>-</title><style>body{margin:0}</style></head><body>'
        f'<iframe style="width:{width}px;height:1400px;border:0;display:block" '
        f'srcdoc="{html.escape(text, quote=True)}"></iframe></body></html>', encoding="utf-8")
    return frame


def _layout(page: Path, width: int, tmp_path: Path) -> dict[str, Any]:
    probe = _framed(page, width, tmp_path, measure=True)
    done = _chromium(tmp_path, f"--window-size={max(width, 500)},900",
                     "--virtual-time-budget=3000", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", done.stdout, re.S)
    assert title is not None
    result: dict[str, Any] = json.loads(html.unescape(title[1]))
    return result


KINDS = ["diff", "timeline", "run", "limit", "leak", "lineprofile", "watch", "snapshot"]
CHARTED = ["diff", "timeline", "run", "leak", "snapshot"]


@pytest.mark.parametrize("name", CHARTED)
def test_page_loads_with_tables_and_charts(name: str, pages: dict[str, Path],
                                           tmp_path: Path) -> None:
    done = _chromium(tmp_path, "--dump-dom", pages[name].as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert '<main class="memguard-report' in dom
    assert dom.count('<table class="data">') >= 1
    assert dom.count('<figure class="chart"') >= 1
    assert "<svg" in dom
    assert "Exact figures:" in dom
    # The page's Content-Security-Policy forbids every load; a violation or
    # a failed load is logged to the console.
    failures = [line for line in done.stderr.splitlines()
                if "CONSOLE" in line or "Failed to load" in line or "net::ERR" in line
                or "Content Security Policy" in line]
    assert failures == []


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("name", KINDS)
def test_page_fits_the_window(name: str, width: int, pages: dict[str, Path],
                              tmp_path: Path) -> None:
    layout = _layout(pages[name], width, tmp_path)
    assert layout["inner"] == width
    assert layout["wide"] == []
    assert layout["scroll"] <= width


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("name", CHARTED)
def test_screenshot_shows_a_drawn_page(name: str, width: int, pages: dict[str, Path],
                                       tmp_path: Path) -> None:
    image_module = pytest.importorskip("matplotlib.image")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{name}-{width}.png"
    shot.unlink(missing_ok=True)
    framed = _framed(pages[name], width, tmp_path, measure=False)
    done = _chromium(tmp_path, f"--window-size={max(width, 500)},1400",
                     f"--screenshot={shot}", framed.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    pixels = image_module.imread(shot)[:, :width]
    assert pixels.shape[:2] == (1400, width)
    # Not a blank page: dark text, and the charts' coloured lines and bars.
    rgb = pixels[..., :3]
    assert (rgb.max(axis=2) < 0.3).sum() > 2000
    assert ((rgb.max(axis=2) - rgb.min(axis=2)) > 0.3).sum() > 500 * width / 1100


@pytest.mark.parametrize("name", CHARTED)
def test_every_chart_text_lies_inside_its_image(name: str, pages: dict[str, Path]) -> None:
    """A title or legend that runs off the image is cut in the page: none does."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from memguard.report import plot
    from memguard.report._model import build

    value = _VALUES[name]
    for chart in build(value).charts:
        figure = plot.chart(value, chart)
        renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call]
        figure.draw(renderer)
        box = figure.bbox
        for ax in figure.axes:
            legend = ax.get_legend()
            texts = [ax.title, *(legend.get_texts() if legend is not None else [])]
            for text in texts:
                if not text.get_text():
                    continue
                extent = text.get_window_extent(renderer)
                where = f"{name} {chart}: {text.get_text()!r} runs off the image"
                assert extent.x0 >= box.x0 - 1, where
                assert extent.x1 <= box.x1 + 1, where
                assert extent.y0 >= box.y0 - 1, where
                assert extent.y1 <= box.y1 + 1, where


def test_empty_leak_series_get_no_panel_and_the_sparkline_is_a_line(
        pages: dict[str, Path], tmp_path: Path) -> None:
    from memguard.report import plot

    leak = _VALUES["leak"]
    figure = plot.plot_growth(leak)
    assert len(figure.axes) == 1  # the flat "objects" series has no panel of its own
    from memguard.report import render

    # Without charts, the traced heap over time is an SVG line, not block characters.
    plain = tmp_path / "plain.html"
    plain.write_text(render(_VALUES["run"], "html", charts=False), encoding="utf-8")
    done = _chromium(tmp_path, "--dump-dom", plain.as_uri())
    assert '<svg class="sparkline"' in done.stdout
    assert "▁" not in done.stdout
    assert "█" not in done.stdout
