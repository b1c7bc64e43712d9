"""L6 line profiler: what each line of a function allocated, kept and held at its peak.

The public entry points are :func:`profile` (a decorator), :func:`profile_lines`
(one call) and :class:`LineTarget` (``memguard run --lines``); each makes a
:class:`~memguard.values.lineprofile.LineProfile`. The modules:

* :mod:`memguard.lines.profile`: ``@profile`` and ``profile_lines``;
* :mod:`memguard.lines.target`: :class:`LineTarget`, a named function profiled
  while a whole program runs;
* ``memguard.lines._tracer``: the trace function that reads tracemalloc's
  counters at each line event of the profiled frames;
* ``memguard.lines._statistics``: the per-line figures (the collector) and
  the live traces charged to the profiled lines;
* ``memguard.lines._builder``: the steps the entry points share: checking
  options, naming functions, snapshots, building the value.
"""

from __future__ import annotations

from .profile import profile, profile_lines
from .target import LineTarget

__all__ = ["LineTarget", "profile", "profile_lines"]
