"""``memguard report --top`` and ``memguard diff --top`` on snapshot files with more
sites than the default shows.

Each test here pins a behaviour that a one-line bug once broke without any other
test noticing (see ``benchmarks/mutations.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import memguard
import memguard.report
from memguard.cli import main
from tests import helpers

KB = 20_000  # twenty kilobytes: every site bigger than anything else pytest holds
#: Twelve lines of this file allocate, 2.4 MB down to 200 kB: more sites than
#: the default of ten rows, each bigger than anything else pytest holds.
LINES = 12


def _allocate() -> list[bytearray]:
    return [
        bytearray(120 * KB),  # site-12
        bytearray(110 * KB),  # site-11
        bytearray(100 * KB),  # site-10
        bytearray(90 * KB),  # site-09
        bytearray(80 * KB),  # site-08
        bytearray(70 * KB),  # site-07
        bytearray(60 * KB),  # site-06
        bytearray(50 * KB),  # site-05
        bytearray(40 * KB),  # site-04
        bytearray(30 * KB),  # site-03
        bytearray(20 * KB),  # site-02
        bytearray(10 * KB),  # site-01
    ]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A snapshot before and one after _allocate, saved as files."""
    folder = tmp_path_factory.mktemp("top")
    with memguard.record():
        before = memguard.snapshot("before", census=False)
        kept = _allocate()
        after = memguard.snapshot("after", census=False)
        del kept
    return (memguard.report.write(before, folder / "before.json"),
            memguard.report.write(after, folder / "after.json"))


def _my_rows(out: str) -> list[int]:
    """The site lines of this file a report shows, in order (by their marker's number)."""
    numbers = {helpers.line_of(__file__, f"# site-{n:02d}"): n for n in range(1, LINES + 1)}
    shown = []
    for row in out.splitlines():
        for lineno, n in numbers.items():
            if f"{Path(__file__).name}:{lineno}" in row:
                shown.append(n)
    return shown


def test_report_top_sets_the_number_of_sites(files: tuple[Path, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(files[1])]) == 0
    assert _my_rows(capsys.readouterr().out) == list(range(12, 2, -1))  # the default: ten
    for top in (3, 11):
        assert main(["report", str(files[1]), "--top", str(top)]) == 0
        assert _my_rows(capsys.readouterr().out) == list(range(12, 12 - top, -1))


def test_diff_top_sets_the_number_of_sites(files: tuple[Path, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(files[0]), str(files[1])]) == 0
    assert _my_rows(capsys.readouterr().out) == list(range(12, 2, -1))
    for top in (2, 12):
        assert main(["diff", str(files[0]), str(files[1]), "--top", str(top)]) == 0
        assert _my_rows(capsys.readouterr().out) == list(range(12, 12 - top, -1))
