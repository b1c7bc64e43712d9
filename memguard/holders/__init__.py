"""L2 measurement: who holds an object — the reference chain from a root to it.

:func:`find_holder_chain` walks the object graph *backwards* from an object,
breadth first, with :func:`gc.get_referrers`, until it meets a *root*: a
module's globals, a class, or a local variable of a frame running in some
thread. The shortest chain found is returned as readable steps, each edge
named by how the holder holds the next object, such as
``app.registry.HANDLERS['click'][3] -> <bound method Session.on_click> -> Session``.

How edges are named: a dict value by its key (``['click']``), a module
global, class attribute or instance attribute by its name (``.HANDLERS``),
a list, tuple or deque item by its index (``[3]``), a closure cell by the
name of the function's free variable (``closure variable session``), a
frame or generator local by its name (``local buf``), a bound method by the
method (``<bound method Session.on_click>``), a set member and a dict key as
``(set member)`` and ``(dict key)``; an edge memguard cannot name shows the
holder's type (``-> dict``).

Cost and bounds: each level of the search is one pass of
:func:`gc.get_referrers` over the gc-tracked heap, about 35 ms per million
live objects on a 2-core machine, a little more for wide levels (cut into
chunks of 100 objects, and capped at 1,000 objects). The clock is checked
between chunks and every few hundred referrers, so a search ends within
``max_seconds`` plus one heap pass; ``max_depth`` bounds the chain's length.
``max_seconds=None`` sets no time budget: the search then ends on
``max_depth`` alone, so its answer does not depend on how busy the machine
is (what tests want).
An object gc does not track (``bytes``, ``str``) may be held by a dict or
tuple gc does not track either: those are looked for among module globals
and their attributes, then, failing that, in one pass over every object's
referents.

The search's own bookkeeping (its frontier lists, maps and the frames of
memguard's code) is left out, and every strong reference it took is
released before it returns.

Note:
    Only holders that gc can see are found: a reference kept by C code that
    does not report it to gc (a C extension's static variable, a reference
    count leak), or by a running frame's value stack, has no chain.
    Running frames are not gc containers, so their locals are read through
    ``frame.f_locals``, and only when no module or class holds the object.
    Before Python 3.13 that builds each frame's locals dict, which memguard
    clears again so that it keeps nothing alive, unless someone else holds
    that dict (the result of a ``locals()`` call).
"""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ._naming import ChainNamer, code_name, describe, format_chain, safe_repr
from ._untracked import namespace_holders, untracked_holders

__all__ = [
    "HolderSearch",
    "describe",
    "find_holder_chain",
    "format_chain",
    "safe_repr",
    "search_holders",
]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_CHUNK = 100
_MAX_FRONTIER = 1000
_CLOCK_EVERY = 256
_CO_OPTIMIZED = 0x0001
_MATERIALIZES_LOCALS = sys.version_info < (3, 13)

Status = Literal["found", "exhausted", "depth", "time"]


def _fresh_locals_refs() -> int:
    """References to a frame's locals dict that only its frame and a reader hold."""
    frame = sys._getframe()
    local_vars = frame.f_locals
    count = sys.getrefcount(local_vars)
    local_vars.clear()  # it holds this frame: no cycle left behind
    return count


_FRESH_LOCALS_REFS = _fresh_locals_refs() if _MATERIALIZES_LOCALS else 0


@dataclass(frozen=True, slots=True)
class HolderSearch:
    """The outcome of one holder search (plain data, no user objects).

    Example:
        >>> HolderSearch(steps=("app.CACHE", "['k']", "Session"), status="found",
        ...              depth=1, elapsed_seconds=0.01, examined=3).text
        "app.CACHE['k'] -> Session"
    """

    steps: tuple[str, ...] | None
    """The chain from a root to the object, or ``None`` when none was found."""
    status: Status
    """``"found"``; ``"exhausted"`` (every holder leads nowhere gc can see);
    ``"depth"`` or ``"time"`` (a bound was reached first)."""
    depth: int
    """How many levels the search went back."""
    elapsed_seconds: float
    """How long the search took."""
    examined: int
    """How many holders it looked at."""
    held_by_excused: bool = False
    """The object is a local variable of an excused frame (see
    :func:`search_holders`)."""

    @property
    def text(self) -> str:
        """The chain as one line, or why there is none."""
        if self.steps is not None:
            return format_chain(self.steps)
        if self.status == "exhausted":
            return "no holder reachable from a root (held by C code or a running frame's stack)"
        bound = f"{self.depth} steps" if self.status == "depth" else (
            f"{self.elapsed_seconds:.2f} s")
        return f"no holder chain found within {bound} ({self.examined} holders examined)"


