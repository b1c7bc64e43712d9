"""Versioned JSON files: every kind round-trips; every bad file gets a SnapshotFormatError."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from _report_values import after, diff, leak_report, limit_report, timeline, untraced
from hypothesis import given, settings
from hypothesis import strategies as st

import memguard
from memguard.exceptions import MemguardError, SnapshotFormatError
from memguard.values import files
from memguard.values.snapshot import Snapshot


@pytest.mark.parametrize("make", [after, untraced, diff, timeline, limit_report, leak_report])
@pytest.mark.parametrize("name", ["value.json", "value.json.gz"])
def test_every_kind_round_trips(make: Any, name: str, tmp_path: Path) -> None:
    value = make()
    path = files.save(value, tmp_path / name)
    assert memguard.load(path) == value
    raw = path.read_bytes()
    assert raw.startswith(b"\x1f\x8b") == name.endswith(".gz")
    assert not list(tmp_path.glob(".*partial"))


def test_snapshot_save_method_and_envelope(tmp_path: Path) -> None:
    path = after().save(tmp_path / "s.json")
    envelope = json.loads(path.read_text())
    assert {k: envelope[k] for k in ("format", "version", "kind")} == {
        "format": "memguard", "version": 2, "kind": "snapshot"}
    assert envelope["memguard"] == memguard.__version__
    assert envelope["data"]["label"] == "after"


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _envelope(**changes: Any) -> bytes:
    data = json.loads(files.dumps(after()))
    data.update(changes)
    return json.dumps(data).encode()


GOOD = files.dumps(after()).encode()

BAD_FILES = [
    ("empty.json", b"", "the file is empty"),
    ("truncated.json", GOOD[: len(GOOD) // 2], "not valid JSON, damaged or truncated"),
    ("truncated.json.gz", gzip.compress(GOOD)[:200], "truncated gzip data"),
    ("damaged.json.gz", b"\x1f\x8b" + b"\x00" * 40, "damaged gzip data"),
    ("plain.json.gz", GOOD, "the name ends in .gz but the content is not gzip"),
    ("binary.json", b"\xff\xfe\x00garbage", "not UTF-8 text"),
    ("pickle.json", pickle.dumps({"format": "memguard"}), "not UTF-8 text"),
    ("list.json", b"[1, 2, 3]", "not a memguard file"),
    ("foreign.json", b'{"name": "package.json", "version": "1.0.0"}', "not a memguard file"),
    ("newer.json", _envelope(version=99, memguard="9.0"),
     "written by a newer memguard (9.0, format version 99)"),
    ("bad-version.json", _envelope(version="one"), "bad format version 'one'"),
    ("kind.json", _envelope(kind="spreadsheet"), "unknown kind 'spreadsheet'"),
    ("no-data.json", _envelope(data=[1]), "the snapshot has no data object"),
    ("missing.json", _envelope(data={"label": "x"}), "damaged snapshot: missing field 'sites'"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    ("nan.json", _envelope(data={**json.loads(GOOD)["data"], "pid": float("nan")}),
     "damaged snapshot: cannot convert float NaN to integer"),
    ("wrong-type.json", _envelope(data={**json.loads(GOOD)["data"], "sites": [[1, 2]]}),
     "damaged snapshot: "),
]


@pytest.mark.parametrize(("name", "content", "problem"), BAD_FILES,
                         ids=[b[0] for b in BAD_FILES])
def test_every_bad_file_gets_its_error(name: str, content: bytes, problem: str,
                                       tmp_path: Path) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(SnapshotFormatError) as caught:
        memguard.load(path)
    error = caught.value
    assert isinstance(error, MemguardError)
    assert isinstance(error, ValueError)
    assert error.path == str(path)
    assert problem in error.reason
    assert str(error).startswith(f"{path}: ")


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        memguard.load(tmp_path / "nope.json")


def test_registered_kinds(tmp_path: Path) -> None:
    class Note:
        def __init__(self, text: str) -> None:
            self.text = text

        def to_dict(self) -> dict[str, Any]:
            return {"kind": "test-note", "text": self.text}

        @classmethod
        def from_dict(cls, data: Any) -> Note:
            return cls(str(data["text"]))

    files.register_kind("test-note", Note.from_dict)
    try:
        assert memguard.load(files.save(Note("hi"), tmp_path / "n.json")).text == "hi"
    finally:
        files._readers.pop("test-note")
    with pytest.raises(TypeError, match="reader must be"):
        files.register_kind("x", "memguard.values.limit:LimitReport")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="memguard's own LimitReport"):
        files.register_kind("limit", Note.from_dict)
    with pytest.raises(TypeError, match="has no to_dict"):
        files.save(object(), tmp_path / "o.json")


def test_every_value_kind_is_declared_once_and_read_back(tmp_path: Path) -> None:
    from memguard.values._value import KINDS

    assert sorted(KINDS) == ["diff", "leak", "limit", "lineprofile", "run", "snapshot",
                             "timeline", "watch"]
    for kind, cls in KINDS.items():
        assert kind == cls.KIND
    path = _write(tmp_path, "g.json", _envelope(kind="ghost"))
    known = r"unknown kind 'ghost' \(known: diff, leak, limit, lineprofile, run, snapshot, "
    with pytest.raises(SnapshotFormatError, match=known):
        memguard.load(path)


def test_gzip_is_recognised_by_content(tmp_path: Path) -> None:
    path = _write(tmp_path, "snap.json", gzip.compress(GOOD))
    assert memguard.load(path) == after()
    assert isinstance(files.loads(GOOD), Snapshot)


SMALL = files.dumps(diff()).encode()


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(SMALL) - 1),
       position=st.integers(min_value=0, max_value=len(SMALL) - 1),
       byte=st.integers(min_value=0, max_value=255), gz=st.booleans())
def test_any_damage_is_a_format_error_or_a_value(cut: int, position: int, byte: int,
                                                 gz: bool) -> None:
    damaged = bytearray(SMALL)
    damaged[position] = byte
    content = bytes(damaged[:cut] if cut else damaged)
    if gz:
        content = gzip.compress(content)[: max(10, cut)]
    try:
        files.loads(content, name="fuzz.json")
    except SnapshotFormatError as error:
        assert error.path == "fuzz.json"


#: A limit report as memguard 0.1 wrote it (format version 1): its figures
#: above the start were named as if absolute.
VERSION_1_LIMIT = (
    '{"format": "memguard", "version": 1, "kind": "limit", "memguard": "0.1.0", "data": '
    '{"kind": "limit", "label": "test_load", "source": "python", "method": "tracemalloc", '
    '"limit_bytes": 1000000, "peak_bytes": 1500000, "start_bytes": 10000, '
    '"end_bytes": 60000, "duration_seconds": 0.25, "sites": [{"filename": "app.py", '
    '"lineno": 3, "size_bytes": 1400000, "count": 2}], "sites_status": "peak", '
    '"sites_level_bytes": 1450000, "interval_seconds": 0.0, "exceeded": true}}')


def test_a_version_1_limit_file_reads_with_the_new_names(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(VERSION_1_LIMIT)
    report = memguard.load(path)
    assert report.peak_above_start_bytes == 1_500_000
    assert report.sites_above_start_bytes == 1_450_000
    assert report.end_above_start_bytes == 50_000
    assert report.exceeded
    # written again, it is a version 2 file under the new names only
    data = json.loads(files.dumps(report))
    assert data["version"] == files.FORMAT_VERSION == 2
    assert data["data"]["peak_above_start_bytes"] == 1_500_000
    assert data["data"]["sites_above_start_bytes"] == 1_450_000
    assert not {"peak_bytes", "sites_level_bytes"} & set(data["data"])


def test_a_version_1_run_file_with_its_limit_reads_with_the_new_names(tmp_path: Path) -> None:
    limit = json.loads(VERSION_1_LIMIT)["data"]
    run = {"kind": "run", "command": "app.py", "argv": ["app.py"], "exit_code": 0,
           "duration_seconds": 1.0, "sites_level_bytes": 2048, "limit": limit,
           "timeline": {"kind": "timeline", "interval_seconds": 0.01,
                        "duration_seconds": 1.0, "samples": [], "marks": []}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"format": "memguard", "version": 1, "kind": "run",
                                "data": run}))
    report = memguard.load(path)
    assert report.sites_above_start_bytes == 2048
    assert report.limit.peak_above_start_bytes == 1_500_000


def test_the_0_1_names_still_answer_and_warn() -> None:
    report = limit_report()
    with pytest.warns(DeprecationWarning, match="peak_above_start_bytes"):
        assert report.peak_bytes == report.peak_above_start_bytes
    with pytest.warns(DeprecationWarning, match="end_above_start_bytes"):
        assert report.retained_bytes == report.end_bytes - report.start_bytes
    with pytest.warns(DeprecationWarning, match="sites_above_start_bytes"):
        assert report.sites_level_bytes == report.sites_above_start_bytes
    error = memguard.MemoryLimitExceeded("over", peak_above_start_bytes=7, limit_bytes=5,
                                         source="python")
    with pytest.warns(DeprecationWarning, match="peak_above_start_bytes"):
        assert error.peak_bytes == 7


def test_a_version_1_file_missing_its_peak_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(VERSION_1_LIMIT.replace('"peak_bytes": 1500000, ', ""))
    with pytest.raises(SnapshotFormatError, match="peak_above_start_bytes"):
        memguard.load(path)


def test_no_sites_captured_is_none_and_a_version_1_zero_reads_as_none(tmp_path: Path) -> None:
    # 0.1 wrote 0 for "no capture"; 0 is a level a capture can have, so 0.2 says None
    old = json.loads(VERSION_1_LIMIT)
    old["data"].update(sites=[], sites_level_bytes=0, exceeded=False, peak_bytes=10)
    path = tmp_path / "held.json"
    path.write_text(json.dumps(old))
    report = memguard.load(path)
    assert report.sites_above_start_bytes is None
    assert json.loads(files.dumps(report))["data"]["sites_above_start_bytes"] is None
    with memguard.limit(mb=10) as guard:
        bytearray(1000)
    assert guard.report is not None
    assert guard.report.sites_above_start_bytes is None  # the limit held: nothing captured
