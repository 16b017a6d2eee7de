"""Following imports statically: the modules of the DAG's folder that a DAG file imports.

A common pattern puts a base ``Dag`` class in a module of the DAGs folder (``from base_dags
import BaseDag``, ``from .base import BaseDag``) and derives each DAG from it. ``gust parse``
reads such a module the way it reads the DAG file (as source, never running it), with the same
rules, so the DAG's inherited tasks and options are seen.

Resolution (:func:`resolve`): a name is looked up where it is used; an import binding leads to
the module it names, found as ``gust task run`` would find it: relative to the DAG file's folder
(``a.b`` is ``a/b/__init__.py``, else ``a/b.py``, else the namespace package ``a/b/``), never a
module of the standard library (which comes first at run time) and never an installed package.
A relative import starts from the importing module's package (from the DAG file's own folder
for the DAG file). Each module is read at most once (:class:`Folder` caches it by real path).

Whatever cannot be followed becomes an :class:`Unseen` with the exact reason: a module that is
not in the folder, a file that cannot be read or parsed or is over the bounds of
:mod:`gust.parser._limits` (each module's, and the imported modules' together), a name the
module does not define, an import cycle between files, imports nested too deep, or a DAG folder
that is a temp dir or world-writable (``gust task run`` never imports from one).
"""

from __future__ import annotations

import ast
import os
import sys

from gust.parser._limits import MAX_SOURCE_BYTES, MAX_SOURCE_TOKENS
from gust.parser._scope import END
from gust.parser._source import SourceError, check_tokens, parse_source, read_source

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Final

    from gust.parser._classes import Class
    from gust.parser._limits import Budget
    from gust.parser._module import Module
    from gust.parser._scope import Binding, Imported

#: The most modules read besides the DAG file.
MAX_MODULES: Final = 64
#: The deepest chain of modules being read at once (a imports b, which imports c, ...).
MAX_NESTING: Final = 16
#: The most imports one name is followed through (re-exports of re-exports).
MAX_HOPS: Final = 32
#: The import level of a binding made by a star import: the module is named by its dotted
#: name in the folder, found already (so neither the standard library nor trust is asked again).
FOUND: Final = -1

_STANDARD = frozenset(getattr(sys, "stdlib_module_names", ())) | frozenset(sys.builtin_module_names)


class Unseen:
    """Something an import names that ``gust parse`` cannot read; ``reason`` says why.

    ``standard``: it is the standard library's (never a DAG's base, never worth a message).
    ``missing``: no such module in the DAG's folder (perhaps an installed package).
    ``transient``: true only while other modules are being read (a cycle, nesting too deep).
    """

    __slots__ = ("missing", "reason", "standard", "transient")

    def __init__(
        self, reason: str, standard: bool = False, missing: bool = False, transient: bool = False
    ) -> None:
        self.reason = reason
        self.standard = standard
        self.missing = missing
        self.transient = transient


class Gust:
    """A name that stands for something of gust (``gust``, ``gust.Dag``, ``gust.task``)."""

    __slots__ = ("qual",)

    def __init__(self, qual: str) -> None:
        self.qual = qual


class Value:
    """A name bound to something other than a class, module or import (a constant, say)."""

    __slots__ = ("binding", "module", "name")

    def __init__(self, module: Module, name: str, binding: Binding) -> None:
        self.module = module
        self.name = name
        self.binding = binding


