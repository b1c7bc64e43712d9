"""memguard.objects: the gc census counts exactly what the program keeps."""

from __future__ import annotations

import collections
import gc
import tracemalloc

import pytest

from memguard import objects
from memguard.objects import count_types, tracked_count, type_name

NATIVE = objects._native_census() is not None


@pytest.fixture(autouse=True, params=["native", "python"])
def census_path(request: pytest.FixtureRequest,
                monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on both paths: memguard's extension, and the interpreter's."""
    if request.param == "native" and not NATIVE:
        pytest.skip("memguard's extension is not built or switched off here")
    if request.param == "python":
        monkeypatch.setattr(objects, "_native_census", lambda: None)
    return str(request.param)


class Row:
    """A user type, named module-qualified in the census."""

    def __init__(self, key: str) -> None:
        self.key = key


def _growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after.get(name, 0) - before.get(name, 0)
            for name in set(before) | set(after) if after.get(name, 0) != before.get(name, 0)}


def test_names() -> None:
    assert type_name(dict) == "dict"
    assert type_name(collections.OrderedDict) == "collections.OrderedDict"
    assert type_name(Row) == f"{Row.__module__}.Row"


def test_counts_tracked_and_untracked_objects_exactly() -> None:
    count_types()  # first census of the process: interpreter caches settle
    before = count_types()
    keys = [f"row-{i}" for i in range(1000)]       # 1000 new str, untracked
    rows = [Row(key) for key in keys]               # 1000 Row, tracked
    blobs = [bytearray(16) for _ in range(250)]     # 250 bytearray, untracked
    after = count_types()
    growth = _growth(before, after)
    assert growth[type_name(Row)] == 1000
    assert growth["str"] == 1000, growth
    assert growth["bytearray"] == 250
    assert growth["list"] == 3
    assert all(abs(n) <= 2 for name, n in growth.items()
               if name not in {type_name(Row), "str", "bytearray", "list"}), growth
    del keys, rows, blobs


def test_untracked_off_counts_only_what_gc_tracks() -> None:
    before = count_types(untracked=False)
    texts = [f"text-{i}" for i in range(500)]
    after = count_types(untracked=False)
    growth = _growth(before, after)
    assert "str" not in growth
    assert growth["list"] == 1
    del texts


def test_earlier_results_are_not_counted() -> None:
    results = [count_types() for _ in range(5)]
    assert all(not gc.is_tracked(result) for result in results)
    again = count_types()
    # Holding five censuses (thousands of str keys and int values) adds at most the dicts.
    assert again.get("dict", 0) - results[-1].get("dict", 0) <= 5
    assert abs(again.get("str", 0) - results[-1].get("str", 0)) <= 2


def test_memguards_own_values_are_not_counted() -> None:
    from memguard.values.site import AllocationSite, Frame

    count_types()  # first census of the process: interpreter caches settle
    before = count_types()
    # What a kept snapshot holds: sites with their own strings, numbers and
    # tracebacks (tuples the collector tracks).
    outer = Frame(filename="main.py", lineno=10_001)
    sites = tuple(AllocationSite(filename=f"app-{i}.py", lineno=10_000 + i, size_bytes=10**6 + i,
                                 count=1000 + i, source=f"x = {i} * 2",
                                 traceback=(outer, Frame(filename=f"app-{i}.py",
                                                         lineno=10_000 + i)))
                  for i in range(500))
    after = count_types()
    growth = _growth(before, after)
    assert not [name for name in growth if name.startswith("memguard.")], growth
    assert growth["tuple"] == 1  # the program's own tuple that holds them
    assert abs(growth.get("str", 0)) <= 2, growth  # 1,000 strings, all the sites' alone
    # A string the program holds too is the program's.
    names = [site.filename for site in sites[:10]]
    shared = _growth(before, count_types())
    assert shared["str"] - growth.get("str", 0) == 10
    del sites, names, outer


def test_counts_are_the_same_under_a_trace() -> None:
    """Traced, the census counts by sorting type numbers (no int per object): same figures."""
    import tracemalloc
    from collections import Counter

    from memguard.objects import _tally

    items = [*(Row(str(i)) for i in range(700)), *range(1000, 1300), *("x" * n for n in range(50))]
    plain: Counter[type] = Counter()
    _tally(plain, items)
    tracemalloc.start()
    try:
        traced: Counter[type] = Counter()
        _tally(traced, items)
    finally:
        tracemalloc.stop()
    assert traced == plain == Counter({Row: 700, int: 300, str: 50})


def test_collect_frees_cycles_before_counting() -> None:
    count_types()
    before = count_types()
    for _ in range(100):
        node: list[object] = []
        node.append(node)
    del node
    after = count_types(collect=True)
    assert _growth(before, after).get("list", 0) <= 1


def test_tracked_count() -> None:
    before = tracked_count(collect=True)
    rows = [Row("x") for _ in range(300)]
    assert tracked_count() - before >= 300
    del rows


STORE: dict[int, bytearray] = {}
NESTED: dict[str, tuple[bytearray, ...]] = {}


def test_items_of_untracked_containers_are_counted() -> None:
    """A dict of ints to bytearrays is untracked by gc; its items are alive and counted.

    The "dict of buffers" of issue 18: the census walked tracked containers
    only, so neither the 2,000 bytearrays nor their int keys were seen. A
    tuple of atoms inside an untracked dict is followed too (two levels).
    """
    count_types()
    before = count_types()
    for i in range(2000):
        STORE[100_000 + i] = bytearray(512)
    NESTED["rows"] = tuple(bytearray(8) for _ in range(300))
    try:
        gc.collect()  # the collector untracks tuples and dicts of atoms as it passes
        assert not gc.is_tracked(STORE)
        assert not gc.is_tracked(NESTED)
        after = count_types()
        grown = _growth(before, after)
        assert grown["bytearray"] == 2000 + 300
        assert grown["int"] == 2000  # the keys; none is a cached small int
        assert grown["tuple"] >= 1
    finally:
        STORE.clear()
        NESTED.clear()


def _shapes(rows: int = 2000) -> list[object]:
    """Records with strings, nested tuples of atoms, dicts of ints to buffers, shared items."""
    shared = "shared-" + "string"
    kept: list[object] = []
    for i in range(rows):
        row = Row(f"n{i}")
        row.__dict__.update(tags=(i, f"t{i}", (i, 2.5)), meta={i: bytearray(8)})
        kept.extend([row, [shared, i * 1000, b"x" * (i % 7)]])
    kept.append({1: (2, (3, "deep"))})
    return kept


def test_both_paths_count_alike() -> None:
    kept = _shapes()
    if not NATIVE:
        pytest.skip("one path only here: memguard's extension is not built or switched off")
    gc.collect()
    tracked = gc.get_objects()
    try:
        for untracked in (True, False):
            native = objects._census(tracked, untracked, native=True)
            python = objects._census(tracked, untracked, native=False)
            assert native == python, {k: (native[k], python[k]) for k in native | python
                                      if native[k] != python[k]}
    finally:
        del tracked
    assert len(kept) == 4001


def _traced_census() -> tuple[int, int]:
    """(traced bytes of ``gc.get_objects()``'s list alone, traced peak of a census) now."""
    gc.collect()
    before, _ = tracemalloc.get_traced_memory()
    gc.get_objects()  # the list alone, freed at once
    _, listed = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    count_types(collect=False)
    _, peak = tracemalloc.get_traced_memory()
    return listed - before, peak - before


def test_a_census_under_a_trace_allocates_nothing_per_object(census_path: str) -> None:
    """A trace running meanwhile sees the list of tracked objects, and little else.

    Two censuses under one trace, before and after the program makes 60,000
    more tracked objects. ``gc.get_objects()``'s list grows by 8 B for each,
    traced like any list. The extension's walk makes no Python object per
    object counted (its tables are libc's): its traced peak grows by the
    list's growth and at most 64 KiB. (The walk over memguard's own objects,
    to leave them out, is the same in both: it depends on what other tests
    left alive, not on the program's heap.) The interpreter's path builds
    lists of types and numbers per object (it is the slower one under a
    trace: issue 19): several MB more here.
    """
    tracemalloc.start()
    try:
        list_before, peak_before = _traced_census()
        kept = _shapes(20_000)
        list_after, peak_after = _traced_census()
    finally:
        tracemalloc.stop()
    allowed = (list_after - list_before) + 64 * 1024
    if census_path == "native":
        assert peak_after - peak_before <= allowed, (peak_after - peak_before, allowed)
    else:
        assert peak_after - peak_before > allowed
    assert len(kept) == 40_001
