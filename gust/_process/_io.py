"""The host's I/O with a child: frames before a deadline, replies on a thread, stderr drained."""

from __future__ import annotations

import codecs
import contextlib
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from gust import protocol

_READ_SIZE: Final = 1 << 16
#: How much of an unfinished stderr line waits for the rest before it is passed on.
_OVERLAP: Final = 4096


class FrameTimeout(Exception):
    """No whole frame arrived before the deadline."""


class FrameReader:
    """Frames from a descriptor, through the shared :class:`~gust.protocol.FrameDecoder`.

    Args:
        fd: the descriptor to read (a child's stdout).
        max_frame_size: the largest payload accepted.
        on_bytes: called with every chunk read (to record the wire).
    """

    def __init__(
        self,
        fd: int,
        max_frame_size: int = protocol.DEFAULT_MAX_FRAME_SIZE,
        on_bytes: Callable[[bytes], None] | None = None,
    ) -> None:
        self.fd = fd
        self.decoder = protocol.FrameDecoder(max_frame_size)
        self.on_bytes = on_bytes
        self.closed = False

    def wait_readable(self, timeout: float | None) -> bool:
        """Whether bytes (or end of input) can be read within ``timeout`` seconds."""
        if self.closed:
            return True
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        ms = None if timeout is None else max(0, int(timeout * 1000))
        return bool(poller.poll(ms))

    def read_chunk(self) -> bytes:
        """Read what is there into the decoder; ``b""`` marks end of input."""
        if self.closed:
            return b""
        try:
            chunk = os.read(self.fd, _READ_SIZE)
        except OSError:
            chunk = b""
        if chunk:
            if self.on_bytes is not None:
                self.on_bytes(chunk)
            self.decoder.feed(chunk)
        else:
            self.closed = True
        return chunk

    def next_frame(self, deadline: float | None) -> dict[str, Any] | None:
        """The next frame, or ``None`` at a clean end of input.

        Raises:
            FrameTimeout: nothing whole arrived before ``deadline`` (``time.monotonic()``).
            RemoteProtocolError: the bytes are not a frame (``truncated`` at end of input).
        """
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                return frame
            if self.closed:
                self.decoder.eof()
                return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise FrameTimeout
            if self.wait_readable(remaining):
                self.read_chunk()


class StdinWriter(threading.Thread):
    """Writes queued bytes to a child's stdin on its own thread; ``None`` closes stdin.

    Attributes:
        broken: the child closed its stdin (or exited); later writes were dropped.
    """

    def __init__(self, fd: int, on_bytes: Callable[[bytes], None] | None = None) -> None:
        super().__init__(name="gust-host-stdin", daemon=True)
        self.fd = fd
        self.on_bytes = on_bytes
        self.queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.broken = False

    def send(self, data: bytes) -> None:
        """Queue ``data`` for the child."""
        self.queue.put(data)

    def close_input(self) -> None:
        """Close the child's stdin once everything queued before is written."""
        self.queue.put(None)

    def run(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                break
            if self.broken:
                continue
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self.fd, view) :]
            except OSError:
                self.broken = True  # the child is gone or closed stdin; later replies are moot
                continue
            if self.on_bytes is not None:
                self.on_bytes(data)
        try:
            os.close(self.fd)
        except OSError:
            self.broken = True


class StderrCollector(threading.Thread):
    """Reads a child's stderr to the end: a bounded tail, whole lines to a callback.

    Masking comes before any cut: a whole line is masked, then passed on in pieces of at most
    ``max_line`` characters; an unfinished line that grows past ``max_line`` is passed on up
    to a point no secret straddles (the last :data:`_OVERLAP` characters wait for more), so a
    secret of up to that length is never shown in halves. The tail is masked as a whole and
    starts at a line boundary.

    Args:
        fd: the child's stderr.
        on_line: called with each line (without its newline), masked, as it arrives.
        mask: applied to every line and to the tail (a secret masker), or ``None``.
        keep: also keep the first ``keep`` bytes of everything (for recording), or 0.
        tail_bytes: the size of the tail kept.
        max_line: a line longer than this is passed on in pieces of this size.
    """

    def __init__(
        self,
        fd: int,
        on_line: Callable[[str], None] | None = None,
        *,
        mask: Callable[[str], str] | None = None,
        keep: int = 0,
        tail_bytes: int = 64 * 1024,
        max_line: int = 64 * 1024,
    ) -> None:
        super().__init__(name="gust-host-stderr", daemon=True)
        self.fd = fd
        self.on_line = on_line
        self.mask: Callable[[str], str] = mask if mask is not None else _same
        self.tail = bytearray()
        self.kept = bytearray()
        self.keep = keep
        self.total = 0
        self._trimmed = False
        self._tail_bytes = tail_bytes
        self._max_line = max_line
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, _READ_SIZE)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.total += len(chunk)
            self.tail += chunk
            if len(self.tail) > self._tail_bytes:
                del self.tail[: len(self.tail) - self._tail_bytes]
                self._trimmed = True
            if len(self.kept) < self.keep:
                self.kept += chunk[: self.keep - len(self.kept)]
            if self.on_line is not None:
                self._feed(self._decoder.decode(chunk))
        if self.on_line is not None:
            self._feed(self._decoder.decode(b"", final=True))
            if self._partial:
                self._emit(self.mask(self._partial))
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def _feed(self, text: str) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._emit(self.mask(line))
        if len(self._partial) > self._max_line + _OVERLAP:
            self._flush_long()

    def _flush_long(self) -> None:
        # Pass on the unfinished line up to a cut no secret straddles: where masking the head
        # alone gives the start of the masked whole.
        text = self._partial
        whole = self.mask(text)
        cut = len(text) - _OVERLAP
        while cut < len(text):
            head = self.mask(text[:cut])
            if whole.startswith(head):
                self._emit(head)
                self._partial = text[cut:]
                return
            cut += 64
        self._emit(whole)
        self._partial = ""

    def _emit(self, text: str) -> None:
        assert self.on_line is not None
        for start in range(0, max(len(text), 1), self._max_line):
            self.on_line(text[start : start + self._max_line])

    def tail_text(self, lines: int) -> str:
        """The last ``lines`` lines of stderr, masked."""
        text = bytes(self.tail).decode("utf-8", "replace")
        if self._trimmed and "\n" in text:
            text = text.split("\n", 1)[1]  # the first line was cut: it may hold half a secret
        text = self.mask(text)
        return "\n".join(text.rstrip("\n").split("\n")[-lines:])

    def kept_text(self) -> str:
        """What was kept of the start of stderr (``keep`` bytes at most), masked."""
        return self.mask(bytes(self.kept).decode("utf-8", "replace"))


def _same(text: str) -> str:
    return text
