"""Hostile objects in the measured code: broken dunders, no weakrefs, huge heaps, odd gc, tracing.

The measured code's objects may have a ``__repr__``, ``__eq__``,
``__hash__`` or ``__sizeof__`` that raises, may refuse weak references,
may sit in a container of a million items, and may run with ``gc``
disabled or tracemalloc already tracing 100 frames. Snapshots, diffs, leak
checks, ``expect_collected``, holder chains and every report format still
come out, and say what they could not do instead of failing.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

import memguard
from memguard import LeakDetected, report
from memguard.holders import find_holder_chain, format_chain
from tests.reliability._ledger import tried

FORMATS = ("text", "markdown", "json", "html")


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr refused")


class BadEq:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq refused")

    __hash__ = object.__hash__


class BadHash:
    def __hash__(self) -> int:
        raise RuntimeError("hash refused")


class BadSizeof:
    def __sizeof__(self) -> int:
        raise RuntimeError("sizeof refused")


class NoWeakref:
    __slots__ = ("payload",)

    def __init__(self) -> None:
        self.payload = bytearray(64)


class BadEverything:
    """Every dunder memguard could touch raises, and no weak references."""

    __slots__ = ("payload",)

    def __init__(self) -> None:
        self.payload = bytearray(64)

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq refused")

    def __hash__(self) -> int:
        raise RuntimeError("hash refused")

    def __sizeof__(self) -> int:
        raise RuntimeError("sizeof refused")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"getattr {name} refused")


HOSTILE = (BadRepr, BadEq, BadHash, BadSizeof, NoWeakref, BadEverything)
HOARD: list[object] = []


@pytest.fixture(autouse=True)
def _empty_hoard() -> Iterator[None]:
    yield
    HOARD.clear()


def _renders(value: object) -> None:
    for fmt in FORMATS:
        text = report.render(value, fmt)  # type: ignore[arg-type]
        assert text.strip(), fmt


@pytest.mark.parametrize("kind", HOSTILE, ids=lambda k: k.__name__)
def test_leak_of_hostile_objects_is_reported(kind: type) -> None:
    """A function that keeps one hostile object per call: the leak is found, its report renders.

    A sample whose ``repr`` raises is shown as ``<T object (repr failed: E)>``;
    a holder search that fails says so in the sample line.
    """
    tried()
    with pytest.raises(LeakDetected) as info:
        memguard.track_leaks(repeat=30, warmup=2, signals=["python", "objects"]).check(
            lambda: HOARD.append(kind()))
    leak = info.value.report
    # What was found: one hostile object kept per call, over the 30 calls asked for.
    objects = next(s for s in leak.signals if s.name == "objects")
    assert objects.leaked
    assert abs(objects.per_call - 1.0) < 0.05, objects
    assert leak.iterations == 30
    assert leak.message()
    assert any(name.endswith(kind.__name__) for name, _ in leak.types), leak.types
    if kind in (BadRepr, BadEverything):  # the sample says its repr failed, and why
        assert "repr failed: RuntimeError" in (leak.sample or ""), leak.sample
    _renders(leak)


@pytest.mark.parametrize("kind", HOSTILE, ids=lambda k: k.__name__)
def test_single_run_keeping_hostile_objects(kind: type) -> None:
    """``with track_leaks()`` around a block that keeps 50 hostile objects: found and rendered."""
    tried()
    with pytest.raises(LeakDetected) as info, memguard.track_leaks(signals=["objects"]):
        HOARD.extend(kind() for _ in range(50))
    assert info.value.report.leaked
    _renders(info.value.report)


def test_snapshot_and_diff_with_hostile_objects_alive() -> None:
    """Snapshots (with census) and their diff while hostile objects of every kind are alive."""
    tracemalloc.start()
    try:
        first = memguard.snapshot("before")
        HOARD.extend(kind() for kind in HOSTILE for _ in range(100))
        second = memguard.snapshot("after")
    finally:
        tracemalloc.stop()
    tried(len(HOARD))
    change = memguard.diff(first, second)
    types = dict(second.types or ())
    for kind in HOSTILE:
        assert types[f"{__name__}.{kind.__name__}"] >= 100
    for value in (first, second, change):
        _renders(value)


@pytest.mark.parametrize("kind", [BadRepr, BadEq, BadHash, BadSizeof, BadEverything],
                         ids=lambda k: k.__name__)
def test_holder_chain_through_hostile_objects(kind: type) -> None:
    """The holder chain of an object held through a hostile object's dict or slot."""
    tried()

    class Target:
        pass

    target = Target()
    holder = kind()
    if hasattr(type(holder), "__slots__"):
        object.__setattr__(holder, "payload", [target])
    else:
        holder.__dict__["ref"] = target
    HOARD.append(holder)
    ref = __import__("weakref").ref(target)
    del target
    chain = find_holder_chain(ref(), max_seconds=None)  # type: ignore[arg-type]
    assert chain is not None
    assert "HOARD" in format_chain(chain)


