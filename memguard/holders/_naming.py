"""L2 measurement: naming a reference chain — how each object holds the next.

Used by :mod:`memguard.holders`; the public names (:func:`describe`,
:func:`format_chain`, :func:`safe_repr`) are re-exported there.
"""

from __future__ import annotations

import threading
import types
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["ChainNamer", "Roots", "code_name", "describe", "format_chain", "safe_repr"]

_KEY_REPR = 40
# Attributes that hold an object outside ``__dict__`` (C-level slots), tried in
# order when naming an edge whose holder is neither a container nor a plain
# instance.
_KNOWN_ATTRIBUTES = (
    "__self__", "__func__", "__wrapped__", "__traceback__", "__context__", "__cause__",
    "tb_next", "tb_frame", "f_back", "cell_contents", "__defaults__", "__kwdefaults__",
    "fget", "fset", "fdel", "func", "args", "keywords", "__globals__", "__dict__",
    "__doc__", "__annotations__", "__module__", "__name__", "__qualname__",
)


class Roots(Protocol):
    """What the namer needs to know of the search that found the path."""

    module_dicts: dict[int, str]
    """``id`` of a module's ``__dict__`` -> the module's name."""
    locals_dicts: dict[int, str]
    """``id`` of a running frame's locals dict -> the label prefix of its variables."""
    local_index: dict[int, int]
    """``id`` of a value bound to a running frame's variable -> its index."""
    frames: list[types.FrameType]
    """Frames whose ``f_locals`` were read (cleared again by the search)."""

    def root_label(self, node: object) -> str | None:
        """The label of a root, ``""`` for a namespace dict, ``None`` if not a root."""


