"""L0 foundation: memguard's one watcher thread, which runs the periodic tasks guards ask for.

The timeline sampler (:mod:`memguard.sampler`), the RSS sampling of
:mod:`memguard.process` where the kernel has no high-water mark, the
peak-site catcher of ``limit()`` when it measures with tracemalloc and has no
native counter to tell it when the peak moved, and ``memguard run``'s watcher
are all tasks of this one thread (named ``memguard-watcher``). It starts with
the first task and is joined when the last one is removed, so it never
outlives the guards. A task must allocate as little as it can: whatever it
allocates happens while the measured program runs, and counts towards the
program's garbage collections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Task", "add", "unwatch", "watch", "watcher_running"]


class Task:
    """A periodic task of the watcher thread (see :func:`watch`)."""

    __slots__ = ("due", "fn", "interval")

    def __init__(self, fn: Callable[[], object], interval: float) -> None:
        self.fn = fn
        self.interval = interval
        self.due = 0.0


_tasks: list[Task] = []
_tasks_lock = threading.Lock()
_thread: threading.Thread | None = None
_STEP = 0.005


def _watcher_loop() -> None:
    # Short sleeps rather than Event.wait(): a wait allocates a lock on every
    # call, which the measured heap (and its collector) would see.
    while True:
        with _tasks_lock:
            if not _tasks:
                return
            tasks = tuple(_tasks)
        now = time.perf_counter()
        step = _STEP
        for task in tasks:
            if now >= task.due:
                task.fn()
                task.due = now + task.interval
            step = min(step, task.interval)
        time.sleep(step)


def watch(fn: Callable[[], object], interval: float) -> Task:
    """Run *fn* on the watcher thread every *interval* seconds.

    The first run is at once. *fn* must not raise. Returns the task, for
    :func:`unwatch`.
    """
    if not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    task = Task(fn, float(interval))
    add(task)
    return task


def add(task: Task) -> None:
    """Start running *task* (its ``due`` time may be set first)."""
    global _thread
    with _tasks_lock:
        _tasks.append(task)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_watcher_loop, name="memguard-watcher",
                                       daemon=True)
            _thread.start()


def unwatch(task: Task) -> None:
    """Stop running *task*; joins the thread when it was the last task.

    When called from a task itself, it only removes the task.
    """
    global _thread
    with _tasks_lock:
        if task in _tasks:
            _tasks.remove(task)
        thread = _thread if not _tasks else None
        if thread is not None:
            _thread = None
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def watcher_running() -> bool:
    """Whether the watcher thread is running."""
    with _tasks_lock:
        return _thread is not None and _thread.is_alive()
