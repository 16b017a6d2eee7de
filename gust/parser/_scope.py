"""Where the names of one body (the module or a class body) are bound, statement by statement.

Strategy: every statement of a body has a position (its index in the body). A binding records
the position of the statement that makes it, so the binding in force at any point is the last
one before that position (:meth:`Scope.before`), found by bisection. A method body sees the names
as they are once the whole body has run: the position :data:`END`. Names bound inside a compound
statement (``if``, ``for``, ``try``, ...) are recorded at the position of that statement but
without a value: whether they are bound depends on running the file.
"""

from __future__ import annotations

import ast
import bisect

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Final

    #: What an import binds a name to: (module as written, relative level, attribute or None).
    Imported = tuple[str, int, str | None]

#: What a name that stands for gust's ``Dag`` or ``task`` resolves to.
QUAL_DAG: Final = "gust.Dag"
QUAL_TASK: Final = "gust.task"
GUST_MODULES: Final = frozenset({"gust", "gust.dag"})
# A statement position after every statement of a body: what a name is bound to once the
# module (or class body) has run, which is what a method sees when it is called.
END: Final = 1 << 62


class Binding:
    """One binding of a name: at statement ``index`` of its body, to ``value`` if assigned
    (``value`` is None when something else bound it; ``how`` then says what). ``gust`` is the
    gust object an import bound the name to (``gust``, ``gust.Dag``, ...), if any; ``imported``
    is what another import bound it to: ``(module, level, attribute)``, as written
    (``from .base import Base as B`` is ``("base", 1, "Base")``; ``import a.b`` binds ``a`` to
    ``("a", 0, None)``)."""

    __slots__ = ("gust", "how", "imported", "index", "line", "value")

    def __init__(
        self,
        index: int,
        line: int,
        value: ast.expr | None,
        how: str,
        gust: str | None = None,
        imported: Imported | None = None,
    ) -> None:
        self.index = index
        self.line = line
        self.value = value
        self.how = how
        self.gust = gust
        self.imported = imported


class StarImport:
    """``from MODULE import *`` at statement ``index`` of the module: the names it binds are
    known only once that module is read."""

    __slots__ = ("imported", "index", "line")

    def __init__(self, index: int, line: int, imported: Imported) -> None:
        self.index = index
        self.line = line
        self.imported = imported


def _binding_index(binding: Binding) -> int:
    return binding.index


class Scope:
    """Where each name of one body (the module or a class body) is bound, in statement order;
    ``stars``: the body's ``from ... import *`` of modules other than gust."""

    __slots__ = ("names", "stars")

    def __init__(self) -> None:
        self.names: dict[str, list[Binding]] = {}
        self.stars: list[StarImport] = []

    def bind(self, name: str, binding: Binding) -> None:
        bindings = self.names.get(name)
        if bindings is None:
            self.names[name] = [binding]
        else:
            bindings.append(binding)

    def before(self, name: str, position: int) -> Binding | None:
        """The binding of ``name`` in force just before statement ``position`` runs."""
        bindings = self.names.get(name)
        if not bindings:
            return None
        found = bisect.bisect_left(bindings, position, key=_binding_index)
        return bindings[found - 1] if found else None


#: How a binding made by ``del`` is described: once it runs, the name is unbound.
DELETED: Final = "a del statement"


def in_block(line: int) -> str:
    """How a name bound inside the compound statement at ``line`` is described."""
    return f"a statement of the block at line {line}, whose outcome depends on running the file"


_BLOCK_TYPES: tuple[type[ast.stmt], ...] = tuple(
    t
    for t in (
        ast.If,
        ast.While,
        ast.For,
        ast.AsyncFor,
        ast.With,
        ast.AsyncWith,
        ast.Try,
        getattr(ast, "TryStar", None),
        ast.Match,
    )
    if t is not None
)
_TYPE_ALIAS = getattr(ast, "TypeAlias", None)