def safe_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to *limit* characters; never raises.

    Example:
        >>> safe_repr("x" * 100, limit=12)
        "'xxxxxxx...'"
    """
    try:
        text = repr(value)
    except Exception as error:  # a broken __repr__ must not break a report
        text = f"<{type(value).__qualname__} object (repr failed: {type(error).__name__})>"
    if "\n" in text:  # multi-line reprs (arrays, frames of data) on one line
        text = " ".join(text.split())
    if len(text) > limit:
        keep = max(limit - 4, 1)
        text = text[:keep] + "..." + text[-1] if text[-1] in "'\")]}>" else text[:limit - 3] + "..."
    return text


def describe(value: object) -> str:
    """A short, safe name for an object on a chain: its kind and name, never its repr.

    Example:
        >>> describe(describe)
        '<function describe>'
    """
    if isinstance(value, types.ModuleType):
        return value.__name__
    if isinstance(value, type):
        return _type_name(value)
    if isinstance(value, types.FrameType):
        code = value.f_code
        return f"<frame {code_name(code)} at {code.co_filename}:{value.f_lineno}>"
    return _describe_callable(value) or _describe_named(value) or type(value).__qualname__


def _describe_callable(value: object) -> str | None:
    if isinstance(value, types.MethodType):
        owner = value.__self__
        owner_name = owner.__qualname__ if isinstance(owner, type) else type(owner).__qualname__
        return f"<bound method {owner_name}.{getattr(value.__func__, '__name__', '?')}>"
    if isinstance(value, types.FunctionType):
        return f"<function {value.__qualname__}>"
    if isinstance(value, types.BuiltinMethodType):
        owner = value.__self__
        if owner is not None and not isinstance(owner, types.ModuleType):
            return f"<built-in method {value.__name__} of {type(owner).__qualname__}>"
    return None


def _safe_getattr(value: object, name: str) -> Any:
    """``getattr(value, name, None)``, but ``None`` whatever a hostile ``__getattr__`` raises."""
    try:
        return getattr(value, name, None)
    except Exception:  # a measured object's attribute hook may raise anything
        return None


def _describe_named(value: object) -> str | None:
    """Generators, coroutines and wrappers (``lru_cache``, ...) by kind and name."""
    qualname = _safe_getattr(value, "__qualname__") if not isinstance(value, type) else None
    if not isinstance(qualname, str):
        return None
    kind = type(value).__name__.replace("_", " ").strip()
    return f"<{kind} {qualname}>"


def format_chain(steps: Sequence[str]) -> str:
    """Join chain steps into one line.

    A step that starts with ``[``, ``.`` or a space names an edge and is
    attached to the step before it; any other step names an object and is
    joined with `` -> ``.

    Example:
        >>> format_chain(("app.registry.HANDLERS", "['click']", "[3]",
        ...               "<bound method Session.on_click>", "Session"))
        "app.registry.HANDLERS['click'][3] -> <bound method Session.on_click> -> Session"
    """
    parts: list[str] = []
    for step in steps:
        if parts and step[:1] in ("[", ".", " "):
            parts[-1] += step
        else:
            parts.append(step)
    return " -> ".join(parts)


class ChainNamer:
    """Turns a path of objects (root first, target last) into steps."""

    def __init__(self, search: Roots, path: list[object]) -> None:
        self.search = search
        self.path = path
        self.steps: list[str] = []
        self.described = -1  # index of the node the last object step names
        self.attribute_mode = False  # the next dict key is an attribute name
        self.freevars: tuple[str, ...] = ()  # names for the next closure tuple index
        self.thread_local = False  # inside a threading.local's per-thread dicts

    def name(self) -> tuple[str, ...]:
        first = self.path[0]
        label = self.search.root_label(first)
        if id(first) in self.search.module_dicts:
            self.steps.append(self.search.module_dicts[id(first)])
            self.attribute_mode = True
        elif id(first) in self.search.locals_dicts:
            self.steps.append(self.search.locals_dicts[id(first)].rstrip())
            self.attribute_mode = True
        else:
            self.steps.append(label or describe(first))
        # A frame local's label names the variable, not the object it holds.
        self.described = -1 if id(first) in self.search.local_index else 0
        for index in range(len(self.path) - 1):
            try:
                self.edge(index)
            except RuntimeError:  # another thread resized a dict, set or deque meanwhile
                self.opaque(index)
        if self.described != len(self.path) - 1:
            self.steps.append(describe(self.path[-1]))
        root_step = self.steps[0]
        if len(self.steps) > 1 and self.steps[1][:1] == ".":
            if root_step.endswith(" local"):
                self.steps[:2] = [f"{root_step} {self.steps[1][1:]}"]
            else:
                self.steps[:2] = [root_step + self.steps[1]]
        return tuple(self.steps)

    def node(self, index: int, text: str | None = None) -> None:
        if self.described != index:
            self.steps.append(text or describe(self.path[index]))
            self.described = index

    def edge(self, index: int) -> None:
        holder, held = self.path[index], self.path[index + 1]
        attribute_mode, self.attribute_mode = self.attribute_mode, False
        freevars, self.freevars = self.freevars, ()
        if isinstance(holder, dict):
            self.dict_edge(holder, held, attribute_mode)
        elif isinstance(holder, (list, tuple, deque)):
            self.sequence_edge(index, holder, held, freevars)
        elif isinstance(holder, (set, frozenset)):
            self.steps.append(" (set member)")
        elif isinstance(holder, types.CellType):
            if self.described != index:
                self.steps.append(".cell_contents")
        elif isinstance(holder, types.FunctionType) and held is holder.__closure__:
            self.node(index)
            self.freevars = holder.__code__.co_freevars
            self.described = index + 1
        elif isinstance(holder, types.MethodType):
            self.node(index)
            if held is holder.__func__ and held is not holder.__self__:
                self.steps.append(".__func__")
            else:
                self.node(index + 1)  # the object the method is bound to
        elif isinstance(holder, threading.local) and type(held) is dict:
            # A thread-local's per-thread dicts sit in a dict keyed by weak references.
            self.thread_local = True
            self.described = index + 1
        elif not self.frame_edge(index, holder, held):
            self.attribute_edge(index, holder, held)

    def sequence_edge(
        self, index: int, holder: Sequence[object] | deque[object], held: object,
        freevars: tuple[str, ...],
    ) -> None:
        position = next((i for i, item in enumerate(list(holder)) if item is held), None)
        if freevars and position is not None and position < len(freevars):
            self.node(index)
            self.steps.append(f"closure variable {freevars[position]}")
            self.described = index + 1  # the cell; its contents follow directly
        else:
            self.steps.append(f"[{position}]" if position is not None else " (item)")

    def frame_edge(self, index: int, holder: object, held: object) -> bool:
        """A frame's or a suspended generator's local variable."""
        if isinstance(holder, types.FrameType):
            frame: types.FrameType | None = holder
        elif isinstance(holder, (types.GeneratorType, types.CoroutineType,
                                 types.AsyncGeneratorType)):
            frame = _suspended_frame(holder)
        else:
            return False
        name = _local_name(frame, held, self.search) if frame is not None else None
        self.node(index)
        if name is not None:
            self.steps.append(f" local {name}")
        else:
            self.opaque(index)
        return True

    def dict_edge(self, holder: dict[object, object], held: object, attribute_mode: bool) -> None:
        if self.thread_local:
            if isinstance(held, dict):  # the dict of weak references -> one thread's dict
                self.attribute_mode = True
                self.described += 1
                return
            self.thread_local = False
            suffix = " (thread-local)"
        else:
            suffix = ""
        for key, value in list(holder.items()):
            if value is held:
                if attribute_mode and isinstance(key, str):
                    self.steps.append(f".{key}{suffix}")
                else:
                    self.steps.append(f"[{_key_text(key)}]{suffix}")
                return
        self.steps.append(" (dict key)")

    def attribute_edge(self, index: int, holder: object, held: object) -> None:
        own_dict = _safe_getattr(holder, "__dict__")
        if isinstance(holder, (type, types.ModuleType, types.FunctionType)) or (
            own_dict is not None and not isinstance(own_dict, types.MappingProxyType)
        ):
            if own_dict is held or (isinstance(holder, type) and _is_type_dict(holder, held)):
                self.attribute_mode = True
                return
            if isinstance(own_dict, (dict, types.MappingProxyType)):
                for key, value in own_dict.items():
                    if value is held and isinstance(key, str):
                        self.steps.append(f".{key}")
                        return
        for name in _slot_names(type(holder)) + _KNOWN_ATTRIBUTES:
            try:
                if getattr(holder, name) is held:
                    self.steps.append(f".{name}")
                    return
            except Exception:  # any attribute may raise; try the next one
                continue
        self.opaque(index)

    def opaque(self, index: int) -> None:
        """An edge memguard cannot name: show the holder, then what it holds."""
        self.node(index)
        self.node(index + 1)


def _key_text(key: object) -> str:
    """A dict key as a chain shows it: its short repr; a weak reference by its object."""
    if isinstance(key, weakref.ref):
        referent = key()
        return f"<weakref to {'a dead object' if referent is None else describe(referent)}>"
    return safe_repr(key, _KEY_REPR)


def _is_type_dict(cls: type, candidate: object) -> bool:
    if type(candidate) is not dict:
        return False
    proxy = cls.__dict__
    return len(proxy) == len(candidate) and all(
        key in proxy and proxy[key] is value for key, value in candidate.items()
    )


def _slot_names(cls: type) -> tuple[str, ...]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    return tuple(name for name in names if name not in ("__dict__", "__weakref__"))


def _suspended_frame(holder: object) -> types.FrameType | None:
    for name in ("gi_frame", "cr_frame", "ag_frame"):
        frame = _safe_getattr(holder, name)
        if isinstance(frame, types.FrameType):
            return frame
    return None


def _local_name(frame: types.FrameType, held: object, search: Roots) -> str | None:
    search.frames.append(frame)
    for name, value in list(frame.f_locals.items()):
        if value is held:
            return name
    return None


def code_name(code: types.CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


def _type_name(cls: type) -> str:
    if cls.__module__ in ("builtins", None):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
