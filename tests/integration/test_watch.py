"""watch() and expect_collected(): real objects that must be freed, real holders.

The holders live in the ``shopapp`` package next to this file; every failure
message and chain is asserted as exact text.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import sys
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from shopapp import registry
from shopapp.registry import Session

import memguard
from memguard import LeakDetected, Survivor, WatchReport

# Every holder search here has no time budget (max_seconds=None): it ends on
# its depth bound alone, so the chains asserted do not depend on the load.
watch = functools.partial(memguard.watch, max_seconds=None)
expect_collected = functools.partial(memguard.expect_collected, max_seconds=None)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    registry.reset()
    yield
    registry.reset()


def here(offset: int = 0) -> str:
    """``file:line`` of the caller's line, plus *offset* lines."""
    frame = sys._getframe(1)
    return f"{frame.f_code.co_filename}:{frame.f_lineno + offset}"


def test_object_freed_normally_passes() -> None:
    with watch() as w:
        session = w.add(Session())
        del session
    assert w.report is not None
    assert w.report == WatchReport(label=w.report.label, watched=1, survivors=(),
                                   search_seconds=0.0)
    assert w.report.summary.endswith(": the watched object was freed")


def test_the_blocks_own_variable_is_not_a_leak() -> None:
    with watch() as w:
        session = w.add(Session())
        session.user = "bob"
    assert w.report is not None
    assert (w.report.watched, w.report.collected) == (1, 1)


def test_collectable_cycle_passes() -> None:
    with watch() as w:
        a, b = w.add(Session("a")), w.add(Session("b"))
        a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
    assert w.report is not None
    assert w.report.collected == 2


def test_collectable_cycle_passes_with_gc_disabled_and_gc_stays_disabled() -> None:
    gc.disable()
    try:
        with watch() as w:
            a = w.add(Session("a"))
            a.self = a  # type: ignore[attr-defined]
            del a
        assert gc.isenabled() is False
        assert w.report is not None
        assert w.report.collected == 1
    finally:
        gc.enable()


def test_bound_method_in_a_registry_fails_with_the_chain() -> None:
    with pytest.raises(LeakDetected) as caught, watch() as w:
        with_line = here(-1)
        session = w.add(Session(), name="session")
        registry.HANDLERS["click"] = [print, print, print]
        registry.register(session)
    report = caught.value.report
    assert isinstance(report, WatchReport)
    assert report.label == with_line
    (survivor,) = report.survivors
    assert survivor.chain == ("shopapp.registry.HANDLERS", "['click']", "[3]",
                              "<bound method Session.on_click>", "Session")
    assert survivor.type_name == "shopapp.registry.Session"
    assert survivor.object_repr.startswith("<shopapp.registry.Session object at 0x")
    assert str(caught.value) == (
        f"1 of 1 watched object survived gc.collect() in {report.label}:\n"
        f"  session: shopapp.registry.Session {survivor.object_repr}\n"
        "    held by shopapp.registry.HANDLERS['click'][3] -> "
        "<bound method Session.on_click> -> Session"
    )
    assert isinstance(caught.value, AssertionError)
    assert caught.value.label == report.label
    assert w.report is report


def test_module_global_list_and_class_attribute() -> None:
    with pytest.raises(LeakDetected) as caught, watch(label="two holders") as w:
        first, second, third = w.add(Session()), w.add(Session()), w.add(Session())
        registry.ITEMS.append(first)
        Session.instances.append(third)
        del first, second, third
    report = caught.value.report
    assert [(s.name, s.holder) for s in report.survivors] == [
        ("#1", "shopapp.registry.ITEMS[0] -> Session"),
        ("#3", "shopapp.registry.Session.instances[0] -> Session"),
    ]
    assert report.summary == "two holders: 2 of 3 watched objects survived gc.collect()"


def test_closure_cell() -> None:
    with pytest.raises(LeakDetected) as caught, watch() as w:
        session = w.add(Session())
        registry.HANDLERS["close"] = [registry.make_handler(session)]
    assert caught.value.report.survivors[0].holder == (
        "shopapp.registry.HANDLERS['close'][0] -> <function make_handler.<locals>.handler>"
        " -> closure variable session -> Session"
    )


def test_thread_local() -> None:
    with pytest.raises(LeakDetected) as caught, watch() as w:
        registry.STATE.session = w.add(Session())
    assert caught.value.report.survivors[0].holder == (
        "shopapp.registry.STATE.session (thread-local) -> Session"
    )


