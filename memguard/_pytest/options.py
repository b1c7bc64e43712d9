"""L9 front end: the plugin's command-line options, ini keys and their parsed settings.

Every option is ``--memguard-*`` and every ini key ``memguard_*``; a command
line value wins over the ini file. Nothing here measures anything.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..display import add_display_options
from ..units import format_size, parse_size

__all__ = [
    "DEFAULT_BASELINE_DIR",
    "TABLE_FORMATS",
    "Margin",
    "Settings",
    "add_options",
    "baseline_path",
    "describe",
    "parse_margin",
    "parse_percent",
    "read_settings",
]

TABLE_FORMATS = ("text", "markdown")
"""The formats of the summary tables (``--memguard-format``)."""
DEFAULT_BASELINE_DIR = ".memguard/baselines"
"""Where baselines are saved, relative to pytest's rootdir."""

_PERCENT_RE = re.compile(r"^\s*\+?(?P<number>\d+(?:\.\d*)?|\.\d+)\s*%\s*$")


@dataclass(frozen=True, slots=True)
class Margin:
    """How far a test's peak may grow over its baseline: a percentage or a size.

    Example:
        >>> Margin(percent=10.0).bytes_over(1_000_000), Margin(size_bytes=4096).bytes_over(10)
        (100000, 4096)
    """

    percent: float | None = None
    """Growth allowed, in percent of the baseline's highest recorded peak."""
    size_bytes: int | None = None
    """Growth allowed, in bytes."""

    def bytes_over(self, baseline_bytes: int) -> int:
        """The growth in bytes this margin allows over *baseline_bytes*."""
        if self.percent is not None:
            return round(baseline_bytes * self.percent / 100.0)
        return self.size_bytes or 0

    def __str__(self) -> str:
        if self.percent is not None:
            return f"+{self.percent:g}%"
        return "+" + format_size(self.size_bytes or 0)