class Folder:
    """The DAG's folder: finds, reads (once) and caches the modules the DAG imports.

    ``root``: the DAG file's module, set once it exists.
    """

    def __init__(self, path: str, budget: Budget, trusted: bool) -> None:
        self.path = path
        self.budget = budget
        self.trusted = trusted
        self.root: Module | None = None
        self.root_reading = False  # the DAG file's statements are being read
        self._modules: dict[str, Module | Unseen] = {}  # by real path
        self._found: dict[str, Module | Unseen] = {}  # by dotted name
        self._exporting: set[tuple[int, str]] = set()  # star lookups under way
        self._reading: list[tuple[str, str]] = []  # (real path, display) of modules being read

    # ---- modules ------------------------------------------------------------------------------

    def module(self, importer: Module, name: str, level: int) -> Module | Unseen:
        """The module ``importer`` means by ``import name`` (``level`` dots before it; -1: the
        module of the folder whose dotted name is ``name``, already found once)."""
        if level == FOUND:
            return self._find(name)
        if level:
            parts = importer.package.split(".") if importer.package else []
            if level - 1 > len(parts):
                return Unseen(
                    f"{'.' * level}{name} in {importer.display} goes above the DAG's folder"
                )
            parts = parts[: len(parts) - (level - 1)]
            dotted = ".".join([*parts, *name.split(".")] if name else parts)
        else:
            dotted = name
            top = name.partition(".")[0]
            if top in _STANDARD:
                return Unseen(f"{top} is a module of the standard library", standard=True)
        if not self.trusted:
            return Unseen(
                f"the DAG's folder {self.path} is a temp dir or world-writable, so gust never "
                "imports from it"
            )
        return self._find(dotted)

    def submodule(self, package: Module, attr: str) -> Module | Unseen | None:
        """The module ``attr`` of ``package``, when there is one."""
        if not package.is_package:
            return None
        found = self._find(f"{package.name}.{attr}" if package.name else attr)
        return None if isinstance(found, Unseen) and found.missing else found

    def star_origin(self, importer: Module, imported: Imported, name: str) -> Module | None:
        """The module that binds ``name`` for ``from MODULE import *`` (``imported``) in
        ``importer``: MODULE itself, or the module one of its own star imports takes it from;
        None when that import does not bind ``name``.

        A star import of the importer itself, or one that comes back to a module already
        being asked (two modules importing each other's names), adds nothing.
        """
        module = self.module(importer, imported[0], imported[1])
        if isinstance(module, Unseen) or module is importer:
            return None
        public = module.scope.before("__all__", END)
        if public is not None and isinstance(public.value, (ast.List, ast.Tuple)):
            if name not in [e.value for e in public.value.elts if isinstance(e, ast.Constant)]:
                return None
        elif name.startswith("_"):
            return None
        if module.scope.before(name, END) is not None:
            return module
        asking = (id(module), name)
        if asking in self._exporting:
            return None
        self._exporting.add(asking)
        try:
            for star in reversed(module.scope.stars):
                origin = self.star_origin(module, star.imported, name)
                if origin is not None:
                    return origin
            return None
        finally:
            self._exporting.discard(asking)

    def _find(self, dotted: str) -> Module | Unseen:
        """The module ``dotted`` of the folder, read once; remembered (a cycle aside)."""
        found = self._found.get(dotted)
        if found is None:
            found = self._search(dotted)
            if not (isinstance(found, Unseen) and found.transient):
                self._found[dotted] = found
        return found

    def _search(self, dotted: str) -> Module | Unseen:
        parts = dotted.split(".") if dotted else []
        base = os.path.join(self.path, *parts)
        shown = "/".join(parts)
        if not parts:  # ``from . import x`` in the DAG file: the folder, a namespace
            return self._namespace(self.path, "", "")
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return self._load(init, dotted, dotted, f"{shown}/__init__.py", True)
        if os.path.isfile(base + ".py"):
            return self._load(base + ".py", dotted, dotted.rpartition(".")[0], f"{shown}.py")
        if os.path.isdir(base):
            return self._namespace(base, dotted, shown + "/")
        return Unseen(
            f"{dotted} is not a module of the DAG's folder {self.path} (no {shown}.py or "
            f"{shown}/__init__.py there; an installed package is never read)",
            missing=True,
        )

    def _namespace(self, path: str, dotted: str, shown: str) -> Module:
        key = os.path.realpath(path) + os.sep
        found = self._modules.get(key)
        if found is None:
            found = self._make(ast.Module(body=[], type_ignores=[]), path, dotted, dotted, shown)
            found.is_package = True
            self._modules[key] = found
        assert not isinstance(found, Unseen)
        return found

    def _make(self, tree: ast.Module, path: str, dotted: str, package: str, shown: str) -> Module:
        from gust.parser._module import Module  # the module reads classes, which import this

        stem = dotted.rpartition(".")[2]
        return Module(tree, stem, path, self.budget, self, dotted, package, shown)

    def _load(
        self, path: str, dotted: str, package: str, shown: str, is_package: bool = False
    ) -> Module | Unseen:
        key = os.path.realpath(path)
        root = self.root
        if root is not None and key == os.path.realpath(root.file_path):
            if self.root_reading:
                return self._cycle(key, shown)
            return root  # the DAG file imported by name: the same bindings
        found = self._modules.get(key)
        if found is not None:
            return found
        if any(reading == key for reading, _ in self._reading):
            return self._cycle(key, shown)
        if len(self._reading) >= MAX_NESTING:
            return Unseen(
                f"{shown} is imported more than {MAX_NESTING} modules deep", transient=True
            )
        if len(self._modules) >= MAX_MODULES:
            return Unseen(f"{shown} is not read: gust parse reads at most {MAX_MODULES} modules")
        found = self._parse(path, shown)
        if isinstance(found, Unseen):
            self._modules[key] = found
            return found
        source, tree = found
        module = self._make(tree, path, dotted, package, shown)
        module.is_package = is_package
        self._reading.append((key, shown))
        try:
            module.read(source)
        finally:
            self._reading.pop()
        self._modules[key] = module
        return module

    def _parse(self, path: str, shown: str) -> tuple[bytes, ast.Module] | Unseen:
        """The source and syntax tree of a module, within its bounds and the imports' budget."""
        budget = self.budget
        try:
            source = read_source(path)
            tokens = check_tokens(source, path)
            if (
                budget.sibling_bytes + len(source) > MAX_SOURCE_BYTES
                or budget.sibling_tokens + tokens > MAX_SOURCE_TOKENS
            ):
                return Unseen(
                    f"{shown} is not read: with it, the modules the DAG imports would hold more "
                    f"than {MAX_SOURCE_BYTES // 1048576} MiB or {MAX_SOURCE_TOKENS:,} tokens, "
                    "the most gust parse reads for them together"
                )
            budget.sibling_bytes += len(source)
            budget.sibling_tokens += tokens
            tree, _, _ = parse_source(source, path)
        except SourceError as exc:
            if exc.line:
                return Unseen(f"{shown} line {exc.line}: {exc.description}")
            return Unseen(exc.description)
        return source, tree

    def _cycle(self, key: str, shown: str) -> Unseen:
        chain = list(self._reading)
        if self.root_reading and self.root is not None:
            chain.insert(0, (os.path.realpath(self.root.file_path), self.root.display))
        start = next((k for k, (path, _) in enumerate(chain) if path == key), 0)
        names = [display for _, display in chain[start:]]
        return Unseen(f"the imports form a cycle: {' -> '.join([*names, shown])}", transient=True)


