"""L7 program runner: :class:`Program`, a script or module run here as ``python`` runs it.

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
import pkgutil  # noqa: F401  (runpy.run_path imports it: not the program's to pay for)
import runpy
import shlex
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from .. import _startup
from ..values.site import is_internal
from . import interrupts
from ._agent import exit_code_of, failed

__all__ = ["Program", "hidden"]

_HIDDEN_FILES = frozenset({runpy.__file__, "<frozen runpy>"})
# The interpreter's machinery (threading's shutdown and thread registry,
# imports, runpy and pkgutil running the program), tracemalloc (memguard's
# threads read it) and the modules whose objects' identity others test
# (dataclasses' field markers on memguard's values, enum, abc) keep their one
# copy.
_SHARED = frozenset({
    "threading", "_threading_local", "runpy", "pkgutil", "importlib", "zipimport",
    "tracemalloc", "dataclasses", "enum", "abc", "_weakrefset", "copyreg", "warnings",
    "contextlib", "functools", "collections", "_collections_abc", "types", "gc", "atexit",
    "site", "_sitebuiltins", "sysconfig", "encodings", "codecs", "io", "os", "posixpath",
    "genericpath", "stat", "re", "sre_compile", "sre_parse", "sre_constants",
})
_LENDABLE = frozenset(sys.stdlib_module_names) - _SHARED


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

    def execute(self, keep: list[object] | None = None, *,
                on_end: Callable[[], None] | None = None,
                lend_imports: bool = False) -> tuple[int, str | None]:
        """Run the program here and now, restoring ``sys.argv`` and ``sys.path`` after.

        Args:
            keep: If given, the program's globals are appended to it when it
                ends normally, so that what it still holds can be measured.
            on_end: Called as soon as the program has ended, however it ended
                (:meth:`Interruptions.hold
                <memguard.program.interrupts.Interruptions.hold>`).
            lend_imports: Start the program without the standard-library
                modules imported since memguard was (:func:`lend_modules`),
                so that its own imports are measured; for a process that
                exists to run the program, as ``memguard run``'s does.

        Returns:
            The exit code, and ``"Type: message"`` when the program raised.
            :class:`KeyboardInterrupt` gives 130 and :class:`Terminated
            <memguard.program.interrupts.Terminated>` ``128 + signal`` (143
            for SIGTERM, with no traceback, as the signal's default would).

        Example:
            >>> import pathlib, tempfile
            >>> script = pathlib.Path(tempfile.mkdtemp()) / "bye.py"
            >>> _ = script.write_text("raise SystemExit(4)\\n")
            >>> Program(str(script)).execute()
            (4, None)
        """
        saved_argv, saved_path, saved_items = sys.argv, sys.path, sys.path[:]
        lent = lend_modules() if lend_imports else {}
        sys.argv = [self.target, *self.args]  # runpy puts a module's own path first
        failure: BaseException | None = None
        code: int | None = None
        namespace: dict[str, object] = {}
        try:
            if self.module:
                sys.path.insert(0, os.getcwd())
                namespace = runpy.run_module(self.target, run_name="__main__", alter_sys=True)
            else:
                if not _is_archive_or_dir(self.target):  # runpy puts those first itself
                    sys.path.insert(0, os.path.dirname(os.path.realpath(self.target)))
                namespace = runpy.run_path(self.target, run_name="__main__")
        except SystemExit as stop:
            code = exit_code_of(stop.code)
        except BaseException as error:  # the program's own failure, shown as python would
            failure = error
        finally:
            if on_end is not None:
                on_end()
            sys.modules.update(lent)
            sys.argv, sys.path = saved_argv, saved_path
            saved_path[:] = saved_items
        if failure is not None:
            return _failed(failure)
        if code is not None:
            return code, None
        if keep is not None:
            keep.append(namespace)
        return 0, None


def _failed(error: BaseException) -> tuple[int, str]:
    # memguard's frames and runpy's before the program's; the signal handler's after
    return failed(error, hidden, _interrupts_file)


def _interrupts_file(filename: str) -> bool:
    return filename == interrupts.__file__


def lend_modules() -> dict[str, ModuleType]:
    """Take memguard's own standard-library imports out of :data:`sys.modules`.

    ``python prog.py`` starts *prog* with about 70 modules imported;
    ``memguard run`` has imported some 90 more for itself (argparse,
    dataclasses, decimal, json, ...). A program that imports one of those
    would find it already there, and its import would cost nothing in the
    traced figures: an import-heavy program was measured 15% low. So the
    pure-Python standard-library modules imported since memguard's own
    import (:mod:`memguard._startup`) are taken out while the program runs:
    the program imports its own copies, traced as its own, as under plain
    ``python``. memguard keeps using the copies it holds; the caller puts
    them back into :data:`sys.modules` when the program has ended.

    Kept: memguard's own modules, compiled extensions (importing them again
    allocates nothing new), third-party packages, and the modules whose one
    copy the interpreter or memguard's threads rely on while the program
    runs (:data:`_SHARED`).

    Returns:
        The modules taken out, by name.
    """
    lent = {}
    for name, module in list(sys.modules.items()):
        if name in _startup.MODULES or name.partition(".")[0] not in _LENDABLE:
            continue
        if not getattr(module, "__file__", None):  # built into the interpreter: one copy
            continue
        lent[name] = sys.modules.pop(name)
    return lent


def _is_archive_or_dir(path: str) -> bool:
    return os.path.isdir(path) or zipfile.is_zipfile(path)


def hidden(filename: str) -> bool:
    """Whether *filename* is memguard's, runpy's, tracemalloc's or the import machinery's."""
    return filename in _HIDDEN_FILES or is_internal(filename)
