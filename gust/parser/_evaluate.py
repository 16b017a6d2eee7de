"""Evaluating constants and aliases: the values a DAG file gives without being run.

A value is read when it is a literal (strings, numbers, ``True``/``False``/``None``, and lists,
tuples, sets and dicts of them), or a name bound to one, followed through any chain of names as
Python would resolve them at that point of the file: a class-level binding hides the module's,
and each binding is read as it stood where it is used. A name imported from a module of the
DAG's folder is read there (:mod:`gust.parser._imports`), as bound once that module has run.
``Owner.NAME`` reads a class attribute of a class the parser read (or a constant of an imported
module); inside ``__init__``, ``self.NAME`` reads one through the DAG's method resolution order.
Anything else raises :class:`NotStatic` with a reason the caller turns into a message.

:func:`qualname` answers the other question names raise: whether a name (or ``mod.attr``)
stands for something of gust, however it was imported. :func:`call_arguments` maps the
arguments of a call (``@task(...)``, ``super().__init__(...)``) to parameters without reading
them yet.
"""

from __future__ import annotations

import ast

from gust.parser._imports import (
    Gust,
    Unseen,
    Value,
    attribute,
    binding_target,
    is_class,
    is_module,
    resolve_name,
)
from gust.parser._limits import MAX_VALUES
from gust.parser._problems import describe, snippet
from gust.parser._scope import DELETED, END
from gust.protocol import scrub_surrogates

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Any, Final

    from gust.parser._classes import Class
    from gust.parser._module import Module
    from gust.parser._options import Init
    from gust.parser._problems import Problems
    from gust.parser._scope import Binding

# How far literal evaluation follows nested containers and name-to-name indirections.
MAX_DEPTH: Final = 64


class NotStatic(Exception):
    """A value that cannot be read without running the file; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Context:
    """Where an expression is evaluated: which bindings its names see.

    ``cls``/``position``: a class body and the statement position in it (class-level names
    are visible there); ``module_position``: the module statement position for module names;
    ``init``/``dag``: inside ``__init__`` of a class, evaluated for the DAG class ``dag``.
    """

    __slots__ = ("cls", "dag", "init", "module_position", "position")

    def __init__(
        self,
        cls: Class | None,
        position: int,
        module_position: int,
        init: Init | None = None,
        dag: Class | None = None,
    ) -> None:
        self.cls = cls
        self.position = position
        self.module_position = module_position
        self.init = init
        self.dag = dag


# ---- names ------------------------------------------------------------------------------------


def qualname(
    module: Module,
    node: ast.expr,
    module_position: int,
    cls: Class | None = None,
    position: int = 0,
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
    binding = module.lookup(node.id, module_position)
    if binding is None:
        return None
    base = binding.gust
    if base is None:
        if binding.imported is None:
            return None
        target = binding_target(module, node.id, binding)  # gust re-exported by a module
        for attr in reversed(attrs):
            target = attribute(target, attr)
        return target.qual if isinstance(target, Gust) else None
    if not attrs:
        return base
    attrs.reverse()
    qual = ".".join([base, *attrs])
    if qual.startswith("gust.dag."):
        qual = "gust." + qual[len("gust.dag.") :]
    return qual


def class_before(module: Module, name: str, position: int) -> Class | None:
    """The class the module-level ``name`` refers to just before ``position``: one of the file,
    or one a module of the DAG's folder defines and the file imports."""
    found = resolve_name(module, name, position)
    return found if is_class(found) else None  # type: ignore[return-value]


# ---- values -----------------------------------------------------------------------------------


