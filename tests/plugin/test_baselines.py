"""--memguard-save / --memguard-compare / --memguard-fail-over, and the Baseline value."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from memguard.exceptions import SnapshotFormatError
from memguard.values.baseline import Baseline

Run = Callable[..., pytest.RunResult]

SIZED = """
def test_sized():
    data = bytearray({size})

def test_steady():
    data = bytearray(500_000)
"""


def save(pytester: pytest.Pytester, run: Run, size: int, name: str = "main") -> Path:
    pytester.makepyfile(test_mem=SIZED.format(size=size))
    result = run("--memguard-save", name)
    result.assert_outcomes(passed=2)
    path = pytester.path / ".memguard" / "baselines" / f"{name}.json"
    result.stdout.fnmatch_lines([f"memguard: saved baseline '{name}' (2 tests) to {path}"])
    return path


def test_save_writes_versioned_json(pytester: pytest.Pytester, run: Run) -> None:
    path = save(pytester, run, 1_000_000)
    data = json.loads(path.read_text())
    assert data["format"] == "memguard-baseline"
    assert data["version"] == 1
    assert data["name"] == "main"
    assert data["source"] == "python"
    assert set(data["tests"]) == {"test_mem.py::test_sized", "test_mem.py::test_steady"}
    baseline = Baseline.load(path)
    assert 1_000_000 <= baseline.peaks["test_mem.py::test_sized"] <= 1_000_000 + 16 * 1024


@pytest.mark.parametrize(("now", "passed"), [(2_000_000, False), (1_050_000, True)])
def test_compare_fails_growth_past_threshold(pytester: pytest.Pytester, run: Run, now: int,
                                             passed: bool) -> None:
    save(pytester, run, 1_000_000)
    pytester.makepyfile(test_mem=SIZED.format(size=now))
    result = run("--memguard-compare", "main", "--memguard-fail-over", "10%")
    result.assert_outcomes(passed=1 + passed, failed=int(not passed))
    result.stdout.fnmatch_lines([
        "*memguard: changes against baseline 'main', fail over +10%*",
        "  baseline         now    change  test",
    ])
    if passed:
        result.stdout.fnmatch_lines(["*KiB *1.0 MiB *+5.0%  test_mem.py::test_sized"])
    else:
        result.stdout.fnmatch_lines([
            "E   memguard.exceptions.MemoryLimitExceeded: Memory regression in "
            "test_mem.py::test_sized: peak 1.9 MiB vs 9??.? KiB in baseline 'main' "
            "(+97?.? KiB, +99.?%; allowed +10%), traced Python heap",
            "*KiB     1.9 MiB    +99.?%  test_mem.py::test_sized  REGRESSED",
        ])


def test_compare_without_threshold_only_reports(pytester: pytest.Pytester, run: Run) -> None:
    save(pytester, run, 1_000_000)
    pytester.makepyfile(test_mem=SIZED.format(size=2_000_000))
    result = run("--memguard-compare", "main")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*changes against baseline 'main'*",
                                 "*+99.?%  test_mem.py::test_sized"])


def test_noise_floor(pytester: pytest.Pytester, run: Run) -> None:
    save(pytester, run, 10_000)
    pytester.makepyfile(test_mem=SIZED.format(size=30_000))  # +200 %, but 20 kB
    result = run("--memguard-compare", "main", "--memguard-fail-over", "10%")
    result.assert_outcomes(passed=2)
    result = run("--memguard-compare", "main", "--memguard-fail-over", "10%",
                 "--memguard-noise", "1 KiB")
    result.assert_outcomes(passed=1, failed=1)


def test_fail_over_from_ini(pytester: pytest.Pytester, run: Run) -> None:
    save(pytester, run, 1_000_000)
    pytester.makeini("[pytest]\nmemguard_fail_over = 50%\n")
    pytester.makepyfile(test_mem=SIZED.format(size=1_400_000))
    run("--memguard-compare", "main").assert_outcomes(passed=2)
    pytester.makepyfile(test_mem=SIZED.format(size=1_600_000))
    run("--memguard-compare", "main").assert_outcomes(passed=1, failed=1)


def test_save_and_compare_together_and_new_tests(pytester: pytest.Pytester, run: Run) -> None:
    save(pytester, run, 1_000_000)
    pytester.makepyfile(test_mem=SIZED.format(size=1_000_000) + "\ndef test_new():\n    pass\n")
    result = run("--memguard-compare", "main", "--memguard-save", "next")
    result.stdout.fnmatch_lines(["(1 test(s) not in the baseline, 0 baseline test(s) not run)"])
    assert len(Baseline.load(pytester.path / ".memguard/baselines/next.json").peaks) == 3


def test_baseline_path_and_folder(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_mem=SIZED.format(size=1000))
    pytester.makeini("[pytest]\nmemguard_baseline_dir = ci/memory\n")
    run("--memguard-save", "nightly").assert_outcomes(passed=2)
    assert (pytester.path / "ci" / "memory" / "nightly.json").is_file()
    run("--memguard-save", "elsewhere/b.json").assert_outcomes(passed=2)
    assert Baseline.load(pytester.path / "elsewhere" / "b.json").name == "b"


@pytest.mark.parametrize(("content", "complaint"), [
    (None, "*--memguard-compare: no baseline at *main.json; save one with --memguard-save main*"),
    ("{not json", "*--memguard-compare: *main.json: not valid JSON*"),
    ('{"format": "other"}', "*main.json: not a memguard baseline*"),
    ('{"format": "memguard-baseline", "version": 99, "tests": {}}',
     "*main.json: baseline version 99 is newer than this memguard reads (1)*"),
    ('{"format": "memguard-baseline", "version": 1, "name": "main", "source": "rss", '
     '"tests": {}}', "*baseline main.json holds rss peaks; run with --memguard-source rss*"),
])
def test_bad_baselines_are_usage_errors(pytester: pytest.Pytester, run: Run,
                                        content: str | None, complaint: str) -> None:
    pytester.makepyfile(test_mem=SIZED.format(size=1000))
    if content is not None:
        folder = pytester.path / ".memguard" / "baselines"
        folder.mkdir(parents=True)
        (folder / "main.json").write_text(content)
    result = run("--memguard-compare", "main")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([complaint])


def test_bad_names_and_percentages(pytester: pytest.Pytester, run: Run) -> None:
    pytester.makepyfile(test_mem=SIZED.format(size=1000))
    result = run("--memguard-save", "no good")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*baseline name 'no good' may use letters*"])
    save(pytester, run, 1000)
    result = run("--memguard-compare", "main", "--memguard-fail-over", "ten")
    result.stderr.fnmatch_lines(["*--memguard-fail-over='ten' is not a percentage*"])


def test_baseline_value_round_trip(tmp_path: Path) -> None:
    baseline = Baseline(name="x", source="python", peaks={"a::b": 5, "a::c": 7})
    path = baseline.save(tmp_path / "deep" / "x.json")
    assert Baseline.load(path) == baseline
    assert str(baseline) == "baseline 'x': 2 tests, python peaks, largest 7 B"
    (tmp_path / "bad.json").write_text(json.dumps({**baseline.to_dict(),
                                                   "tests": {"a::b": {"peak_bytes": -1}}}))
    with pytest.raises(SnapshotFormatError, match=r"bad\.json: malformed baseline"):
        Baseline.load(tmp_path / "bad.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SnapshotFormatError, match="not a text file"):
        Baseline.load(tmp_path / "bin.json")
