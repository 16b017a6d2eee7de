"""Find and call user code: load a DAG file, pick the DAG and the task, describe failures.

Every step that can fail raises :class:`SetupError` carrying the exact message the README lists
(``Failed to load module from <path>``, ``Dag '<D>' not found in module``, ...) and the
exception behind it, so the runtime can report it in-band with no other knowledge.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import CodeType, CoroutineType

from gust._importpath import add_dag_folders, is_trusted_folder
from gust.dag import TASK_ATTR, Dag, TaskOptions
from gust.errors import GustError

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType, TracebackType
    from typing import Any

__all__ = [
    "SetupError",
    "call_task",
    "describe_exception",
    "exception_type_name",
    "find_callable",
    "find_dag",
    "format_exception",
    "load_module",
]

_GUST_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class SetupError(GustError):
    """A step before the task itself failed; ``message`` is the exact text the README lists."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause


def _module_name(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in stem) or "dag"
    if stem[0].isdigit():
        stem = "_" + stem
    return stem if stem not in sys.modules else f"_gust_dag_{stem}"


def load_module(path: str) -> ModuleType:
    """Import the DAG file at ``path`` with its trusted folders importable.

    The working directory and the file's own folder are importable, after the standard
    library, unless they are a temp dir or world-writable (see :mod:`gust._importpath`). A
    file in such a folder (Gust's temp copy) is compiled from source: a bytecode cache beside
    it is neither read (anyone could plant one) nor written.

    Raises:
        SetupError: ``Failed to load module from <path>``, with the cause (missing file, syntax
            error, or whatever the module raised while it was imported).
    """
    abspath = os.path.abspath(path)
    message = f"Failed to load module from {path}"
    add_dag_folders(abspath)
    name = _module_name(abspath)
    loader = None
    if not is_trusted_folder(os.path.dirname(abspath)):
        # Gust's temp copy: never read a bytecode cache anyone could plant beside it, and
        # never litter that folder with one.
        loader = _SourceOnlyLoader(name, abspath)
    spec = importlib.util.spec_from_file_location(name, abspath, loader=loader)
    if spec is None or spec.loader is None:
        raise SetupError(message, ImportError(f"{path} is not a Python source file"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        raise SetupError(message, exc) from exc
    return module


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Loads a DAG file from an untrusted folder: no ``__pycache__`` beside it read or written.

    The compiled code is kept instead in the user's private code cache
    (:func:`gust._codecache.load`), keyed by the source's hash: the tasks of a run, and later
    runs of the same file, skip compiling it (a DAG of 2,000 tasks takes 45 ms to compile).
    """

    def get_code(self, fullname: str) -> CodeType:
        from gust import _codecache

        source = self.get_data(self.path)
        return _codecache.load(source, self.path, self.source_to_code)  # type: ignore[arg-type]


def _first_dag_class(module: ModuleType) -> type | None:
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Dag)
            and value is not Dag
            and value.__module__ == module.__name__
        ):
            return value
    return None


def find_dag(module: ModuleType, name: str, *, stem_fallback: str | None = None) -> Any:
    """Return the DAG object called ``name``: an instance of the class, or the object itself.

    Args:
        stem_fallback: the file stem; when ``name`` names nothing and the stem ends with it,
            the first ``Dag`` class of the module is used (Gust passes the original file's stem
            while running a temp copy).

    Raises:
        SetupError: ``Dag '<name>' not found in module``, or the class could not be created.
    """
    target = getattr(module, name, None) if name.isidentifier() else None
    if target is None and stem_fallback is not None and stem_fallback.endswith(name):
        target = _first_dag_class(module)
    if target is None:
        raise SetupError(f"Dag '{name}' not found in module")
    if not isinstance(target, type):
        return target
    try:
        return target()
    except BaseException as exc:
        raise SetupError(f"Dag '{name}' could not be created", exc) from exc


def find_callable(dag: Any, dag_name: str, attr: str) -> tuple[Callable[..., Any], TaskOptions]:
    """Return the task (or callback) ``attr`` of ``dag`` with its ``@task`` options.

    Raises:
        SetupError: ``Task '<T>' not found on dag '<D>'`` or ``... is not callable``.
    """
    try:
        fn = getattr(dag, attr)
    except AttributeError:
        raise SetupError(f"Task '{attr}' not found on dag '{dag_name}'") from None
    except BaseException as exc:
        raise SetupError(f"Task '{attr}' not found on dag '{dag_name}'", exc) from exc
    if not callable(fn):
        raise SetupError(f"Task '{attr}' on dag '{dag_name}' is not callable")
    options = getattr(fn, TASK_ATTR, None)
    return fn, options if isinstance(options, TaskOptions) else TaskOptions()


def call_task(fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn(*args)``; a coroutine function is run to completion with ``asyncio.run``."""
    result = fn(*args)
    if isinstance(result, CoroutineType):  # what inspect.iscoroutine checks, without inspect
        import asyncio  # only for async tasks: asyncio is slow to import

        return asyncio.run(result)
    return result


def exception_type_name(exc: BaseException) -> str:
    """``ValueError`` for builtins, ``package.module.Class`` otherwise."""
    cls = type(exc)
    module, name = str(cls.__module__), str(cls.__qualname__)
    if module in ("builtins", "__main__"):
        return name
    return f"{module}.{name}"


def _user_traceback(tb: TracebackType | None) -> TracebackType | None:
    # Drop the leading frames of gust itself and of importlib: they tell the user nothing.
    start = tb
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith(_GUST_DIR) or filename.startswith("<frozen importlib")):
            return tb
        tb = tb.tb_next
    return start


def format_exception(exc: BaseException) -> str:
    """The traceback of ``exc`` as Python prints it, without gust's own frames."""
    import traceback  # only on failure: it is slow to import

    return "".join(traceback.format_exception(type(exc), exc, _user_traceback(exc.__traceback__)))


def describe_exception(exc: BaseException) -> tuple[str, str, str]:
    """``(type name, message, traceback)`` of ``exc``; never raises.

    Whatever the exception does (a ``__str__`` or ``__repr__`` that raises, a class with odd
    names, a traceback that cannot be formatted), each part falls back to a text saying what
    could not be read, so a failure is always reported with its type.
    """
    try:
        type_name = exception_type_name(exc)
    except BaseException:  # noqa: BLE001 - describing a failure must not fail
        type_name = "<exception type with an unreadable name>"
    try:
        details = str(exc)
    except BaseException as err:  # noqa: BLE001 - a __str__ that raises still has a type
        details = f"<str() of the {type_name} raised {type(err).__name__}>"
    try:
        tb = format_exception(exc)
    except BaseException as err:  # noqa: BLE001 - as above
        tb = f"<the traceback of the {type_name} could not be formatted: {type(err).__name__}>\n"
    return type_name, details or type_name, tb
