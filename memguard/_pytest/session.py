"""L9 front end: the plugin object that guards and measures test calls.

Registered only when something asks for memguard (an option at start-up, a
marker or the fixture at collection), so an unused plugin runs no hook on any
test. Each test's call is wrapped in :class:`CallRun`, which enters the same
:class:`memguard.limit` a user would write, measures the call's peak, compares
it with a baseline and judges the fixture's ``expect_collected`` objects
right after the test body returns; a failed check is raised from the call, so
pytest reports an F with memguard's message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

import _pytest
import pluggy
import pytest

from .. import _counter, _tracing, process
from ..exceptions import CheckFailed, MemoryLimitExceeded, SnapshotFormatError
from ..guards.limit import limit
from ..units import format_size
from ..values.baseline import Baseline
from ..values.limit import LimitReport
from .compat import MemrayLeakCheck
from .figures import (
    Change,
    TestFigures,
    allowed_peak,
    changes,
    changes_table,
    figures_from_properties,
    peak_table,
    run_document,
)
from .markers import Plan, build_plan, memray_active
from .options import Margin, Settings, describe

__all__ = ["FIXTURE_KEY", "CallRun", "MemguardSession", "detail_text"]

PLAN_KEY = pytest.StashKey[Plan]()
FIXTURE_KEY = pytest.StashKey[Any]()
"""Where the ``memguard`` fixture of a test keeps itself, for :class:`CallRun`."""

_MEASURED = {"python": "traced Python heap", "rss": "process RSS"}


class CallRun:
    """The guards and measurement around one test call."""

    def __init__(self, item: pytest.Item, plan: Plan, settings: Settings,
                 baseline: Baseline | None) -> None:
        self.item = item
        self.plan = plan
        self.settings = settings
        self.baseline = baseline
        self._window: _tracing.PeakWindow | None = None
        self._count: _counter.CountWindow | None = None
        self._rss: process.RssWindow | None = None
        self._memray: MemrayLeakCheck | None = None
        self._original: Any = None
        self._guard_entered = False
        self.margin: Margin | None = None
        self.allowed_bytes: int | None = None
        self._sites: limit | None = None
        self._sites_entered = False
        self._allow()

    def _allow(self) -> None:
        """The peak this test may reach against its baseline, and the guard that names
        the sites when it goes over (a limit at that peak: its peak-site catcher)."""
        nodeid, baseline = self.item.nodeid, self.baseline
        if baseline is None or nodeid not in baseline.peaks or not self.settings.measure:
            return
        self.margin = self.plan.margin or self.settings.margin_for(nodeid)
        high = baseline.peaks[nodeid]
        self.allowed_bytes = allowed_peak(
            high, baseline.spread(nodeid), noise_bytes=self.settings.noise_bytes,
            margin_bytes=None if self.margin is None else self.margin.bytes_over(high))
        if self.allowed_bytes is not None and self.settings.source == "python":
            self._sites = limit(self.allowed_bytes, label=nodeid)

    def start(self) -> None:
        """Enter the guards, then open the measurement (innermost, the body only)."""
        if self.plan.leaks is not None:
            from ..leaks.api import track_leaks

            assert isinstance(self.item, pytest.Function)  # checked by build_plan
            self._original = self.item.obj
            self.item.obj = track_leaks(**self.plan.leaks)(self._original)
        if self.plan.memray_leaks is not None:
            self._memray = MemrayLeakCheck(self.plan.memray_leaks, self.item.nodeid)
        if self.plan.guard is not None:
            self.plan.guard.__enter__()
            self._guard_entered = True
        if self._sites is not None:
            self._sites.__enter__()
            self._sites_entered = True
        if self.settings.measure:
            if self.settings.source == "rss":
                self._rss = process.begin_rss()
            elif _counter.available():
                # The same figure as tracemalloc's, for the price of a counter: the
                # cost no longer grows with the test's allocations (issue 17).
                self._count = _counter.begin()
            else:
                self._window = _tracing.begin()

    def finish(self, error: BaseException | None) -> None:
        """Close everything; raise the first failed check if the body passed."""
        __tracebackhide__ = True
        failure: CheckFailed | None = None
        peak: int | None = None
        try:
            try:
                peak = self._close_measurement()
            finally:
                failure = self._exit_guards(error)
        finally:
            if self._original is not None:
                self.item.obj = self._original  # type: ignore[attr-defined]
        report = self.plan.guard.report if self.plan.guard is not None else None
        if peak is None and report is not None:
            peak = report.peak_above_start_bytes
        if peak is not None:
            change = self._record(peak, report)
            if error is None and failure is None and change is not None:
                failure = self._regression(change)
        fixture = self.item.stash.get(FIXTURE_KEY, None)
        if fixture is not None:
            verdict = fixture.judge(judge=error is None and failure is None)
            failure = failure or verdict
        if failure is not None and error is None:
            raise failure

    def _close_measurement(self) -> int | None:
        if self._count is not None:
            count, self._count = self._count, None
            return _counter.end(count).peak_bytes
        if self._window is not None:
            window, self._window = self._window, None
            return _tracing.end(window).peak_bytes
        if self._rss is not None:
            rss, self._rss = self._rss, None
            return process.end_rss(rss).peak_bytes
        return None

    def _exit_guards(self, error: BaseException | None) -> CheckFailed | None:
        __tracebackhide__ = True
        failure: CheckFailed | None = None
        try:
            if self._sites is not None and self._sites_entered:
                self._sites_entered = False
                # The verdict is the measured peak's; this limit only names the sites.
                with contextlib.suppress(CheckFailed):
                    self._sites.__exit__(None, None, None)
            if self._guard_entered and self.plan.guard is not None:
                self._guard_entered = False
                try:
                    self.plan.guard.__exit__(type(error) if error is not None else None, error,
                                             error.__traceback__ if error is not None else None)
                except CheckFailed as exc:
                    failure = exc
        finally:
            if self._memray is not None:
                memray, self._memray = self._memray, None
                try:
                    memray.finish(judge=error is None and failure is None)
                except CheckFailed as exc:
                    failure = failure or exc
        return failure

    def _record(self, peak: int, report: LimitReport | None) -> Change | None:
        nodeid, baseline = self.item.nodeid, self.baseline
        base = baseline.peaks.get(nodeid) if baseline is not None else None
        source = self.settings.source if self.settings.measure or report is None else report.source
        # A limit on another source than the one measured is not this peak's limit.
        same = report is not None and report.source == source
        figures = TestFigures(nodeid=nodeid, peak_bytes=peak, source=source,
                              limit_bytes=report.limit_bytes if same and report else None,
                              baseline_bytes=base, allowed_bytes=self.allowed_bytes)
        self.item.user_properties.extend(figures.properties())
        if base is None or baseline is None:
            return None
        return Change(nodeid=nodeid, baseline_bytes=base, peak_bytes=peak,
                      spread_bytes=baseline.spread(nodeid), allowed_bytes=self.allowed_bytes)

    def _regression(self, change: Change) -> CheckFailed | None:
        if not change.regressed:
            return None
        assert change.baseline_bytes is not None
        assert change.peak_bytes is not None
        assert self.allowed_bytes is not None
        assert self.margin is not None
        assert self.baseline is not None
        growth = change.peak_bytes - change.baseline_bytes
        runs = len(self.baseline.runs[change.nodeid])
        spread = (f"the spread of its {runs} recorded peaks {format_size(change.spread_bytes)}, "
                  if runs > 1 else "")
        allowed = format_size(self.allowed_bytes - change.baseline_bytes, signed=True)
        lines = [
            f"Memory regression in {change.nodeid}: peak {format_size(change.peak_bytes)} vs "
            f"{format_size(change.baseline_bytes)} in baseline {self.baseline.name!r} "
            f"({format_size(growth, signed=True)}, {change.percent:+.1f}%; allowed {allowed}, "
            f"the largest of margin {self.margin}, {spread}noise floor "
            f"{format_size(self.settings.noise_bytes)}), {_MEASURED[self.settings.source]}"]
        report = self._sites.report if self._sites is not None else None
        if report is not None and report.exceeded:
            lines.extend(report.message(top=5).splitlines()[1:])  # the sites that grew
        return MemoryLimitExceeded("\n".join(lines), peak_above_start_bytes=change.peak_bytes,
                                   limit_bytes=self.allowed_bytes, source=self.settings.source,
                                   label=change.nodeid, details=change)


_MACHINERY = tuple(Path(module.__file__).parent for module in (_pytest, pluggy, _tracing)
                   if module.__file__)
"""Where pytest's, pluggy's and memguard's own code lives (``_pytest`` is pytest's folder)."""


def without_machinery(excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
    """*excinfo*'s traceback without pytest's, pluggy's and memguard's frames.

    A failed check is raised by memguard's call wrapper, below a few dozen
    frames of pytest and pluggy. A test function's report prunes them
    (``__tracebackhide__`` and the cut at the test's code), but other items,
    pytest's own ``DoctestItem`` first, print every frame: about 510 lines
    before the verdict (issue 17). Without them, a doctest's failed limit
    reads as a test function's: the verdict, the sites, memguard's section.
    """
    kept = [entry for entry in excinfo.traceback.filter(excinfo)
            if not any(Path(str(entry.path)).is_relative_to(folder) for folder in _MACHINERY)]
    return type(excinfo.traceback)(kept)


def detail_text(error: CheckFailed) -> str:
    """The long detail of a failed check, for the test report's memguard section."""
    details = error.details
    if isinstance(details, LimitReport):
        lines = [details.message(top=20), "",
                 f"measured: {details.measured} ({details.method})",
                 f"level at start: {format_size(details.start_bytes)}, at end: "
                 f"{format_size(details.end_bytes)} (retained "
                 f"{format_size(details.end_above_start_bytes, signed=True)})",
                 f"duration: {details.duration_seconds:.3f} s"]
        return "\n".join(lines)
    message = getattr(details, "message", None)
    if callable(message):
        try:
            return str(message(top=20))
        except TypeError:
            pass
    return str(error)


class MemguardSession:
    """memguard's hooks for one pytest session (controller or xdist worker)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.honour_memray = not memray_active(config)
        self.is_worker = hasattr(config, "workerinput")
        self.results: dict[str, TestFigures] = {}
        self.baseline = self._load_baseline()
        self.recorded = self._load_recorded()
        self.saved: Path | None = None
        self.saved_runs = 0

    def _load_recorded(self) -> Baseline | None:
        """The runs already saved under ``--memguard-save``'s name, which this run adds to."""
        settings = self.settings
        path = settings.save_path
        if path is None or settings.fresh or self.is_worker or not path.exists():
            return None
        try:
            recorded = Baseline.load(path)
        except SnapshotFormatError as error:
            raise pytest.UsageError(f"--memguard-save: {error}; add --memguard-fresh to start "
                                    f"it afresh") from error
        if recorded.source != settings.source:
            raise pytest.UsageError(
                f"--memguard-save: baseline {path.name} holds {recorded.source} peaks and this "
                f"run measures {settings.source}; add --memguard-fresh to start it afresh")
        return recorded

    def _load_baseline(self) -> Baseline | None:
        path = self.settings.compare_path
        if path is None:
            return None
        try:
            baseline = Baseline.load(path)
        except FileNotFoundError:
            raise pytest.UsageError(f"--memguard-compare: no baseline at {path}; save one with "
                                    f"--memguard-save {path.stem}") from None
        except SnapshotFormatError as error:
            raise pytest.UsageError(f"--memguard-compare: {error}") from error
        if baseline.source != self.settings.source:
            raise pytest.UsageError(
                f"--memguard-compare: baseline {path.name} holds {baseline.source} peaks; run "
                f"with --memguard-source {baseline.source} to compare with it")
        return baseline

    def pytest_report_header(self) -> str | None:
        settings = self.settings
        if not settings.active:
            return None
        if settings.measure and settings.source == "python":
            # Which exact measure the peaks come from: the cost differs, the figure not.
            how = ("the native allocation counter" if _counter.available() else
                   f"tracemalloc ({_counter.unavailable_reason()})")
            return f"{describe(settings)}; Python heap measured by {how}"
        return describe(settings)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        __tracebackhide__ = True
        item.stash[PLAN_KEY] = build_plan(item, self.settings, honour_memray=self.honour_memray)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        # The call phase rather than pytest_pyfunc_call, so that unittest
        # classes and doctests are guarded and measured too.
        __tracebackhide__ = True
        plan = item.stash.get(PLAN_KEY, None)
        fixture = item.stash.get(FIXTURE_KEY, None)
        if plan is None or (plan.empty and not self.settings.measure and fixture is None):
            return (yield)
        run = CallRun(item, plan, self.settings, self.baseline)
        try:
            run.start()
        except BaseException as error:  # close whatever did open, keep the cause
            run.finish(error)
            raise
        try:
            result = yield
        except BaseException as error:
            run.finish(error)
            raise
        run.finish(None)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        excinfo = call.excinfo
        ours = (call.when == "call" and excinfo is not None
                and isinstance(excinfo.value, CheckFailed))
        if ours and excinfo is not None and not isinstance(item, pytest.Function) \
                and not item.config.getoption("fulltrace", False):
            excinfo.traceback = without_machinery(excinfo)
        report = yield
        if ours and excinfo is not None and isinstance(excinfo.value, CheckFailed):
            report.sections.append(("memguard", detail_text(excinfo.value)))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        figures = figures_from_properties(report.nodeid, report.user_properties, report.outcome)
        if figures is not None:
            self.results[report.nodeid] = figures

    def pytest_sessionfinish(self) -> None:
        if self.is_worker:
            return
        settings = self.settings
        if settings.json_path is not None:
            import json

            from ..output import write_file

            document = run_document(self.results, source=settings.source)
            write_file(settings.json_path, json.dumps(document, indent=1) + "\n",
                       make_folder=True)
        if settings.save_path is not None and settings.save_name is not None:
            peaks = {nodeid: f.peak_bytes for nodeid, f in self.results.items()}
            if self.recorded is not None:
                baseline = self.recorded.add_run(peaks)
            else:
                baseline = Baseline(name=settings.save_name, source=settings.source, peaks=peaks)
            self.saved = baseline.save(settings.save_path)
            self.saved_runs = baseline.saves

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not self.settings.measure:
            return
        settings, write = self.settings, terminalreporter.write_line
        count = len(self.results)
        shown = count if settings.top == 0 else min(settings.top, count)
        terminalreporter.section(f"memguard: peak memory per test ({_MEASURED[settings.source]}), "
                                 f"top {shown} of {count}")
        lines = (peak_table(self.results, top=settings.top, fmt=settings.table_format)
                 if count else ["no test call was measured"])
        for line in lines:
            write(line)
        if self.baseline is not None:
            threshold = ("" if settings.fail_over_percent is None
                         else f", fail over +{settings.fail_over_percent:g}%")
            terminalreporter.section(f"memguard: changes against baseline "
                                     f"{self.baseline.name!r}{threshold}")
            found = changes(self.results, self.baseline, noise_bytes=settings.noise_bytes)
            for line in changes_table(found, top=settings.top, noise_bytes=settings.noise_bytes,
                                      fmt=settings.table_format):
                write(line)
        if settings.json_path is not None:
            write(f"memguard: wrote {count} tests' figures to {settings.json_path}")
        if self.saved is not None:
            runs = "" if self.saved_runs == 1 else f", run {self.saved_runs} of its record"
            write(f"memguard: saved baseline {settings.save_name!r} ({count} tests{runs}) to "
                  f"{self.saved}")
