"""The pytest plugin's cost on real test suites that are not ours.

Three suites, each run in a fresh interpreter per configuration:

* **toolz**'s own tests (a few hundred plain pytest functions, pure Python,
  few allocations), from the toolz wheel, which ships them;
* **more-itertools**' tests (765 ``unittest`` tests, allocation-heavy: prime
  sieves, tees over threads), from its source distribution. ``--quick`` runs
  ``test_recipes.py`` but ``test_primes`` (the heaviest: 9 s plain, 105 s
  under tracemalloc); the full run runs the whole suite once. When it cannot be
  fetched (no network), a generated allocation-heavy suite stands in, and the
  notes say so;
* a **limit_leaks** file of 7 tests, 4 of which leak: memguard's
  pytest-memray compatibility path against pytest-memray itself (issue 17:
  naming each frame's function once parsed every file in the stack).

Both packages are fetched with ``pip download`` into a temporary folder and
unpacked there, never installed. The configurations, interleaved round by
round so that drift hits all alike:

* ``plain``: pytest with memguard and pytest-memray installed but unused;
* ``memguard absent``: the same with ``-p no:memguard`` (what an unused
  memguard costs: the difference to ``plain``);
* ``--memguard``: every test's Python-heap peak, measured by the native
  allocation counter where it is built, and the summary table;
* ``--memguard (tracemalloc)``: the same with ``MEMGUARD_NO_NATIVE=1``, the
  measure used where the counter is not built;
* ``--memguard-source rss``: every test's RSS peak (the kernel's high-water mark);
* ``--memray``: pytest-memray's per-test tracking, and its summary. It hooks
  ``pytest_pyfunc_call`` only, so on ``unittest`` suites it measures nothing
  and its figure is a floor, not its cost.

The figure is the median CPU time (user + system) of the whole ``pytest``
process over the rounds, which a busy machine disturbs far less than wall
time (wall times are kept in the figures too); ratios are over ``plain``.

Run alone::

    .venv/bin/python benchmarks/bench_plugin.py [--quick]
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

TOOLZ = "toolz==1.2.0"
MORE_ITERTOOLS = "more-itertools==11.2.1"
NO_NATIVE = {"MEMGUARD_NO_NATIVE": "1"}
CONFIGS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "plain": ((), {}),
    "memguard absent": (("-p", "no:memguard"), {}),
    "--memguard": (("--memguard",), {}),
    "--memguard (tracemalloc)": (("--memguard",), NO_NATIVE),
    "--memguard-source rss": (("--memguard", "--memguard-source", "rss"), {}),
    "--memray": (("--memray",), {}),
}
LEAK_CONFIGS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "plain": (("-p", "no:memguard", "-p", "no:memray"), {}),
    "memguard limit_leaks": (("-p", "no:memray"), {}),
    "pytest-memray limit_leaks": (("--memray",), {}),
}
_PASSED = re.compile(r"(\d+) passed")

SYNTHETIC = """
import pytest

@pytest.mark.parametrize("n", range(40))
def test_build_strings(n):
    rows = [str(i) * 3 for i in range(20_000 + n)]
    assert len(rows) == 20_000 + n

@pytest.mark.parametrize("n", range(40))
def test_dicts_of_tuples(n):
    table = {i: (i, str(i), [i]) for i in range(10_000)}
    assert len(table) == 10_000

@pytest.mark.parametrize("n", range(20))
def test_sieve(n):
    limit = 50_000
    flags = [True] * limit
    primes = []
    for i in range(2, limit):
        if flags[i]:
            primes.append(i)
            for j in range(i * i, limit, i):
                flags[j] = False
    assert primes[:3] == [2, 3, 5]
"""

LEAKY = """
import pytest

KEPT = []

@pytest.mark.limit_leaks("1 KB")
def test_leak_bytes():
    KEPT.append(bytearray(100_000))

@pytest.mark.limit_leaks("1 KB")
def test_leak_strings():
    KEPT.append([str(i) for i in range(2000)])

@pytest.mark.limit_leaks("1 MB")
def test_freed():
    data = bytearray(100_000)

@pytest.mark.limit_leaks("1 KB")
def test_leak_dict():
    KEPT.append({i: i for i in range(1000)})

@pytest.mark.limit_leaks("1 MB")
def test_nothing():
    pass

@pytest.mark.limit_leaks("1 KB")
def test_leak_small():
    KEPT.append(bytearray(10_000))

@pytest.mark.limit_leaks("1 MB")
def test_nothing_again():
    pass
"""


def fetch_toolz(folder: Path) -> Path | None:
    """Download toolz's wheel and unpack it; returns its tests folder, or None."""
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                        ":all:", "-q", "-d", str(folder), TOOLZ], check=True,
                       capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError):
        return None
    wheels = sorted(folder.glob("toolz-*.whl"))
    if not wheels:
        return None
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(folder / "site")
    return folder / "site" / "toolz" / "tests"


def fetch_more_itertools(folder: Path) -> Path | None:
    """Download more-itertools' source distribution and unpack it; returns its folder."""
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "-q", "-d", str(folder), MORE_ITERTOOLS], check=True,
                       capture_output=True, timeout=180)
    except (subprocess.SubprocessError, OSError):
        return None
    archives = sorted(folder.glob("more_itertools-*.tar.gz"))
    if not archives:
        return None
    with tarfile.open(archives[0]) as archive:
        archive.extractall(folder / "src", filter="data")
    found = sorted((folder / "src").glob("more_itertools-*"))
    return found[0] if found and (found[0] / "tests").is_dir() else None


