"""Bridging ``logging`` to log frames without importing ``logging`` into tasks that never use it.

Theory of operation: importing :mod:`logging` costs a task start about half of what the bare
interpreter costs (it brings traceback, string, weakref and more), and most tasks never log
through it. :class:`LoggingBridge` therefore adds the :class:`~gust._loghandler.LogFrameHandler`
to the root logger at once when ``logging`` is already loaded, and otherwise puts a one-shot
finder at the front of :data:`sys.meta_path`. That finder lets the first ``import logging`` of
the process (by the DAG file, the task or any library) find and run the real module as usual
and adds the handler the moment the module has run: before the importing code can call
``basicConfig`` or emit a record, so every record is bridged exactly as if the handler had been
there from the start. :meth:`LoggingBridge.stop` removes whichever of the two is in place and
restores the root logger's level.
"""

from __future__ import annotations

import contextlib
import sys
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Final

    from gust._loghandler import LogFrameHandler
    from gust.calls import Session

__all__ = ["STANDARD_LEVELS", "LoggingBridge", "level_by_name"]

#: The levels ``logging`` knows before anyone registers more (``logging._nameToLevel``).
STANDARD_LEVELS: Final = {
    "CRITICAL": 50,
    "FATAL": 50,
    "ERROR": 40,
    "WARN": 30,
    "WARNING": 30,
    "INFO": 20,
    "DEBUG": 10,
    "NOTSET": 0,
}


def level_by_name(name: str) -> int | None:
    """The number of the ``logging`` level called ``name``, or ``None`` if there is none.

    Asks ``logging`` itself once it is loaded (it may know custom names); before that only the
    standard names can exist, and answering from :data:`STANDARD_LEVELS` keeps it unloaded.
    """
    logging = sys.modules.get("logging")
    if logging is None:
        return STANDARD_LEVELS.get(name)
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else None


class LoggingBridge:
    """Routes root-logger records of ``level`` and above to ``session`` between start and stop.

    Args:
        session: where the records go, as log frames.
        level: the lowest level sent; the root logger is lowered to it if needed.
    """

    def __init__(self, session: Session, level: int) -> None:
        self._session = session
        self._level = level
        self._lock = threading.Lock()
        self._finder: _AfterImport | None = None
        self._handler: LogFrameHandler | None = None
        self._old_root_level = 0
        self._stopped = False

    def start(self) -> None:
        """Bridge now if ``logging`` is loaded, else as soon as it is first imported."""
        module = sys.modules.get("logging")
        if module is not None:
            self._install(module)
            return
        self._finder = _AfterImport("logging", self._install)
        sys.meta_path.insert(0, self._finder)

    @property
    def installed(self) -> bool:
        """Whether the handler is on the root logger (``logging`` has been imported)."""
        return self._handler is not None

    def stop(self) -> None:
        """Remove the handler (restoring the root level) or the pending finder."""
        with self._lock:
            self._stopped = True
            finder, self._finder = self._finder, None
            handler, self._handler = self._handler, None
        if finder is not None:
            finder.remove()
        if handler is not None:
            root = sys.modules["logging"].getLogger()
            root.removeHandler(handler)
            root.setLevel(self._old_root_level)

    def _install(self, logging: ModuleType) -> None:
        from gust._loghandler import LogFrameHandler  # logging is loaded by now

        with self._lock:
            if self._stopped or self._handler is not None:
                return
            root = logging.getLogger()
            self._old_root_level = root.level
            self._handler = LogFrameHandler(self._session, self._level)
            root.addHandler(self._handler)
            if root.level > self._level:
                root.setLevel(self._level)


class _AfterImport:
    """A one-shot meta-path finder: module ``name`` is found and run as usual, then
    ``callback(module)`` is called."""

    def __init__(self, name: str, callback: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.callback = callback

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: Any = None
    ) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        self.remove()  # one shot, and the search below must not find us again
        from importlib.util import find_spec

        spec = find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _ThenCall(spec.loader, self.callback)  # type: ignore[assignment]
        return spec

    def remove(self) -> None:
        with contextlib.suppress(ValueError):  # user code may have removed us already
            sys.meta_path.remove(self)


class _ThenCall:
    """Wraps a loader: runs the module with it, then calls back; the module sees the real one."""

    def __init__(self, loader: Any, callback: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._callback(module)
