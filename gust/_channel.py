"""Frame channels: whole frames out, whole frames in, over file descriptors or memory.

A channel is the only thing the child runtime writes frames through. Every frame is encoded by
:mod:`gust.protocol` first and then written in one go under one lock, so threads never
interleave bytes. Output ends for good either when the host stops reading (a broken pipe) or
when :meth:`Channel.write_final` has written the final frames; every later write raises
:class:`~gust.errors.HostGoneError`, so nothing can follow the final ``result``.

Strategy against signal handlers: Python runs a signal handler in the main thread between two
bytecodes, so a handler could interrupt the main thread in the middle of a frame (tearing it if
the handler raises, deadlocking if it logs while the write lock is held), or between reading
input and keeping it. The main thread therefore marks the few lines that must not be cut
(writing one frame; taking bytes and frames in) with :meth:`Channel.enter`/:meth:`Channel.leave`,
and the runtime's handlers (see :mod:`gust.sandbox`) check :attr:`Channel.main_busy`: a handler
that lands inside such a section is queued in :attr:`Channel.deferred` and runs right after it,
in the same thread, where raising is harmless. Blocking waits (a full pipe, a reply that has not
come) are outside the sections, so a handler still interrupts a wait. The write lock is
re-entrant, so a handler that runs in the instants just before or after a section can still
log. Only the process that created the channel writes: the pid is checked on every write, so a
process forked from the task never writes a frame, whatever it does with descriptors.

:class:`FdChannel` is what ``gust task run`` uses (private duplicates of the original stdout and
stdin); :class:`MemoryChannel` serves tests and embedding without a subprocess;
:class:`StderrChannel` is what a forked child of the task writes through.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque

from gust.errors import CallTimeoutError, HostGoneError, HostProtocolError
from gust.protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    FrameDecoder,
    RemoteProtocolError,
    decode_payload,
    encode_frame,
)

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["Channel", "FdChannel", "MemoryChannel", "StderrChannel"]

_READ_SIZE = 1 << 16
_BROKEN = "the host stopped reading frames (broken pipe)"

_get_ident = threading.get_ident
_getpid = os.getpid


class Channel:
    """Frames in both directions; subclasses supply the byte-level methods.

    Attributes:
        owner_pid: the process allowed to write (the one that created the channel).
        main_busy: how deep the main thread is in sections a signal handler must not cut.
        deferred: callables queued by signal handlers that landed inside such a section.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.write_lock = threading.RLock()
        self.owner_pid = _getpid()
        self.main_busy = 0
        self.deferred: list[Callable[[], object]] = []
        self._main = threading.main_thread().ident
        self._decoder = FrameDecoder(max_frame_size)
        self._in_closed = False
        #: Why nothing more can be written (host gone, final frame sent), or ``None``.
        self._out_closed: str | None = None
        self._stash: bytes | None = None  # see _wait_readable

    # -- sections a signal handler must not cut --
    def enter(self) -> None:
        """Start a section of the calling thread that signal handlers must not cut."""
        if _get_ident() == self._main:
            self.main_busy += 1

    def leave(self) -> None:
        """End the section; at the outermost end, run what handlers deferred (may raise)."""
        if _get_ident() == self._main:
            self.main_busy -= 1
            if self.deferred and not self.main_busy:
                self.run_deferred()

    def run_deferred(self) -> None:
        """Run the queued handlers in order; one that raises leaves the rest for later."""
        deferred = self.deferred
        while deferred and not self.main_busy:
            deferred.pop(0)()

    # -- writing --
    def write_frame(self, obj: dict[str, Any]) -> None:
        """Encode ``obj`` and write it whole.

        Raises:
            LocalProtocolError: ``obj`` cannot be sent (not strict JSON, over 4 GiB - 1).
            HostGoneError: the reader of our frames is gone, the final frame was sent, or this
                process is not the one that owns the channel (a forked child).
        """
        self.write_bytes(encode_frame(obj))

    def write_bytes(self, data: bytes) -> None:
        """Write pre-encoded frame bytes whole, under the write lock."""
        if _getpid() != self.owner_pid:
            self._check_owner()
        main = _get_ident() == self._main
        with self.write_lock:
            if main:
                self.main_busy += 1
            try:
                if self._out_closed is not None:
                    raise HostGoneError(self._out_closed)
                try:
                    self._write_all(data)
                except (BrokenPipeError, ConnectionResetError):
                    self._out_closed = _BROKEN
                    raise HostGoneError(_BROKEN) from None
            finally:
                if main:
                    self.main_busy -= 1
        if main and self.deferred and not self.main_busy:
            self.run_deferred()

    def write_final(self, frames: list[bytes]) -> None:
        """Write the last frames of the process whole, then refuse every later write.

        Threads a task left running cannot slip a frame in after the final ``result``: the
        frames go out and the channel closes under one hold of the write lock. Handlers that
        land meanwhile stay queued: the outcome is settled once this returns.

        Raises:
            HostGoneError: as for :meth:`write_bytes`.
        """
        self._check_owner()
        main = _get_ident() == self._main
        with self.write_lock:
            if main:
                self.main_busy += 1
            try:
                if self._out_closed is not None:
                    raise HostGoneError(self._out_closed)
                try:
                    for data in frames:
                        self._write_all(data)
                except (BrokenPipeError, ConnectionResetError):
                    self._out_closed = _BROKEN
                    raise HostGoneError(_BROKEN) from None
                self._out_closed = "the task already sent its final frame; nothing more can be sent"
            finally:
                if main:
                    self.main_busy -= 1

    @property
    def output_closed(self) -> bool:
        """Whether writing is over (host gone, or the final frame sent)."""
        return self._out_closed is not None

    def _check_owner(self) -> None:
        pid = _getpid()
        if pid != self.owner_pid:
            raise HostGoneError(
                f"this process (pid {pid}) was forked from the task (pid {self.owner_pid}): "
                "only the task's own process writes frames"
            )

    # -- reading --
    def next_buffered(self) -> dict[str, Any] | None:
        """The next whole frame already received, or ``None``; never waits.

        Raises:
            HostProtocolError: the host sent a malformed frame.
        """
        try:
            return self._decoder.next_frame()
        except RemoteProtocolError as exc:
            raise HostProtocolError(f"bad frame from the host: {exc}") from None

    def fill(self, timeout: float | None, what: str = "a frame") -> bool:
        """Wait at most ``timeout`` seconds (``None``: no limit) for input and take it in.

        The wait can be interrupted by a signal handler; taking the bytes in cannot.

        Returns:
            ``True`` when bytes were taken in, ``False`` when the time ran out.

        Raises:
            HostGoneError: input has ended (cleanly or inside a frame).
        """
        if self._in_closed:
            raise HostGoneError(f"the host closed the channel while we waited for {what}")
        if not self._wait_readable(timeout):
            return False
        self.enter()
        try:
            chunk = self._take_bytes()
            if chunk:
                self._decoder.feed(chunk)
            else:
                self._in_closed = True
        finally:
            self.leave()
        if chunk:
            return True
        try:
            self._decoder.eof()
        except RemoteProtocolError as exc:
            raise HostGoneError(
                f"the host closed the channel inside a frame while we waited for {what}: {exc}"
            ) from None
        raise HostGoneError(f"the host closed the channel while we waited for {what}")

    def read_frame(self, timeout: float | None = None, what: str = "a frame") -> dict[str, Any]:
        """Return the next frame, waiting at most ``timeout`` seconds (``None``: no limit).

        Args:
            what: names the wait in error messages, for example ``"the reply to get_secret"``.

        Raises:
            HostGoneError: input ended (cleanly or inside a frame).
            HostProtocolError: the host sent a malformed frame.
            CallTimeoutError: nothing complete arrived in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.enter()
            try:
                frame = self.next_buffered()
            finally:
                self.leave()
            if frame is not None:
                return frame
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.fill(remaining, what):
                raise CallTimeoutError(f"no answer within {timeout:g} s while waiting for {what}")

    # -- byte level, for subclasses --
    def _write_all(self, data: bytes) -> None:
        raise NotImplementedError

    def _wait_readable(self, timeout: float | None) -> bool:
        """Wait until :meth:`_take_bytes` will not block; ``False`` when ``timeout`` ran out.

        The default serves subclasses written against the earlier one-call API, which
        implement only ``_read_some(timeout)`` (bytes, ``b""`` at end of input, ``None`` on
        timeout): the bytes are read here, outside the section signal handlers cannot cut.
        """
        chunk = self._read_some(timeout)
        if chunk is None:
            return False
        self._stash = chunk
        return True

    def _take_bytes(self) -> bytes:
        """Return some bytes, or ``b""`` at end of input (see :meth:`_wait_readable`)."""
        chunk, self._stash = self._stash, None
        return b"" if chunk is None else chunk

    def _read_some(self, timeout: float | None) -> bytes | None:
        """The earlier one-call API: some bytes, ``b""`` at end of input, ``None`` on timeout."""
        raise NotImplementedError


class FdChannel(Channel):
    """A channel over two file descriptors (frames out on ``out_fd``, replies in on ``in_fd``)."""

    def __init__(
        self, out_fd: int, in_fd: int | None, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    ) -> None:
        super().__init__(max_frame_size)
        self.out_fd = out_fd
        self.in_fd = in_fd

    def _write_all(self, data: bytes) -> None:
        written = os.write(self.out_fd, data)
        if written != len(data):
            # A signal can interrupt a large write part-way; finish the frame.
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self.out_fd, view) :]

    def _wait_readable(self, timeout: float | None) -> bool:
        if self.in_fd is None:
            return True  # no input at all: reads at once as end of input
        poller = select.poll()
        poller.register(self.in_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(None if timeout is None else timeout * 1000))

    def _take_bytes(self) -> bytes:
        if self.in_fd is None:
            return b""
        try:
            return os.read(self.in_fd, _READ_SIZE)
        except OSError:
            return b""


class StderrChannel(Channel):
    """Frames rendered as text lines on stderr; no input.

    A process forked from the task (``multiprocessing`` with the fork start method) inherits
    the protocol descriptors, but frames it wrote would interleave with the parent's. Its
    session switches to this channel: its logs stay visible on stderr and the parent's frame
    stream stays whole.
    """

    def _write_all(self, data: bytes) -> None:
        frame = decode_payload(data[HEADER_SIZE:])
        if frame.get("type") == "log":
            line = f"[gust {frame.get('level')}] {frame.get('msg')}\n"
        else:
            line = f"[gust] {data[HEADER_SIZE:].decode('utf-8')}\n"
        os.write(2, line.encode("utf-8", "replace"))

    def _wait_readable(self, timeout: float | None) -> bool:
        return True

    def _take_bytes(self) -> bytes:
        return b""


class MemoryChannel(Channel):
    """An in-memory channel: frames written collect in :attr:`sent`; replies are queued bytes."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        super().__init__(max_frame_size)
        self.sent = bytearray()
        self._incoming: deque[bytes] = deque()
        self._ready = threading.Condition()

    def push(self, data: bytes) -> None:
        """Queue bytes for the reader; ``b""`` marks end of input."""
        with self._ready:
            self._incoming.append(data)
            self._ready.notify_all()

    def sent_frames(self) -> list[dict[str, Any]]:
        """Decode everything written so far."""
        decoder = FrameDecoder()
        decoder.feed(bytes(self.sent))
        frames = decoder.frames()
        decoder.eof()
        return frames

    def _write_all(self, data: bytes) -> None:
        self.sent += data

    def _wait_readable(self, timeout: float | None) -> bool:
        with self._ready:
            return self._ready.wait_for(lambda: self._incoming, timeout)

    def _take_bytes(self) -> bytes:
        with self._ready:
            return self._incoming.popleft()
