"""L9 front end: the pytest plugin, loaded through the ``pytest11`` entry point.

What it offers (see ``docs/guide/pytest.md``):

* markers ``memguard_limit("100 MB", source=...)`` and
  ``memguard_leaks(repeat=...)``, and pytest-memray's ``limit_memory`` and
  ``limit_leaks`` whenever pytest-memray itself is not loaded;
* a ``memguard`` fixture with ``limit``, ``track_leaks``, ``check_leaks``,
  ``watch``, ``expect_collected`` and ``snapshot``;
* ``--memguard-limit SIZE`` (ini ``memguard_limit``), a budget for every test;
* ``--memguard`` per-test peaks and a summary table, ``--memguard-json``,
  ``--memguard-save NAME`` and ``--memguard-compare NAME
  --memguard-fail-over 10%`` baselines, all of them across pytest-xdist workers.

It is inert unless used: with no memguard option, marker or fixture in a run,
no hook of memguard's runs on any test, nothing is traced, no file is written
and no environment variable is set. The hooks here are thin; the work is in
:mod:`memguard._pytest`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ._pytest.markers import memray_active, register_markers, uses_memguard
from ._pytest.options import add_options, read_settings

if TYPE_CHECKING:
    from ._pytest.fixture import MemguardFixture
    from ._pytest.session import MemguardSession

__all__ = ["memguard"]

_PLUGIN_NAME = "memguard-session"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)
    settings = read_settings(config)
    if settings.active or settings.compare_path is not None:
        _activate(config)


def _activate(config: pytest.Config) -> MemguardSession:
    """Register the session plugin once; later calls return it."""
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    if plugin is None:
        from ._pytest.session import MemguardSession

        plugin = MemguardSession(config, read_settings(config))
        config.pluginmanager.register(plugin, _PLUGIN_NAME)
    return plugin


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.pluginmanager.get_plugin(_PLUGIN_NAME) is not None:
        return
    honour_memray = not memray_active(config)
    if any(uses_memguard(item, honour_memray=honour_memray) for item in items):
        _activate(config)


@pytest.fixture
def memguard(request: pytest.FixtureRequest) -> Iterator[MemguardFixture]:
    """memguard's guards for one test: ``limit``, ``track_leaks``, ``check_leaks``,
    ``watch``, ``expect_collected`` and ``snapshot``.

    Objects given to ``memguard.expect_collected(obj)`` must be freed by the
    time the test function returns; one that is still alive fails the test.

    Example:
        .. code-block:: python

            def test_cache_frees_sessions(memguard):
                session = open_session()
                memguard.expect_collected(session)
                with memguard.limit(mb=50):
                    session.load()
    """
    from ._pytest.fixture import MemguardFixture
    from ._pytest.session import FIXTURE_KEY

    _activate(request.config)
    fixture = MemguardFixture(request.node.nodeid)
    request.node.stash[FIXTURE_KEY] = fixture
    try:
        yield fixture
    finally:
        del request.node.stash[FIXTURE_KEY]
        fixture.close()
