"""L9 front end: ``%memguard_holders EXPR``, who holds an object in a notebook.

The search is :func:`memguard.holders.search_holders`. In a notebook the
object is nearly always also bound to a name the user typed (``session``) or
kept by IPython's output cache (``_``, ``_7``, ``Out[7]``); those are the
user's own references, and as the shortest chains they would hide the one
the user is after. They are set aside while the search runs, put back
afterwards (same names, same values), and listed separately.

With Graphviz's ``dot`` on ``PATH``, the chain that answers is drawn as a
small PNG shown in place (only that chain: never IPython's internals or
memguard's own objects); without it, the magic says so.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..holders import HolderSearch, describe, search_holders

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["HolderAnswer", "draw_chain", "find_holders"]

_DOT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class HolderAnswer:
    """What ``%memguard_holders`` found (plain data, no user objects).

    Example:
        >>> from memguard.holders import HolderSearch
        >>> search = HolderSearch(steps=("app.BUS", "._handlers", "[0]", "Session"),
        ...                       status="found", depth=3, elapsed_seconds=0.01, examined=9)
        >>> print(HolderAnswer("session", "Session", search, ("session",)))
        who holds session (Session):
          app.BUS._handlers[0] -> Session
          not counted, the notebook's own references: session
    """

    expression: str
    """The expression as the user typed it."""
    kind: str
    """A short description of the object (its type, or a function's name)."""
    search: HolderSearch
    """The search's outcome."""
    own_references: tuple[str, ...]
    """The notebook names and output-cache entries that were set aside."""

    def __str__(self) -> str:
        lines = [f"who holds {self.expression} ({self.kind}):", f"  {self.search.text}"]
        if self.own_references:
            lines.append("  not counted, the notebook's own references: "
                         + ", ".join(self.own_references))
        return "\n".join(lines)


class _SetAside:
    """Unbinds the notebook's own direct references to an object inside a ``with``.

    They are the user's names, IPython's output cache (``Out``, ``_N``, and
    the ``_``/``__``/``___`` that the display hook also keeps as attributes)
    and its hidden copy of those names (``user_ns_hidden``).
    """

    def __init__(self, shell: InteractiveShell, obj: object) -> None:
        namespace = shell.user_ns
        outputs = namespace.get("Out")
        self.dicts: list[dict[Any, Any]] = [namespace, shell.user_ns_hidden]
        if isinstance(outputs, dict):
            self.dicts.append(outputs)
        self.saved: list[dict[Any, Any]] = [
            {key: value for key, value in mapping.items() if value is obj}
            for mapping in self.dicts
        ]
        self.hook = shell.displayhook
        self.hooked = {name: obj for name in ("_", "__", "___")
                       if getattr(self.hook, name, None) is obj}
        shown = sorted(self.saved[0], key=lambda name: (str(name).startswith("_"), str(name)))
        outs = sorted(self.saved[2]) if len(self.saved) > 2 else []
        self.labels: tuple[str, ...] = (*map(str, shown), *(f"Out[{key}]" for key in outs))
        """The references set aside: notebook names first, then output-cache entries."""

    def __enter__(self) -> _SetAside:
        for mapping, saved in zip(self.dicts, self.saved, strict=True):
            for key in saved:
                del mapping[key]
        for name in self.hooked:
            setattr(self.hook, name, None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for mapping, saved in zip(self.dicts, self.saved, strict=True):
            mapping.update(saved)
            saved.clear()
        for name, value in self.hooked.items():
            setattr(self.hook, name, value)
        self.hooked.clear()


def find_holders(shell: InteractiveShell, expression: str, obj: object, *,
                 max_depth: int, max_seconds: float) -> HolderAnswer:
    """Search who holds *obj*, leaving the notebook's own references out.

    Example:
        ``print(find_holders(shell, "s", s, max_depth=15, max_seconds=1.0))``
    """
    aside = _SetAside(shell, obj)
    own = aside.labels
    with aside:
        search = search_holders(obj, max_depth=max_depth, max_seconds=max_seconds,
                                ignore=(*aside.saved, aside.hooked, aside.saved))
    return HolderAnswer(expression, describe(obj), search, own)


def draw_chain(answer: HolderAnswer) -> bytes | str:
    """Draw the chain that answers (root first, the object last) as a PNG with Graphviz.

    Only the answer is drawn: one box per step of :attr:`HolderAnswer.search`'s
    chain, so neither IPython's internals nor memguard's own objects appear,
    and the image stays small enough to read at its natural size.

    Returns:
        The PNG's bytes, or a sentence saying why there is no image.

    Example:
        ``draw_chain(find_holders(shell, "session", session, max_depth=15, max_seconds=2))``
    """
    steps = answer.search.steps
    if not steps:
        return "no graph image: there is no chain to draw"
    dot = shutil.which("dot")
    if dot is None:
        return ("no graph image: Graphviz's `dot` is not installed (install the graphviz "
                "package of your system to get one)")
    try:
        done = subprocess.run([dot, "-Tpng", "-Gdpi=96"], input=_chain_dot(answer).encode(),
                              capture_output=True, timeout=_DOT_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"no graph image: running {dot} failed: {error}"
    if done.returncode != 0:
        return (f"no graph image: {dot} exited with {done.returncode}: "
                f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _quote(text: str, width: int = 60) -> str:
    """A DOT string: cut to *width* per line, quotes and backslashes escaped."""
    lines = [line if len(line) <= width else line[:width - 3] + "..."
             for line in text.split("\n")]
    escaped = [line.replace("\\", "\\\\").replace('"', '\\"') for line in lines]
    return '"' + "\\n".join(escaped) + '"'


def _chain_dot(answer: HolderAnswer) -> str:
    """The DOT source of the chain: a root box, one box per reference, the object last."""
    steps = answer.search.steps or ()
    lines = ["digraph holders {", "  rankdir=TB; nodesep=0.25; ranksep=0.3;",
             '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=12];',
             '  edge [fontname="Helvetica", fontsize=10, color="#718096"];']
    prefixes = list(itertools.accumulate(steps[:-1])) or [answer.expression]
    last = len(prefixes) - 1
    for index, path in enumerate(prefixes[:-1]):
        lines.append(f"  n{index} [label={_quote(path)}];")
    label = f"{prefixes[-1]}\n= {answer.expression} ({answer.kind})"
    lines.append(f'  n{last} [label={_quote(label, 120)}, style="rounded,bold", '
                 'color="#c53030"];')
    lines.extend(f"  n{index} -> n{index + 1};" for index in range(last))
    lines.append("}")
    return "\n".join(lines) + "\n"
