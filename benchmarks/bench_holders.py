"""Finding who holds an object: ``memguard.holders`` next to objgraph's back-reference chain.

Scenarios, each on heaps of several sizes (live gc-tracked objects):

* ``registry``: a ``Session`` kept through a bound method in a global
  registry, ``app.HANDLERS['click'][3] -> <bound method Session.on_click>``;
* ``deep``: a ``Session`` at the end of 12 nested lists in a module global;
* ``untracked``: a ``bytes`` page in a module-global dict of bytes, which gc
  does not track (``gc.get_referrers`` cannot see the dict).

Tools:

* ``memguard find_holder_chain``: the default bounds (15 steps, 1 s);
* ``objgraph find_backref_chain``: ``find_backref_chain(obj,
  is_proper_module)``, objgraph's own way to answer the question; its chain
  is a list of objects, printed here as objgraph's ``show_chain`` labels
  them (type names).

Each measurement is repeated, tools interleaved, and the median kept. The
ratio is objgraph's time over memguard's (above 1: memguard is faster).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import objgraph

from memguard.holders import find_holder_chain, format_chain

MODULE = "bench_holders_app"


class Session:
    """A user session (the object whose holder is wanted)."""

    def on_click(self) -> None:
        """A handler kept in the registry."""


def make_heap(size: int) -> list[Any]:
    """About *size* live gc-tracked objects: small lists in a list."""
    return [[i] for i in range(size)]


def make_app() -> Any:
    module = types.ModuleType(MODULE)
    vars(module).update(HANDLERS={"click": [print, print, print]}, NESTED=[], PAGES={})
    sys.modules[MODULE] = module
    return module


def scenario(app: Any, name: str) -> Any:
    """Hold a new object the scenario's way; return it."""
    if name == "registry":
        session = Session()
        app.HANDLERS["click"].append(session.on_click)
        return session
    if name == "deep":
        session = Session()
        nested: list[Any] = [session]
        for _ in range(11):
            nested = [nested]
        app.NESTED.append(nested)
        return session
    page = bytes(range(256)) * 16
    app.PAGES["/home"] = page
    return page


def objgraph_chain(obj: object) -> str:
    chain = objgraph.find_backref_chain(obj, objgraph.is_proper_module)
    try:
        if len(chain) < 2:
            return "(no chain)"
        return " -> ".join(type(item).__name__ for item in chain)
    finally:
        del chain


def memguard_chain(obj: object) -> str:
    return format_chain(find_holder_chain(obj) or ("(no chain)",))


def timed(fn: Callable[[object], str], obj: object) -> tuple[float, str]:
    started = time.perf_counter()
    text = fn(obj)
    return time.perf_counter() - started, text


def main(quick: bool) -> dict[str, Any]:
    """Time both tools on every scenario and heap size; ratios objgraph / memguard."""
    sizes = (100_000, 500_000) if quick else (100_000, 1_000_000, 3_000_000)
    rounds = 3 if quick else 5
    ratios: dict[str, float] = {}
    figures: dict[str, float] = {}
    table: list[dict[str, Any]] = []
    chains: dict[str, tuple[str, str]] = {}
    for size in sizes:
        heap = make_heap(size)
        tracked = len(gc.get_objects())
        for name in ("registry", "deep", "untracked"):
            app = make_app()
            obj = scenario(app, name)
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(rounds):
                seconds, our_text = timed(memguard_chain, obj)
                ours.append(seconds)
                seconds, their_text = timed(objgraph_chain, obj)
                theirs.append(seconds)
            chains[name] = (our_text, their_text)
            ours_ms, theirs_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
            key = f"{name}, {tracked // 1000}k objects"
            objgraph_found = their_text != "(no chain)"
            if objgraph_found:  # a ratio against a search that found nothing means nothing
                ratios[f"{key}: objgraph / memguard"] = round(theirs_ms / ours_ms, 2)
            figures[f"{key}: memguard ms"] = round(ours_ms, 2)
            figures[f"{key}: objgraph ms"] = round(theirs_ms, 2)
            table.append({"scenario": key, "memguard ms": round(ours_ms, 1),
                          "objgraph ms": round(theirs_ms, 1),
                          "objgraph / memguard": round(theirs_ms / ours_ms, 2)
                          if objgraph_found else "no chain found by objgraph"})
            del obj, app
            sys.modules.pop(MODULE, None)
        del heap
        gc.collect()
    notes = [f"{name}: memguard: {ours}  |  objgraph: {theirs}"
             for name, (ours, theirs) in chains.items()]
    return {
        "title": "Who holds an object",
        "description": ("`memguard.holders.find_holder_chain` against objgraph's "
                        "`find_backref_chain(obj, is_proper_module)`, median of "
                        f"{rounds} rounds; the ratio is objgraph's time over memguard's."),
        "unit": "objgraph time / memguard time",
        "ratios": ratios,
        "figures": figures,
        "table": table,
        "notes": notes,
    }


if __name__ == "__main__":
    import json

    result = main(quick="--full" not in sys.argv)
    for row in result["table"]:
        print(row)
    for note in result["notes"]:
        print(note)
    json.dump(result["ratios"], sys.stdout, indent=1)
    print()