def jsonschema_tests() -> list[str]:
    """The installed jsonschema's own tests that run without extra data or packages."""
    import jsonschema

    tests = Path(jsonschema.__file__).parent / "tests"
    names = ["test_validators.py", "test_format.py", "test_types.py", "test_utils.py"]
    return [str(tests / name) for name in names if (tests / name).exists()]


def run_suite(targets: list[str], extra: tuple[str, ...], cwd: Path,
              pythonpath: Path | None, env_extra: dict[str, str]) -> tuple[float, float, int]:
    """CPU seconds and wall seconds of one pytest run, and how many tests passed."""
    env = {**os.environ, **env_extra}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "no:randomly", "-o", "addopts=", *extra, *targets]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1800)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = _PASSED.search(done.stdout.splitlines()[-1] if done.stdout else "")
    if done.returncode not in (0, 1) or match is None:
        raise RuntimeError(f"pytest {' '.join(extra)} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return cpu, seconds, int(match[1])


Suite = tuple[str, list[str], Path, Path | None]


def measure(suite: Suite, configs: dict[str, tuple[tuple[str, ...], dict[str, str]]],
            rounds: int) -> dict[str, dict[str, Any]]:
    """Median CPU and wall seconds, and tests passed, of each configuration on *suite*."""
    _, targets, cwd, pythonpath = suite
    run_suite(targets, (), cwd, pythonpath, {})  # warm the bytecode caches
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    wall: dict[str, list[float]] = {name: [] for name in configs}
    passed: dict[str, int] = {}
    for _ in range(rounds):
        for name, (extra, env) in configs.items():  # interleaved: drift hits all alike
            seconds, elapsed, count = run_suite(targets, extra, cwd, pythonpath, env)
            cpu[name].append(seconds)
            wall[name].append(elapsed)
            passed[name] = count
    return {name: {"cpu": statistics.median(cpu[name]), "wall": statistics.median(wall[name]),
                   "passed": passed[name]} for name in configs}


def suites(folder: Path, quick: bool, notes: list[str]) -> list[Suite]:
    """The light suite (toolz) and the allocation-heavy one (more-itertools)."""
    found: list[Suite] = []
    tests = fetch_toolz(folder)
    if tests is not None:
        found.append(("toolz", [str(tests)], folder, folder / "site"))
    else:
        found.append(("jsonschema", jsonschema_tests(), folder, None))
        notes.append("toolz could not be fetched; jsonschema's unittest-style tests were "
                      "used, which pytest-memray does not track, so --memray's figure "
                      "understates its cost")
    source = fetch_more_itertools(folder)
    if source is not None:
        selection = (["tests/test_recipes.py", "-k", "not test_primes"] if quick else ["tests"])
        found.append(("more-itertools", selection, source, source))
        notes.append("more-itertools: " + ("test_recipes.py but test_primes (--quick)" if quick
                                          else "its whole test suite") +
                     "; unittest tests, which pytest-memray does not track: its figure there "
                     "is a floor, not its cost")
    else:
        heavy = folder / "heavy"
        heavy.mkdir()
        (heavy / "test_heavy.py").write_text(SYNTHETIC)
        found.append(("synthetic allocation-heavy", [str(heavy)], heavy, None))
        notes.append("more-itertools could not be fetched; a generated allocation-heavy "
                     "suite (100 tests building strings, dicts and sieves) stood in")
    return found


def main(quick: bool) -> dict[str, Any]:
    rounds = 3 if quick else 7
    notes: list[str] = []
    ratios: dict[str, float] = {}
    figures: dict[str, float] = {}
    table: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="memguard-bench-plugin-") as tmp:
        folder = Path(tmp)
        leaky = folder / "leaky"
        leaky.mkdir()
        (leaky / "test_leaky.py").write_text(LEAKY)
        runs = [(suite, CONFIGS, 1 if suite[0] == "more-itertools" and not quick else rounds)
                for suite in suites(folder, quick, notes)]
        runs.append((("limit_leaks", [str(leaky)], leaky, None), LEAK_CONFIGS, rounds + 2))
        for suite, configs, count in runs:
            name = suite[0]
            result = measure(suite, configs, count)
            plain = result["plain"]["cpu"]
            for config, values in result.items():
                figures[f"{name}: {config} median cpu s"] = values["cpu"]
                figures[f"{name}: {config} median wall s"] = values["wall"]
                figures[f"{name}: {config} tests passed"] = float(values["passed"])
                table.append({"suite": name, "run": config, "median cpu seconds":
                              round(values["cpu"], 3), "ratio": round(values["cpu"] / plain, 3)})
                if config != "plain":
                    ratios[f"{name}: {config}"] = values["cpu"] / plain
            notes.append(f"{name}: {result['plain']['passed']} tests passed, median of {count} "
                         f"interleaved round(s)")
    notes.append("CPU time of the whole pytest process, interpreter start-up included; "
                 "'memguard absent' is -p no:memguard, so plain / absent is what an unused "
                 "memguard costs")
    return {
        "title": "pytest plugin on real suites",
        "description": ("toolz's tests (light) and more-itertools' tests (allocation-heavy) run "
                        "plain, with --memguard (native counter, and tracemalloc), with "
                        "--memguard-source rss and with pytest-memray's --memray; and a "
                        "limit_leaks file under memguard and under pytest-memray."),
        "unit": "CPU time / plain pytest CPU time",
        "ratios": ratios,
        "figures": figures,
        "table": table,
        "notes": notes,
    }


if __name__ == "__main__":
    outcome = main("--quick" in sys.argv)
    for row in outcome["table"]:
        print(f"{row['suite']:>16} {row['run']:>26}: {row['median cpu seconds']:8.3f} s CPU  "
              f"{row['ratio']:.3f}x plain")
    for note in outcome["notes"]:
        print(f"note: {note}")
