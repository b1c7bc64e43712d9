"""L5 guards: the checks a test, notebook or program wraps around code."""

from __future__ import annotations
