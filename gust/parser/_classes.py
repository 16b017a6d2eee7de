"""DAG classes and inheritance: the top-level classes of a file, their tasks and their bases.

Each class statement is read once, in source order: its bases (classes of the file read before
it, classes of modules of the DAG's folder, gust's ``Dag``, or something else, with the reason it
cannot be read), its ``@task`` methods with their options, its other members and its
class-level bindings. A class whose bases lead to gust's ``Dag`` is a DAG. Its method resolution
order over the classes the parser read is computed with C3, as Python does, so that its tasks
are those attribute lookup finds at run time.
"""

from __future__ import annotations

import ast

from gust.parser._evaluate import Context, NotStatic, call_arguments, qualname
from gust.parser._imports import Gust, Unseen, Value, resolve
from gust.parser._limits import MAX_MRO
from gust.parser._problems import Problems, describe, snippet
from gust.parser._scope import QUAL_DAG, QUAL_TASK, Binding, Scope, bind_statement

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Final

    from gust.parser._module import Module
    from gust.parser._options import Init

#: The keyword arguments ``@task(...)`` accepts.
TASK_OPTION_NAMES: Final = ("downstream", "save")


class Task:
    """A ``@task`` method as written in one class body.

    ``ref_line`` is where its downstream is written: errors about the downstream point there.
    """

    __slots__ = ("downstream", "line", "module", "name", "problems", "ref_line", "save")

    def __init__(self, name: str, line: int, ref_line: int, module: Module) -> None:
        self.name = name
        self.line = line
        self.ref_line = ref_line
        self.module = module
        self.downstream: list[str] = []
        self.save = False
        self.problems = Problems()


class Member:
    """A class-body binding that is not a task: ``kind`` is ``method`` or ``attribute``."""

    __slots__ = ("kind", "line", "module")

    def __init__(self, kind: str, line: int, module: Module) -> None:
        self.kind = kind
        self.line = line
        self.module = module


