"""L4 values: versioned JSON files for every memguard value; never pickle.

A file is one JSON object, gzip-compressed when its name ends in ``.gz``::

    {"format": "memguard", "version": 2, "kind": "snapshot",
     "memguard": "0.2.0", "data": {...}}

Version 2 (memguard 0.2) names every figure above a block's start so
(``peak_above_start_bytes``, ``sites_above_start_bytes`` of a limit and a
run report); version 1 files (memguard 0.1) are still read, their old names
mapped by the values' ``from_dict``
(:func:`memguard.values._value.renamed_field`).

``kind`` picks the class that reads ``data``: every value declares its kind
in its class statement (:mod:`memguard.values._value`), and
:func:`register_kind` adds a reader for a kind of one's own.
Loading never runs code from the file. Every damaged, truncated, foreign or
newer-version file raises :class:`~memguard.exceptions.SnapshotFormatError`
naming the file and the problem, and so does a damaged field inside a valid
envelope (:func:`memguard.values.fields.check_fields`: types, signs, a
timeline's moments), named by its path.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._version import __version__
from ..exceptions import SnapshotFormatError
from ..output import write_file
from ._value import KINDS
from .fields import check_fields

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_DECOMPRESSED_BYTES", "dumps", "kinds", "load",
           "loads", "register_kind", "save"]

FORMAT = "memguard"
"""The value of the ``format`` field that marks a memguard file."""
FORMAT_VERSION = 2
"""The file format version this memguard writes; it reads this and every older one."""

MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024
"""The most a gzip file may expand to when loaded (512 MiB); a larger one is
refused with :class:`~memguard.exceptions.SnapshotFormatError` before it is
all in memory, so a small hostile file cannot make a huge allocation. Raise
it (``memguard.values.files.MAX_DECOMPRESSED_BYTES = ...``) to read bigger
files."""

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK_BYTES = 1024 * 1024
FromDict = Callable[[Mapping[str, Any]], Any]
_readers: dict[str, FromDict] = {}


def register_kind(kind: str, reader: FromDict) -> None:
    """Teach :func:`load` to read files of a *kind* that is not memguard's own.

    memguard's values need no registration: each declares its kind once, in
    its class statement.

    Args:
        kind: The ``kind`` string the value's ``to_dict()`` writes.
        reader: A ``from_dict(data) -> value`` callable.

    Raises:
        ValueError: *kind* is empty or is one of memguard's own kinds.
        TypeError: *reader* is not callable.

    .. versionchanged:: 0.2.0
       A ``"module:Class"`` string is no longer accepted: loading a file
       imports nothing by name. Import the class and pass its ``from_dict``.

    Example:
        >>> class Note:
        ...     def to_dict(self): return {"kind": "note"}
        ...     @classmethod
        ...     def from_dict(cls, data): return cls()
        >>> register_kind("note", Note.from_dict)
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     type(load(save(Note(), pathlib.Path(folder, "n.json")))).__name__
        'Note'
        >>> del _readers["note"]  # this example's kind, gone again
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string, got {kind!r}")
    _load_kinds()
    if kind in KINDS:
        raise ValueError(f"kind {kind!r} is memguard's own {KINDS[kind].__name__}")
    if not callable(reader):
        raise TypeError(f"reader must be a from_dict callable, got {reader!r}")
    _readers[kind] = reader


def _load_kinds() -> None:
    # Every value module declares its kind when imported; a file may be the
    # first thing a program reads.
    from . import diff, leak, limit, lineprofile, run, snapshot, timeline, watch  # noqa: F401


def kinds() -> dict[str, type]:
    """Every memguard value class by the kind it declares (its modules loaded).

    Example:
        >>> sorted(kinds())
        ['diff', 'leak', 'limit', 'lineprofile', 'run', 'snapshot', 'timeline', 'watch']
    """
    _load_kinds()
    return dict(KINDS)


def _reader(kind: str) -> FromDict | None:
    if kind not in KINDS:
        _load_kinds()
    value_class = KINDS.get(kind)
    if value_class is not None:
        return value_class.from_dict  # type: ignore[attr-defined, no-any-return]
    return _readers.get(kind)


def _kind_of(value: Any) -> tuple[str, dict[str, Any]]:
    to_dict = getattr(value, "to_dict", None)
    if to_dict is None:
        raise TypeError(f"cannot save {type(value).__name__}: it has no to_dict()")
    data = to_dict()
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        raise TypeError(f"cannot save {type(value).__name__}: its to_dict() has no 'kind'")
    return kind, data


def dumps(value: Any, *, indent: int | None = None) -> str:
    """The JSON text :func:`save` writes for *value* (indented when asked).

    Example:
        >>> from memguard.values.timeline import Timeline
        >>> dumps(Timeline(interval_seconds=0.1, duration_seconds=1.0))[:40]
        '{"format": "memguard", "version": 2, "ki'
    """
    kind, data = _kind_of(value)
    envelope = {"format": FORMAT, "version": FORMAT_VERSION, "kind": kind,
                "memguard": __version__, "data": data}
    import json  # json and gzip when a file is read or written, not at `import memguard`

    return json.dumps(envelope, indent=indent, allow_nan=False)