def add_options(parser: pytest.Parser) -> None:
    """Add memguard's options and ini keys to pytest's parser."""
    group = parser.getgroup("memguard", "memguard: memory limits, leak checks, per-test peaks")
    group.addoption("--memguard", action="store_true", default=None,
                    help="measure every test's peak memory and print the top tests at the end")
    group.addoption("--memguard-source", choices=("python", "rss"), default=None,
                    help="what --memguard and --memguard-limit measure: the traced Python heap "
                         "(python, default) or the process's resident memory (rss)")
    # --memguard-top and --memguard-format are the command line's --top and
    # --format, defined once for both front ends.
    add_display_options(group.addoption, prefix="memguard-", formats=TABLE_FORMATS)
    group.addoption("--memguard-json", default=None, metavar="PATH",
                    help="write every test's memory figures to PATH as JSON (implies --memguard)")
    group.addoption("--memguard-limit", default=None, metavar="SIZE",
                    help="a peak-memory limit for every test, such as '500MB'; the "
                         "memguard_limit marker overrides it per test")
    group.addoption("--memguard-save", default=None, metavar="NAME",
                    help="save every test's peak as baseline NAME, in "
                         f"{DEFAULT_BASELINE_DIR}/NAME.json (implies --memguard)")
    group.addoption("--memguard-compare", default=None, metavar="NAME",
                    help="compare every test's peak with baseline NAME and print the changes "
                         "(implies --memguard)")
    group.addoption("--memguard-fail-over", default=None, metavar="PERCENT",
                    help="with --memguard-compare: fail tests whose peak grew more than PERCENT "
                         "over the baseline, such as '10%%'")
    group.addoption("--memguard-noise", default=None, metavar="SIZE",
                    help="with --memguard-fail-over: growth smaller than SIZE never fails "
                         "(default '64 KiB')")
    group.addoption("--memguard-fresh", action="store_true", default=False,
                    help="with --memguard-save: start the baseline afresh instead of adding "
                         "this run to the runs already recorded under NAME")
    parser.addini("memguard_limit", "a peak-memory limit for every test, such as '500 MB'")
    parser.addini("memguard_source", "python (default) or rss: what per-test peaks measure")
    parser.addini("memguard_top", "how many tests memguard's summary tables show "
                                  "(default 10, 0 for all)")
    parser.addini("memguard_format", "the summary tables' format: text (default) or markdown")
    parser.addini("memguard_fail_over", "fail tests whose peak grew past this percentage of "
                                        "the compared baseline, such as '10%'")
    parser.addini("memguard_noise", "growth under this size never fails a baseline comparison "
                                    "(default '64 KiB')")
    parser.addini("memguard_margins", "per-test margins over the baseline, one 'PATTERN MARGIN' "
                                      "a line: a node id or glob and a percentage or size, such "
                                      "as 'tests/test_tee.py::test_threads 50%'", type="linelist")
    parser.addini("memguard_memray_markers", "which tests pytest-memray's limit_memory and "
                                             "limit_leaks apply to: all (default) or functions "
                                             "(plain test functions only, as pytest-memray "
                                             "does; unittest methods' markers are ignored)")
    parser.addini("memguard_baseline_dir", "where baselines are saved, relative to the rootdir "
                                           f"(default {DEFAULT_BASELINE_DIR})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The plugin's options, parsed and checked once per session.

    Example:
        >>> Settings(measure=True).active
        True
    """

    measure: bool = False
    """Measure every test's peak (``--memguard`` or an option implying it)."""
    source: str = "python"
    """``"python"`` or ``"rss"``."""
    top: int = 10
    """Rows in the summary tables; 0 means all."""
    table_format: str = "text"
    """``"text"`` or ``"markdown"``: how the summary tables are printed."""
    json_path: Path | None = None
    """Where to write every test's figures."""
    default_limit_bytes: int | None = None
    """The limit for tests without a marker, if any."""
    save_path: Path | None = None
    """Where to save the baseline, if asked."""
    save_name: str | None = None
    """The name to save the baseline under."""
    compare_path: Path | None = None
    """The baseline to compare with, if asked."""
    fail_over_percent: float | None = None
    """Growth over the baseline, in percent, that fails a test."""
    noise_bytes: int = 64 * 1024
    """Growth under this many bytes never fails a comparison."""
    margins: tuple[tuple[str, Margin], ...] = ()
    """Per-test margins from the ini file: (node id or glob, margin)."""
    fresh: bool = False
    """Start the saved baseline afresh rather than add this run to it."""
    memray_markers: str = "all"
    """``"all"``: pytest-memray's markers apply to every test; ``"functions"``: to plain
    test functions only, as under pytest-memray (which ignores them on unittest methods)."""

    def margin_for(self, nodeid: str) -> Margin | None:
        """The ini file's margin for *nodeid* (the first matching line), else the
        ``--memguard-fail-over`` threshold, else ``None`` (no test fails)."""
        for pattern, margin in self.margins:
            if fnmatch.fnmatchcase(nodeid, pattern):
                return margin
        if self.fail_over_percent is not None:
            return Margin(percent=self.fail_over_percent)
        return None

    @property
    def active(self) -> bool:
        """Whether any option asks for work on every test."""
        return self.measure or self.default_limit_bytes is not None


def _value(config: pytest.Config, option: str, ini: str) -> str | None:
    given = config.getoption(option)
    if given is not None:
        return str(given)
    from_ini = config.getini(ini)
    text = str(from_ini).strip() if from_ini else ""
    return text or None


def parse_percent(text: str, *, name: str) -> float:
    """``"10%"`` -> ``10.0``; raises :class:`pytest.UsageError` naming *name*.

    Example:
        >>> parse_percent("12.5%", name="--memguard-fail-over")
        12.5
    """
    match = _PERCENT_RE.match(text)
    if match is None:
        raise pytest.UsageError(f"{name}={text!r} is not a percentage; write one such as '10%'")
    return float(match["number"])


def parse_margin(text: object, *, name: str) -> Margin:
    """A margin: ``"50%"`` or a size such as ``"8 MiB"``; a :class:`pytest.UsageError` names *name*.

    Example:
        >>> parse_margin("50%", name="margin"), parse_margin("2 MiB", name="margin")
        (Margin(percent=50.0, size_bytes=None), Margin(percent=None, size_bytes=2097152))
    """
    if isinstance(text, str) and "%" in text:
        return Margin(percent=parse_percent(text, name=name))
    try:
        return Margin(size_bytes=parse_size(text, name=name))  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise pytest.UsageError(f"{error} (or a percentage such as '50%')") from error


def _margins(lines: list[str]) -> tuple[tuple[str, Margin], ...]:
    found = []
    for line in lines:
        pattern, _, text = line.strip().partition(" ")
        if not pattern or not text.strip():
            raise pytest.UsageError(f"memguard_margins: {line.strip()!r} is not 'PATTERN MARGIN', "
                                    f"such as 'tests/test_io.py::test_threads 50%'")
        found.append((pattern, parse_margin(text.strip(), name=f"memguard_margins ({pattern})")))
    return tuple(found)


def _size(text: str | None, *, name: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_size(text, name=name)
    except (TypeError, ValueError) as error:
        raise pytest.UsageError(str(error)) from error


def baseline_path(config: pytest.Config, name: str) -> Path:
    """The file baseline *name* lives in: a ``.json`` path as given, else under the folder.

    Example:
        The default folder is ``<rootdir>/.memguard/baselines``, so
        ``--memguard-save main`` writes ``<rootdir>/.memguard/baselines/main.json``.
    """
    if name.endswith(".json") or "/" in name or "\\" in name:
        return Path(config.invocation_params.dir, name)
    if not re.fullmatch(r"[\w.+-]+", name):
        raise pytest.UsageError(f"baseline name {name!r} may use letters, digits and . _ + - only "
                                f"(or give a path ending in .json)")
    folder = str(config.getini("memguard_baseline_dir") or "").strip() or DEFAULT_BASELINE_DIR
    return Path(config.rootpath, folder, f"{name}.json")


def read_settings(config: pytest.Config) -> Settings:
    """Parse and check the options; a bad value is a :class:`pytest.UsageError`."""
    source = _value(config, "memguard_source", "memguard_source") or "python"
    if source not in ("python", "rss"):
        raise pytest.UsageError(f"memguard_source={source!r}: use 'python' or 'rss'")
    top_text = _value(config, "memguard_top", "memguard_top") or "10"
    try:
        top = int(top_text)
        if top < 0:
            raise ValueError(top)
    except ValueError:
        raise pytest.UsageError(f"memguard_top={top_text!r} must be a non-negative "
                                f"integer") from None
    table_format = _value(config, "memguard_format", "memguard_format") or "text"
    if table_format not in TABLE_FORMATS:
        raise pytest.UsageError(f"memguard_format={table_format!r}: use "
                                f"{' or '.join(TABLE_FORMATS)}")
    memray_markers = str(config.getini("memguard_memray_markers") or "").strip() or "all"
    if memray_markers not in ("all", "functions"):
        raise pytest.UsageError(f"memguard_memray_markers={memray_markers!r}: use 'all' or "
                                f"'functions'")
    json_text = config.getoption("memguard_json")
    save = config.getoption("memguard_save")
    compare = config.getoption("memguard_compare")
    fail_over = _value(config, "memguard_fail_over", "memguard_fail_over")
    if config.getoption("memguard_fresh") and save is None:
        raise pytest.UsageError("--memguard-fresh needs --memguard-save NAME")
    if fail_over is not None and compare is None and config.getoption("memguard_fail_over"):
        raise pytest.UsageError("--memguard-fail-over needs --memguard-compare NAME")
    noise = _size(_value(config, "memguard_noise", "memguard_noise"), name="--memguard-noise")
    limit_bytes = _size(_value(config, "memguard_limit", "memguard_limit"), name="--memguard-limit")
    measure = bool(config.getoption("memguard")) or any(x is not None
                                                        for x in (json_text, save, compare))
    return Settings(
        measure=measure,
        source=source,
        top=top,
        table_format=table_format,
        json_path=Path(config.invocation_params.dir, json_text) if json_text else None,
        default_limit_bytes=limit_bytes,
        save_path=baseline_path(config, save) if save else None,
        save_name=Path(save).stem if save else None,
        compare_path=baseline_path(config, compare) if compare else None,
        fail_over_percent=(parse_percent(fail_over, name="--memguard-fail-over")
                           if fail_over is not None and compare is not None else None),
        noise_bytes=64 * 1024 if noise is None else noise,
        margins=_margins(list(config.getini("memguard_margins") or [])),
        fresh=bool(config.getoption("memguard_fresh")),
        memray_markers=memray_markers,
    )


def describe(settings: Settings) -> str:
    """One line for pytest's header, naming what memguard will do.

    Example:
        >>> describe(Settings(measure=True, default_limit_bytes=500_000_000))
        'memguard: per-test peaks (python), default limit 476.8 MiB'
    """
    parts = []
    if settings.measure:
        parts.append(f"per-test peaks ({settings.source})")
    if settings.default_limit_bytes is not None:
        parts.append(f"default limit {format_size(settings.default_limit_bytes)}")
    if settings.compare_path is not None:
        parts.append(f"compare with {settings.compare_path.name}")
    if settings.save_path is not None:
        parts.append(f"save as {settings.save_path.name}")
    return "memguard: " + ", ".join(parts)
