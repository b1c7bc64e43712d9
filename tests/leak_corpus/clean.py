"""Clean scenarios: look-alikes of leaks that keep nothing across calls in steady state."""

from __future__ import annotations

import asyncio
import collections
import ctypes
import functools
import importlib
import logging
import os
import shutil
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .base import Scenario
from .leaky import _libc

# -- warm-up cache: filled on the first call only -------------------------------------------------
_TABLE: dict[int, str] = {}


def warm_cache() -> str:
    if not _TABLE:
        _TABLE.update((i, f"entry-{i}") for i in range(2000))
    return _TABLE[1234]


# -- lru_cache(maxsize=128) filling, then evicting ------------------------------------------------
_lru_calls = [0]


@functools.lru_cache(maxsize=128)
def _render(n: int) -> str:
    return f"<li>{n}</li>" * 4


def lru_bounded() -> None:
    _lru_calls[0] += 1
    _render(_lru_calls[0])


def _reset_lru() -> None:
    _render.cache_clear()
    _lru_calls[0] = 0


# -- reference cycles only the collector frees ----------------------------------------------------
class Node:
    """A doubly linked node: parent and child refer to each other."""

    def __init__(self, parent: Node | None = None) -> None:
        self.parent = parent
        self.children: list[Node] = []
        self.payload = bytearray(512)
        if parent is not None:
            parent.children.append(self)


def build_cycles() -> None:
    root = Node()
    for _ in range(20):
        Node(root)


# -- big temporaries, freed before return ---------------------------------------------------------
def big_temporary() -> int:
    block = bytearray(8 * 1024 * 1024)
    items = [str(i) for i in range(2_000)]
    return len(block) + len(items)


# -- allocator fragmentation: small objects churned, a fixed-size table updated -------------------
_TABLE_SLOTS: dict[int, tuple[int, str]] = {}
_frag_calls = [0]


def fragmentation() -> None:
    _frag_calls[0] += 1
    churn = [(i, f"value-{i}") for i in range(1_000)]
    for i in range(0, len(churn), 10):  # survivors land in the middle of the churned pools
        _TABLE_SLOTS[i % 100] = churn[i]
    del churn


# -- interned strings: interned per call, none kept -----------------------------------------------
_intern_calls = [0]


def intern_strings() -> int:
    _intern_calls[0] += 1
    names = [sys.intern(f"field_{_intern_calls[0]}_{i}") for i in range(50)]
    fixed = [sys.intern(f"column_{i}") for i in range(50)]
    return len(names) + len(fixed)


# -- a lazy import on the first call --------------------------------------------------------------
def lazy_import() -> float:
    colorsys = importlib.import_module("colorsys")
    return float(colorsys.rgb_to_hsv(0.2, 0.4, 0.6)[0])


# -- a fixed thread pool, reused ------------------------------------------------------------------
_POOL: list[ThreadPoolExecutor] = []


def pooled_work() -> int:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=2, thread_name_prefix="corpus-pool"))
    futures = [_POOL[0].submit(sum, range(100)) for _ in range(4)]
    return sum(f.result() for f in futures)


def _reset_pool() -> None:
    while _POOL:
        _POOL.pop().shutdown(wait=True)


# -- bounded deque --------------------------------------------------------------------------------
_RECENT: collections.deque[str] = collections.deque(maxlen=50)


def bounded_history() -> None:
    _RECENT.append(f"event-{len(_RECENT)}-" + "x" * 100)


# -- the same logger every call -------------------------------------------------------------------
def same_logger() -> None:
    logging.getLogger("memguard_corpus.fixed").debug("handled")


# -- exceptions raised and handled, not stored ----------------------------------------------------
_LAST_ERROR: list[str] = [""]


def handled_exception() -> None:
    try:
        int("not a number")
    except ValueError as error:
        _LAST_ERROR[0] = str(error)  # only the text, replaced each call


# -- a file opened and closed ---------------------------------------------------------------------
_TMP_DIR: list[str] = []  # made on first use, removed by the reset


def closed_file() -> None:
    if not _TMP_DIR:
        _TMP_DIR.append(tempfile.mkdtemp(prefix="memguard-corpus-clean-"))
    with open(os.path.join(_TMP_DIR[0], "audit.log"), "a") as stream:
        stream.write("x")


def _reset_tmp() -> None:
    while _TMP_DIR:
        shutil.rmtree(_TMP_DIR.pop(), ignore_errors=True)


# -- a thread started and joined ------------------------------------------------------------------
def joined_thread() -> None:
    thread = threading.Thread(target=sum, args=(range(100),), name="corpus-short-worker")
    thread.start()
    thread.join()


# -- numpy temporaries ----------------------------------------------------------------------------
def numpy_temporary() -> float:
    data = np.ones(200_000)
    return float((data * 2).sum())


# -- asyncio tasks discarded when done ------------------------------------------------------------
_TASKS: set[asyncio.Task[None]] = set()
_loop: list[asyncio.AbstractEventLoop] = []


async def _job() -> None:
    await asyncio.sleep(0)


async def _spawn() -> None:
    task = asyncio.get_running_loop().create_task(_job())
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    await task


def discarded_tasks() -> None:
    if not _loop:
        _loop.append(asyncio.new_event_loop())
    _loop[0].run_until_complete(_spawn())


def _reset_loop() -> None:
    _TASKS.clear()
    while _loop:
        _loop.pop().close()


# -- native memory malloc'd and freed -------------------------------------------------------------
def native_freed() -> None:
    size = 64 * 1024
    address = _libc.malloc(size)
    _libc.memset(address, 1, size)
    _libc.free(ctypes.c_void_p(address))


def _reset_frag() -> None:
    _TABLE_SLOTS.clear()
    _frag_calls[0] = 0


def _reset_table() -> None:
    _TABLE.clear()


CLEAN: tuple[Scenario, ...] = (
    Scenario("warmup_cache", "one-time warm-up cache", False, warm_cache, reset=_reset_table),
    Scenario("lru_cache_128", "bounded cache filling (lru_cache(128))", False, lru_bounded,
             reset=_reset_lru),
    Scenario("gc_cycles", "cycles freed by the collector", False, build_cycles),
    Scenario("big_temporaries", "big temporaries freed before return", False, big_temporary),
    Scenario("fragmentation", "allocator fragmentation", False, fragmentation,
             reset=_reset_frag),
    Scenario("interned_strings", "interned strings", False, intern_strings),
    Scenario("lazy_import", "lazy import on the first call", False, lazy_import),
    Scenario("thread_pool", "fixed thread pool reused", False, pooled_work, reset=_reset_pool),
    Scenario("bounded_deque", "bounded deque (maxlen)", False, bounded_history,
             reset=_RECENT.clear),
    Scenario("same_logger", "the same logger each call", False, same_logger),
    Scenario("handled_exception", "exceptions handled, not stored", False, handled_exception),
    Scenario("closed_file", "file opened and closed", False, closed_file, reset=_reset_tmp),
    Scenario("joined_thread", "thread started and joined", False, joined_thread),
    Scenario("numpy_temporary", "numpy temporaries", False, numpy_temporary),
    Scenario("discarded_tasks", "asyncio tasks discarded when done", False, discarded_tasks,
             reset=_reset_loop),
    Scenario("native_freed", "native malloc freed", False, native_freed),
)

