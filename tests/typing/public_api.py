"""Type-checked examples of the public API (mypy --strict runs over this file)."""

from __future__ import annotations

import memguard


@memguard.limit(mb=10)
def build() -> list[int]:
    return list(range(10))


async def fetch() -> bytes:
    return b""


fetch_limited = memguard.limit("1 MiB")(fetch)
values: list[int] = build()

with memguard.limit(kib=512) as guard:
    pass
peak: int = guard.peak_bytes
size: int = memguard.parse_size("1.5 GiB")
