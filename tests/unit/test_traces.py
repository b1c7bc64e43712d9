"""memguard.traces: real tracemalloc traces grouped by line, traceback and user line.

Every figure is checked against tracemalloc's own public API over the same
snapshot, and what memguard leaves out is checked to be named and to add up.
"""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from memguard import _optional, traces
from memguard.values.site import sites_from_snapshot
from memguard.values.snapshot import group_traces

HERE = __file__
BIG = sys.getsizeof(bytes(100_000))  # one block: the bytes object and its data
SMALL = sys.getsizeof(bytes(50_000))


@pytest.fixture
def tracing() -> Iterator[None]:
    """Trace with 10 frames, restoring whatever tracing there was."""
    was, limit = tracemalloc.is_tracing(), tracemalloc.get_traceback_limit()
    if was:
        tracemalloc.stop()
    tracemalloc.start(10)
    try:
        yield
    finally:
        tracemalloc.stop()
        if was:
            tracemalloc.start(limit)


def _allocate(keep: list[object]) -> tuple[int, int]:
    keep[0] = bytes(100_000)
    keep[1] = bytes(50_000)
    line = sys._getframe().f_lineno
    return line - 2, line - 1


def _line_sums(snapshot: tracemalloc.Snapshot) -> dict[tuple[str, int], tuple[int, int]]:
    """tracemalloc's own figures by innermost line (its public API)."""
    return {(s.traceback[0].filename, s.traceback[0].lineno): (s.size, s.count)
            for s in snapshot.statistics("lineno")}


def test_lines_have_exact_bytes_and_everything_adds_up(tracing: None) -> None:
    keep: list[object] = [None, None]
    first, second = _allocate(keep)
    snapshot = tracemalloc.take_snapshot()
    grouped = traces.group(snapshot, "lineno")
    sites = {(g.filename, g.lineno): (g.size_bytes, g.count) for g in grouped.sites()}
    assert sites[(HERE, first)] == (BIG, 1)
    assert sites[(HERE, second)] == (SMALL, 1)
    # Every site agrees with tracemalloc's statistics("lineno") ...
    public = _line_sums(snapshot)
    for place, figures in sites.items():
        assert public[place] == figures
    # ... and what is not a site is the named remainder, to the byte.
    left = {r.name: (r.size_bytes, r.count) for r in grouped.remainder()}
    assert set(left) <= {traces.MEMGUARD, traces.IMPORTS}
    missing = {p: f for p, f in public.items() if p not in sites}
    assert sum(size for size, _ in missing.values()) == sum(s for s, _ in left.values())
    assert sum(n for _, n in missing.values()) == sum(n for _, n in left.values())
    assert all(traces.is_internal(filename) for filename, _ in missing)
    assert grouped.total_bytes == sum(t.size for t in snapshot.traces)
    del keep


def test_changes_match_compare_to_and_name_the_remainder(tracing: None) -> None:
    keep: list[object] = [None, None]
    before = tracemalloc.take_snapshot()
    first, second = _allocate(keep)
    after = tracemalloc.take_snapshot()
    change = traces.changes(traces.group(after, "lineno"), traces.group(before, "lineno"))
    grown = {(g.filename, g.lineno): (g.size_bytes, g.count) for g in change.grown}
    assert grown[(HERE, first)] == (BIG, 1)
    assert grown[(HERE, second)] == (SMALL, 1)
    public = {(s.traceback[0].filename, s.traceback[0].lineno): (s.size_diff, s.count_diff)
              for s in after.compare_to(before, "lineno") if s.size_diff or s.count_diff}
    users = {p: f for p, f in public.items() if not traces.is_internal(p[0])}
    assert {(g.filename, g.lineno): (g.size_bytes, g.count) for g in change.all} == users
    left = sum(r.size_bytes for r in change.left_out)
    assert left == sum(size for p, (size, _) in public.items() if traces.is_internal(p[0]))
    # The values built on the grouping agree.
    sites = sites_from_snapshot(after, baseline=before)
    assert [(s.lineno, s.size_bytes) for s in sites if s.filename == HERE][:2] == [
        (first, BIG), (second, SMALL)]
    del keep


def test_tracebacks_keep_their_frames_innermost_first(tracing: None) -> None:
    keep: list[object] = [None, None]
    first, _ = _allocate(keep)
    caller = sys._getframe().f_lineno - 1
    grouped = traces.group(tracemalloc.take_snapshot(), "traceback")
    [site] = [g for g in grouped.sites() if (g.filename, g.lineno) == (HERE, first)]
    assert (site.size_bytes, site.count) == (BIG, 1)
    assert site.frames[:2] == ((HERE, first), (HERE, caller))
    # The snapshot value keeps them innermost last, and marks nothing of ours.
    values = group_traces(tracemalloc.take_snapshot())
    [value] = [s for s in values if (s.filename, s.lineno) == (HERE, first)]
    assert value.left_out is None
    assert value.size_bytes == BIG
    assert [(f.filename, f.lineno) for f in value.traceback][-2:] == [(HERE, caller),
                                                                        (HERE, first)]
    del keep


@pytest.fixture
def module_dir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))


def _new_module(folder: Path, name: str, size: int) -> None:
    (folder / f"{name}.py").write_text(f"data = bytes({size})\n")
    sys.modules.pop(name, None)


def test_what_memguard_imports_is_memguard_s(tracing: None, module_dir: Path) -> None:
    size = 300_000
    _new_module(module_dir, "mg_traces_theirs", size)
    _new_module(module_dir, "mg_traces_mine", size)
    before = tracemalloc.take_snapshot()
    _optional.require("mg_traces_theirs")  # memguard imports it (a lazy import of its own)
    import mg_traces_mine  # noqa: F401  # the user imports it
    after = tracemalloc.take_snapshot()
    try:
        for by in ("lineno", "traceback", "user_line"):
            change = traces.changes(traces.group(after, by), traces.group(before, by))
            files = {g.filename for g in change.grown}
            assert str(module_dir / "mg_traces_mine.py") in files, by
            assert str(module_dir / "mg_traces_theirs.py") not in files, by
            mine = sum(r.size_bytes for r in change.left_out if r.name == traces.MEMGUARD)
            assert mine >= sys.getsizeof(bytes(size)), by
    finally:
        sys.modules.pop("mg_traces_theirs", None)
        sys.modules.pop("mg_traces_mine", None)


def test_user_line_names_the_importing_line_and_skips_libraries(tracing: None,
                                                                 module_dir: Path) -> None:
    _new_module(module_dir, "mg_traces_lib", 200_000)
    before = tracemalloc.take_snapshot()
    import mg_traces_lib  # noqa: F401
    line = sys._getframe().f_lineno - 1
    after = tracemalloc.take_snapshot()
    try:
        library = str(module_dir / "mg_traces_lib.py")
        grown = traces.changes(traces.group(after, "user_line", skip=lambda f: f == library),
                               traces.group(before, "user_line")).grown
        [site] = [g for g in grown if (g.filename, g.lineno) == (HERE, line)]
        assert site.size_bytes >= sys.getsizeof(bytes(200_000))
        assert (HERE, line) in site.frames  # a traceback through the importing line
        assert library not in {g.filename for g in grown}
    finally:
        sys.modules.pop("mg_traces_lib", None)


def test_bad_grouping_is_refused() -> None:
    empty = tracemalloc.Snapshot([], 1)
    with pytest.raises(ValueError, match="by must be one of"):
        traces.group(empty, "file")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot compare"):
        traces.changes(traces.group(empty, "lineno"), traces.group(empty, "traceback"))
