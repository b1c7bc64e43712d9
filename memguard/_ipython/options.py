"""L9 front end: option parsing for memguard's magics.

A magic's options are parsed by argparse over ``shlex.split(line)``, as a
command line would be. A mistake is an IPython ``UsageError`` (IPython shows
it as one red line, without a traceback) carrying argparse's message and the
usage; ``-h`` prints the help. Each magic's docstring, which ``%magic?``
shows, ends with its parser's help.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from IPython.core.error import UsageError

from ..units import parse_size

__all__ = ["MagicParser", "documented", "parse_line", "size_argument"]

F = TypeVar("F", bound=Callable[..., Any])


class _HelpShown(Exception):
    """``-h``/``--help`` was given: the help is printed and the magic does nothing."""


class MagicParser(argparse.ArgumentParser):
    """An argument parser that reports mistakes as IPython usage errors.

    Example:
        >>> parser = MagicParser(prog="%memguard_demo", description="Demo.")
        >>> _ = parser.add_argument("--repeat", type=int, default=3)
        >>> parse_line(parser, "--repeat 5")
        Namespace(repeat=5)
    """

    def __init__(self, *, prog: str, description: str, epilog: str | None = None) -> None:
        super().__init__(prog=prog, description=description, epilog=epilog, add_help=True,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         allow_abbrev=False)

    def split_code(self, line: str) -> tuple[str, str]:
        """Split *line* into its leading options and the Python code after them.

        Code is kept exactly as typed (quotes included), which ``shlex`` would
        not do; a ``--`` ends the options explicitly.

        Example:
            >>> parser = MagicParser(prog="%demo", description="Demo.")
            >>> _ = parser.add_argument("--depth", type=int)
            >>> parser.split_code('--depth 3 bus.handlers["request"][0]')
            ('--depth 3', 'bus.handlers["request"][0]')
        """
        takes_value = {option for action in self._actions for option in action.option_strings
                       if action.nargs != 0}
        tokens = list(re.finditer(r"\S+", line))
        index = 0
        while index < len(tokens):
            word = tokens[index].group()
            if word == "--":
                return line[:tokens[index].start()].strip(), line[tokens[index].end():].strip()
            if not word.startswith("-") or word == "-":
                break
            index += 2 if word in takes_value else 1
        if index >= len(tokens):
            return line.strip(), ""
        return line[:tokens[index].start()].strip(), line[tokens[index].start():].strip()

    def error(self, message: str) -> NoReturn:
        """Raise a ``UsageError`` instead of printing and exiting."""
        raise UsageError(f"{self.prog}: {message}\n{self.format_usage().rstrip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """``-h`` ends here after printing the help; anything else is a usage error."""
        if status == 0:
            raise _HelpShown
        raise UsageError(message or f"{self.prog}: invalid arguments")


def parse_line(parser: MagicParser, line: str, *,
               code_argument: bool = False) -> argparse.Namespace | None:
    """Split *line* as a shell would and parse it.

    Args:
        parser: The magic's parser.
        line: The magic's line, as IPython passes it.
        code_argument: The parser's last positional argument is Python code
            (an expression or a call): it is taken verbatim from the line,
            after the options, instead of being split as shell words.

    Returns:
        The parsed options, or ``None`` when ``-h`` was given (the help has
        been printed, and the magic should do nothing else).

    Raises:
        UsageError: The line has unbalanced quotes, or the options are wrong.

    Example:
        >>> parser = MagicParser(prog="%demo", description="Demo.")
        >>> _ = parser.add_argument("name")
        >>> parse_line(parser, "'two words'")
        Namespace(name='two words')
    """
    code: list[str] = []
    if code_argument:
        line, text = parser.split_code(line)
        code = ["--", text] if text else []
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"{parser.prog}: cannot split {line!r}: {error}") from None
    try:
        return parser.parse_args(words + code)
    except _HelpShown:
        return None
    except SystemExit as exit_:  # pragma: no cover - error() and exit() raise first
        raise UsageError(f"{parser.prog}: invalid arguments (exit {exit_.code})") from None


def size_argument(words: Sequence[str], *, prog: str, name: str = "SIZE") -> int:
    """Join the words of a size (``100 MB`` may come as two words) and parse it.

    Raises:
        UsageError: The words are not a size, with the parser's explanation.

    Example:
        >>> size_argument(["1.5", "KiB"], prog="%demo")
        1536
    """
    text = " ".join(words)
    try:
        return parse_size(text, name=name)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{prog}: {error}") from None


def documented(parser: MagicParser, example: str) -> Callable[[F], F]:
    """Append *example* and the parser's help to a magic's docstring (its ``?`` help).

    Example:
        >>> parser = MagicParser(prog="%demo", description="Demo.")
        >>> @documented(parser, "%demo")
        ... def demo(line: str) -> None:
        ...     '''Do the demo.'''
        >>> "usage: %demo" in demo.__doc__
        True
    """

    def decorate(fn: F) -> F:
        summary = (fn.__doc__ or "").strip()
        body = "\n".join(f"    {row}" if row else "" for row in example.strip().splitlines())
        fn.__doc__ = f"{summary}\n\nExample::\n\n{body}\n\n{parser.format_help()}"
        return fn

    return decorate
