"""Leaky scenarios: each keeps something on every call (or every few calls)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import shutil
import tempfile
import threading
from array import array
from typing import Any, ClassVar

import numpy as np

from .base import Scenario

_GLIBC = ctypes.util.find_library("c") is not None and hasattr(ctypes.CDLL(None), "mallinfo2")

# -- unbounded dict cache -------------------------------------------------------------------------
_RESPONSES: dict[str, bytes] = {}
_requests = [0]


def cache_response() -> None:
    _requests[0] += 1
    key = f"/api/items/{_requests[0]}"
    _RESPONSES[key] = b"{" + key.encode() * 4 + b"}"


def _reset_responses() -> None:
    _RESPONSES.clear()
    _requests[0] = 0


# -- callbacks on a global registry ---------------------------------------------------------------
HANDLERS: dict[str, list[Any]] = {"click": []}


class Session:
    """A per-request object whose bound method is registered and never removed."""

    def __init__(self) -> None:
        self.state = {"clicks": 0}

    def on_click(self) -> None:
        self.state["clicks"] += 1


def register_callback() -> None:
    session = Session()
    HANDLERS["click"].append(session.on_click)


# -- a logger per call ----------------------------------------------------------------------------
_loggers = [0]
_LOGGER_PREFIX = "memguard_corpus.request"


def logger_per_call() -> None:
    _loggers[0] += 1
    logging.getLogger(f"{_LOGGER_PREFIX}.{_loggers[0]}").debug("handled")


def _reset_loggers() -> None:
    manager = logging.Logger.manager
    for name in [n for n in manager.loggerDict if n.startswith("memguard_corpus")]:
        del manager.loggerDict[name]
    _loggers[0] = 0


# -- exceptions stored with their tracebacks ------------------------------------------------------
_ERRORS: list[BaseException] = []


def _parse(text: str) -> int:
    buffer = bytearray(2048)  # held by the frame the traceback keeps
    buffer[0] = 1
    return int(text)


def store_exception() -> None:
    try:
        _parse("not a number")
    except ValueError as error:
        _ERRORS.append(error)


# -- mutable default argument ---------------------------------------------------------------------
def remember(item: str, seen: list[str] = []) -> int:  # noqa: B006 (the leak on purpose)
    seen.append(item)
    return len(seen)


def mutable_default() -> None:
    remember("event-" + str(len(remember.__defaults__[0])))  # type: ignore[index]


def _reset_default() -> None:
    remember.__defaults__[0].clear()  # type: ignore[index]


# -- class-level list -----------------------------------------------------------------------------
class Connection:
    """Every instance registers itself in a class attribute, forever."""

    instances: ClassVar[list[Connection]] = []

    def __init__(self, host: str) -> None:
        self.host = host
        self.buffer = bytearray(256)
        Connection.instances.append(self)


def class_level_list() -> None:
    Connection("db.internal")


# -- a leak every 10th call -----------------------------------------------------------------------
_SLOW_LEAK: list[bytes] = []
_ticks = [0]


def every_tenth_call() -> None:
    _ticks[0] += 1
    if _ticks[0] % 10 == 0:
        _SLOW_LEAK.append(os.urandom(4096))


def _reset_slow() -> None:
    _SLOW_LEAK.clear()
    _ticks[0] = 0


# -- numpy arrays kept ----------------------------------------------------------------------------
_ARRAYS: list[np.ndarray[Any, Any]] = []


def keep_numpy_array() -> None:
    _ARRAYS.append(np.arange(1000, dtype=np.float64))


# -- asyncio tasks kept in a set ------------------------------------------------------------------
_BACKGROUND: set[asyncio.Task[None]] = set()
_loop: list[asyncio.AbstractEventLoop] = []


async def _job() -> None:
    await asyncio.sleep(0)


async def _spawn() -> None:
    task = asyncio.get_running_loop().create_task(_job())
    _BACKGROUND.add(task)  # never discarded when done
    await task


def keep_tasks() -> None:
    if not _loop:
        _loop.append(asyncio.new_event_loop())
    _loop[0].run_until_complete(_spawn())


def _reset_tasks() -> None:
    _BACKGROUND.clear()
    while _loop:
        _loop.pop().close()


# -- native memory: ctypes malloc never freed -----------------------------------------------------
_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]
_libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
_NATIVE = array("Q", bytes(8 * 4096))  # addresses, stored without Python objects
_native_count = [0]


def native_malloc() -> None:
    size = 64 * 1024
    address = _libc.malloc(size)
    _libc.memset(address, 1, size)
    _NATIVE[_native_count[0] % len(_NATIVE)] = address
    _native_count[0] += 1


def _reset_native() -> None:
    for index in range(min(_native_count[0], len(_NATIVE))):
        _libc.free(_NATIVE[index])
        _NATIVE[index] = 0
    _native_count[0] = 0


# -- a file descriptor per call -------------------------------------------------------------------
_OPEN_FILES: list[Any] = []
_FD_DIR: list[str] = []  # made on first use, removed by the reset


def _fd_path() -> str:
    if not _FD_DIR:
        _FD_DIR.append(tempfile.mkdtemp(prefix="memguard-corpus-"))
    return os.path.join(_FD_DIR[0], "leaked-audit.log")


def leak_fd() -> None:
    stream = open(_fd_path(), "a")  # noqa: SIM115 (the leak on purpose)
    stream.write("x")
    stream.flush()
    _OPEN_FILES.append(stream)


def _reset_fds() -> None:
    while _OPEN_FILES:
        _OPEN_FILES.pop().close()
    while _FD_DIR:
        shutil.rmtree(_FD_DIR.pop(), ignore_errors=True)


# -- a thread per call ----------------------------------------------------------------------------
_STOP = threading.Event()
_THREADS: list[threading.Thread] = []


def leak_thread() -> None:
    thread = threading.Thread(target=_STOP.wait, name=f"corpus-stuck-worker-{len(_THREADS)}",
                              daemon=True)
    thread.start()
    _THREADS.append(thread)


def _reset_threads() -> None:
    _STOP.set()
    while _THREADS:
        _THREADS.pop().join()
    _STOP.clear()


# -- 64 bytes per call ----------------------------------------------------------------------------
_TINY: list[bytes] = []


def tiny_leak() -> None:
    _TINY.append(bytes(31))  # a 64-byte object (33-byte header), plus its list slot


# -- closures capturing data ----------------------------------------------------------------------
_DEFERRED: list[Any] = []


def deferred_callbacks() -> None:
    payload = list(range(50))
    _DEFERRED.append(lambda: sum(payload))


# -- set of seen ids ------------------------------------------------------------------------------
_SEEN_IDS: set[str] = set()


def seen_ids() -> None:
    _SEEN_IDS.add(f"request-{len(_SEEN_IDS):08d}-{os.getpid()}")


LEAKY: tuple[Scenario, ...] = (
    Scenario("dict_cache", "unbounded dict cache", True, cache_response, "_RESPONSES",
             _reset_responses, "python"),
    Scenario("registry_callbacks", "callbacks on a global registry", True, register_callback,
             "HANDLERS", HANDLERS["click"].clear, "objects"),
    Scenario("logger_per_call", "logger created per call", True, logger_per_call,
             "loggerDict", _reset_loggers, "objects"),
    Scenario("stored_exceptions", "exceptions with tracebacks stored", True, store_exception,
             "_ERRORS", _ERRORS.clear, "objects"),
    Scenario("mutable_default", "mutable default argument", True, mutable_default,
             "remember", _reset_default, "python"),
    Scenario("class_level_list", "class-level list", True, class_level_list,
             "Connection.instances", Connection.instances.clear, "objects"),
    Scenario("every_tenth_call", "leak every 10th call", True, every_tenth_call, "_SLOW_LEAK",
             _reset_slow, "python"),
    Scenario("numpy_kept", "numpy arrays kept", True, keep_numpy_array, "_ARRAYS",
             _ARRAYS.clear, "python"),
    Scenario("asyncio_tasks", "asyncio tasks kept in a set", True, keep_tasks, "_BACKGROUND",
             _reset_tasks, "objects"),
    # ctypes calls make no profiler event, so the C function cannot be named;
    # the culprit is the series that reads malloc's bytes (RSS without glibc).
    Scenario("ctypes_native", "native malloc never freed", True, native_malloc,
             "malloc" if _GLIBC else "rss", _reset_native, "rss"),
    Scenario("fd_leak", "open file kept per call", True, leak_fd, "leaked-audit.log",
             _reset_fds, "fds"),
    Scenario("thread_leak", "thread started per call, never ends", True, leak_thread,
             "corpus-stuck-worker", _reset_threads, "threads"),
    Scenario("tiny_64_bytes", "64 bytes per call", True, tiny_leak, "_TINY", _TINY.clear,
             "python"),
    Scenario("closures_kept", "closures capturing data", True, deferred_callbacks,
             "_DEFERRED", _DEFERRED.clear, "objects"),
    Scenario("seen_ids_set", "unbounded set of ids", True, seen_ids, "_SEEN_IDS",
             _SEEN_IDS.clear, "python"),
)
