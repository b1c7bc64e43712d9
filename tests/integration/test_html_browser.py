"""The HTML report in a real headless browser (Debian's chromium).

Each page is loaded from disk with the network switched off; the DOM the
browser builds must hold the tables and the charts, the browser must log no
failed load, and a screenshot of each page is kept in ``test-artifacts/``.
``.ci/run`` installs chromium when it is missing; where it cannot be
installed these tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

import memguard
from memguard import _tracing
from memguard.report import write

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="chromium is not installed here (.ci/run installs it with apt-get; "
           "run `apt-get install chromium` to include this check)")
pytest.importorskip("matplotlib")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--hide-scrollbars",
               "--enable-logging=stderr", "--v=0",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


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
    finally:
        _tracing.end(window)
    del data
    return {"diff": write(memguard.diff(before, after), folder / "diff.html"),
            "timeline": write(timeline, folder / "timeline.html")}


@pytest.mark.parametrize("name", ["diff", "timeline"])
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


@pytest.mark.parametrize("name", ["diff", "timeline"])
def test_screenshot_shows_a_drawn_page(name: str, pages: dict[str, Path],
                                       tmp_path: Path) -> None:
    image_module = pytest.importorskip("matplotlib.image")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-{name}.png"
    shot.unlink(missing_ok=True)
    done = _chromium(tmp_path, "--window-size=1100,1400", f"--screenshot={shot}",
                     pages[name].as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    pixels = image_module.imread(shot)
    assert pixels.shape[:2] == (1400, 1100)
    # Not a blank page: dark text, and the charts' coloured lines and bars.
    rgb = pixels[..., :3]
    assert (rgb.max(axis=2) < 0.3).sum() > 2000
    assert ((rgb.max(axis=2) - rgb.min(axis=2)) > 0.3).sum() > 500
