"""L1 foundation: the one writer of every file memguard writes.

``memguard run -o``, ``memguard report --output``, ``memguard diff
--output``, :meth:`Snapshot.save <memguard.values.snapshot.Snapshot.save>`
and every value's :func:`~memguard.values.files.save`, baselines,
``--memguard-json`` and :func:`memguard.report.save` write through
:func:`write_file`, under one rule:

* A symbolic link is written through: its target gets the content, the
  link stays (as ``open(path, "w")`` would do).
* Only a regular file is ever replaced. A device node (``/dev/full``,
  ``/dev/null``, a disk), a FIFO, a socket or a directory at the path (or
  at the end of its links) is refused with :class:`OutputRefused`, before
  anything is written: replacing it would destroy it, and writing into it
  would feed a reader or a device that memguard was not asked to feed.
* A regular file is replaced atomically: the content goes to a temporary
  file in the same directory, flushed to disk, then renamed over the
  target, so a reader never sees half a file and a failed write leaves the
  old file whole. The replacement keeps the old file's permission bits
  (and, when allowed, its owner). A hard link to the old file keeps the
  old content.
* :func:`check_writable` proves, before a long run, that the file can
  really be created there: it creates and removes a probe file next to it
  (a folder that merely looks writable, such as ``/sys/kernel`` to root or
  a read-only mount, fails here rather than after the run).

Errors name the path as the caller gave it: :class:`OutputRefused` for what
memguard will not write, :class:`OSError` (with the system's reason) for
what the system would not let it write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from .exceptions import OutputRefused

__all__ = ["check_writable", "write_file"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link that cannot be resolved (a loop)"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _resolve(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """The file a write to *path* lands in (links followed) and its status, if it exists.

    Raises:
        OutputRefused: Something other than a regular file is there.
    """
    shown = os.fspath(path)
    if not shown:
        raise OutputRefused(shown, "the path is empty")
    real = Path(os.path.realpath(shown))
    try:
        status = os.lstat(real)
    except FileNotFoundError:
        return real, None
    except OSError as error:
        raise OSError(error.errno, error.strerror, shown) from None
    if not stat.S_ISREG(status.st_mode):
        where = "" if str(real) == os.path.abspath(shown) else f" (the link leads to {real})"
        raise OutputRefused(shown, f"it is {_kind(status.st_mode)}{where}, not a regular "
                                   f"file; memguard writes only regular files")
    return real, status


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Make sure a file can be written at *path*, before the work that produces it.

    Follows symbolic links, refuses anything that is not a regular file,
    refuses an existing file unless *overwrite*, and creates (then removes)
    a probe file in the target's folder, so that a folder the system will
    not write to fails now.

    Args:
        path: Where the file will go.
        overwrite: Allow replacing an existing regular file.

    Returns:
        The file that will be written (symbolic links resolved).

    Raises:
        OutputRefused: Not a regular file, or it exists and *overwrite* is false.
        OSError: The folder is missing, read-only or refuses new files; the
            error's ``filename`` is *path*.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> check_writable(folder / "run.json").name
        'run.json'
        >>> check_writable("/dev/null")
        Traceback (most recent call last):
        ...
        memguard.exceptions.OutputRefused: /dev/null: it is a character device, not a ...
    """
    real, status = _resolve(path)
    if status is not None and not overwrite:
        raise OutputRefused(os.fspath(path), "it exists", exists=True)
    probe = real.with_name(f".{real.name}.{os.getpid()}.probe")
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise OSError(error.errno, _why(error), os.fspath(path)) from None
    os.close(descriptor)
    os.unlink(probe)
    return real


def _why(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "its folder does not exist"
    return f"cannot create a file in its folder ({error.strerror or error})"


def write_file(path: str | os.PathLike[str], content: bytes | str, *,
               overwrite: bool = True, make_folder: bool = False) -> Path:
    """Write *content* to *path* under the rule in the module docstring.

    Args:
        path: The file to write; a symbolic link is written through.
        content: Bytes, or text written as UTF-8.
        overwrite: Allow replacing an existing regular file.
        make_folder: Create the missing folders first.

    Returns:
        *path*, as a :class:`~pathlib.Path` (not the link's target).

    Raises:
        OutputRefused: Not a regular file, or it exists and *overwrite* is false.
        OSError: The system refused the write (folder missing or read-only,
            disk full, ...); the old file, if any, is untouched.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
        >>> write_file(target, "hello\\n").read_text()
        'hello\\n'
    """
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    if make_folder:
        Path(os.path.realpath(os.fspath(path))).parent.mkdir(parents=True, exist_ok=True)
    real, status = _resolve(path)
    if status is not None and not overwrite:
        raise OutputRefused(os.fspath(path), "it exists", exists=True)
    partial = real.with_name(f".{real.name}.{os.getpid()}.partial")
    try:
        _write_partial(partial, data, status)
        os.replace(partial, real)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        if isinstance(error, OutputRefused) or not isinstance(error, OSError):
            raise
        raise OSError(error.errno, _why(error) if error.filename == os.fspath(partial)
                      else error.strerror, os.fspath(path)) from None
    return Path(path)


def _write_partial(partial: Path, data: bytes, status: os.stat_result | None) -> None:
    """Write *data* to the new file *partial*, with the old file's mode and owner."""
    mode = 0o666 if status is None else stat.S_IMODE(status.st_mode)
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:  # left behind by a killed writer that had this pid
        os.unlink(partial)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
        os.fsync(descriptor)
        if status is not None:
            os.fchmod(descriptor, stat.S_IMODE(status.st_mode))  # the umask narrowed it
            with contextlib.suppress(PermissionError):  # not ours to give: stays the writer's
                os.fchown(descriptor, status.st_uid, status.st_gid)
    finally:
        os.close(descriptor)
