"""A small, hand-written mutation run: does the test suite catch plausible one-line bugs?

Each mutation is (file, exact original text, replacement) over one of the five
main features (limits, leak checks, snapshots and diffs, the program runner and
its command line, the pytest plugin). For each, the runner copies the tree to a
temporary folder (never touching the working tree), applies the one edit there,
runs only the test files that cover the feature, and counts the mutation as
*caught* when they fail. A mutation whose original text is no longer in the
file is reported as ``NOT FOUND`` (the code was refactored: update the list),
never silently counted either way.

    .venv/bin/python benchmarks/mutations.py              # every mutation
    .venv/bin/python benchmarks/mutations.py --list       # the list, and which are applicable
    .venv/bin/python benchmarks/mutations.py --only limit-exceeded-at-equality diff-top-ignored

Before the mutations, the same test files run once on the unmodified copy: a
test that fails there cannot tell a mutation apart, so it is listed and left
out of every mutation's run (``--deselect``). Tests run one file set
at a time (``-x``: the first failure is enough) with ``-p no:cacheprovider``;
the whole run takes some minutes on two cores. The exit code is 0 when every
applicable mutation was caught, 1 otherwise, 2 when the tests could not run at all.

It is not a pytest benchmark and ``run_all.py`` does not run it (it has no
``main(quick)``); the figure it prints is the caught/total count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What a copy of the tree needs for the tests to run (docs for tests/docs).
COPIED = ("memguard", "tests", "docs", "benchmarks", "notebooks", "pyproject.toml",
          "mkdocs.yml", "README.md")
#: Seconds one mutation's tests may take; a hang counts as caught (and is said).
TIMEOUT = 900


@dataclass(frozen=True)
class Mutation:
    """One plausible one-line bug: *original* replaced by *replacement* once in *path*."""

    name: str
    feature: str
    path: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    why: str


LIMIT_TESTS = ("tests/integration/test_limit_boundaries.py", "tests/integration/test_limit.py",
               "tests/unit/test_units.py")
LEAK_TESTS = ("tests/integration/test_leak_verdicts.py", "tests/integration/test_leaks_api.py",
              "tests/integration/test_leaks_corpus.py", "tests/unit/test_leak_report.py")
DIFF_TESTS = ("tests/integration/test_diff_ranking.py", "tests/unit/test_values_diff.py",
              "tests/integration/test_snapshot.py")
CLI_TESTS = ("tests/integration/test_cli_top.py", "tests/integration/test_cli_report.py",
             "tests/integration/test_cli_run.py")
LINES_TESTS = ("tests/integration/test_profile.py", "tests/integration/test_profile_target.py")
RUN_TESTS = ("tests/integration/test_run_child.py", "tests/integration/test_run_signals.py",
             "tests/integration/test_run_imports.py")
PLUGIN_TESTS = ("tests/plugin/test_baseline_threshold.py", "tests/plugin/test_baselines.py",
                "tests/plugin/test_limit_marker.py", "tests/plugin/test_memray_compat.py",
                "tests/plugin/test_leaks_marker.py")

MUTATIONS: tuple[Mutation, ...] = (
    # --- limits ----------------------------------------------------------------
    Mutation("limit-exceeded-at-equality", "limit", "memguard/values/limit.py",
             "return self.peak_above_start_bytes > self.limit_bytes",
             "return self.peak_above_start_bytes >= self.limit_bytes",
             (*LIMIT_TESTS, "tests/plugin/test_memray_compat.py"),
             "a peak exactly at the limit fails (memguard lets a peak reach its limit)"),
    Mutation("outer-peak-lost-before-inner-limit", "limit", "memguard/_tracing.py",
             "        _fold(peak)\n        tracemalloc.reset_peak()\n        window = PeakWindow(",
             "        tracemalloc.reset_peak()\n        window = PeakWindow(",
             LIMIT_TESTS,
             "an inner window resets the counter without folding the outer block's peak"),
    Mutation("limit-baseline-skipped-under-foreign-trace", "limit", "memguard/guards/limit.py",
             "if guard.sites and tracemalloc.is_tracing():",
             "if guard.sites and tracemalloc.is_tracing() and False:",
             LIMIT_TESTS,
             "memory allocated before the block is named as the block's site"),
    Mutation("limit-mb-is-mebibytes", "limit", "memguard/units.py",
             '    "MB": 1000**2,', '    "MB": 1024**2,', LIMIT_TESTS,
             "MB read as 1024**2 bytes"),
    Mutation("limit-partial-never-said", "limit", "memguard/values/limit.py",
             "if captured_above_start_bytes < ATTRIBUTED_FRACTION * peak_above_start_bytes:",
             "if captured_above_start_bytes < 0:", LIMIT_TESTS,
             "sites captured well below the peak are presented as the peak's"),
    # --- leak checks --------------------------------------------------------------
    Mutation("leak-monotony-test-removed", "leaks", "memguard/leaks/statistics.py",
             "if steps and rising < MONOTONE * steps:", "if False:", LEAK_TESTS,
             "a zero-drift random walk that passes slope and persistence is called a leak"),
    Mutation("leak-single-run-allowance-doubled", "leaks", "memguard/leaks/collector.py",
             'limits = {"python": float(self.options.allowance_bytes),\n'
             '                  "objects": float(self.options.allowance),',
             'limits = {"python": 2 * float(self.options.allowance_bytes),\n'
             '                  "objects": 2 * float(self.options.allowance),',
             LEAK_TESTS, "a block keeps twice what it is allowed and passes"),
    Mutation("leak-persistence-test-removed", "leaks", "memguard/leaks/statistics.py",
             "if not (late.significant(max(min_slope, PERSIST * fit.slope)) "
             "and late_total >= min_total):",
             "if False:", LEAK_TESTS, "a cache that fills up, then stays flat, is a leak"),
    Mutation("leak-slope-error-ignored", "leaks", "memguard/leaks/statistics.py",
             "return self.slope >= min_slope and self.slope > Z * self.stderr",
             "return self.slope >= min_slope", LEAK_TESTS, "noise counts as growth"),
    Mutation("leak-floor-ignored", "leaks", "memguard/leaks/statistics.py",
             "return self.slope >= min_slope and self.slope > Z * self.stderr",
             "return self.slope > Z * self.stderr", LEAK_TESTS,
             "a few bytes per call of steady bookkeeping is a leak"),
    # --- snapshots and diffs --------------------------------------------------------
    Mutation("diff-ranked-by-signed-change", "diff", "memguard/values/diff.py",
             "return (-abs(delta.size_diff_bytes), -abs(delta.count_diff), -delta.size_bytes,",
             "return (-delta.size_diff_bytes, -delta.count_diff, -delta.size_bytes,",
             DIFF_TESTS, "a large shrink is listed after every small growth"),
    Mutation("diff-types-that-disappear-dropped", "diff", "memguard/values/diff.py",
             "    deltas.extend(TypeDelta(name, 0, -count) for name, count in old.items())\n",
             "", DIFF_TESTS, "types whose objects all died are missing from the diff"),
    Mutation("diff-sites-that-disappear-dropped", "diff", "memguard/values/diff.py",
             "    for size, count, site in old.values():",
             "    for size, count, site in ():", DIFF_TESTS,
             "sites whose memory was all freed are missing from the diff"),
    Mutation("diff-traced-sign-swapped", "diff", "memguard/values/diff.py",
             "traced_diff_bytes=_minus(after.traced_bytes, before.traced_bytes),",
             "traced_diff_bytes=_minus(before.traced_bytes, after.traced_bytes),",
             DIFF_TESTS, "growth reported as shrinkage"),
    Mutation("diff-count-only-change-dropped", "diff", "memguard/values/diff.py",
             "        if size_diff or count_diff:\n", "        if size_diff:\n", DIFF_TESTS,
             "a site whose blocks changed but not its bytes is dropped"),
    # --- the program runner and the command line ---------------------------------
    Mutation("report-top-ignored", "cli", "memguard/cli/report.py",
             "top=DEFAULT_TOP if args.top is None else args.top", "top=DEFAULT_TOP",
             CLI_TESTS, "`memguard report --top N` shows the default number of rows"),
    Mutation("diff-top-ignored", "cli", "memguard/cli/diff.py",
             "top=DEFAULT_TOP if args.top is None else args.top", "top=DEFAULT_TOP",
             CLI_TESTS, "`memguard diff --top N` shows the default number of rows"),
    Mutation("run-limit-exit-code-lost", "cli", "memguard/cli/run.py",
             "return result.exit_code or EXIT_LIMIT", "return result.exit_code",
             CLI_TESTS, "a program over --limit exits 0"),
    Mutation("run-sites-not-sorted", "cli", "memguard/values/site.py",
             "return (-abs(site.size_bytes), -site.count, site.filename, site.lineno)",
             "return (0, 0, site.filename, site.lineno)", CLI_TESTS + DIFF_TESTS,
             "sites listed by place rather than by size"),
    # --- the pytest plugin -------------------------------------------------------
    Mutation("baseline-threshold-at-equality", "plugin", "memguard/_pytest/figures.py",
             "and self.peak_bytes > self.allowed_bytes)",
             "and self.peak_bytes >= self.allowed_bytes)", PLUGIN_TESTS,
             "a test that grew exactly the allowed percentage fails"),
    Mutation("baseline-noise-floor-ignored", "plugin", "memguard/_pytest/figures.py",
             "return baseline_bytes + max(margin_bytes, spread_bytes, noise_bytes)",
             "return baseline_bytes + max(margin_bytes, spread_bytes)", PLUGIN_TESTS,
             "a few bytes of growth on a tiny test fail it"),
    Mutation("baseline-growth-sign-swapped", "plugin", "memguard/_pytest/figures.py",
             "and self.peak_bytes > self.allowed_bytes)",
             "and abs(self.peak_bytes - (self.baseline_bytes or 0)) + (self.baseline_bytes or 0)"
             " > self.allowed_bytes)", PLUGIN_TESTS,
             "a test that shrank is a regression"),
    Mutation("units-kib-is-kilobytes", "plugin", "memguard/units.py",
             '    "KiB": 1024,', '    "KiB": 1000,', (*PLUGIN_TESTS, "tests/unit/test_units.py"),
             "KiB read as 1000 bytes"),
    Mutation("limit-report-peak-is-level-at-end", "limit", "memguard/guards/limit.py",
             "limit_bytes=guard.limit_bytes, peak_above_start_bytes=window.peak_bytes,",
             "limit_bytes=guard.limit_bytes, peak_above_start_bytes=(window.end_bytes or 0) - "
             "window.start_bytes,", LIMIT_TESTS, "the limit judges what is left, not the peak"),
    # --- the native counter in the leak check, the watcher's reading (0.2) ------
    Mutation("leak-counter-off", "leaks", "memguard/leaks/collector.py",
             "USE_COUNTER = True", "USE_COUNTER = False", LEAK_TESTS,
             "growth inside a block goes unseen when nothing traces"),
    Mutation("leak-traceback-leak-judged", "leaks", "memguard/leaks/collector.py",
             "or _tracing.stops_made() == self.stops_before):", "or True):",
             (*LEAK_TESTS, "tests/reliability/test_self_footprint.py"),
             "CPython's tracebacks kept at memguard's trace stops read as the code's leak"),
    Mutation("leak-readers-left-open", "leaks", "memguard/leaks/collector.py",
             "        for read in made:\n            _close(read)\n        raise",
             "        raise", ("tests/reliability/test_interrupts_forks.py",),
             "a Ctrl-C while the readers are made leaves the counter counting"),
    Mutation("watcher-reading-leaves-collector-off", "limit", "memguard/_watcher.py",
             "back = {True: iter(gc.enable, stop),", "back = {True: iter(gc.isenabled, stop),",
             ("tests/integration/test_undisturbed.py",),
             "the watcher's reading switches the program's collector off for good"),
    Mutation("sampler-reading-starts-collections", "limit", "memguard/sampler.py",
             "traced = _tracing.quiet_level() if tracemalloc.is_tracing() else -1",
             "traced = _tracing.refresh()[0] if tracemalloc.is_tracing() else -1",
             ("tests/integration/test_undisturbed.py",),
             "record()'s sample on the watcher thread starts the program's collection there"),
    # --- line profiles on the counter (0.2) ---------------------------------------
    Mutation("lines-context-tags-dropped", "lines", "memguard/lines/_tracer.py",
             "if not entry.outers or not self.table[slot][1][1]:", "if True:",
             LINES_TESTS, "an outer profile's line loses what a profiled callee kept"),
    Mutation("lines-passed-over-calls-remembered", "lines", "memguard/lines/profile.py",
             "                self.tracer.by_code.setdefault(code, []).append(self.collector)\n"
             "            self.tracer.note_change()",
             "                self.tracer.by_code.setdefault(code, []).append(self.collector)",
             LINES_TESTS, "a function passed over once is never profiled in that thread"),
    Mutation("lines-retained-from-every-profiles-tags", "lines", "memguard/lines/_tracer.py",
             "if owner is not None and id(owner[0]) in wanted:", "if owner is not None:",
             LINES_TESTS, "a profile's retained includes another profile's lines"),
    Mutation("lines-tag-not-restored-after-bookkeeping", "lines", "memguard/lines/_tracer.py",
             "        if self.counted:\n            self._set_tag(tag)\n",
             "", LINES_TESTS, "after memguard's bookkeeping, the running line tags nothing"),
    # --- memguard run in a fresh interpreter (0.2) -----------------------------------
    Mutation("run-agent-folder-left-on-path", "run", "memguard/program/_agent.py",
             "        del sys.path[0]  # this file's folder", "        pass  # this file's folder",
             RUN_TESTS, "the program can import memguard's runner modules as its own"),
    Mutation("run-memguard-imported-before-the-program", "run", "memguard/program/_agent.py",
             "    agent = ending.agent = Agent(spec)",
             "    import memguard.program.measure  # noqa: F401\n"
             "    agent = ending.agent = Agent(spec)",
             RUN_TESTS, "the program finds memguard's imports made: they cost it nothing"),
    Mutation("run-signals-not-relayed", "run", "memguard/program/spawn.py",
             "            os.kill(child.pid, signum)", "            pass", RUN_TESTS,
             "a SIGTERM to memguard (timeout, a CI cancel) never reaches the program"),
    Mutation("run-terminal-kept", "run", "memguard/program/spawn.py",
             "    terminal.give(group)\n", "", RUN_TESTS,
             "the program, in a background group, stops when it reads the terminal"),
    Mutation("run-orphan-left-running", "run", "memguard/program/_agent.py",
             "if posix.getppid() != self.parent:", "if False:", RUN_TESTS,
             "a program outlives memguard killed outright"),
    Mutation("run-signals-not-held-at-the-end", "run", "memguard/program/_agent.py",
             "        finally:\n            self._hold()\n", "        finally:\n            pass\n",
             RUN_TESTS, "a signal after the program ended loses the run"),
    Mutation("run-copy-with-the-collector-on", "run", "memguard/program/_agent.py",
             "        gc.disable()\n        try:\n            data = _summed(level, now)",
             "        try:\n            data = _summed(level, now)",
             ("tests/integration/test_undisturbed.py",),
             "a copy of the sites (without the counter) starts the program's collections early"),
    Mutation("run-copy-in-the-programs-process", "run", "memguard/program/_agent.py",
             "if self.native is not None and not final and self.forked < len(self.copiers):",
             "if False:", ("tests/integration/test_run_imports.py",),
             "copies' tuples go to the free lists untraced: the program's figures read low"),
)


def copy_tree(source: Path, target: Path) -> None:
    """Copy what the tests need into *target* (no .git, no .venv, no caches)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache",
                                    ".ruff_cache", "site", "*.egg-info")
    for name in COPIED:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name, ignore=ignore, symlinks=True)
        elif path.is_file():
            shutil.copy2(path, target / name)


