"""Loaders fed arbitrary bytes, mutated valid files, gzip bombs and absurd claims.

Every file kind memguard reads (snapshot, diff, timeline, run, line profile
through :func:`memguard.load`; pytest baselines through
:meth:`Baseline.load`) must answer a hostile file with
:class:`~memguard.SnapshotFormatError` or a value, never another exception,
a hang or a huge allocation. A value that does load must print.
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import memguard
from memguard import SnapshotFormatError, limit
from memguard.values import files
from memguard.values.baseline import Baseline
from memguard.values.lineprofile import LineProfile, LineRow
from memguard.values.run import RunReport
from tests.reliability._ledger import tried
from tests.unit._report_values import after, diff, timeline

BYTES_EXAMPLES = 300
MUTATION_EXAMPLES = 150
TREE_EXAMPLES = 150
MB = 1_000_000

_DIR = Path(tempfile.mkdtemp(prefix="memguard-hostile-"))


def _run() -> RunReport:
    profile = LineProfile(function="load", filename="app.py", first_lineno=6, calls=1,
                          rows=(LineRow(lineno=6, source="def load():"),
                                LineRow(lineno=7, source="    return [bytes(1) for _ in x]",
                                        allocated_bytes=4096, retained_bytes=4096,
                                        peak_share_bytes=4096, hits=1)),
                          peak_bytes=4096, retained_total_bytes=4096)
    return RunReport(command="app.py 3", argv=("app.py", "3"), exit_code=1,
                     error="ValueError: boom", started_at="2023-11-14T22:13:20+00:00",
                     duration_seconds=0.5, timeline=timeline(), peak_seconds=0.25,
                     sites=after().sites, sites_above_start_bytes=3 * 1024**2, sites_seconds=0.24,
                     rss=True, final=after(), lines=(profile,), lines_target="app.py:load")


def _lineprofile() -> LineProfile:
    def fill() -> None:
        block = bytearray(50_000)
        del block

    return memguard.profile_lines(fill)


def _baseline_text() -> bytes:
    value = Baseline(name="main", source="python", peaks={"tests/a.py::t": 1024, "b::c": 7})
    return json.dumps(value.to_dict()).encode()


VALID: dict[str, bytes] = {
    "snapshot": files.dumps(after()).encode(),
    "diff": files.dumps(diff()).encode(),
    "timeline": files.dumps(timeline()).encode(),
    "run": files.dumps(_run()).encode(),
    "lineprofile": files.dumps(_lineprofile()).encode(),
    "baseline": _baseline_text(),
}


def _load(kind: str, content: bytes) -> Any:
    """Load *content* as a file of *kind*; returns the value or the format error."""
    path = _DIR / (f"{kind}.json.gz" if content[:2] == b"\x1f\x8b" else f"{kind}.json")
    path.write_bytes(content)
    try:
        value = Baseline.load(path) if kind == "baseline" else memguard.load(path)
    except SnapshotFormatError as error:
        assert error.path == path or str(error.path) == str(path)
        return error
    assert str(value)  # a value that loads must print
    return value


def test_every_valid_file_loads() -> None:
    """The valid file of each kind, plain and gzip, loads back (the mutations' seeds)."""
    for kind, content in VALID.items():
        # baselines are plain JSON by design: a gzip one is a format error
        for variant in (content, gzip.compress(content))[: 1 if kind == "baseline" else 2]:
            tried()
            assert not isinstance(_load(kind, variant), SnapshotFormatError), kind


@settings(max_examples=BYTES_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=2000), kind=st.sampled_from(sorted(VALID)),
       gz=st.booleans())
def test_arbitrary_bytes_are_format_errors(content: bytes, kind: str, gz: bool) -> None:
    """Arbitrary bytes, plain or gzip-wrapped, as any kind: a SnapshotFormatError."""
    tried()
    result = _load(kind, gzip.compress(content) if gz else content)
    assert isinstance(result, SnapshotFormatError)


_mutation = st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]),
                      st.floats(min_value=0, max_value=1, exclude_max=True),
                      st.binary(min_size=1, max_size=8))


@settings(max_examples=MUTATION_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(VALID)), mutations=st.lists(_mutation, min_size=1,
                                                               max_size=4), gz=st.booleans())
