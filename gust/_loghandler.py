"""The ``logging`` handler of the task child: each record becomes a log frame at its own level.

Kept apart from :mod:`gust.sandbox` because it needs :mod:`logging`, which is slow to import:
the runtime loads this module only once the task itself has imported ``logging`` (see
:mod:`gust._logbridge`).
"""

from __future__ import annotations

import logging

from gust.errors import HostGoneError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gust.calls import Session

__all__ = ["LogFrameHandler", "level_name"]


def level_name(levelno: int) -> str:
    """The frame level of a ``logging`` level number: a custom level (``TRACE`` = 5,
    ``NOTICE`` = 25) takes the name of the standard level at or below it."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class LogFrameHandler(logging.Handler):
    """Sends each ``logging`` record as a log frame at the record's level (see
    :func:`level_name`)."""

    def __init__(self, session: Session, level: int) -> None:
        super().__init__(level)
        self._session = session

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._session.log(self.format(record), level_name(record.levelno))
        except HostGoneError:
            # The host stopped reading (or the final frame is out): the record has nowhere to
            # go, and a "Logging error" traceback per record would bury stderr. The runtime
            # reports the lost host once, when it ends.
            return
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)
