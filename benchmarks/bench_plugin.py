"""The pytest plugin's cost on a real test suite that is not ours.

The suite is toolz's own tests (a few hundred plain pytest functions, pure
Python), taken from the toolz wheel, which ships them: the wheel is fetched
with ``pip download`` into a temporary folder at benchmark time and unpacked
there, never installed. Each round runs, in a fresh interpreter and in turn:

* ``plain``: pytest with memguard and pytest-memray installed but unused;
* ``memguard absent``: the same with ``-p no:memguard`` (what an unused
  memguard costs: the difference to ``plain``);
* ``--memguard``: every test's traced peak, and the summary table;
* ``--memray``: pytest-memray's per-test tracking, and its summary.

The figure is the median CPU time (user + system) of the whole ``pytest``
process over the rounds, which a busy machine disturbs far less than wall
time (wall times are kept in the figures too); ratios are over ``plain``.
When the wheel cannot be fetched (no network), the installed jsonschema's
own tests are used instead; they are ``unittest`` classes, which
pytest-memray does not track (it hooks ``pytest_pyfunc_call`` only), so
the comparison is then noted as unfair.

Run alone::

    .venv/bin/python benchmarks/bench_plugin.py [--quick]
"""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

TOOLZ = "toolz==1.2.0"
CONFIGS: dict[str, tuple[str, ...]] = {
    "plain": (),
    "memguard absent": ("-p", "no:memguard"),
    "--memguard": ("--memguard",),
    "--memray": ("--memray",),
}
_PASSED = re.compile(r"(\d+) passed")


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


def jsonschema_tests() -> list[str]:
    """The installed jsonschema's own tests that run without extra data or packages."""
    import jsonschema

    tests = Path(jsonschema.__file__).parent / "tests"
    names = ["test_validators.py", "test_format.py", "test_types.py", "test_utils.py"]
    return [str(tests / name) for name in names if (tests / name).exists()]


def run_suite(targets: list[str], extra: tuple[str, ...], cwd: Path,
              pythonpath: Path | None) -> tuple[float, float, int]:
    """CPU seconds and wall seconds of one pytest run, and how many tests passed."""
    env = None
    if pythonpath is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "no:randomly", "-o", "addopts=", *extra, *targets]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = _PASSED.search(done.stdout.splitlines()[-1] if done.stdout else "")
    if done.returncode not in (0, 1) or match is None:
        raise RuntimeError(f"pytest {' '.join(extra)} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return cpu, seconds, int(match[1])


def main(quick: bool) -> dict[str, Any]:
    rounds = 2 if quick else 7
    with tempfile.TemporaryDirectory(prefix="memguard-bench-plugin-") as tmp:
        folder = Path(tmp)
        tests = fetch_toolz(folder)
        notes = []
        if tests is not None:
            suite, targets, pythonpath = "toolz", [str(tests)], folder / "site"
        else:
            suite, targets, pythonpath = "jsonschema", jsonschema_tests(), None
            notes.append("toolz could not be fetched; jsonschema's unittest-style tests were "
                         "used, which pytest-memray does not track, so --memray's figure "
                         "understates its cost")
        run_suite(targets, (), folder, pythonpath)  # warm the bytecode caches
        times: dict[str, list[float]] = {name: [] for name in CONFIGS}
        walls: dict[str, list[float]] = {name: [] for name in CONFIGS}
        counts: dict[str, int] = {}
        for _ in range(rounds):
            for name, extra in CONFIGS.items():  # interleaved: drift hits all alike
                cpu, seconds, passed = run_suite(targets, extra, folder, pythonpath)
                times[name].append(cpu)
                walls[name].append(seconds)
                counts[name] = passed
    median = {name: statistics.median(values) for name, values in times.items()}
    plain = median["plain"]
    ratios = {
        f"{suite} suite: --memguard (memguard)": median["--memguard"] / plain,
        f"{suite} suite: --memray (pytest-memray)": median["--memray"] / plain,
        f"{suite} suite: installed, unused (memguard)": plain / median["memguard absent"],
    }
    figures = {f"{name} median cpu s": value for name, value in median.items()}
    figures.update({f"{name} median wall s": statistics.median(values)
                    for name, values in walls.items()})
    figures.update({f"{name} tests passed": float(count) for name, count in counts.items()})
    notes.append(f"{counts['plain']} tests, median of {rounds} interleaved rounds; CPU time of "
                 f"the whole pytest process, interpreter start-up included")
    return {
        "title": "pytest plugin on a real suite",
        "description": (f"{suite}'s own test suite run plain, with --memguard (every test's "
                        "peak and the summary table) and with pytest-memray's --memray; "
                        "and the cost of memguard installed but unused."),
        "unit": "CPU time / plain pytest CPU time",
        "ratios": ratios,
        "figures": figures,
        "table": [{"run": name, "median cpu seconds": round(value, 3),
                   "ratio": round(value / plain, 3)} for name, value in median.items()],
        "notes": notes,
    }


if __name__ == "__main__":
    result = main("--quick" in sys.argv)
    for row in result["table"]:
        print(f"{row['run']:>16}: {row['median cpu seconds']:7.3f} s CPU  "
              f"{row['ratio']:.3f}x plain")
    for label, ratio in result["ratios"].items():
        print(f"{label}: {ratio:.3f}x")
    for note in result["notes"]:
        print(f"note: {note}")
