"""``gust parse``: read the DAGs of a Python file without running it.

Theory of operation: the file is read as bytes and parsed with :mod:`ast`; nothing of the user's
code is imported or executed, so a DAG parses without its dependencies being installed. One
pass over the module's statements records which local names stand for gust's ``Dag`` and
``task`` (however they were imported) and where every module-level name is bound. Each
top-level class is then read once, in source order: its bases, its ``@task`` methods with their
options, its class-level bindings and its ``__init__``. A class whose bases lead to ``gust.Dag``
is a DAG. Its tasks and options are the merge of the in-file classes of its method resolution
order, as attribute lookup sees them at run time: an inherited task keeps its place in
``task_list`` and a subclass's definition replaces it.

Values are read only when they are literals, or names bound to literals at module or class
level (a method sees module names as bound once the file has run, and class attributes through
``self.NAME``); anything else is left at its default and explained in ``messages`` with its
line. The downstream graph is checked (unknown names, cycles) and layered into stages with
Kahn's algorithm, so the whole parse is linear in the size of the file.

Everything about the file's content is reported in-band: :func:`parse_file` returns entries
whose ``error`` says what is wrong and where, and :func:`render_file` dumps them as
deterministic ASCII JSON for Gust, which reads the first entry only.
"""

from __future__ import annotations

import ast
import bisect
import gc
import json
import os
import stat
import warnings

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Final

__all__ = ["OPTION_NAMES", "TASK_OPTION_NAMES", "parse_file", "render_file"]

#: The DAG options of ``Dag.__init__`` that ``gust parse`` reports, in positional order.
OPTION_NAMES: Final = ("schedule", "on_finished_callback")
#: The keyword arguments ``@task(...)`` accepts.
TASK_OPTION_NAMES: Final = ("downstream", "save")

#: ``error.line`` of a file that could not be read at all (it has no line to point at).
UNREADABLE_FILE_LINE: Final = 0

_QUAL_DAG: Final = "gust.Dag"
_QUAL_TASK: Final = "gust.task"
_GUST_MODULES: Final = frozenset({"gust", "gust.dag"})
# A statement position after every statement of a body: what a name is bound to once the
# module (or class body) has run, which is what a method sees when it is called.
_END: Final = 1 << 62
# How far literal evaluation follows nested containers and name-to-name indirections.
_MAX_DEPTH: Final = 64
_SNIPPET_LENGTH: Final = 60


