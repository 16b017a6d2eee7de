"""The task child's I/O: the process owns the protocol channel, user code cannot touch it.

Strategy: at start the protocol moves to private, non-inheritable duplicates of the original
stdout (frames out) and stdin (replies in). File descriptor 1 is then pointed at stderr and fd 0
at an empty input, so C extensions, child processes and ``input()`` can neither write into the
frame stream nor steal the host's replies. While user code runs, ``sys.stdout`` is a
line-buffered writer that sends each printed line as an ``info`` log frame (each thread has its
own unfinished line, so concurrent prints never mix), ``sys.stderr`` masks secrets line by line
(:class:`MaskedStream`: thread tracebacks, ``warnings``, prints to stderr), and a handler on the
root logger turns ``logging`` records into log frames at their own level (added when the task
first imports ``logging``, so tasks that never do skip its import; see :mod:`gust._logbridge`).

Signals (:class:`TaskSignals`): SIGTERM and SIGINT raise :class:`TaskInterrupted` in the main
thread, once, so the task's ``finally`` blocks run and the failure is reported in-band. Should
user code swallow the exception or sit in C code, a watchdog reports the failure itself after
:data:`SIGNAL_GRACE` seconds and ends the process. Handlers the task installs with
``signal.signal`` while it runs are wrapped, and ``signal.getsignal`` gives back the task's own
function: a handler that lands while the main thread is inside a frame (or taking in a reply)
runs right after, so it can raise or log without tearing a frame or deadlocking on the write
lock (see :mod:`gust._channel`); ours does the same. When the task's code is over, its handlers
are switched off (their signals ignored, ours kept), so nothing interrupts the final frames. A
process forked from the task gets the signal handlers that were there before ours, and (see
:mod:`gust.calls`) no access to the channel.
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

    from gust._channel import Channel
    from gust._loghandler import LogFrameHandler  # at run time: __getattr__ below
    from gust.masking import SecretMasker

__all__ = [
    "SIGNAL_GRACE",
    "LogFrameHandler",
    "LogWriter",
    "MaskedStream",
    "TaskInterrupted",
    "TaskSignals",
    "capture_output",
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


class MaskedStream(io.TextIOBase):
    """``sys.stderr`` while a task runs: text passes through with secrets masked.

    Until a secret is registered every write goes straight through. From then on text is held
    until its line is complete (a secret split over two writes is still masked whole) and the
    line is written masked; :meth:`finish` writes what is left. A line longer than 64 KiB is
    written in parts, holding back enough of its end to mask a secret that straddles the cut.
    """

    _MAX_HELD = 1 << 16

    def __init__(self, wrapped: Any, masker: SecretMasker) -> None:
        super().__init__()
        self._wrapped = wrapped
        self._masker = masker
        self._held = ""
        self._lock = threading.Lock()
        self._buffer: _BytesTextWriter | None = None

    @property
    def wrapped(self) -> Any:
        """The stream the masked text goes to."""
        return self._wrapped

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._wrapped, "encoding", "utf-8")

    @property
    def errors(self) -> str:  # type: ignore[override]
        return getattr(self._wrapped, "errors", "backslashreplace")

    @property
    def buffer(self) -> io.BufferedIOBase:
        """A binary view: bytes written here are decoded as UTF-8 and masked the same way."""
        if self._buffer is None:
            self._buffer = _BytesTextWriter(self)
        return self._buffer

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return bool(self._wrapped.isatty())

    def fileno(self) -> int:
        return int(self._wrapped.fileno())

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        masker = self._masker
        if masker.pattern is None and not self._held:
            self._wrapped.write(text)
            return len(text)
        with self._lock:
            head, newline, rest = (self._held + text).rpartition("\n")
            out = masker.mask(head + newline) if newline else ""
            if len(rest) > self._MAX_HELD:
                # Masked now; the last `longest` characters wait, since a secret may start there.
                rest = masker.mask(rest)
                keep = max(masker.longest, 1)
                out, rest = out + rest[:-keep], rest[-keep:]
            self._held = rest
            if out:
                self._wrapped.write(out)
        return len(text)

    def flush(self) -> None:
        self._wrapped.flush()

    def finish(self) -> None:
        """Write the unfinished line, masked, and flush."""
        with self._lock:
            held, self._held = self._held, ""
        if held:
            self._wrapped.write(self._masker.mask(held))
        self._wrapped.flush()


class _BytesTextWriter(io.BufferedIOBase):
    """Bytes in, decoded as UTF-8 and handed to a text stream's ``write``."""

    def __init__(self, text: io.TextIOBase) -> None:
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._text.fileno()

    def write(self, data: Any) -> int:  # type: ignore[override]
        if isinstance(data, str):
            raise TypeError("a bytes-like object is required, not 'str'")
        raw = memoryview(data).cast("B")
        with self._lock:
            text = self._decoder.decode(raw.tobytes())
        self._text.write(text)
        return raw.nbytes

    def flush(self) -> None:
        self._text.flush()


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
    """While the block runs, prints and ``logging`` records become log frames, and
    ``sys.stderr`` masks secrets.

    Args:
        level: the lowest ``logging`` level sent; ``None`` reads ``GUST_LOG_LEVEL``.

    Raises:
        ValueError: ``GUST_LOG_LEVEL`` names no level (before anything is replaced).
    """
    if level is None:
        level = log_level_from_env()
    writer = LogWriter(session)
    bridge = LoggingBridge(session, level)  # see gust._logbridge: logging is loaded on demand
    old_stdout, old_stderr = sys.stdout, sys.stderr
    stderr = MaskedStream(old_stderr, session.masker) if old_stderr is not None else None
    sys.stdout = writer
    sys.stderr = stderr
    bridge.start()
    try:
        yield
    finally:
        bridge.stop()
        sys.stdout = old_stdout
        writer.flush_partial()
        _flush_original_stdout()
        if stderr is not None:
            # Handlers and threads that kept a reference write through it, masked, from now on.
            if sys.stderr is stderr:
                sys.stderr = old_stderr
            with contextlib.suppress(OSError, ValueError):  # stderr gone: nothing to show
                stderr.finish()


