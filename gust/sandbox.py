"""The task child's I/O: the process owns the protocol channel, user code cannot touch it.

Strategy: at start the protocol moves to private, non-inheritable duplicates of the original
stdout (frames out) and stdin (replies in). File descriptor 1 is then pointed at stderr and fd 0
at an empty input, so C extensions, child processes and ``input()`` can neither write into the
frame stream nor steal the host's replies. While user code runs, ``sys.stdout`` is a
line-buffered writer that sends each printed line as an ``info`` log frame, and a handler on the
root logger turns ``logging`` records into log frames at their own level.

SIGTERM and SIGINT raise :class:`TaskInterrupted` in the main thread, so the task's ``finally``
blocks run and the failure is reported in-band. A signal that arrives while the main thread is
writing a frame is held until the frame is whole. Should user code swallow the exception or sit
in C code, a watchdog reports the failure itself after :data:`SIGNAL_GRACE` seconds and exits.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final

from gust._channel import FdChannel
from gust.calls import Session

__all__ = [
    "SIGNAL_GRACE",
    "LogFrameHandler",
    "LogWriter",
    "TaskInterrupted",
    "capture_output",
    "install_signal_handlers",
    "take_channel",
]

#: Seconds between a SIGTERM/SIGINT and the watchdog's own failure report.
SIGNAL_GRACE: Final = 2.0


class TaskInterrupted(BaseException):
    """The runtime received SIGTERM or SIGINT while the task ran."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signame = signal.Signals(signum).name
        super().__init__(f"received {self.signame} (signal {signum})")


def take_channel() -> FdChannel:
    """Move the protocol to private descriptors and make fds 0 and 1 harmless.

    Returns:
        A channel writing to a duplicate of the original fd 1 and reading a duplicate of fd 0.

    Raises:
        OSError: fd 0 or 1 is not open.
    """
    out_fd = os.dup(1)  # os.dup makes non-inheritable descriptors
    in_fd = os.dup(0)
    os.dup2(2, 1)
    empty = os.open(os.devnull, os.O_RDONLY)
    if empty != 0:
        os.dup2(empty, 0)
        os.close(empty)
    return FdChannel(out_fd, in_fd)


class LogWriter(io.TextIOBase):
    """A text stream whose complete lines become log frames (a partial line waits for more)."""

    def __init__(self, session: Session, level: str = "info") -> None:
        super().__init__()
        self._session = session
        self._level = level
        self._partial = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # fd 1 now points at stderr: C code writing there cannot reach the frames.
        return 1

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            if "\n" not in text:
                self._partial += text
                return len(text)
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        for line in lines:
            self._session.log(line, self._level)
        return len(text)

    def flush_partial(self) -> None:
        """Send what is left of an unfinished line."""
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self._session.log(rest, self._level)


class LogFrameHandler(logging.Handler):
    """Sends each ``logging`` record as a log frame at the record's level."""

    def __init__(self, session: Session, level: int) -> None:
        super().__init__(level)
        self._session = session

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._session.log(self.format(record), record.levelname.lower())
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)


def _bridge_level(environ: dict[str, str] | os._Environ[str]) -> int:
    raw = environ.get("GUST_LOG_LEVEL", "").strip()
    if not raw:
        return logging.INFO
    if raw.isdigit():
        return int(raw)
    level = logging.getLevelName(raw.upper())
    if not isinstance(level, int):
        raise ValueError(
            f"GUST_LOG_LEVEL must be a logging level (DEBUG, INFO, WARNING, ...), not {raw!r}"
        )
    return level


@contextmanager
def capture_output(session: Session) -> Iterator[None]:
    """While the block runs, prints and ``logging`` records become log frames.

    Raises:
        ValueError: ``GUST_LOG_LEVEL`` names no level (before anything is replaced).
    """
    level = _bridge_level(os.environ)
    writer = LogWriter(session)
    handler = LogFrameHandler(session, level)
    root = logging.getLogger()
    old_root_level = root.level
    old_stdout = sys.stdout
    sys.stdout = writer
    root.addHandler(handler)
    if root.level > level:
        root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_root_level)
        sys.stdout = old_stdout
        writer.flush_partial()


def install_signal_handlers(
    channel: FdChannel, on_timeout: Callable[[TaskInterrupted], None]
) -> Callable[[], None]:
    """Turn SIGTERM/SIGINT into :class:`TaskInterrupted` in the main thread.

    Args:
        channel: the protocol channel; a signal arriving mid-frame waits for the frame to end.
        on_timeout: called by the watchdog thread when the main thread has not finished
            :data:`SIGNAL_GRACE` seconds after the signal; it must report and exit.

    Returns:
        A function to call once the final frame is being written: later signals are ignored
        and the watchdog stands down.
    """
    main = threading.get_ident()
    finished = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if finished.is_set():
            return
        exc = TaskInterrupted(signum)
        threading.Thread(
            target=_watch, args=(exc,), name="gust-signal-watchdog", daemon=True
        ).start()
        if channel.writer == main:
            channel.interrupt = exc  # raised by the writer once its frame is whole
            return
        raise exc

    def _watch(exc: TaskInterrupted) -> None:
        if not finished.wait(SIGNAL_GRACE):
            on_timeout(exc)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    return finished.set
