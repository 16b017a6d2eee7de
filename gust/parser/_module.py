"""One parsed file: where its module-level names are bound, and its top-level classes.

:meth:`Module.read` walks the module's statements once, in source order, recording every
binding (:mod:`gust.parser._scope`) and reading each class statement as it comes
(:mod:`gust.parser._classes`), so that a class sees exactly the names bound before it. The DAG
file is the *root* module; the modules of its folder it imports are read the same way, on
demand (:mod:`gust.parser._imports`).
"""

from __future__ import annotations

import ast

from gust.parser._classes import read_class
from gust.parser._imports import FOUND
from gust.parser._scope import Binding, Scope, bind_statement, declared_global

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from gust.parser._classes import Class
    from gust.parser._imports import Folder
    from gust.parser._limits import Budget


class Module:
    """A parsed file: its syntax tree, its module scope and its classes (by statement position).

    ``name``: its dotted module name (the DAG file's stem for the root); ``package``: the
    package its relative imports start from; ``display``: how messages name it (its path
    under the DAG's folder); ``folder``: where its imports are found and read.
    """

    def __init__(
        self,
        tree: ast.Module,
        stem: str,
        file_path: str,
        budget: Budget,
        folder: Folder,
        name: str,
        package: str = "",
        display: str = "",
        is_package: bool = False,
    ) -> None:
        self.tree = tree
        self.budget = budget
        self.stem = stem
        self.file_path = file_path
        self.folder = folder
        self.name = name
        self.package = package
        self.display = display or name
        self.is_package = is_package
        self.scope = Scope()
        self.classes: list[Class] = []
        self.class_at: dict[int, Class] = {}
        self.walrus = False
        self.declared_global: dict[str, tuple[int, str]] = {}
        self.notes: list[tuple[int, str]] = []

    @property
    def is_root(self) -> bool:
        """Whether this is the DAG file itself (not a module it imports)."""
        return self.folder.root is self

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
            if isinstance(stmt, ast.ImportFrom) and stmt.level and self.is_root:
                self.notes.append((stmt.lineno, _relative_note(stmt)))
            if isinstance(stmt, ast.ClassDef):
                cls = read_class(self, stmt, index)
                self.classes.append(cls)
                self.class_at[index] = cls

    def lookup(self, name: str, position: int) -> Binding | None:
        """The binding of the module-level ``name`` in force just before statement ``position``,
        a ``from M import *`` of a module of the DAG's folder included."""
        binding = self.scope.before(name, position)
        stars = self.scope.stars
        if not stars:
            return binding
        for star in reversed(stars):
            if star.index >= position or (binding is not None and star.index <= binding.index):
                continue
            origin = self.folder.star_origin(self, star.imported, name)
            if origin is not None:  # bound as if imported from where it is defined
                imported = (origin.name, FOUND, name)
                return Binding(star.index, star.line, None, "an import", None, imported)
        return binding


def _relative_note(stmt: ast.ImportFrom) -> str:
    dots = "." * stmt.level
    written = f"from {dots}{stmt.module or ''} import ..."
    plain = f"from {stmt.module} import ..." if stmt.module else "import ..."
    return (
        f"{written} is a relative import: gust task run loads the DAG file as a top-level "
        f"module, where it fails; write {plain}, which works from the DAGs folder"
    )
