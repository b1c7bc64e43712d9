"""memguard's benchmark suite: ``python benchmarks/run_all.py [--quick]``."""

from __future__ import annotations
