"""L9 front end: memguard's markers, pytest-memray's markers, and one test's plan.

A test's *plan* says which guards wrap its call: a :class:`memguard.limit`
(from ``memguard_limit``, pytest-memray's ``limit_memory`` or the default
budget), the leak check of ``memguard_leaks``, and pytest-memray's
``limit_leaks``. Markers are checked when the test is set up; a bad keyword
or value is a :class:`pytest.UsageError` naming it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..guards.limit import limit
from .options import Margin, Settings, parse_margin

__all__ = [
    "BASELINE_MARKER",
    "COMPAT_MARKERS",
    "MARKERS",
    "Plan",
    "build_plan",
    "memray_active",
    "parse_memray_size",
    "register_markers",
]

MARKERS: dict[str, str] = {
    "memguard_limit": (
        "memguard_limit(size, *, source='python', label=None, top=5, sites=True, "
        "interval=0.001, kb/mb/gb/kib/mib/gib=...): fail the test when its peak memory goes "
        "over size ('100 MB', mb=100, ...); the keywords are exactly memguard.limit()'s"
    ),
    "memguard_leaks": (
        "memguard_leaks(repeat=..., ...): call the test body repeatedly, fixtures set up once, "
        "and fail when memory, objects or resources grow per call; the keywords are exactly "
        "memguard.track_leaks()'s"
    ),
}
"""memguard's own markers and their help."""

BASELINE_MARKER: dict[str, str] = {
    "memguard_baseline": (
        "memguard_baseline(margin='50%'): how far this test's peak may grow over its "
        "baseline (a percentage or a size such as '8 MiB') before --memguard-compare fails "
        "it; replaces --memguard-fail-over for this test"
    ),
}
"""The baseline marker; it asks for nothing by itself, so it does not activate the plugin."""

COMPAT_MARKERS: dict[str, str] = {
    "limit_memory": (
        "limit_memory(limit, *, current_thread_only=False): pytest-memray's marker, honoured "
        "by memguard while pytest-memray is not active: fail when the test's peak Python heap "
        "reaches limit ('24 MB' means MiB, as in pytest-memray)"
    ),
    "limit_leaks": (
        "limit_leaks(location_limit, *, filter_fn=None, current_thread_only=False): "
        "pytest-memray's marker, honoured by memguard while pytest-memray is not active: fail "
        "when one allocation stack keeps location_limit or more after the test"
    ),
}
"""pytest-memray's markers, registered by memguard only when pytest-memray is not loaded."""

_MEMRAY_SIZE_RE = re.compile(r"^\s*\+?(?P<number>\d*\.\d+|\d+)\s*(?P<unit>[KMGTP]?B)\s*$", re.I)
_MEMRAY_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}


@dataclass(frozen=True, slots=True)
class MemrayLeaks:
    """pytest-memray's ``limit_leaks``: bytes one stack may keep, and its filter."""

    location_limit_bytes: int
    filter_fn: Callable[[Any], bool] | None = None


@dataclass(slots=True)
class Plan:
    """The guards that wrap one test's call.

    Example:
        >>> Plan().empty
        True
    """

    guard: limit | None = None
    """The peak limit, if any."""
    leaks: Mapping[str, Any] | None = None
    """``memguard_leaks``'s keywords, if the marker is there."""
    memray_leaks: MemrayLeaks | None = None
    """pytest-memray's ``limit_leaks``, if honoured."""
    notes: list[str] = field(default_factory=list)
    """Caveats to show with a failure."""
    margin: Margin | None = None
    """The ``memguard_baseline`` marker's margin over the baseline, if any."""

    @property
    def empty(self) -> bool:
        """Whether no guard applies."""
        return self.guard is None and self.leaks is None and self.memray_leaks is None


def register_markers(config: pytest.Config) -> None:
    """Register memguard's markers (and pytest-memray's when it is not loaded) with help."""
    markers = {**MARKERS, **BASELINE_MARKER}
    if not memray_active(config):
        markers.update(COMPAT_MARKERS)
    for name, text in markers.items():
        config.addinivalue_line("markers", text if text.startswith(name) else f"{name}: {text}")


