"""L4 program runner: :class:`Program`, a script or module run here as ``python`` runs it.

Its own ``sys.argv``, ``__main__`` and ``sys.path[0]``; its exit code kept
(``SystemExit`` as the interpreter reads it, 1 for an uncaught exception,
130 for ``KeyboardInterrupt``); an uncaught exception printed through
:func:`sys.excepthook` with memguard's and runpy's frames left out.
``sys.argv`` and ``sys.path`` are restored afterwards. Used by
:mod:`memguard.program.measure`.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import runpy
import shlex
import sys
import zipfile
from dataclasses import dataclass
from types import TracebackType

from ..values.site import is_internal

__all__ = ["Program", "hidden"]

_HIDDEN_FILES = frozenset({runpy.__file__, "<frozen runpy>"})


@dataclass(frozen=True, slots=True)
class Program:
    """A program to run: a script path or a module name, and its arguments.

    Example:
        >>> Program("app.py", ("--fast",)).command
        'app.py --fast'
        >>> Program("http.server", ("8000",), module=True).command
        '-m http.server 8000'
    """

    target: str
    """The script's path, or the module's name when :attr:`module` is true."""
    args: tuple[str, ...] = ()
    """The program's arguments (``sys.argv[1:]``)."""
    module: bool = False
    """Run :attr:`target` as ``python -m`` does."""

    @property
    def command(self) -> str:
        """The command line after ``memguard run``, shell-quoted."""
        head = ["-m", self.target] if self.module else [self.target]
        return shlex.join([*head, *self.args])

    def check(self) -> None:
        """Fail early, as ``python`` does, when there is nothing to run.

        Raises:
            FileNotFoundError: The script does not exist.
            ModuleNotFoundError: The module is not found.
        """
        if self.module:
            saved = sys.path[:]
            sys.path.insert(0, os.getcwd())  # where python -m looks first
            try:
                found = importlib.util.find_spec(self.target) is not None
            except (ImportError, ValueError):
                found = False
            finally:
                sys.path[:] = saved
            if not found:
                raise ModuleNotFoundError(f"no module named {self.target!r}",
                                          name=self.target)
        elif not os.path.exists(self.target):
            raise FileNotFoundError(errno.ENOENT, "can't open file: no such file", self.target)

    def execute(self, keep: list[object] | None = None) -> tuple[int, str | None]:
        """Run the program here and now, restoring ``sys.argv`` and ``sys.path`` after.

        Args:
            keep: If given, the program's globals are appended to it when it
                ends normally, so that what it still holds can be measured.

        Returns:
            The exit code, and ``"Type: message"`` when the program raised.

        Example:
            >>> import pathlib, tempfile
            >>> script = pathlib.Path(tempfile.mkdtemp()) / "bye.py"
            >>> _ = script.write_text("raise SystemExit(4)\\n")
            >>> Program(str(script)).execute()
            (4, None)
        """
        saved_argv, saved_path, saved_items = sys.argv, sys.path, sys.path[:]
        sys.argv = [self.target, *self.args]  # runpy puts a module's own path first
        try:
            if self.module:
                sys.path.insert(0, os.getcwd())
                namespace = runpy.run_module(self.target, run_name="__main__", alter_sys=True)
            else:
                if not _is_archive_or_dir(self.target):  # runpy puts those first itself
                    sys.path.insert(0, os.path.dirname(os.path.realpath(self.target)))
                namespace = runpy.run_path(self.target, run_name="__main__")
        except SystemExit as stop:
            return _exit_code(stop.code), None
        except BaseException as error:  # the program's own failure, shown as python would
            _show_traceback(error)
            code = 130 if isinstance(error, KeyboardInterrupt) else 1
            return code, f"{type(error).__name__}: {error}"
        finally:
            sys.argv, sys.path = saved_argv, saved_path
            saved_path[:] = saved_items
        if keep is not None:
            keep.append(namespace)
        return 0, None


def _is_archive_or_dir(path: str) -> bool:
    return os.path.isdir(path) or zipfile.is_zipfile(path)


def _exit_code(code: object) -> int:
    """The process exit code for ``SystemExit(code)``, as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _show_traceback(error: BaseException) -> None:
    tb: TracebackType | None = error.__traceback__
    while tb is not None and hidden(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    sys.excepthook(type(error), error.with_traceback(tb), tb)


def hidden(filename: str) -> bool:
    """Whether *filename* is memguard's, runpy's, tracemalloc's or the import machinery's."""
    return filename in _HIDDEN_FILES or is_internal(filename)
