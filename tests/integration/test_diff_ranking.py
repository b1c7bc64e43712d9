"""memguard.diff on real snapshots: what shrank and what disappeared is listed, ranked
by the size of the change whatever its sign.

Each test here pins a behaviour that a one-line bug once broke without any other
test noticing (see ``benchmarks/mutations.py``).
"""

from __future__ import annotations

import memguard
from tests import helpers

KB = 1_000


class Vanishing:
    """Instances live in the first snapshot only."""


class Appearing:
    """Instances live in the second snapshot only."""


def _line(marker: str) -> int:
    return helpers.line_of(__file__, marker)


def _diff() -> memguard.SnapshotDiff:
    with memguard.record():
        freed = [bytearray(100 * KB) for _ in range(10)]  # freed-line
        vanishing = [Vanishing() for _ in range(300)]
        before = memguard.snapshot("before")
        del freed, vanishing
        grown = bytearray(200 * KB)  # grown-line
        appearing = [Appearing() for _ in range(20)]
        after = memguard.snapshot("after")
        del grown, appearing
    return memguard.diff(before, after)


def test_a_large_shrink_ranks_before_a_smaller_growth() -> None:
    difference = _diff()
    assert difference.sites is not None
    mine = [d for d in difference.sites if d.filename == __file__]
    freed = next(d for d in mine if d.lineno == _line("# freed-line"))
    grown = next(d for d in mine if d.lineno == _line("# grown-line"))
    # Every block the line had is gone: the site is listed, at zero.
    assert freed.size_bytes == 0
    assert freed.count == 0
    assert freed.count_diff == -21  # ten bytearrays, their ten buffers, the list
    assert -1_000 * KB - 4096 <= freed.size_diff_bytes <= -1_000 * KB
    assert 200 * KB <= grown.size_diff_bytes <= 200 * KB + 4096
    assert difference.sites.index(freed) < difference.sites.index(grown)
    # The ranking is by absolute change, over every site of the process.
    sizes = [abs(d.size_diff_bytes) for d in difference.sites]
    assert sizes == sorted(sizes, reverse=True)
    assert difference.sites[0] == freed


def test_types_that_disappear_and_appear_are_listed() -> None:
    difference = _diff()
    assert difference.types is not None
    changes = {d.name.rsplit(".", 1)[-1]: (d.count, d.count_diff) for d in difference.types}
    assert changes["Vanishing"] == (0, -300)
    assert changes["Appearing"] == (20, 20)
    counts = [abs(d.count_diff) for d in difference.types]
    assert counts == sorted(counts, reverse=True)
