"""The task child's I/O: the process owns the protocol channel, user code cannot touch it.

Strategy: at start the protocol moves to private, non-inheritable duplicates of the original
stdout (frames out) and stdin (replies in). File descriptor 1 is then pointed at stderr and fd 0
at an empty input, so C extensions, child processes and ``input()`` can neither write into the
frame stream nor steal the host's replies. While user code runs, ``sys.stdout`` is a
line-buffered writer that sends each printed line as an ``info`` log frame (each thread has its
own unfinished line, so concurrent prints never mix), and a handler on the root logger turns
``logging`` records into log frames at their own level (added when the task first imports
``logging``, so tasks that never do skip its import; see :mod:`gust._logbridge`).

SIGTERM and SIGINT raise :class:`TaskInterrupted` in the main thread, once, so the task's
``finally`` blocks run and the failure is reported in-band. A signal that arrives while the main
thread is in the middle of writing a frame is held until the frame is whole. Should user code
swallow the exception or sit in C code, a watchdog reports the failure itself after
:data:`SIGNAL_GRACE` seconds and ends the process. A process forked from the task gets the
signal handlers that were there before, and (see :mod:`gust.calls`) no access to the channel.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import signal
import sys
import threading

from gust._channel import FdChannel
from gust._logbridge import LoggingBridge, level_by_name
from gust.calls import Session

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType
    from typing import Any, Final

    from gust._loghandler import LogFrameHandler  # at run time: __getattr__ below

__all__ = [
    "SIGNAL_GRACE",
    "LogFrameHandler",
    "LogWriter",
    "TaskInterrupted",
    "capture_output",
    "install_signal_handlers",
    "log_level_from_env",
    "take_channel",
]

#: Seconds between a SIGTERM/SIGINT and the watchdog's own failure report.
SIGNAL_GRACE: Final = 2.0

_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)
_RECONFIGURE_ARGS: Final = frozenset(
    {"encoding", "errors", "newline", "line_buffering", "write_through"}
)


class TaskInterrupted(BaseException):
    """The runtime received SIGTERM or SIGINT while the task ran.

    Attributes:
        signum: the signal number; ``signame`` its name (``"SIGTERM"``).
    """

    def __init__(self, signum: int, ignored_for: float | None = None) -> None:
        self.signum = signum
        self.signame = signal.Signals(signum).name
        message = f"received {self.signame} (signal {signum})"
        if ignored_for is not None:
            message += f"; the task did not stop within {ignored_for:g} s, so gust ended it"
        super().__init__(message)


# -- the descriptors --------------------------------------------------------------------------


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _devnull_at(fd: int, flags: int) -> None:
    spare = os.open(os.devnull, flags)
    if spare != fd:
        os.dup2(spare, fd)
        os.close(spare)


def take_channel() -> FdChannel:
    """Move the protocol to private descriptors and make fds 0 and 1 harmless.

    A closed stdin is fine (calls then raise at once, as at end of input); a closed stderr is
    replaced by ``/dev/null``.

    Returns:
        A channel writing to a duplicate of the original fd 1 and reading a duplicate of fd 0.

    Raises:
        OSError: fd 1 is not open, so no frame can be written.
    """
    if not _is_open(1):
        raise OSError("file descriptor 1 (stdout) is not open")
    had_stdin = _is_open(0)
    # Fill missing standard descriptors first, so the private duplicates land above 2.
    if not had_stdin:
        _devnull_at(0, os.O_RDONLY)
    if not _is_open(2):
        _devnull_at(2, os.O_WRONLY)
    out_fd = os.dup(1)  # os.dup makes non-inheritable descriptors
    in_fd = os.dup(0) if had_stdin else None
    os.dup2(2, 1)
    _devnull_at(0, os.O_RDONLY)
    if sys.stdin is None:  # Python had no stdin object since fd 0 was closed at start
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives on
    return FdChannel(out_fd, in_fd)


# -- stdout -----------------------------------------------------------------------------------


class LogWriter(io.TextIOBase):
    """A text stream whose complete lines become log frames.

    Each thread has its own unfinished line (``print`` writes the text and the newline in two
    calls, which would otherwise interleave between threads). Unfinished lines go out when the
    task ends (:meth:`flush_partial`); :meth:`flush` does not cut a line short.
    """

    def __init__(self, session: Session, level: str = "info") -> None:
        super().__init__()
        self._session = session
        self._level = level
        self._partial: dict[int, str] = {}
        self._buffer: _BytesLogWriter | None = None

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"

    @property
    def line_buffering(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return "<gust log frames>"

    @property
    def buffer(self) -> io.BufferedIOBase:
        """A binary view: bytes written here are decoded as UTF-8 and logged line by line."""
        if self._buffer is None:
            self._buffer = _BytesLogWriter(self)
        return self._buffer

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # fd 1 now points at stderr: C code writing there cannot reach the frames.
        return 1

    def reconfigure(self, **changes: Any) -> None:
        """Accept what code commonly asks of ``sys.stdout``; lines always go out as UTF-8 frames.

        Raises:
            TypeError: an argument ``TextIOWrapper.reconfigure`` does not take either.
        """
        unknown = set(changes) - _RECONFIGURE_ARGS
        if unknown:
            raise TypeError(f"reconfigure() got unexpected arguments: {', '.join(sorted(unknown))}")

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        ident = threading.get_ident()
        partial = self._partial
        if "\n" not in text:
            if text:
                partial[ident] = partial.get(ident, "") + text
            return len(text)
        head = partial.pop(ident, None)
        lines = (head + text if head else text).split("\n")
        rest = lines.pop()
        if rest:
            partial[ident] = rest
        log = self._session.log
        level = self._level
        for line in lines:
            log(line, level)
        return len(text)

    def flush_partial(self) -> None:
        """Send what is left of every unfinished line (bytes written to :attr:`buffer` too)."""
        if self._buffer is not None:
            self._buffer.finish()
        for ident in list(self._partial):
            rest = self._partial.pop(ident, "")
            if rest:
                self._session.log(rest, self._level)


class _BytesLogWriter(io.BufferedIOBase):
    """``sys.stdout.buffer`` while a task runs: UTF-8 bytes in, log lines out."""

    def __init__(self, text: LogWriter) -> None:
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._lock = threading.Lock()  # the decoder keeps split characters between calls

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1

    def write(self, data: Any) -> int:  # type: ignore[override]
        if isinstance(data, str):
            raise TypeError("a bytes-like object is required, not 'str'")
        raw = memoryview(data).cast("B")
        with self._lock:
            text = self._decoder.decode(raw.tobytes())
        self._text.write(text)
        return raw.nbytes

    def finish(self) -> None:
        with self._lock:
            text = self._decoder.decode(b"", final=True)
        if text:
            self._text.write(text)


# -- logging ----------------------------------------------------------------------------------


def __getattr__(name: str) -> Any:
    # LogFrameHandler needs logging, which tasks that never log through it do not pay for.
    if name == "LogFrameHandler":
        from gust._loghandler import LogFrameHandler

        return LogFrameHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def log_level_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """The level of the logging bridge: ``GUST_LOG_LEVEL`` (a name or number), default INFO.

    Raises:
        ValueError: the variable names no logging level.
    """
    raw = environ.get("GUST_LOG_LEVEL", "").strip()
    if not raw:
        return 20  # logging.INFO, without importing logging
    if raw.isdigit():
        return int(raw)
    level = level_by_name(raw.upper())
    if level is None:
        raise ValueError(
            f"GUST_LOG_LEVEL must be a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL "
            f"or a number), not {raw!r}"
        )
    return level


@contextlib.contextmanager
def capture_output(session: Session, level: int | None = None) -> Iterator[None]:
    """While the block runs, prints and ``logging`` records become log frames.

    Args:
        level: the lowest ``logging`` level sent; ``None`` reads ``GUST_LOG_LEVEL``.

    Raises:
        ValueError: ``GUST_LOG_LEVEL`` names no level (before anything is replaced).
    """
    if level is None:
        level = log_level_from_env()
    writer = LogWriter(session)
    bridge = LoggingBridge(session, level)  # see gust._logbridge: logging is loaded on demand
    old_stdout = sys.stdout
    sys.stdout = writer
    bridge.start()
    try:
        yield
    finally:
        bridge.stop()
        sys.stdout = old_stdout
        writer.flush_partial()
        _flush_original_stdout()


def _flush_original_stdout() -> None:
    # What the task wrote to sys.__stdout__ (fd 1, now stderr) must not sit in its buffer:
    # the CLI leaves through os._exit, which flushes nothing.
    stream = sys.__stdout__
    if stream is not None and not stream.closed:
        with contextlib.suppress(OSError, ValueError):  # stderr gone: nothing to show it on
            stream.flush()


# -- signals ----------------------------------------------------------------------------------

_previous_handlers: dict[int, Any] = {}


def _restore_in_forked_child() -> None:
    for signum, previous in _previous_handlers.items():
        signal.signal(signum, previous)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restore_in_forked_child)


def _inside(frame: FrameType | None, code: object) -> bool:
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def install_signal_handlers(
    channel: FdChannel, on_timeout: Callable[[TaskInterrupted], None]
) -> Callable[[], None]:
    """Turn the first SIGTERM/SIGINT into :class:`TaskInterrupted` in the main thread.

    Later signals add nothing: the first one already ends the task, and the watchdog makes
    sure it ends within :data:`SIGNAL_GRACE` seconds.

    Args:
        channel: the protocol channel; a signal arriving mid-frame waits for the frame to end.
        on_timeout: called by the watchdog thread when the main thread has not finished
            :data:`SIGNAL_GRACE` seconds after the signal; it must report and exit.

    Returns:
        A function to call once the final frames are ready: from then on a signal is ignored
        while they are written, and once they are out it ends the process the default way.
    """
    finished = threading.Event()
    fired = threading.Event()
    writing = type(channel)._write_all.__code__

    def handler(signum: int, frame: FrameType | None) -> None:
        if finished.is_set():
            if channel.output_closed:  # nothing left to report: die as the sender asked
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        if fired.is_set():
            return
        fired.set()
        threading.Thread(
            target=_watch, args=(signum,), name="gust-signal-watchdog", daemon=True
        ).start()
        exc = TaskInterrupted(signum)
        if _inside(frame, writing):
            channel.interrupt = exc  # raised by the writer once its frame is whole
            return
        raise exc

    def _watch(signum: int) -> None:
        if not finished.wait(SIGNAL_GRACE):
            on_timeout(TaskInterrupted(signum, ignored_for=SIGNAL_GRACE))

    for signum in _SIGNALS:
        previous = signal.signal(signum, handler)
        _previous_handlers.setdefault(signum, previous)
    return finished.set
