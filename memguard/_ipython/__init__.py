"""L9 front end: the IPython extension's implementation (``%load_ext memguard``).

Imported only by :func:`memguard.ipython.load_ipython_extension`, so IPython
is never imported by ``import memguard``. The modules:

* :mod:`.options`: argparse over ``shlex.split(line)``, usage errors, ``?`` help;
* :mod:`.code`: a cell compiled once and run in the user namespace;
* :mod:`.show`: how memguard's values are displayed (text and rich);
* :mod:`.cells`: the opt-in per-cell memory line (``%memguard_cells on``);
* :mod:`.sites`: cells named ``In [7], line 3: source`` in memguard's reports;
* :mod:`.holders`: ``%memguard_holders``, its search and its chain drawing;
* :mod:`.magics`: the magics themselves.
"""

from __future__ import annotations

__all__: list[str] = []
