"""A corpus of leak and clean scenarios, for memguard's tests and benchmarks.

Each :class:`Scenario` is a small piece of code with a ``run()`` to call
repeatedly, whether it leaks (``expected_leak``), its ``category`` and, for
leaks, the ``culprit``: text a good leak report must contain (the holder's
name, the leaked resource, or the signal for a native leak). ``reset()``
puts the scenario back in its first state (freeing what it leaked, closing
files, stopping threads), so one process can run every scenario under
several tools in turn.

Clean scenarios are look-alikes of the leaks: warm-up caches, bounded caches
filling up, cycles only the collector frees, big temporaries, allocator
fragmentation, interned strings, lazy imports, reused thread pools, and the
well-behaved twin of each leak.
"""

from __future__ import annotations

from .base import Scenario
from .clean import CLEAN as _CLEAN_FIRST
from .leaky import LEAKY as _LEAKY_FIRST
from .second import CLEAN_SECOND, LEAKY_SECOND

#: Every leak: the first release's, then issue 15's (rare leaks, untracked objects).
LEAKY: tuple[Scenario, ...] = (*_LEAKY_FIRST, *LEAKY_SECOND)
#: Every clean look-alike: the first release's, then bounded caches of 128 to
#: 4,096 entries, the 20,000-tuple pattern and a 5 ms call.
CLEAN: tuple[Scenario, ...] = (*_CLEAN_FIRST, *CLEAN_SECOND)

__all__ = ["CLEAN", "LEAKY", "SCENARIOS", "Scenario", "by_name"]

#: Every scenario, leaks first.
SCENARIOS: tuple[Scenario, ...] = (*LEAKY, *CLEAN)


def by_name(name: str) -> Scenario:
    """The scenario called *name*."""
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(f"no corpus scenario named {name!r}")
