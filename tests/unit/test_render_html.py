"""HTML rendering: the whole page of a hand-built value, charts embedded and self-contained."""

from __future__ import annotations

import base64
import re
import sys
from typing import Any

import _report_values as values
import pytest

import memguard
from memguard.report import render
from memguard.report.html import render_html

LIMIT_PAGE = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content\
="default-src 'none'; img-src data:; style-src 'unsafe-inline'"><meta name="viewport" content=\
"width=device-width, initial-scale=1"><title>memguard limit &quot;test_import&quot;</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2430;margin:0;
background:#f6f7f9}
main{max-width:1040px;margin:0 auto;padding:24px 28px 40px;background:#fff;min-height:100vh}
h1{font-size:1.45em;margin:0 0 14px;overflow-wrap:anywhere}h2{font-size:1.15em;margin:28px 0 6\
px;
border-bottom:1px solid #d9dde3;padding-bottom:3px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;vertical-align:top}
table.facts td{overflow-wrap:anywhere}div.scroll{overflow-x:auto;max-width:100%}
table.facts th{text-align:left;font-weight:600;color:#4a5568;white-space:nowrap}
table.data thead th{border-bottom:2px solid #c7ccd4;text-align:left}
table.data td{border-bottom:1px solid #eceff3;font-variant-numeric:tabular-nums}
table.data .r{text-align:right;white-space:nowrap}table.data .l{word-break:break-all}
p.note{color:#4a5568;margin:2px 0 6px}pre{background:#f3f4f6;padding:8px;overflow-x:auto}
figure.chart{margin:18px 0;border:1px solid #e2e5ea;padding:10px}
figure.chart svg,figure.chart img{max-width:100%;height:auto;display:block}
figcaption{font-size:.92em;color:#2d3748;margin-top:6px}
svg.sparkline{display:block;width:100%;max-width:600px;height:64px;background:#f3f4f6}
@media (max-width:600px){main{padding:14px 10px 28px}table.facts th{white-space:normal}
th,td{padding:2px 5px}}
footer{margin-top:36px;color:#718096;font-size:.85em}
</style></head>
<body><main class="memguard-report memguard-limit">
<h1>memguard limit &quot;test_import&quot;</h1>
<table class="facts"><tbody>
<tr><th>verdict</th><td>EXCEEDED by 488.3 KiB</td></tr>
<tr><th>measured</th><td>traced Python heap</td></tr>
<tr><th>peak</th><td>1.4 MiB above the start</td></tr>
<tr><th>limit</th><td>976.6 KiB</td></tr>
<tr><th>levels</th><td>9.8 KiB at the start, 19.5 KiB at the end, absolute (+9.8 KiB kept)</td\
></tr>
<tr><th>duration</th><td>0.250 s</td></tr>
</tbody></table>
<section>
<h2>Allocation sites at the peak</h2>
<p class="note">sites live at the peak, captured at 1.4 MiB above the start</p>
<div class="scroll"><table class="data">
<thead><tr><th class="r">size</th><th class="r">blocks</th><th class="l">where</th></tr></thea\
d>
<tbody>
<tr><td class="r">1.1 MiB</td><td class="r">3</td><td class="l">/srv/app/loader.py:40</td></tr>
<tr><td class="r">195.3 KiB</td><td class="r">100</td><td class="l">/srv/app/loader.py:41</td>\
</tr>
</tbody></table></div>
</section>
<footer>memguard {version} · limit report</footer>
</main></body></html>
"""


def test_whole_page_without_charts() -> None:
    page = render(values.limit_report(), "html", charts=False)
    assert page == LIMIT_PAGE.replace("{version}", memguard.__version__)


CHARTS = [("after", ["top"]), ("diff", ["top"]), ("timeline", ["timeline"]),
          ("limit_report", ["top"]), ("leak_report", ["growth", "top"])]


@pytest.mark.parametrize(("name", "charts"), CHARTS)
def test_charts_are_inline_svg_with_exact_figures(name: str, charts: list[str]) -> None:
    value: Any = getattr(values, name)()
    page = render(value, "html")
    assert re.findall(r'<figure class="chart" id="chart-(\w+)">', page) == charts
    assert page.count("<svg") == len(charts)
    assert page.count("<figcaption><strong>Exact figures:</strong>") == len(charts)
    # Self-contained: no scripts, no external resources, no links to fetch.
    assert "<script" not in page
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "<?xml" not in page


def test_exact_figures_beside_the_timeline() -> None:
    page = render(values.timeline(), "html")
    assert ("<figcaption><strong>Exact figures:</strong> 6 samples; traced peak 2.5 MiB "
            "absolute, +2.5 MiB above the start (exact); RSS peak 54.0 MiB absolute, +4.0 MiB "
            "above the start (kernel high-water mark, exact)</figcaption>") in page


def test_png_charts_are_base64_data() -> None:
    page = render_html(values.timeline(), chart_format="png")
    (data,) = re.findall(r'<img alt="timeline chart" src="data:image/png;base64,([^"]+)">', page)
    assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="chart_format must be 'svg' or 'png'"):
        render_html(values.timeline(), chart_format="gif")  # type: ignore[arg-type]


def test_without_matplotlib_the_page_says_how_to_get_charts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, name, None)
    page = render(values.diff(), "html")
    assert "<svg" not in page
    assert ("Charts are not included: this memguard feature needs matplotlib, which is not "
            "installed; run: pip install &#x27;memguard[plot]&#x27;") in page
    assert "<h2>Changed allocation sites</h2>" in page


def test_html_escapes_names() -> None:
    from memguard.values.snapshot import Snapshot

    page = render(Snapshot(label="<b>x</b>", timestamp=0.0), "html", charts=False)
    assert "<h1>memguard snapshot &quot;&lt;b&gt;x&lt;/b&gt;&quot;</h1>" in page
