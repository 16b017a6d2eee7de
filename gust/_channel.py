"""Frame channels: whole frames out, whole frames in, over file descriptors or memory.

A channel is the only thing the child runtime writes frames through. Every frame is encoded by
:mod:`gust.protocol` first and then written in one go under one lock, so threads never
interleave bytes. Reads go through the shared :class:`~gust.protocol.FrameDecoder`, with an
optional timeout, and end of input is reported as :class:`~gust.errors.HostGoneError`. Output
ends for good either when the host stops reading (a broken pipe) or when
:meth:`Channel.write_final` has written the final frames; every later write raises
:class:`~gust.errors.HostGoneError`, so nothing can follow the final ``result``.

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

from gust.errors import CallTimeoutError, HostGoneError
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
    from typing import Any

__all__ = ["Channel", "FdChannel", "MemoryChannel", "StderrChannel"]

_READ_SIZE = 1 << 16


class Channel:
    """Frames in both directions; subclasses supply the byte-level ``_write_all``/``_read_some``."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.write_lock = threading.Lock()
        #: An exception a signal handler could not raise mid-frame; the writer raises it.
        self.interrupt: BaseException | None = None
        self._decoder = FrameDecoder(max_frame_size)
        self._in_closed = False
        #: Why nothing more can be written (host gone, final frame sent), or ``None``.
        self._out_closed: str | None = None

    # -- writing --
    def write_frame(self, obj: dict[str, Any]) -> None:
        """Encode ``obj`` and write it whole.

        Raises:
            LocalProtocolError: ``obj`` cannot be sent (not strict JSON, over 4 GiB - 1).
            HostGoneError: the reader of our frames is gone, or the final frame was sent.
        """
        self.write_bytes(encode_frame(obj))

    def write_bytes(self, data: bytes) -> None:
        """Write pre-encoded frame bytes whole, under the write lock."""
        with self.write_lock:
            if self._out_closed is not None:
                raise HostGoneError(self._out_closed)
            try:
                self._write_all(data)
            except (BrokenPipeError, ConnectionResetError):
                self._out_closed = "the host stopped reading frames (broken pipe)"
                raise HostGoneError(self._out_closed) from None
        if self.interrupt is not None:
            self._raise_interrupt()

    def write_final(self, frames: list[bytes]) -> None:
        """Write the last frames of the process whole, then refuse every later write.

        Threads a task left running cannot slip a frame in after the final ``result``: the
        frames go out and the channel closes under one hold of the write lock.

        Raises:
            HostGoneError: as for :meth:`write_bytes`.
        """
        with self.write_lock:
            if self._out_closed is not None:
                raise HostGoneError(self._out_closed)
            try:
                for data in frames:
                    self._write_all(data)
            except (BrokenPipeError, ConnectionResetError):
                self._out_closed = "the host stopped reading frames (broken pipe)"
                raise HostGoneError(self._out_closed) from None
            self._out_closed = "the task already sent its final frame; nothing more can be sent"

    @property
    def output_closed(self) -> bool:
        """Whether writing is over (host gone, or the final frame sent)."""
        return self._out_closed is not None

    def _raise_interrupt(self) -> None:
        # Only the main thread raises a held signal: that is where the handler would have.
        if threading.get_ident() == threading.main_thread().ident:
            exc, self.interrupt = self.interrupt, None
            if exc is not None:
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
        written = os.write(self.out_fd, data)
        if written != len(data):
            # A signal can interrupt a large write part-way; finish the frame.
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self.out_fd, view) :]

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

    def _read_some(self, timeout: float | None) -> bytes | None:
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
