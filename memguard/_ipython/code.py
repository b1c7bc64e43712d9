"""L9 front end: a notebook cell compiled once and run in the user namespace.

Cell magics run their body through :class:`CellCode` rather than through a
nested ``shell.run_cell`` or a templated code string: the cell is transformed
(``%magics`` and ``!commands`` inside it work), parsed and compiled once with
the shell's own compiler (so tracebacks show the cell's lines), and each run
executes it in the user's namespace. Exceptions propagate unchanged to the
magic, which is what lets a guard see them and the cell fail. Like
``%%time``, the value of a last bare expression is returned, so the magic can
hand it to IPython to display as the cell's output.

Note:
    Top-level ``await`` is not supported inside a memguard cell magic.
"""

from __future__ import annotations

import ast
from types import CodeType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["CellCode", "cell_label", "cell_number"]


def cell_number(shell: InteractiveShell) -> int:
    """The prompt number of the cell running now (the ``N`` of ``In[N]``).

    IPython 9 counts the cell before running it, IPython 8 after; the
    display hook's ``prompt_count`` is the running cell's number in both.

    Example:
        ``cell_number(shell)`` is ``7`` while ``In[7]`` runs.
    """
    hook = shell.displayhook
    return int(hook.prompt_count) if hook is not None else int(shell.execution_count)


def cell_label(shell: InteractiveShell) -> str:
    """What memguard calls the running cell in its messages.

    Example:
        ``cell_label(shell)`` is ``"cell In[7]"`` while the seventh cell runs.
    """
    return f"cell In[{cell_number(shell)}]"


class CellCode:
    """The body of a cell magic, compiled once, runnable many times.

    Args:
        shell: The running IPython shell.
        cell: The cell's source, as IPython passes it to a cell magic.
        magic: The magic's line (``%%memguard_limit 1 MB``), so that the
            body's lines are numbered as the notebook numbers them.

    Raises:
        SyntaxError: The cell does not parse.

    Example:
        In a cell magic, ``CellCode(self.shell, cell).run()`` runs the cell
        once and returns its last value (``42`` for ``x = 20`` then
        ``x + 22``).
    """

    def __init__(self, shell: InteractiveShell, cell: str, magic: str | None = None) -> None:
        __tracebackhide__ = True  # a syntax error is the cell's, not memguard's
        self.shell = shell
        transformed: str = shell.transform_cell(cell)  # type: ignore[no-untyped-call]
        if magic is not None:
            # The magic's own line is line 1 of the cell the user sees; kept as a
            # comment, it makes the body's line numbers (in tracebacks and in
            # memguard's sites) the ones the notebook shows.
            transformed = f"# {magic.strip()}\n{transformed}"
            cell = f"{magic.strip()}\n{cell}"
        filename = shell.compile.cache(transformed, cell_number(shell), raw_code=cell)
        tree = shell.compile.ast_parse(transformed, filename=filename)
        assert isinstance(tree, ast.Module)
        last: ast.expr | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body[-1].value
            del tree.body[-1]
        # The shell's flags carry the session's `from __future__` imports.
        flags = shell.compile.flags
        self.body: CodeType = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
        self.last: CodeType | None = None
        if last is not None:
            self.last = compile(ast.Expression(last), filename, "eval", flags=flags,
                                dont_inherit=True)

    def run(self) -> Any:
        """Execute the cell once in the user namespace.

        Returns:
            The value of the cell's last expression, or ``None`` when the
            cell ends with a statement.
        """
        __tracebackhide__ = True
        namespace = self.shell.user_ns
        exec(self.body, self.shell.user_global_ns, namespace)
        if self.last is None:
            return None
        return eval(self.last, self.shell.user_global_ns, namespace)

    def run_quietly(self) -> None:
        """Execute the cell once and drop its value (for repeated runs)."""
        __tracebackhide__ = True
        self.run()