def find_holder_chain(
    obj: object, *, max_depth: int = 15, max_seconds: float | None = 1.0
) -> tuple[str, ...] | None:
    """The reference chain from a root to *obj*, as steps, or ``None``.

    Args:
        obj: The object whose holder is wanted.
        max_depth: The longest chain to look for, in references.
        max_seconds: The time budget (see the module docstring for how
            closely it is kept); ``None`` for none.

    Returns:
        The steps (join them with :func:`format_chain`), or ``None`` when no
        chain was found within the bounds. No reference to *obj* is kept.
        The caller's own local variables bound to *obj* are not holders
        (they are how it was passed in); its other locals are.

    Example:
        >>> import memguard.holders as holders
        >>> class Session: ...
        >>> holders.EXAMPLE = {"live": [Session()]}
        >>> format_chain(find_holder_chain(holders.EXAMPLE["live"][0]))
        "memguard.holders.EXAMPLE['live'][0] -> Session"
        >>> del holders.EXAMPLE
    """
    caller = sys._getframe(1)
    try:
        return search_holders(obj, max_depth=max_depth, max_seconds=max_seconds,
                              excused_frames=(caller,)).steps
    finally:
        del caller


def search_holders(
    obj: object,
    *,
    max_depth: int = 15,
    max_seconds: float | None = 1.0,
    excused_frames: Iterable[types.FrameType] = (),
    ignore: Iterable[object] = (),
) -> HolderSearch:
    """Search for the shortest chain from a root to *obj*.

    Args:
        obj: The object whose holder is wanted.
        max_depth: The longest chain to look for, in references.
        max_seconds: The time budget; ``None`` for none (the search ends
            on *max_depth* alone, whatever the machine's load).
        excused_frames: Frames whose local variables bound to *obj* itself
            do not count as holders (the caller's own variable; for a
            module body, script or notebook cell, its global variable);
            their variables that hold *obj* indirectly still do.
        ignore: The caller's own containers that hold *obj* or its holders
            (a list of objects being checked), left out of the search.

    Returns:
        A :class:`HolderSearch`; its ``steps`` are ``None`` unless a chain
        was found.

    Example:
        >>> search_holders(object()).status
        'exhausted'
    """
    if max_depth < 1:
        raise ValueError(f"max_depth must be at least 1, got {max_depth!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    search = _Search(obj, max_depth, max_seconds, excused_frames, ignore)
    try:
        return search.run()
    finally:
        search.release()


class _Search:
    """One breadth-first search; every strong reference it takes is in here."""

    def __init__(
        self,
        obj: object,
        max_depth: int,
        max_seconds: float | None,
        excused_frames: Iterable[types.FrameType],
        ignore: Iterable[object],
    ) -> None:
        self.started = time.perf_counter()
        self.deadline = math.inf if max_seconds is None else self.started + max_seconds
        self.max_depth = max_depth
        self.target_id = id(obj)
        self.nodes: dict[int, object] = {id(obj): obj}
        # holder id -> id of the object it holds, one step nearer the target
        self.next_hop: dict[int, int] = {}
        self.excused_frames = list(excused_frames)
        self.excused_ids = {id(frame) for frame in self.excused_frames}
        self.ignore = list(ignore)
        # value id -> index into local_values / local_labels
        self.local_index: dict[int, int] = {}
        self.local_values: list[object] = []
        self.local_labels: list[str] = []
        # id of a frame's locals dict -> the label prefix of its variables
        self.locals_dicts: dict[int, str] = {}
        self.frames: list[types.FrameType] = []
        # Named by their sys.modules key, where they are imported from; by
        # their own name when they are there under several (__mp_main__).
        self.module_dicts: dict[int, str] = {}
        for name, module in list(sys.modules.items()):
            if isinstance(module, types.ModuleType) and (
                id(module.__dict__) not in self.module_dicts
                or name == getattr(module, "__name__", None)
            ):
                self.module_dicts[id(module.__dict__)] = name
        self.examined = 0
        self.depth = 0
        self.held_by_excused = False
        # A module body, script, notebook cell or exec'd code has no fast
        # locals: its variables are its namespace dict, found through gc and
        # named as globals; an excused one's variable bound to the target is
        # skipped in expand().
        self.excused_namespaces = {
            id(frame.f_locals) for frame in self.excused_frames
            if not frame.f_code.co_flags & _CO_OPTIMIZED
        }
        self.own: set[int] = {
            id(self.nodes), id(self.next_hop), id(self.ignore), id(self.local_values),
            id(self.frames), id(self.excused_frames), id(self.__dict__), id(self),
        }
        self.own.update(id(x) for x in self.ignore)

    # -- roots -----------------------------------------------------------------

    def collect_frames(self) -> None:
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        # The current thread's top frame is this one: a variable holding it
        # would be a cycle keeping every frame below (and their locals) alive
        # until the next collection, so only the stack is walked, then dropped.
        stacks = list(sys._current_frames().items())
        frame: types.FrameType | None = None
        try:
            while stacks:
                ident, frame = stacks.pop()
                thread_name = names.get(ident, f"#{ident}")
                while frame is not None:
                    self.add_frame(frame, thread_name)
                    frame = frame.f_back
        finally:
            del stacks
            frame = None

    def add_frame(self, frame: types.FrameType, thread_name: str) -> None:
        code = frame.f_code
        if code.co_filename.startswith(_PACKAGE_DIR) or not code.co_flags & _CO_OPTIMIZED:
            return  # memguard's own; module and class bodies are namespace dicts
        self.frames.append(frame)
        prefix = f"thread {thread_name!r} {code_name(code)}() local "
        local_vars = frame.f_locals
        excused = id(frame) in self.excused_ids
        if excused:
            self.own.add(id(local_vars))  # its variables are looked at one by one below
        else:
            self.locals_dicts[id(local_vars)] = prefix
        target = self.nodes[self.target_id]
        for name, value in list(local_vars.items()):
            if excused and value is target:
                self.held_by_excused = True
                continue
            if id(value) not in self.local_index:
                self.local_index[id(value)] = len(self.local_values)
                self.local_values.append(value)
                self.local_labels.append(prefix + name)

    def root_label(self, node: object) -> str | None:
        index = self.local_index.get(id(node))
        if index is not None and self.local_values[index] is node:
            return self.local_labels[index]
        if isinstance(node, (types.ModuleType, type)) and id(node) != self.target_id:
            return describe(node)
        if id(node) in self.module_dicts or id(node) in self.locals_dicts:
            return ""  # named by its key, in chain()
        return None

    # -- search ----------------------------------------------------------------

    def run(self) -> HolderSearch:
        """Global roots first (modules, classes); frame locals only if none holds it.

        Running frames are not gc containers: their locals are read (which
        builds a dict per frame before Python 3.13) only when the search
        through gc found no module or class, and then matched against every
        object the search met, nearest first.
        """
        target = self.nodes[self.target_id]
        if self.is_root(target):
            return self.result("found", self.target_id)
        found, status = self.breadth_first([target])
        if found is None and status == "exhausted" and not gc.is_tracked(target):
            # gc does not track a dict or tuple holding only atomic values
            # (str, bytes, numbers), so get_referrers cannot see a cache of
            # strings; such holders are looked for among everyone's referents.
            holders = self.not_own(namespace_holders(target, self.deadline)) or self.not_own(
                untracked_holders(target, self.deadline))
            for holder in holders:
                self.nodes[id(holder)] = holder
                self.next_hop[id(holder)] = self.target_id
            self.depth = 1
            found, status = self.breadth_first(holders)
            del holders
        del target
        if found is None:
            self.collect_frames()
            found = next((key for key, node in self.nodes.items()
                          if self.root_label(node) is not None), None)
            if found is not None:
                status = "found"
        return self.result(status, found)

    def breadth_first(self, frontier: list[object]) -> tuple[int | None, Status]:
        """Search back from *frontier*; the root found, or why the search ended."""
        self.own.add(id(frontier))
        while frontier:
            if self.depth >= self.max_depth:
                return None, "depth"
            if time.perf_counter() > self.deadline:
                return None, "time"
            self.depth += 1
            found, frontier, timed_out = self.expand(frontier)
            if found is not None:
                return found, "found"
            if timed_out:
                return None, "time"
        return None, "exhausted"

    def not_own(self, holders: list[object]) -> list[object]:
        """*holders* without the search's own (``self.nodes``, ``{id: target}``, is
        an untracked dict too)."""
        return [holder for holder in holders if id(holder) not in self.own]

    def is_root(self, node: object) -> bool:
        """Whether *node* is a root (a module global or a class, until frames are read)."""
        return self.root_label(node) is not None

    def expand(self, frontier: list[object]) -> tuple[int | None, list[object], bool]:
        """One level back: the holders of *frontier* not seen before."""
        wanted = {id(node) for node in frontier}
        following: list[object] = []
        self.own.add(id(following))
        for start in range(0, len(frontier), _CHUNK):
            if time.perf_counter() > self.deadline:
                return None, following, True
            chunk = frontier[start:start + _CHUNK]
            self.own.add(id(chunk))
            holders = gc.get_referrers(*chunk)
            self.own.add(id(holders))
            try:
                for count, holder in enumerate(holders):
                    if count % _CLOCK_EVERY == 0 and time.perf_counter() > self.deadline:
                        return None, following, True
                    key = id(holder)
                    if key in self.nodes or key in self.own or _not_a_holder(holder):
                        continue
                    held = _held_one(holder, wanted)
                    if held is None:
                        continue
                    if held == self.target_id and key in self.excused_namespaces:
                        self.held_by_excused = True
                        continue
                    self.examined += 1
                    self.nodes[key] = holder
                    self.next_hop[key] = held
                    if self.is_root(holder):
                        return key, following, False
                    # Past the cap, namespaces still go on: a class's dict among
                    # thousands of instances that share an attribute (every
                    # logging.Logger holds the Manager) is the way to a root.
                    if len(following) < _MAX_FRONTIER or type(holder) is dict:
                        following.append(holder)
            finally:
                del holders, chunk
        return None, following, False

    def result(self, status: Status, root: int | None) -> HolderSearch:
        """The search's outcome; *root* is where the chain starts, if found."""
        steps = None if root is None else self.chain(root)
        return HolderSearch(
            steps=steps,
            status=status,
            depth=self.depth,
            elapsed_seconds=time.perf_counter() - self.started,
            examined=self.examined,
            held_by_excused=self.held_by_excused,
        )

    # -- naming ----------------------------------------------------------------

    def chain(self, root: int) -> tuple[str, ...]:
        path = [self.nodes[root]]
        key = root
        while key != self.target_id:
            key = self.next_hop[key]
            path.append(self.nodes[key])
        try:
            return ChainNamer(self, path).name()
        finally:
            del path

    def release(self) -> None:
        if _MATERIALIZES_LOCALS:
            # Reading f_locals built a snapshot dict of each frame's locals,
            # kept on the frame; left alone it would keep values alive after
            # the frame drops them. It is rebuilt on the next read. A dict
            # someone else holds too (the result of a `locals()` call) is
            # theirs and left alone; so are module and class namespaces.
            for frame in self.frames:
                if frame.f_code.co_flags & _CO_OPTIMIZED:
                    local_vars = frame.f_locals
                    if sys.getrefcount(local_vars) <= _FRESH_LOCALS_REFS:
                        local_vars.clear()
                    del local_vars
        self.nodes.clear()
        self.next_hop.clear()
        self.local_values.clear()
        self.frames.clear()
        self.excused_frames.clear()
        self.ignore.clear()


def _held_one(holder: object, wanted: set[int]) -> int | None:
    """The id of one object of *wanted* that *holder* refers to directly."""
    for referent in gc.get_referents(holder):
        if id(referent) in wanted:
            return id(referent)
    return None


def _not_a_holder(holder: object) -> bool:
    """memguard's own frames, and code objects: their constants are never leaks."""
    if isinstance(holder, types.CodeType):
        return True
    return isinstance(holder, types.FrameType) and holder.f_code.co_filename.startswith(
        _PACKAGE_DIR
    )


