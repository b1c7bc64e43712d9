"""L9 front end: the pytest plugin's parts (options, plans, runs, summaries).

:mod:`memguard.pytest_plugin` is the entry point; this package holds the named
functions its thin hooks delegate to.
"""

from __future__ import annotations