# ---- what names stand for ---------------------------------------------------------------------


#: The names an import chain went through: (module shown, name) pairs.
_Chain = tuple


def resolve(module: Module, node: ast.expr, position: int, hops: int = 0) -> object:
    """What ``node`` (a name or a dotted name) stands for at ``position`` of ``module``:
    a :class:`~gust.parser._classes.Class`, a module, :class:`Gust`, :class:`Value`,
    :class:`Unseen`, or None (not bound in the file: a builtin, or not a name at all)."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    target = resolve_name(module, node.id, position, hops)
    for attr in reversed(attrs):
        target = attribute(target, attr, hops)
    return target


def resolve_name(module: Module, name: str, position: int, hops: int = 0) -> object:
    """What the module-level ``name`` stands for just before ``position`` of ``module``."""
    binding = module.lookup(name, position)
    return None if binding is None else binding_target(module, name, binding, hops)


def binding_target(
    module: Module, name: str, binding: Binding, hops: int = 0, chain: _Chain = ()
) -> object:
    """What ``binding`` of ``name`` in ``module`` binds it to, following an import.

    ``chain``: the (module, name) pairs the lookup came through, to name a cycle of imports.
    """
    if binding.gust is not None:
        return Gust(binding.gust)
    cls = module.class_at.get(binding.index)
    if cls is not None and cls.name == name and binding.how == "a class statement":
        return cls
    imported = binding.imported
    if imported is None:
        alias = binding.value
        if isinstance(alias, (ast.Name, ast.Attribute)) and hops < MAX_HOPS:  # Base = Other
            target = resolve(module, alias, binding.index, hops + 1)
            if target is not None and not isinstance(target, Value):
                return target
        return Value(module, name, binding)
    here = (module.display, name)
    if here in chain:
        shown = [display for display, _ in chain[chain.index(here) :]]
        return Unseen(
            f"the imports of {name} form a cycle: {' -> '.join([*shown, module.display])}"
        )
    if hops >= MAX_HOPS:
        return Unseen(f"{name} is imported through more than {MAX_HOPS} modules")
    target = module.folder.module(module, imported[0], imported[1])
    if imported[2] is None or isinstance(target, Unseen):
        return target
    return attribute(target, imported[2], hops + 1, (*chain, here))


def attribute(target: object, attr: str, hops: int = 0, chain: _Chain = ()) -> object:
    """What ``target.attr`` stands for."""
    if isinstance(target, (Unseen, type(None))):
        return target
    if isinstance(target, Gust):
        qual = f"{target.qual}.{attr}"
        return Gust("gust." + qual[len("gust.dag.") :] if qual.startswith("gust.dag.") else qual)
    if not is_module(target):
        return None  # an attribute of a class or a value is not followed
    binding = target.lookup(attr, END)
    if binding is not None:
        return binding_target(target, attr, binding, hops, chain)
    sub = target.folder.submodule(target, attr)
    if sub is not None:
        return sub
    return Unseen(f"{attr} is not defined in {target.display}")


def class_of(module: Module, node: ast.expr, position: int) -> Class | None:
    """The class ``node`` names at ``position`` of ``module`` (in the file or imported)."""
    found = resolve(module, node, position)
    return found if is_class(found) else None  # type: ignore[return-value]


def is_class(target: object) -> bool:
    """Whether ``target`` is a class read by the parser."""
    from gust.parser._classes import Class  # which imports, through _evaluate, this module

    return isinstance(target, Class)


def is_module(target: object) -> bool:
    """Whether ``target`` is a module read by the parser."""
    from gust.parser._module import Module  # which imports, through _classes, this module

    return isinstance(target, Module)
