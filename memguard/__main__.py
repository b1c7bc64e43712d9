"""L9 front end: ``python -m memguard`` runs the command line."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