def apply(mutation: Mutation, tree: Path) -> bool:
    """Edit the copy; False when the original text is not there exactly once."""
    path = tree / mutation.path
    if not path.is_file():
        return False
    text = path.read_text()
    if text.count(mutation.original) != 1:
        return False
    path.write_text(text.replace(mutation.original, mutation.replacement, 1))
    return True


def run_tests(tree: Path, tests: Sequence[str], *, first_failure: bool = True,
              deselect: Sequence[str] = ()) -> tuple[str, str]:
    """Run *tests* in *tree* against the copy's own memguard; ("passed"|"failed"|..., output).

    *deselect*: node ids left out (those that fail on the unmodified copy)."""
    present = [t for t in tests if (tree / t).exists()]
    if not present:
        return "no-tests", "none of the test files exist"
    # COLUMNS: the failure summary keeps whole node ids (see failed_nodeids).
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1", COLUMNS="10000")
    check = ("import memguard, pathlib, sys; "
             "sys.exit(0 if pathlib.Path(memguard.__file__).is_relative_to(sys.argv[1]) else 1)")
    if subprocess.run([sys.executable, "-c", check, str(tree)], env=env, cwd=tree,
                      check=False).returncode != 0:
        raise SystemExit(f"mutations: the copy's memguard is not the one imported in {tree}")
    command = [sys.executable, "-m", "pytest", *(["-x"] if first_failure else []), "-q",
               "-rf", "-p", "no:cacheprovider", "-p", "no:randomly", *present,
               *(f"--deselect={nodeid}" for nodeid in deselect)]
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", f"no result within {TIMEOUT} s"
    output = (done.stdout + done.stderr).strip()
    if done.returncode == 0:
        return "passed", output
    if done.returncode == 1:
        return "failed", output
    return f"error {done.returncode}", output


