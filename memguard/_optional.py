"""L1 foundation: the one sanctioned way to import optional or heavy packages.

matplotlib, IPython, objgraph, pympler and psutil are imported here, inside
the function that needs them, never at ``import memguard``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that provides each optional package.
_EXTRAS: dict[str, str] = {
    "matplotlib": "plot",
    "IPython": "notebook",
    "ipykernel": "notebook",
}


def require(name: str, extra: str | None = None) -> ModuleType:
    """Import *name* or fail with the command that installs it.

    Args:
        name: The module to import, such as ``"matplotlib.figure"``.
        extra: The memguard extra that provides it; guessed from the top
            package name when omitted.

    Returns:
        The imported module.

    Raises:
        ImportError: The package is not installed; the message is the exact
            ``pip install`` command to run.
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        top = name.partition(".")[0]
        extra = extra or _EXTRAS.get(top)
        hint = f"pip install 'memguard[{extra}]'" if extra else f"pip install {top}"
        raise ImportError(f"this memguard feature needs {top}, which is not installed; "
                          f"run: {hint}") from error


def extension(name: str) -> ModuleType:
    """Import memguard's own optional compiled module *name* (``"memguard._native"``).

    Raises:
        ImportError: The extension was not built here (the caller says what
            it falls back to).

    Example:
        >>> extension("memguard._version").__name__   # any module imports the same way
        'memguard._version'
    """
    return importlib.import_module(name)
