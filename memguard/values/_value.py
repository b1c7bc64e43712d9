"""L4 values: what every memguard value shares — its kind, declared once, and how it is shown.

A value class names its kind in its class statement::

    @dataclass(frozen=True, slots=True, kw_only=True, repr=False)
    class LimitReport(Value, kind="limit"): ...

That one declaration is what files (:mod:`memguard.values.files` reads a
file's ``kind`` through :data:`KINDS`), rendering (:mod:`memguard.report`
finds a value's layout by its kind) and notebook display (the IPython
extension formats every class in :data:`KINDS`) look up; there is no other
list of kinds.

Showing a value is the presentation layer's job, which sits above the
values. So that ``print(value)`` and a notebook can show the full report
without the values importing upwards, :mod:`memguard.report` fills
:func:`register_renderer` when it is imported (``import memguard`` imports
it), and the values' ``__str__`` / ``_repr_html_`` / ``_repr_markdown_`` are
one-line calls into :func:`shown`. ``repr(value)`` is one short line, built
here from the value's :attr:`Value.summary`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

__all__ = ["KINDS", "Renderer", "Value", "register_renderer", "renamed", "renamed_field", "shown"]

KINDS: dict[str, type[Value]] = {}
"""Every value class by its kind (``"snapshot"``, ``"limit"``, ...), in
declaration order; filled by the class statements themselves."""

Renderer = Callable[..., str]
"""``renderer(value, **options) -> str``; options are ``top`` and ``width``."""

_renderers: dict[str, Renderer] = {}


class Value:
    """The base of every memguard value: its kind, ``repr``, ``str`` and notebook forms.

    Subclasses are frozen dataclasses declared with ``repr=False`` (the short
    ``repr`` is this class's) and pass ``kind="..."``; they define
    :attr:`summary`.
    """

    __slots__ = ()

    KIND: ClassVar[str]
    """The ``kind`` written in the value's files and looked up to show it."""

    def __init_subclass__(cls, *, kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is None:
            # A slotted dataclass is its class made again, without the class
            # keywords but with the KIND set below: the same kind comes back.
            kind = cls.__dict__.get("KIND")
            if not isinstance(kind, str):
                raise TypeError(f"{cls.__qualname__} must declare its kind: "
                                f"class {cls.__name__}(Value, kind=...)")
        known = KINDS.get(kind)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"kind {kind!r} is already declared by {known.__qualname__}")
        cls.KIND = kind
        KINDS[kind] = cls

    @property
    def summary(self) -> str:
        """One line in human units: what the value says."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.summary}>"

    def __str__(self) -> str:
        return shown(self, "text")

    def _repr_html_(self) -> str:
        return shown(self, "notebook-html")

    def _repr_markdown_(self) -> str:
        return shown(self, "markdown")


def register_renderer(fmt: str, renderer: Renderer) -> None:
    """Let :func:`shown` render values as *fmt* (``"text"``, ``"markdown"``,
    ``"html"`` or ``"notebook-html"``); the presentation layer calls this.

    Example:
        >>> before = _renderers.get("shout")
        >>> register_renderer("shout", lambda value, **options: value.summary.upper())
        >>> from memguard.values.watch import WatchReport
        >>> shown(WatchReport(label="t", watched=1), "shout")
        'T: THE WATCHED OBJECT WAS FREED'
        >>> del _renderers["shout"]
    """
    if not isinstance(fmt, str) or not fmt:
        raise ValueError(f"fmt must be a non-empty string, got {fmt!r}")
    if not callable(renderer):
        raise TypeError(f"renderer must be callable, not {type(renderer).__name__}")
    _renderers[fmt] = renderer


def shown(value: Value, fmt: str, **options: Any) -> str:
    """*value* rendered as *fmt* by the presentation layer.

    Without a renderer for *fmt* (memguard's report layer failed to import)
    the value's one-line :attr:`~Value.summary` is the answer, never a
    dataclass dump.
    """
    renderer = _renderers.get(fmt)
    if renderer is None:
        return value.summary
    return renderer(value, **options)


_MISSING: Any = object()


def renamed_field(data: Mapping[str, Any], name: str, old: str, default: Any = _MISSING) -> Any:
    """*data*'s field *name*, or the same field under its 0.1 name *old*.

    Files of format version 1 wrote some figures under names that did not
    say what they are (``peak_bytes`` for a peak above the start); a value's
    ``from_dict`` reads both through this.

    Raises:
        KeyError: Neither name is there and no *default* is given.

    Example:
        >>> renamed_field({"peak_bytes": 7}, "peak_above_start_bytes", "peak_bytes")
        7
    """
    if name in data:
        return data[name]
    if old in data:
        return data[old]
    if default is _MISSING:
        raise KeyError(name)
    return default


def renamed(owner: str, old: str, new: str,
            why: str = "a figure above the start says so in its name") -> None:
    """Warn, for the caller's caller, that ``owner.old`` is now ``owner.new``, and *why*."""
    warnings.warn(f"{owner}.{old} is renamed {owner}.{new} ({why})", DeprecationWarning,
                  stacklevel=3)
