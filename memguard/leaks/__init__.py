"""L6 leak checks: leak checks — is code keeping memory, objects or resources across calls?

The package, from the user's end down:

* :mod:`~memguard.leaks.api`: :func:`track_leaks`, :func:`check_leaks` and
  :class:`LeakTracker` (``memguard.track_leaks`` and ``memguard.check_leaks``).
* :mod:`~memguard.leaks.options`: :class:`LeakOptions`, every setting and its
  default, declared once for the API, the pytest marker and the magic.
* :mod:`~memguard.leaks.collector`: the calls and readings of one check
  (screening untraced, sized by time; naming traced).
* :mod:`~memguard.leaks.statistics`: how growth is told from noise and caches.
* :mod:`~memguard.leaks.naming`: the sites, types and holder of a found leak.

The result is a :class:`~memguard.values.leak.LeakReport`.
"""

from __future__ import annotations

from .api import LeakTracker, check_leaks, track_leaks
from .options import DEFAULTS, LeakOptions

__all__ = ["DEFAULTS", "LeakOptions", "LeakTracker", "check_leaks", "track_leaks"]