class _NotStatic(Exception):
    """A value that cannot be read without running the file; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Problems:
    """Errors and messages of one thing (a task, a class, an entry), each with its line."""

    __slots__ = ("errors", "messages")

    def __init__(self) -> None:
        self.errors: list[tuple[int, str]] = []
        self.messages: list[tuple[int, str]] = []

    def error(self, line: int, text: str) -> None:
        self.errors.append((line, text))

    def message(self, line: int, text: str) -> None:
        self.messages.append((line, text))

    def extend(self, other: _Problems) -> None:
        self.errors.extend(other.errors)
        self.messages.extend(other.messages)


class _Binding:
    """One binding of a name: at statement ``index`` of its body, to ``value`` if assigned
    (``value`` is None when something else bound it; ``how`` then says what). ``gust`` is the
    gust object an import bound the name to (``gust``, ``gust.Dag``, ...), if any."""

    __slots__ = ("gust", "how", "index", "line", "value")

    def __init__(
        self, index: int, line: int, value: ast.expr | None, how: str, gust: str | None = None
    ) -> None:
        self.index = index
        self.line = line
        self.value = value
        self.how = how
        self.gust = gust


def _binding_index(binding: _Binding) -> int:
    return binding.index


class _Scope:
    """Where each name of one body (the module or a class body) is bound, in statement order."""

    __slots__ = ("names",)

    def __init__(self) -> None:
        self.names: dict[str, list[_Binding]] = {}

    def bind(self, name: str, binding: _Binding) -> None:
        bindings = self.names.get(name)
        if bindings is None:
            self.names[name] = [binding]
        else:
            bindings.append(binding)

    def before(self, name: str, position: int) -> _Binding | None:
        """The binding of ``name`` in force just before statement ``position`` runs."""
        bindings = self.names.get(name)
        if not bindings:
            return None
        found = bisect.bisect_left(bindings, position, key=_binding_index)
        return bindings[found - 1] if found else None


class _Task:
    """A ``@task`` method as written in one class body.

    ``ref_line`` is where its downstream is written: errors about the downstream point there.
    """

    __slots__ = ("downstream", "line", "name", "problems", "ref_line", "save")

    def __init__(self, name: str, line: int, ref_line: int) -> None:
        self.name = name
        self.line = line
        self.ref_line = ref_line
        self.downstream: list[str] = []
        self.save = False
        self.problems = _Problems()


class _Member:
    """A class-body binding that is not a task: ``kind`` is ``method`` or ``attribute``."""

    __slots__ = ("kind", "line")

    def __init__(self, kind: str, line: int) -> None:
        self.kind = kind
        self.line = line


class _InitCall:
    """The call of ``__init__`` of gust's ``Dag`` (or of a base) made by a class's ``__init__``.

    ``kind``: ``super`` (the next class in the MRO), ``after`` (the class after ``target``,
    from ``super(Target, self)``), ``dag`` (gust's Dag itself) or ``class``
    (``Target.__init__(self, ...)``). ``skip``: positional arguments before the options.
    """

    __slots__ = ("kind", "node", "skip", "target", "text")

    def __init__(
        self, node: ast.Call, kind: str, skip: int, target: _Class | None, text: str
    ) -> None:
        self.node = node
        self.kind = kind
        self.skip = skip
        self.target = target
        self.text = text


class _Init:
    """What the options reader needs to know about one ``__init__``."""

    __slots__ = ("call", "call_count", "local_names", "node", "self_name", "self_stores")

    def __init__(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        calls: list[_InitCall],
        self_name: str | None,
        local_names: set[str],
        self_stores: set[str],
    ) -> None:
        self.node = node
        self.call = calls[0] if calls else None
        self.call_count = len(calls)
        self.self_name = self_name
        self.local_names = local_names
        self.self_stores = self_stores


class _Class:
    """A top-level class of the file, read once.

    ``ancestors``: the in-file classes of its method resolution order after itself (the MRO
    is kept without the class itself so that no reference cycle outlives a parse).
    ``external``: its bases that are neither in the file nor gust's ``Dag``.
    """

    __slots__ = (
        "ancestors",
        "bases",
        "external",
        "index",
        "init",
        "init_node",
        "is_dag",
        "members",
        "node",
        "problems",
        "scope",
    )

    def __init__(
        self, node: ast.ClassDef, index: int, bases: list[_Class], external: list[str]
    ) -> None:
        self.node = node
        self.index = index
        self.bases = bases
        self.external = external
        self.is_dag = False
        self.scope = _Scope()
        self.ancestors: list[_Class] = []
        self.members: dict[str, _Task | _Member] = {}
        self.problems = _Problems()
        self.init_node: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        self.init: _Init | None = None

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def mro(self) -> list[_Class]:
        return [self, *self.ancestors]


class _Context:
    """Where an expression is evaluated: which bindings its names see.

    ``cls``/``position``: a class body and the statement position in it (class-level names
    are visible there); ``module_position``: the module statement position for module names;
    ``init``/``dag``: inside ``__init__`` of a class, evaluated for the DAG class ``dag``.
    """

    __slots__ = ("cls", "dag", "init", "module_position", "position")

    def __init__(
        self,
        cls: _Class | None,
        position: int,
        module_position: int,
        init: _Init | None = None,
        dag: _Class | None = None,
    ) -> None:
        self.cls = cls
        self.position = position
        self.module_position = module_position
        self.init = init
        self.dag = dag


def _in_block(line: int) -> str:
    return f"a statement of the block at line {line}, whose outcome depends on running the file"


def _snippet(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except (RecursionError, ValueError):  # too deep; an int too long to print in decimal
        return f"the expression at line {getattr(node, 'lineno', '?')}"
    if len(text) > _SNIPPET_LENGTH:
        text = text[: _SNIPPET_LENGTH - 3] + "..."
    return text


def _describe(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to print in decimal (sys.get_int_max_str_digits)
        text = "a value too large to show"
    if len(text) > _SNIPPET_LENGTH:
        text = text[: _SNIPPET_LENGTH - 3] + "..."
    return f"{text} ({type(value).__name__})"


def _clean(text: str) -> str:
    """``text`` as valid Unicode: a lone surrogate (from a literal, a file name) becomes U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


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


class _FileReader:
    """Reads one parsed module: gust names, module bindings, classes; then builds the entries."""

    def __init__(self, tree: ast.Module, stem: str, file_path: str) -> None:
        self.tree = tree
        self.stem = stem
        self.file_path = file_path
        self.module = _Scope()
        self.classes: list[_Class] = []
        self.class_at: dict[int, _Class] = {}

    # ---- bindings -------------------------------------------------------------------------

    def _bind_statement(
        self,
        stmt: ast.stmt,
        index: int,
        scope: _Scope,
        block: int | None,
        bound: list[str],
    ) -> None:
        """Record the names ``stmt`` binds in ``scope``; ``block`` is the line of the enclosing
        compound statement when the binding only happens conditionally."""

        def bind(
            name: str, line: int, value: ast.expr | None, how: str, gust: str | None = None
        ) -> None:
            if block is not None:
                value, how = None, _in_block(block)
            scope.bind(name, _Binding(index, line, value, how, gust))
            bound.append(name)

        line = stmt.lineno
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self._bind_target(target, stmt.value, line, bind)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None and isinstance(stmt.target, ast.Name):
                bind(stmt.target.id, line, stmt.value, "an assignment")
        elif isinstance(stmt, ast.AugAssign):
            if isinstance(stmt.target, ast.Name):
                bind(stmt.target.id, line, None, "an augmented assignment")
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bind(stmt.name, line, None, "a def")
        elif isinstance(stmt, ast.ClassDef):
            bind(stmt.name, line, None, "a class statement")
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                local = alias.asname or alias.name.partition(".")[0]
                gust = None
                if alias.name == "gust" or alias.name.startswith("gust."):
                    gust = alias.name if alias.asname else "gust"
                bind(local, line, None, "an import", gust)
        elif isinstance(stmt, ast.ImportFrom):
            from_gust = stmt.level == 0 and stmt.module in _GUST_MODULES
            for alias in stmt.names:
                if alias.name == "*":
                    if from_gust:  # gust's __all__ holds both
                        bind("Dag", line, None, "an import", _QUAL_DAG)
                        bind("task", line, None, "an import", _QUAL_TASK)
                    continue
                # ``gust.dag`` is where both are defined: ``gust.dag.X`` is ``gust.X``
                gust = f"gust.{alias.name}" if from_gust else None
                bind(alias.asname or alias.name, line, None, "an import", gust)
        elif _TYPE_ALIAS is not None and isinstance(stmt, _TYPE_ALIAS):
            bind(stmt.name.id, line, None, "a type statement")
        elif isinstance(stmt, _BLOCK_TYPES):
            inner = block if block is not None else line
            self._bind_block(stmt, index, scope, inner, bound)

    def _bind_block(
        self,
        stmt: ast.stmt,
        index: int,
        scope: _Scope,
        block: int,
        bound: list[str],
    ) -> None:
        def bind_names(node: ast.AST | None) -> None:
            if node is None:
                return
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name):
                    scope.bind(sub.id, _Binding(index, stmt.lineno, None, how))
                    bound.append(sub.id)

        how = _in_block(block)
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
                            scope.bind(name, _Binding(index, stmt.lineno, None, how))
                            bound.append(name)
                bodies.append(case.body)
        else:  # try / try*
            bodies.append(stmt.body)  # type: ignore[attr-defined]
            for handler in stmt.handlers:  # type: ignore[attr-defined]
                if handler.name:
                    scope.bind(handler.name, _Binding(index, handler.lineno, None, how))
                    bound.append(handler.name)
                bodies.append(handler.body)
            bodies += [stmt.orelse, stmt.finalbody]  # type: ignore[attr-defined]
        for body in bodies:
            for inner in body:
                self._bind_statement(inner, index, scope, block, bound)

    def _bind_target(
        self, target: ast.expr, value: ast.expr | None, line: int, bind: Callable[..., None]
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
                    self._bind_target(sub_target, sub_value, line, bind)
            else:
                for sub in target.elts:
                    self._bind_target(sub, None, line, bind)
        elif isinstance(target, ast.Starred):
            self._bind_target(target.value, None, line, bind)
        # attribute and subscript targets bind no name

    # ---- names ----------------------------------------------------------------------------

    def _qualname(
        self, node: ast.expr, module_position: int, cls: _Class | None = None, position: int = 0
    ) -> str | None:
        """``gust.Dag``/``gust.task`` (or another gust path) when ``node`` refers to gust there.

        Names resolve as Python would at that point: a class-level binding (in ``cls`` before
        ``position``) hides the module's, and the module's binding must be a gust import.
        """
        attrs: list[str] = []
        while isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        if cls is not None and cls.scope.before(node.id, position) is not None:
            return None
        binding = self.module.before(node.id, module_position)
        base = binding.gust if binding is not None else None
        if base is None or not attrs:
            return base
        attrs.reverse()
        qual = ".".join([base, *attrs])
        if qual.startswith("gust.dag."):
            qual = "gust." + qual[len("gust.dag.") :]
        return qual

    def _class_before(self, name: str, position: int) -> _Class | None:
        """The in-file class the module-level ``name`` refers to just before ``position``."""
        binding = self.module.before(name, position)
        if binding is None:
            return None
        cls = self.class_at.get(binding.index)
        return cls if cls is not None and cls.name == name else None

    # ---- evaluation -----------------------------------------------------------------------

    def _evaluate(self, node: ast.expr, ctx: _Context, depth: int = 0) -> Any:
        """The value of ``node`` when it is a literal (or a name bound to one); else _NotStatic."""
        if depth > _MAX_DEPTH:
            raise _NotStatic("it is nested too deeply to be read")
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                raise _NotStatic(f"{_snippet(node)} unpacks a value with *")
            items = [self._evaluate(e, ctx, depth + 1) for e in node.elts]
            if isinstance(node, ast.List):
                return items
            if isinstance(node, ast.Tuple):
                return tuple(items)
            try:
                return set(items)
            except TypeError:
                raise _NotStatic(f"{_snippet(node)} holds unhashable values") from None
        if isinstance(node, ast.Dict):
            result: dict[Any, Any] = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    raise _NotStatic(f"{_snippet(node)} unpacks a mapping with **")
                try:
                    result[self._evaluate(key, ctx, depth + 1)] = self._evaluate(
                        value, ctx, depth + 1
                    )
                except TypeError:
                    raise _NotStatic(f"{_snippet(node)} has an unhashable key") from None
            return result
        if isinstance(node, ast.Name):
            return self._evaluate_name(node, ctx, depth)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return self._evaluate_attribute(node, node.value.id, ctx, depth)
        raise _NotStatic(f"{_snippet(node)} is not a literal")

    def _evaluate_binding(
        self, name: str, binding: _Binding, cls: _Class | None, depth: int
    ) -> Any:
        if binding.value is None:
            raise _NotStatic(f"'{name}' is bound at line {binding.line} by {binding.how}")
        if cls is None:
            ctx = _Context(None, 0, binding.index)
        else:
            ctx = _Context(cls, binding.index, cls.index)
        try:
            return self._evaluate(binding.value, ctx, depth + 1)
        except _NotStatic as exc:
            raise _NotStatic(
                f"'{name}' (line {binding.line}) cannot be read: {exc.reason}"
            ) from None

    def _evaluate_name(self, node: ast.Name, ctx: _Context, depth: int) -> Any:
        name = node.id
        if ctx.init is not None and name in ctx.init.local_names:
            raise _NotStatic(f"'{name}' is a local variable or parameter of __init__")
        if ctx.cls is not None:
            binding = ctx.cls.scope.before(name, ctx.position)
            if binding is not None:
                return self._evaluate_binding(name, binding, ctx.cls, depth)
        binding = self.module.before(name, ctx.module_position)
        if binding is not None:
            return self._evaluate_binding(name, binding, None, depth)
        if ctx.dag is not None and any(name in c.scope.names for c in ctx.dag.mro):
            raise _NotStatic(
                f"'{name}' is a class attribute, which a method cannot see as a bare name "
                f"(write self.{name})"
            )
        raise _NotStatic(f"'{name}' is not bound at module or class level")

    def _evaluate_attribute(
        self, node: ast.Attribute, owner: str, ctx: _Context, depth: int
    ) -> Any:
        attr = node.attr
        if ctx.init is not None and owner == ctx.init.self_name and ctx.dag is not None:
            if attr in ctx.init.self_stores:
                raise _NotStatic(f"self.{attr} is set on the instance in __init__")
            mro = ctx.dag.mro
        else:
            cls = self._class_before(owner, ctx.module_position)
            if cls is None or (ctx.init is not None and owner in ctx.init.local_names):
                raise _NotStatic(f"{_snippet(node)} is not a literal")
            mro = cls.mro
        for cls in mro:
            binding = cls.scope.before(attr, _END)
            if binding is not None:
                return self._evaluate_binding(attr, binding, cls, depth)
        raise _NotStatic(f"{_snippet(node)} is not a class attribute defined in this file")

    # ---- classes --------------------------------------------------------------------------

    def _read_class(self, node: ast.ClassDef, index: int) -> _Class:
        bases: list[_Class] = []
        external: list[str] = []
        direct = False
        for base in node.bases:
            if isinstance(base, ast.Name):
                found = self._class_before(base.id, index)
                if found is not None:
                    bases.append(found)
                    continue
                if base.id == "object":
                    continue
            if self._qualname(base, index) == _QUAL_DAG:
                direct = True
            else:
                external.append(_snippet(base))
        cls = _Class(node, index, bases, external)
        cls.is_dag = direct or any(b.is_dag for b in bases)
        cls.ancestors = self._linearise(cls)
        for position, stmt in enumerate(node.body):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                cls.scope.bind(stmt.name, _Binding(position, stmt.lineno, None, "a def"))
                self._read_method(cls, stmt, position)
                continue
            bound: list[str] = []
            self._bind_statement(stmt, position, cls.scope, None, bound)
            for name in bound:
                self._set_member(cls, name, _Member("attribute", stmt.lineno))
        return cls

    def _set_member(self, cls: _Class, name: str, member: _Member) -> None:
        previous = cls.members.get(name)
        if isinstance(previous, _Task):
            cls.problems.message(
                member.line,
                f"'{name}' of {cls.name} rebinds task '{name}' (line {previous.line}) without "
                "@task, so it is no longer a task",
            )
        cls.members[name] = member

    def _read_method(
        self, cls: _Class, stmt: ast.FunctionDef | ast.AsyncFunctionDef, position: int
    ) -> None:
        if stmt.name == "__init__":
            cls.init_node = stmt
        task = self._read_task(cls, stmt, position)
        if task is None:
            self._set_member(cls, stmt.name, _Member("method", stmt.lineno))
            return
        previous = cls.members.get(stmt.name)
        if isinstance(previous, _Task):
            cls.problems.error(
                stmt.lineno,
                f"duplicate task name '{stmt.name}' in {cls.name}: first defined at line "
                f"{previous.line}, again at line {stmt.lineno}",
            )
        cls.members[stmt.name] = task

    def _linearise(self, cls: _Class) -> list[_Class]:
        """The in-file classes after ``cls`` in its method resolution order (C3, as Python)."""
        bases = cls.bases
        if len(bases) <= 1:
            return bases[0].mro if bases else []
        if len({id(b) for b in bases}) != len(bases):
            cls.problems.error(cls.node.lineno, f"class {cls.name} lists the same base twice")
        sequences = [b.mro for b in bases] + [list(bases)]
        result: list[_Class] = []
        while True:
            sequences = [s for s in sequences if s]
            if not sequences:
                return result
            for sequence in sequences:
                head = sequence[0]
                if not any(head in other[1:] for other in sequences):
                    break
            else:
                cls.problems.error(
                    cls.node.lineno,
                    f"the bases of {cls.name} cannot be put in a consistent method resolution "
                    "order (Python refuses to create this class)",
                )
                seen: dict[int, _Class] = {}
                for base in bases:
                    for c in base.mro:
                        seen.setdefault(id(c), c)
                return list(seen.values())
            result.append(head)
            for sequence in sequences:
                if sequence[0] is head:
                    del sequence[0]

    # ---- tasks ----------------------------------------------------------------------------

    def _task_decorator(
        self, cls: _Class, stmt: ast.FunctionDef | ast.AsyncFunctionDef, position: int
    ) -> ast.expr | None:
        for decorator in stmt.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self._qualname(target, cls.index, cls, position) == _QUAL_TASK:
                return decorator
        return None

    def _read_task(
        self, cls: _Class, stmt: ast.FunctionDef | ast.AsyncFunctionDef, position: int
    ) -> _Task | None:
        decorator = self._task_decorator(cls, stmt, position)
        if decorator is None:
            return None
        task = _Task(stmt.name, stmt.lineno, decorator.lineno)
        if not isinstance(decorator, ast.Call):
            return task
        problems = task.problems
        where = f"@task of '{stmt.name}'"
        ctx = _Context(cls, position, cls.index)
        args = self._call_arguments(decorator, 0, (), TASK_OPTION_NAMES, where, ctx, problems)
        downstream = args.get("downstream")
        if downstream is not None:
            task.ref_line = downstream.line
            try:
                value = downstream.read(self, ctx)
            except _NotStatic as exc:
                problems.message(
                    downstream.line,
                    f"downstream of task '{stmt.name}' cannot be read statically: {exc.reason}; "
                    "left at []",
                )
            else:
                names = _downstream_names(value)
                if names is None:
                    problems.error(
                        downstream.line,
                        f"{where}: downstream must be a task name or a list/tuple of task names, "
                        f"not {_describe(value)}",
                    )
                else:
                    task.downstream = names
        save = args.get("save")
        if save is not None:
            try:
                value = save.read(self, ctx)
            except _NotStatic as exc:
                problems.message(
                    save.line,
                    f"save of task '{stmt.name}' cannot be read statically: {exc.reason}; "
                    "left at False",
                )
            else:
                if isinstance(value, bool):
                    task.save = value
                else:
                    problems.error(
                        save.line, f"{where}: save must be True or False, not {_describe(value)}"
                    )
        return task

    def _call_arguments(
        self,
        call: ast.Call,
        skip: int,
        positional: tuple[str, ...],
        known: tuple[str, ...],
        where: str,
        ctx: _Context,
        problems: _Problems,
        strict: bool = True,
    ) -> dict[str, _Arg]:
        """Map the arguments of ``call`` to the ``known`` parameters, unevaluated.

        ``strict``: unknown keywords are errors (``@task``); otherwise they are accepted, as
        ``Dag.__init__`` takes ``**more``.
        """
        found: dict[str, _Arg] = {}
        for number, arg in enumerate(call.args[skip:]):
            if isinstance(arg, ast.Starred):
                problems.message(
                    arg.lineno,
                    f"{where}: {_snippet(arg)} cannot be read statically; the options it fills "
                    "are left at their defaults",
                )
                break
            if number >= len(positional):
                if positional:
                    text = f"takes at most {len(positional)} positional arguments"
                else:
                    text = (
                        "takes keyword arguments only ("
                        + ", ".join(f"{k}=..." for k in known)
                        + ")"
                    )
                (problems.error if strict else problems.message)(
                    arg.lineno, f"{where} {text}, got {_snippet(arg)}"
                )
                break
            found[positional[number]] = _Arg(arg.lineno, node=arg)
        for keyword in call.keywords:
            line = keyword.value.lineno
            if keyword.arg is None:
                try:
                    mapping = self._evaluate(keyword.value, ctx)
                except _NotStatic as exc:
                    problems.message(
                        line,
                        f"{where}: **{_snippet(keyword.value)} cannot be read statically: "
                        f"{exc.reason}; any of {', '.join(known)} it sets is left at its default",
                    )
                    continue
                if not isinstance(mapping, dict):
                    problems.error(line, f"{where}: ** takes a mapping, not {_describe(mapping)}")
                    continue
                for key, value in mapping.items():
                    if key in known:
                        found[key] = _Arg(line, value=value)
                    elif strict:
                        problems.error(
                            line,
                            f"{where}: unknown option {_describe(key)} (known: {', '.join(known)})",
                        )
            elif keyword.arg in known:
                if keyword.arg in found:
                    (problems.error if strict else problems.message)(
                        line, f"{where} gets {keyword.arg} twice"
                    )
                found[keyword.arg] = _Arg(line, node=keyword.value)
            elif strict:
                problems.error(
                    line, f"{where}: unknown option '{keyword.arg}' (known: {', '.join(known)})"
                )
        return found

    # ---- options --------------------------------------------------------------------------

    def _init_of(self, cls: _Class) -> _Init:
        if cls.init is not None:
            return cls.init
        node = cls.init_node
        assert node is not None
        arguments = node.args
        params = [*arguments.posonlyargs, *arguments.args]
        self_name = params[0].arg if params else None
        local_names = {a.arg for a in (*params, *arguments.kwonlyargs)}
        for extra in (arguments.vararg, arguments.kwarg):
            if extra is not None:
                local_names.add(extra.arg)
        self_stores: set[str] = set()
        calls: list[_InitCall] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                local_names.add(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if sub is not node:
                    local_names.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                for alias in sub.names:
                    local_names.add(alias.asname or alias.name.partition(".")[0])
            elif (
                isinstance(sub, ast.Attribute)
                and isinstance(sub.ctx, ast.Store)
                and isinstance(sub.value, ast.Name)
                and sub.value.id == self_name
            ):
                self_stores.add(sub.attr)
            elif isinstance(sub, ast.Call):
                found = self._init_call(sub, cls)
                if found is not None:
                    calls.append(found)
        calls.sort(key=lambda c: (c.node.lineno, c.node.col_offset))
        cls.init = _Init(node, calls, self_name, local_names, self_stores)
        return cls.init

    def _init_call(self, call: ast.Call, cls: _Class) -> _InitCall | None:
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr == "__init__"):
            return None
        target = func.value
        if isinstance(target, ast.Call) and isinstance(target.func, ast.Name):
            if target.func.id == "super":
                owner = target.args[0] if target.args else None
                if isinstance(owner, ast.Name) and owner.id != cls.name:
                    named = self._class_before(owner.id, _END)
                    if named is not None:
                        return _InitCall(call, "after", 0, named, _snippet(func))
                return _InitCall(call, "super", 0, None, _snippet(func))
            return None
        if self._qualname(target, _END) == _QUAL_DAG:
            return _InitCall(call, "dag", 1, None, _snippet(func))
        if isinstance(target, ast.Name):
            named = self._class_before(target.id, _END)
            if named is not None:
                return _InitCall(call, "class", 1, named, _snippet(func))
        return None

    def _options(self, dag: _Class, problems: _Problems) -> tuple[dict[str, Any], dict[str, int]]:
        """The DAG's options, following ``__init__`` calls down its MRO; and their lines."""
        mro = dag.mro
        layers: list[tuple[_Class, _Init, dict[str, _Arg]]] = []
        position = 0
        while position < len(mro):
            owner_position = next(
                (k for k in range(position, len(mro)) if mro[k].init_node is not None), None
            )
            if owner_position is None:
                break
            owner = mro[owner_position]
            init = self._init_of(owner)
            call = init.call
            if call is None:
                problems.message(
                    init.node.lineno,
                    f"{owner.name}.__init__ calls neither super().__init__(...) nor "
                    "Dag.__init__(self, ...); schedule and on_finished_callback are left at None",
                )
                break
            where = f"{call.text}(...) in {owner.name}.__init__"
            if init.call_count > 1:
                problems.message(
                    call.node.lineno,
                    f"{owner.name}.__init__ calls __init__ of a base {init.call_count} times; "
                    "only the first is read",
                )
            ctx = _Context(None, 0, _END, init, dag)
            args = self._call_arguments(
                call.node,
                call.skip,
                OPTION_NAMES,
                OPTION_NAMES,
                where,
                ctx,
                problems,
                strict=False,
            )
            layers.append((owner, init, args))
            if call.kind == "dag":
                break
            if call.kind == "super":
                position = owner_position + 1
                continue
            target = call.target
            found = next((k for k, c in enumerate(mro) if c is target), None)
            if (
                found is None
                or found < owner_position
                or (call.kind == "class" and found == owner_position)
            ):
                problems.message(
                    call.node.lineno,
                    f"{where} calls into {target.name if target else '?'}, which does not "
                    f"come after {owner.name} in the bases of {dag.name}; the options it may "
                    "set are left at their defaults",
                )
                break
            position = found + 1 if call.kind == "after" else found
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for name in OPTION_NAMES:
            values[name] = None
            for owner, init, args in layers:
                arg = args.get(name)
                if arg is None:
                    continue
                ctx = _Context(None, 0, _END, init, dag)
                try:
                    value = arg.read(self, ctx)
                except _NotStatic as exc:
                    problems.message(
                        arg.line,
                        f"{name} in {owner.name}.__init__ cannot be read statically: "
                        f"{exc.reason}; left at None",
                    )
                    break
                if value is not None and not isinstance(value, str):
                    problems.message(
                        arg.line,
                        f"{name} in {owner.name}.__init__ must be a string or None, not "
                        f"{_describe(value)}; left at None",
                    )
                    break
                values[name] = value
                lines[name] = arg.line
                break
        return values, lines

    # ---- entries --------------------------------------------------------------------------

    def read(self) -> None:
        """Read the module's statements and classes, in source order."""
        for index, stmt in enumerate(self.tree.body):
            self._bind_statement(stmt, index, self.module, None, [])
            if isinstance(stmt, ast.ClassDef):
                cls = self._read_class(stmt, index)
                self.classes.append(cls)
                self.class_at[index] = cls

    def entries(self, file_messages: list[tuple[int, str]]) -> list[dict[str, Any]]:
        """One entry per DAG class, in source order."""
        return [self._entry(cls, file_messages) for cls in self.classes if cls.is_dag]

    def _entry(self, dag: _Class, file_messages: list[tuple[int, str]]) -> dict[str, Any]:
        problems = _Problems()
        problems.messages.extend(file_messages)
        last = self.module.before(dag.name, _END)
        if last is not None and last.index != dag.index:
            problems.error(
                dag.node.lineno,
                f"class {dag.name} is bound again by {last.how} at line {last.line}; only that "
                "later binding exists once the file has run",
            )
        effective: dict[str, _Task | _Member] = {}
        for cls in reversed(dag.mro):
            problems.extend(cls.problems)
            effective.update(cls.members)
        tasks = [m for m in effective.values() if isinstance(m, _Task)]
        for task in tasks:
            problems.extend(task.problems)
        stages = self._stages(dag, tasks, effective, problems)
        options, lines = self._options(dag, problems)
        callback = options["on_finished_callback"]
        if callback is not None and callback not in effective:
            line = lines["on_finished_callback"]
            external = [name for cls in dag.mro for name in cls.external]
            if external:
                problems.message(
                    line,
                    f"on_finished_callback {callback!r} is not a method of {dag.name} in this "
                    f"file; it may come from {', '.join(external)}",
                )
            else:
                problems.error(
                    line, f"on_finished_callback {callback!r} names no method of {dag.name}"
                )
        error: dict[str, Any] = {}
        messages = problems.messages
        if problems.errors:
            first = min(range(len(problems.errors)), key=lambda k: problems.errors[k][0])
            line, text = problems.errors[first]
            error = {"file": self.file_path, "line": line, "description": _clean(text)}
            messages = messages + [
                (line, f"also an error: {text}")
                for k, (line, text) in enumerate(problems.errors)
                if k != first
            ]
        messages.sort(key=lambda m: m[0])
        texts = list(dict.fromkeys(_clean(f"line {line}: {text}") for line, text in messages))
        return {
            "name": self.stem,
            "mod": dag.name,
            "error": error,
            "messages": texts,
            "task_list": [t.name for t in tasks],
            "stages": stages,
            "tasks": {
                t.name: {"downstream": [_clean(d) for d in t.downstream], "save": t.save}
                for t in tasks
            },
            "file_path": self.file_path,
            "options": {name: _clean(v) if v else v for name, v in options.items()},
        }

    def _stages(
        self,
        dag: _Class,
        tasks: list[_Task],
        effective: dict[str, _Task | _Member],
        problems: _Problems,
    ) -> list[list[str]]:
        """Kahn's layers of the downstream graph, each in source order; reports bad links."""
        count = len(tasks)
        index = {t.name: i for i, t in enumerate(tasks)}
        downstream: list[list[int]] = [[] for _ in range(count)]
        waiting = [0] * count
        for i, task in enumerate(tasks):
            for name in task.downstream:
                j = index.get(name)
                if j is None:
                    member = effective.get(name)
                    hint = f" (line {member.line} defines it without @task)" if member else ""
                    problems.error(
                        task.ref_line,
                        f"task '{task.name}' names downstream {name!r}, which is not a task of "
                        f"{dag.name}{hint}",
                    )
                    continue
                downstream[i].append(j)
                waiting[j] += 1
        level = [0] * count
        ready = [i for i in range(count) if waiting[i] == 0]
        cursor = 0
        while cursor < len(ready):
            i = ready[cursor]
            cursor += 1
            for j in downstream[i]:
                if level[j] <= level[i]:
                    level[j] = level[i] + 1
                waiting[j] -= 1
                if waiting[j] == 0:
                    ready.append(j)
        stages: list[list[str]] = [
            [] for _ in range(max((level[i] for i in ready), default=-1) + 1)
        ]
        for i in range(count):
            if waiting[i] == 0:
                stages[level[i]].append(tasks[i].name)
        if len(ready) < count:
            cycle = _find_cycle(downstream, waiting)
            names = [tasks[i].name for i in cycle]
            problems.error(
                tasks[cycle[0]].ref_line,
                f"the downstream links of {dag.name} form a cycle: "
                + " -> ".join([*names, names[0]]),
            )
        return stages


class _Arg:
    """An argument of a call: an expression still to read, or a value read from a ``**`` dict."""

    __slots__ = ("line", "node", "value")

    def __init__(self, line: int, node: ast.expr | None = None, value: Any = None) -> None:
        self.line = line
        self.node = node
        self.value = value

    def read(self, reader: _FileReader, ctx: _Context) -> Any:
        if self.node is None:
            return self.value
        return reader._evaluate(self.node, ctx)


def _downstream_names(value: object) -> list[str] | None:
    """The task names of a downstream value, duplicates dropped; None if it is not valid."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(dict.fromkeys(value))
    return None


def _find_cycle(downstream: list[list[int]], waiting: list[int]) -> list[int]:
    """One cycle among the tasks Kahn's algorithm could not place, first task in source order.

    Every such task still waits for an upstream that is itself unplaced, so walking upstream
    from any of them must come back to a task already visited.
    """
    upstream: list[list[int]] = [[] for _ in downstream]
    for i, targets in enumerate(downstream):
        for j in targets:
            upstream[j].append(i)
    current = next(i for i, w in enumerate(waiting) if w > 0)
    seen: dict[int, int] = {}
    path: list[int] = []
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = next(u for u in upstream[current] if waiting[u] > 0)
    cycle = path[seen[current] :]
    cycle.reverse()  # walked upstream; read it downstream
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]


# ---- public API ---------------------------------------------------------------------------


def _stem(path: str) -> str:
    # Gust names a DAG Path.basename(file, ".py"): only a ".py" suffix is dropped.
    base = os.path.basename(path)
    return base[:-3] if base.endswith(".py") and len(base) > 3 else base


def _absolute(path: str) -> str:
    try:
        return os.path.abspath(path)
    except (OSError, ValueError):  # the working directory is gone, or the path holds a NUL
        return path


def _failure(stem: str, file_path: str, line: int, description: str) -> list[dict[str, Any]]:
    return [
        {
            "name": stem,
            "mod": "",
            "error": {"file": file_path, "line": line, "description": _clean(description)},
            "messages": [],
            "task_list": [],
            "stages": [],
            "tasks": {},
            "file_path": file_path,
            "options": dict.fromkeys(OPTION_NAMES),
        }
    ]


def _read_source(path: str) -> bytes:
    """The file's bytes. Raises OSError (or ValueError for an impossible path) if unreadable."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise OSError(f"it is {kind}")
    with open(path, "rb") as handle:
        return handle.read()


def _syntax_error_line(error: SyntaxError, source: bytes) -> int:
    if error.lineno:
        return error.lineno
    if b"\0" in source:  # Python 3.11 reports a NUL byte without a line
        return source.count(b"\n", 0, source.index(b"\0")) + 1
    return 1


def parse_file(path: str) -> list[dict[str, Any]]:
    """Read the DAG classes of the Python file at ``path`` statically (nothing is executed).

    Args:
        path: the DAG file, absolute or relative to the working directory.

    Returns:
        One entry per ``Dag`` class, in source order, each with the keys ``name``, ``mod``,
        ``error``, ``messages``, ``task_list``, ``stages``, ``tasks``, ``file_path`` and
        ``options`` (SPEC §5); ``[]`` when the file defines no ``Dag`` class; a single entry with
        ``mod: ""`` and the ``error`` when the file cannot be read or parsed. Never raises for
        anything about the file's content.
    """
    file_path = _clean(_absolute(path))
    stem = _clean(_stem(path))
    try:
        source = _read_source(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return _failure(stem, file_path, UNREADABLE_FILE_LINE, f"cannot read {path}: {reason}")
    # Building the tree allocates one object per node; the cyclic collector would walk that
    # growing heap again and again while it is built, for nothing: nothing here makes cycles
    # that need collecting before we return.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                tree = ast.parse(source, filename=file_path)
            except SyntaxError as exc:
                where = f" (column {exc.offset})" if exc.offset else ""
                description = f"syntax error: {exc.msg or 'invalid syntax'}{where}"
                return _failure(stem, file_path, _syntax_error_line(exc, source), description)
            except ValueError as exc:  # Python 3.10 rejects a NUL byte with a ValueError
                line = _syntax_error_line(SyntaxError(str(exc)), source)
                return _failure(stem, file_path, line, f"syntax error: {exc}")
            except (RecursionError, MemoryError):
                return _failure(
                    stem,
                    file_path,
                    1,
                    "the file is too large or too deeply nested for Python to parse it",
                )
        file_messages = [(w.lineno or 0, f"{w.category.__name__}: {w.message}") for w in caught]
        reader = _FileReader(tree, stem, file_path)
        reader.read()
        return reader.entries(file_messages)
    finally:
        if collecting:
            gc.enable()


def render_file(path: str) -> str:
    """``gust parse --file path``: the entries of :func:`parse_file` as one line of JSON.

    The JSON is ASCII with a fixed key order, so the same file always gives the same bytes.
    """
    return json.dumps(parse_file(path), ensure_ascii=True, allow_nan=False) + "\n"