def evaluate(module: Module, node: ast.expr, ctx: Context, depth: int = 0) -> Any:
    """The value of ``node`` when it is a literal (or a name bound to one).

    Raises:
        NotStatic: the value cannot be read without running the file; ``reason`` says why.
    """
    if depth > MAX_DEPTH:
        raise NotStatic("it is nested too deeply to be read")
    budget = module.budget
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise NotStatic(
            f"the values of this file need more than the {MAX_VALUES:,} gust parse reads in one "
            "file"
        )
    if isinstance(node, ast.Constant):
        value = node.value
        if type(value) is str and not value.isascii():
            # valid Unicode from the start, so that messages quote what the output holds
            return scrub_surrogates(value)
        return value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            raise NotStatic(f"{snippet(node)} unpacks a value with *")
        items = [evaluate(module, e, ctx, depth + 1) for e in node.elts]
        if isinstance(node, ast.List):
            return items
        if isinstance(node, ast.Tuple):
            return tuple(items)
        try:
            return set(items)
        except TypeError:
            raise NotStatic(f"{snippet(node)} holds unhashable values") from None
    if isinstance(node, ast.Dict):
        result: dict[Any, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise NotStatic(f"{snippet(node)} unpacks a mapping with **")
            try:
                result[evaluate(module, key, ctx, depth + 1)] = evaluate(
                    module, value, ctx, depth + 1
                )
            except TypeError:
                raise NotStatic(f"{snippet(node)} has an unhashable key") from None
        return result
    if isinstance(node, ast.Name):
        return _evaluate_name(module, node, ctx, depth)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return _evaluate_attribute(module, node, node.value.id, ctx, depth)
    raise NotStatic(f"{snippet(node)} is not a literal")


def _evaluate_binding(
    module: Module, name: str, binding: Binding, cls: Class | None, depth: int
) -> Any:
    if cls is None:
        declared = module.declared_global.get(name)
        if declared is not None:
            line, function = declared
            raise NotStatic(
                f"'{name}' is declared global in {function}() at line {line}, which may "
                "rebind it whenever it runs"
            )
    if binding.value is None:
        if binding.imported is not None and binding.gust is None:
            return _evaluate_import(module, name, binding, depth)
        if binding.how == DELETED:
            raise NotStatic(f"'{name}' is deleted by the del statement at line {binding.line}")
        raise NotStatic(f"'{name}' is bound at line {binding.line} by {binding.how}")
    # a module binding is read where it stands; a class binding where the class statement runs
    ctx = Context(cls, binding.index, binding.index if cls is None else cls.index)
    try:
        return evaluate(module, binding.value, ctx, depth + 1)
    except NotStatic as exc:
        raise NotStatic(f"'{name}' (line {binding.line}) cannot be read: {exc.reason}") from None


def _evaluate_import(module: Module, name: str, binding: Binding, depth: int) -> Any:
    """The value of a name imported from a module of the DAG's folder, as bound there."""
    target = binding_target(module, name, binding)
    if isinstance(target, Unseen):
        raise NotStatic(f"'{name}' (line {binding.line}) cannot be read: {target.reason}")
    if not isinstance(target, Value):
        raise NotStatic(f"'{name}' is bound at line {binding.line} by {binding.how}")
    try:
        return _evaluate_binding(target.module, target.name, target.binding, None, depth + 1)
    except NotStatic as exc:
        raise NotStatic(
            f"'{name}' (line {binding.line}) comes from {target.module.display}: {exc.reason}"
        ) from None


def _evaluate_name(module: Module, node: ast.Name, ctx: Context, depth: int) -> Any:
    name = node.id
    if ctx.init is not None and name in ctx.init.local_names:
        raise NotStatic(f"'{name}' is a local variable or parameter of __init__")
    if ctx.cls is not None:
        binding = ctx.cls.scope.before(name, ctx.position)
        if binding is not None:
            return _evaluate_binding(ctx.cls.module, name, binding, ctx.cls, depth)
    binding = module.lookup(name, ctx.module_position)
    if binding is not None:
        return _evaluate_binding(module, name, binding, None, depth)
    if ctx.dag is not None and any(name in c.scope.names for c in ctx.dag.mro):
        raise NotStatic(
            f"'{name}' is a class attribute, which a method cannot see as a bare name "
            f"(write self.{name})"
        )
    raise NotStatic(f"'{name}' is not bound at module or class level")


def _evaluate_attribute(
    module: Module, node: ast.Attribute, owner: str, ctx: Context, depth: int
) -> Any:
    attr = node.attr
    if ctx.init is not None and owner == ctx.init.self_name and ctx.dag is not None:
        if attr in ctx.init.self_stores:
            raise NotStatic(f"self.{attr} is set on the instance in __init__")
        mro = ctx.dag.mro
    else:
        if ctx.init is not None and owner in ctx.init.local_names:
            raise NotStatic(f"{snippet(node)} is not a literal")
        target = resolve_name(module, owner, ctx.module_position)
        if is_class(target):
            mro = target.mro  # type: ignore[attr-defined]
        else:
            if is_module(target):  # a constant of an imported module
                target = attribute(target, attr)
            if isinstance(target, Value):
                return _evaluate_binding(target.module, attr, target.binding, None, depth)
            if isinstance(target, Unseen):
                raise NotStatic(f"{snippet(node)} cannot be read: {target.reason}")
            raise NotStatic(f"{snippet(node)} is not a literal")
    for cls in mro:
        binding = cls.scope.before(attr, END)
        if binding is not None:
            return _evaluate_binding(cls.module, attr, binding, cls, depth)
    raise NotStatic(f"{snippet(node)} is not a class attribute defined in this file")


# ---- calls ------------------------------------------------------------------------------------


class Arg:
    """An argument of a call: an expression still to read, or a value read from a ``**`` dict."""

    __slots__ = ("line", "node", "value")

    def __init__(self, line: int, node: ast.expr | None = None, value: Any = None) -> None:
        self.line = line
        self.node = node
        self.value = value

    def read(self, module: Module, ctx: Context) -> Any:
        """The argument's value; raises :class:`NotStatic` as :func:`evaluate` does."""
        if self.node is None:
            return self.value
        return evaluate(module, self.node, ctx)


def call_arguments(
    module: Module,
    call: ast.Call,
    skip: int,
    positional: tuple[str, ...],
    known: tuple[str, ...],
    where: str,
    ctx: Context,
    problems: Problems,
    strict: bool = True,
) -> dict[str, Arg]:
    """Map the arguments of ``call`` to the ``known`` parameters, unevaluated.

    ``skip``: positional arguments before the first parameter (``self`` of an explicit
    ``Base.__init__(self, ...)``). ``strict``: unknown keywords are errors (``@task``); otherwise
    they are accepted, as ``Dag.__init__`` takes ``**more``.
    """
    found: dict[str, Arg] = {}
    for number, arg in enumerate(call.args[skip:]):
        if isinstance(arg, ast.Starred):
            problems.message(
                arg.lineno,
                f"{where}: {snippet(arg)} cannot be read statically; the options it fills "
                "are left at their defaults",
            )
            break
        if number >= len(positional):
            if positional:
                text = f"takes at most {len(positional)} positional arguments"
            else:
                text = "takes keyword arguments only (" + ", ".join(f"{k}=..." for k in known) + ")"
            (problems.error if strict else problems.message)(
                arg.lineno, f"{where} {text}, got {snippet(arg)}"
            )
            break
        found[positional[number]] = Arg(arg.lineno, node=arg)
    for keyword in call.keywords:
        line = keyword.value.lineno
        if keyword.arg is None:
            try:
                mapping = evaluate(module, keyword.value, ctx)
            except NotStatic as exc:
                problems.message(
                    line,
                    f"{where}: **{snippet(keyword.value)} cannot be read statically: "
                    f"{exc.reason}; any of {', '.join(known)} it sets is left at its default",
                )
                continue
            if not isinstance(mapping, dict):
                problems.error(line, f"{where}: ** takes a mapping, not {describe(mapping)}")
                continue
            for key, value in mapping.items():
                if key in known:
                    found[key] = Arg(line, value=value)
                elif strict:
                    problems.error(
                        line,
                        f"{where}: unknown option {describe(key)} (known: {', '.join(known)})",
                    )
        elif keyword.arg in known:
            if keyword.arg in found:
                (problems.error if strict else problems.message)(
                    line, f"{where} gets {keyword.arg} twice"
                )
            found[keyword.arg] = Arg(line, node=keyword.value)
        elif strict:
            problems.error(
                line, f"{where}: unknown option '{keyword.arg}' (known: {', '.join(known)})"
            )
    return found
