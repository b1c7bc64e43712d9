"""memguard.holders: the chain of references from a root to an object, on real objects.

Every chain is asserted as exact text. The holders are real: module globals
of the ``shopapp`` package next to this file, class attributes, closures,
generators, tracebacks, thread-locals and other threads' frames.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from shopapp import registry
from shopapp.registry import Session

from memguard.holders import (
    describe,
    find_holder_chain,
    format_chain,
    safe_repr,
    search_holders,
)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    registry.reset()
    yield
    registry.reset()


# Every search here has no time budget (max_seconds=None): it ends on its
# depth bound alone, so what it finds does not depend on the machine's load.
# The time budget itself is tested once, on a search that cannot end in it.
UNTIMED: dict[str, Any] = {"max_seconds": None}


def chain_of(obj: object, **options: Any) -> str:
    """The chain as text; the test's own variable (and this helper's) are not holders."""
    options = {**UNTIMED, **options}
    result = search_holders(obj, excused_frames=(sys._getframe(), sys._getframe(1)), **options)
    assert result.steps is not None, result.text
    return format_chain(result.steps)


def test_bound_method_in_a_global_registry() -> None:
    session = Session()
    registry.HANDLERS["click"] = [print, print, print]
    registry.register(session)
    steps = find_holder_chain(session, max_seconds=None)
    assert steps == ("shopapp.registry.HANDLERS", "['click']", "[3]",
                     "<bound method Session.on_click>", "Session")
    assert format_chain(steps) == (
        "shopapp.registry.HANDLERS['click'][3] -> <bound method Session.on_click> -> Session"
    )


def test_module_global_list_and_dict() -> None:
    session = Session()
    registry.ITEMS.extend([1, 2, session])
    assert chain_of(session) == "shopapp.registry.ITEMS[2] -> Session"
    registry.ITEMS.clear()
    registry.HANDLERS["by-user"] = [session]  # type: ignore[list-item]
    assert chain_of(session) == "shopapp.registry.HANDLERS['by-user'][0] -> Session"


def test_class_attribute() -> None:
    session = Session()
    Session.instances.append(session)
    assert chain_of(session) == "shopapp.registry.Session.instances[0] -> Session"


def test_closure_cell() -> None:
    session = Session()
    registry.HANDLERS["close"] = [registry.make_handler(session)]
    assert chain_of(session) == (
        "shopapp.registry.HANDLERS['close'][0] -> <function make_handler.<locals>.handler>"
        " -> closure variable session -> Session"
    )


def test_instance_attribute_and_slot() -> None:
    session = Session()
    registry.ITEMS.append(registry.Cart(session))
    assert chain_of(session) == "shopapp.registry.ITEMS[0].item -> Session"
    registry.ITEMS[0] = registry.Slotted(session)
    assert chain_of(session) == "shopapp.registry.ITEMS[0].item -> Session"


def test_set_member_and_dict_key() -> None:
    session = Session()
    registry.SEEN.add(session)
    assert chain_of(session) == "shopapp.registry.SEEN (set member) -> Session"
    registry.SEEN.clear()
    registry.BY_SESSION[session] = 1
    assert chain_of(session) == "shopapp.registry.BY_SESSION (dict key) -> Session"


def test_thread_local() -> None:
    session = Session()
    registry.STATE.session = session
    assert chain_of(session) == "shopapp.registry.STATE.session (thread-local) -> Session"


def test_suspended_generator_local() -> None:
    session = Session()
    stream = registry.stream(session)
    next(stream)
    registry.ITEMS.append(stream)
    del stream
    assert chain_of(session) == (
        "shopapp.registry.ITEMS[0] -> <generator stream> local session -> Session"
    )


def test_stored_exception_keeps_its_frames() -> None:
    session = Session()
    try:
        registry.fail(session)
    except ValueError as error:
        registry.ITEMS.append(error)
    error_kept = registry.ITEMS[0]
    lineno = error_kept.__traceback__.tb_next.tb_lineno
    del error_kept
    assert chain_of(session) == (
        "shopapp.registry.ITEMS[0].__traceback__.tb_next.tb_frame -> "
        f"<frame fail at {registry.__file__}:{lineno}> local session -> Session"
    )


def test_another_threads_frame() -> None:
    ready, done = threading.Event(), threading.Event()
    refs: list[weakref.ref[Session]] = []

    def worker() -> None:
        session = Session("bob")
        refs.append(weakref.ref(session))
        ready.set()
        done.wait(10)

    thread = threading.Thread(target=worker, name="holder-worker")
    thread.start()
    try:
        assert ready.wait(10)
        session = refs[0]()
        assert session is not None
        assert chain_of(session) == (
            "thread 'holder-worker' test_another_threads_frame.<locals>.worker() "
            "local session -> Session"
        )
        del session
    finally:
        done.set()
        thread.join()
    assert refs[0]() is None


def test_the_callers_own_variable_is_not_a_holder_but_its_other_locals_are() -> None:
    session = Session()
    assert find_holder_chain(session, max_seconds=None) is None
    sessions = [session]
    assert chain_of(session) == (
        "thread 'MainThread' test_the_callers_own_variable_is_not_a_holder_but_its_other_"
        "locals_are() local sessions[0] -> Session"
    )
    del sessions


def test_a_global_root_is_preferred_to_a_frame_local() -> None:
    session = Session()
    sessions = [session]
    registry.ITEMS.append(sessions)
    assert chain_of(session) == "shopapp.registry.ITEMS[0][0] -> Session"


def test_search_keeps_no_reference() -> None:
    session = Session()
    registry.ITEMS.append(session)
    before = sys.getrefcount(session)
    assert chain_of(session) == "shopapp.registry.ITEMS[0] -> Session"
    assert sys.getrefcount(session) == before
    ref = weakref.ref(session)
    del session
    registry.ITEMS.clear()
    assert ref() is None


def test_frame_locals_read_by_the_search_do_not_keep_values() -> None:
    # Python < 3.13 builds a frame's locals dict on f_locals; memguard clears it
    # again, or the dict would keep a variable's old value after `del`.
    session = Session()
    ref = weakref.ref(session)
    holder = [session]
    assert chain_of(session).endswith("local holder[0] -> Session")
    del session, holder
    assert ref() is None


def test_search_does_not_name_its_own_bookkeeping() -> None:
    session = Session()
    registry.ITEMS.append(session)
    result = search_holders(session, max_seconds=None)
    assert result.status == "found"
    assert result.text == "shopapp.registry.ITEMS[0] -> Session"
    # Everything examined was a real holder; the search's lists are not among them.
    assert result.examined <= 3


def test_unreachable_object_has_no_chain() -> None:
    result = search_holders(Session(), max_seconds=None)
    assert result.steps is None
    assert result.status == "exhausted"
    assert result.text.startswith("no holder reachable from a root")


def test_depth_bound() -> None:
    session = Session()
    chain: list[Any] = [session]
    for _ in range(30):
        chain = [chain]
    registry.ITEMS.append(chain)
    del chain
    # No time budget: on the heap of a whole test session, 32 passes over it
    # can take more than the default second, more still on a busy machine.
    result = search_holders(session, max_depth=10, max_seconds=None,
                            excused_frames=(sys._getframe(),))
    assert (result.steps, result.status, result.depth) == (None, "depth", 10)
    assert result.text.startswith("no holder chain found within 10 steps")
    expected = "shopapp.registry.ITEMS[0]" + "[0]" * 31 + " -> Session"
    assert chain_of(session, max_depth=40) == expected


def test_time_bound_on_a_large_heap() -> None:
    heap = [{"n": i} for i in range(400_000)]
    session = Session()
    chain: list[Any] = [session]
    for _ in range(200):
        chain = [chain]
    registry.ITEMS.append(chain)
    del chain
    # 202 passes over a heap of 400,000 dicts and more: seconds of work on any
    # machine, so a budget of 0.1 s always ends the search first. How closely
    # the budget is kept depends on the machine's load: not asserted here.
    result = search_holders(session, max_depth=500, max_seconds=0.1,
                            excused_frames=(sys._getframe(),))
    assert result.status == "time"
    assert result.steps is None
    assert result.depth < 202
    assert result.elapsed_seconds >= 0.1
    assert result.text.startswith("no holder chain found within 0.1")
    del heap


def test_bad_bounds() -> None:
    with pytest.raises(ValueError, match="max_depth must be at least 1, got 0"):
        find_holder_chain(object(), max_depth=0)
    with pytest.raises(ValueError, match="max_seconds must be positive, got -1"):
        find_holder_chain(object(), max_seconds=-1)


def test_format_chain_attaches_edges() -> None:
    assert format_chain(("a.B", "['k']", ".x", " (set member)", "<function f>", "C")) == (
        "a.B['k'].x (set member) -> <function f> -> C"
    )
    assert format_chain(()) == ""


def test_describe_and_safe_repr() -> None:
    session = Session()
    assert describe(session.on_click) == "<bound method Session.on_click>"
    assert describe(registry.make_handler) == "<function make_handler>"
    assert describe(registry) == "shopapp.registry"
    assert describe(Session) == "shopapp.registry.Session"
    assert describe(session) == "Session"
    assert describe([].append) == "<built-in method append of list>"
    assert safe_repr(registry.BrokenRepr()) == (
        "<BrokenRepr object (repr failed: RuntimeError)>"
    )
    assert safe_repr("a\nb  c") == "'a\\nb  c'"
    assert safe_repr(registry.MultiLine()) == "first line second line"
    assert safe_repr(list(range(100)), limit=20) == "[0, 1, 2, 3, 4, ...]"


def test_path_through_a_bound_methods_object() -> None:
    session, partner = Session("ann"), Session("bob")
    partner.partner = session  # type: ignore[attr-defined]
    registry.HANDLERS["click"] = [partner.on_click]
    del partner
    assert chain_of(session) == (
        "shopapp.registry.HANDLERS['click'][0] -> <bound method Session.on_click>"
        " -> Session.partner -> Session"
    )


def test_holders_gc_does_not_track() -> None:
    # A dict of bytes and a tuple of strings are not tracked by gc, so
    # gc.get_referrers cannot see them; the search finds them anyway.
    page = bytes(range(256)) * 4
    registry.PAGES["/home"] = page
    assert not gc.is_tracked(registry.PAGES)
    assert chain_of(page) == "shopapp.registry.PAGES['/home'] -> bytes"
    name = "".join(["sess", "ion-", "42"])
    registry.ITEMS.append(("user", name))
    gc.collect()  # untracks the tuple of strings
    assert not gc.is_tracked(registry.ITEMS[0])
    assert chain_of(name) == "shopapp.registry.ITEMS[0][1] -> str"


def test_search_while_another_thread_changes_the_heap() -> None:
    stop = threading.Event()

    def churn() -> None:
        count = 0
        while not stop.is_set():
            registry.BY_SESSION[Session()] = count
            registry.SEEN.add(Session())
            count += 1
            if count % 50 == 0:
                registry.BY_SESSION.clear()
                registry.SEEN.clear()
                time.sleep(0.0005)

    session = Session()
    registry.HANDLERS["click"] = [session.on_click]
    thread = threading.Thread(target=churn, name="churn")
    thread.start()
    try:
        for _ in range(5):
            assert chain_of(session) == (
                "shopapp.registry.HANDLERS['click'][0] -> <bound method Session.on_click>"
                " -> Session"
            )
    finally:
        stop.set()
        thread.join()


def test_a_locals_dict_the_caller_keeps_is_left_alone() -> None:
    session = Session()
    kept = [session]
    namespace = locals()  # before 3.13 this is the frame's own locals dict
    assert chain_of(session).endswith("local kept[0] -> Session")
    assert namespace["kept"] is kept


def test_weak_key_dictionary_value() -> None:
    session, key = Session("ann"), Session("key")
    table: weakref.WeakKeyDictionary[Session, Session] = weakref.WeakKeyDictionary()
    table[key] = session
    registry.ITEMS.append(table)
    del table
    assert chain_of(session) == (
        "shopapp.registry.ITEMS[0].data[<weakref to Session>] -> Session"
    )


def test_code_constants_are_not_holders() -> None:
    constant = registry.banner()
    assert search_holders(constant, excused_frames=(sys._getframe(),),
                          max_seconds=None).status == "exhausted"
    registry.ITEMS.append(constant)
    assert chain_of(constant) == "shopapp.registry.ITEMS[0] -> str"
    assert chain_of(registry.make_handler.__doc__) == (
        "shopapp.registry.make_handler.__doc__ -> str"
    )


def test_untracked_class_and_instance_attribute_caches() -> None:
    price = bytes(range(200))
    registry.Cart.prices["apple"] = price
    assert chain_of(price) == "shopapp.registry.Cart.prices['apple'] -> bytes"
    registry.Cart.prices.clear()
    registry.CART.item = {"page": price}
    assert not gc.is_tracked(registry.CART.item)
    assert chain_of(price) == "shopapp.registry.CART.item['page'] -> bytes"


def test_untracked_holder_deep_in_the_heap() -> None:
    # Beyond module globals' own attributes: found by the pass over all referents.
    page = bytes(range(100)) * 3
    registry.ITEMS.append(registry.Cart({"page": page}))
    assert chain_of(page) == "shopapp.registry.ITEMS[0].item['page'] -> bytes"