def test_another_threads_frame() -> None:
    ready, done = threading.Event(), threading.Event()
    w = watch(label="worker")

    def worker() -> None:
        session = w.add(Session("bob"))
        ready.set()
        done.wait(10)
        del session

    thread = threading.Thread(target=worker, name="watch-worker")
    thread.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LeakDetected) as caught:
            w.check()
    finally:
        done.set()
        thread.join()
    assert caught.value.report.survivors[0].holder == (
        "thread 'watch-worker' test_another_threads_frame.<locals>.worker() local session"
        " -> Session"
    )
    assert w.check().collected == 1


def test_a_local_container_in_the_block_is_a_holder() -> None:
    with pytest.raises(LeakDetected) as caught, watch() as w:
        session = w.add(Session())
        kept = [session]
    assert caught.value.report.survivors[0].holder == (
        "thread 'MainThread' test_a_local_container_in_the_block_is_a_holder() local kept[0]"
        " -> Session"
    )
    del kept


def test_block_that_raises_is_not_checked() -> None:
    with pytest.raises(KeyError, match="boom"), watch() as w:
        registry.ITEMS.append(w.add(Session()))
        raise KeyError("boom")
    assert w.report is None


def test_watch_keeps_only_weak_references() -> None:
    w = watch()
    session = w.add(Session())
    ref = weakref.ref(session)
    del session
    assert ref() is None
    assert w.check().collected == 1


def test_check_can_run_again_after_the_holder_lets_go() -> None:
    w = watch()
    registry.ITEMS.append(w.add(Session()))
    with pytest.raises(LeakDetected):
        w.check()
    registry.ITEMS.clear()
    assert w.check().collected == 1


def test_bound_method_is_watched_through_its_object() -> None:
    w = watch()
    session = Session()
    w.add(session.on_click, name="handler")
    registry.ITEMS.append(session)
    del session
    with pytest.raises(LeakDetected) as caught:
        w.check()
    assert caught.value.report.survivors[0].name == "handler"
    assert caught.value.report.survivors[0].type_name == "method"
    registry.ITEMS.clear()
    assert w.check().collected == 1


def test_expect_collected_object_passes_when_only_the_caller_holds_it() -> None:
    session = Session()
    report = expect_collected(session, label="only mine")
    assert report.summary == "only mine: the watched object was freed"


def test_expect_collected_object_held_by_a_class_attribute() -> None:
    session = Session()
    Session.instances.append(session)
    with pytest.raises(LeakDetected) as caught:
        expect_collected(session, label="close()")
    assert str(caught.value) == (
        "1 of 1 watched object survived gc.collect() in close():\n"
        f"  #1: shopapp.registry.Session {caught.value.report.survivors[0].object_repr}\n"
        "    held by shopapp.registry.Session.instances[0] -> Session"
    )
    Session.instances.clear()
    assert expect_collected(session).collected == 1


def test_expect_collected_weak_reference_must_be_dead() -> None:
    session = Session()
    ref = weakref.ref(session)
    registry.SEEN.add(session)
    del session
    with pytest.raises(LeakDetected) as caught:
        expect_collected(ref)
    assert caught.value.report.survivors[0].holder == (
        "shopapp.registry.SEEN (set member) -> Session"
    )
    registry.SEEN.clear()
    assert expect_collected(ref).collected == 1


def test_expect_collected_default_label_is_the_callers_line() -> None:
    registry.ITEMS.append(Session())
    with pytest.raises(LeakDetected) as caught:
        line = here(1)
        expect_collected(registry.ITEMS[0])
    assert caught.value.label == line


def test_broken_repr_does_not_break_the_report() -> None:
    with pytest.raises(LeakDetected) as caught, watch() as w:
        registry.ITEMS.append(w.add(registry.BrokenRepr()))
    survivor = caught.value.report.survivors[0]
    assert survivor.object_repr == "<BrokenRepr object (repr failed: RuntimeError)>"
    assert survivor.holder == "shopapp.registry.ITEMS[0] -> BrokenRepr"


