"""Markdown rendering of hand-built values, compared in full."""

from __future__ import annotations

from typing import Any

import _report_values as values
import pytest

from memguard.report import render

EXPECTED: dict[str, str] = {
    "after": """\
### memguard snapshot "after"

| figure | value |
| --- | --- |
| taken | 2027-01-15 08:00:02 UTC |
| python | CPython 3.11.7 on Linux-6.1-x86\\_64 (linux), pid 4242 |
| traced Python heap | 1.1 MiB in 5 sites, peak 1.1 MiB (absolute; traceback limit 1) |
| process RSS | 52.0 MiB |
| process USS | absent: process USS is not available: access denied |
| live objects | 2,621 in 4 types |
| open descriptors | 4 |
| threads | 2: MainThread, worker-1 |

#### Top allocation sites

live traced memory, biggest first; the rows add up to every traced block

| size | blocks | where |
| ---: | ---: | --- |
| 1.0 MiB | 266 | /srv/app/cache.py:12 |
| 8.0 KiB | 1 | /srv/app/new.py:30 |
| 4.0 KiB | 40 | /usr/lib/python3.11/json/decoder.py:353 |
| 3.0 KiB | 5 | /srv/app/models.py:9 |
| 2.0 KiB | 4 | /srv/app/models.py:7 |

#### Live objects by type

gc-tracked objects and the untracked ones they hold

| count | type |
| ---: | --- |
| 1,450 | dict |
| 900 | str |
| 259 | app.Session |
| 12 | bytes |
""",
    "untraced": """\
### memguard snapshot "cold"

| figure | value |
| --- | --- |
| taken | 2027-01-15 08:00:00 UTC |
| python | unknown on unknown, pid 0 |
| traced Python heap | absent: tracemalloc was not tracing |
| process RSS | 10.0 MiB |
| process USS | absent: not measured (no reason was recorded) |
| live objects | absent: the object census was switched off (census=False) |
| open descriptors | absent: not measured (no reason was recorded) |
| threads | 0 |

#### Top allocation sites

absent: tracemalloc was not tracing

#### Live objects by type

absent: the object census was switched off (census=False)
""",
    "diff": """\
### memguard diff "before" -&gt; "after"

| figure | value |
| --- | --- |
| elapsed | 2.500 s from the earlier snapshot to the later |
| sites grouped by | lineno |
| traced Python heap | +1.0 MiB |
| process RSS | +2.0 MiB |
| process USS | absent: process USS is not available: access denied |
| descriptors | opened 5 -&gt; /srv/data/a.db; closed none |
| threads | started worker-1; ended none |

#### Changed allocation sites

5 sites changed, +1.0 MiB in all; biggest change first; the rows add up to the change of ev\
ery traced block

| change | size | Δblocks | blocks | where |
| ---: | ---: | ---: | ---: | --- |
| +1.0 MiB | 1.0 MiB | +256 | 266 | /srv/app/cache.py:12 |
| +8.0 KiB | 8.0 KiB | +1 | 1 | /srv/app/new.py:30 |
| +4.0 KiB | 4.0 KiB | +40 | 40 | /usr/lib/python3.11/json/decoder.py:353 |
| +2.0 KiB | 3.0 KiB | +3 | 5 | /srv/app/models.py:9 |
| -512 B | 0 B | -1 | 0 | /srv/app/old.py:3 |

#### Changed object counts

3 types changed

| change | count | type |
| ---: | ---: | --- |
| +256 | 259 | app.Session |
| +250 | 1,450 | dict |
| +12 | 12 | bytes |
""",
    "timeline": """\
### memguard timeline "load"

| figure | value |
| --- | --- |
| started | 2027-01-15 08:00:00 UTC |
| samples | 6 every 10 ms over 0.050 s |
| traced Python heap | start 1000 B, end 878.9 KiB (absolute); peak 2.5 MiB absolute, +2.5 MiB\
 above the start (exact) |
| process RSS | start 50.0 MiB (absolute); peak 54.0 MiB absolute, +4.0 MiB above the start (k\
ernel high-water mark, exact) |

#### Marks

| time | traced | label |
| ---: | ---: | --- |
| 0.015 s | 976.6 KiB | parsed |
| 0.035 s | 1.8 MiB | indexed |

#### Traced Python heap over time

sampled: 1000 B to 1.9 MiB

```text
▁▂▆█▄▄
```
""",
    "limit_report": """\
### memguard limit "test\\_import"

| figure | value |
| --- | --- |
| verdict | EXCEEDED by 488.3 KiB |
| measured | traced Python heap |
| peak | 1.4 MiB above the start |
| limit | 976.6 KiB |
| levels | 9.8 KiB at the start, 19.5 KiB at the end, absolute (+9.8 KiB kept) |
| duration | 0.250 s |

#### Allocation sites at the peak

sites live at the peak, captured at 1.4 MiB above the start

| size | blocks | where |
| ---: | ---: | --- |
| 1.1 MiB | 3 | /srv/app/loader.py:40 |
| 195.3 KiB | 100 | /srv/app/loader.py:41 |
""",
    "leak_report": """\
### memguard leak check "handle\\_request"

| figure | value |
| --- | --- |
| verdict | handle\\_request: leaks +1.0 KiB per call (+5.0 KiB over 5 calls), signals python,\
 objects |
| calls | 5 measured after 2 warm-up (repeated) |
| duration | 0.500 s |

#### Signals

growth per call is the fitted slope over the measured calls

| signal | verdict | per call | total | detail |
| --- | --- | ---: | ---: | --- |
| python | LEAK | +1.0 KiB | +5.0 KiB | slope 1024 ± 3 B/call |
| objects | LEAK | +2 objects | +10 objects | slope 2.00 ± 0.01 |
| fds | ok | +0 fds | +0 fds |  |

#### Growing allocation sites

per call, biggest first

| size | blocks | where |
| ---: | ---: | --- |
| 1.0 KiB | 1 | /srv/app/handlers.py:88 |

#### Growing types

objects per call

| per call | type |
| ---: | --- |
| +1 | app.Request |
| +1 | dict |

#### Sample leaked object

```text
<app.Request object at 0x1>
  held by app.handlers.LOG[-1]
```
""",

}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_whole_output(name: str) -> None:
    value: Any = getattr(values, name)()
    assert render(value, "markdown") == EXPECTED[name]


def test_markdown_escapes_special_characters() -> None:
    from memguard.values.site import AllocationSite
    from memguard.values.snapshot import Snapshot

    snap = Snapshot(label="a|b", timestamp=0.0, sites=(AllocationSite(
        filename="/pkg/__init__.py", lineno=1, size_bytes=10, count=1),))
    out = render(snap, "markdown")
    assert out.startswith('### memguard snapshot "a\\|b"\n')
    assert "| 10 B | 1 | /pkg/\\_\\_init\\_\\_.py:1 |" in out