def failed_nodeids(output: str) -> list[str]:
    """The node ids pytest's ``-rf`` summary lists as failed (``FAILED <id> - <why>``; an id
    may hold spaces in its parameters). Lines of pytest runs inside the tests (pytester's)
    name no file under ``tests/`` and are skipped."""
    found = []
    for line in output.splitlines():
        if line.startswith("FAILED tests/"):
            found.append(line.removeprefix("FAILED ").split(" - ", 1)[0])
    return found


def clean_run(clean: Path, files: Sequence[str]) -> list[str] | None:
    """Run *files* on the unmodified copy: the node ids that fail there (to leave out of
    the mutation runs), or ``None`` when the tests do not run at all."""
    started = time.perf_counter()
    outcome, output = run_tests(clean, files, first_failure=False)
    print(f"clean run of {len(files)} test files: {outcome} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    broken = failed_nodeids(output)
    if outcome == "failed" and broken:
        # A test that fails without any mutation cannot tell a mutation apart:
        # it is left out of every mutation's run, and said.
        print(f"  {len(broken)} test(s) fail without any mutation, left out of the "
              "mutation runs:")
        for nodeid in broken:
            print(f"    {nodeid}")
    elif outcome != "passed":
        print("\n".join(output.splitlines()[-5:]))
        print("mutations: the tests do not run without any mutation; fix that first")
        return None
    return broken


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="the repository to mutate a copy of (default: this one)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    parser.add_argument("--no-clean-run", action="store_true",
                        help="skip the run of the test files on the unmodified copy")
    args = parser.parse_args(argv)
    source = args.tree.resolve()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"--only: no mutation named {', '.join(sorted(unknown))}")
    if args.list:
        for m in chosen:
            text = (source / m.path).read_text() if (source / m.path).is_file() else ""
            found = "ok       " if text.count(m.original) == 1 else "NOT FOUND"
            print(f"{found} {m.feature:7} {m.name:45} {m.path}")
        return 0
    with tempfile.TemporaryDirectory(prefix="memguard-mutations-") as folder:
        clean = Path(folder) / "clean"
        copy_tree(source, clean)
        broken: list[str] | None = []
        if not args.no_clean_run:
            broken = clean_run(clean, sorted({t for m in chosen for t in m.tests}))
            if broken is None:
                return 2
        caught, applicable, missing, survived = 0, 0, [], []
        for m in chosen:
            tree = Path(folder) / m.name
            shutil.copytree(clean, tree, symlinks=True)
            if not apply(m, tree):
                missing.append(m)
                print(f"NOT FOUND  {m.name}: {m.path} no longer holds the original text "
                      f"exactly once: {m.original[:60]!r}", flush=True)
                shutil.rmtree(tree)
                continue
            applicable += 1
            started = time.perf_counter()
            outcome, output = run_tests(tree, m.tests, deselect=broken)
            seconds = time.perf_counter() - started
            if outcome == "passed":
                survived.append(m)
                print(f"SURVIVED   {m.name} ({seconds:.0f} s): {m.why}", flush=True)
            else:
                caught += 1
                by = failed_nodeids(output)[:1] or output.splitlines()[-1:]
                print(f"caught     {m.name} ({seconds:.0f} s, {outcome}): {' '.join(by)}",
                      flush=True)
            shutil.rmtree(tree)
    print(f"\nmutations caught: {caught}/{applicable}"
          + (f" ({len(missing)} not found: {', '.join(m.name for m in missing)})"
             if missing else ""))
    for m in survived:
        print(f"  survived: {m.name} ({m.path}): {m.why}")
    return 0 if caught == applicable and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
