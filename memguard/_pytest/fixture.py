"""L9 front end: the ``memguard`` fixture's object.

It hands a test memguard's guards by their public names, and defers
``expect_collected``: the objects are watched (by weak reference only) and
judged right after the test function returns, in the plugin's call wrapper,
so a survivor fails the test as a failure (F) and not as a teardown error.
"""

from __future__ import annotations

from typing import Any

from .. import _tracing
from ..exceptions import CheckFailed
from ..guards.limit import limit

__all__ = ["MemguardFixture"]


class MemguardFixture:
    """What a test gets from the ``memguard`` fixture.

    Attributes:
        nodeid: The test's pytest node id, used as the default label.

    Example:
        .. code-block:: python

            def test_parse(memguard):
                with memguard.limit(mb=10):
                    parse(big_input)
    """

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self._watch: Any = None
        # The guards' modules are imported here, while the fixture is set up,
        # and not on first use inside the test body, where their import (about
        # 1 MiB on the first test) would count in the test's --memguard figure.
        from ..guards import watch  # noqa: F401
        from ..leaks import api  # noqa: F401
        from ..values import snapshot  # noqa: F401

    def __repr__(self) -> str:
        return f"<memguard fixture of {self.nodeid}>"

    limit = limit
    """:class:`memguard.limit`, a peak limit for a block or function."""

    @property
    def track_leaks(self) -> Any:
        """:func:`memguard.track_leaks`, the repeated-call leak check."""
        from ..leaks.api import track_leaks

        return track_leaks

    @property
    def check_leaks(self) -> Any:
        """:func:`memguard.check_leaks`, the same check as one call."""
        from ..leaks.api import check_leaks

        return check_leaks

    @property
    def watch(self) -> Any:
        """:func:`memguard.watch`, objects that must be freed by the end of a block."""
        from ..guards.watch import watch

        return watch

    def snapshot(self, label: str | None = None, *, census: bool = True) -> Any:
        """:func:`memguard.snapshot`: what is allocated now, by site and type."""
        from ..values.snapshot import take_snapshot

        return take_snapshot(label, census=census)

    def expect_collected(self, *objs: object) -> None:
        """Require *objs* to be freed by the time the test function returns.

        The objects are held by weak reference only. One still alive when the
        test body returns fails the test with the chain of references that
        holds it.
        """
        # memguard's bookkeeping (the watch, its weak references) is not the
        # test's: its peak is left out of every open window.
        with _tracing.excluded():
            if self._watch is None:
                from ..guards.watch import watch

                self._watch = watch(label=self.nodeid)
                self._watch.__enter__()
            for obj in objs:
                self._watch.add(obj)

    def judge(self, *, judge: bool) -> CheckFailed | None:
        """Close the watch; with *judge*, return its failure instead of raising it."""
        __tracebackhide__ = True
        watcher, self._watch = self._watch, None
        if watcher is None:
            return None
        if not judge:
            watcher.__exit__(_Skipped, _Skipped(), None)
            return None
        try:
            watcher.__exit__(None, None, None)
        except CheckFailed as failure:
            return failure
        return None

    def close(self) -> None:
        """Judge objects the call wrapper did not (the fixture came from
        ``request.getfixturevalue()`` inside the body); raises at tear-down."""
        __tracebackhide__ = True
        failure = self.judge(judge=True)
        if failure is not None:
            raise failure


class _Skipped(Exception):
    """Stands for the test's own failure when a watch is closed without a verdict."""
