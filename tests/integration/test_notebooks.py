"""The example notebooks run headless, with a real kernel, and show what they promise.

Each notebook (stored without outputs) is executed by nbclient in an
ipykernel running this interpreter (a kernelspec written to a temporary
directory names ``sys.executable``), every cell must run without error
(except cells tagged ``raises-exception``), and the key outputs of the story
must appear.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("ipykernel.kernelspec")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "memguard-test"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernelspec for this interpreter, visible only to these tests."""
    prefix = tmp_path_factory.mktemp("kernel")
    kernelspec.install(kernel_name=KERNEL, prefix=str(prefix))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        patch.setenv("JUPYTER_PLATFORM_DIRS", "1")
        yield KERNEL


def execute(name: str, kernel: str, workdir: Path) -> Any:
    """Run a notebook; return it with its outputs and the kernel's interpreter."""
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        assert not cell.get("outputs"), f"{name} is stored with outputs; strip them"
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    # Timeouts are hang guards, far above what a cell or a kernel's start
    # takes on a busy 2-core machine, not figures under test.
    client = nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=600,
                                     startup_timeout=600,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    interpreter = notebook.cells.pop().outputs[0]["text"].strip()
    assert interpreter == sys.executable, "the notebook must run in the test's interpreter"
    return notebook


def cell(notebook: Any, start: str, nth: int = 0) -> Any:
    """The *nth* code cell whose source starts with *start*."""
    found = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(start)]
    assert len(found) > nth, f"no code cell {nth} starting with {start!r}"
    return found[nth]


def stream(code_cell: Any) -> str:
    return "".join(o["text"] for o in code_cell.outputs if o["output_type"] == "stream")


def data(code_cell: Any, mime: str) -> str:
    found = [o["data"][mime] for o in code_cell.outputs
             if o["output_type"] in ("execute_result", "display_data") and mime in o["data"]]
    assert found, f"no {mime} output in cell {code_cell.source[:40]!r}"
    return str(found[0])


def errors(notebook: Any) -> list[tuple[str, str]]:
    return [(c.source.splitlines()[0], o["ename"]) for c in notebook.cells
            if c.cell_type == "code" for o in c.outputs if o["output_type"] == "error"]


def test_leak_investigation_finds_fixes_and_verifies_the_leak(kernel: str,
                                                              tmp_path: Path) -> None:
    notebook = execute("leak_investigation.ipynb", kernel, tmp_path)
    assert errors(notebook) == []

    traffic = stream(cell(notebook, "responses = "))
    match = re.fullmatch(r"memguard: In\[\d+\] peak \S+ MiB, retained \+(\S+) MiB "
                         r"\(traced Python heap\)\n", traffic)
    assert match, traffic
    assert float(match[1]) >= 2000 * 4096 / 1024**2, "each request kept its 4 KiB buffer"
    freed = stream(cell(notebook, "del responses"))
    assert re.fullmatch(r"memguard: In\[\d+\] peak \S+ KiB, retained -1\d\d\.\d KiB "
                        r"\(traced Python heap\)\n", freed), "only the responses were freed"

    verdict = cell(notebook, "%%memguard_leaks", 0)
    text = data(verdict, "text/plain")
    assert re.search(r"verdict +cell In\[\d+\]: leaks \+\S+ KiB per call", text), text
    assert "__main__.Session" in text
    assert "Session.on_config_reloaded" in text
    assert "<svg" in html.unescape(data(verdict, "text/html")), "the verdict's growth chart"

    diff = data(cell(notebook, "%memguard_diff"), "text/plain")
    top_site = diff.split("where\n", 1)[1].splitlines()[0]
    assert re.match(r" +\+2\.0 MiB +2\.0 MiB +\+1,000 +1,000 ", top_site), top_site

    holders = stream(cell(notebook, "%memguard_holders"))
    assert re.match(r"who holds suspect \(Session\):\n  __main__\.bus\._subscribers"
                    r"\['config-reloaded'\]\[\d+\] -> <bound method Session\.on_config_reloaded>"
                    r" -> Session\n  not counted, the notebook's own references: suspect\n",
                    holders), holders
    if shutil.which("dot"):
        assert data(cell(notebook, "%memguard_holders"), "image/png")
    else:
        assert "Graphviz's `dot` is not installed" in holders

    fixed = data(cell(notebook, "%%memguard_leaks", 1), "text/plain")
    assert re.search(r"verdict +cell In\[\d+\]: no leak over 20 calls", fixed), fixed
    budget = cell(notebook, "%%memguard_limit 1 MB")
    assert re.fullmatch(r"memguard: cell In\[\d+\]: peak \S+ KiB <= limit 976\.6 KiB "
                        r"\(headroom \S+ KiB\), traced Python heap\n", stream(budget))
    assert data(budget, "text/plain") == "0", "no subscriber is left behind"


def test_limits_and_timelines(kernel: str, tmp_path: Path) -> None:
    notebook = execute("limits_and_timelines.ipynb", kernel, tmp_path)
    assert errors(notebook) == [("%%memguard_limit 1 MB", "MemoryLimitExceeded")]

    under = cell(notebook, "%%memguard_limit 20 MB")
    assert re.fullmatch(r"memguard: cell In\[\d+\]: peak \S+ MiB <= limit 19\.1 MiB "
                        r"\(headroom \S+ MiB\), traced Python heap\n", stream(under))
    assert data(under, "text/plain") == "20000"

    (failure,) = [o for o in cell(notebook, "%%memguard_limit 1 MB").outputs
                  if o["output_type"] == "error"]
    # The list is kept, so the sites at the peak are named whatever the timing.
    assert re.match(r"Memory limit exceeded in cell In\[\d+\]: peak 1\.\d MiB > limit "
                    r"976\.6 KiB \(\+\S+ KiB\), traced Python heap\n  top allocation sites "
                    r"\(sites live at the peak, .*\n    /tmp/ipykernel_\d+/\d+\.py:1: 1\.\d MiB ",
                    failure["evalue"]), failure["evalue"]

    rss = cell(notebook, "%%memguard_limit 100 MB --source rss")
    assert re.fullmatch(r"memguard: cell In\[\d+\]: peak \S+ MiB <= limit 95\.4 MiB "
                        r"\(headroom \S+ MiB\), process RSS .*\n", stream(rss))
    assert data(rss, "text/plain") == "4000000.0"

    timeline = cell(notebook, "%%memguard_record")
    assert data(timeline, "text/plain").startswith('memguard timeline "cell In[')
    assert "<svg" in html.unescape(data(timeline, "text/html")), "the timeline's chart"

    lines = data(cell(notebook, "%memguard_lines"), "text/plain")
    assert lines.startswith("build_index (")
    assert "ordered = sorted(rows" in lines

    kept = stream(cell(notebook, "more = load_rows"))
    assert re.fullmatch(r"memguard: In\[\d+\] peak \S+ MiB, retained \+\S+ MiB "
                        r"\(traced Python heap\)\n", kept)
    freed = stream(cell(notebook, "del more"))
    assert re.fullmatch(r"memguard: In\[\d+\] peak \S+ (KiB|B), retained -\S+ MiB "
                        r"\(traced Python heap\)\n", freed)
