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

__all__ = ["LogFrameHandler"]


class LogFrameHandler(logging.Handler):
    """Sends each ``logging`` record as a log frame at the record's level."""

    def __init__(self, session: Session, level: int) -> None:
        super().__init__(level)
        self._session = session

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._session.log(self.format(record), record.levelname.lower())
        except HostGoneError:
            # The host stopped reading (or the final frame is out): the record has nowhere to
            # go, and a "Logging error" traceback per record would bury stderr. The runtime
            # reports the lost host once, when it ends.
            return
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)
