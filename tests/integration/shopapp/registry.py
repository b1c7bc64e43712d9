"""Registries that keep objects alive, the way real applications do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

HANDLERS: dict[str, list[Callable[[], object]]] = {}
ITEMS: list[Any] = []
SEEN: set[Any] = set()
BY_SESSION: dict[Any, int] = {}
STATE = threading.local()
PAGES: dict[str, bytes] = {}


class Session:
    """A user session; sessions register handlers and are kept by mistake."""

    instances: ClassVar[list[Session]] = []

    def __init__(self, user: str = "ann") -> None:
        self.user = user

    def on_click(self) -> str:
        return self.user


class Cart:
    """Holds an item as an instance attribute."""

    prices: ClassVar[dict[str, bytes]] = {}

    def __init__(self, item: object) -> None:
        self.item = item


class Slotted:
    """Holds an item in a slot."""

    __slots__ = ("item",)

    def __init__(self, item: object) -> None:
        self.item = item


class NoWeakref:
    """Slots without ``__weakref__``: cannot be weakly referenced."""

    __slots__ = ("value",)


class BrokenRepr:
    """Its ``__repr__`` raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class MultiLine:
    """A repr on two lines, as numpy arrays and data frames have."""

    def __repr__(self) -> str:
        return "first line\n  second line"


CART = Cart(None)


def register(session: Session) -> None:
    """Keep *session*'s click handler in the global registry."""
    HANDLERS.setdefault("click", []).append(session.on_click)


def make_handler(session: Session) -> Callable[[], str]:
    """A closure over *session*."""

    def handler() -> str:
        return session.user

    return handler


def stream(session: Session) -> Iterator[str]:
    """A generator whose suspended frame holds *session*."""
    current = session
    yield current.user
    yield "done"


def fail(session: Session) -> None:
    """Raise; the traceback's frame holds *session*."""
    raise ValueError(session.user)


def banner() -> str:
    """A function with a string constant no other code has."""
    return "shopapp: watched by memguard since v0"


def reset() -> None:
    """Drop everything the registries hold."""
    HANDLERS.clear()
    ITEMS.clear()
    SEEN.clear()
    BY_SESSION.clear()
    Session.instances.clear()
    PAGES.clear()
    Cart.prices.clear()
    CART.item = None
    STATE.__dict__.clear()
