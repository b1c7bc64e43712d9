"""Every memguard value's notebook output in a real headless browser, in both themes.

A page stands in for a JupyterLab notebook: JupyterLab's theme variables
(``--jp-layout-color0``, ``--jp-content-font-color1``, ... with the values of
its light and dark themes), its output-area classes and the rules of its
stylesheet that matter here (text outputs, the error background, rendered
HTML tables, which it right-aligns). Each value is shown three ways — as
IPython shows it without ``%load_ext memguard`` (its ``_repr_html_``), with
the extension loaded, and as an untrusted JupyterLab output sanitizes it —
between a printed line, a traceback and a markdown heading.

The browser (Debian's chromium, network off) computes the styles; the page's
own probe script writes what it measured into the DOM, which the test reads:

* the neighbours' computed colours, backgrounds and decorations are those of
  the same page without memguard's outputs (no output restyles the notebook);
* each output has its text, its images decoded, nothing past its right edge,
  no header wrapped inside a word, and its text reads on the theme's
  background (contrast of at least 4.5:1);
* screenshots of both themes go to ``test-artifacts/``.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import memguard
from memguard import _tracing
from memguard.lines.profile import profile_lines
from memguard.program.launch import Program
from memguard.program.measure import run_program
from tests import helpers
from tests.integration._notebook_html import jupyterlab_untrusted

pytest.importorskip("matplotlib")
pytest.importorskip("IPython")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = helpers.needs_browser

# The variables JupyterLab's themes define (names as in its variables.css).
THEMES: dict[str, dict[str, str]] = {
    "light": {
        "--jp-layout-color0": "#ffffff", "--jp-layout-color1": "#ffffff",
        "--jp-layout-color2": "#eeeeee", "--jp-content-font-color1": "rgba(0, 0, 0, 0.87)",
        "--jp-content-font-color2": "rgba(0, 0, 0, 0.54)", "--jp-ui-font-color1":
        "rgba(0, 0, 0, 0.87)", "--jp-border-color1": "#bdbdbd", "--jp-border-color2": "#e0e0e0",
        "--jp-rendermime-error-background": "#fdd", "--jp-rendermime-table-row-background":
        "#f5f5f5", "--jp-error-color1": "#d32f2f", "--jp-ansi-red": "#e75c58",
        "--jp-code-font-family": "monospace",
        "--jp-content-font-family": "system-ui, -apple-system, sans-serif",
    },
    "dark": {
        "--jp-layout-color0": "#111111", "--jp-layout-color1": "#212121",
        "--jp-layout-color2": "#424242", "--jp-content-font-color1": "rgba(255, 255, 255, 1)",
        "--jp-content-font-color2": "rgba(255, 255, 255, 0.7)", "--jp-ui-font-color1":
        "rgba(255, 255, 255, 0.87)", "--jp-border-color1": "#616161", "--jp-border-color2":
        "#424242", "--jp-rendermime-error-background": "rgba(244, 67, 54, 0.28)",
        "--jp-rendermime-table-row-background": "#212121", "--jp-error-color1": "#f44336",
        "--jp-ansi-red": "#e75c58", "--jp-code-font-family": "monospace",
        "--jp-content-font-family": "system-ui, -apple-system, sans-serif",
    },
}

# The rules of JupyterLab's rendermime stylesheet that touch these outputs.
LAB_CSS = """
body{background:var(--jp-layout-color0);color:var(--jp-content-font-color1);margin:0;
font-family:var(--jp-content-font-family);font-size:14px;line-height:1.4}
main{width:880px;padding:8px 40px}
.jp-OutputArea-output{padding:2px 4px;margin:4px 0;overflow-x:auto}
.jp-RenderedText pre{color:var(--jp-content-font-color1);font-family:var(--jp-code-font-family);
margin:0;white-space:pre-wrap}
.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]{
background:var(--jp-rendermime-error-background)}
.ansi-red-fg{color:var(--jp-ansi-red)}
.jp-RenderedHTMLCommon{color:var(--jp-content-font-color1);font-family:var(--jp-content-font-family)}
.jp-RenderedHTMLCommon table{border-collapse:collapse;border-spacing:0;border:none;
color:var(--jp-ui-font-color1);font-size:12px;table-layout:fixed;margin-left:auto;
margin-right:auto}
.jp-RenderedHTMLCommon thead{border-bottom:1px solid var(--jp-border-color1)}
.jp-RenderedHTMLCommon td,.jp-RenderedHTMLCommon th,.jp-RenderedHTMLCommon tr{text-align:right;
vertical-align:middle;padding:0.5em;line-height:normal;white-space:normal;max-width:none;
border:none}
.jp-RenderedHTMLCommon th{font-weight:bold}
.jp-RenderedHTMLCommon tbody tr:nth-child(odd){background:var(--jp-rendermime-table-row-background)}
.jp-RenderedHTMLCommon pre{background:var(--jp-layout-color2)}
.jp-RenderedMarkdown h2{font-size:1.4em;margin:12px 0 6px}
"""

PROBE = """
const read = (el) => { const c = getComputedStyle(el); return {
  color: c.color, background: c.backgroundColor, decoration: c.textDecorationLine,
  border: c.borderBottomWidth + " " + c.borderBottomStyle, font: c.fontSize + " " + c.fontWeight,
  family: c.fontFamily}; };