def memray_active(config: pytest.Config) -> bool:
    """Whether pytest-memray's plugin is loaded, and so owns its own markers.

    pytest-memray honours ``limit_memory`` and ``limit_leaks`` whenever it is
    loaded, with or without ``--memray``; memguard then leaves them to it.
    """
    for plugin in config.pluginmanager.get_plugins():
        module = getattr(plugin, "__name__", None) or type(plugin).__module__
        if isinstance(module, str) and module.startswith("pytest_memray"):
            return True
    return False


def parse_memray_size(text: object, *, name: str) -> int:
    """Read a size the way pytest-memray does: ``KB``, ``MB`` ... are powers of 1024.

    Example:
        >>> parse_memray_size("24 MB", name="limit")
        25165824
    """
    match = _MEMRAY_SIZE_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{name}={text!r} is not a pytest-memray size such as '24 MB'")
    return round(float(match["number"]) * _MEMRAY_UNITS[match["unit"].upper()])


def _usage(item: pytest.Item, marker: str, message: str) -> pytest.UsageError:
    return pytest.UsageError(f"{item.nodeid}: @pytest.mark.{marker}: {message}")


def _check_keywords(item: pytest.Item, mark: pytest.Mark, allowed: Callable[..., Any],
                    *, positional: int) -> None:
    """Refuse keywords that *allowed*'s signature does not take, naming them."""
    __tracebackhide__ = True
    parameters = inspect.signature(allowed).parameters
    known = {name for name, p in parameters.items()
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    for keyword in mark.kwargs:
        if keyword not in known:
            raise _usage(item, mark.name, f"unknown keyword {keyword!r}; accepted: "
                                          f"{', '.join(sorted(known))}")
    if len(mark.args) > positional:
        raise _usage(item, mark.name, f"takes at most {positional} positional argument(s), "
                                      f"got {len(mark.args)}: {mark.args!r}")


def _limit_from_marker(item: pytest.Item, mark: pytest.Mark) -> limit:
    __tracebackhide__ = True
    _check_keywords(item, mark, limit, positional=1)
    kwargs = dict(mark.kwargs)
    kwargs.setdefault("label", item.nodeid)
    try:
        return limit(*mark.args, **kwargs)
    except (TypeError, ValueError) as error:
        raise _usage(item, mark.name, str(error)) from error


def _memray_limit(item: pytest.Item, mark: pytest.Mark) -> limit:
    __tracebackhide__ = True
    args = dict(zip(("limit",), mark.args, strict=False))
    kwargs = {**args, **mark.kwargs}
    unknown = sorted(set(kwargs) - {"limit", "current_thread_only"})
    if unknown or len(mark.args) > 1 or "limit" not in kwargs:
        raise _usage(item, mark.name, f"expected limit_memory(limit, *, current_thread_only=...), "
                                      f"got args {mark.args!r} and keywords {sorted(mark.kwargs)}")
    try:
        size = parse_memray_size(kwargs["limit"], name="limit")
    except ValueError as error:
        raise _usage(item, mark.name, str(error)) from error
    return limit(size, label=item.nodeid)


def _memray_leaks(item: pytest.Item, mark: pytest.Mark) -> MemrayLeaks:
    __tracebackhide__ = True
    args = dict(zip(("location_limit",), mark.args, strict=False))
    kwargs = {**args, **mark.kwargs}
    unknown = sorted(set(kwargs) - {"location_limit", "filter_fn", "current_thread_only"})
    if unknown or len(mark.args) > 1 or "location_limit" not in kwargs:
        raise _usage(item, mark.name, "expected limit_leaks(location_limit, *, filter_fn=..., "
                                      f"current_thread_only=...), got args {mark.args!r} and "
                                      f"keywords {sorted(mark.kwargs)}")
    filter_fn = kwargs.get("filter_fn")
    if filter_fn is not None and not callable(filter_fn):
        raise _usage(item, mark.name, f"filter_fn must be callable, not {filter_fn!r}")
    try:
        size = parse_memray_size(kwargs["location_limit"], name="location_limit")
    except ValueError as error:
        raise _usage(item, mark.name, str(error)) from error
    return MemrayLeaks(size, filter_fn)


def _leaks_options(item: pytest.Item, mark: pytest.Mark) -> Mapping[str, Any]:
    __tracebackhide__ = True
    from ..leaks import api as leaks  # imported when a test asks for it

    if not isinstance(item, pytest.Function) or type(item).__module__ == "_pytest.unittest":
        raise _usage(item, mark.name, "repeats a plain test function; this test is a "
                                      f"{type(item).__name__}")
    if mark.args:
        raise _usage(item, mark.name, f"takes keywords only, got {mark.args!r}")
    _check_keywords(item, mark, leaks.track_leaks, positional=0)
    options = dict(mark.kwargs)
    options.setdefault("label", item.nodeid)
    try:
        leaks.track_leaks(**options)  # validates the values now, at setup
    except (TypeError, ValueError) as error:
        raise _usage(item, mark.name, str(error)) from error
    return options


def _margin(item: pytest.Item, mark: pytest.Mark) -> Margin:
    __tracebackhide__ = True
    given = dict(zip(("margin",), mark.args, strict=False))
    unknown = sorted(set(mark.kwargs) - {"margin"})
    if unknown or len(mark.args) > 1 or (given and mark.kwargs):
        raise _usage(item, mark.name, f"expected memguard_baseline(margin=...), got args "
                                      f"{mark.args!r} and keywords {sorted(mark.kwargs)}")
    text = given.get("margin", mark.kwargs.get("margin"))
    if text is None:
        raise _usage(item, mark.name, "needs margin=, a percentage such as '50%' or a size "
                                      "such as '8 MiB'")
    try:
        return parse_margin(text, name="margin")
    except pytest.UsageError as error:
        raise _usage(item, mark.name, str(error)) from error


def _plain_function(item: pytest.Item) -> bool:
    """Whether *item* is a test function whose call pytest makes through
    ``pytest_pyfunc_call`` (not a unittest method, not a doctest)."""
    return isinstance(item, pytest.Function) and type(item).__module__ != "_pytest.unittest"


def build_plan(item: pytest.Item, settings: Settings, *, honour_memray: bool) -> Plan:
    """Read *item*'s markers into a :class:`Plan`; markers beat the default budget.

    Raises:
        pytest.UsageError: A marker has an unknown keyword or a bad value.
    """
    __tracebackhide__ = True
    plan = Plan()
    if settings.memray_markers == "functions" and not _plain_function(item):
        honour_memray = False  # as pytest-memray, which hooks pytest_pyfunc_call only
    mark = item.get_closest_marker("memguard_limit")
    memray_mark = item.get_closest_marker("limit_memory") if honour_memray else None
    if mark is not None:
        plan.guard = _limit_from_marker(item, mark)
    elif memray_mark is not None:
        plan.guard = _memray_limit(item, memray_mark)
    elif settings.default_limit_bytes is not None:
        plan.guard = limit(settings.default_limit_bytes, source=settings.source,  # type: ignore[arg-type]
                           label=item.nodeid)
    leaks_mark = item.get_closest_marker("memguard_leaks")
    if leaks_mark is not None:
        plan.leaks = _leaks_options(item, leaks_mark)
    memray_leaks_mark = item.get_closest_marker("limit_leaks") if honour_memray else None
    if memray_leaks_mark is not None:
        plan.memray_leaks = _memray_leaks(item, memray_leaks_mark)
    baseline_mark = item.get_closest_marker("memguard_baseline")
    if baseline_mark is not None:
        plan.margin = _margin(item, baseline_mark)
    return plan


def uses_memguard(item: pytest.Item, *, honour_memray: bool) -> bool:
    """Whether *item* asks for memguard through a marker or the fixture."""
    names = list(MARKERS) + (list(COMPAT_MARKERS) if honour_memray else [])
    if any(item.get_closest_marker(name) is not None for name in names):
        return True
    return "memguard" in getattr(item, "fixturenames", ())
