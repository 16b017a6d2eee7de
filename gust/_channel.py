"""Frame channels: whole frames out, whole frames in, over file descriptors or memory.

A channel is the only thing the child runtime writes frames through. Every frame is encoded by
:mod:`gust.protocol` first and then written in one go under one lock, so threads never
interleave bytes. Reads go through the shared :class:`~gust.protocol.FrameDecoder`, with an
optional timeout, and end of input is reported as :class:`~gust.errors.HostGoneError`.

:class:`FdChannel` is what ``gust task run`` uses (private duplicates of the original stdout and
stdin); :class:`MemoryChannel` serves tests and embedding without a subprocess.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections import deque
from typing import Any

from gust.errors import CallTimeoutError, HostGoneError
from gust.protocol import DEFAULT_MAX_FRAME_SIZE, FrameDecoder, RemoteProtocolError, encode_frame

__all__ = ["Channel", "FdChannel", "MemoryChannel"]

_READ_SIZE = 1 << 16


class Channel:
    """Frames in both directions; subclasses supply the byte-level ``_write_all``/``_read_some``."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.write_lock = threading.Lock()
        #: Thread ident of the writer holding the lock; a signal handler uses it to avoid
        #: raising in the middle of a frame written by the main thread.
        self.writer: int | None = None
        #: An exception a signal handler could not raise mid-frame; the writer raises it.
        self.interrupt: BaseException | None = None
        self._decoder = FrameDecoder(max_frame_size)
        self._in_closed = False
        self._out_broken = False

    # -- writing --
    def write_frame(self, obj: dict[str, Any]) -> None:
        """Encode ``obj`` and write it whole.

        Raises:
            LocalProtocolError: ``obj`` cannot be sent (not strict JSON, over 4 GiB - 1).
            HostGoneError: the reader of our frames is gone.
        """
        self.write_bytes(encode_frame(obj))

    def write_bytes(self, data: bytes) -> None:
        """Write pre-encoded frame bytes whole, under the write lock."""
        if self._out_broken:
            raise HostGoneError("the host stopped reading frames")
        with self.write_lock:
            self.writer = threading.get_ident()
            try:
                self._write_all(data)
            except (BrokenPipeError, ConnectionResetError):
                self._out_broken = True
                raise HostGoneError("the host stopped reading frames (broken pipe)") from None
            finally:
                self.writer = None
        if self.interrupt is not None and threading.get_ident() == threading.main_thread().ident:
            exc, self.interrupt = self.interrupt, None
            raise exc

    # -- reading --
    def read_frame(self, timeout: float | None = None, what: str = "a frame") -> dict[str, Any]:
        """Return the next frame, waiting at most ``timeout`` seconds (``None``: no limit).

        Args:
            what: names the wait in error messages, for example ``"the reply to get_secret"``.

        Raises:
            HostGoneError: input ended (cleanly or inside a frame) or the stream is malformed.
            CallTimeoutError: nothing complete arrived in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                frame = self._decoder.next_frame()
            except RemoteProtocolError as exc:
                raise HostGoneError(
                    f"bad frame from the host while waiting for {what}: {exc}"
                ) from None
            if frame is not None:
                return frame
            if self._in_closed:
                raise HostGoneError(f"the host closed the channel while we waited for {what}")
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            chunk = self._read_some(remaining)
            if chunk is None:
                raise CallTimeoutError(f"no answer within {timeout:g} s while waiting for {what}")
            if chunk:
                self._decoder.feed(chunk)
                continue
            self._in_closed = True
            try:
                self._decoder.eof()
            except RemoteProtocolError as exc:
                raise HostGoneError(
                    f"the host closed the channel inside a frame while we waited for {what}: {exc}"
                ) from None
            raise HostGoneError(f"the host closed the channel while we waited for {what}")

    # -- byte level, for subclasses --
    def _write_all(self, data: bytes) -> None:
        raise NotImplementedError

    def _read_some(self, timeout: float | None) -> bytes | None:
        """Return some bytes, ``b""`` at end of input, or ``None`` when ``timeout`` ran out."""
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
        view = memoryview(data)
        fd = self.out_fd
        while view:
            # A write interrupted by a signal can return short; the loop finishes the frame.
            written = os.write(fd, view)
            view = view[written:]

    def _read_some(self, timeout: float | None) -> bytes | None:
        if self.in_fd is None:
            return b""
        if timeout is not None:
            poller = select.poll()
            poller.register(self.in_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            if not poller.poll(timeout * 1000):
                return None
        try:
            return os.read(self.in_fd, _READ_SIZE)
        except OSError:
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

    def _read_some(self, timeout: float | None) -> bytes | None:
        with self._ready:
            if not self._ready.wait_for(lambda: self._incoming, timeout):
                return None
            return self._incoming.popleft()