def test_byte_mutations_of_valid_files(kind: str, mutations: list[tuple[str, float, bytes]],
                                       gz: bool) -> None:
    """Valid files with bytes flipped, inserted, deleted or cut off: an error or a value."""
    tried()
    content = bytearray(gzip.compress(VALID[kind], mtime=0) if gz else VALID[kind])
    for action, where, payload in mutations:
        at = int(where * len(content)) if content else 0
        if action == "flip" and content:
            content[at] ^= payload[0] or 1
        elif action == "cut":
            del content[at:]
        elif action == "insert":
            content[at:at] = payload
        elif content:
            del content[at:at + len(payload)]
    _load(kind, bytes(content))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=TREE_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(VALID)), choice=st.floats(min_value=0, max_value=1,
                                                             exclude_max=True),
       replacement=_json, drop=st.booleans())
# found in a busy CI run: a timeline's start no calendar can print (6.8e16 s)
@example(kind="timeline", choice=0.15625, replacement=6.77680361916768e16, drop=False)
def test_valid_json_with_a_field_replaced(kind: str, choice: float, replacement: Any,
                                          drop: bool) -> None:
    """Any field of a valid file replaced by any JSON value, or removed: an error or a value."""
    tried()
    tree = json.loads(VALID[kind])
    paths = [p for p in _paths(tree) if p]
    path = paths[int(choice * len(paths))]
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    _load(kind, json.dumps(tree).encode())


HUGE_CLAIMS = {
    "a 10,000-digit integer": b'{"format": "memguard", "version": ' + b"9" * 10_000 + b"}",
    "a 1e308 version": b'{"format": "memguard", "version": 1e308}',
    "a count of 10**30 sites": None,
    "100,000 nested lists": b"[" * 100_000 + b"]" * 100_000,
    "100,000 nested objects": b'{"a": ' * 100_000 + b"}" * 100_000,
    "nesting 100,000 deep inside data": None,
    "a UTF-8 BOM": b"\xef\xbb\xbf" + VALID["snapshot"],
    "UTF-16 text": VALID["snapshot"].decode().encode("utf-16"),
    "NaN fields": re.sub(rb": \d+(\.\d+)?", b": NaN", VALID["timeline"]),
}


def _claims(kind: str) -> dict[str, bytes]:
    claims = {name: raw for name, raw in HUGE_CLAIMS.items() if raw is not None}
    tree = json.loads(VALID[kind])
    data = tree.get("data", tree)
    for key in list(data):
        if isinstance(data[key], int) and not isinstance(data[key], bool):
            data[key] = 10**30
    claims["a count of 10**30 sites"] = json.dumps(tree).encode()
    deep = json.loads(VALID[kind])
    deep[next(iter(deep))] = "@"
    claims["nesting 100,000 deep inside data"] = json.dumps(deep).encode().replace(
        b'"@"', b"[" * 100_000 + b"]" * 100_000, 1)
    return claims


@pytest.mark.parametrize("kind", sorted(VALID))
def test_absurd_claims_and_deep_nesting(kind: str) -> None:
    """Huge integers, counts of 10**30, nesting 100,000 deep, BOMs, UTF-16, NaN: no big allocation.

    Each load runs under ``limit(mb=64)``: a file that made the loader build
    something in proportion to a number it claims would exceed it.
    """
    for name, raw in _claims(kind).items():
        tried()
        with limit(mb=64, sites=False):
            result = _load(kind, raw)
        if name != "a count of 10**30 sites":  # that one may load: it must then print
            assert isinstance(result, SnapshotFormatError), (kind, name, result)


def _bomb(expanded_bytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * (1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(expanded_bytes >> 20)) + packer.flush()


def test_gzip_bomb_is_refused_without_expanding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 70 KiB gzip file expanding to 64 MiB: refused past the bound, never held whole.

    The bound (``memguard.values.files.MAX_DECOMPRESSED_BYTES``, 512 MiB by
    default) is lowered to 4 MiB here; the loader reads in 1 MiB chunks, so
    its peak stays near the bound instead of the expanded size.
    """
    tried()
    bomb = _bomb(64 << 20)
    assert len(bomb) < 100_000
    monkeypatch.setattr(files, "MAX_DECOMPRESSED_BYTES", 4 << 20)
    with limit(mb=12) as guard, pytest.raises(SnapshotFormatError, match="possible gzip bomb"):
        files.loads(bomb, name="bomb.json.gz")
    assert guard.peak_above_start_bytes < 12 * MB


def test_a_small_gzip_file_does_not_allocate_the_bound() -> None:
    """Reading a small gzip file costs about its size, not the 512 MiB bound."""
    tried()
    raw = gzip.compress(VALID["snapshot"])
    with limit(mb=8) as guard:
        files.loads(raw)
    assert guard.peak_above_start_bytes < 4 * MB