@pytest.mark.parametrize("kind", [BadRepr, BadEq, BadHash, BadSizeof],
                         ids=lambda k: k.__name__)
def test_expect_collected_on_held_hostile_objects(kind: type) -> None:
    """expect_collected on a hostile object a global holds: a leak report naming the holder."""
    tried()
    HOARD.append(kind())
    ref = __import__("weakref").ref(HOARD[-1])
    with pytest.raises(LeakDetected) as info:
        memguard.expect_collected(ref)
    assert "HOARD" in str(info.value)


def test_objects_without_weakref_support_say_so() -> None:
    """watch().add() or expect_collected() of an object without weakref support: a TypeError.

    The message names the type and says to add ``__weakref__`` to its
    ``__slots__``: memguard cannot tell when such an object is freed.
    """
    tried()
    with memguard.watch() as watched, pytest.raises(TypeError, match="NoWeakref"):
        watched.add(NoWeakref())
    with pytest.raises(TypeError, match="does not support weak references"):
        memguard.expect_collected(NoWeakref())


def test_a_million_item_list_on_the_heap() -> None:
    """A 1M-item list alive: snapshot census, a clean leak check and a single run still answer."""
    big = [object() for _ in range(1_000_000)]
    HOARD.append(big)
    tried()
    snap = memguard.snapshot(census=True)
    assert dict(snap.types or ())["object"] >= 1_000_000
    assert memguard.track_leaks(repeat=20, warmup=1).check(lambda: None).leaked is False
    with memguard.track_leaks() as leaks:
        pass
    assert leaks.report is not None
    assert leaks.report.leaked is False
    del big


def test_leak_check_with_gc_disabled() -> None:
    """``gc.disable()`` in force: a leak is still found and gc is left disabled."""
    tried()
    gc.disable()
    try:
        with pytest.raises(LeakDetected):
            memguard.track_leaks(repeat=30, warmup=2).check(lambda: HOARD.append(BadRepr()))
        with pytest.raises(LeakDetected), memguard.track_leaks():
            HOARD.extend(BadEq() for _ in range(50))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_everything_under_100_frame_tracing() -> None:
    """tracemalloc started by the user with 100 frames: every guard works and leaves it running."""
    tracemalloc.start(100)
    try:
        with pytest.raises(LeakDetected):
            memguard.track_leaks(repeat=30, warmup=2).check(lambda: HOARD.append(bytes(2048)))
        with memguard.record() as recording:
            block = bytearray(500_000)
            del block
        snap = memguard.snapshot(census=False)
        profile = memguard.profile_lines(lambda: bytearray(10_000))
        tried(4)
        assert recording.traced_peak_above_start_bytes >= 500_000
        assert snap.traceback_limit == 100
        assert tracemalloc.is_tracing()
        assert tracemalloc.get_traceback_limit() == 100
        for value in (recording.timeline, snap, profile):
            for fmt in ("text", "markdown"):
                assert report.render(value, fmt).strip()
    finally:
        tracemalloc.stop()
    # HTML and JSON after tracing: HTML imports matplotlib for its charts, which
    # takes a minute under 100-frame tracing (the import's cost, not memguard's).
    for value in (recording.timeline, snap, profile):
        _renders(value)
