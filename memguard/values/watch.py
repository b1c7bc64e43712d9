"""L4 values: :class:`WatchReport` and :class:`Survivor`, what ``watch()`` and
``expect_collected()`` found.

Plain data only: a survivor is described by its type name, a safely
truncated repr and the text of the reference chain that holds it, never by
the object itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._value import Value, shown

__all__ = ["Survivor", "WatchReport"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Survivor:
    """One watched object that was still alive after a full collection.

    Example:
        >>> survivor = Survivor(name="session", type_name="app.Session",
        ...                     object_repr="<app.Session object at 0x7f00>",
        ...                     chain=("app.HANDLERS", "['click']", "[3]",
        ...                            "<bound method Session.on_click>", "Session"))
        >>> survivor.holder
        "app.HANDLERS['click'][3] -> <bound method Session.on_click> -> Session"
    """

    name: str
    """What the object was called when it was watched (``w.add(obj, name=...)``),
    or its position, ``#1``, ``#2``, ..."""
    type_name: str
    """The object's type, module-qualified unless a builtin."""
    object_repr: str
    """Its repr, cut to a readable length (or a placeholder if ``__repr__`` failed)."""
    chain: tuple[str, ...] = ()
    """The steps of the reference chain from a root to the object (see
    :func:`memguard.holders.format_chain`); empty when none was found."""
    note: str = ""
    """Why there is no chain (held by C code, a search bound reached), or ``""``."""

    @property
    def holder(self) -> str:
        """The chain as one line, or the note saying why there is none."""
        if not self.chain:
            return self.note or "no holder found"
        from ..holders import format_chain  # holders is heavy; a watch report is rare

        return format_chain(self.chain)

    def __str__(self) -> str:
        return f"{self.name} ({self.type_name}) held by {self.holder}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "name": self.name,
            "type_name": self.type_name,
            "object_repr": self.object_repr,
            "chain": list(self.chain),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Survivor:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            type_name=str(data["type_name"]),
            object_repr=str(data.get("object_repr", "")),
            chain=tuple(str(step) for step in data.get("chain", ())),
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class WatchReport(Value, kind="watch"):
    """The result of one ``watch()`` block or ``expect_collected()`` call.

    Example:
        >>> report = WatchReport(label="test_close", watched=3, survivors=(
        ...     Survivor(name="#2", type_name="app.Session", object_repr="<Session 7>",
        ...              chain=("app.SESSIONS", "[0]", "Session")),))
        >>> report.summary
        'test_close: 1 of 3 watched objects survived gc.collect()'
        >>> print(report.message())
        1 of 3 watched objects survived gc.collect() in test_close:
          #2: app.Session <Session 7>
            held by app.SESSIONS[0] -> Session
    """

    label: str
    """Where the check ran: a ``file:line`` or the label given."""
    watched: int
    """How many objects were watched."""
    survivors: tuple[Survivor, ...] = ()
    """The objects still alive after the collection, in the order watched."""
    search_seconds: float = 0.0
    """Time spent looking for holders."""

    @property
    def leaked(self) -> bool:
        """Whether any watched object survived."""
        return bool(self.survivors)

    @property
    def collected(self) -> int:
        """How many watched objects were freed."""
        return self.watched - len(self.survivors)

    @property
    def survived_text(self) -> str:
        """How many of the watched objects survived, in words (the summary's and the
        verdict's phrase).

        Example:
            >>> WatchReport(label="t", watched=1).survived_text
            '0 of 1 watched object survived gc.collect()'
        """
        objects = "object" if self.watched == 1 else "objects"
        return f"{len(self.survivors)} of {self.watched} watched {objects} survived gc.collect()"

    @property
    def summary(self) -> str:
        """One line: how many watched objects survived."""
        if self.survivors:
            return f"{self.label}: {self.survived_text}"
        if self.watched == 1:
            return f"{self.label}: the watched object was freed"
        return f"{self.label}: all {self.watched} watched objects were freed"

    def message(self, *, top: int = 5) -> str:
        """The verdict a failed watch raises: its first line, then each survivor (up to
        *top*) with its holder chain. Written by the presentation layer
        (:mod:`memguard.report.verdict`)."""
        return shown(self, "verdict", top=top)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "kind": self.KIND,
            "label": self.label,
            "watched": self.watched,
            "survivors": [survivor.to_dict() for survivor in self.survivors],
            "search_seconds": self.search_seconds,
            "leaked": self.leaked,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WatchReport:
        """Rebuild a report from :meth:`to_dict`'s output."""
        return cls(
            label=str(data["label"]),
            watched=int(data["watched"]),
            survivors=tuple(Survivor.from_dict(s) for s in data.get("survivors", ())),
            search_seconds=float(data.get("search_seconds", 0.0)),
        )