const lines = (el) => { const r = document.createRange(); r.selectNodeContents(el);
  return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size; };
const result = {neighbours: {}, outputs: []};
for (const el of document.querySelectorAll("[data-probe]")) {
  const key = el.closest("section").dataset.case + "/" + el.dataset.probe;
  if (el.dataset.probe !== "memguard") { result.neighbours[key] = read(el); continue; }
  const box = el.getBoundingClientRect();
  const root = el.firstElementChild;
  const cut = [];
  for (const child of el.querySelectorAll("*")) {
    const b = child.getBoundingClientRect();
    if (b.width && b.right > box.right + 1) cut.push(child.tagName + " " +
        (child.textContent || "").slice(0, 50));
  }
  if (el.scrollWidth > el.clientWidth + 1) cut.push("scrolls " + el.scrollWidth);
  const split = [...el.querySelectorAll("th")].filter((th) => lines(th) > 1)
    .map((th) => th.textContent);
  const images = [...el.querySelectorAll("img")].map((img) => ({
    decoded: img.complete && img.naturalWidth > 0, width: img.getBoundingClientRect().width}));
  const title = root ? root.firstElementChild : null;
  result.outputs.push({key, height: box.height, text: el.innerText.trim().length, cut, split,
    images, color: root ? getComputedStyle(root).color : "",
    titleColor: title ? getComputedStyle(title).color : "",
    background: getComputedStyle(document.body).backgroundColor});
}
document.getElementById("probe").textContent = JSON.stringify(result);
"""

LEAKY = textwrap.dedent("""
    REGISTRY = []


    class Session:
        def __init__(self):
            self.buffer = bytearray(256)


    def open_session():
        REGISTRY.append(Session())
