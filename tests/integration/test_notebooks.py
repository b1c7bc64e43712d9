"""The example notebooks run headless, with a real kernel, and show what they promise.

Each notebook (stored without outputs) is executed by nbclient in an
ipykernel running this interpreter (a kernelspec written to a temporary
directory names ``sys.executable``), every cell must run without error
(except cells tagged ``raises-exception``), and the key outputs of the story
must appear.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import _notebook_html as sanitize

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
    # Sites named by the cell and line the service was defined in.
    assert re.search(r"\n +[\d.]+ KiB +\d+ +In \[\d+\], line \d+\n", text), text
    assert not re.search(r"ipykernel_\d+/", text), "no cell named by its temporary file"
    assert '<img alt="growth chart' in data(verdict, "text/html"), "the verdict's growth chart"

    diff = data(cell(notebook, "%memguard_diff"), "text/plain")
    top_site, its_line = diff.split("where\n", 1)[1].splitlines()[:2]
    assert re.fullmatch(r" +\+2\.0 MiB +2\.0 MiB +\+1,000 +1,000 +In \[\d+\], line \d+",
                        top_site), top_site
    assert its_line.strip().startswith("self.scratch = bytearray(4096)")

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
                        r"\(headroom \S+ KiB\), (counted|traced) Python heap\n", stream(budget))
    assert data(budget, "text/plain") == "0", "no subscriber is left behind"


def test_limits_and_timelines(kernel: str, tmp_path: Path) -> None:
    notebook = execute("limits_and_timelines.ipynb", kernel, tmp_path)
    assert errors(notebook) == [("%%memguard_limit 1 MB", "MemoryLimitExceeded")]

    under = cell(notebook, "%%memguard_limit 20 MB")
    assert re.fullmatch(r"memguard: cell In\[\d+\]: peak \S+ MiB <= limit 19\.1 MiB "
                        r"\(headroom \S+ MiB\), (counted|traced) Python heap\n", stream(under))
    assert data(under, "text/plain") == "20000"

    (failure,) = [o for o in cell(notebook, "%%memguard_limit 1 MB").outputs
                  if o["output_type"] == "error"]
    # The list is kept, so the sites at the peak are named whatever the timing.
    # The site is named by its cell and line (the magic is line 1), not by
    # ipykernel's temporary file.
    assert re.match(r"Memory limit exceeded in cell In\[\d+\]: peak 1\.\d MiB > limit "
                    r"976\.6 KiB \(\+\S+ KiB\), (counted|traced) Python heap\n  top allocation "
                    r"sites \(.*sites live at the peak, .*\n    In \[\d+\], line 2: [\d.]+ "
                    r"(KiB|MiB) in [\d,]+ blocks",
                    failure["evalue"]), failure["evalue"]
    # The error shows the cell and the verdict, none of memguard's or IPython's frames.
    shown = "\n".join(failure["traceback"])
    assert "%%memguard_limit 1 MB" in shown
    for frame in ("run_cell_magic", "__exit__", "magics.py", "limit.py"):
        assert frame not in shown

    rss = cell(notebook, "%%memguard_limit 100 MB --source rss")
    assert re.fullmatch(r"memguard: cell In\[\d+\]: peak \S+ MiB <= limit 95\.4 MiB "
                        r"\(headroom \S+ MiB\), process RSS .*\n", stream(rss))
    assert data(rss, "text/plain") == "4000000.0"

    timeline = cell(notebook, "%%memguard_record")
    assert data(timeline, "text/plain").startswith('memguard timeline "cell In[')
    assert '<img alt="timeline chart' in data(timeline, "text/html"), "the timeline's chart"

    lines = data(cell(notebook, "%memguard_lines"), "text/plain")
    assert re.match(r"build_index \(In \[\d+\], line \d+\)", lines), lines
    assert not re.search(r"ipykernel_\d+/", lines)
    assert "ordered = sorted(rows" in lines

    kept = stream(cell(notebook, "more = load_rows"))
    assert re.fullmatch(r"memguard: In\[\d+\] peak \S+ MiB, retained \+\S+ MiB "
                        r"\(traced Python heap\)\n", kept)
    freed = stream(cell(notebook, "del more"))
    assert re.fullmatch(r"memguard: In\[\d+\] peak \S+ (KiB|B), retained -\S+ MiB "
                        r"\(traced Python heap\)\n", freed)


# -- shared notebooks: outputs through a sanitizer ------------------------------


def memguard_outputs(notebook: Any) -> list[tuple[str, str]]:
    """``(cell source's first line, text/html)`` of every memguard rich output."""
    return [(c.source.splitlines()[0], o["data"]["text/html"]) for c in notebook.cells
            if c.cell_type == "code" for o in c.outputs
            if o["output_type"] in ("execute_result", "display_data")
            and "memguard-output" in o.get("data", {}).get("text/html", "")]


@pytest.mark.parametrize("name", ["leak_investigation.ipynb", "limits_and_timelines.ipynb"])
def test_shared_notebook_outputs_survive_sanitizers(name: str, kernel: str,
                                                    tmp_path: Path) -> None:
    notebook = execute(name, kernel, tmp_path)
    shown = memguard_outputs(notebook)
    assert len(shown) >= 2, [source for source, _ in shown]
    for source, fragment in shown:
        assert len(fragment) < 300_000, (source, len(fragment))
        for banned in ("<iframe", "<script", "<style", "<html", "<head", "<meta", "<svg"):
            assert banned not in fragment.lower(), (source, banned)
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", fragment), source
        words = sanitize.text_of(fragment)
        # GitHub's allow-list: no style, class, svg or data: image; the verdict,
        # the figures and the tables stay, as text.
        public = sanitize.github(fragment)
        assert sanitize.text_of(public) == words, source
        assert "<table>" in public, source
        assert public.count("<td>") >= 3, source
        assert "data:" not in public
        if '<img alt="' in fragment:
            assert "Exact figures:" in sanitize.text_of(public), source
        if source.startswith(("%%memguard_leaks", "%%memguard_limit")):
            assert "verdict" in words, source
        # An untrusted JupyterLab output keeps the charts and the layout.
        untrusted = sanitize.jupyterlab_untrusted(fragment)
        assert sanitize.text_of(untrusted) == words, source
        assert untrusted.count("data:image/png;base64,") == fragment.count(
            "data:image/png;base64,"), source
        assert 'class="memguard-output' in untrusted
