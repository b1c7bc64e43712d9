"""An unused plugin is inert: no tracing, no files, no environment, no hooks, cheap import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

Run = Callable[..., pytest.RunResult]

HEAVY = ("matplotlib", "IPython", "objgraph", "pympler", "psutil")

IMPORT_PROBE = """
import json, sys, sysconfig, tracemalloc
import pytest
before = set(sys.modules)
import memguard
package = sorted(set(sys.modules) - before)
import memguard.pytest_plugin
added = sorted(set(sys.modules) - before)
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
foreign = [name for name in added if not name.startswith("memguard")
           and (getattr(sys.modules[name], "__file__", None) or stdlib[0]).startswith(stdlib)
           is False]
print(json.dumps({"added": added, "package": package, "tracing": tracemalloc.is_tracing(),
                  "foreign": foreign}))
"""


def test_import_is_cheap() -> None:
    """The plugin's import, on top of pytest's, loads memguard and a few stdlib modules only."""
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True,
                         check=True).stdout
    probe = json.loads(out)
    assert probe["tracing"] is False
    added = probe["added"]
    for heavy in HEAVY:
        assert not any(m == heavy or m.startswith(heavy + ".") for m in added), heavy
    assert probe["foreign"] == []  # nothing outside the standard library but memguard
    # What the plugin costs pytest's start-up is memguard itself and little else.
    assert len([m for m in added if not m.startswith("memguard")]) <= 25, added
    # Issue 13: on top of `import memguard`, the plugin loads its own modules and the
    # display options it shares with the command line, and not the command line
    # (28 memguard modules before, through cli.options -> cli/__init__ -> cli.run -> ...).
    ours = {m for m in added if m.startswith("memguard")}
    assert ours - set(probe["package"]) == {
        "memguard.pytest_plugin", "memguard._pytest", "memguard._pytest.markers",
        "memguard._pytest.options", "memguard.display"}
    assert not any(m.startswith("memguard.cli") for m in ours), sorted(ours)


def test_unused_plugin_does_nothing(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makeconftest("""
        import json, os, tracemalloc
        import pytest

        # The environment as it was before pytest started, saved by the outer test.
        with open("env.json") as stream:
            ENV = json.load(stream)

        @pytest.fixture(autouse=True)
        def check_inert(request):
            assert not tracemalloc.is_tracing()
            yield
            assert not tracemalloc.is_tracing()
            assert request.config.pluginmanager.get_plugin("memguard-session") is None
            env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
            assert env == ENV
            assert not request.node.user_properties
    """)
    pytester.makepyfile("""
        import tracemalloc

        def test_plain():
            data = bytearray(2_000_000)
            assert not tracemalloc.is_tracing()

        def test_other():
            pass
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    (pytester.path / "env.json").write_text(json.dumps(env))
    before = sorted(p.name for p in pytester.path.iterdir())
    result = run()
    result.assert_outcomes(passed=2)
    assert sorted(p.name for p in pytester.path.iterdir()) == before
    assert "memguard_" not in result.stdout.str()
    assert "memguard: " not in result.stdout.str()


def test_unused_plugin_runs_no_per_test_hook(pytester: pytest.Pytester, run: Run) -> None:
    """An unused run calls memguard only at start-up and once after collection."""
    pytester.makeconftest("""
        import memguard.pytest_plugin as plugin

        def pytest_sessionfinish(session):
            pm = session.config.pluginmanager
            names = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
            assert names == ["pytest_addoption", "pytest_collection_modifyitems",
                             "pytest_configure"], names
            assert pm.get_plugin("memguard-session") is None
    """)
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = run()
    result.assert_outcomes(passed=1)
    assert result.ret == 0


def test_plugin_registers_only_when_asked(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile("""
        import pytest

        def test_session_plugin(request):
            assert request.config.pluginmanager.get_plugin("memguard-session") is not None

        @pytest.mark.memguard_limit("10 MB")
        def test_marked():
            pass
    """)
    run().assert_outcomes(passed=2)
