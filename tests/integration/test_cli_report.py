"""``memguard report`` and ``memguard diff`` in-process, on files real runs and snapshots wrote."""

from __future__ import annotations

import gzip
import json
import re
import textwrap
from pathlib import Path

import pytest

import memguard
from memguard.cli import main
from memguard.values.files import load, save
from memguard.values.snapshot import take_snapshot

MB = 1_000_000

SCRIPT = """\
    import sys, time
    block = bytearray(int(sys.argv[1]) * 1_000_000)
    time.sleep(0.03)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two run files of the same script: 4 MB, then 12 MB at the peak."""
    folder = tmp_path_factory.mktemp("runs")
    script = folder / "grow.py"
    script.write_text(textwrap.dedent(SCRIPT))
    small, big = folder / "small.json", folder / "big.json.gz"
    assert main(["run", "--no-census", "-o", str(small), str(script), "4"]) == 0
    assert main(["run", "-o", str(big), str(script), "12"]) == 0
    return small, big


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two snapshot files, 3 MB of bytearrays apart."""
    folder = tmp_path_factory.mktemp("snaps")
    with memguard.record():
        before = take_snapshot("before", census=False)
        kept = [bytearray(1_000_000) for _ in range(3)]
        after = take_snapshot("after", census=False)
        del kept
    save(before, folder / "before.json")
    save(after, folder / "after.json")
    return folder / "before.json", folder / "after.json"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err


def test_report_text_has_peak_sites_and_timeline(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(runs[1])]) == 0
    out = capsys.readouterr().out
    assert out.startswith('memguard run "')
    # The 12 MB block and what the script's imports allocated: the report
    # prints the figure the file holds, in MiB.
    run = load(runs[1])
    assert isinstance(run, memguard.RunReport)
    assert 12 * MB <= run.traced_peak_above_start_bytes <= 12 * MB + 500_000
    # Labelled as an absolute level and as a rise above the start.
    above = memguard.format_size(run.traced_peak_above_start_bytes, signed=True)
    assert (f"traced peak {memguard.format_size(run.timeline.traced_peak_bytes)} absolute, "
            f"{above} above the start") in " ".join(out.split())
    assert "Allocation sites at the peak" in out
    assert "grow.py:2" in out
    assert "Traced Python heap over time" in out
    assert "█" in out
    assert main(["report", str(runs[1]), "--top", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines)
                  if i > lines.index("Allocation sites at the peak")
                  and line.split() == ["size", "blocks", "where"])
    assert "grow.py:2" in lines[header + 1]
    assert lines[header + 2].strip() == "block = bytearray(int(sys.argv[1]) * 1_000_000)"
    # One site row; then the rest, named, and the total, before the next section.
    end = lines.index("", header)
    assert lines[end - 1].split()[-1] == "total"
    assert not any("grow.py" in line for line in lines[header + 3:end])


def test_report_formats_to_stdout_and_files(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(runs[0]), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith('### memguard run "')
    assert main(["report", str(runs[0]), "--format", "json", "--output", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "run"
    page = tmp_path / "run.html"
    assert main(["report", str(runs[0]), "--output", str(page)]) == 0
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "Allocation sites at the peak" in html
    assert "<svg" in html  # the timeline chart, inline
    assert capsys.readouterr().out == ""
    assert main(["report", str(runs[0]), "--output", str(page)]) == 2
    assert "exists; pass --force" in _one_line_error(capsys)
    assert main(["report", str(runs[0]), "--output", str(page), "--force",
                 "--format", "text"]) == 0
    assert page.read_text().startswith('memguard run "')


def test_report_charts(runs: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png, svg = tmp_path / "t.png", tmp_path / "t.svg"
    assert main(["report", str(runs[0]), "--output", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n")
    assert main(["report", str(runs[0]), "--format", "svg", "--output", str(svg)]) == 0
    assert "<svg" in svg.read_text()
    bars = tmp_path / "diff.svg"
    assert main(["diff", str(runs[0]), str(runs[1]), "--output", str(bars)]) == 0
    assert "<svg" in bars.read_text()


def test_report_a_snapshot_file(
    snapshots: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(snapshots[1]), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('memguard snapshot "after"')
    assert "test_cli_report.py:" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b'{"format": "memguard", "version": 1, "kind": "run", "data": {"comm',
         "not valid JSON"),
        (b'{"hello": "world"}', "not a memguard file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a memguard file"),
        (b'{"format": "memguard", "version": 99, "kind": "run", "data": {}}',
         "written by a newer memguard"),
        (b'{"format": "memguard", "version": 1, "kind": "run", "data": {"command": "x"}}',
         "damaged run"),
        (gzip.compress(b'{"format": "memguard"}')[:-6], "truncated gzip"),
    ],
)
def test_damaged_and_foreign_files_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    for argv in (["report", str(bad)], ["diff", str(bad), str(bad)]):
        assert main(argv) == 1
        err = _one_line_error(capsys)
        assert err.startswith(f"memguard: cannot read '{bad}': ")
        assert message in err


def test_missing_and_unreadable_inputs(
    tmp_path: Path, runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nope.json")]) == 1
    assert "no such file" in _one_line_error(capsys)
    assert main(["report", str(tmp_path)]) == 1
    assert "is a directory" in _one_line_error(capsys)
    assert main(["diff", str(runs[0]), str(tmp_path / "nope.json")]) == 1
    assert "no such file" in _one_line_error(capsys)
    assert main(["report", str(runs[0]), "--output", str(tmp_path / "x.pdf")]) == 2
    assert "cannot tell the format" in _one_line_error(capsys)
    assert main(["report", str(runs[0]), "--format", "pdf"]) == 2
    assert "invalid choice: 'pdf'" in _one_line_error(capsys)
    # checked before any work, as memguard run does: a usage error
    assert main(["report", str(runs[0]), "-o", str(tmp_path / "no" / "dir" / "x.txt")]) == 2
    assert "its folder does not exist" in _one_line_error(capsys)


def test_diff_two_runs_compares_their_peaks(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(runs[0]), str(runs[1]), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "diff"
    growth = data["data"]["traced_diff_bytes"]
    assert 8 * MB - 100_000 <= growth <= 8 * MB + 100_000  # 12 MB - 4 MB at the peak
    assert main(["diff", str(runs[0]), str(runs[1])]) == 0
    out = capsys.readouterr().out
    assert "(peak)" in out
    assert f"+{memguard.format_size(growth)}" in out  # the same figure, in MiB
    assert "grow.py:2" in out


def test_diff_two_snapshots(
    snapshots: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(snapshots[0]), str(snapshots[1]), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('### memguard diff "before"')
    assert "report.py:" in out  # this file, underscores escaped for Markdown
    target = tmp_path / "diff.json"
    assert main(["diff", *map(str, snapshots), "-o", str(target)]) == 0
    diff = load(target)
    # The 3 MB line, exactly (the diff's traced total also moves with whatever
    # else pytest's process freed between the two snapshots).
    line = next(site for site in diff.sites
                if site.filename == __file__ and "bytearray(1_000_000)" in site.source)
    assert 3 * MB <= line.size_diff_bytes <= 3 * MB + 1024


def test_diff_refuses_what_is_not_a_snapshot_or_run(
    tmp_path: Path, snapshots: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with memguard.record() as recording:
        pass
    timeline = tmp_path / "timeline.json"
    save(recording.timeline, timeline)
    assert main(["diff", str(snapshots[0]), str(timeline)]) == 1
    assert "holds a timeline, not a snapshot or a run" in _one_line_error(capsys)


MANY = "\n".join(["import time", "kept = []"]
                 + [f"kept.append(bytearray({(40 - n) * 20_000}))  # line {n}"
                    for n in range(40)]
                 + ["last = bytearray(40_000_000)  # the peak, so that it is captured last",
                    "time.sleep(0.05)"]) + "\n"


def _table(markdown: str, title: str) -> list[list[str]]:
    """The rows of the table under *title* in a Markdown report."""
    part = markdown.split(f"#### {title}\n", 1)[1].split("\n####", 1)[0]
    rows = [line for line in part.splitlines() if line.startswith("| ")][2:]  # no heading
    return [[re.sub(r"\\(.)", r"\1", cell.strip()) for cell in row.strip("|").split("|")]
            for row in rows]  # Markdown's escapes undone


def test_top_shows_n_rows_and_the_tables_add_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """40 sites of known size: --top N lists N of them, then the smaller ones,
    what is left out by name, and a total that is every row's sum."""
    script = tmp_path / "many.py"
    script.write_text(MANY)
    run_file = tmp_path / "many.json"
    assert main(["run", "--no-census", "-o", str(run_file), str(script)]) == 0
    run = load(run_file)
    assert isinstance(run, memguard.RunReport)
    ours = {s.lineno for s in run.sites if s.filename == str(script)}
    # the 40 appends and the peak's line (and, as under python, line 2's
    # first store into the module's globals, 400 B)
    assert ours >= set(range(3, 44))
    capsys.readouterr()
    for top in (5, 30, 35):
        assert main(["report", str(run_file), "--top", str(top), "--format", "markdown"]) == 0
        rows = _table(capsys.readouterr().out, "Allocation sites at the peak")
        sites = [row for row in rows if row[2].startswith(str(script))]
        assert len(sites) == top
        smaller = sum(item.sites for item in run.sites_left_out if item.name == "smaller sites")
        assert rows[top][2] == f"{len(run.sites) - top + smaller} smaller sites"
        assert rows[-1][2] == "total"
        total = sum(s.size_bytes for s in run.sites) + sum(
            item.size_bytes for item in run.sites_left_out)
        assert rows[-1][0] == memguard.format_size(total)
        blocks = sum(s.count for s in run.sites) + sum(i.count for i in run.sites_left_out)
        assert rows[-1][1] == f"{blocks:,}"
        # Each row's source line names the call.
        assert sites[1][3] == "kept.append(bytearray(800000))  # line 0"
        names = {row[2] for row in rows[top + 1:-1]}
        assert "memguard's own work (left out)" in names


def test_diff_top_shows_n_rows_and_adds_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tracemalloc

    code = compile(MANY.replace("import time", "").replace("time.sleep(0.05)", "")
                   .replace("bytearray(40_000_000)", "None"),
                   str(tmp_path / "many.py"), "exec")
    (tmp_path / "many.py").write_text(MANY)
    tracemalloc.start()
    try:
        before = take_snapshot("before", census=False)
        space: dict[str, object] = {}
        exec(code, space)
        after = take_snapshot("after", census=False)
    finally:
        tracemalloc.stop()
    save(before, tmp_path / "a.json")
    save(after, tmp_path / "b.json")
    capsys.readouterr()
    assert main(["diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--top", "25",
                 "--format", "markdown"]) == 0
    rows = _table(capsys.readouterr().out, "Changed allocation sites")
    assert [row[4].rsplit(":", 1)[0] for row in rows[:25]] == [str(tmp_path / "many.py")] * 25
    assert rows[25][4].endswith("smaller sites")
    assert rows[-1][4] == "total"
    every = (sum(s.size_bytes for s in after.sites or ())
             - sum(s.size_bytes for s in before.sites or ()))
    assert rows[-1][0] == memguard.format_size(every, signed=True)
    del space