@pytest.mark.parametrize(
    ("value", "kind", "hint"),
    [
        ([1, 2], "list", "watch the object that owns it"),
        ({"a": 1}, "dict", "watch the object that owns it"),
        (12345678901234567890, "int", "watch the object that owns it"),
        ("text", "str", "watch the object that owns it"),
        (registry.NoWeakref(), "shopapp.registry.NoWeakref", "add '__weakref__' to its __slots__"),
    ],
)
def test_object_that_cannot_be_weakly_referenced(value: Any, kind: str, hint: str) -> None:
    w = watch()
    with pytest.raises(TypeError) as caught:
        w.add(value)
    assert str(caught.value).startswith(
        f"cannot watch a {kind} object: {kind} does not support weak references"
    )
    assert hint in str(caught.value)
    with pytest.raises(TypeError, match=f"cannot watch a {kind} object"):
        expect_collected(value)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="top must be a non-negative int, got -1"):
        memguard.watch(top=-1)
    with pytest.raises(ValueError, match="max_depth must be a positive int, got 0"):
        memguard.watch(max_depth=0)
    with pytest.raises(ValueError, match="max_seconds must be a positive number, got 0"):
        memguard.watch(max_seconds=0)
    with pytest.raises(TypeError, match="label must be a string, not int"):
        memguard.watch(label=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a string, not int"):
        memguard.watch().add(Session(), name=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs at least one object"):
        memguard.expect_collected()


def test_with_block_cannot_be_reentered() -> None:
    w = watch()
    with w, pytest.raises(RuntimeError, match="already in use"), w:
        pass


def test_top_limits_the_survivors_listed() -> None:
    with pytest.raises(LeakDetected) as caught, watch(label="many", top=2) as w:
        for _ in range(4):
            registry.ITEMS.append(w.add(Session()))
    lines = str(caught.value).splitlines()
    assert lines[0] == "4 of 4 watched objects survived gc.collect() in many:"
    assert lines[2:] == [
        "    held by shopapp.registry.ITEMS[0] -> Session",
        lines[3],
        "    held by shopapp.registry.ITEMS[1] -> Session",
        "  ... 2 more",
    ]
    assert len(caught.value.report.survivors) == 4


def test_survivor_value_round_trips() -> None:
    with pytest.raises(LeakDetected) as caught, watch() as w:
        registry.ITEMS.append(w.add(Session()))
    report = caught.value.report
    assert WatchReport.from_dict(report.to_dict()) == report
    assert isinstance(report.survivors[0], Survivor)


def test_module_level_code_its_own_global_is_not_a_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    # A script, a notebook cell or a docs page: the caller's variables are globals.
    module = types.ModuleType("watchscript")
    monkeypatch.setitem(sys.modules, "watchscript", module)
    source = (
        "import memguard\n"
        "class Session: ...\n"
        "session = Session()\n"
        "report = memguard.expect_collected(session)\n"
        "with memguard.watch() as w:\n"
        "    other = w.add(Session())\n"
        "KEPT = [session]\n"
        "try:\n"
        "    memguard.expect_collected(session)\n"
        "except memguard.LeakDetected as error:\n"
        "    holder = error.report.survivors[0].holder\n"
    )
    try:
        exec(compile(source, "<watchscript>", "exec"), module.__dict__)
        assert module.report.collected == 1
        assert module.w.report.collected == 1
        assert module.holder == "watchscript.KEPT[0] -> Session"
    finally:
        module.__dict__.clear()


def test_watch_entered_through_an_exit_stack() -> None:
    with contextlib.ExitStack() as stack:
        w = stack.enter_context(watch())
        session = w.add(Session())
        session.user = "bob"
    assert w.report is not None
    assert w.report.collected == 1
    with pytest.raises(LeakDetected) as caught, contextlib.ExitStack() as stack:
        entered_at = here(1)
        w = stack.enter_context(watch())
        registry.ITEMS.append(w.add(Session()))
    assert caught.value.report.survivors[0].holder == "shopapp.registry.ITEMS[0] -> Session"
    assert caught.value.label == entered_at


def test_add_accepts_a_weak_reference() -> None:
    w = watch()
    session = Session()
    registry.ITEMS.append(session)
    w.add(weakref.ref(session), name="by ref")
    del session
    with pytest.raises(LeakDetected) as caught:
        w.check()
    assert str(caught.value.report.survivors[0]) == (
        "by ref (shopapp.registry.Session) held by shopapp.registry.ITEMS[0] -> Session"
    )
    registry.ITEMS.clear()
    assert w.check().collected == 1
