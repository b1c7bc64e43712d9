"""L7 program runner: run a script or module as ``python`` would, and measure it.

* :mod:`memguard.program.launch`: :class:`Program`, a script or module and
  its arguments, run with its own ``sys.argv``, ``__main__`` and exit code.
* :mod:`memguard.program.measure`: :func:`run_program`, the program run in
  this process inside a recording and a watching thread, reported as a
  :class:`~memguard.values.run.RunReport`.
* :mod:`memguard.program.spawn`: :func:`~memguard.program.spawn.run_child`,
  the program run in a fresh interpreter by :mod:`memguard.program._agent`
  (built-in modules only until the program has ended), its report built
  there by :mod:`memguard.program.child`: ``memguard run``'s way, so that the
  program's imports are measured as under ``python -X tracemalloc``.

``memguard run`` is the command line over this package. It sits above
:mod:`memguard.guards` (it uses :func:`~memguard.guards.record.record` and
the line profiler) and below the report and front-end layers.
"""

from __future__ import annotations

from .launch import Program
from .measure import run_program

__all__ = ["Program", "run_program"]