""")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return helpers.chromium(tmp_path, "--force-device-scale-factor=1", *args)


def _values(tmp_path: Path) -> dict[str, Any]:
    """One real value of every type memguard shows in a notebook."""
    module = tmp_path / "leaky_app.py"
    module.write_text(LEAKY)
    sys.path.insert(0, str(tmp_path))
    try:
        import leaky_app  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    window = _tracing.begin()
    try:
        before = memguard.snapshot("before")
        with memguard.record(interval=0.005, label="load") as recording:
            kept = [bytearray(10_000) for _ in range(300)]
            recording.mark("allocated")
            time.sleep(0.02)
        after = memguard.snapshot("after")
    finally:
        _tracing.end(window)
    limit = memguard.limit(mb=1, label="a budget of one megabyte")
    with pytest.raises(memguard.MemoryLimitExceeded), limit:
        big = bytearray(3_000_000)
    del big
    leak = memguard.track_leaks(repeat=20, warmup=2, fail=False,
                                label="open_session").check(leaky_app.open_session)
    watcher = memguard.watch(label="sessions")
    session = leaky_app.Session()
    leaky_app.REGISTRY.append(session)
    watcher.add(session)
    del session
    with pytest.raises(memguard.LeakDetected):
        watcher.check()
    leaky_app.REGISTRY.clear()
    profile = profile_lines(_build_index, 2000)
    script = tmp_path / "script.py"
    script.write_text("rows = [bytearray(1000) for _ in range(500)]\n")
    run = run_program(Program(str(script), ()), interval=0.005, census=False)
    del kept
    return {"snapshot": after, "diff": memguard.diff(before, after), "recording": recording,
            "timeline": recording.timeline, "limit": limit.report, "leak": leak,
            "watch": watcher.report, "lines": profile, "run": run}


def _build_index(n: int) -> int:
    rows = [{"id": i, "name": f"item-{i}"} for i in range(n)]
    by_id = {row["id"]: row for row in rows}
    if by_id:
        nested = [row["name"].upper() for row in rows]
        return len(nested)
    return 0


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Each value's notebook HTML: without the extension, with it, and sanitized untrusted."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    values = _values(tmp_path_factory.mktemp("values"))
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    saved_main = sys.modules["__main__"]
    shell = InteractiveShell.instance(config=config)
    try:
        assert shell.display_formatter is not None
        shown: dict[str, str] = {}
        for name, value in values.items():
            shown[f"{name}-plain"] = shell.display_formatter.format(value)[0]["text/html"]
        assert shell.run_cell("%load_ext memguard").success
        for name, value in values.items():
            loaded = shell.display_formatter.format(value)[0]["text/html"]
            shown[f"{name}-extension"] = loaded
            shown[f"{name}-untrusted"] = jupyterlab_untrusted(loaded)
        shell.run_cell("%unload_ext memguard")
        yield shown
    finally:
        shell.history_manager.end_session()
        InteractiveShell.clear_instance()
        sys.modules["__main__"] = saved_main


def _page(theme: str, outputs: dict[str, str], *, with_memguard: bool, width: int = 880) -> str:
    variables = ";".join(f"{k}:{v}" for k, v in THEMES[theme].items())
    sections = []
    for key, fragment in outputs.items():
        shown = fragment if with_memguard else ""
        sections.append(
            f'<section data-case="{key}">'
            '<div class="jp-OutputArea-output jp-RenderedText" '
            'data-mime-type="application/vnd.jupyter.stdout"><pre data-probe="stdout">'
            f"printed before {key}</pre></div>"
            '<div class="jp-OutputArea-output jp-RenderedHTMLCommon jp-RenderedHTML" '
            f'data-mime-type="text/html" data-probe="memguard">{shown}</div>'
            '<div class="jp-OutputArea-output jp-RenderedText" data-probe="stderr-box" '
            'data-mime-type="application/vnd.jupyter.stderr"><pre data-probe="stderr">'
            '<span class="ansi-red-fg" data-probe="ename">ZeroDivisionError</span>: '
            "division by zero</pre></div>"
            '<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown">'
            f'<h2 data-probe="heading">After {key}</h2><p data-probe="paragraph">Text of a '
            "markdown cell.</p></div></section>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<style>:root{{{variables}}}\n{LAB_CSS}\nmain{{width:{width}px}}</style></head>"
            "<body><main>"
            + "".join(sections) + f'</main><pre id="probe"></pre><script>{PROBE}</script>'
            "</body></html>")


def _probe(tmp_path: Path, page: str, name: str) -> dict[str, Any]:
    path = tmp_path / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    done = _chromium(tmp_path, "--window-size=960,1200", "--virtual-time-budget=5000",
                     "--dump-dom", path.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, "the probe script did not run"
    result: dict[str, Any] = json.loads(html.unescape(found[1]))
    return result


def _luminance(colour: str) -> float:
    red, green, blue = (int(float(x)) / 255 for x in re.findall(r"[\d.]+", colour)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def _contrast(one: str, two: str) -> float:
    light, dark = sorted((_luminance(one), _luminance(two)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize(("theme", "width"), [("light", 880), ("dark", 880), ("light", 520)])
def test_outputs_keep_to_themselves_and_show_everything(theme: str, width: int,
                                                        outputs: dict[str, str],
                                                        tmp_path: Path) -> None:
    assert len(outputs) == 27, sorted(outputs)  # 9 value types, 3 ways each
    with_outputs = _probe(tmp_path, _page(theme, outputs, with_memguard=True, width=width),
                          "with")
    without = _probe(tmp_path, _page(theme, outputs, with_memguard=False, width=width),
                     "without")
    # No output restyles the printed lines, tracebacks and markdown around it.
    assert with_outputs["neighbours"] == without["neighbours"]
    assert len(with_outputs["outputs"]) == 27
    for shown in with_outputs["outputs"]:
        key = shown["key"]
        assert shown["text"] > 100, key  # not an empty box
        assert shown["height"] > 60, key
        assert shown["cut"] == [], key  # nothing past the cell's right edge
        assert shown["split"] == [], key  # no header broken inside a word
        assert all(image["decoded"] for image in shown["images"]), key
        assert all(0 < image["width"] <= width for image in shown["images"]), key
        for colour in (shown["color"], shown["titleColor"]):
            assert _contrast(colour, shown["background"]) >= 4.5, (key, colour)
        if key.split("/")[0].startswith(("leak", "limit", "recording", "timeline",
                                         "run")):
            assert shown["images"], f"{key}: its chart"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_screenshot_of_both_themes(theme: str, outputs: dict[str, str], tmp_path: Path) -> None:
    image_module = pytest.importorskip("matplotlib.image")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"notebook-outputs-{theme}.png"
    shot.unlink(missing_ok=True)
    chosen = {k: v for k, v in outputs.items() if k.split("-")[0] in ("leak", "diff", "lines")}
    path = tmp_path / "page.html"
    path.write_text(_page(theme, chosen, with_memguard=True), encoding="utf-8")
    done = _chromium(tmp_path, "--window-size=960,6000", f"--screenshot={shot}", path.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    pixels = image_module.imread(shot)[..., :3]
    background = pixels[5, 5]
    expected = (1.0, 1.0, 1.0) if theme == "light" else (17 / 255, 17 / 255, 17 / 255)
    assert tuple(round(float(c), 2) for c in background) == tuple(round(c, 2) for c in expected)
    # Text and charts drawn, and no white block in the dark theme.
    differs = (abs(pixels - background).max(axis=2) > 0.3).sum()
    assert differs > 20_000
    if theme == "dark":
        white = (pixels.min(axis=2) > 0.95).sum()
        assert white < 0.02 * pixels.shape[0] * pixels.shape[1], white
