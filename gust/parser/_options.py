"""The DAG's options: ``schedule`` and ``on_finished_callback``, as ``Dag.__init__`` receives them.

Strategy: the options are the arguments of the call that reaches gust's ``Dag.__init__``. Starting
from the DAG class, the first class of its method resolution order that defines ``__init__``
is read; its call of a base's ``__init__`` (``super().__init__(...)``, ``super(X, self)``,
``Base.__init__(self, ...)`` or ``Dag.__init__(self, ...)``) says which class's ``__init__`` runs
next and with which arguments, and so on until gust's ``Dag`` is reached or the chain cannot be
followed. The arguments of the first call that passes an option win, as they would at run time
unless a later ``__init__`` overrode them. Values are read as a method sees them: module names
bound once the whole file has run, class attributes through ``self.NAME``.
"""

from __future__ import annotations

import ast

from gust.parser._evaluate import Context, NotStatic, call_arguments, qualname
from gust.parser._imports import class_of
from gust.parser._problems import Problems, describe, snippet
from gust.parser._scope import END, QUAL_DAG

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Any, Final

    from gust.parser._classes import Class
    from gust.parser._evaluate import Arg
    from gust.parser._module import Module

#: The DAG options of ``Dag.__init__`` that ``gust parse`` reports, in positional order.
OPTION_NAMES: Final = ("schedule", "on_finished_callback")


class InitCall:
    """The call of ``__init__`` of gust's ``Dag`` (or of a base) made by a class's ``__init__``.

    ``kind``: ``super`` (the next class in the MRO), ``after`` (the class after ``target``,
    from ``super(Target, self)``), ``dag`` (gust's Dag itself) or ``class``
    (``Target.__init__(self, ...)``). ``skip``: positional arguments before the options.
    """

    __slots__ = ("kind", "node", "skip", "target", "text")

    def __init__(
        self, node: ast.Call, kind: str, skip: int, target: Class | None, text: str
    ) -> None:
        self.node = node
        self.kind = kind
        self.skip = skip
        self.target = target
        self.text = text


class Init:
    """What the options reader needs to know about one ``__init__``."""

    __slots__ = ("call", "call_count", "local_names", "node", "self_name", "self_stores")

    def __init__(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        calls: list[InitCall],
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


def _init_of(module: Module, cls: Class) -> Init:
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
    calls: list[InitCall] = []
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
            found = _init_call(module, sub, cls)
            if found is not None:
                calls.append(found)
    calls.sort(key=lambda c: (c.node.lineno, c.node.col_offset))
    cls.init = Init(node, calls, self_name, local_names, self_stores)
    return cls.init


def _init_call(module: Module, call: ast.Call, cls: Class) -> InitCall | None:
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "__init__"):
        return None
    target = func.value
    if isinstance(target, ast.Call) and isinstance(target.func, ast.Name):
        if target.func.id == "super":
            owner = target.args[0] if target.args else None
            if owner is not None and not (isinstance(owner, ast.Name) and owner.id == cls.name):
                named = class_of(module, owner, END)
                if named is not None:
                    return InitCall(call, "after", 0, named, snippet(func))
            return InitCall(call, "super", 0, None, snippet(func))
        return None
    if qualname(module, target, END) == QUAL_DAG:
        return InitCall(call, "dag", 1, None, snippet(func))
    named = class_of(module, target, END)
    if named is not None:
        return InitCall(call, "class", 1, named, snippet(func))
    return None


def read_options(
    dag: Class, problems: Problems
) -> tuple[dict[str, Any], dict[str, tuple[int, str | None]]]:
    """The DAG's options, following ``__init__`` calls down its MRO; and where each is written.

    Each ``__init__`` is read in the module that defines it, with its problems said there.

    Returns:
        The options, and for each one read, its line and file (None: the DAG file).
    """
    mro = dag.mro
    anchor = dag.node.lineno
    layers: list[tuple[Class, Init, dict[str, Arg]]] = []
    position = 0
    while position < len(mro):
        owner_position = next(
            (k for k in range(position, len(mro)) if mro[k].init_node is not None), None
        )
        if owner_position is None:
            break
        owner = mro[owner_position]
        found_here = Problems()
        stop = _follow(dag, owner, owner_position, layers, found_here)
        problems.extend_from(origin(owner.module), anchor, found_here)
        if stop is None:
            break
        position = stop
    values: dict[str, Any] = {}
    places: dict[str, tuple[int, str | None]] = {}
    for name in OPTION_NAMES:
        values[name] = None
        for owner, init, args in layers:
            arg = args.get(name)
            if arg is None:
                continue
            found_here = Problems()
            ctx = Context(None, 0, END, init, dag)
            try:
                value = arg.read(owner.module, ctx)
            except NotStatic as exc:
                found_here.message(
                    arg.line,
                    f"{name} in {owner.name}.__init__ cannot be read statically: "
                    f"{exc.reason}; left at None",
                )
            else:
                if value is not None and not isinstance(value, str):
                    found_here.message(
                        arg.line,
                        f"{name} in {owner.name}.__init__ must be a string or None, not "
                        f"{describe(value)}; left at None",
                    )
                else:
                    values[name] = value
                    places[name] = (arg.line, origin(owner.module))
            problems.extend_from(origin(owner.module), anchor, found_here)
            break
    return values, places


def origin(module: Module) -> str | None:
    """How problems found in ``module`` name it: None for the DAG file itself."""
    return None if module.is_root else module.display


def _follow(
    dag: Class,
    owner: Class,
    owner_position: int,
    layers: list[tuple[Class, Init, dict[str, Arg]]],
    problems: Problems,
) -> int | None:
    """Read ``owner.__init__``'s call of a base ``__init__`` into ``layers``; return the MRO
    position where the chain goes on, or None where it ends."""
    mro = dag.mro
    module = owner.module
    init = _init_of(module, owner)
    call = init.call
    if call is None:
        problems.message(
            init.node.lineno,
            f"{owner.name}.__init__ calls neither super().__init__(...) nor "
            "Dag.__init__(self, ...); schedule and on_finished_callback are left at None",
        )
        return None
    where = f"{call.text}(...) in {owner.name}.__init__"
    if init.call_count > 1:
        problems.message(
            call.node.lineno,
            f"{owner.name}.__init__ calls __init__ of a base {init.call_count} times; "
            "only the first is read",
        )
    ctx = Context(None, 0, END, init, dag)
    args = call_arguments(
        module, call.node, call.skip, OPTION_NAMES, OPTION_NAMES, where, ctx, problems, strict=False
    )
    layers.append((owner, init, args))
    if call.kind == "dag":
        return None
    if call.kind == "super":
        return owner_position + 1
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
        return None
    return found + 1 if call.kind == "after" else found
