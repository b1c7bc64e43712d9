"""L6 front end: the pytest plugin (markers and options arrive with issue 9).

Loaded through the ``pytest11`` entry point; inert unless used.
"""

from __future__ import annotations
