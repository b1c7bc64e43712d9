"""A small application whose globals, classes and closures hold objects.

The watch and holder tests import it as a real package, so the holder chains
they assert name real module globals (``shopapp.registry.HANDLERS``).
"""

from __future__ import annotations