def bind_statement(
    stmt: ast.stmt,
    index: int,
    scope: Scope,
    block: int | None,
    bound: list[str],
    walrus: bool = False,
) -> None:
    """Record the names ``stmt`` binds in ``scope``, at position ``index``.

    Args:
        stmt: a statement of the body.
        index: its position in the body (the position of the outermost compound statement).
        scope: the body's scope.
        block: the line of the enclosing compound statement when the binding only happens
            conditionally, else None.
        bound: receives every name bound, in order.
        walrus: whether the file may hold assignment expressions (``:=``), which bind names in
            the middle of any expression; they are looked for only then.
    """

    def bind(
        name: str,
        line: int,
        value: ast.expr | None,
        how: str,
        gust: str | None = None,
        imported: Imported | None = None,
    ) -> None:
        if block is not None:
            value, how = None, in_block(block)
        scope.bind(name, Binding(index, line, value, how, gust, imported))
        bound.append(name)

    line = stmt.lineno
    if walrus:
        for target in _assignment_expressions(stmt):
            bind(target.id, target.lineno, None, "an assignment expression (:=)")
    if isinstance(stmt, ast.Assign):
        for target in stmt.targets:
            _bind_target(target, stmt.value, line, bind)
    elif isinstance(stmt, ast.AnnAssign):
        if stmt.value is not None and isinstance(stmt.target, ast.Name):
            bind(stmt.target.id, line, stmt.value, "an assignment")
    elif isinstance(stmt, ast.AugAssign):
        if isinstance(stmt.target, ast.Name):
            bind(stmt.target.id, line, None, "an augmented assignment")
    elif isinstance(stmt, ast.Delete):
        for target in stmt.targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    bind(sub.id, line, None, DELETED)
    elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        bind(stmt.name, line, None, "a def")
    elif isinstance(stmt, ast.ClassDef):
        bind(stmt.name, line, None, "a class statement")
    elif isinstance(stmt, ast.Import):
        for alias in stmt.names:
            local = alias.asname or alias.name.partition(".")[0]
            if alias.name == "gust" or alias.name.startswith("gust."):
                bind(local, line, None, "an import", alias.name if alias.asname else "gust")
                continue
            # ``import a.b`` binds ``a``, the package; ``import a.b as x`` binds the module
            module = alias.name if alias.asname else local
            bind(local, line, None, "an import", None, (module, 0, None))
    elif isinstance(stmt, ast.ImportFrom):
        from_gust = stmt.level == 0 and stmt.module in GUST_MODULES
        for alias in stmt.names:
            if alias.name == "*":
                if from_gust:  # gust's __all__ holds both
                    bind("Dag", line, None, "an import", QUAL_DAG)
                    bind("task", line, None, "an import", QUAL_TASK)
                elif stmt.level or not (stmt.module or "").startswith("gust."):
                    scope.stars.append(
                        StarImport(index, line, (stmt.module or "", stmt.level, None))
                    )
                continue
            if from_gust:  # ``gust.dag`` is where both are defined: ``gust.dag.X`` is ``gust.X``
                bind(alias.asname or alias.name, line, None, "an import", f"gust.{alias.name}")
            elif stmt.level or not (stmt.module or "").startswith("gust."):
                imported = (stmt.module or "", stmt.level, alias.name)
                bind(alias.asname or alias.name, line, None, "an import", None, imported)
            else:  # another module of gust: not DAG code, never followed
                bind(alias.asname or alias.name, line, None, "an import")
    elif _TYPE_ALIAS is not None and isinstance(stmt, _TYPE_ALIAS):
        bind(stmt.name.id, line, None, "a type statement")
    elif isinstance(stmt, _BLOCK_TYPES):
        inner = block if block is not None else line
        _bind_block(stmt, index, scope, inner, bound, walrus)


