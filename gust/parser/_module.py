"""One parsed file: where its module-level names are bound, and its top-level classes.

:meth:`Module.read` walks the module's statements once, in source order, recording every
binding (:mod:`gust.parser._scope`) and reading each class statement as it comes
(:mod:`gust.parser._classes`), so that a class sees exactly the names bound before it.
"""

from __future__ import annotations

import ast

from gust.parser._classes import read_class
from gust.parser._scope import Scope, bind_statement, declared_global

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from gust.parser._classes import Class
    from gust.parser._limits import Budget


class Module:
    """A parsed file: its syntax tree, its module scope and its classes (by statement position)."""

    def __init__(self, tree: ast.Module, stem: str, file_path: str, budget: Budget) -> None:
        self.tree = tree
        self.budget = budget
        self.stem = stem
        self.file_path = file_path
        self.scope = Scope()
        self.classes: list[Class] = []
        self.class_at: dict[int, Class] = {}
        self.walrus = False
        self.declared_global: dict[str, tuple[int, str]] = {}

    def read(self, source: bytes) -> None:
        """Read the module's statements and classes, in source order.

        ``source`` is only searched for ``:=`` and ``global``: the syntax those bind names
        with is looked for only in a file that spells them somewhere.
        """
        self.walrus = b":=" in source
        if b"global" in source:
            self.declared_global = declared_global(self.tree.body)
        for index, stmt in enumerate(self.tree.body):
            bind_statement(stmt, index, self.scope, None, [], self.walrus)
            if isinstance(stmt, ast.ClassDef):
                cls = read_class(self, stmt, index)
                self.classes.append(cls)
                self.class_at[index] = cls