def save(value: Any, path: str | os.PathLike[str]) -> Path:
    """Write *value* (any memguard value with ``to_dict``) to *path*.

    The file is gzip-compressed when the name ends in ``.gz``. It is written
    by :func:`memguard.output.write_file`: through a symbolic link, never
    over a device, FIFO or directory, and atomically (a crash never leaves
    half a file under the real name).

    Returns:
        The path written, as a :class:`~pathlib.Path`.

    Raises:
        OutputRefused: Something other than a regular file is at *path*.
        OSError: The file cannot be written (the message names *path*).

    Example:
        >>> import tempfile, pathlib
        >>> from memguard.values.timeline import Timeline
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "t.json"
        >>> save(Timeline(interval_seconds=0.1, duration_seconds=1.0), target).name
        't.json'
    """
    payload = dumps(value).encode("utf-8")
    if os.fspath(path).endswith(".gz"):
        import gzip

        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    return write_file(path, payload)


def loads(raw: bytes | str, *, name: str = "<memory>") -> Any:
    """Read a value from the bytes (or text) of a memguard file.

    Args:
        raw: The file's content, gzip-compressed or not.
        name: What to call the source in error messages.

    Raises:
        SnapshotFormatError: The content is damaged, truncated, foreign, of
            an unknown kind or from a newer memguard.

    Example:
        >>> loads(dumps(loads('{"format": "memguard", "version": 1, "kind": "diff", '
        ...                   '"data": {"by": "lineno"}}'))).by
        'lineno'
    """
    import json

    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = _gunzip(raw, name)
        except EOFError:
            raise SnapshotFormatError(name, "truncated gzip data (the file ends early)") from None
        except (OSError, zlib.error) as error:
            raise SnapshotFormatError(name, f"damaged gzip data ({error})") from None
    elif name.endswith(".gz"):
        raise SnapshotFormatError(name, "the name ends in .gz but the content is not gzip")
    if not raw.strip():
        raise SnapshotFormatError(name, "the file is empty")
    try:
        envelope = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise SnapshotFormatError(name, f"not a memguard file: not UTF-8 text "
                                        f"(byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise SnapshotFormatError(name, f"not valid JSON, damaged or truncated: {error.msg} at "
                                        f"line {error.lineno} column {error.colno}") from None
    except ValueError as error:  # an integer too long to convert (sys.set_int_max_str_digits)
        raise SnapshotFormatError(name, f"not a memguard file: {error}") from None
    except RecursionError:
        raise SnapshotFormatError(name, "not a memguard file: JSON nested too deeply") from None
    return _from_envelope(envelope, name)


def _gunzip(raw: bytes, name: str) -> bytes:
    """Decompress *raw*, refusing more than :data:`MAX_DECOMPRESSED_BYTES` of output."""
    bound = MAX_DECOMPRESSED_BYTES
    chunks: list[bytes] = []
    total = 0
    import gzip

    with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as stream:
        # In chunks: read(bound + 1) would allocate the whole bound up front.
        while chunk := stream.read(min(_CHUNK_BYTES, bound + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > bound:
                raise SnapshotFormatError(
                    name, f"gzip data expands to more than {bound:,} bytes "
                          f"(MAX_DECOMPRESSED_BYTES); refused as a possible gzip bomb")
    return b"".join(chunks)


def _from_envelope(envelope: Any, name: str) -> Any:
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise SnapshotFormatError(name, "not a memguard file (no \"format\": \"memguard\" field)")
    version = envelope.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SnapshotFormatError(name, f"bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise SnapshotFormatError(
            name, f"written by a newer memguard ({envelope.get('memguard', '?')}, format "
                  f"version {version}); this memguard {__version__} reads up to version "
                  f"{FORMAT_VERSION}: upgrade memguard")
    kind = envelope.get("kind")
    reader = _reader(kind) if isinstance(kind, str) else None
    if reader is None:
        known = ", ".join(sorted([*KINDS, *_readers]))
        raise SnapshotFormatError(name, f"unknown kind {kind!r} (known: {known})")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise SnapshotFormatError(name, f"the {kind} has no data object")
    try:
        value = reader(data)
        check_fields(value)
    except KeyError as error:
        raise SnapshotFormatError(name, f"damaged {kind}: missing field {error}") from None
    except (TypeError, ValueError, AttributeError, RecursionError) as error:
        raise SnapshotFormatError(name, f"damaged {kind}: {error}") from None
    return value


def load(path: str | os.PathLike[str]) -> Any:
    """Read a memguard file: a snapshot, diff, timeline, limit or leak report, ...

    The class is chosen by the file's ``kind`` (see :func:`register_kind`);
    gzip is recognised by its content, whatever the name.

    Raises:
        SnapshotFormatError: The file is damaged, truncated, foreign, of an
            unknown kind or from a newer memguard; the message names it.
        OSError: The file cannot be read (missing, refused).

    Example:
        >>> import tempfile, pathlib
        >>> from memguard.values.timeline import Timeline
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "t.json.gz"
        >>> _ = save(Timeline(interval_seconds=0.1, duration_seconds=1.0), target)
        >>> load(target).interval_seconds
        0.1
    """
    return loads(Path(path).read_bytes(), name=os.fspath(path))