class Class:
    """A top-level class of the file, read once.

    ``ancestors``: the in-file classes of its method resolution order after itself (the MRO
    is kept without the class itself so that no reference cycle outlives a parse).
    ``external``: its bases that are neither classes ``gust parse`` read nor gust's ``Dag``;
    ``unseen``: those of them an import names but that cannot be read, as ``(line, base,
    reason, broken)`` (``broken``: the module is in the DAG's folder but could not be used).
    ``module``: the file it is defined in. ``weight``: what listing it costs in an entry
    (members, downstream links, problems), counted against
    :data:`~gust.parser._limits.MAX_OUTPUT` for every DAG class that inherits it.
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
        "module",
        "node",
        "problems",
        "scope",
        "unseen",
        "weight",
    )

    def __init__(
        self,
        node: ast.ClassDef,
        index: int,
        bases: list[Class],
        external: list[str],
        module: Module,
    ) -> None:
        self.node = node
        self.index = index
        self.bases = bases
        self.external = external
        self.module = module
        self.unseen: list[tuple[int, str, str, bool]] = []
        self.is_dag = False
        self.scope = Scope()
        self.ancestors: list[Class] = []
        self.members: dict[str, Task | Member] = {}
        self.problems = Problems()
        self.init_node: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        self.init: Init | None = None
        self.weight = 0

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def mro(self) -> list[Class]:
        return [self, *self.ancestors]


def read_class(module: Module, node: ast.ClassDef, index: int) -> Class:
    """Read the class statement ``node``, at position ``index`` of the module."""
    bases: list[Class] = []
    external: list[str] = []
    unseen: list[tuple[int, str, str, bool]] = []
    direct = False
    for base in node.bases:
        target = resolve(module, base, index)
        if isinstance(target, Class):
            bases.append(target)
            continue
        if isinstance(target, Gust) and target.qual == QUAL_DAG:
            direct = True
            continue
        if target is None and isinstance(base, ast.Name) and base.id == "object":
            continue
        shown = snippet(base)
        external.append(shown)
        if isinstance(target, Unseen) and not target.standard:
            unseen.append((base.lineno, shown, target.reason, not target.missing))
        elif isinstance(target, Value):
            how = target.binding.how
            reason = f"'{target.name}' is bound at line {target.binding.line} by {how}"
            unseen.append((base.lineno, shown, reason, False))
    cls = Class(node, index, bases, external, module)
    cls.unseen = unseen
    cls.is_dag = direct or any(b.is_dag for b in bases)
    cls.ancestors = _linearise(cls)
    walrus = module.walrus
    for position, stmt in enumerate(node.body):
        if not walrus and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # the common case, bound directly: a large DAG is thousands of these
            cls.scope.bind(stmt.name, Binding(position, stmt.lineno, None, "a def"))
            _read_method(module, cls, stmt, position)
            continue
        bound: list[str] = []
        bind_statement(stmt, position, cls.scope, None, bound, walrus)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for name in bound[:-1]:  # names its decorators or defaults bind with :=
                _set_member(cls, name, Member("attribute", stmt.lineno, module))
            _read_method(module, cls, stmt, position)
        elif isinstance(stmt, ast.Delete):
            for name in bound:
                _delete_member(cls, name, stmt.lineno)
        else:
            for name in bound:
                _set_member(cls, name, Member("attribute", stmt.lineno, module))
    weight = len(cls.members) + len(cls.problems.errors) + len(cls.problems.messages)
    for member in cls.members.values():
        if isinstance(member, Task):
            problems = member.problems
            weight += len(member.downstream) + len(problems.errors) + len(problems.messages)
    cls.weight = weight
    return cls


def _set_member(cls: Class, name: str, member: Member) -> None:
    previous = cls.members.get(name)
    if isinstance(previous, Task):
        cls.problems.message(
            member.line,
            f"'{name}' of {cls.name} rebinds task '{name}' (line {previous.line}) without "
            "@task, so it is no longer a task",
        )
    cls.members[name] = member


def _delete_member(cls: Class, name: str, line: int) -> None:
    previous = cls.members.pop(name, None)
    if isinstance(previous, Task):
        cls.problems.message(
            line,
            f"del removes task '{name}' (line {previous.line}) from {cls.name}, so it is no "
            "longer a task",
        )


def _read_method(
    module: Module, cls: Class, stmt: ast.FunctionDef | ast.AsyncFunctionDef, position: int
) -> None:
    if stmt.name == "__init__":
        cls.init_node = stmt
    task = _read_task(module, cls, stmt, position)
    if task is None:
        _set_member(cls, stmt.name, Member("method", stmt.lineno, module))
        return
    previous = cls.members.get(stmt.name)
    if isinstance(previous, Task):
        cls.problems.error(
            stmt.lineno,
            f"duplicate task name '{stmt.name}' in {cls.name}: first defined at line "
            f"{previous.line}, again at line {stmt.lineno}",
        )
    cls.members[stmt.name] = task


def _linearise(cls: Class) -> list[Class]:
    """The in-file classes after ``cls`` in its method resolution order (C3, as Python).

    The merge keeps, for every class, how many sequences hold it outside their head, so each
    step is linear in the number of bases; the order stops at :data:`MAX_MRO` classes.
    """
    bases = cls.bases
    if len(bases) <= 1:
        return _capped(cls, bases[0].mro if bases else [])
    if len({id(b) for b in bases}) != len(bases):
        cls.problems.error(cls.node.lineno, f"class {cls.name} lists the same base twice")
    if len(bases) >= MAX_MRO:
        return _capped(cls, bases)
    sequences = [b.mro for b in bases] + [list(bases)]
    in_tails: dict[int, int] = {}
    for sequence in sequences:
        for c in sequence[1:]:
            in_tails[id(c)] = in_tails.get(id(c), 0) + 1
    heads = [0] * len(sequences)
    result: list[Class] = []
    while len(result) < MAX_MRO:
        waiting = False
        for k, sequence in enumerate(sequences):
            if heads[k] < len(sequence):
                waiting = True
                head = sequence[heads[k]]
                if not in_tails.get(id(head)):
                    break
        else:
            if not waiting:
                return result
            cls.problems.error(
                cls.node.lineno,
                f"the bases of {cls.name} cannot be put in a consistent method resolution "
                "order (Python refuses to create this class)",
            )
            seen: dict[int, Class] = {}
            for base in bases:
                for c in base.mro:
                    seen.setdefault(id(c), c)
            return _capped(cls, list(seen.values()))
        result.append(head)
        for k, sequence in enumerate(sequences):
            at = heads[k]
            if at < len(sequence) and sequence[at] is head:
                heads[k] = at + 1
                if at + 1 < len(sequence):
                    in_tails[id(sequence[at + 1])] -= 1
    return _capped(cls, result)  # MAX_MRO ancestors and maybe more: reported as too deep


def _capped(cls: Class, ancestors: list[Class]) -> list[Class]:
    """``ancestors``, cut so that the method resolution order holds at most MAX_MRO classes."""
    if len(ancestors) < MAX_MRO:
        return ancestors
    cls.problems.error(
        cls.node.lineno,
        f"class {cls.name} has more than {MAX_MRO} classes in its method resolution order, "
        "more than gust parse follows; tasks and options of the deeper ones are not read",
    )
    return ancestors[: MAX_MRO - 1]


# ---- tasks ------------------------------------------------------------------------------------


def _task_decorator(
    module: Module, cls: Class, stmt: ast.FunctionDef | ast.AsyncFunctionDef, position: int
) -> ast.expr | None:
    for decorator in stmt.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if qualname(module, target, cls.index, cls, position) == QUAL_TASK:
            return decorator
    return None


def _read_task(
    module: Module, cls: Class, stmt: ast.FunctionDef | ast.AsyncFunctionDef, position: int
) -> Task | None:
    decorator = _task_decorator(module, cls, stmt, position)
    if decorator is None:
        return None
    task = Task(stmt.name, stmt.lineno, decorator.lineno, module)
    if not isinstance(decorator, ast.Call):
        return task
    problems = task.problems
    where = f"@task of '{stmt.name}'"
    ctx = Context(cls, position, cls.index)
    args = call_arguments(module, decorator, 0, (), TASK_OPTION_NAMES, where, ctx, problems)
    downstream = args.get("downstream")
    if downstream is not None:
        task.ref_line = downstream.line
        try:
            value = downstream.read(module, ctx)
        except NotStatic as exc:
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
                    f"not {describe(value)}",
                )
            else:
                task.downstream = names
    save = args.get("save")
    if save is not None:
        try:
            value = save.read(module, ctx)
        except NotStatic as exc:
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
                    save.line, f"{where}: save must be True or False, not {describe(value)}"
                )
    return task


def _downstream_names(value: object) -> list[str] | None:
    """The task names of a downstream value, duplicates dropped; None if it is not valid."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(dict.fromkeys(value))
    return None