def _flush_original_stdout() -> None:
    # What the task wrote to sys.__stdout__ (fd 1, now stderr) must not sit in its buffer:
    # the CLI leaves through os._exit, which flushes nothing.
    stream = sys.__stdout__
    if stream is None:
        return
    # OSError: stderr is gone, nothing to show it on. ValueError: the task closed or detached
    # the stream (then even ``closed`` raises), which leaves nothing to flush.
    with contextlib.suppress(OSError, ValueError):
        if not stream.closed:
            stream.flush()


# -- signals ----------------------------------------------------------------------------------

_previous_handlers: dict[int, Any] = {}


def _restore_in_forked_child() -> None:
    for signum, previous in _previous_handlers.items():
        signal.signal(signum, previous)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restore_in_forked_child)

_real_signal = signal.signal
_real_getsignal = signal.getsignal


class _Guarded:
    """A handler the task installed, run after any frame the main thread is writing."""

    __slots__ = ("_guard", "handler")

    def __init__(self, handler: Callable[[int, FrameType | None], Any], guard: TaskSignals):
        self.handler = handler
        self._guard = guard

    def __call__(self, signum: int, frame: FrameType | None) -> Any:
        guard = self._guard
        if not guard.armed:
            return None
        channel = guard.channel
        if channel.main_busy and os.getpid() == channel.owner_pid:
            channel.deferred.append(lambda: self._late(signum, frame))
            return None
        return self.handler(signum, frame)

    def _late(self, signum: int, frame: FrameType | None) -> None:
        if self._guard.armed:
            self.handler(signum, frame)


class TaskSignals:
    """The signal handling of one task run (see the module docstring).

    Args:
        channel: the protocol channel; a signal landing inside a frame waits for it.
        on_timeout: called by the watchdog thread when the main thread has not finished
            :data:`SIGNAL_GRACE` seconds after a SIGTERM/SIGINT; it must report and exit.
    """

    def __init__(self, channel: Channel, on_timeout: Callable[[TaskInterrupted], None]) -> None:
        self.channel = channel
        self.armed = False
        self._on_timeout = on_timeout
        self._finished = threading.Event()
        self._fired = threading.Event()
        self._guarded: set[int] = set()

    def install(self) -> None:
        """Put our SIGTERM/SIGINT handler in and wrap every handler the task installs."""
        for signum in _SIGNALS:
            previous = _real_signal(signum, self._interrupt)
            _previous_handlers.setdefault(signum, previous)
        self.armed = True
        signal.signal = self._signal  # type: ignore[assignment]
        signal.getsignal = self._getsignal  # type: ignore[assignment]

    def disarm(self) -> None:
        """The task's code is over: its handlers are off (their signals ignored), ours stay."""
        if not self.armed:
            return
        self.armed = False
        if signal.signal == self._signal:
            signal.signal = _real_signal
            signal.getsignal = _real_getsignal
        for signum in self._guarded:
            if isinstance(_real_getsignal(signum), _Guarded):
                _real_signal(signum, self._interrupt if signum in _SIGNALS else signal.SIG_IGN)

    def finish(self) -> None:
        """The final frames are ready: from now on a SIGTERM/SIGINT is ignored while they are
        written, and once they are out it ends the process the default way."""
        self._finished.set()

    # -- what the task sees as signal.signal and signal.getsignal --
    def _signal(self, signalnum: Any, handler: Any) -> Any:
        if callable(handler) and not isinstance(handler, _Guarded):
            handler = _Guarded(handler, self)
        previous = _real_signal(signalnum, handler)
        if isinstance(handler, _Guarded):
            self._guarded.add(int(signalnum))
        return previous.handler if isinstance(previous, _Guarded) else previous

    def _getsignal(self, signalnum: Any) -> Any:
        handler = _real_getsignal(signalnum)
        return handler.handler if isinstance(handler, _Guarded) else handler

    # -- SIGTERM and SIGINT --
    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        channel = self.channel
        if self._finished.is_set():
            if channel.output_closed:  # nothing left to report: die as the sender asked
                _real_signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        if self._fired.is_set():
            return
        self._fired.set()
        threading.Thread(
            target=self._watch, args=(signum,), name="gust-signal-watchdog", daemon=True
        ).start()
        exc = TaskInterrupted(signum)
        if channel.main_busy and os.getpid() == channel.owner_pid:
            channel.deferred.append(lambda: _raise(exc))  # once the frame is whole
            return
        raise exc

    def _watch(self, signum: int) -> None:
        if not self._finished.wait(SIGNAL_GRACE):
            self._on_timeout(TaskInterrupted(signum, ignored_for=SIGNAL_GRACE))


def _raise(exc: BaseException) -> None:
    raise exc
