"""L9 front end: notebook cells named as the user sees them in every report.

ipykernel compiles each cell into a temporary file (``/tmp/ipykernel_14816/
2629628952.py``) that means nothing to the reader. While the extension is
loaded, memguard's reports name such a place by its cell and line, as the
notebook numbers them (``In [7], line 3``), beside the line's source
(``store[i] = bytearray(512)``), which the sites carry. The values keep the
real file name (a saved report still says where the code ran); only what is
printed changes, through :func:`memguard.values.site.add_location_namer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..values.site import add_location_namer

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["cell_location", "name_cells"]


def cell_location(numbers: dict[str, int], filename: str, lineno: int) -> str | None:
    """``In [N], line L`` for a cell's file, or ``None`` for any other file.

    Args:
        numbers: IPython's map from a cell's compiled file name to its prompt
            number (``shell.compile._filename_map``).
        filename: The file a frame or site names.
        lineno: The line in it.

    Example:
        >>> cell_location({"/tmp/ipykernel_1/42.py": 7}, "/tmp/ipykernel_1/42.py", 2)
        'In [7], line 2'
        >>> cell_location({}, "/app/util.py", 2) is None
        True
    """
    number = numbers.get(filename)
    return None if number is None else f"In [{number}], line {lineno}"


def name_cells(shell: InteractiveShell) -> Callable[[], None]:
    """Name *shell*'s cells in memguard's reports; returns the function that stops it.

    Example:
        ``stop = name_cells(shell)`` when the extension loads, ``stop()`` when it unloads.
    """
    numbers = getattr(shell.compile, "_filename_map", None)
    if not isinstance(numbers, dict):
        return lambda: None  # an IPython that does not map cells to files

    def namer(filename: str, lineno: int) -> str | None:
        return cell_location(numbers, filename, lineno)

    return add_location_namer(namer)