def _bind_block(
    stmt: ast.stmt,
    index: int,
    scope: Scope,
    block: int,
    bound: list[str],
    walrus: bool,
) -> None:
    def bind_names(node: ast.AST | None) -> None:
        if node is None:
            return
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                scope.bind(sub.id, Binding(index, stmt.lineno, None, how))
                bound.append(sub.id)

    how = in_block(block)
    bodies: list[list[ast.stmt]] = []
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        bind_names(stmt.target)
        bodies += [stmt.body, stmt.orelse]
    elif isinstance(stmt, (ast.If, ast.While)):
        bodies += [stmt.body, stmt.orelse]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        for item in stmt.items:
            bind_names(item.optional_vars)
        bodies.append(stmt.body)
    elif isinstance(stmt, ast.Match):
        for case in stmt.cases:
            for sub in ast.walk(case.pattern):
                for name in (getattr(sub, "name", None), getattr(sub, "rest", None)):
                    if isinstance(name, str):
                        scope.bind(name, Binding(index, stmt.lineno, None, how))
                        bound.append(name)
            bodies.append(case.body)
    else:  # try / try*
        bodies.append(stmt.body)  # type: ignore[attr-defined]
        for handler in stmt.handlers:  # type: ignore[attr-defined]
            if handler.name:
                scope.bind(handler.name, Binding(index, handler.lineno, None, how))
                bound.append(handler.name)
            bodies.append(handler.body)
        bodies += [stmt.orelse, stmt.finalbody]  # type: ignore[attr-defined]
    for body in bodies:
        for inner in body:
            bind_statement(inner, index, scope, block, bound, walrus)


def _assignment_expressions(stmt: ast.stmt) -> list[ast.Name]:
    """The targets of the ``:=`` expressions of ``stmt`` that bind in the statement's scope.

    The bodies of a compound statement are left out (each of their statements is bound in
    turn), and so are the bodies of functions, lambdas and classes (other scopes); their
    decorators, defaults, bases and keywords run in this scope and are searched.
    """
    found: list[ast.Name] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            found.append(node.target)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            arguments = node.args
            stack += [*arguments.defaults, *(d for d in arguments.kw_defaults if d is not None)]
            if not isinstance(node, ast.Lambda):
                stack += node.decorator_list
        elif isinstance(node, ast.ClassDef):
            stack += [*node.decorator_list, *node.bases, *node.keywords]
        else:
            stack += [c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.stmt)]
    return found


def _bind_target(
    target: ast.expr, value: ast.expr | None, line: int, bind: Callable[..., None]
) -> None:
    if isinstance(target, ast.Name):
        bind(target.id, line, value, "an assignment" if value else "an unpacking assignment")
    elif isinstance(target, (ast.Tuple, ast.List)):
        if (
            isinstance(value, (ast.Tuple, ast.List))
            and len(value.elts) == len(target.elts)
            and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
        ):
            for sub_target, sub_value in zip(target.elts, value.elts, strict=True):
                _bind_target(sub_target, sub_value, line, bind)
        else:
            for sub in target.elts:
                _bind_target(sub, None, line, bind)
    elif isinstance(target, ast.Starred):
        _bind_target(target.value, None, line, bind)
    # attribute and subscript targets bind no name


def _inner_statements(stmt: ast.stmt) -> Iterator[ast.stmt]:
    """The statements directly inside ``stmt``: its bodies, branches and handlers."""
    for field in ("body", "orelse", "finalbody"):
        body = getattr(stmt, field, None)
        if isinstance(body, list):
            yield from body
    for handler in getattr(stmt, "handlers", ()):
        yield from handler.body
    for case in getattr(stmt, "cases", ()):
        yield from case.body


def declared_global(body: list[ast.stmt]) -> dict[str, tuple[int, str]]:
    """The module names some function declares ``global`` (so that calling it may rebind
    them, at a time only running the file would tell): name -> (line, function name).

    Only statements are visited, never expressions, so this costs little even for a large file.
    """
    found: dict[str, tuple[int, str]] = {}
    stack = list(body)
    while stack:
        stmt = stack.pop()
        stack.extend(_inner_statements(stmt))
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        own = list(_inner_statements(stmt))  # this function's statements, not nested scopes'
        while own:
            inner = own.pop()
            if isinstance(inner, ast.Global):
                for name in inner.names:
                    found.setdefault(name, (inner.lineno, stmt.name))
            elif not isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.extend(_inner_statements(inner))
    return found
