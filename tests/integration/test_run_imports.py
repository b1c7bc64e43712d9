"""``memguard run`` measures an import-heavy program as ``python -X tracemalloc`` does (issue 14).

memguard imports some 90 modules for itself; a program run in memguard's
process found them already there and its imports were never counted (15%
low on the program below); with memguard's standard-library imports taken
out of ``sys.modules`` for the run, 3.7% low (the names memguard's copies
had interned). The program now runs in a fresh interpreter where only
memguard's agent, built-in modules only, was loaded before it
(:mod:`memguard.program.spawn`); the target is 2%.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memguard.values.files import load

#: The program measures itself the same way under both: its traced peak
#: above the level at its first line. It prints that, and the modules
#: already imported at its first line.
PROGRAM = textwrap.dedent("""\
    import _tracemalloc  # built in, as gc and sys: nothing imported before the first reading
    import gc
    import sys
    gc.disable()  # no collection: the figure must not hang on where they fall (see the test)
    start = _tracemalloc.get_traced_memory()[0]
    first = sorted(sys.modules)
    import argparse, asyncio, csv, dataclasses, datetime, decimal, email.message
    import email.parser, html.parser, http.client, http.server, inspect, json
    import logging.handlers, pickle, pprint, sqlite3, statistics, tarfile, typing
    import unittest, urllib.request, uuid, xml.dom.minidom, xml.etree.ElementTree
    import zipfile, gzip, shlex, shutil, platform
    rows = [{"n": i, "s": str(i) * 3} for i in range(20000)]
    text = json.dumps(rows)
    del rows
    peak = _tracemalloc.get_traced_memory()[1] - start
    print(json.dumps({"modules": first, "peak": peak}), file=sys.stderr)
""")

def _figures(stderr: str) -> dict[str, object]:
    line = next(x for x in stderr.splitlines() if x.startswith('{"modules"'))
    figures: dict[str, object] = json.loads(line)
    return figures


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], dict[str, object],
                                                            int]:
    folder = tmp_path_factory.mktemp("imports")
    script = folder / "heavy.py"
    script.write_text(PROGRAM)
    plain = subprocess.run([sys.executable, "-X", "tracemalloc", str(script)], cwd=folder,
                           capture_output=True, text=True, timeout=300, check=True)
    # --no-sites: the sites captured near the peak are the watcher's own
    # work, whose share of the figures is judged elsewhere; here the
    # question is only whether the program's imports are counted.
    measured = subprocess.run(
        [sys.executable, "-m", "memguard", "run", "--no-sites", "-o", str(folder / "run.json"),
         str(script)], cwd=folder, capture_output=True, text=True, timeout=300, check=True)
    run = load(folder / "run.json")
    return _figures(plain.stderr), _figures(measured.stderr), run.traced_peak_above_start_bytes


def test_the_traced_peak_is_within_2_percent_of_python_x_tracemalloc(
        runs: tuple[dict[str, object], dict[str, object], int]) -> None:
    """The run file's peak, and the program's own reading under memguard, against python's.

    The collector is off in the program: with it on, this peak moved by 2-4%
    with where the collections fell (any change to memguard's own code moved
    them; that is issue 21's matter, tested on its own).
    """
    plain, under_memguard, run_peak = runs
    expected = plain["peak"]
    own = under_memguard["peak"]
    assert isinstance(expected, int)
    assert isinstance(own, int)
    assert expected > 10 * 2**20  # the imports and the rows: an import-heavy program
    assert abs(run_peak / expected - 1) <= 0.02, (run_peak, expected)
    assert abs(own / expected - 1) <= 0.02, (own, expected)


def test_copies_of_the_sites_leave_the_figures_as_they_were(
        tmp_path: Path, runs: tuple[dict[str, object], dict[str, object], int]) -> None:
    """The same program with the sites copied near its peak (the default): the
    same peak as without, within 0.5%, and within 2% of python's.

    With the counter, each copy is made in a forked copy of the process, so
    the program's process makes no object for it. Made in the process itself,
    the copy's tuples went, freed, to CPython's free lists untraced, and the
    program's next tuples reused them unseen: 3.3% low here, against 1.0%.
    """
    from memguard import _counter

    if not _counter.available():
        pytest.skip(f"copies are made in the process without the counter: "
                    f"{_counter.unavailable_reason()}")
    plain, _, without_sites = runs
    script = tmp_path / "heavy.py"
    script.write_text(PROGRAM)
    subprocess.run([sys.executable, "-m", "memguard", "run", "-o", str(tmp_path / "run.json"),
                    str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                   check=True)
    run = load(tmp_path / "run.json")
    assert run.sites  # copied near the peak
    assert run.sites_above_start_bytes is not None
    assert run.sites_above_start_bytes >= 0.5 * run.traced_peak_above_start_bytes
    with_sites = run.traced_peak_above_start_bytes
    assert abs(with_sites / without_sites - 1) <= 0.005, (with_sites, without_sites)
    expected = plain["peak"]
    assert isinstance(expected, int)
    assert abs(with_sites / expected - 1) <= 0.02, (with_sites, expected)


def test_the_program_starts_with_what_python_starts_it_with(
        runs: tuple[dict[str, object], dict[str, object], int]) -> None:
    """Nothing of memguard's, and no module with a file: only built-in modules are added."""
    plain, under_memguard, _ = runs
    before = set(plain["modules"])  # type: ignore[call-overload]
    now = set(under_memguard["modules"])  # type: ignore[call-overload]
    assert now >= before, sorted(before - now)
    assert now - before <= set(sys.builtin_module_names), sorted(now - before)


def test_an_in_process_run_lends_its_imports_and_keeps_its_own_copies(tmp_path: Path) -> None:
    """``run_program(lend_imports=True)``, the way in of ``--lines``: the program
    imports its own copy of a module memguard uses; memguard keeps its own.
    (In a fresh interpreter: in pytest's, the module may predate memguard.)"""
    script = tmp_path / "uses_decimal.py"
    script.write_text("import decimal, pathlib, sys\n"
                      "pathlib.Path(sys.argv[1]).write_text(str(id(decimal)))\n")
    seen = tmp_path / "id.txt"
    check = textwrap.dedent(f"""\
        import sys
        import memguard.units, decimal
        from memguard.program import Program, run_program
        run = run_program(Program({str(script)!r}, ({str(seen)!r},)), lend_imports=True,
                          census=False)
        assert run.exit_code == 0
        print(int(open({str(seen)!r}).read()) != id(decimal), sys.modules["decimal"] is decimal)
    """)
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          timeout=300, check=True)
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr


@pytest.mark.parametrize("options", [[], ["--rss"], ["--children"], ["--lines", "idle.py:nothing"]])
def test_memguard_imports_nothing_while_the_program_runs(tmp_path: Path,
                                                         options: list[str]) -> None:
    """An import made by memguard's threads during the run would be traced as the
    program's (``--children`` imported psutil, socket and subprocess that way)."""
    pytest.importorskip("psutil")
    script = tmp_path / "idle.py"
    script.write_text(textwrap.dedent("""\
        import sys, time
        before = set(sys.modules)
        for _ in range(20):  # a few of memguard's samples, whatever the machine's speed
            block = bytearray(10**6)
            time.sleep(0.02)
        print(sorted(set(sys.modules) - before))
    """))
    done = subprocess.run([sys.executable, "-m", "memguard", "run", *options, "--interval",
                           "0.005", "-o", str(tmp_path / "run.json"), str(script)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == "[]", done.stdout
